"""FreqMask early stopping: steps to convergence and the removal game.

For each dataset x model of the evaluation harness (same data splits, same
cached models, same 24 explained held-out epochs, 10 bands), FreqMask is run
with several stopping rules, and for each we record:

* median (and 90th percentile) steps per epoch, and the wall time;
* the removal-game gap RN - RS with the group map, on all held-out epochs,
  and with each explained epoch's own map (``inst. gap``);
* Spearman's rho between the group map and the 300-fixed-step group map.

Stopping rules: ``fixed 300`` (no early stopping, the reference),
``patience 10`` (the default before this benchmark, no warm-up),
``patience 10 after 50`` (``min_steps=50``: no epoch stops during the first
50 steps; the default chosen from this benchmark), and ``patience 25``. Usage::

    python benchmarks/bench_convergence.py --threads 1 \
        --out benchmarks/results/convergence.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import mne
import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask.evaluation import spearman

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

RULES = {
    "fixed 300": dict(n_steps=300, patience=10**6),
    "patience 10": dict(patience=10, min_steps=0),
    "patience 10 after 50": dict(patience=10, min_steps=50),
    "patience 25": dict(patience=25, min_steps=0),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(harness.DATASETS))
    parser.add_argument("--models", nargs="+", default=list(harness.MODELS))
    parser.add_argument("--rules", nargs="+", default=list(RULES))
    parser.add_argument("--n-explain", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mne.set_log_level("ERROR")
    rows = []
    t_start = time.perf_counter()
    for ds in args.datasets:
        train, test, _, _ = harness.load_dataset(ds)
        ep = test[harness.explained_subset(test, args.n_explain)]
        for name in args.models:
            model, _, _ = harness.get_model(ds, name, train)
            maps = {}
            for rule in args.rules:
                t0 = time.perf_counter()
                sal = mfm.explain(
                    ep,
                    model,
                    bands=harness.BANDS,
                    reference=train,
                    verbose=False,
                    **RULES[rule],
                )
                wall = time.perf_counter() - t0
                group = mfm.evaluate_removal(test, model, sal, verbose=False)
                inst = mfm.evaluate_removal(
                    ep, model, sal, level="instance", verbose=False
                )
                maps[rule] = sal.average().get_data().ravel()
                steps = sal.diagnostics["n_steps"]
                row = dict(
                    dataset=ds,
                    model=name,
                    rule=rule,
                    median_steps=float(np.median(steps)),
                    p90_steps=float(np.percentile(steps, 90)),
                    wall_s=wall,
                    original=float(group.loc["original", "accuracy"]),
                    gap=float(group.attrs["gap"]),
                    gap_instance=float(inst.attrs["gap"]),
                    mask_mean=float(sal.get_data().mean()),
                )
                if "fixed 300" in maps:
                    row["rho_vs_fixed"] = float(spearman(maps[rule], maps["fixed 300"]))
                rows.append(row)
                print(
                    f"| {ds} | {name} | {rule} | {row['median_steps']:.0f} | "
                    f"{row['p90_steps']:.0f} | {row['gap']:.2f} | "
                    f"{row['gap_instance']:.2f} | "
                    f"{row.get('rho_vs_fixed', np.nan):.2f} "
                    f"| {wall:.1f} | ({time.perf_counter() - t_start:.0f} s)",
                    flush=True,
                )
    if args.out is not None:
        meta = dict(
            date=time.strftime("%Y-%m-%d %H:%M"),
            torch=torch.__version__,
            threads=args.threads,
            n_explain=args.n_explain,
            wall_min=(time.perf_counter() - t_start) / 60,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=2))


if __name__ == "__main__":
    main()
