"""The Clever-Hans test where the suspects' neighbours carry a correlated signal.

13 channels (64 Hz, 2 s). Every epoch of both classes carries a large slow
(1-3 Hz) "blink", the same waveform on Fp1/Fp2 and on their neighbours
(F7, F3, Fz, F4, F8). In the *artefact* data a further 1-3 Hz deflection is
planted on Fp1/Fp2 only, in every epoch of class "high" and no other: the
class is readable only as a spatial contrast between the suspects and their
neighbours (the blink cancels in Fp - F), so removing either side breaks the
model. In the *clean* data the class is alpha power on C3/C4. A small
ShallowFBCSPNet is trained on each (about 3 s).
"""

import mne
import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("braindecode")

from mne_freqmask.datasets.simulated import (  # noqa: E402
    _band_noise,
    make_epochs,
    plant_artifact,
)
from mne_freqmask.evaluation import clever_hans_test  # noqa: E402
from mne_freqmask.evaluation.counterfactual import _unit_verdict  # noqa: E402
from mne_freqmask.models import fit  # noqa: E402

CH = "Fp1 Fp2 F7 F3 Fz F4 F8 C3 C4 P3 P4 O1 O2".split()
SUSPECTS = ["Fp1", "Fp2"]
NEIGHBOURS = ["F7", "F3", "Fz", "F4", "F8"]


def _contrast_data(kind, seed):
    epochs, _ = make_epochs(
        n_subjects=2,
        n_epochs_per_class=40,
        ch_names=CH,
        sfreq=64.0,
        n_times=128,
        effect=1.5 if kind == "clean" else 0.0,
        random_state=seed,
        verbose=False,
    )
    x = epochs.get_data()
    idx = [CH.index(ch) for ch in SUSPECTS + NEIGHBOURS]
    rng = np.random.RandomState(seed + 100)
    blink = _band_noise(rng, (len(x), 1, x.shape[-1]), 64.0, 1.0, 3.0)
    x[:, idx] += 2.0 * float(np.median(x[:, idx].std(-1))) * blink
    epochs = mne.EpochsArray(
        x,
        epochs.info,
        epochs.events,
        epochs.tmin,
        epochs.event_id,
        metadata=epochs.metadata,
        verbose=False,
    )
    if kind == "artifact":  # class "high" (index 1) only
        epochs = plant_artifact(
            epochs,
            channels=SUSPECTS,
            amplitude=1.5,
            probability=1.0,
            target=1,
            random_state=seed,
            verbose=False,
        )
    return epochs


@pytest.fixture(scope="module")
def contrast_models(torch_threads):
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster on 2 busy cores
    out = {}
    try:
        for kind in ("artifact", "clean"):
            epochs = _contrast_data(kind, 0)
            model, hist = fit(
                epochs, "shallowfbcspnet", max_epochs=15, lr=3e-3, random_state=0
            )
            assert hist["val_accuracy"][-1] >= 0.8, (kind, hist["val_accuracy"])
            out[kind] = model.eval(), epochs[hist["val_idx"]]
    finally:
        torch.set_num_threads(n)
    return out


def test_named_suspects_with_correlated_neighbours(contrast_models):
    """Named channels: the neighbours are never controls; never 'no reliance'."""
    model, held = contrast_models["artifact"]
    # the data are the spatial-contrast case: removing the neighbours alone
    # costs the model as much as removing the suspects
    with pytest.warns(RuntimeWarning, match="controls are fewer"):
        neigh = clever_hans_test(held, model, channels=NEIGHBOURS, n_boot=300)
    assert neigh.per_class["suspect_drop"].max() > 0.3, neigh.per_class
    for removal in ("zero", "reference"):
        res = clever_hans_test(
            held, model, channels=SUSPECTS, removal=removal, n_boot=300
        )
        assert set(NEIGHBOURS) <= set(res.neighbours)
        controls = res.control_channels["delta"]
        assert len(controls) == 2
        assert not set(controls) & set(res.neighbours + SUSPECTS)
        # the controls are neutral and reported with their interval
        pooled = res.per_class.loc["all"]
        assert pooled["control_ci_high"] < res.min_effect
        assert res.relies and res.verdict.startswith("relies"), res
    # zeroed, the artefact class loses most (a reference epoch can lend the
    # artefact to the other class: there the other class loses)
    assert res.per_class["excess_drop"].idxmax() == "low"
    zero = clever_hans_test(held, model, channels=SUSPECTS, n_boot=300)
    assert zero.per_class["excess_drop"].idxmax() == "high"
    # whatever the controls cost, a large suspect drop is never "no reliance"
    frame = res.scores.loc["all"]
    sus = res.per_class.loc["all", "suspect_ci_low"]
    assert sus > res.min_effect
    for ex in np.linspace(-0.5, 0.05, 12):
        state, text = _unit_verdict(frame, (ex, ex - 0.02, ex + 0.02), 0.1)
        assert state == "inconclusive", text
        assert "removing the suspect cells alone costs" in text
    # the same with the controls costing as much as the suspects
    same = frame.copy()
    same.loc["control"] = frame.loc["suspected"]
    state, text = _unit_verdict(same, (0.0, -0.02, 0.02), 0.1)
    assert state == "inconclusive" and "the controls cost as much" in text
    assert "the controls are not neutral" in text


def test_per_class_rows_name_the_artefact_class(contrast_models):
    model, held = contrast_models["artifact"]
    # the default suspects: the 7 frontal channels; of 13, only O1/O2 are
    # not their neighbours
    with pytest.warns(RuntimeWarning, match="controls are fewer"):
        res = clever_hans_test(held, model, n_boot=300)
    assert res.control_channels["delta"] == ["O1", "O2"]
    assert res.relies and res.relies_classes == ["high"], res.per_class
    assert list(res.per_class.index) == ["all", "low", "high"]
    assert res.per_class.loc["high", "state"] == "relies"
    assert res.per_class.loc["low", "state"] != "relies"
    assert "class 'high'" in res.verdict
    s = res.scores
    assert s.index.names == ["class", "removed"]
    assert set(s.index.get_level_values("class")) == {"all", "low", "high"}
    # the artefact class loses its evidence, the other keeps it; pooled, the
    # drop is about the mean of the two (diluted)
    high = s.loc[("high", "suspected"), "probability_change"]
    low = s.loc[("low", "suspected"), "probability_change"]
    pooled = s.loc[("all", "suspected"), "probability_change"]
    assert high < -0.5 and abs(low) < 0.1
    assert high < pooled < low
    assert (s.loc["high", "n_units"] == res.per_class.loc["high", "n_epochs"]).all()


def test_clean_model_not_accused(contrast_models):
    model, held = contrast_models["clean"]
    with pytest.warns(RuntimeWarning, match="controls are fewer"):
        default = clever_hans_test(held, model, n_boot=300)
    for res in (
        default,
        clever_hans_test(held, model, channels=SUSPECTS, n_boot=300),
        clever_hans_test(
            held, model, channels=SUSPECTS, removal="reference", n_boot=300
        ),
    ):
        assert not res.relies and not res.relies_classes, res
        assert res.verdict.startswith(("no reliance", "inconclusive")), res
        assert set(res.per_class.index) == {"all", "low", "high"}


def test_groups_resample_whole_groups(contrast_models):
    """Three copies of each epoch: with groups the intervals are those of the
    single copy (the unit is the group); without them, narrower."""
    model, held = contrast_models["artifact"]
    kw = dict(channels=SUSPECTS, n_boot=200, random_state=1)
    one = clever_hans_test(held, model, **kw)
    copies = mne.concatenate_epochs([held] * 3, verbose=False)
    groups = np.tile(np.arange(len(held)), 3)
    grouped = clever_hans_test(copies, model, groups=groups, **kw)
    naive = clever_hans_test(copies, model, **kw)
    assert grouped.n_groups == len(held) and grouped.n_epochs == 3 * len(held)
    assert naive.n_groups == naive.n_epochs == 3 * len(held)
    assert "groups)" in repr(grouped)
    cols = ["excess_ci_low", "excess_ci_high", "suspect_ci_low", "suspect_ci_high"]
    pd.testing.assert_frame_equal(grouped.per_class[cols], one.per_class[cols])
    w_one = one.excess_ci[1] - one.excess_ci[0]
    w_naive = naive.excess_ci[1] - naive.excess_ci[0]
    assert w_naive < 0.75 * w_one
    # a metadata column names the groups too; a wrong length is refused
    copies.metadata = pd.DataFrame(dict(trial=groups))
    by_col = clever_hans_test(copies, model, groups="trial", **kw)
    assert by_col.n_groups == len(held)
    with pytest.raises(ValueError, match="one label per epoch"):
        clever_hans_test(held, model, groups=groups)


def test_wrong_input_scale_is_inconclusive(contrast_models):
    """A microvolt model given volts is at chance: inconclusive, with the hint."""
    model, held = contrast_models["artifact"]
    net = model[1]  # the network without its InputScaler(1e6)
    with pytest.warns(RuntimeWarning, match="at chance"):
        res = clever_hans_test(held, net, channels=SUSPECTS, n_boot=200)
    assert res.at_chance and not res.relies
    assert res.verdict.startswith("inconclusive: the model is at chance")
    assert "InputScaler(1e6)" in res.verdict


def test_no_positions_warns(contrast_models):
    model, held = contrast_models["clean"]
    bare = held.copy().set_montage(None)
    with pytest.warns(RuntimeWarning, match="neighbours cannot be found"):
        res = clever_hans_test(bare, model, channels=SUSPECTS, n_boot=100)
    assert res.neighbours == []
