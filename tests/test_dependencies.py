"""Smoke test: every optional dependency the extras promise imports and runs.

A failure prints one line naming the package and the pins to check (the suite
is installed with the ``test`` extra, which includes ``models``,
``attribution`` and ``evaluation``, so nothing here is skipped).
"""

import sys

import pytest

from mne_freqmask.utils._deps import OPTIONAL, import_optional


@pytest.mark.parametrize(
    "module",
    [
        "torchaudio",
        "torchvision",
        "braindecode.models",
        "braindecode.visualization",
        "zennit.composites",
        "captum.attr",
        "quantus",
    ],
)
def test_optional_dependency_imports(module):
    """Each promised module imports (through braindecode for torchaudio too)."""
    try:
        import_optional(module)
    except ImportError as exp:
        pytest.fail(str(exp), pytrace=False)


def test_braindecode_models_build_and_run(torch_threads):
    """The braindecode classes the package names build and run a forward pass."""
    torch = torch_threads
    from mne_freqmask.models import MODEL_NAMES, make_model

    x = torch.randn(2, 4, 512) * 1e-5  # Deep4Net needs >= 441 samples
    for name in MODEL_NAMES:
        model = make_model(name, 4, 2, 512, 128.0).eval()
        with torch.no_grad():
            out = model(x)
        assert out.shape == (2, 2), name
        assert torch.isfinite(out).all(), name
    labram = import_optional("braindecode.models").Labram
    assert labram.__name__ == "Labram"


def test_import_failure_is_one_line(monkeypatch):
    """A broken braindecode gives one line: package, cause, the pins to check."""
    for name in list(sys.modules):
        if name == "braindecode" or name.startswith("braindecode."):
            monkeypatch.delitem(sys.modules, name)
    # a None entry makes the import machinery raise ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "braindecode", None)
    with pytest.raises(ImportError) as info:
        import_optional("braindecode.models")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("braindecode cannot be imported (ModuleNotFoundError")
    assert "torchaudio" in msg and "torch" in msg
    assert "'models' extra" in msg
    # the tested set, and the names whose builds must match
    assert "constraints.txt" in msg
    assert "braindecode" in msg and "torchaudio" in msg and "torch" in msg
    # the package's own entry points give the same line
    from mne_freqmask.models import make_model

    with pytest.raises(ImportError, match="^braindecode cannot be imported"):
        make_model("eegnet", 4, 2, 128, 64.0)


def test_abi_failure_names_the_pins(monkeypatch):
    """An OSError from a compiled extension (the torchaudio ABI break) is caught."""
    import importlib

    real = importlib.import_module

    def broken(name, *args, **kwargs):
        if name == "braindecode.models":
            raise OSError(
                "libtorchaudio.so: undefined symbol: "
                "torch_exception_get_what_without_backtrace"
            )
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ImportError) as info:
        import_optional("braindecode.models")
    msg = str(info.value)
    assert "\n" not in msg
    assert "OSError: libtorchaudio.so: undefined symbol" in msg
    assert "torchaudio" in msg and "constraints.txt" in msg


def _requirements():
    """pyproject.toml's requirements: the core's and each extra's."""
    from pathlib import Path

    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = {"core": project["dependencies"], **extras}
    return {k: [Requirement(r) for r in v] for k, v in reqs.items()}, root


def test_requirements_keep_the_users_torch():
    """No requirement pins the torch family: installing keeps the user's torch.

    Exact versions live in constraints.txt (what CI and the README's commands
    install); pyproject.toml's requirements on torch, torchaudio, torchvision
    and braindecode (whose builds must match the installed torch) are lower
    bounds, which any newer or local (+cu) build satisfies.
    """
    reqs, root = _requirements()
    family = {"torch", "torchaudio", "torchvision", "braindecode"}
    for extra, items in reqs.items():
        for req in items:
            ops = {spec.operator for spec in req.specifier}
            if req.name.lower() in family:
                assert ops <= {">="}, f"{extra}: {req} is more than a lower bound"
                # a newer release and a local CUDA build both satisfy it
                assert req.specifier.contains("99.0") and req.specifier.contains(
                    "2.14.1+cu130"
                ), req
    # the exact tested set is in constraints.txt, and the README uses it
    pins = {}
    for line in (root / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line} is not an exact pin"
            pins[name.lower()] = version
    assert family <= set(pins)
    readme = (root / "README.rst").read_text()
    assert readme.count("-c constraints.txt") >= 2
    for items in reqs.values():  # the tested versions satisfy the requirements
        for req in items:
            if req.name.lower() in pins:
                assert req.specifier.contains(pins[req.name.lower()]), req


def test_every_extra_module_is_known():
    """The table of optional modules covers what the extras install."""
    assert {"braindecode", "zennit", "captum", "torchaudio", "quantus"} <= set(OPTIONAL)


def test_braindecode_import_warning_filtered_here_only():
    """The package's braindecode import is quiet; a plain import is not.

    Run in fresh interpreters with FutureWarnings as errors: the package's import
    path succeeds, and importing braindecode directly still raises, so the
    filter is scoped to the package's import and not installed globally.
    """
    import subprocess

    ours = (
        "from mne_freqmask.utils._deps import import_optional; "
        "import_optional('braindecode.models'); import warnings; "
        "assert not any('standard_1020' in str(f[1]) for f in warnings.filters "
        "if f[1] is not None)"
    )
    run = [sys.executable, "-W", "error::FutureWarning", "-c"]
    res = subprocess.run([*run, ours], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "standard_1020" not in res.stderr
    res = subprocess.run(
        [*run, "import braindecode.models"], capture_output=True, text=True
    )
    assert res.returncode != 0 and "standard_1020" in res.stderr, (
        "braindecode no longer warns at import: drop _BRAINDECODE_IMPORT_WARNINGS"
    )
