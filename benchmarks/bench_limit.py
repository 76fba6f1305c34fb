"""The limit of the deletion curves, and each method's share of the gap to it.

For each dataset (``--datasets``) and EEGNet, ``--n-explain`` held-out epochs
are explained by each method of ``METHODS`` (timed, forward passes counted)
and by :func:`mne_freqmask.evaluation.deletion_limit` (the block-greedy
reference ranking, searched for MoRF and for LeRF under each removal:
``"zero"`` and ``"reference"`` with 4 donor draws of its own), and by the
guided searches (``deletion_limit(..., n_candidates=10)`` guided by a
method's map, reference removal with one draw). Every map is then scored by
``evaluation.compare_methods`` (instance ranking, MoRF and LeRF at 0, 5, 10,
20, 30 and 50 % of the cells, true-class probability, the training epochs
as the reference; one seed, so every map is scored with the same donors and
every score is paired). The report gives, per removal, each method's area,
its share of the gap ``(random - method) / (random - limit)`` (MoRF; LeRF
with the signs turned) with a bootstrap CI over the epochs, the paired
difference default minus method, passes per epoch, and the model's accuracy
with its CI on the explained epochs.

Usage (one run per table of BENCHMARKS.md)::

    nice python benchmarks/bench_limit.py --datasets simulated_hard --n-explain 60
    nice python benchmarks/bench_limit.py --datasets interaction --n-explain 60
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_faithfulness as bf  # noqa: E402
import harness  # noqa: E402

from mne_freqmask.evaluation import compare_methods, deletion_limit  # noqa: E402
from mne_freqmask.evaluation.compare import (  # noqa: E402
    DEFAULT_FRACTIONS,
    _count_passes,
    _saliency,
)
from mne_freqmask.evaluation.stats import paired_comparison  # noqa: E402

METHODS = {
    "freqmask": "freqmask",  # the default
    "amplitude_gradients": "amplitude_gradients",
    "integrated_gradients": "integrated_gradients",
    "lrp": "lrp",
    "random": "random",
}
DEFAULT = "freqmask"
#: guided searches: label -> the method whose map guides the search
GUIDED = {
    "freqmask+search": "freqmask",
    "amplitude_gradients+search": "amplitude_gradients",
}
N_CANDIDATES = 10


def load(name):
    """``(train, test, truth, description)``."""
    if name == "interaction":
        from mne_freqmask.datasets.simulated import make_epochs

        epochs, truth = make_epochs(
            n_subjects=4,
            n_epochs_per_class=100,
            effect=2.0,
            interaction=dict(),
            distractor=dict(channels=("C3", "C4", "O1", "O2", "Pz"), band=(13.0, 19.0)),
            random_state=0,
            verbose=False,
        )
        rng = np.random.default_rng(0)
        test = np.zeros(len(epochs), bool)
        for _, idx in epochs.metadata.groupby(["subject", "label"]).indices.items():
            test[rng.permutation(idx)[: int(0.4 * len(idx))]] = True
        desc = (
            "simulated interaction: class high = beta (20-25 Hz) on C3 AND alpha "
            "(7-12 Hz) on C4, class low = only one of the two (the other at a "
            "third), under a class-independent 13-19 Hz rhythm 3x as strong on "
            "C3/C4/O1/O2/Pz; 19 channels, 2 s at 128 Hz, 10 bands; 40 % of each "
            "subject's epochs held out"
        )
        return epochs[~test], epochs[test], truth, desc
    train, test, truth, _, desc = bf.load_powered(name)
    return train, test, truth, desc


def _ratio_ci(num, den, n_boot, seed=0):
    """Ratio of means and its percentile bootstrap CI (paired resampling)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), (n_boot, len(num)))
    boot = num[idx].mean(1) / den[idx].mean(1)
    return num.mean() / den.mean(), *np.percentile(boot, [2.5, 97.5])


def score_curves(
    held, model, entries, op, order, train, truth, n_boot, fractions, y=None
):
    """``compare_methods``' scores and per-epoch scores of the maps ``entries``
    (instance ranking, one removal and order, the training epochs as the
    reference, seed 0: every map sees the same donors; ``y`` as there)."""
    return compare_methods(
        held,
        model,
        entries,
        rankings=("instance",),
        operators=(op,),
        orders=(order,),
        fractions=fractions,
        reference=train,
        truth=truth,
        y=y,
        baseline=None,
        n_boot=n_boot,
        return_epoch_scores=True,
        random_state=0,
        verbose=False,
    )


def run(ds, args, out_dir):
    train, test, truth, desc = load(ds)
    held = test[harness.explained_subset(test, args.n_explain)]
    model, _, trained = harness.get_model(ds, "eegnet", train)
    print(f"{ds}: {len(held)} of {len(test)} held-out epochs; trained now: {trained}")
    meta = dict(desc=desc, n_test=len(test), n_train=len(train), model="EEGNet")
    score(ds, held, train, model, truth, meta, args, out_dir)


def score(ds, held, train, model, truth, meta, args, out_dir, methods=None):
    """Explain ``held`` by each of ``methods`` (default ``METHODS``), search
    the limits, score every map and write ``{ds}.csv / .units.csv / .json``.

    ``methods`` maps a label to an entry of ``compare_methods`` (a method
    name or a dict of ``explain`` keywords with ``"method"``); with
    ``methods`` given, the guided searches are left out."""
    guided = GUIDED if methods is None else {}
    fractions = getattr(args, "fractions", None) or DEFAULT_FRACTIONS
    methods = METHODS if methods is None else methods
    maps, cost = {}, {}
    for label, entry in methods.items():
        sal, sec, passes = _saliency(
            label, entry, held, model, dict(bands=harness.BANDS), 0, "cpu"
        )
        maps[label], cost[label] = sal, (sec, passes)
        print(f"  {label}: {sec:.1f} s, {passes:.0f} passes/epoch", flush=True)
    limits = {}
    # y="explained" (bench_limit_real --y explained): each map scored on the
    # class it explains and the limit searched for it (a map that records it
    # as the template; without n_candidates it only gives the cells)
    y = getattr(args, "y", None)
    template = maps["random" if y is None else next(iter(methods))]
    rivals = None
    if args.rivals:  # every method's map competes with the search, per epoch
        rivals = [maps[m] for m in methods if m != "random"]
    for op in args.operators:
        for order in args.orders:
            t0 = time.perf_counter()
            lim = deletion_limit(
                held,
                model,
                template,
                order=order,
                operator=op,
                reference=train,
                n_draws=4,
                rivals=rivals,
                fractions=fractions,
                y=y,
                random_state=0,
                verbose=False,
            )
            sec = time.perf_counter() - t0
            limits[(op, order)] = lim
            cost[f"limit_{order}_{op}"] = (sec, float(lim.diagnostics["passes"].mean()))
            if rivals is not None:
                src = np.bincount(lim.diagnostics["source"], minlength=len(rivals) + 1)
                meta[f"limit_source_{order}_{op}"] = src.tolist()
            print(f"  limit {order} {op}: {sec:.1f} s", flush=True)
    for label, guide in guided.items():
        t0 = time.perf_counter()
        with _count_passes(model) as count:
            sal = deletion_limit(
                held,
                model,
                maps[guide],
                order="morf",
                operator="reference",
                reference=train,
                n_draws=1,
                n_candidates=N_CANDIDATES,
                random_state=0,
                verbose=False,
            )
        sec = time.perf_counter() - t0 + cost[guide][0]
        maps[label] = sal
        cost[label] = (sec, count[0] / len(held) + cost[guide][1])
        print(f"  {label}: {sec:.1f} s", flush=True)
    frames, units = [], []
    for op in args.operators:
        for order in args.orders:
            entries = dict(maps, limit=limits[(op, order)])
            sc, un = score_curves(
                held, model, entries, op, order, train, truth, args.n_boot, fractions, y
            )
            frames.append(sc)
            units.append(un)
    scores = pd.concat(frames, ignore_index=True).assign(dataset=ds)
    units = pd.concat(units, ignore_index=True).assign(dataset=ds)
    for label, (sec, passes) in cost.items():
        m = scores["method"] == label
        scores.loc[m, "time_s"], scores.loc[m, "passes_per_epoch"] = sec, passes
    for op, order in limits:
        m = (scores["method"] == "limit") & (scores["operator"] == op)
        m &= scores["order"] == order.replace("morf", "MoRF").replace("lerf", "LeRF")
        sec, passes = cost[f"limit_{order}_{op}"]
        scores.loc[m, "time_s"], scores.loc[m, "passes_per_epoch"] = sec, passes
    scores.to_csv(out_dir / f"{ds}.csv", index=False)
    units.to_csv(out_dir / f"{ds}.units.csv", index=False)
    meta = dict(
        meta, n_explained=len(held), rivals=bool(args.rivals), fractions=fractions
    )
    (out_dir / f"{ds}.json").write_text(json.dumps(meta))


def report(ds, out_dir, n_boot=2000, refs=(DEFAULT,)):
    """The tables of one run; a paired-difference column per label of ``refs``
    (``ref − method``)."""
    scores = pd.read_csv(out_dir / f"{ds}.csv")
    units = pd.read_csv(out_dir / f"{ds}.units.csv")
    meta = json.loads((out_dir / f"{ds}.json").read_text())
    area = scores[(scores["statistic"] == "area") & (scores["metric"] == "probability")]
    acc = scores[
        (scores["method"] == "random")
        & (scores["metric"] == "accuracy")
        & (scores["statistic"] == "curve")
        & (scores["fraction"] == 0)
    ].iloc[0]
    if "accuracy" in meta:  # curves on another class than the labels (y=)
        acc = dict(zip(("score", "ci_low", "ci_high"), meta["accuracy"], strict=True))
    out = [
        f"#### {ds}: {meta['desc']}\n",
        f"{meta.get('model', 'EEGNet')}, accuracy on the {meta['n_explained']} "
        f"explained epochs (of {meta['n_test']} held out; {meta['n_train']} "
        f"training epochs, the reference): {acc['score']:.2f} [{acc['ci_low']:.2f}, "
        f"{acc['ci_high']:.2f}].\n",
    ]
    labels = list(area["method"].drop_duplicates())
    orders = [o for o in ("MoRF", "LeRF") if o in set(area["order"])]
    for op in [o for o in ("reference", "zero") if o in set(area["operator"])]:
        head = f"| {op} removal |"
        for order in orders:
            head += f" {order} {'↓' if order == 'MoRF' else '↑'} | share of gap [CI] |"
            head += "".join(f" {ref} − method [CI] |" for ref in refs)
        head += " GT AUROC | passes/epoch |"
        out += ["", head, "|" + "---|" * (head.count("|") - 1)]
        for label in labels:
            cells = []
            for order in orders:
                sign = 1 if order == "MoRF" else -1
                sel = units[(units["operator"] == op) & (units["order"] == order)]
                sel = sel[sel["metric"] == "probability"]

                def per(m, sel=sel):
                    return (
                        sel[sel["method"] == m].sort_values("unit")["area"].to_numpy()
                    )

                a, r, lim = per(label), per("random"), per("limit")
                row = area[
                    (area["method"] == label)
                    & (area["operator"] == op)
                    & (area["order"] == order)
                ].iloc[0]
                cells.append(
                    f"{row['score']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
                )
                share, lo, hi = _ratio_ci(sign * (r - a), sign * (r - lim), n_boot)
                cells.append(f"{100 * share:.0f} % [{100 * lo:.0f}, {100 * hi:.0f}]")
                for ref in refs:
                    if label == ref:
                        cells.append("—")
                        continue
                    res = paired_comparison(per(ref), a, n_boot=n_boot, random_state=0)
                    cells.append(
                        f"{res['difference']:+.3f} [{res['ci_low']:+.3f}, "
                        f"{res['ci_high']:+.3f}]"
                    )
            gt = row.get("auroc", np.nan)
            pp = row["passes_per_epoch"]
            name = label
            if label == "limit":
                name = f"limit ({op}, searched per curve)"
            out.append(
                f"| {name} | "
                + " | ".join(cells)
                + f" | {'—' if pd.isna(gt) else f'{gt:.3f}'} | "
                + f"{'—' if pd.isna(pp) else f'{pp:.0f}'} |"
            )
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["simulated_hard", "interaction"])
    p.add_argument("--n-explain", type=int, default=60)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--out-dir", default=str(harness.CACHE / "limit"))
    p.add_argument("--operators", nargs="+", default=["zero", "reference"])
    p.add_argument("--orders", nargs="+", default=["morf", "lerf"])
    p.add_argument(
        "--rivals",
        action="store_true",
        help="the limit keeps, per epoch, the best of its search and every "
        "method's map (deletion_limit(rivals=...))",
    )
    p.add_argument("--report", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for ds in args.datasets:
        if not args.report:
            t0 = time.perf_counter()
            run(ds, args, out_dir)
            print(f"{ds}: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
        print(report(ds, out_dir))


if __name__ == "__main__":
    main()
