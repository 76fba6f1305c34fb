"""FreqMask that ranks every cell and sees evidence that is an absence of power.

conftest's simulated data plant alpha on C3/C4 with three times the amplitude
in class "high" as in class "low": the evidence of "low" is *less* power.
Measured on the 20 held-out epochs below (EEGNet at 1.0 held-out accuracy,
2026-12-02): the paper's final mask holds 2-3 distinct values per epoch out of
190 cells (the rest tie at exactly 0) and keeps the planted cells of "low"
epochs at a mean of 0.26 against 0.59 for "high"; ``cell_score="path"`` gives
every cell its own value; ``perturbation="reference"`` keeps the planted cells
of both classes (0.80 and 0.90).
"""

import mne
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import mne_freqmask as mfm
from mne_freqmask.evaluation import compare_methods
from mne_freqmask.methods.freqmask import PAPER


@pytest.fixture(scope="module")
def held(simulated):
    epochs, truth, model, history = simulated
    idx = np.sort(history["val_idx"])[:20]
    return epochs[idx], epochs, truth, model


def _per_class(sal, held_epochs, truth):
    cells = truth.cells(sal.ch_names, sal.band_edges).ravel()
    d = sal.data.reshape(len(sal.data), -1)
    y = held_epochs.events[:, 2]
    out = {}
    for code, name in ((1, "low"), (2, "high")):
        e = d[y == code]
        out[name] = dict(
            planted=float(e[:, cells].mean()),
            auroc=float(np.mean([roc_auc_score(cells, row) for row in e])),
            distinct=float(np.mean([len(np.unique(row)) for row in e])),
        )
    return out


def test_paper_preset_is_the_paper_configuration(held):
    epochs, _, _, model = held
    sub = epochs[:4]
    by_preset = mfm.explain(sub, model, preset="paper", verbose=False)
    explicit = mfm.explain(sub, model, verbose=False, **PAPER)
    np.testing.assert_array_equal(by_preset.data, explicit.data)
    assert by_preset.method_params["min_steps"] == 1
    assert by_preset.method_params["cell_score"] == "mask"
    assert by_preset.method_params["stopping"] == "loss"
    assert "rank_tol" not in by_preset.method_params
    # a value equal to the paper's is fine; one that contradicts it is refused
    mfm.explain(sub[:2], model, preset="paper", lr=0.01, verbose=False)
    with pytest.raises(ValueError, match=r'preset="paper" fixes lr.*lr=0.01'):
        mfm.explain(sub[:2], model, preset="paper", lr=0.1, verbose=False)
    with pytest.raises(ValueError, match="preset"):
        mfm.explain(sub[:2], model, preset="mine", verbose=False)


def test_path_score_ranks_every_cell(held):
    epochs, reference, truth, model = held
    kw = dict(reference=reference, verbose=False)
    paper = _per_class(mfm.explain(epochs, model, preset="paper", **kw), epochs, truth)
    path = _per_class(
        mfm.explain(epochs, model, cell_score="path", **kw), epochs, truth
    )
    n_cells = 19 * 10
    for cls in ("low", "high"):
        assert paper[cls]["distinct"] <= 5  # the collapse: ties at 0
        assert path[cls]["distinct"] >= 0.98 * n_cells  # measured 189.9 of 190
        assert path[cls]["auroc"] >= 0.95  # measured 1.00 for both classes


def test_reference_perturbation_sees_a_power_decrease(held):
    epochs, reference, truth, model = held
    # final masks (the figures of the module docstring), both perturbations
    kw = dict(reference=reference, cell_score="mask", verbose=False)
    gen = _per_class(
        mfm.explain(epochs, model, perturbation="generator", **kw), epochs, truth
    )
    ref_sal = mfm.explain(epochs, model, perturbation="reference", random_state=0, **kw)
    ref = _per_class(ref_sal, epochs, truth)
    # the generator's removal is "no power": the low class keeps its
    # prediction without its (weak) alpha, so its planted cells fall
    assert gen["low"]["planted"] < 0.6 * gen["high"]["planted"]
    # filled from other epochs, the weak alpha must be kept
    assert ref["low"]["planted"] > 0.75 * ref["high"]["planted"]
    assert ref["low"]["planted"] > gen["low"]["planted"] + 0.2
    assert ref["low"]["auroc"] >= 0.95
    # the donors are drawn with random_state: reproducible, seed-dependent
    again = mfm.explain(epochs, model, perturbation="reference", random_state=0, **kw)
    np.testing.assert_array_equal(again.data, ref_sal.data)
    other = mfm.explain(
        epochs[:4], model, perturbation="reference", random_state=1, **kw
    )
    assert not np.array_equal(other.data, ref_sal.data[:4])
    # None draws with seed 0: the default map is reproducible
    none = mfm.explain(epochs[:4], model, random_state=None, **kw)
    zero = mfm.explain(epochs[:4], model, random_state=0, **kw)
    np.testing.assert_array_equal(none.data, zero.data)
    assert ref_sal.method_params["n_donors"] == 256


def test_reference_perturbation_without_reference_never_uses_itself(held):
    """The explained epochs as their own reference: each gets other donors."""
    epochs, _, _, model = held
    sal = mfm.explain(
        epochs[:3], model, perturbation="reference", random_state=0, verbose=False
    )
    assert np.isfinite(sal.data).all()
    assert (sal.data >= 0).all() and (sal.data <= 1).all()
    with pytest.raises(ValueError, match="only one epoch and no reference"):
        mfm.explain(epochs[:1], model, perturbation="reference", verbose=False)
    with pytest.raises(ValueError, match="n_donors"):
        mfm.explain(epochs[:2], model, perturbation="reference", n_donors=0)


def test_compare_methods_groups_resample_whole_groups(held):
    """Each epoch copied 4 times: with groups the intervals stay as wide as on
    the original epochs; treating the copies as independent narrows them."""
    epochs, _, truth, model = held
    sal = mfm.explain(epochs, model, method="amplitude_gradients", verbose=False)
    copies = mne.concatenate_epochs([epochs] * 4, verbose=False)
    sal4 = mfm.SpectralSaliency(
        np.concatenate([sal.data] * 4), sal.info, sal.grid, method="amp"
    )
    kw = dict(
        rankings=("instance",),
        operators=("zero",),
        orders=("morf",),
        n_boot=2000,
        verbose=False,
    )
    base = compare_methods(epochs, model, {"m": sal}, **kw)
    groups = np.tile(np.arange(len(epochs)), 4)
    grouped, units = compare_methods(
        copies, model, {"m": sal4}, groups=groups, return_epoch_scores=True, **kw
    )
    naive = compare_methods(copies, model, {"m": sal4}, **kw)

    def width(df):
        a = df[(df.statistic == "area") & (df.metric == "probability")].iloc[0]
        return a["ci_high"] - a["ci_low"], a["score"], a["n_groups"]

    w0, s0, n0 = width(base)
    w1, s1, n1 = width(grouped)
    w2, _, n2 = width(naive)
    assert (n0, n1, n2) == (20, 20, 80)
    assert s1 == pytest.approx(s0)
    assert w1 == pytest.approx(w0, rel=0.25)
    assert w2 < 0.7 * w0  # about half: sqrt(4) more "epochs"
    assert len(units) == 2 * 20  # probability and accuracy, one row per group
    with pytest.raises(ValueError, match="one label per epoch"):
        compare_methods(copies, model, {"m": sal4}, groups=groups[:5], **kw)
