"""Peak memory and throughput of explain() versus the number of epochs (CPU).

SEED-shaped data (62 SEED channels, 2-s epochs = 400 samples at 200 Hz) are
written once as a continuous FIF recording of pink-ish noise, long enough for
``N`` overlapping epochs cut every ``--hop`` samples (as sliding windows over
a long recording). Each measurement runs in a fresh Python process that
reads the recording with ``preload=False``, cuts ``mne.Epochs`` with
``preload=False`` (or ``True`` for the in-memory comparison), and calls
``mne_freqmask.explain`` on an (untrained, seeded) EEGNet; it reports the
process's peak resident memory (``ru_maxrss``), the wall time and epochs per
second.

At 100,000 epochs the float32 data alone would take 9.9 GB; read chunk by
chunk they never sit in memory at once. The number of FreqMask steps is a
parameter (``--n-steps``) because the memory held per chunk is allocated at
its first step and only shrinks afterwards, while the time grows with it:
the default (2 steps) keeps the 100k run within a session on one core.
``--task evaluate`` measures :func:`mne_freqmask.evaluate_removal` instead
(instance level: three forward passes per epoch, original, RN and RS) with a
random per-epoch map on the same grid, so that the evaluation's own memory is
measured without the cost of explaining first.

Usage::

    python benchmarks/bench_memory.py --threads 1 --n-epochs 1000 10000 100000 \
        --out benchmarks/results/memory.json
    python benchmarks/bench_memory.py --task evaluate --n-epochs 1000 10000 \
        --out benchmarks/results/memory_evaluation.json
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_TIMES = 400


def make_recording(fname, n_epochs, hop, seed=0):
    """Write a 62-channel 200 Hz recording for ``n_epochs`` windows."""
    import mne

    from mne_freqmask.datasets import seed as seed_ds

    n_samples = (n_epochs - 1) * hop + N_TIMES
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((len(seed_ds.CH_NAMES), n_samples)).astype(np.float32)
    # white noise plus a random walk, so the spectrum falls with frequency
    walk = np.cumsum(white, axis=1, dtype=np.float32)
    walk -= walk.mean(1, keepdims=True)
    data = walk * (20e-6 / walk.std()) + white * 5e-6
    info = mne.create_info(list(seed_ds.CH_NAMES), seed_ds.SFREQ, "eeg")
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.save(fname, overwrite=True, verbose=False)


def measure(fname, n_epochs, hop, preload, n_steps, threads, task="explain"):
    """Run in a fresh process: peak RSS, wall time, epochs per second."""
    import mne
    import torch

    import mne_freqmask as mfm
    from mne_freqmask.datasets import seed as seed_ds
    from mne_freqmask.models import make_model

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    raw = mne.io.read_raw_fif(fname, preload=False, verbose=False)
    events = np.column_stack(
        [
            np.arange(n_epochs) * hop,
            np.zeros(n_epochs, int),
            1 + np.arange(n_epochs) % 2,
        ]
    )
    epochs = mne.Epochs(
        raw,
        events,
        dict(a=1, b=2),
        tmin=0,
        tmax=(N_TIMES - 1) / seed_ds.SFREQ,
        baseline=None,
        preload=preload,
        verbose=False,
    )
    torch.manual_seed(0)
    model = make_model(
        "eegnet", n_chans=62, n_outputs=2, n_times=N_TIMES, sfreq=seed_ds.SFREQ
    )
    if task == "explain":
        sal = mfm.explain(epochs, model, n_steps=n_steps, verbose=False)
    else:
        rng = np.random.default_rng(0)
        grid = mfm.FrequencyGrid(seed_ds.SFREQ, N_TIMES, 10)
        data = rng.random((n_epochs, 62, grid.n_bands), dtype=np.float32)
        sal = mfm.SpectralSaliency(data, epochs.info, grid, method="random")
        scores = mfm.evaluate_removal(
            epochs, model, sal, level="instance", verbose=False
        )
        assert np.isfinite(scores["accuracy"]).all()
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB -> B
    return dict(
        task=task,
        n_epochs=n_epochs,
        preload=preload,
        n_steps=n_steps,
        wall_s=wall,
        epochs_per_s=n_epochs / wall,
        peak_rss_gb=peak / 1e9,
        saliency_mb=sal.get_data().nbytes / 1e6,
        data_float32_gb=n_epochs * 62 * N_TIMES * 4 / 1e9,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-epochs", nargs="+", type=int, default=[1000, 10000])
    parser.add_argument(
        "--preload",
        nargs="*",
        type=int,
        default=[],
        help="sizes also measured with preload=True",
    )
    parser.add_argument("--hop", type=int, default=20)
    parser.add_argument("--n-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--task", choices=("explain", "evaluate"), default="explain")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement in this (fresh) process
        fname, n, preload, n_steps = args.child
        res = measure(
            fname,
            int(n),
            args.hop,
            preload == "1",
            int(n_steps),
            args.threads,
            args.task,
        )
        print("RESULT " + json.dumps(res))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fname = Path(tmp) / "seed_shaped_raw.fif"
        t0 = time.perf_counter()
        make_recording(fname, max(args.n_epochs), args.hop)
        print(
            f"recording written in {time.perf_counter() - t0:.0f} s "
            f"({fname.stat().st_size / 1e9:.2f} GB)",
            flush=True,
        )
        jobs = [(n, False) for n in args.n_epochs] + [(n, True) for n in args.preload]
        for n, preload in jobs:
            cmd = [
                sys.executable,
                __file__,
                "--hop",
                str(args.hop),
                "--threads",
                str(args.threads),
                "--task",
                args.task,
                "--child",
                str(fname),
                str(n),
                str(int(preload)),
                str(args.n_steps),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            row = json.loads(line[-1][len("RESULT ") :])
            rows.append(row)
            print(
                f"| {row['n_epochs']} | {'yes' if preload else 'no'} | "
                f"{row['data_float32_gb']:.2f} | **{row['peak_rss_gb']:.2f}** | "
                f"{row['wall_s']:.0f} | {row['epochs_per_s']:.1f} |",
                flush=True,
            )
    if args.out is not None:
        meta = dict(
            date=time.strftime("%Y-%m-%d %H:%M"),
            task=args.task,
            threads=args.threads,
            n_steps=args.n_steps,
            hop=args.hop,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=2))


if __name__ == "__main__":
    main()
