"""How FreqMask's cost grows with channels, samples and bands; instance-level
FreqMask versus instance-level easyPEASI.

Part 1 (``--part grid``): an untrained, seeded EEGNet (cost does not depend
on training) on simulated epochs at 200 Hz, batches of ``--batch``; for each
shape the model's forward + backward and one FreqMask step are timed
interleaved (``bench_step.time_step``), medians of ``--repeats``. Varied one
at a time from SEED's 62 channels x 400 samples x 10 bands: channels (8, 19,
32, 62), samples (200, 400, 800, 1600) and bands (5, 10, 20, 50).

Part 2 (``--part instance``): the evaluation harness's datasets and cached
EEGNet (``benchmarks/harness.py``), its 24 explained held-out epochs and 10
bands: wall time of ``explain(method="freqmask")`` (defaults) and of
``explain(method="easypeasi", level="instance")`` (defaults: one noise draw
per cell, band x channel cells) on the same epochs, with each map's
instance-level removal-game gap. Usage::

    python benchmarks/bench_scaling.py --threads 1 --out benchmarks/results/scaling.json
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
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.models import make_model

sys.path.insert(0, str(Path(__file__).parent))
import bench_step  # noqa: E402
import harness  # noqa: E402

CH_ALL = [
    "Fp1",
    "Fp2",
    "F7",
    "F3",
    "Fz",
    "F4",
    "F8",
    "T7",
    "C3",
    "Cz",
    "C4",
    "T8",
    "P7",
    "P3",
    "Pz",
    "P4",
    "P8",
    "O1",
    "O2",
]


def _ch_names(n_chans):
    """``n_chans`` names: 10-20 names first (C3/C4 included), then extras."""
    if n_chans <= len(CH_ALL):
        keep = ["C3", "C4"] + [c for c in CH_ALL if c not in ("C3", "C4")]
        return keep[:n_chans]
    return CH_ALL + [f"EEG{i:03d}" for i in range(n_chans - len(CH_ALL))]


def grid_part(args):
    base = dict(n_chans=62, n_times=400, bands=10)
    shapes = [dict(base, n_chans=c) for c in (8, 19, 32, 62)]
    shapes += [dict(base, n_times=t) for t in (200, 800, 1600)]
    shapes += [dict(base, bands=b) for b in (5, 20, 50)]
    rows = []
    for shape in shapes:
        epochs, _ = make_epochs(
            n_subjects=2,
            n_epochs_per_class=args.batch // 4,
            sfreq=200.0,
            n_times=shape["n_times"],
            ch_names=_ch_names(shape["n_chans"]),
            random_state=0,
            verbose=False,
        )
        epochs.set_montage(None)
        torch.manual_seed(0)
        model = make_model(
            "eegnet",
            n_chans=shape["n_chans"],
            n_outputs=2,
            n_times=shape["n_times"],
            sfreq=200.0,
        )
        t = bench_step.time_step(
            model, epochs[: args.batch], shape["bands"], args.repeats, extras=False
        )
        row = dict(
            shape,
            n_freqs=shape["n_times"] // 2 + 1,
            fwd_bwd_ms_per_epoch=1e3 * float(np.median(t["fwd_bwd"])) / args.batch,
            step_ms_per_epoch=1e3 * float(np.median(t["step"])) / args.batch,
            ratio=float(np.median(t["step"] / t["fwd_bwd"])),
        )
        rows.append(row)
        print(
            f"| {row['n_chans']} | {row['n_times']} | {row['n_freqs']} | "
            f"{row['bands']} | {row['fwd_bwd_ms_per_epoch']:.2f} | "
            f"{row['step_ms_per_epoch']:.2f} | {row['ratio']:.2f} |",
            flush=True,
        )
    return rows


def instance_part(args):
    rows = []
    for ds in args.datasets:
        train, test, _, _ = harness.load_dataset(ds)
        ep = test[harness.explained_subset(test, 24)]
        model, _, _ = harness.get_model(ds, "eegnet", train)
        row = dict(dataset=ds, n_epochs=len(ep))
        for key, kw in (
            ("freqmask", dict(method="freqmask")),
            ("easypeasi", dict(method="easypeasi", level="instance")),
        ):
            t0 = time.perf_counter()
            sal = mfm.explain(
                ep,
                model,
                bands=harness.BANDS,
                reference=train,
                random_state=0,
                verbose=False,
                **kw,
            )
            row[f"{key}_s"] = time.perf_counter() - t0
            inst = mfm.evaluate_removal(ep, model, sal, level="instance", verbose=False)
            row[f"{key}_gap_instance"] = float(inst.attrs["gap"])
        rows.append(row)
        print(
            f"| {ds} | {len(ep)} | {row['freqmask_s']:.1f} | "
            f"{row['easypeasi_s']:.1f} | {row['freqmask_s'] / row['easypeasi_s']:.2f} "
            f"| {row['freqmask_gap_instance']:.2f} | "
            f"{row['easypeasi_gap_instance']:.2f} |",
            flush=True,
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", default=["grid", "instance"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--datasets", nargs="+", default=list(harness.DATASETS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mne.set_log_level("ERROR")
    t0 = time.perf_counter()
    out = dict()
    if "grid" in args.part:
        out["grid"] = grid_part(args)
    if "instance" in args.part:
        out["instance"] = instance_part(args)
    out["meta"] = dict(
        date=time.strftime("%Y-%m-%d %H:%M"),
        torch=torch.__version__,
        threads=args.threads,
        batch=args.batch,
        repeats=args.repeats,
        wall_min=(time.perf_counter() - t0) / 60,
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
