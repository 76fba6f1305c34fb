"""FreqMask step cost versus the model's own forward + backward (CPU).

For each model, at SEED shape (62 channels x 400 samples, 200 Hz), one batch
of ``--batch`` simulated epochs, a model trained briefly on them (so that its
gradients look like a trained model's), this script times, interleaved in one
loop so that machine noise hits both alike:

* ``fwd+bwd``: the model's forward and backward on the batch, gradient with
  respect to the input, parameters frozen (the least any input-perturbation
  method pays per step);
* ``step``: one FreqMask optimisation step of all the batch's masks with
  FreqMask's defaults (``_ChunkFitter._step``: spectrum masking, the
  removed part filled from reference epochs, inverse FFT, model forward +
  backward, losses, fused Adam, projection; since issue #16 the default
  perturbation is ``"reference"``, which has no generator);
* ``step_generator``: the same step with the paper's perturbation
  (``perturbation="generator"``: a learned generator per epoch), the
  default before issue #18;
* the generator alone (batched matmul forward + backward) and the Adam update
  alone, to attribute what is left.

It reports medians over ``--repeats`` interleaved rounds and the median of the
per-round ratios step / fwd+bwd (issue #16's goal: <= 1.10). Usage::

    python benchmarks/bench_step.py --threads 1 --batch 256 --repeats 15 \
        --out benchmarks/results/step_cpu.json
"""

import argparse
import inspect
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from mne_freqmask._inputs import make_input
from mne_freqmask._torch_utils import model_context
from mne_freqmask.datasets import seed
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.methods import freqmask as fm
from mne_freqmask.models import fit
from mne_freqmask.spectral import FrequencyGrid

TRAIN = dict(
    eegnet=dict(max_epochs=10, lr=3e-3),
    deep4net=dict(max_epochs=10, lr=1e-3, drop_prob=0.1),
    tsception=dict(max_epochs=10, lr=1e-3),
    eegconformer=dict(max_epochs=10, lr=5e-4),
)


def _timed(func):
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def seed_shaped_epochs(n_epochs):
    """``n_epochs`` simulated epochs of SEED shape (62 x 400 at 200 Hz)."""
    epochs, _ = make_epochs(
        n_subjects=4,
        n_epochs_per_class=n_epochs // 4,
        sfreq=seed.SFREQ,
        n_times=400,
        ch_names=seed.CH_NAMES,
        channels=("C3", "C4"),
        random_state=0,
        verbose=False,
    )
    return epochs


def time_step(model, held, bands, repeats, extras=True):
    """Interleaved timings (s) of fwd+bwd, a FreqMask step and its parts.

    ``model`` is frozen in eval mode meanwhile (``model_context``); returns a
    dict of arrays of ``repeats`` times per key.
    """
    x = torch.as_tensor(held.get_data(), dtype=torch.float32)
    dev = torch.device("cpu")
    inp = make_input(held, picks=None, y=None, target=None, reference=None, groups=None)
    grid = FrequencyGrid(inp.sfreq, inp.n_times, bands)
    # FreqMask's own defaults, so that the benchmark times what explain() runs
    params = {
        key: par.default
        for key, par in inspect.signature(fm.freqmask).parameters.items()
        if par.default is not inspect.Parameter.empty
        and key not in ("random_state", "return_perturbed")
    }
    gen_params = dict(params, perturbation="generator")
    sl = slice(0, len(held))
    with model_context(model, dev):
        centres, cluster = fm._subject_centres(inp, grid, "complex", dev, torch.float32)
        c = centres[cluster[sl]]
        fitter = fm._ChunkFitter(inp, grid, model, params, dev, torch.float32)
        if fitter.reference:  # the donors, as freqmask() draws them
            fitter.donor_pool(params["n_donors"], np.random.default_rng(0))
        ref_state = fitter._init_state(sl, c)
        if fitter.reference:
            ref_state["orders"] = fitter._orders(ref_state["epoch"])
        gen_fitter = fm._ChunkFitter(inp, grid, model, gen_params, dev, torch.float32)
        gen_state = gen_fitter._init_state(sl, c)
        gen_w = gen_state["params"][1].clone().requires_grad_(True)
        adam_state = fitter._init_state(sl, c)
        adam_grads = [torch.randn_like(t) * 1e-3 for t in adam_state["params"]]

        def fwd_bwd():
            xi = x.clone().requires_grad_(True)
            model(xi).sum().backward()

        def step():
            fitter._step(ref_state)

        def step_generator():
            gen_fitter._step(gen_state)

        def generator():
            r = gen_fitter._generate(gen_w, gen_state["params"][2], gen_state["x2"])
            torch.autograd.grad(r.sum(), gen_w)

        def adam_only():
            fm.adam_update(
                adam_state["params"],
                adam_grads,
                adam_state["exp_avg"],
                adam_state["exp_avg_sq"],
                adam_state["adam_steps"],
                lr=0.01,
                fused=True,
            )

        funcs = dict(fwd_bwd=fwd_bwd, step=step)
        if extras:
            funcs.update(
                step_generator=step_generator, generator=generator, adam=adam_only
            )
        for func in funcs.values():  # warm-up
            func()
        times = {key: [] for key in funcs}
        for _ in range(repeats):
            for key, func in funcs.items():
                times[key].append(_timed(func))
    return {key: np.array(val) for key, val in times.items()}


def bench_model(name, epochs, args):
    model, history = fit(epochs, name, random_state=0, verbose=False, **TRAIN[name])
    held = epochs[: args.batch]
    t = time_step(model, held, args.bands, args.repeats)
    return dict(
        model=name,
        val_accuracy=float(history["val_accuracy"][-1]),
        batch=args.batch,
        median_s={key: float(np.median(val)) for key, val in t.items()},
        ratio=float(np.median(t["step"] / t["fwd_bwd"])),
        ratio_generator=float(np.median(t["step_generator"] / t["fwd_bwd"])),
        generator_share=float(np.median(t["generator"] / t["fwd_bwd"])),
        adam_share=float(np.median(t["adam"] / t["fwd_bwd"])),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["eegnet", "deep4net", "tsception", "eegconformer"],
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--bands", default="canonical")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.bands.isdigit():
        args.bands = int(args.bands)
    torch.set_num_threads(args.threads)
    epochs = seed_shaped_epochs(args.batch)
    rows = []
    for name in args.models:
        rows.append(bench_model(name, epochs, args))
        r = rows[-1]
        print(
            f"| {r['model']} | {r['batch']} | {r['median_s']['fwd_bwd']:.3f} | "
            f"{r['median_s']['step']:.3f} | **{r['ratio']:.2f}** | "
            f"{r['ratio_generator']:.2f} | {r['generator_share']:.3f} | "
            f"{r['adam_share']:.3f} | {r['val_accuracy']:.2f} |",
            flush=True,
        )
    meta = dict(
        torch=torch.__version__,
        threads=args.threads,
        cpu=platform.processor(),
        machine=platform.machine(),
        shape=[62, 400],
        repeats=args.repeats,
        date=time.strftime("%Y-%m-%d %H:%M"),
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=2))


if __name__ == "__main__":
    main()
