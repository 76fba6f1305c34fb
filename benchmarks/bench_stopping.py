"""FreqMask's stopping rules on the faithfulness benchmark, in one run.

With reference donors (the default perturbation) the loss is redrawn at
every step, so the paper's rule (stop after ``patience`` steps without a
relative improvement of ``tol``) fires late or never. ``stopping="rank"``
stops an epoch once the Spearman correlation between its cell scores now and
at half as many steps is at least ``1 - rank_tol``. This script explains the
same held-out epochs (the first ``--n-explain`` of a fixed random draw of
``bench_faithfulness.load_powered``'s test set) with

- ``rank``: the default (``stopping="rank"``, ``rank_tol=0.02``);
- ``loss``: the paper's rule on the same score and perturbation;
- ``fixed300``: no early stopping (300 steps, ``min_steps=300``);

and reports, per rule: median / mean / max steps, epochs at the cap,
seconds, MoRF and LeRF areas under zero and reference removal (the training
epochs as the reference, each epoch ranked by its own map), each paired with
the ``loss`` rule (difference and 95 % bootstrap interval), the rank
correlation of each epoch's map with its 300-step map, and the planted-cell
AUROC where the truth is known.

Usage (the run of BENCHMARKS.md, one thread)::

    python benchmarks/bench_stopping.py --datasets simulated_hard eegmat_within
    python benchmarks/bench_stopping.py --datasets eegmat_within --models tsception

Models come from the harness's cache (trained on first use).
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
    spearman,
)

RULES = {
    "rank": dict(),
    "loss": dict(stopping="loss"),
    "fixed300": dict(stopping="loss", min_steps=300),
}


def run(ds, model_name, n_explain, n_boot):
    train, test, truth, _, desc = load_powered(ds)
    model, _, _ = harness.get_model(ds, model_name, train)
    rng = np.random.default_rng(1)
    idx = np.sort(rng.choice(len(test), min(n_explain, len(test)), replace=False))
    epochs = test[idx]
    maps, rows = {}, []
    for rule, kw in RULES.items():
        t0 = time.perf_counter()
        sal = mfm.explain(epochs, model, reference=train, verbose=False, **kw)
        seconds = time.perf_counter() - t0
        maps[rule] = sal
        steps = sal.diagnostics["n_steps"]
        rows.append(
            dict(
                rule=rule,
                median_steps=float(np.median(steps)),
                mean_steps=float(steps.mean()),
                max_steps=int(steps.max()),
                capped=int((steps >= 300).sum()),
                seconds=seconds,
            )
        )
    maps["random"] = "random"
    scores, per = compare_methods(
        epochs,
        model,
        maps,
        rankings=("instance",),
        operators=("zero", "reference"),
        reference=train,
        n_boot=n_boot,
        return_epoch_scores=True,
        random_state=0,
        verbose=False,
    )
    per = per[per["metric"] == "probability"]
    acc = scores[
        (scores["method"] == "rank") & (scores["metric"] == "accuracy")
    ]  # the model's accuracy: the 0 % point of any curve
    first = acc[(acc["statistic"] == "curve") & (acc["fraction"] == 0)]
    accuracy = float(first["score"].iloc[0])
    for row in rows:
        rule = row["rule"]
        for op in ("zero", "reference"):
            for order in ("MoRF", "LeRF"):
                sel = (per["operator"] == op) & (per["order"] == order)
                mine = per[sel & (per["method"] == rule)]["area"].to_numpy()
                base = per[sel & (per["method"] == "loss")]["area"].to_numpy()
                res = paired_comparison(mine, base, n_boot=n_boot)
                row[f"{op}_{order}"] = float(mine.mean())
                row[f"{op}_{order}_vs_loss"] = (
                    float(res["difference"]),
                    float(res["ci_low"]),
                    float(res["ci_high"]),
                )
        rho = [
            spearman(a, b)
            for a, b in zip(
                maps[rule].get_data(), maps["fixed300"].get_data(), strict=True
            )
        ]
        row["rho_vs_300_median"] = float(np.median(rho))
        row["rho_vs_300_p10"] = float(np.percentile(rho, 10))
        if truth is not None:
            gt = ground_truth_scores(maps[rule], truth, level="instance")
            row["auroc"] = float(np.nanmean(gt["auroc"]))
    rnd = scores[
        (scores["method"] == "random")
        & (scores["statistic"] == "area")
        & (scores["metric"] == "probability")
    ]
    random_areas = {
        f"{r.operator}_{r.order}": (r.score, r.ci_low, r.ci_high)
        for r in rnd.itertuples()
    }
    return dict(
        dataset=ds,
        description=desc,
        model=model_name,
        n_epochs=len(epochs),
        accuracy=accuracy,
        random=random_areas,
        rules=rows,
    )


def report(results):
    lines = []
    for res in results:
        lines.append(
            f"\n**{res['dataset']}, {res['model']}** ({res['n_epochs']} held-out "
            f"epochs, model accuracy {res['accuracy']:.2f}; random map, reference "
            f"removal: MoRF {res['random']['reference_MoRF'][0]:.3f}, LeRF "
            f"{res['random']['reference_LeRF'][0]:.3f})\n"
        )
        head = (
            "| rule | median / max steps | capped | time (s) | ref. MoRF (vs loss) "
            "| ref. LeRF (vs loss) | zero MoRF (vs loss) | rank corr. with 300 steps "
            "(median, 10th pct) |" + (" AUROC |" if "auroc" in res["rules"][0] else "")
        )
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for r in res["rules"]:

            def cell(key, r=r):
                d, lo, hi = r[f"{key}_vs_loss"]
                return f"{r[key]:.3f} ({d:+.3f} [{lo:+.3f}, {hi:+.3f}])"

            line = (
                f"| {r['rule']} | {r['median_steps']:.0f} / {r['max_steps']} | "
                f"{r['capped']} | {r['seconds']:.0f} | {cell('reference_MoRF')} | "
                f"{cell('reference_LeRF')} | {cell('zero_MoRF')} | "
                f"{r['rho_vs_300_median']:.3f}, {r['rho_vs_300_p10']:.3f} |"
            )
            if "auroc" in r:
                line += f" {r['auroc']:.3f} |"
            lines.append(line)
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["simulated_hard", "eegmat_within"])
    p.add_argument("--models", nargs="+", default=["eegnet"])
    p.add_argument("--n-explain", type=int, default=100)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    here = Path(__file__).resolve().parent
    p.add_argument("--out", default=str(here / "results" / "stopping.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    # results accumulate over runs; a rerun replaces its (dataset, model)
    results = json.loads(out.read_text()) if out.is_file() else []
    for ds in args.datasets:
        for name in args.models:
            print(f"{ds} / {name} ...", flush=True)
            res = run(ds, name, args.n_explain, args.n_boot)
            results = [
                r for r in results if (r["dataset"], r["model"]) != (ds, name)
            ] + [res]
            out.write_text(json.dumps(results, indent=1))
            print(report([res]), flush=True)
    print(report(results))


if __name__ == "__main__":
    main()
