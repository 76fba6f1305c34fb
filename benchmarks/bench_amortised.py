"""Amortised FreqMask against per-epoch FreqMask on the faithfulness benchmark.

On ``bench_faithfulness.load_powered("simulated_hard")`` (EEGNet from the
harness's cache) this script

1. trains a :class:`mne_freqmask.FreqMaskExplainer` on the training epochs
   (``amortised``) and a second one on the training epochs of every subject
   but ``--loso-subject`` (``amortised_loso``: that subject's epochs were
   never seen by its explainer);
2. explains ``--n-explain`` held-out epochs (a fixed random draw of the test
   set, as in ``bench_stopping.py``) with per-epoch FreqMask (the default
   configuration, the training epochs as the reference), with both
   explainers and with a random map;
3. scores the maps with ``evaluation.compare_methods``: MoRF / LeRF areas of
   the true-class probability under reference removal (the training epochs
   as the reference), each epoch ranked by its own map, with bootstrap
   intervals, the planted-cell AUROC, and paired differences
   (``paired_comparison``) of each explainer with per-epoch FreqMask, on all
   explained epochs and on those of the left-out subject;
4. reports the explain time per epoch (the explainer's best of
   ``--repeats`` runs) and the training time.

"MoRF drop" is the true-class probability on the intact epochs minus the
MoRF area (how far removing the cells ranked first pulls the prediction
down); the goal of issue #16 is an amortised drop within 10 % of per-epoch
FreqMask's and an explanation at least 50 times faster per epoch.

Usage (the run of BENCHMARKS.md, one thread)::

    python benchmarks/bench_amortised.py

``--gap`` (issue #29) scores instead, on the 40 epochs of ``bench_gap.py``
(its simulations, model, cached maps and limit, and its scoring, reused), the
explainer trained with ``objective="expected_gradients"`` (``amortised_eg``)
and with the default objective (``amortised``) against the per-epoch
expected-gradients map (``freqmask_eg``, 100 draws) and the default: the MoRF
area under reference removal, the share of the gap to the limit, paired
differences, training passes and passes per epoch at inference::

    nice python benchmarks/bench_amortised.py --gap --dataset interaction
    nice python benchmarks/bench_amortised.py --gap --dataset simulated_hard
    nice python benchmarks/bench_amortised.py --gap --dataset eegmat --n-explain 32

Other datasets than the two simulations are ``bench_realdata``'s (its model
cache; the limit computed here, once).

Models come from the harness's cache (``benchmarks/_cache``; trained on
first use).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from bench_faithfulness import load_powered  # noqa: E402

import mne_freqmask as mfm  # noqa: E402
from mne_freqmask.evaluation import (  # noqa: E402
    compare_methods,
    ground_truth_scores,
    paired_comparison,
)

OUT = Path(__file__).resolve().parent / "results" / "amortised.json"


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="simulated_hard")
    p.add_argument("--model", default="eegnet")
    p.add_argument("--n-explain", type=int, default=100)
    p.add_argument("--loso-subject", type=int, default=3)
    p.add_argument("--n-epochs", type=int, default=100, help="explainer passes")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--gap", action="store_true", help="issue #29's comparison")
    return p


def _fit(train, model, args):
    t0 = time.perf_counter()
    exp = mfm.FreqMaskExplainer().fit(
        train,
        model,
        reference=train,
        bands=harness.BANDS,
        n_epochs=args.n_epochs,
        random_state=0,
        verbose=False,
    )
    return exp, time.perf_counter() - t0


def _timed_explain(exp, held, repeats):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        sal = exp.explain(held, verbose=False)
        best = min(best, time.perf_counter() - t0)
    return sal, best


def _area(units, method, order, sel=None):
    r = units[
        (units["method"] == method)
        & (units["order"] == order)
        & (units["metric"] == "probability")
    ].sort_values("unit")
    a = r["area"].to_numpy()
    return a if sel is None else a[sel]


def _gap_explainer(objective, train, model, out_dir, tag, n_epochs):
    """The explainer of ``objective`` (cached), training seconds and passes."""
    from mne_freqmask.evaluation.compare import _count_passes

    fname = out_dir / f"{tag}-explainer-{objective}.pt"
    meta = fname.with_suffix(".json")
    if fname.is_file() and meta.is_file():
        return mfm.read_freqmask_explainer(fname), *json.loads(meta.read_text())
    t0 = time.perf_counter()
    with _count_passes(model) as count:
        exp = mfm.FreqMaskExplainer(objective=objective).fit(
            train,
            model,
            reference=train,
            bands=harness.BANDS,
            n_epochs=n_epochs,
            random_state=0,
            verbose=False,
        )
    sec = time.perf_counter() - t0
    exp.save(fname, overwrite=True)
    meta.write_text(json.dumps([sec, count[0]]))
    return exp, sec, count[0]


def _real(args, out_dir):
    """A real model of ``bench_realdata`` (its cache), its explained epochs
    and the MoRF limit (reference removal; computed once and cached)."""
    import bench_gap
    import bench_realdata as br

    train, test, key = br.load(args.dataset, "hands", "")
    model = br.get_model(key, args.model, train)
    held = test[harness.explained_subset(test, args.n_explain)]
    tag = f"realdata-{key}-{args.model}-{len(held)}"
    # harness.BANDS is 10, bench_gap's limit's bands
    lim, info = bench_gap.cached_limit(out_dir / f"{tag}-limit.h5", held, model, train)
    print(
        f"{key} / {args.model}: {len(held)} of {len(test)} held-out epochs, "
        f"{len(train)} training epochs; limit {info['passes']:.0f} passes/epoch "
        f"({info['seconds']:.0f} s when computed)",
        flush=True,
    )
    return held, train, model, lim, info["passes"], tag


def gap(args):
    """Issue #29: the amortised maps on bench_gap's epochs, limit and scoring."""
    import bench_gap as bg
    import bench_limit as bl

    out_dir = bg.harness.CACHE / "gap"
    if args.dataset in ("interaction", "simulated_hard"):
        n = 40  # bench_gap's explained epochs (its cached maps and limit)
        held, train, truth, model, lim, lim_passes = bg.setup(args.dataset, n, out_dir)
        tag = f"{args.dataset}-{n}"
    else:
        held, train, model, lim, lim_passes, tag = _real(args, out_dir)
        truth = None
    labels = ["freqmask", "random", "freqmask_eg", "amplitude_gradients"]
    maps, cost = bg.maps_of(labels, held, model, train, out_dir, tag)
    train_cost = {}
    for label, objective in (
        ("amortised_eg", "expected_gradients"),
        ("amortised", "preserve"),
    ):
        exp, sec, passes = _gap_explainer(
            objective, train, model, out_dir, tag, args.n_epochs
        )
        sal, ex_s = _timed_explain(exp, held, args.repeats)
        maps[label], cost[label] = sal, (ex_s, 0.0)  # the model is not called
        train_cost[label] = dict(
            seconds=sec,
            passes=passes,
            training_passes=exp.history["n_epochs"],
            best_pass=exp.history["best_epoch"] + 1,
            passes_per_training_epoch=passes / len(train),
            explain_ms_per_epoch=1e3 * ex_s / len(held),
        )
        print(f"  {label}: {train_cost[label]}", flush=True)
    areas, auroc = bg.score(held, model, train, truth, maps, lim, args.n_boot)
    print(f"\n{args.dataset}, morf, reference removal, {len(held)} epochs")
    print(bg.table(areas, cost, lim_passes, "morf", auroc, n_boot=2000))
    r, lim_a, eg = areas["random"], areas["limit"], areas["freqmask_eg"]
    res = dict(
        dataset=args.dataset,
        model=args.model,
        n_explain=len(held),
        n_train=len(train),
        limit_passes_per_epoch=lim_passes,
        training=train_cost,
        methods={},
    )
    for label, a in areas.items():
        share = bl._ratio_ci(r - a, r - lim_a, 2000)
        row = dict(
            morf_area=float(a.mean()),
            share_of_gap=[float(v) for v in share],
            passes_per_epoch=float(lim_passes if label == "limit" else cost[label][1]),
            auroc=float(auroc.get(label, np.nan)),
        )
        if label != "freqmask_eg":  # share points and area against the EG map
            pc = paired_comparison(a, eg, n_boot=2000, random_state=0)
            row["area_minus_freqmask_eg"] = [
                float(pc[k]) for k in ("difference", "ci_low", "ci_high")
            ]
            row["share_minus_freqmask_eg"] = [
                float(v) for v in bl._ratio_ci(eg - a, r - lim_a, 2000)
            ]
            row["area_ratio_to_freqmask_eg"] = float(a.mean() / eg.mean())
        res["methods"][label] = row
        if label.startswith("amortised"):
            d, s_ = row["area_minus_freqmask_eg"], row["share_minus_freqmask_eg"]
            ratio = row["area_ratio_to_freqmask_eg"]
            print(
                f"{label} - freqmask_eg: area {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"
                f", share {100 * s_[0]:+.0f} points [{100 * s_[1]:+.0f}, "
                f"{100 * s_[2]:+.0f}], area ratio {ratio:.2f}"
            )
    out = Path(args.out).with_name(f"amortised_gap_{args.dataset}.json")
    out.write_text(json.dumps(res, indent=1))


def main(argv=None):
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.gap:
        return gap(args)
    train, test, truth, _, desc = load_powered(args.dataset)
    held = test[harness.explained_subset(test, args.n_explain)]
    model, _, _ = harness.get_model(args.dataset, args.model, train)
    subj = train.metadata["subject"].to_numpy()
    loso = held.metadata["subject"].to_numpy() == args.loso_subject
    print(f"{args.dataset} / {args.model}: {len(held)} held-out epochs; {desc}")

    exp, fit_s = _fit(train, model, args)
    exp_loso, fit_loso_s = _fit(train[subj != args.loso_subject], model, args)
    print(f"explainer trained in {fit_s:.0f} s ({exp.history['n_epochs']} passes)")

    t0 = time.perf_counter()
    sal_pe = mfm.explain(
        held,
        model,
        reference=train,
        bands=harness.BANDS,
        random_state=0,
        verbose=False,
    )
    pe_s = time.perf_counter() - t0
    sal_am, am_s = _timed_explain(exp, held, args.repeats)
    sal_loso, loso_s = _timed_explain(exp_loso, held, args.repeats)
    print(f"per-epoch FreqMask {pe_s:.1f} s, amortised {am_s * 1e3:.1f} ms")

    maps = dict(freqmask=sal_pe, amortised=sal_am, amortised_loso=sal_loso)
    scores, units = compare_methods(
        held,
        model,
        dict(maps, random="random"),
        rankings=("instance",),
        operators=("reference",),
        reference=train,
        truth=truth,
        n_boot=args.n_boot,
        return_epoch_scores=True,
        random_state=0,
        verbose=False,
    )
    prob = scores[scores["metric"] == "probability"]
    orig = float(
        prob[(prob["statistic"] == "curve") & (prob["fraction"] == 0.0)]["score"].iloc[
            0
        ]
    )
    area = prob[prob["statistic"] == "area"]
    acc = scores[
        (scores["metric"] == "accuracy")
        & (scores["statistic"] == "curve")
        & (scores["fraction"] == 0.0)
        & (scores["method"] == "random")
    ].iloc[0]
    res = dict(
        accuracy=[float(acc["score"]), float(acc["ci_low"]), float(acc["ci_high"])],
        dataset=args.dataset,
        model=args.model,
        n_explain=len(held),
        n_train=len(train),
        n_loso_epochs=int(loso.sum()),
        loso_subject=args.loso_subject,
        original_probability=orig,
        train_s=dict(amortised=fit_s, amortised_loso=fit_loso_s),
        train_passes=dict(
            amortised=exp.history["n_epochs"],
            amortised_loso=exp_loso.history["n_epochs"],
        ),
        val_loss=dict(
            amortised=exp.history["val_loss"],
            amortised_loso=exp_loso.history["val_loss"],
        ),
        explain_s_per_epoch=dict(
            freqmask=pe_s / len(held),
            amortised=am_s / len(held),
            amortised_loso=loso_s / len(held),
        ),
        methods={},
    )
    for label in list(maps) + ["random"]:
        row = {}
        for order in ("MoRF", "LeRF"):
            r = area[(area["method"] == label) & (area["order"] == order)].iloc[0]
            row[order] = [float(r["score"]), float(r["ci_low"]), float(r["ci_high"])]
        row["morf_drop"] = orig - row["MoRF"][0]
        if label in maps and truth is not None:
            row["auroc"] = float(
                ground_truth_scores(maps[label], truth, level="instance")["auroc"]
            )
            row["auroc_loso"] = float(
                ground_truth_scores(
                    maps[label][np.flatnonzero(loso)], truth, level="instance"
                )["auroc"]
            )
        if label.startswith("amortised"):
            for order in ("MoRF", "LeRF"):
                for name, sel in (("all", None), ("loso", loso)):
                    pc = paired_comparison(
                        _area(units, label, order, sel),
                        _area(units, "freqmask", order, sel),
                        n_boot=args.n_boot,
                    )
                    row[f"{order}_vs_freqmask_{name}"] = [
                        float(pc["difference"]),
                        float(pc["ci_low"]),
                        float(pc["ci_high"]),
                    ]
            row["drop_ratio"] = (
                row["morf_drop"] / res["methods"]["freqmask"]["morf_drop"]
            )
            row["speedup"] = pe_s / (am_s if label == "amortised" else loso_s)
        res["methods"][label] = row
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(report(res))


def _ci(v):
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def _d(v):
    return f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]"


def report(res):
    """Markdown table of a result dict (see BENCHMARKS.md)."""
    per = res["explain_s_per_epoch"]
    lines = [
        f"**{res['dataset']}, {res['model']}** ({res['n_explain']} held-out "
        f"epochs, of which {res['n_loso_epochs']} of subject "
        f"{res['loso_subject']}; model accuracy on them "
        + (_ci(res["accuracy"]) if "accuracy" in res else "not recorded")
        + "; true-class probability on the intact epochs "
        f"{res['original_probability']:.3f})",
        "",
        "| map | explain time / epoch | speed-up | train time (passes) "
        "| ref. MoRF ↓ | MoRF drop (ratio) | ref. LeRF ↑ | MoRF − per-epoch "
        "| LeRF − per-epoch | MoRF − per-epoch, subject "
        f"{res['loso_subject']} | AUROC (subject {res['loso_subject']}) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in res["methods"].items():
        am = label.startswith("amortised")
        t = per.get(label)
        cells = [
            label,
            "—" if t is None else f"{t * 1e3:.3g} ms",
            f"{row['speedup']:.0f}x" if am else "—",
            f"{res['train_s'][label]:.0f} s ({res['train_passes'][label]})"
            if am
            else "—",
            _ci(row["MoRF"]),
            f"{row['morf_drop']:.3f}" + (f" ({row['drop_ratio']:.2f})" if am else ""),
            _ci(row["LeRF"]),
            _d(row["MoRF_vs_freqmask_all"]) if am else "—",
            _d(row["LeRF_vs_freqmask_all"]) if am else "—",
            _d(row["MoRF_vs_freqmask_loso"]) if am else "—",
            f"{row['auroc']:.3f} ({row['auroc_loso']:.3f})" if "auroc" in row else "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
