"""Wall time of the demo and of explain at 1 and 2 torch threads (issue #19).

Run on an idle machine (the load average before each run is recorded)::

    python benchmarks/bench_threads.py --out benchmarks/results/threads.json

Two measurements, each thread count in a fresh process:

- ``mne-freqmask demo --n-jobs N --quiet`` (the README's main job: simulated
  data, training, explaining, the checks, the report).
- ``explain(epochs, model, bands="canonical", reference=epochs, n_jobs=N)``
  on the 45 EEGBCI epochs of subject 1 (runs 4/8/12, 64 channels resampled to
  100 Hz, 4 s) with an EEGNet trained on them once (one thread, seed 0). The
  maps at the two thread counts are compared cell by cell and per epoch
  (Spearman), as are the step counts.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "eegbci_S001"


def _load():
    return os.getloadavg()[0]


def _demo(n_jobs):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "mne_freqmask.cli",
            "demo",
            "--quiet",
            "--n-jobs",
            str(n_jobs),
            "--out",
            str(Path(tmp) / "r.html"),
        ]
        load = _load()
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return dict(
            task="demo",
            n_jobs=n_jobs,
            wall_s=time.perf_counter() - t0,
            load_before=load,
        )


def _explain_child(n_jobs, model_file, out):
    import mne

    import mne_freqmask as mf

    mne.set_log_level("ERROR")
    epochs = mf.datasets.eegbci.load_epochs(DATA, resample=100.0)
    model = mf.models.load_model(model_file)
    load = _load()
    t0 = time.perf_counter()
    sal = mf.explain(epochs, model, bands="canonical", reference=epochs, n_jobs=n_jobs)
    wall = time.perf_counter() - t0
    np.savez(out, data=sal.data, steps=np.asarray(sal.diagnostics["n_steps"]))
    print(
        json.dumps(
            dict(
                task="explain",
                n_jobs=n_jobs,
                wall_s=wall,
                load_before=load,
                n_epochs=len(epochs),
            )
        )
    )


def _train(model_file):
    import mne
    import torch

    import mne_freqmask as mf

    mne.set_log_level("ERROR")
    torch.set_num_threads(1)
    epochs = mf.datasets.eegbci.load_epochs(DATA, resample=100.0)
    model, history = mf.models.fit(epochs, "eegnet", random_state=0)
    mf.models.save_model(model_file, model, overwrite=True)
    return dict(
        n_epochs=len(epochs),
        val_accuracy_last=float(history["val_accuracy"][-1]),
        n_val=len(history["val_idx"]),
    )


def _spearman(a, b):
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE / "results" / "threads.json"))
    p.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _explain_child(int(args.child[0]), args.child[1], args.child[2])
        return
    rows = []
    if not args.skip_demo:
        for n in args.n_jobs:
            rows.append(_demo(n))
            print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_file = str(Path(tmp) / "eegnet.pt")
        info = _train(model_file)
        maps = {}
        for n in args.n_jobs:
            out = Path(tmp) / f"map{n}.npz"
            res = subprocess.run(
                [sys.executable, __file__, "--child", str(n), model_file, str(out)],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
            maps[n] = np.load(out)
        (a, sa), (b, sb) = (
            (maps[n]["data"], maps[n]["steps"]) for n in args.n_jobs[:2]
        )
        per_epoch = [_spearman(x.ravel(), y.ravel()) for x, y in zip(a, b, strict=True)]
        cmp = dict(
            n_jobs=args.n_jobs[:2],
            max_abs_cell_diff=float(np.abs(a - b).max()),
            median_per_epoch_spearman=float(np.median(per_epoch)),
            min_per_epoch_spearman=float(np.min(per_epoch)),
            group_map_spearman=_spearman(a.mean(0).ravel(), b.mean(0).ravel()),
            same_step_counts=int((sa == sb).sum()),
            median_steps=[float(np.median(sa)), float(np.median(sb))],
        )
        print(cmp)
    meta = dict(
        date=time.strftime("%Y-%m-%d %H:%M"), cpus=os.cpu_count(), model_training=info
    )
    Path(args.out).write_text(
        json.dumps(dict(meta=meta, rows=rows, map_difference=cmp), indent=2)
    )


if __name__ == "__main__":
    main()
