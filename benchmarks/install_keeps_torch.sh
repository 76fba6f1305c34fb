#!/usr/bin/env bash
# Does installing mne-freqmask replace a torch the user already has?
#
# A new virtual environment gets a stand-in torch 2.11.0 (its metadata only:
# pip reads nothing else when it resolves), then pip resolves the package's
# "models" extra WITHOUT the repository's constraints.txt, as a user with
# their own torch would install it, with --dry-run --report (nothing is
# installed). Prints what pip would install of the torch family, and whether
# it replaces torch. Usage: bash benchmarks/install_keeps_torch.sh [TREE...]
# (default: this repository). Output of a run: benchmarks/results/install_keeps_torch.txt
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TREES=("${@:-$ROOT}")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keep-torch.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
SP=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
mkdir -p "$SP/torch-2.11.0.dist-info"
printf 'Metadata-Version: 2.1\nName: torch\nVersion: 2.11.0\n' \
    > "$SP/torch-2.11.0.dist-info/METADATA"
echo pip > "$SP/torch-2.11.0.dist-info/INSTALLER"
: > "$SP/torch-2.11.0.dist-info/RECORD"
echo "environment: $("$PY" -m pip list 2>/dev/null | grep -i '^torch ')"
for tree in "${TREES[@]}"; do
    # without constraints; with the user's torch and its torchaudio as
    # constraints (doc/install.rst's recipe)
    for cons in "" "torch==2.11.0 torchaudio==2.11.0"; do
        args=()
        if [ -n "$cons" ]; then
            printf '%s\n' $cons > "$WORK/my-torch.txt"
            args=(-c "$WORK/my-torch.txt")
        fi
        echo "== pip install --dry-run --report r.json \"$tree[models]\" ${args[*]:-(no constraints)}"
        if nice "$PY" -m pip install --dry-run --quiet --report "$WORK/r.json" \
            "$tree[models]" "${args[@]}" > "$WORK/pip.log" 2>&1; then
            "$PY" - "$WORK/r.json" <<'PY'
import json
import sys

rep = json.load(open(sys.argv[1]))
inst = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in rep["install"]}
family = ("torch", "torchaudio", "torchvision", "braindecode")
print("  would install:", {k: v for k, v in inst.items() if k in family})
print("  replaces torch 2.11.0:", "torch" in inst)
PY
        else
            echo "  pip refused: $(grep -iE 'error|conflict|cannot' "$WORK/pip.log" | grep -v "Location 'file" | head -3 | tr '\n' ' ')"
        fi
    done
done
