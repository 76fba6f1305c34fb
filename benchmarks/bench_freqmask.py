"""FreqMask cost on CPU at SEED shape (62 channels x 400 samples, 200 Hz).

Measures, for EEGNet and Deep4Net, in one run:

1. the time of one FreqMask optimisation step on a batch of ``--batch`` epochs,
   as the difference between runs of ``n`` and ``n + k`` fixed steps (so the
   one-off set-up is excluded), divided by ``k``;
2. the model's bare forward + backward (gradient with respect to the input,
   parameters frozen: the work any input-perturbation method must do) on the
   same batch;
3. their ratio (goal <= 1.15);
4. explain() wall time per epoch with the default parameters (early
   stopping) on ``--batch`` simulated SEED-shaped epochs, for a model trained
   briefly on them, and the median number of steps.

Each timing is the median of ``--repeats`` runs. Usage::

    python benchmarks/bench_freqmask.py --threads 1 --repeats 3 --steps 5 \
        --out benchmarks/results/freqmask_cpu.json
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask.models import fit

sys.path.insert(0, str(Path(__file__).parent))
from bench_step import seed_shaped_epochs  # noqa: E402


def _median_time(func, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_model(name, epochs, args):
    model, history = fit(
        epochs, name, max_epochs=args.train_passes, random_state=0, verbose=False
    )
    held = epochs[: args.batch]
    x = torch.as_tensor(held.get_data(), dtype=torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)

    def fwd_bwd():
        xi = x.clone().requires_grad_(True)
        model(xi).sum().backward()

    fwd_bwd()  # warm-up
    t_model = _median_time(fwd_bwd, args.repeats)

    def run(n_steps):
        mfm.explain(
            held,
            model,
            n_steps=n_steps,
            patience=10**6,
            chunk_size=args.batch,
            verbose=False,
        )

    k = args.steps
    run(2)  # warm-up
    t_short = _median_time(lambda: run(2), args.repeats)
    t_long = _median_time(lambda: run(2 + k), args.repeats)
    t_step = (t_long - t_short) / k

    t0 = time.perf_counter()
    sal = mfm.explain(held, model, chunk_size=args.batch, verbose=False)
    t_explain = time.perf_counter() - t0
    removal = mfm.evaluate_removal(held, model, sal, verbose=False)
    return dict(
        model=name,
        val_accuracy=history["val_accuracy"][-1],
        batch=args.batch,
        model_fwd_bwd_s=t_model,
        freqmask_step_s=t_step,
        step_ratio=t_step / t_model,
        explain_s=t_explain,
        explain_s_per_epoch=t_explain / len(held),
        median_steps=float(np.median(sal.diagnostics["n_steps"])),
        rn=float(removal.loc["RN", "accuracy"]),
        rs=float(removal.loc["RS", "accuracy"]),
        original=float(removal.loc["original", "accuracy"]),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["eegnet", "deep4net"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-passes", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    epochs = seed_shaped_epochs(args.batch)
    rows = [bench_model(name, epochs, args) for name in args.models]
    meta = dict(
        torch=torch.__version__,
        threads=args.threads,
        cpu=platform.processor(),
        machine=platform.machine(),
        shape=list(epochs.get_data().shape[1:]),
    )
    print(f"{meta}")
    print(
        "| model | batch | fwd+bwd (s) | FreqMask step (s) | ratio | explain s/epoch "
        "| median steps | orig / RN / RS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['batch']} | {r['model_fwd_bwd_s']:.3f} | "
            f"{r['freqmask_step_s']:.3f} | {r['step_ratio']:.2f} | "
            f"{r['explain_s_per_epoch']:.3f} | {r['median_steps']:.0f} | "
            f"{r['original']:.2f} / {r['rn']:.2f} / {r['rs']:.2f} |"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=2))


if __name__ == "__main__":
    main()
