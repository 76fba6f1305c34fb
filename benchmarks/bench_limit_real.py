"""The limit of the deletion curves on the real-data models (issue #29).

``bench_limit.py``'s run and report (:func:`bench_limit.score`,
:func:`bench_limit.report`) on the models of ``bench_realdata.py``, loaded
from ``benchmarks/_cache/models/realdata-*`` (not retrained) with that
script's data and split (:func:`bench_realdata.load`). The explained epochs
are ``harness.explained_subset(test, n_explain)``; the training windows are
the reference (the donors of the removal, of the limit's search and of the
two FreqMask maps). Methods: the default (FreqMask, ``reference=train``),
``objective="expected_gradients"`` (100 draws, ``reference=train``),
amplitude gradients, integrated gradients, LRP and a random map; the limit
with every method's map as a rival (``--rivals``). Paired differences are
reported as ``eg − method`` and ``freqmask − method``.

Usage (one run per model; ``--report`` re-prints a finished run)::

    nice python benchmarks/bench_limit_real.py --dataset eegmat --model eegnet \
        --n-explain 32 --rivals --out-dir benchmarks/_cache/limit_real
"""

import argparse
import json
import sys
import time
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_limit as bl  # noqa: E402
import bench_realdata as br  # noqa: E402
import harness  # noqa: E402


def methods(train, target_true=False):
    """The compared maps (labels of the report) for ``train`` as reference;
    ``target_true``: the two FreqMask maps also with ``target="true"`` (the
    class the curves score) as ``freqmask_true`` and ``eg_true``."""
    out = {
        "freqmask": dict(method="freqmask", reference=train),  # the default
        "eg": dict(
            method="freqmask",
            objective="expected_gradients",
            n_steps=100,
            reference=train,
        ),
        "amplitude_gradients": "amplitude_gradients",
        "integrated_gradients": "integrated_gradients",
        "lrp": "lrp",
        "random": "random",
    }
    if target_true:
        out["freqmask_true"] = dict(out["freqmask"], target="true")
        out["eg_true"] = dict(out["eg"], target="true")
    return out


def save(ds, out_dir, results):
    """The run's areas (summary and per epoch) as one small JSON file."""
    scores = pd.read_csv(out_dir / f"{ds}.csv")
    units = pd.read_csv(out_dir / f"{ds}.units.csv")
    meta = json.loads((out_dir / f"{ds}.json").read_text())
    scores = scores[scores["statistic"] == "area"].dropna(axis=1, how="all")
    units = units[units["metric"] == "probability"]
    per_epoch = {
        f"{m}|{op}|{order}": g.sort_values("unit")["area"].round(5).tolist()
        for (m, op, order), g in units.groupby(["method", "operator", "order"])
    }
    out = dict(meta=meta, areas=scores.to_dict("records"), per_epoch=per_epoch)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"limit_{ds}.json").write_text(json.dumps(out, indent=0))


def summary(keys, results, n_boot=2000, suffix=""):
    """Share of the reference MoRF gap and ``eg − freqmask`` per model, on all
    explained epochs, on those the model classifies correctly and on the
    others, then pooled
    over ``keys`` (``(dataset, task, model)``; each epoch of each model one
    unit of the paired bootstrap); ``suffix``: of the runs' names (e.g.
    ``"-explained"``)."""
    from mne_freqmask._inputs import epochs_labels
    from mne_freqmask.evaluation.stats import paired_comparison

    rows, pooled = [], {}
    for dataset, task, name in keys:
        train, test, key = br.load(dataset, task, "")
        ds = f"realdata-{key}-{name}{suffix}"
        res = json.loads((results / f"limit_{ds}.json").read_text())
        held = test[harness.explained_subset(test, res["meta"]["n_explained"])]
        model = br.get_model(key, name, train)
        with torch.no_grad():
            x = torch.as_tensor(held.get_data(), dtype=torch.float32)
            correct = model(x).argmax(-1).numpy() == epochs_labels(held)
        subsets = (("all", slice(None)), ("correct", correct), ("wrong", ~correct))
        for subset, keep in subsets:
            a = {
                m: np.asarray(res["per_epoch"][f"{m}|reference|MoRF"])[keep]
                for m in ("freqmask", "eg", "amplitude_gradients", "random", "limit")
            }
            for m, v in a.items():
                pooled.setdefault(subset, {}).setdefault(m, []).append(v)
            rows.append(_summary_row(ds, subset, a, n_boot, paired_comparison))
    for subset, a in pooled.items():
        a = {m: np.concatenate(v) for m, v in a.items()}
        rows.append(_summary_row("pooled", subset, a, n_boot, paired_comparison))
    head = (
        "| model | epochs | n | default share [CI] | eg share [CI] | "
        "amplitude gradients share [CI] | eg − default [CI] |"
    )
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *rows])


def _summary_row(ds, subset, a, n_boot, paired_comparison):
    gap = a["random"] - a["limit"]
    cells = []
    for m in ("freqmask", "eg", "amplitude_gradients"):
        share, lo, hi = bl._ratio_ci(a["random"] - a[m], gap, n_boot)
        cells.append(f"{100 * share:.0f} % [{100 * lo:.0f}, {100 * hi:.0f}]")
    d = paired_comparison(a["eg"], a["freqmask"], n_boot=n_boot, random_state=0)
    cells.append(f"{d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")
    return f"| {ds} | {subset} | {len(gap)} | " + " | ".join(cells) + " |"


def _accuracy(held, model, n_boot=2000):
    """Accuracy on the labels of ``held``, with its bootstrap CI."""
    from mne_freqmask._inputs import epochs_labels
    from mne_freqmask.evaluation.stats import bootstrap_ci

    with torch.no_grad():
        x = torch.as_tensor(held.get_data(), dtype=torch.float32)
        correct = (model(x).argmax(-1).numpy() == epochs_labels(held)).astype(float)
    mean, low, high = bootstrap_ci(correct, n_boot=n_boot, random_state=0)
    return [float(mean), float(low), float(high)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["eegmat", "eegbci"])
    p.add_argument("--task", default="hands", choices=list(br.TASKS))
    p.add_argument("--model", choices=["eegnet", "shallowfbcspnet"])
    p.add_argument("--n-explain", type=int, default=32)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--out-dir", default=str(harness.CACHE / "limit_real"))
    p.add_argument("--operators", nargs="+", default=["reference", "zero"])
    p.add_argument("--orders", nargs="+", default=["morf"])
    p.add_argument("--rivals", action="store_true")
    p.add_argument(
        "--fractions",
        nargs="+",
        type=float,
        default=None,
        help="deletion fractions of the curves and of the limit's search "
        "(default: compare_methods' 0, 5, 10, 20, 30, 50 %%)",
    )
    p.add_argument(
        "--target-true",
        action="store_true",
        help='also the two FreqMask maps with target="true" (results: '
        '"-target-true" appended to the run\'s name)',
    )
    p.add_argument(
        "--y",
        default=None,
        choices=["explained"],
        help='score every map on the class it explains (y="explained": the '
        "prediction for these maps of target=None) and search the limit for "
        'it (results: "-explained" appended to the run\'s name)',
    )
    p.add_argument("--report", action="store_true")
    p.add_argument("--results", default=str(harness.ROOT / "benchmarks" / "results"))
    p.add_argument(
        "--summary",
        nargs="+",
        metavar="DATASET:TASK:MODEL",
        help="print the share / eg − default summary of finished runs (all and "
        "correctly classified epochs, pooled), e.g. eegmat:hands:eegnet",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    mne.set_log_level("ERROR")
    if args.summary:
        keys = [tuple(k.split(":")) for k in args.summary]
        suffix = "-explained" if args.y else ""
        print(summary(keys, Path(args.results), suffix=suffix))
        return
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, test, key = br.load(args.dataset, args.task, "")
    ds = f"realdata-{key}-{args.model}" + ("-target-true" if args.target_true else "")
    ds += "-explained" if args.y else ""
    if not args.report:
        fname = harness.CACHE / "models" / f"realdata-{key}-{args.model}.pt"
        if not fname.is_file():  # this benchmark never trains
            raise FileNotFoundError(f"{fname} is missing; run bench_realdata.py first.")
        model = br.get_model(key, args.model, train)
        held = test[harness.explained_subset(test, args.n_explain)]
        desc = (
            f"{key}, {len(held[0].ch_names)} channels, "
            f"{held.times[-1] - held.times[0] + 1 / held.info['sfreq']:.0f} s at "
            f"{held.info['sfreq']:.0f} Hz, bench_realdata's split"
        )
        meta = dict(
            desc=desc,
            n_test=len(test),
            n_train=len(train),
            model=harness.MODEL_LABELS[args.model],
            command=" ".join(["bench_limit_real.py", *(argv or sys.argv[1:])]),
            date=time.strftime("%Y-%m-%d %H:%M"),
        )
        if args.y:  # the curves score the prediction: the accuracy on the labels
            meta["accuracy"] = _accuracy(held, model)
        t0 = time.perf_counter()
        maps = methods(train, args.target_true)
        bl.score(ds, held, train, model, None, meta, args, out_dir, maps)
        print(f"{ds}: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    print(bl.report(ds, out_dir, refs=("eg", "freqmask")))
    save(ds, out_dir, Path(args.results))


if __name__ == "__main__":
    main()
