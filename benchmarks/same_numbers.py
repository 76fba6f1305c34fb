"""Every cell-perturbing path's output, to compare two trees bitwise (issue #28).

Run once per tree, then compare the two files::

    PYTHONPATH=/path/to/main python benchmarks/same_numbers.py old.npz
    PYTHONPATH=. python benchmarks/same_numbers.py new.npz
    PYTHONPATH=. python benchmarks/same_numbers.py --compare old.npz new.npz

Tiny simulated epochs and a seeded convolutional model; FreqMask, FreqRISE,
gradients, LRP, DFT-LRP, FLEXtime, the amortised explainer, ``remove_cells``
and the evaluation band powers, on whole-epoch and short-time grids, with all
and with a subset of channels.
"""

import sys

import mne
import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.evaluation import clever_hans, counterfactual, ood
from mne_freqmask.evaluation._common import _source
from mne_freqmask.spectral import FrequencyGrid, short_time_grid

RUNS = [
    ("fm_ref", "freqmask", dict(n_steps=30, min_steps=5, return_perturbed=True)),
    (
        "fm_gen",
        "freqmask",
        dict(n_steps=20, perturbation="generator", return_perturbed=True),
    ),
    (
        "fm_1b",
        "freqmask",
        dict(
            n_steps=20,
            perturbation="generator",
            generator="one_branch",
            alignment="magnitude",
        ),
    ),
    ("fr", "freqrise", dict(n_masks=40)),
    ("fr_cells", "freqrise", dict(n_masks=40, n_cells=6)),
    ("ag", "amplitude_gradients", {}),
    ("ig", "integrated_gradients", dict(n_steps=8)),
    ("dftlrp", "dft_lrp", {}),
    ("lrp", "lrp", {}),
    ("flex", "flextime", dict(n_steps=20, n_filters=16, numtaps=15)),
]


def outputs():
    """Name -> array of every path, on one tree."""
    out = {}
    epochs, _ = make_epochs(
        n_subjects=2,
        n_epochs_per_class=4,
        ch_names=["C3", "Cz", "C4", "Pz"],
        band=(18.0, 22.0),
        random_state=0,
    )
    torch.manual_seed(0)
    n_ch, n_t = 4, len(epochs.times)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(n_ch, 6, 9),
        torch.nn.ELU(),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * (n_t - 8), 2),
    ).eval()
    model.n_chans, model.n_times = n_ch, n_t
    x = epochs.get_data().astype(np.float32)
    sf = epochs.info["sfreq"]
    rng = np.random.default_rng(0)
    grids = (
        ("whole", FrequencyGrid(sf, n_t, 6)),
        ("st", short_time_grid(sf, n_t, 4, (0.5, 0.25))),
    )
    for name, grid in grids:
        keep = rng.random((len(x), 2, grid.n_bands)) < 0.5
        w = rng.random((len(x), 2, grid.n_bands)).astype(np.float32)
        donors = x[::-1].copy()
        out[f"rc0_{name}"] = ev.remove_cells(x, keep, grid, [0, 2])
        out[f"rc1_{name}"] = ev.remove_cells(x, w, grid, [0, 2], fill=donors)
        both = np.concatenate([keep, keep], 1)
        out[f"rc2_{name}"] = ev.remove_cells(x, both, grid, np.arange(4), fill=donors)
    for tw in (None, (0.5, 0.25)):
        for name, method, kw in RUNS:
            for picks in (None, ["C3", "C4"]):
                key = f"{name}_{'st' if tw else 'whole'}_{'sub' if picks else 'all'}"
                if tw is not None and method == "flextime":
                    continue  # whole epoch only
                sal = mfm.explain(
                    epochs,
                    model,
                    method=method,
                    bands=4,
                    picks=picks,
                    time_windows=tw,
                    device="cpu",
                    random_state=0,
                    **kw,
                )
                out[key] = np.asarray(sal.get_data())
                diag = getattr(sal, "diagnostics", None) or {}
                if "perturbed" in diag:
                    out[key + "_pert"] = np.asarray(diag["perturbed"])
    exp = mfm.FreqMaskExplainer().fit(
        epochs,
        model,
        bands=4,
        picks=["C3", "C4"],
        n_epochs=3,
        batch_size=4,
        random_state=0,
        device="cpu",
    )
    out["amort_hist"] = np.array(exp.history["val_loss"])
    out["amort_map"] = np.asarray(exp.explain(epochs).get_data())
    grid = FrequencyGrid(sf, n_t, 4)
    out["ood_features"] = ood.band_log_power(x, sf, 4)
    out["ood_power"] = ood._band_power(x, grid, "x")
    out["ood_power_src"] = ood._band_power(_source(epochs), grid, "x")
    if hasattr(counterfactual, "_band_power"):  # main before issue #28
        cf = counterfactual._band_power(_source(epochs), grid, [0, 2])[0]
    else:  # the one chunked cell power of evaluation._common
        from mne_freqmask.evaluation._common import _cell_power

        cf = _cell_power(_source(epochs), grid, [0, 2])
    out["cf_power"] = cf
    sal = mfm.explain(epochs, model, method="amplitude_gradients", bands=4)
    power = clever_hans._power_map(epochs, sal, epochs.events[:, 2])
    out["ch_power"] = np.array([power[k] for k in sorted(power)])
    out.update(evaluation_outputs(epochs, model))
    return out


def evaluation_outputs(epochs, model):
    """The evaluation's scores of a whole-epoch and a time-resolved map."""
    out = {}
    for tw in (None, (0.5, 0.25)):
        tag = "st" if tw else "whole"
        sal = mfm.explain(
            epochs, model, method="amplitude_gradients", bands=4, time_windows=tw
        )
        for level, op in (("group", "zero"), ("instance", "reference")):
            curves, ep = ev.deletion_curves(
                epochs,
                model,
                sal,
                level=level,
                operator=op,
                reference=epochs if op == "reference" else None,
                n_points=5,
                n_boot=50,
                return_epoch_scores=True,
                device="cpu",
            )
            out[f"dc_{level}_{tag}"] = curves.to_numpy(float)
            out[f"dc_ep_{level}_{tag}"] = ep["deletion_probability"]
        cells = np.zeros(sal.get_data().shape[1:], bool)
        cells[0, 1] = cells[2, 1] = True
        gt = ev.ground_truth_scores(sal, cells, level="instance")
        out[f"gt_{tag}"] = gt.to_numpy(float)
        res = ev.cell_permutation_test(sal, adjacency=None, n_permutations=64)
        out[f"cpt_{tag}"] = np.stack([res.t, res.p_values])
        table = ev.compare_methods(
            epochs,
            model,
            ["random"],
            operators=("zero",),
            rankings=("group",),
            explain_kw=dict(bands=4, time_windows=tw),
            n_boot=20,
            device="cpu",
        )
        out[f"cmp_{tag}"] = table.select_dtypes("number").to_numpy(float)
    return out


def main():
    if sys.argv[1] == "--compare":
        a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
        diff = [
            k
            for k in a
            if k not in b
            or not np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind in "fc")
        ]
        print(f"{len(a)} arrays, {len(diff)} differ: {diff}")
        sys.exit(int(bool(diff) or set(a) != set(b)))
    mne.set_log_level("ERROR")
    torch.set_num_threads(1)
    out = outputs()
    np.savez(sys.argv[1], **out)
    print(f"{len(out)} arrays written to {sys.argv[1]}")


if __name__ == "__main__":
    main()
