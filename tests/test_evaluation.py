"""Evaluation metrics on cases with a known answer.

The planted truth of the simulated data, used as a saliency map, is the
perfect explanation; a random map is the control. Every metric must tell them
apart in the right direction.
"""

import copy

import numpy as np
import pytest
import torch

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.saliency import SpectralSaliency


def _like(sal, data, method):
    """A SpectralSaliency with ``sal``'s grid and other data."""
    same = sal.metadata is not None and len(sal.metadata) == len(data)
    return SpectralSaliency(
        data,
        sal.info,
        sal.freqs,
        sal.band_names,
        sal.band_edges,
        method=method,
        metadata=sal.metadata if same else None,
    )


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread here, restored after the module.

    On a shared 2-core machine, two threads per process oversubscribe the
    cores as soon as anything else runs (EEGNet training was measured 6x
    slower with 2 threads than with 1 at a load of 6).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def simulated_model():
    """Simulated epochs (alpha planted on C3/C4) and an EEGNet trained on them.

    Like conftest's ``simulated`` (same data and training), but trained on one
    thread (see ``_one_thread``).
    """
    from mne_freqmask.models import fit

    epochs, truth = make_epochs(n_subjects=4, n_epochs_per_class=25, random_state=0)
    model, history = fit(epochs, "eegnet", max_epochs=40, random_state=0)
    assert history["val_accuracy"][-1] > 0.9, "the simulated model did not learn"
    return epochs, truth, model, history


@pytest.fixture(scope="module")
def maps(simulated_model):
    """Held-out epochs, the perfect (planted) map and a random map, per epoch."""
    epochs, truth, model, history = simulated_model
    held = epochs[history["val_idx"]]
    grid_sal = mfm.explain(held, model, method="amplitude_gradients")
    cells = truth.cells(grid_sal.ch_names, grid_sal.band_edges)
    assert cells.sum() == 2
    rng = np.random.default_rng(0)
    perfect = np.repeat(cells[None].astype(float), len(held), 0)
    perfect += 0.01 * rng.random(perfect.shape)  # per-epoch jitter, same ranking
    random = rng.random(perfect.shape)
    return (
        held,
        truth,
        model,
        _like(grid_sal, perfect, "truth"),
        _like(grid_sal, random, "random"),
    )


def test_spearman_helper():
    a = np.arange(10.0)
    assert ev.spearman(a, a**3) == pytest.approx(1.0)
    assert ev.spearman(a, -a) == pytest.approx(-1.0)
    assert ev.spearman(a, np.ones(10)) == 0.0  # a flat map carries no ranking
    with pytest.raises(ValueError, match="differ in size"):
        ev.spearman(a, a[:5])


def test_cell_ranks_break_ties():
    flat = np.zeros((2, 3))
    assert sorted(ev._cell_ranks(flat).ravel()) == list(range(6))
    np.testing.assert_array_equal(ev._cell_ranks(flat).ravel(), np.arange(6))
    shuffled = ev._cell_ranks(flat, random_state=1).ravel()
    assert sorted(shuffled) == list(range(6))
    assert not np.array_equal(shuffled, np.arange(6))
    # ties never reorder distinct values
    vals = np.array([[3.0, 1.0, 1.0], [2.0, 1.0, 0.0]])
    ranks = ev._cell_ranks(vals, random_state=0)
    assert ranks[0, 0] == 0 and ranks[1, 0] == 1 and ranks[1, 2] == 5


@pytest.mark.parametrize("level", ["group", "instance"])
def test_removal_game_truth_beats_random(maps, level):
    held, _, model, perfect, random = maps
    good = mfm.evaluate_removal(held, model, perfect, level=level)
    bad = mfm.evaluate_removal(held, model, random, level=level)
    assert good.loc["original", "accuracy"] > 0.9
    assert good.attrs["gap"] > 0.3
    assert good.attrs["gap"] > bad.attrs["gap"] + 0.2


@pytest.mark.parametrize("level", ["group", "instance"])
def test_deletion_curves_truth_vs_random(maps, level):
    held, _, model, perfect, random = maps
    good = ev.deletion_curves(held, model, perfect, level=level, n_points=11)
    bad = ev.deletion_curves(held, model, random, level=level, n_points=11)
    n_cells = perfect.shape[1] * perfect.shape[2]
    assert good.attrs["n_cells_total"] == n_cells
    assert good.index[0] == 0 and good.index[-1] == 1
    # endpoints: nothing removed = the original data, everything removed alike
    orig = mfm.evaluate_removal(held, model, perfect).loc["original", "accuracy"]
    assert good["deletion_accuracy"].iloc[0] == orig
    assert good["insertion_accuracy"].iloc[-1] == orig
    assert good["deletion_accuracy"].iloc[-1] == bad["deletion_accuracy"].iloc[-1]
    # the perfect map: deleting its top cells hurts at once, inserting them helps
    assert good.attrs["deletion_auc"] < bad.attrs["deletion_auc"] - 0.15
    assert good.attrs["insertion_auc"] > bad.attrs["insertion_auc"] + 0.1
    assert (
        good.attrs["deletion_auc_probability"] < bad.attrs["deletion_auc_probability"]
    )
    assert (
        good.attrs["insertion_auc_probability"] > bad.attrs["insertion_auc_probability"]
    )
    with pytest.raises(ValueError, match="n_points"):
        ev.deletion_curves(held, model, perfect, n_points=1)


def test_ground_truth_scores(maps):
    held, truth, _, perfect, random = maps
    good = ev.ground_truth_scores(perfect, truth)
    assert good["auroc"] == 1.0 and good["precision_at_k"] == 1.0
    assert good["k"] == good["n_planted"] == 2
    bad = ev.ground_truth_scores(random, truth, level="instance")
    assert 0.2 < bad["auroc"] < 0.8 and bad["precision_at_k"] < 0.5
    assert bad["chance_precision"] == pytest.approx(
        2 / perfect.shape[1] / perfect.shape[2]
    )
    # the inverted map ranks the planted cells last
    inverted = _like(perfect, -perfect.get_data(), "inverted")
    assert ev.ground_truth_scores(inverted, truth)["auroc"] == 0.0
    # a boolean array works as the truth; a hand-checked AUROC
    cells = np.zeros(perfect.shape[1:], bool)
    cells[0, :2] = True
    values = np.zeros(perfect.shape[1:])
    values[0, 0], values[1, 0] = 2.0, 1.0  # one planted cell first, one tied
    n_neg = cells.size - 2
    # planted (0, 0) beats every negative; planted (0, 1) = 0 ties n_neg - 1
    expected = (n_neg + 0.5 * (n_neg - 1)) / (2 * n_neg)
    score = ev.ground_truth_scores(_like(perfect, values[None], "x"), cells, k=1)
    assert score["precision_at_k"] == 1.0
    assert score["auroc"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="both"):
        ev.ground_truth_scores(perfect, np.zeros_like(cells))


def test_ood_score_in_vs_out_of_distribution():
    epochs, _ = make_epochs(n_subjects=2, n_epochs_per_class=30, random_state=3)
    x = epochs.get_data()
    ref, same = x[::2], x[1::2]
    sfreq = epochs.info["sfreq"]
    score_in = ev.ood_score(ref, same, sfreq=sfreq)
    # shifted: an extra 20 Hz rhythm on every channel (the larger, the less
    # likely), or all amplitudes doubled
    t = np.arange(x.shape[-1]) / sfreq
    sine = same.std() * np.sin(2 * np.pi * 20 * t)
    scores = [ev.ood_score(ref, same + a * sine, sfreq=sfreq) for a in (0.5, 1, 2)]
    assert score_in > scores[0] > scores[1] > scores[2]
    assert scores[2] < score_in - 2
    shifted = same + 2 * sine
    assert ev.ood_score(ref, 2 * same, sfreq=sfreq) < score_in - 20
    # the removal game's zeroed cells are far out of distribution
    grid = mfm.FrequencyGrid(sfreq, x.shape[-1], 10)
    keep = np.ones((x.shape[1], 10), bool)
    keep[:, 2] = False
    zeroed = ev.remove_cells(same.astype(np.float32), keep, grid, np.arange(x.shape[1]))
    assert ev.ood_score(ref, zeroed, sfreq=sfreq) < score_in - 5
    # Epochs in, per-sample out, other bandwidth rules
    per = ev.ood_score(epochs[::2], epochs[1::2], per_sample=True)
    assert per.shape == (len(same),) and per.mean() == pytest.approx(score_in)
    for bw in ("silverman", "loo", 0.5):
        assert ev.ood_score(ref, same, sfreq=sfreq, bandwidth=bw) > ev.ood_score(
            ref, shifted, sfreq=sfreq, bandwidth=bw
        )
    with pytest.raises(ValueError, match="sfreq"):
        ev.ood_score(ref, same)
    with pytest.raises(ValueError, match="same"):
        ev.ood_score(ref, same[:, :3], sfreq=sfreq)


def test_freqmask_returns_perturbed_epochs(simulated_model):
    epochs, _, model, history = simulated_model
    sub = epochs[history["val_idx"][:6]]
    picks = ["C3", "C4", "Cz", "Pz"]
    sal = mfm.explain(sub, model, picks=picks, n_steps=20, return_perturbed=True)
    xhat = sal.diagnostics["perturbed"]
    x = sub.get_data()
    assert xhat.shape == x.shape and xhat.dtype == np.float32
    assert np.isfinite(xhat).all()
    other = [i for i, ch in enumerate(sub.ch_names) if ch not in picks]
    np.testing.assert_array_equal(xhat[:, other], x[:, other].astype(np.float32))
    c3 = sub.ch_names.index("C3")
    assert not np.allclose(xhat[:, c3], x[:, c3])
    assert "return_perturbed" not in sal.method_params
    plain = mfm.explain(sub, model, picks=picks, n_steps=20)
    assert "perturbed" not in plain.diagnostics
    np.testing.assert_allclose(plain.get_data(), sal.get_data(), atol=1e-6)


def test_cascading_randomization_lowers_correlation(simulated_model):
    epochs, _, model, history = simulated_model
    held = epochs[history["val_idx"]]
    before = copy.deepcopy(model.state_dict())
    out = ev.cascading_randomization(
        held, model, method="amplitude_gradients", layers=3
    )
    assert list(out.columns) == [
        "layers",
        "n_layers",
        "accuracy",
        "spearman",
        "spearman_instance",
    ]
    assert len(out) == 4 and out["spearman"].iloc[0] == 1.0
    assert out["n_layers"].is_monotonic_increasing
    assert out["spearman"].iloc[-1] < 0.8
    assert out["spearman_instance"].iloc[-1] < 0.8
    assert out["spearman"].iloc[1:].max() < 1.0
    assert out["accuracy"].iloc[-1] < out["accuracy"].iloc[0]
    for key, value in model.state_dict().items():  # the user's model is untouched
        assert torch.equal(value, before[key]), key
    # FreqMask: the map of a fully random model has nothing in common
    sub = held[:8]
    sal = mfm.explain(sub, model, n_steps=40)
    fm = ev.cascading_randomization(
        sub, model, saliency=sal, layers=1, explain_kw=dict(n_steps=40)
    )
    assert len(fm) == 2 and fm["spearman"].iloc[-1] < 0.5
    with pytest.raises(ValueError, match="layers"):
        ev.cascading_randomization(held, model, method="amplitude_gradients", layers=0)


def test_label_randomization_changes_map(simulated_model):
    epochs, _, model, history = simulated_model
    train, held = epochs[history["train_idx"]], epochs[history["val_idx"]]
    out = ev.label_randomization(
        held,
        model,
        train_epochs=train,
        method="amplitude_gradients",
        fit_kw=dict(max_epochs=5),
    )
    assert list(out.index) == ["original", "shuffled_labels"]
    assert out.loc["shuffled_labels", "spearman"] < 0.8
    assert out.loc["shuffled_labels", "accuracy"] < out.loc["original", "accuracy"]
    assert out.attrs["model"] is not model


def test_cell_permutation_test(maps):
    held, truth, _, perfect, random = maps
    cells = truth.cells(perfect.ch_names, perfect.band_edges)
    rng = np.random.default_rng(1)
    noisy = perfect.get_data() + 0.3 * rng.standard_normal(perfect.shape)
    noisy = _like(perfect, noisy, "noisy")
    for adjacency in ("auto", None):
        res = ev.cell_permutation_test(noisy, adjacency=adjacency, n_permutations=200)
        assert res.correction == ("cluster" if adjacency else "tmax")
        assert (res.p_values[cells] < 0.05).all() and res.t[cells].min() > 3
        if adjacency is None:  # max-t: exactly the planted cells
            np.testing.assert_array_equal(res.significant, cells)
            assert res.clusters == []
        else:  # clusters: inference on whole clusters, each holding a planted cell
            assert res.significant[cells].all() and res.significant.sum() <= 6
            sig = [
                c
                for c, cp in zip(res.clusters, res.cluster_p_values, strict=True)
                if cp < 0.05
            ]
            assert sig and all((c & cells).any() for c in sig)
        null = ev.cell_permutation_test(random, adjacency=adjacency, n_permutations=200)
        assert null.significant.sum() <= 1
    res = ev.cell_permutation_test(noisy, adjacency=None, n_permutations=200)
    df = res.to_data_frame()
    assert len(df) == cells.size and df["significant"].sum() == 2
    assert "2/190 cells" in repr(res)
    # a null map as baseline (e.g. the map of a randomised model: here the same
    # noise without the planted cells), per epoch (paired) or averaged
    null_map = _like(perfect, 0.3 * rng.standard_normal(perfect.shape), "null")
    for base in (null_map, null_map.average()):
        res = ev.cell_permutation_test(noisy, baseline=base, n_permutations=200)
        assert res.significant[cells].all() and res.significant.sum() <= 6
    res = ev.cell_permutation_test(noisy, groups="subject", n_permutations=200)
    assert res.n_observations == len(np.unique(held.metadata["subject"]))
    with pytest.raises(ValueError, match="metadata column"):
        ev.cell_permutation_test(noisy, groups="nope")


def test_leave_one_subject_out():
    from mne_freqmask.workflows import leave_one_subject_out

    epochs, _ = make_epochs(n_subjects=3, n_epochs_per_class=10, random_state=0)
    res = leave_one_subject_out(
        epochs,
        "eegnet",
        subjects=[0, 1],
        method="amplitude_gradients",
        fit_kw=dict(max_epochs=8, lr=3e-3),
        n_explain=6,
    )
    assert list(res.scores.index) == [0, 1]
    assert (res.scores["n_epochs"] == 20).all() and (
        res.scores["n_explained"] == 6
    ).all()
    for col in (
        "original",
        "RN",
        "RS",
        "gap",
        "gap_instance",
        "deletion_auc",
        "spearman_seen",
    ):
        assert res.scores[col].notna().all(), col
    assert res.unseen.level == "group" and res.unseen.nave == 12
    assert res.seen.nave == 12
    assert -1 <= res.correlation <= 1
    assert set(res.models) == {0, 1, "all"}
    assert "2 held-out subjects" in repr(res)
    with pytest.raises(ValueError, match="reference"):
        leave_one_subject_out(epochs, explain_kw=dict(reference=epochs))
    with pytest.raises(ValueError, match="no epochs"):
        leave_one_subject_out(epochs, subjects=[7])


@pytest.mark.parametrize("random_state", [None, 0])
def test_cell_ranks_in_blocks_equal_one_block(monkeypatch, random_state):
    """Ranking block by block (bounded memory) gives the ranks of one sort of
    the whole array, ties included, seeded or not."""
    from mne_freqmask.evaluation import _common

    values = np.random.default_rng(0).integers(0, 3, (50, 4, 3)).astype(np.float32)
    whole = _common._cell_ranks(values, random_state)
    monkeypatch.setattr(_common, "_RANK_BLOCK", 7)
    blocks = _common._cell_ranks(values, random_state)
    np.testing.assert_array_equal(blocks, whole)
    # every map's ranks are a permutation of its cells, most salient first
    flat = whole.reshape(50, -1)
    assert (np.sort(flat, axis=1) == np.arange(12)).all()
    top = np.take_along_axis(values.reshape(50, -1), flat.argmin(1)[:, None], 1)
    assert (top[:, 0] == values.reshape(50, -1).max(1)).all()
