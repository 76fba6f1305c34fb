"""Faithfulness with intervals: ``evaluation.compare_methods`` on real models.

For each dataset (the harness's: simulated with a planted answer, mental
arithmetic with held-out subjects, EEGBCI subject 1) and model, the held-out
epochs are explained by every method asked for, and each map is scored by its
MoRF and LeRF curves (group and per-epoch ranking, zeroing and
reference-epoch removal, the training epochs as the reference) with bootstrap
intervals over the epochs and a paired comparison with the random map.
Models come from the harness's cache (trained on first use). The areas go to
stdout as a markdown table and the full tidy table to a CSV.

Usage::

    python benchmarks/bench_faithfulness.py --datasets simulated eegmat \
        --models eegnet --methods amplitude_gradients lrp random \
        --n-explain 40 --n-boot 1000 --out benchmarks/_cache/faithfulness.csv

A small configuration (few epochs, cheap methods) is a smoke test of the
pipeline, not the benchmark: the intervals it prints are wide.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from mne_freqmask.evaluation import compare_methods  # noqa: E402


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["simulated", "eegmat"])
    p.add_argument("--models", nargs="+", default=["eegnet"])
    p.add_argument(
        "--methods",
        nargs="+",
        default=["amplitude_gradients", "integrated_gradients", "lrp", "random"],
    )
    p.add_argument("--n-explain", type=int, default=150)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--rankings", nargs="+", default=["group", "instance"])
    p.add_argument("--operators", nargs="+", default=["zero", "reference"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(harness.CACHE / "faithfulness.csv"))
    return p


def _table(df):
    area = df[(df["statistic"] == "area") & (df["metric"] == "probability")]
    lines = [
        "| dataset | model | method | ranking | operator | order | area [CI] "
        "| vs random [CI] | p | time (s) | passes/epoch |",
        "|" + "---|" * 11,
    ]
    for _, r in area.iterrows():
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['method']} | {r['ranking']} "
            f"| {r['operator']} | {r['order']} | {r['score']:.3f} "
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['difference']:+.3f} "
            f"[{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}] "
            f"| {r['p_value']:.3g} | {r['time_s']:.1f} | {r['passes_per_epoch']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    frames = []
    for ds in args.datasets:
        train, test, truth, desc = harness.load_dataset(ds)
        idx = harness.explained_subset(test, args.n_explain)
        held = test[idx]
        print(f"{ds}: {desc}; {len(held)} explained epochs", flush=True)
        for name in args.models:
            model, _, _ = harness.get_model(ds, name, train)
            t0 = time.perf_counter()
            df = compare_methods(
                held,
                model,
                args.methods,
                rankings=tuple(args.rankings),
                operators=tuple(args.operators),
                reference=train,
                truth=truth,
                explain_kw=dict(bands=harness.BANDS),
                n_boot=args.n_boot,
                verbose=False,
            )
            # nothing removed: the model's accuracy on the held-out epochs
            start = df[(df["fraction"] == 0) & (df["metric"] == "accuracy")]
            acc = float(start["score"].iloc[0]) if len(start) else np.nan
            print(
                f"  {name}: held-out accuracy {acc:.3f}, "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            frames.append(df.assign(dataset=ds, model=name, accuracy=acc))
    out = pd.concat(frames, ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(_table(out))
    print(f"full table: {args.out}")
    return out


if __name__ == "__main__":
    main()
