"""SEED-shaped explanation on a GPU: per-epoch FreqMask and the amortised one.

The device check of issue #16, prepared to run as one script on a machine
with a CUDA device (it also runs on CPU with small sizes, to test it):

1. ``--n-epochs`` simulated SEED-shaped epochs (62 channels x 400 samples at
   200 Hz; SEED has about 54,000) held in memory as ``mne.EpochsArray``;
   an EEGNet trained briefly on 2,000 of them (so its gradients are a
   trained model's);
2. the model's own forward + backward throughput at the chunk size explain
   uses (epochs/s; the ceiling any input-perturbation method can reach);
3. per-epoch FreqMask (defaults) on ``--n-freqmask`` of the epochs: epochs/s,
   median steps, and the fraction of the model's throughput reached
   (epochs/s x median steps / fwd+bwd epochs/s);
4. the amortised explainer (``FreqMaskExplainer``): training time on
   ``--n-train`` epochs, then explaining all ``--n-epochs`` epochs;
5. the end-to-end estimate for all epochs with per-epoch FreqMask
   (measured epochs/s) and the measured amortised total (training +
   explaining).

Usage (the device run of BENCHMARKS.md)::

    python benchmarks/bench_gpu_seed.py --device cuda --n-epochs 54000 \
        --n-freqmask 4096 --n-train 5000 --out benchmarks/results/gpu_seed.json

and, to check the script on CPU::

    python benchmarks/bench_gpu_seed.py --device cpu --n-epochs 256 \
        --n-freqmask 32 --n-train 128 --out /tmp/gpu_seed_cpu.json
"""

import argparse
import json
import platform
import time
from pathlib import Path

import mne
import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask.datasets import seed
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.models import fit


def seed_shaped(n_epochs, random_state=0):
    """Simulated SEED-shaped epochs (alpha planted on C3/C4, 2 classes)."""
    base, _ = make_epochs(
        n_subjects=4,
        n_epochs_per_class=max(1, min(n_epochs, 2000) // 8),
        sfreq=seed.SFREQ,
        n_times=400,
        ch_names=seed.CH_NAMES,
        channels=("C3", "C4"),
        random_state=random_state,
        verbose=False,
    )
    # tile the simulated epochs (with fresh noise) up to n_epochs, in memory
    rng = np.random.default_rng(random_state)
    data = base.get_data()
    idx = rng.integers(0, len(data), n_epochs)
    x = data[idx] + 0.1 * data.std() * rng.standard_normal((n_epochs,) + data.shape[1:])
    events = np.column_stack(
        [np.arange(n_epochs), np.zeros(n_epochs, int), base.events[idx, 2]]
    )
    md = base.metadata.iloc[idx].reset_index(drop=True)
    return mne.EpochsArray(
        x.astype(np.float32),
        base.info,
        events,
        event_id=base.event_id,
        metadata=md,
        verbose=False,
    ), base


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def model_throughput(model, x, device, repeats=10):
    """Epochs/s of the model's forward + backward (gradient w.r.t. the input)."""
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    xb = torch.as_tensor(x, device=device) * 1e6
    times = []
    for _ in range(repeats + 2):
        xi = xb.clone().requires_grad_(True)
        sync(device)
        t0 = time.perf_counter()
        model(xi).sum().backward()
        sync(device)
        times.append(time.perf_counter() - t0)
    return len(x) / float(np.median(times[2:]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--n-epochs", type=int, default=54000)
    p.add_argument("--n-freqmask", type=int, default=4096)
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    dev = args.device
    res = dict(
        device=torch.cuda.get_device_name(0) if dev.startswith("cuda") else "cpu",
        torch=torch.__version__,
        python=platform.python_version(),
        args=vars(args),
    )
    t0 = time.perf_counter()
    epochs, base = seed_shaped(args.n_epochs)
    res["data_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model, hist = fit(base, "eegnet", max_epochs=10, random_state=0, device=dev)
    res["train_model_s"] = time.perf_counter() - t0
    res["model_val_accuracy"] = float(hist["val_accuracy"][-1])
    n_fb = min(args.chunk, args.n_epochs)
    res["fwd_bwd_epochs_per_s"] = model_throughput(
        model, epochs.get_data()[:n_fb].astype(np.float32), dev
    )
    model = model.cpu()  # explain moves it and restores it
    # per-epoch FreqMask on a subset
    sub = epochs[: args.n_freqmask]
    sync(dev)
    t0 = time.perf_counter()
    sal = mfm.explain(sub, model, device=dev, chunk_size=args.chunk, verbose=False)
    sync(dev)
    secs = time.perf_counter() - t0
    steps = sal.diagnostics["n_steps"]
    res["freqmask"] = dict(
        n_epochs=len(sub),
        seconds=secs,
        epochs_per_s=len(sub) / secs,
        median_steps=float(np.median(steps)),
        fraction_of_fwd_bwd=len(sub)
        * float(np.mean(steps))
        / secs
        / res["fwd_bwd_epochs_per_s"],
        all_epochs_estimate_s=args.n_epochs / (len(sub) / secs),
    )
    # amortised: train on n_train epochs, explain them all
    t0 = time.perf_counter()
    explainer = mfm.FreqMaskExplainer().fit(
        epochs[: args.n_train], model, random_state=0, device=dev, verbose=False
    )
    sync(dev)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    amort = explainer.explain(epochs)
    sync(dev)
    explain_s = time.perf_counter() - t0
    res["amortised"] = dict(
        n_train=args.n_train,
        train_s=train_s,
        explain_s=explain_s,
        epochs_per_s=len(epochs) / explain_s,
        end_to_end_s=train_s + explain_s,
        n_epochs=len(amort),
    )
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
