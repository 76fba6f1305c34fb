"""FreqMask cost per epoch against the number of short-time windows (issue #17).

Usage (one torch thread, a few minutes)::

    python benchmarks/bench_tfr.py --out benchmarks/results/tfr_cost.json

The same epochs and the same model for every grid, in one run: EEGBCI
subject 1, runs 6/10/14 (imagined both fists vs both feet), -0.5 to 3.49 s
around the cue at 100 Hz (400 samples, 64 channels), band-passed 4-40 Hz as in
example 07, and an EEGNet trained on the 45 trials (``models.fit``, seed 1,
the example's settings). ``--n-epochs`` of them (every k-th, both classes)
are explained with the default method (FreqMask, rank stopping, the epochs
as each other's donors, ``random_state=0``) on:

- the whole epoch (``time_windows=None``, the default);
- ``time_windows=(length, step)`` giving 3, 4 and 8 windows, and the
  example's (0.5, 0.25) s (17 windows). Two windows cannot be had: windows
  are centred on samples ``0, hop, 2 hop, ...`` with ``hop <= length / 2``
  (NOLA), so two windows need a step over half the epoch and a window
  longer than the epoch, which is the whole-epoch case.

Each grid is timed ``--repeats`` times, the grids interleaved (repeat r runs
every grid once, in a rotated order) so that a change in the machine's load
hits all of them. Reported per grid: the median wall time per epoch, the
model passes (optimisation steps, ``sal.diagnostics["n_steps"]``) per epoch
(mean and median; the same in every repeat, the seed being fixed), the time
per step, and the ratio of the time per epoch to the whole-epoch one. The
issue's goal: 4 windows cost at most 2x the whole-epoch default.
"""

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import mne
import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask.datasets import eegbci
from mne_freqmask.models import fit

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "eegbci_S001"
BANDS = {"theta": (4, 8), "mu": (8, 13), "beta": (13, 30), "gamma": (30, 40)}
#: name -> time_windows (seconds) for 400 samples at 100 Hz
GRIDS = {
    "whole": None,
    "3 windows": (3.2, 1.6),
    "4 windows": (2.5, 1.25),
    "8 windows": (1.1, 0.55),
    "17 windows": (0.5, 0.25),
}


def _commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _explain(epochs, model, tw):
    t0 = time.perf_counter()
    sal = mfm.explain(epochs, model, bands=BANDS, time_windows=tw, random_state=0)
    wall = time.perf_counter() - t0
    n_win = 1 if tw is None else sal.grid.n_windows
    return wall, np.asarray(sal.diagnostics["n_steps"]), n_win


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grids", nargs="+", default=list(GRIDS))
    parser.add_argument("--out", default=str(HERE / "results" / "tfr_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    mne.set_log_level("ERROR")

    epochs = eegbci.load_epochs(
        DATA, runs=(6, 10, 14), tmin=-0.5, tmax=3.49, resample=100.0
    ).filter(4.0, 40.0)
    model, history = fit(
        epochs, "eegnet", max_epochs=60, batch_size=8, lr=5e-3, random_state=1
    )
    step = max(len(epochs) // args.n_epochs, 1)
    sub = epochs[np.arange(0, len(epochs), step)[: args.n_epochs]]
    n = len(sub)
    print(f"{n} epochs x {len(sub.ch_names)} channels x {len(sub.times)} samples")

    walls = {g: [] for g in args.grids}
    steps, n_windows = {}, {}
    loads = []
    import warnings

    for r in range(args.repeats):
        order = args.grids[r % len(args.grids) :] + args.grids[: r % len(args.grids)]
        for g in order:
            loads.append(os.getloadavg()[0])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # step-cap warnings: in n_steps
                wall, st, nw = _explain(sub, model, GRIDS[g])
            walls[g].append(wall / n)
            steps[g], n_windows[g] = st, nw
            print(f"repeat {r} {g}: {wall / n:.3f} s/epoch, {st.mean():.0f} steps")

    base = float(np.median(walls["whole"])) if "whole" in walls else None
    rows = []
    for g in args.grids:
        med = float(np.median(walls[g]))
        st = steps[g]
        rows.append(
            dict(
                grid=g,
                time_windows=GRIDS[g],
                n_windows=int(n_windows[g]),
                s_per_epoch=med,
                s_per_epoch_all=[float(v) for v in walls[g]],
                steps_mean=float(st.mean()),
                steps_median=float(np.median(st)),
                at_cap=int((st >= 300).sum()),
                ms_per_step=1e3 * med / float(st.mean()),
                ratio_to_whole=None if base is None else med / base,
            )
        )
    result = dict(
        command="python benchmarks/bench_tfr.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k in ("n_epochs", "repeats")
        ),
        commit=_commit(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        load_avg_before_each=loads,
        data=(
            "EEGBCI S001 runs 6/10/14, -0.5-3.49 s, 100 Hz, 4-40 Hz, "
            f"{n} of {len(epochs)} epochs, 64 channels, 400 samples"
        ),
        model="EEGNet (models.fit, max_epochs=60, batch_size=8, lr=5e-3, seed 1)",
        val_accuracy=float(history["val_accuracy"][-1]),
        n_val=len(history["val_idx"]),
        bands=BANDS,
        repeats=args.repeats,
        rows=rows,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwritten {out}\n")
    print(
        "| grid | time_windows (s) | windows | s / epoch | steps / epoch "
        "(mean, median) | at cap | ms / step | ratio to whole |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        tw = "None" if r["time_windows"] is None else str(tuple(r["time_windows"]))
        ratio = "" if r["ratio_to_whole"] is None else f"{r['ratio_to_whole']:.2f}"
        print(
            f"| {r['grid']} | {tw} | {r['n_windows']} | {r['s_per_epoch']:.3f} | "
            f"{r['steps_mean']:.0f}, {r['steps_median']:.0f} | {r['at_cap']} | "
            f"{r['ms_per_step']:.1f} | {ratio} |"
        )


if __name__ == "__main__":
    main()
