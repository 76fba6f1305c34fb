"""The class a map explains (issue #29): recorded by explain(), kept by the
container, and scored by the evaluation with ``y="explained"``.

A small EEGNet trained for a few epochs on the alpha simulation (about 0.7
accuracy) misclassifies some epochs: there a map of the prediction explains
another class than the label, and the curves must be able to score it on
the class it explains.
"""

import numpy as np
import pytest
import torch

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev
from mne_freqmask._inputs import epochs_labels

CHS = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "P4"]
FRACTIONS = (0.0, 0.1, 0.2, 0.3)


@pytest.fixture(scope="module")
def weak(torch_threads):
    """10 epochs (correct and misclassified ones of both predicted classes),
    a briefly trained EEGNet, its probabilities, and two maps of them."""
    from mne_freqmask.datasets.simulated import make_epochs
    from mne_freqmask.models import fit

    n_threads = torch_threads.get_num_threads()
    torch_threads.set_num_threads(1)
    try:
        epochs, _ = make_epochs(
            n_subjects=2, n_epochs_per_class=20, ch_names=CHS, random_state=0
        )
        model, _ = fit(epochs, "eegnet", max_epochs=10, random_state=0)
        with torch.no_grad():
            x = torch.as_tensor(epochs.get_data(), dtype=torch.float32)
            prob = torch.softmax(model(x), -1).numpy()
        pred, labels = prob.argmax(1), epochs_labels(epochs)
        pick = []
        for right in (True, False):
            for c in (0, 1):
                idx = np.flatnonzero(((pred == labels) == right) & (pred == c))
                pick.extend(idx[: 3 if right else 2])
        pick = np.sort(pick)
        held = epochs[pick]
        maps = {
            "grad": mfm.explain(held, model, method="amplitude_gradients", bands=4),
            "fm": mfm.explain(held, model, method="freqmask", bands=4, n_steps=20),
        }
    finally:
        torch_threads.set_num_threads(n_threads)
    wrong = pred[pick] != labels[pick]
    assert wrong.any() and (~wrong).any(), "need correct and misclassified epochs"
    return held, model, prob[pick], labels[pick], wrong, maps


def test_explain_records_the_class(weak):
    """target=None records the prediction (the argmax of FreqMask's soft
    target), "true" the labels, an array that array."""
    held, model, prob, labels, wrong, maps = weak
    pred = prob.argmax(1)
    for sal in maps.values():
        assert sal.method_params["target"] == "prediction"
        np.testing.assert_array_equal(sal.diagnostics["explained_class"], pred)
        assert "explains the prediction" in repr(sal)
    true = mfm.explain(
        held, model, method="amplitude_gradients", bands=4, target="true"
    )
    assert true.method_params["target"] == "true"
    np.testing.assert_array_equal(true.diagnostics["explained_class"], labels)
    assert "explains the true class" in repr(true)
    given = np.zeros(len(held), int)
    fixed = mfm.explain(
        held, model, method="amplitude_gradients", bands=4, target=given
    )
    assert fixed.method_params["target"] == "given"
    np.testing.assert_array_equal(fixed.diagnostics["explained_class"], given)
    # easyPEASI scores the labels whatever target says: it records them
    peasi = mfm.explain(held, model, method="easypeasi", bands=4, target=given)
    assert peasi.method_params["target"] == "true"
    np.testing.assert_array_equal(peasi.diagnostics["explained_class"], labels)
    # the record is about the map: a map of the true class differs from the
    # map of the prediction exactly where the two classes differ
    diff = ~np.isclose(true.get_data(), maps["grad"].get_data()).all((1, 2))
    np.testing.assert_array_equal(diff, wrong)


def test_record_travels(weak, tmp_path):
    """Selection, pick, copy, save / read, concatenation and averaging."""
    held, model, prob, labels, wrong, maps = weak
    sal = maps["fm"]
    pred = prob.argmax(1)
    np.testing.assert_array_equal(
        sal[[1, 3]].diagnostics["explained_class"], pred[[1, 3]]
    )
    name = next(iter(held.event_id))
    sub = sal[name]
    code = held.event_id[name]
    np.testing.assert_array_equal(
        sub.diagnostics["explained_class"], pred[held.events[:, 2] == code]
    )
    picked = sal.copy().pick(["C3", "C4"])
    np.testing.assert_array_equal(picked.diagnostics["explained_class"], pred)
    fname = tmp_path / "fm-sal.h5"
    sal.save(fname)
    back = mfm.read_saliency(fname)
    assert back == sal and back.method_params["target"] == "prediction"
    np.testing.assert_array_equal(back.diagnostics["explained_class"], pred)
    # concatenating maps chosen in different ways keeps each epoch's class
    true = mfm.explain(
        held, model, method="amplitude_gradients", bands=4, target="true"
    )
    both = mfm.concatenate_saliencies([maps["grad"], true])
    assert both.method_params["target"] == "mixed"
    np.testing.assert_array_equal(
        both.diagnostics["explained_class"], np.concatenate([pred, labels])
    )
    # a group-level map keeps how the class was chosen, not the classes
    mean = sal.average()
    assert mean.method_params["target"] == "prediction"
    assert "explained_class" not in mean.diagnostics
    with pytest.raises(ValueError, match="group-level map"):
        ev.deletion_curves(held, model, mean, y="explained")
    # a time-resolved map records it too, and keeps it over its windows
    tfr = mfm.explain(
        held, model, method="amplitude_gradients", bands=4, time_windows=(0.5, 0.25)
    )
    np.testing.assert_array_equal(tfr.diagnostics["explained_class"], pred)
    np.testing.assert_array_equal(
        tfr.average(dim="times").diagnostics["explained_class"], pred
    )


def test_map_without_record(weak, tmp_path):
    """A map built by hand (or an older file) still works, and y="explained"
    says why it cannot score it."""
    held, model, prob, labels, wrong, maps = weak
    sal = maps["grad"]
    diag = {k: v for k, v in sal.diagnostics.items() if k != "explained_class"}
    old = sal._replace(sal.get_data(), diagnostics=diag)
    fname = tmp_path / "old-sal.h5"
    old.save(fname)
    back = mfm.read_saliency(fname)
    assert back == old
    curves = ev.deletion_curves(held, model, back, fractions=FRACTIONS, n_boot=0)
    assert np.isfinite(curves["deletion_probability"]).all()
    with pytest.raises(ValueError, match="does not record the class it explains"):
        ev.deletion_curves(held, model, back, y="explained")
    mixed = mfm.concatenate_saliencies([sal, old])  # what all share: no record
    assert "explained_class" not in mixed.diagnostics
    with pytest.raises(ValueError, match='y must be None.*"explained"'):
        ev.deletion_curves(held, model, sal, y="predicted")


def test_curves_score_the_explained_class(weak):
    """On a misclassified epoch the curve of a map of the prediction starts,
    with y="explained", from the predicted class's probability; with the
    default y=None (unchanged) from the true class's."""
    held, model, prob, labels, wrong, maps = weak
    pred = prob.argmax(1)
    n = np.arange(len(held))
    kw = dict(level="instance", fractions=FRACTIONS, n_boot=0, return_epoch_scores=True)
    _, expl = ev.deletion_curves(held, model, maps["grad"], y="explained", **kw)
    _, dflt = ev.deletion_curves(held, model, maps["grad"], **kw)
    _, lab = ev.deletion_curves(held, model, maps["grad"], y=labels, **kw)
    start = expl["deletion_probability"][:, 0]
    np.testing.assert_allclose(start, prob[n, pred], atol=1e-5)
    np.testing.assert_allclose(
        dflt["deletion_probability"][:, 0], prob[n, labels], atol=1e-5
    )
    assert (start[wrong] > 0.5).all() and (
        dflt["deletion_probability"][wrong, 0] < 0.5
    ).all()
    for key in dflt:  # the default is the labels, as before
        np.testing.assert_array_equal(dflt[key], lab[key])
    # the removal game: on the explained class the unperturbed model is
    # always "right", on the labels only where it classifies correctly
    games = {
        y: ev.evaluate_removal(held, model, maps["grad"], level="instance", y=y)
        for y in ("explained", None)
    }
    assert games["explained"].loc["original", "accuracy"] == 1.0
    assert games[None].loc["original", "accuracy"] == pytest.approx(1 - wrong.mean())


def test_compare_methods_explained(weak):
    """Maps of one class are scored on it (the random control too); maps of
    different classes are refused with the fix."""
    held, model, prob, labels, wrong, maps = weak
    pred = prob.argmax(1)
    kw = dict(
        rankings=("instance",),
        operators=("zero",),
        orders=("morf",),
        fractions=FRACTIONS,
        n_boot=0,
        return_epoch_scores=True,
    )
    methods = {"grad": maps["grad"], "fm": maps["fm"], "random": "random"}
    _, expl = ev.compare_methods(held, model, methods, y="explained", **kw)
    _, given = ev.compare_methods(held, model, methods, y=pred, **kw)
    _, dflt = ev.compare_methods(held, model, methods, **kw)
    np.testing.assert_array_equal(expl["area"], given["area"])
    assert not np.allclose(expl["area"], dflt["area"])
    true = mfm.explain(
        held, model, method="amplitude_gradients", bands=4, target="true"
    )
    with pytest.raises(ValueError, match=r"target 'true'.*same target"):
        ev.compare_methods(
            held, model, {"grad": maps["grad"], "true": true}, y="explained"
        )
    with pytest.raises(ValueError, match="random control"):
        ev.compare_methods(held, model, ["random"], y="explained", **kw)
    # check_explanation: the deletion checks on the explained class, the
    # accuracy on the labels
    res = ev.check_explanation(
        held, model, maps["grad"], checks=("deletion",), y="explained", n_boot=20
    )
    assert res.accuracy == pytest.approx(1 - wrong.mean())
    area = {}
    for y, table in (
        ("explained", res.details["deletion"]),
        (
            "pred",
            ev.compare_methods(
                held,
                model,
                {"map": maps["grad"]},
                y=pred,
                operators=("reference",),
                rankings=("instance",),
                n_boot=0,
            ),
        ),
        (
            "labels",
            ev.compare_methods(
                held,
                model,
                {"map": maps["grad"]},
                operators=("reference",),
                rankings=("instance",),
                n_boot=0,
            ),
        ),
    ):
        row = table[
            (table["method"] == "map")
            & (table["statistic"] == "area")
            & (table["metric"] == "probability")
            & (table["order"] == "MoRF")
        ]
        area[y] = float(row["score"].iloc[0])
    assert area["explained"] == area["pred"] != area["labels"]


def test_limit_for_the_explained_class(weak):
    """deletion_limit(y="explained") searches for the predicted class: with
    the maps as rivals its curve (scored on that class) bounds every map's,
    and it records the class for the comparison."""
    held, model, prob, labels, wrong, maps = weak
    pred = prob.argmax(1)
    rivals = [maps["grad"], maps["fm"]]
    lim = ev.deletion_limit(
        held, model, maps["grad"], fractions=FRACTIONS, rivals=rivals, y="explained"
    )
    np.testing.assert_array_equal(lim.diagnostics["explained_class"], pred)
    assert lim.method_params["target"] == "prediction"
    kw = dict(
        rankings=("instance",),
        operators=("zero",),
        orders=("morf",),
        fractions=FRACTIONS,
        n_boot=0,
        return_epoch_scores=True,
    )
    methods = {"limit": lim, "grad": maps["grad"], "fm": maps["fm"]}
    _, per = ev.compare_methods(held, model, methods, y="explained", **kw)
    per = per[per["metric"] == "probability"]
    area = {
        m: g.sort_values("unit")["area"].to_numpy() for m, g in per.groupby("method")
    }
    for m in ("grad", "fm"):
        assert (area["limit"] <= area[m] + 1e-6).all(), m
    # searched for the labels, it is refused next to maps of the prediction
    on_labels = ev.deletion_limit(held, model, maps["grad"], fractions=FRACTIONS)
    assert on_labels.method_params["target"] == "true"
    with pytest.raises(ValueError, match="explains another class"):
        ev.compare_methods(
            held, model, {"limit": on_labels, "grad": maps["grad"]}, y="explained", **kw
        )
    true = mfm.explain(
        held, model, method="amplitude_gradients", bands=4, target="true"
    )
    with pytest.raises(ValueError, match=r"rivals\[0\] explains another class"):
        ev.deletion_limit(held, model, maps["grad"], rivals=[true], y="explained")
    with pytest.raises(ValueError, match="pass the map"):
        ev.deletion_limit(held, model, 4, y="explained")


def test_randomization_remakes_the_explained_class(weak):
    """The randomisation check re-explains a map of the labels (or of given
    classes) for the same classes, and a map of the prediction for the
    randomised model's own prediction."""
    from mne_freqmask.evaluation._checks import _explain_kw

    held, model, prob, labels, wrong, maps = weak
    true = mfm.explain(
        held, model, method="amplitude_gradients", bands=4, target="true"
    )
    np.testing.assert_array_equal(_explain_kw(true, None)["target"], labels)
    assert "target" not in _explain_kw(maps["grad"], None)
    res = ev.check_explanation(held, model, true, checks=("randomization",), n_boot=20)
    assert np.isfinite(res.checks.loc["randomization", "value"])
