"""The amortised FreqMask explainer (issue #16): trained on some subjects, it
finds the planted cells of a subject it has never seen, in one forward pass.

conftest's simulated data plant alpha on C3/C4 (4 subjects x 50 epochs); the
explainer is fitted on subjects 0-2 and explains subject 3.
"""

import mne
import numpy as np
import pytest

import mne_freqmask as mfm
from mne_freqmask.evaluation import ground_truth_scores

#: few passes keep the fit short (the loss settles in ~10 passes here)
FIT_KW = dict(n_epochs=12, patience=4, random_state=0, verbose=False)


@pytest.fixture(scope="module")
def split(simulated):
    epochs, truth, model, _ = simulated
    subj = epochs.metadata["subject"].to_numpy()
    return epochs[subj != 3], epochs[subj == 3], truth, model


@pytest.fixture(scope="module")
def fitted(split):
    train, _, _, model = split
    return mfm.FreqMaskExplainer().fit(train, model, **FIT_KW)


def _state(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
    )


def test_recovers_planted_cells_on_unseen_subject(split, fitted):
    _, test, truth, _ = split
    sal = fitted.explain(test, verbose=False)
    assert sal.method == "freqmask_amortised"
    assert sal.data.shape == (len(test), 19, 10)
    assert sal.ch_names == test.ch_names
    np.testing.assert_array_equal(sal.events, test.events)
    assert sal.metadata["subject"].eq(3).all()
    assert 0 <= sal.data.min() and sal.data.max() <= 1
    scores = ground_truth_scores(sal, truth, level="instance")
    assert scores["auroc"] >= 0.9, scores
    hist = fitted.history
    assert len(hist["val_loss"]) == hist["n_epochs"] <= FIT_KW["n_epochs"]
    assert hist["val_loss"][hist["best_epoch"]] == min(hist["val_loss"])
    assert "FreqMaskExplainer" in repr(fitted) and "not fitted" not in repr(fitted)


def test_registry_equals_explain(split, fitted):
    _, test, _, model = split
    before = _state(model)
    sal = mfm.explain(
        test[:8], model, method="freqmask_amortised", explainer=fitted, verbose=False
    )
    np.testing.assert_allclose(
        sal.data, fitted.explain(test[:8], verbose=False).data, atol=1e-6
    )
    assert sal.method == "freqmask_amortised"
    after = _state(model)
    assert before[1:] == after[1:]
    for k, v in before[0].items():
        assert (after[0][k] == v).all()
    with pytest.raises(TypeError, match="needs explainer="):
        mfm.explain(test[:2], model, method="freqmask_amortised", verbose=False)
    with pytest.raises(ValueError, match="bands="):
        mfm.explain(
            test[:2],
            model,
            method="freqmask_amortised",
            explainer=fitted,
            bands=5,
            verbose=False,
        )
    other = mfm.models.make_model("eegnet", 19, 2, len(test.times), 128.0)
    with pytest.warns(RuntimeWarning, match="differ from those"):
        mfm.explain(
            test[:2],
            other,
            method="freqmask_amortised",
            explainer=fitted,
            verbose=False,
        )


def test_save_read_round_trip(split, fitted, tmp_path):
    _, test, _, _ = split
    fname = tmp_path / "explainer.pt"
    fitted.save(fname)
    back = mfm.read_freqmask_explainer(fname)
    np.testing.assert_array_equal(
        back.explain(test, verbose=False).data,
        fitted.explain(test, verbose=False).data,
    )
    assert back.ch_names == fitted.ch_names and back.history == fitted.history
    assert back.grid.band_names == fitted.grid.band_names
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted.save(fname)
    fitted.save(fname, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["explainer.pt"]  # no tmp left
    with pytest.raises(ValueError, match=r"end with \.pt"):
        fitted.save(tmp_path / "x.h5")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a file")
    with pytest.raises(ValueError, match="not a FreqMaskExplainer file"):
        mfm.read_freqmask_explainer(bad)


def test_seeded_and_model_untouched(split):
    train, test, _, model = split
    train = train[::2]  # short fits: reproducibility does not need quality
    kw = dict(FIT_KW, n_epochs=2, random_state=1)
    model.train()  # a flag to restore
    first = next(model.parameters())
    first.requires_grad_(False)  # and a mixed requires_grad
    before = _state(model)
    try:
        one = mfm.FreqMaskExplainer(hidden=64).fit(train, model, **kw)
        two = mfm.FreqMaskExplainer(hidden=64).fit(train, model, **kw)
        after = _state(model)
    finally:
        model.eval()
        first.requires_grad_(True)
    assert before[1:] == after[1:]
    for k, v in before[0].items():
        assert (after[0][k] == v).all()
    np.testing.assert_array_equal(
        one.explain(test, verbose=False).data, two.explain(test, verbose=False).data
    )
    assert one.history["val_loss"] == two.history["val_loss"]
    other = mfm.FreqMaskExplainer(hidden=64).fit(
        train, model, **dict(kw, random_state=2)
    )
    assert other.history["val_loss"] != one.history["val_loss"]


def test_bad_inputs(split, fitted):
    train, test, _, model = split
    with pytest.raises(RuntimeError, match="not fitted"):
        mfm.FreqMaskExplainer().explain(test)
    with pytest.raises(ValueError, match="lack"):
        fitted.explain(test.copy().drop_channels(["Fz"]), verbose=False)
    with pytest.raises(ValueError, match="reorder_channels"):
        fitted.explain(test.copy().reorder_channels(test.ch_names[::-1]), verbose=False)
    with pytest.raises(ValueError, match="samples"):
        fitted.explain(test.copy().crop(0, 1.0), verbose=False)
    with pytest.raises(ValueError, match="val_size"):
        mfm.FreqMaskExplainer().fit(train, model, val_size=1.0)
    with pytest.raises(ValueError, match="n_epochs"):
        mfm.FreqMaskExplainer().fit(train, model, n_epochs=0)
    with pytest.raises(TypeError, match="model"):
        mfm.FreqMaskExplainer().fit(train, "eegnet")
    with pytest.raises(ValueError, match="hidden"):
        mfm.FreqMaskExplainer(hidden=0)
    with pytest.raises(ValueError, match="shape"):
        fitted.predict_masks(np.zeros((2, 3, 4)))
    arr = mne.EpochsArray(test.get_data()[:2], test.info, verbose=False)
    np.testing.assert_allclose(
        fitted.explain(arr, verbose=False).data,
        fitted.explain(test[:2], verbose=False).data,
        atol=1e-6,
    )


def test_randomization_check_refits_the_explainer(split, fitted):
    """An amortised map is checked against an explainer refitted on the
    randomised model: re-explaining with the same explainer would compare
    the map with itself (Spearman 1, a false failure)."""
    from mne_freqmask.evaluation import check_explanation

    _, test, _, model = split
    code = test.events[:, 2]
    held = test[
        np.sort(np.concatenate([np.flatnonzero(code == c)[:8] for c in (1, 2)]))
    ]
    kw = dict(explainer=fitted, bands=fitted.grid.bands, picks=fitted.picks)
    sal = mfm.explain(held, model, method="freqmask_amortised", **kw)
    same = mfm.explain(held, model, method="freqmask_amortised", **kw)
    assert np.array_equal(sal.get_data(), same.get_data())
    res = check_explanation(
        held,
        model,
        sal,
        checks=("randomization",),
        explain_kw=kw,
        n_boot=200,
    )
    rho = res.details["randomization"]
    assert rho.mean() < 0.9  # not the map compared with itself
    with pytest.raises(ValueError, match="Remove 'method' from explain_kw"):
        check_explanation(
            held, model, sal, explain_kw=dict(kw, method="freqmask_amortised")
        )


def test_randomization_check_of_amortised_map_needs_the_explainer(split, fitted):
    """Without explain_kw the map's stored parameters do not hold the
    explainer that the check must refit: refused with the fix, not a raw
    TypeError about unknown parameters (issue #29, on real EEG)."""
    from mne_freqmask.evaluation import check_explanation

    _, test, _, model = split
    code = test.events[:, 2]
    held = test[np.concatenate([np.flatnonzero(code == c)[:2] for c in (1, 2)])]
    sal = fitted.explain(held, verbose=False)
    with pytest.raises(ValueError, match=r"explain_kw=dict\(explainer=explainer"):
        check_explanation(held, model, sal, checks=("randomization",))


@pytest.fixture(scope="module")
def fitted_eg(split):
    train, _, _, model = split
    exp = mfm.FreqMaskExplainer(objective="expected_gradients")
    return exp.fit(train, model, **FIT_KW)


def _pearson(one, two):
    """Mean over epochs of the Pearson correlation of two maps' values (the
    size of the large cells counts; a rank correlation would weigh the many
    near-zero cells of an expected-gradients map as much)."""
    a = one.get_data().reshape(len(one), -1)
    b = two.get_data().reshape(len(two), -1)
    return np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)])


def test_expected_gradients_imitates_the_per_epoch_map(split, fitted_eg):
    """objective="expected_gradients" (issue #29): trained on single-draw
    mask gradients, its one-pass map on an unseen subject correlates with
    per-epoch FreqMask's expected-gradients map (50 draws; Pearson), and an explainer
    with the same features but untrained weights does not."""
    import copy

    import torch

    from mne_freqmask._amortised_train import MaskNet

    train, test, truth, model = split
    sal = fitted_eg.explain(test, verbose=False)
    assert sal.method_params["objective"] == "expected_gradients"
    assert fitted_eg.method_params()["objective"] == "expected_gradients"
    assert "val_cross_entropy" not in fitted_eg.history
    eg = mfm.explain(
        test,
        model,
        reference=train,
        objective="expected_gradients",
        n_steps=50,
        random_state=0,
        verbose=False,
    )
    untrained = copy.deepcopy(fitted_eg)
    torch.manual_seed(0)
    untrained.net = MaskNet(len(fitted_eg.picks), fitted_eg.grid.n_bands).eval()
    r_fit = _pearson(sal, eg)
    r_untrained = _pearson(untrained.explain(test, verbose=False), eg)
    assert r_fit > 0.6 and r_fit > r_untrained + 0.4, (r_fit, r_untrained)
    # signed, like the per-epoch map: some cells' removal raises the probability
    assert sal.get_data().min() < 0 < sal.get_data().max()
    scores = ground_truth_scores(sal, truth, level="instance")
    assert scores["auroc"] >= 0.9, scores


def test_expected_gradients_round_trip_and_refit(split, fitted_eg, tmp_path):
    from mne_freqmask.evaluation._checks import _refit_explainer

    train, test, _, model = split
    fname = tmp_path / "eg.pt"
    fitted_eg.save(fname)
    back = mfm.read_freqmask_explainer(fname)
    assert back.objective == "expected_gradients"
    np.testing.assert_array_equal(
        back.explain(test, verbose=False).data,
        fitted_eg.explain(test, verbose=False).data,
    )
    assert back.provenance == fitted_eg.provenance
    assert "expected_gradients" in repr(back)
    # the randomisation check refits with the same objective
    code = test.events[:, 2]
    held = test[np.concatenate([np.flatnonzero(code == c)[:4] for c in (1, 2)])]
    kw = _refit_explainer(dict(explainer=fitted_eg), held, model, 0, "cpu")
    assert kw["explainer"].objective == "expected_gradients"
    assert kw["explainer"] is not fitted_eg
    with pytest.raises(ValueError, match="objective"):
        mfm.FreqMaskExplainer(objective="expected_gradient")
