"""The limit of the deletion curves (evaluation.deletion_limit) and the
interaction simulation.

The limit is a ranking searched for the deletion curve itself, so on the same
epochs no method's map may remove more of the true-class probability than it
(MoRF), nor keep more (LeRF); a small simulated EEGNet (alpha on
C3/C4, 8 channels) and a few epochs keep the search small (4 bands: 32
cells).
"""

import numpy as np
import pytest
from scipy.integrate import trapezoid

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev

FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
BANDS = 4


#: the channels of the small simulation (alpha planted on C3 / C4)
CHS = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "P4"]


@pytest.fixture(scope="module")
def small(torch_threads):
    """6 held-out epochs (both classes), training epochs, a small EEGNet
    (one thread, as conftest's burst model: tiny data) and three maps."""
    from mne_freqmask.datasets.simulated import make_epochs
    from mne_freqmask.models import fit

    n_threads = torch_threads.get_num_threads()
    torch_threads.set_num_threads(1)
    try:
        epochs, _ = make_epochs(
            n_subjects=2, n_epochs_per_class=40, ch_names=CHS, random_state=0
        )
        model, history = fit(epochs, "eegnet", max_epochs=30, random_state=0)
        assert history["val_accuracy"][-1] >= 0.8, "the small model did not learn"
        idx = np.sort(history["val_idx"])
        code = epochs.events[idx, 2]
        pick = np.sort(np.concatenate([idx[code == c][:3] for c in np.unique(code)]))
        held = epochs[pick]
        maps = {
            m: mfm.explain(held, model, method=m, bands=BANDS, verbose=False)
            for m in ("amplitude_gradients", "integrated_gradients", "freqmask")
        }
    finally:
        torch_threads.set_num_threads(n_threads)
    return held, epochs[np.sort(history["train_idx"])], model, maps


def _area(held, model, sal, operator, reference, curve="deletion"):
    curves = ev.deletion_curves(
        held,
        model,
        sal,
        level="instance",
        fractions=FRACTIONS,
        curves=(curve,),
        operator=operator,
        reference=reference,
        n_boot=0,
        random_state=0,
        verbose=False,
    )
    return curves.attrs[f"{curve}_auc_probability"]


@pytest.mark.parametrize("operator", ["zero", "reference"])
def test_limit_ranks_and_bounds_every_method(small, operator):
    held, train, model, maps = small
    ref = train if operator == "reference" else None
    lim = ev.deletion_limit(
        held, model, BANDS, operator=operator, reference=ref, n_draws=2
    )
    n_cells = len(lim.ch_names) * BANDS
    values = lim.get_data().reshape(len(held), -1)
    for row in values:  # a ranking: every cell once
        assert np.array_equal(np.sort(row), np.arange(1, n_cells + 1))
    n_draws = 2 if operator == "reference" else 1
    ks = np.unique(np.round(np.array(FRACTIONS) * n_cells).astype(int))
    expected = n_draws * sum(n_cells - k for k in ks[:-1])
    assert (lim.diagnostics["passes"] == expected).all()
    limit_area = _area(held, model, lim, operator, ref)
    for name, sal in maps.items():
        assert limit_area <= _area(held, model, sal, operator, ref), name
    # the search's own record: removing cells lowered the probability
    p = lim.diagnostics["probability"]
    assert p.shape == (len(held), len(ks) - 1)
    assert (np.diff(p.mean(0)) <= 1e-6).all()


def test_limit_lerf_and_guided_search(small):
    held, _, model, maps = small
    lerf = ev.deletion_limit(held, model, BANDS, order="lerf")
    lerf_area = _area(held, model, lerf, "zero", None, curve="lerf")
    for name, sal in maps.items():
        assert lerf_area >= _area(held, model, sal, "zero", None, "lerf"), name
    guide = maps["amplitude_gradients"]
    n_cand = 6
    guided = ev.deletion_limit(held, model, guide, n_candidates=n_cand)
    n_cells = len(guide.ch_names) * BANDS
    ks = np.unique(np.round(np.array(FRACTIONS) * n_cells).astype(int))
    cost = sum(max(n_cand, int(b - a)) for a, b in zip(ks[:-1], ks[1:], strict=True))
    assert (guided.diagnostics["passes"] == cost).all()
    # the first block is chosen among the guide's n_candidates top cells
    g_rank = ev._cell_ranks(guide.get_data(), 0).reshape(len(held), -1)
    l_rank = n_cells - guided.get_data().reshape(len(held), -1)
    first = l_rank < ks[1]
    assert (g_rank[first] < n_cand).all()
    # and it removes at least as much as its guide on the curve it searched
    assert _area(held, model, guided, "zero", None) <= _area(
        held, model, guide, "zero", None
    )
    with pytest.raises(ValueError, match="n_candidates must be at least 1"):
        ev.deletion_limit(held, model, guide, n_candidates=0)
    with pytest.raises(ValueError, match="group-level map"):
        ev.deletion_limit(held, model, guide.average())


def test_interaction_simulation_is_a_conjunction():
    from mne_freqmask.datasets.simulated import PlantedInteraction, make_epochs

    epochs, truth = make_epochs(
        n_subjects=1,
        n_epochs_per_class=40,
        effect=2.0,
        interaction=dict(),
        distractor=dict(channels=("C3", "C4"), band=(13.0, 19.0)),
        random_state=0,
    )
    assert isinstance(truth, PlantedInteraction)
    sal = mfm.SpectralSaliency(
        np.zeros((len(epochs.ch_names), 10)),
        epochs.info,
        mfm.FrequencyGrid(epochs.info["sfreq"], len(epochs.times), 10),
        method="x",
        dims=("channel", "band"),
    )
    cells = truth.cells(sal.ch_names, sal.band_edges)
    assert cells.sum() == 2  # one band on C3, one on C4
    x = epochs.get_data()
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / epochs.info["sfreq"])
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    strong = []
    for ch, (lo, hi) in zip(truth.channels, truth.bands, strict=True):
        sel = (freqs >= lo) & (freqs <= hi)
        logp = np.log(power[:, epochs.ch_names.index(ch)][:, sel].mean(-1))
        strong.append(logp > (logp.min() + logp.max()) / 2)  # weak: 1/9 the power
    strong = np.column_stack(strong)
    y = epochs.metadata["label"].to_numpy()
    # "high": both cells strong; "low": one strong, the other weak
    assert strong[y == 1].all(1).mean() > 0.9
    assert (strong[y == 0].sum(1) == 1).mean() > 0.8
    # a cell alone does not decide: each is strong in about half the low
    # epochs
    for i in range(2):
        assert strong[y == 0, i].mean() > 0.3
    with pytest.raises(ValueError, match="two cells"):
        make_epochs(n_subjects=1, interaction=dict(channels=("C3",)))


def test_explain_kw_refuses_method(small):
    held, _, model, maps = small
    with pytest.raises(ValueError, match="Remove 'method' from explain_kw"):
        ev.compare_methods(held, model, ["random"], explain_kw=dict(method="freqmask"))


def test_limit_with_rivals_bounds_them_exactly(small):
    """Under zero removal the search's evaluation is the score, so a limit
    that keeps, per epoch, the best of the search and the rivals is at least
    as good as every rival epoch by epoch."""
    held, _, model, maps = small
    rivals = list(maps.values())
    lim = ev.deletion_limit(held, model, BANDS, rivals=rivals)
    plain = ev.deletion_limit(held, model, BANDS)
    src = lim.diagnostics["source"]
    assert src.min() >= 0 and src.max() <= len(rivals)
    n_steps = plain.diagnostics["probability"].shape[1]
    extra = (len(rivals) + 1) * n_steps
    assert (lim.diagnostics["passes"] == plain.diagnostics["passes"] + extra).all()

    def per_epoch(sal):
        _, sc = ev.deletion_curves(
            held,
            model,
            sal,
            level="instance",
            fractions=FRACTIONS,
            curves=("deletion",),
            n_boot=0,
            return_epoch_scores=True,
            random_state=0,
            verbose=False,
        )
        return trapezoid(sc["deletion_probability"], FRACTIONS, axis=1)

    best = per_epoch(lim)
    assert (best <= per_epoch(plain) + 1e-5).all()
    for name, sal in maps.items():
        assert (best <= per_epoch(sal) + 1e-5).all(), name
    with pytest.raises(ValueError, match="one map per epoch"):
        ev.deletion_limit(held, model, BANDS, rivals=[rivals[0].average()])


def _probabilities(model, x):
    """The model's class probabilities for the epochs' data ``x``."""
    import torch

    with torch.no_grad():
        return torch.softmax(model(torch.as_tensor(x, dtype=torch.float32)), -1).numpy()


def test_expected_gradients_objective_is_complete(small):
    """With one donor the cell scores of objective="expected_gradients" sum
    to the drop of the target's probability when every cell is replaced by
    the donor's (completeness of integrated gradients), per epoch."""
    held, train, model, _ = small
    donor = train[:1]
    sal = mfm.explain(
        held,
        model,
        bands=BANDS,
        reference=donor,
        objective="expected_gradients",
        n_steps=64,
        verbose=False,
    )
    assert sal.method_params["objective"] == "expected_gradients"
    assert (sal.diagnostics["n_draws"] == 64).all()
    x = held.get_data()
    # FreqMask's target: the model's own prediction (soft)
    soft = _probabilities(model, x)
    picks = np.arange(len(held.ch_names))
    fill = np.repeat(donor.get_data(), len(held), axis=0)
    keep = np.zeros((len(held), len(picks), BANDS), bool)
    removed = ev.remove_cells(x, keep, sal.grid, picks, fill=fill)
    drop = (soft**2).sum(-1) - (soft * _probabilities(model, removed)).sum(-1)
    total = sal.get_data().reshape(len(held), -1).sum(1)
    assert np.abs(drop).max() > 0.05, "the donor changes nothing: no test"
    np.testing.assert_allclose(total, drop, atol=0.02 * np.abs(drop).max() + 1e-3)
    # signed: cells whose replacement raises the probability score below 0
    assert (sal.get_data() < 0).any() and (sal.get_data() > 0).any()
    # each epoch's donors and alphas are its own: the chunks do not matter
    kw = dict(bands=BANDS, reference=train, objective="expected_gradients")
    one = mfm.explain(held, model, n_steps=8, chunk_size=1, verbose=False, **kw)
    all_ = mfm.explain(
        held, model, n_steps=8, chunk_size=len(held), verbose=False, **kw
    )
    np.testing.assert_allclose(one.get_data(), all_.get_data(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match='use perturbation="reference"'):
        mfm.explain(
            held[:1],
            model,
            bands=BANDS,
            objective="expected_gradients",
            perturbation="generator",
            verbose=False,
        )
    with pytest.raises(ValueError, match="drop return_perturbed"):
        mfm.explain(held[:1], model, return_perturbed=True, verbose=False, **kw)
