"""Which time-resolved map is truest? Every short-time method on the burst (issue #17).

Usage (about 10 minutes on 2 cores)::

    python benchmarks/bench_tfr_faithfulness.py \
        --out benchmarks/results/tfr_faithfulness.csv

The issue's simulation with a known answer in time
(:func:`mne_freqmask.datasets.simulated.make_epochs` with ``burst=dict()``):
19 channels, 2 s at 128 Hz; the class effect is a 20 Hz burst (18-22 Hz) on
C3/C4 between 0.5 and 1.0 s after onset, under a stronger class-independent
alpha on the same channels present all the time. ``--n-subjects`` subjects of
``--per-class`` epochs per class; the last ``--n-held`` subjects are held out. An EEGNet
(``models.fit``, seed 0) is trained on the others; its accuracy on the
held-out subject is reported with a bootstrap interval (a model at chance
explains nothing).

Every method of :data:`mne_freqmask.methods.SHORT_TIME_METHODS` explains the
held-out epochs on the same grid (``time_windows=(0.5, 0.25)``: 9 windows,
the canonical bands: channel x band x window cells), beside a uniform random
map, through :func:`mne_freqmask.evaluation.compare_methods`: planted-window
AUROC of the group map (:func:`~mne_freqmask.evaluation.planted_window_auroc`),
and the areas of the deletion curves (true-class probability; MoRF and LeRF;
each epoch's own map and the group map; zero and reference removal, the
training epochs as the reference) with bootstrap intervals over the epochs and
the paired difference to the random map. FreqMask gets the training epochs
as its donors, as a user would give them. FreqRISE runs at 1,000 masks (its
published default is 3,000) to fit the machine, with its grid masks and with
the published two-dimensional generator (6 x 6 cells: the reflect padding
needs fewer than the 9 windows).
"""

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import mne_freqmask as mfm
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.evaluation import (
    bootstrap_ci,
    compare_methods,
    paired_comparison,
    planted_window_auroc,
)
from mne_freqmask.models import fit

HERE = Path(__file__).resolve().parent
TW = (0.5, 0.25)


def _methods(train, n_masks):
    return {
        "freqmask": dict(method="freqmask", reference=train),
        "amplitude_gradients": "amplitude_gradients",
        "integrated_gradients": "integrated_gradients",
        "freqrise": dict(method="freqrise", n_masks=n_masks),
        "freqrise_published": dict(method="freqrise", n_masks=n_masks, n_cells=6),
        "dft_lrp": "dft_lrp",
        "lrp": "lrp",
        "random": "random",
    }


def _commit():
    try:
        return subprocess.check_output(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True
        ).strip()
    except Exception:  # not a git checkout
        return "unknown"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-subjects", type=int, default=6)
    p.add_argument("--n-held", type=int, default=2)
    p.add_argument("--per-class", type=int, default=60)
    p.add_argument("--n-masks", type=int, default=1000)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(HERE / "results" / "tfr_faithfulness.csv"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"commit {_commit()}, {platform.node()}, {args.threads} threads, load "
        f"{load:.1f}, torch {torch.__version__}, mne_freqmask {mfm.__version__}"
    )
    epochs, truth = make_epochs(
        n_subjects=args.n_subjects,
        n_epochs_per_class=args.per_class,
        band=(18.0, 22.0),
        burst=dict(),
        random_state=0,
        verbose=False,
    )
    subject = epochs.metadata["subject"].to_numpy()
    first = subject.max() + 1 - args.n_held
    train, held = epochs[subject < first], epochs[subject >= first]
    t0 = time.perf_counter()
    model, history = fit(train, "eegnet", max_epochs=40, random_state=0, verbose=False)
    with torch.no_grad():
        pred = model(torch.as_tensor(held.get_data(), dtype=torch.float32)).argmax(1)
    y = held.events[:, 2] - 1
    correct = (pred.numpy() == y).astype(float)
    acc, lo, hi = bootstrap_ci(correct[:, None], n_boot=args.n_boot, random_state=0)
    print(
        f"EEGNet trained on {len(train)} epochs ({time.perf_counter() - t0:.0f} s); "
        f"held-out subjects {first}-{subject.max()}: {len(held)} epochs, "
        f"accuracy {acc[0]:.3f} [{lo[0]:.3f}, {hi[0]:.3f}] (chance 0.5)",
        flush=True,
    )
    rows, units, maps = [], [], {}
    # the maps (git-ignored), per data and budget: a run with other settings
    # never reads them
    cache = (
        HERE
        / "_cache"
        / (
            f"tfr_faithfulness_s{args.n_subjects}_h{args.n_held}_c{args.per_class}"
            f"_m{args.n_masks}"
        )
    )
    cache.mkdir(parents=True, exist_ok=True)
    for label, entry in _methods(train, args.n_masks).items():
        if label == "random":
            continue
        sal, seconds, passes = _explained(held, model, label, entry, cache)
        maps[label] = sal
        t0 = time.perf_counter()
        scores, per_epoch = compare_methods(
            held,
            model,
            {label: sal, "random": "random"},
            rankings=("group", "instance"),
            operators=("zero", "reference"),
            reference=train,
            truth=truth,
            explain_kw=dict(bands="canonical", time_windows=TW),
            n_boot=args.n_boot,
            return_epoch_scores=True,
            random_state=0,
            verbose=False,
        )
        keep = (scores["statistic"] == "area") & (scores["metric"] == "probability")
        s = scores[keep].assign(
            accuracy=acc[0], accuracy_low=lo[0], accuracy_high=hi[0]
        )
        s.loc[s["method"] == label, "time_s"] = seconds
        s.loc[s["method"] == label, "passes_per_epoch"] = passes
        for lev in ("group", "instance"):
            for absolute in (False, True):
                col = f"auroc_{lev}{'_abs' if absolute else ''}"
                s.loc[s["method"] == label, col] = planted_window_auroc(
                    sal, truth, level=lev, absolute=absolute
                )
        if not rows:
            rows.append(s[s["method"] == "random"])
        rows.append(s[s["method"] == label])
        keep = per_epoch["metric"] == "probability"
        units.append(per_epoch[keep & (per_epoch["method"] == label)])
        print(
            f"  {label}: explained in {seconds:.0f} s, scored in "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    table = pd.concat(rows, ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    pairs = paired_to(pd.concat(units, ignore_index=True), "freqmask", args.n_boot)
    pairs.to_csv(Path(args.out).with_suffix(".paired.csv"), index=False)
    print(f"wrote {args.out}")
    print(summary(table))
    print()
    print(paired_summary(pairs))


def _explained(held, model, label, entry, cache):
    """The map of one method (cached in ``cache``), its time and passes."""
    fname = cache / f"{label}-saltfr.h5"
    meta = cache / f"{label}-cost.json"
    if fname.is_file() and meta.is_file():
        cost = json.loads(meta.read_text())
        return mfm.read_saliency_tfr(fname), cost["seconds"], cost["passes"]
    kw = dict(method=entry) if isinstance(entry, str) else dict(entry)
    n_seen = [0]

    def count(module, inputs, output):
        n_seen[0] += len(inputs[0])

    handle = model.register_forward_hook(count)
    try:
        t0 = time.perf_counter()
        sal = mfm.explain(
            held,
            model,
            bands="canonical",
            time_windows=TW,
            random_state=0,
            verbose=False,
            **kw,
        )
        seconds = time.perf_counter() - t0
    finally:
        handle.remove()
    passes = n_seen[0] / len(held)
    sal.save(fname, overwrite=True)
    meta.write_text(json.dumps(dict(seconds=seconds, passes=passes)))
    return sal, seconds, passes


def paired_to(units, base, n_boot):
    """Paired bootstrap of ``base`` against every other method, per curve."""
    rows = []
    keys = ["ranking", "operator", "order"]
    for key, sub in units.groupby(keys):
        wide = sub.pivot(index="unit", columns="method", values="area")
        for other in wide.columns:
            if other == base:
                continue
            res = paired_comparison(
                wide[base].to_numpy(), wide[other].to_numpy(), n_boot=n_boot
            )
            rows.append(dict(zip(keys, key, strict=True), method=other, **res))
    return pd.DataFrame(rows)


def paired_summary(pairs):
    """FreqMask minus each method: MoRF (lower is better) and LeRF (higher)."""
    out = [
        "| FreqMask minus | MoRF ref. | LeRF ref. | MoRF zero | LeRF zero |",
        "|---|---|---|---|---|",
    ]
    inst = pairs[pairs["ranking"] == "instance"]
    for other, sub in inst.groupby("method", sort=False):
        cells = []
        for op in ("reference", "zero"):
            for order in ("MoRF", "LeRF"):
                r = sub[(sub["operator"] == op) & (sub["order"] == order)].iloc[0]
                good = r["ci_high"] < 0 if order == "MoRF" else r["ci_low"] > 0
                bad = r["ci_low"] > 0 if order == "MoRF" else r["ci_high"] < 0
                word = "win" if good else "loss" if bad else "tie"
                cells.append(
                    f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, "
                    f"{r['ci_high']:+.3f}] {word}"
                )
        out.append(f"| {other} | " + " | ".join(cells[:1] + cells[1:]) + " |")
    return "\n".join(out)


def summary(table):
    """A markdown table: one row per method, the instance-level areas."""
    head = (
        "| method | AUROC group (abs.) | AUROC per epoch (abs.) | s / epoch "
        "| passes / epoch "
        "| MoRF ref. (diff. to random) | LeRF ref. | MoRF zero | LeRF zero "
        "| group MoRF ref. |\n|---|--:|--:|--:|--:|---|---|---|---|---|"
    )
    out = [head]
    n = int(table["n_epochs"].iloc[0])
    for label, sub in table.groupby("method", sort=False):

        def cell(ranking, operator, order, sub=sub, label=label):
            r = sub[
                (sub["ranking"] == ranking)
                & (sub["operator"] == operator)
                & (sub["order"] == order)
            ].iloc[0]
            txt = f"{r['score']:.3f}"
            if label != "random" and np.isfinite(r.get("difference", np.nan)):
                txt += (
                    f" ({r['difference']:+.3f} [{r['diff_ci_low']:+.3f}, "
                    f"{r['diff_ci_high']:+.3f}])"
                )
            return txt

        r0 = sub.iloc[0]
        if label == "random":  # compare_methods' AUROC of the random map
            au = f"– | {r0['auroc']:.3f}"
        else:
            au = (
                f"{r0['auroc_group']:.3f} ({r0['auroc_group_abs']:.3f}) "
                f"| {r0['auroc_instance']:.3f} ({r0['auroc_instance_abs']:.3f})"
            )
        out.append(
            f"| {label} | {au} | {r0['time_s'] / n:.3f} "
            f"| {r0['passes_per_epoch']:.0f} "
            f"| {cell('instance', 'reference', 'MoRF')} "
            f"| {cell('instance', 'reference', 'LeRF')} "
            f"| {cell('instance', 'zero', 'MoRF')} "
            f"| {cell('instance', 'zero', 'LeRF')} "
            f"| {cell('group', 'reference', 'MoRF')} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
