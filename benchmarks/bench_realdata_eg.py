"""Controls for the expected-gradients randomisation rows of bench_realdata.

The randomisation check compares the *signed* map of the trained model with
that of the re-initialised model (Spearman). A map that is mostly Monte
Carlo noise passes that check trivially, so, per dataset x model, on the
same explained epochs as ``bench_realdata.py``:

* ``self_rho``: Spearman between two maps of the trained model that differ
  only in ``random_state`` (0 vs 1: other donors / alphas; the default's
  donors too): the map's own reproducibility, the ceiling a real signal
  would reach;
* ``rand_rho``: the check's number (signed maps, trained vs randomised model,
  ``random_state=0`` for both, the model re-initialised with seed 0 as
  ``check_explanation`` does);
* ``rand_rho_abs``: the same on the absolute maps (does the magnitude
  still follow the input rather than the model?).

Means over epochs with a 95 % bootstrap interval over epochs. Usage::

    nice python benchmarks/bench_realdata_eg.py --datasets eegmat \
        --models eegnet shallowfbcspnet --n-explain 32
"""

import argparse
import json
import sys
from pathlib import Path

import mne
import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask.evaluation import bootstrap_ci
from mne_freqmask.evaluation.sanity import spearman
from mne_freqmask.models import untrained_copy

sys.path.insert(0, str(Path(__file__).parent))
import bench_realdata as br  # noqa: E402
import harness  # noqa: E402


def rhos(a, b):
    r = np.array([spearman(x, y) for x, y in zip(a, b, strict=True)])
    m, lo, hi = bootstrap_ci(r, n_boot=2000, random_state=0)[:3]
    return [round(float(m), 3), round(float(lo), 3), round(float(hi), 3)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--datasets", nargs="+", default=["eegmat"])
    p.add_argument("--task", default="hands")
    p.add_argument("--models", nargs="+", default=["eegnet", "shallowfbcspnet"])
    p.add_argument("--methods", nargs="+", default=["expected_gradients", "freqmask"])
    p.add_argument("--n-explain", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(1)
    mne.set_log_level("ERROR")
    for ds in args.datasets:
        train, test, key = br.load(ds, args.task, "")
        ep = test[harness.explained_subset(test, args.n_explain)]
        for name in args.models:
            model = br.get_model(key, name, train)
            torch.manual_seed(0)
            rand_model = untrained_copy(model)
            for m in args.methods:
                kw = dict(br.METHOD_SETS[m])
                method = kw.pop("method")
                kw.update(reference=train, verbose=False)

                def mp(mod, seed, kw=kw, method=method, ep=ep):
                    s = mfm.explain(ep, mod, method=method, random_state=seed, **kw)
                    return s.get_data()

                a0, a1, r0 = mp(model, 0), mp(model, 1), mp(rand_model, 0)
                row = dict(
                    dataset=key,
                    model=name,
                    method=m,
                    self_rho=rhos(a0, a1),
                    rand_rho=rhos(a0, r0),
                    rand_rho_abs=rhos(np.abs(a0), np.abs(r0)),
                    self_rho_abs=rhos(np.abs(a0), np.abs(a1)),
                )
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
