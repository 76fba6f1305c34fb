"""Verification and Clever-Hans detection on real models and planted truth.

Five seeds of two kinds of simulated data (10 channels, 64 Hz, 2 s): *clean*,
where the only class signal is alpha power on C3/C4, and *artefact*, where the
only class signal is a class-correlated 1-3 Hz deflection on Fp1/Fp2. A small
ShallowFBCSPNet is trained on each; every test uses its held-out epochs.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("braindecode")

from mne_freqmask import explain  # noqa: E402
from mne_freqmask.datasets.simulated import make_epochs, plant_artifact  # noqa: E402
from mne_freqmask.evaluation import (  # noqa: E402
    clever_hans_report,
    clever_hans_test,
    frontal_channels,
    ground_truth_scores,
    score_planted,
    verify_planted,
)
from mne_freqmask.models import fit, untrained_copy  # noqa: E402

CH = "Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2".split()
SEEDS = range(5)
ARTIFACT = dict(channels=("Fp1", "Fp2"), band=(1.0, 3.0), amplitude=3.0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # tiny models train much faster on one thread than on two busy ones
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _data(kind, seed):
    kw = (
        dict(effect=1.5)
        if kind == "clean"
        else dict(effect=0.0, artifact=dict(ARTIFACT, probability=0.9))
    )
    return make_epochs(
        n_subjects=2,
        n_epochs_per_class=40,
        ch_names=CH,
        sfreq=64.0,
        n_times=128,
        random_state=seed,
        **kw,
    )


@pytest.fixture(scope="module")
def models(torch_threads, _one_thread):
    out = {}
    for kind in ("clean", "artifact"):
        for seed in SEEDS:
            epochs, truth = _data(kind, seed)
            model, hist = fit(
                epochs, "shallowfbcspnet", max_epochs=15, lr=3e-3, random_state=seed
            )
            held = epochs[hist["val_idx"]]
            assert hist["val_accuracy"][-1] >= 0.75, (kind, seed, hist)
            out[kind, seed] = (held, model, truth)
    return out


def _param_state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("seed", SEEDS)
def test_counterfactual_verdict(models, seed):
    """Every artefact model relies on frontal delta, no clean model does."""
    held, model, _ = models["artifact", seed]
    before = _param_state(model)
    data_before = held.get_data(copy=True)
    res = clever_hans_test(held, model, random_state=seed)
    assert res.relies, res
    assert res.verdict.startswith("relies on the suspected cells")
    s = res.scores.loc["all"]
    # removing the artefact cells costs the model; the matched controls do not
    assert s.loc["suspected", "probability_change_ci_high"] < 0
    assert s.loc["suspected", "accuracy"] < s.loc["original", "accuracy"] - 0.2
    assert abs(s.loc["control", "probability_change"]) < 0.1
    assert res.excess_ci[0] > 0 and res.excess_drop >= res.min_effect
    assert "relies" in repr(res) and "epochs>" in repr(res)
    # the model and the epochs are untouched
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    np.testing.assert_array_equal(held.get_data(), data_before)
    # the reference removal agrees
    assert clever_hans_test(held, model, removal="reference", random_state=0).relies

    held, model, _ = models["clean", seed]
    res = clever_hans_test(held, model, random_state=seed)
    assert not res.relies, res
    assert res.excess_drop < res.min_effect
    assert res.channels == ["Fp1", "Fp2", "F3", "F4"]
    controls = res.control_channels["delta"]
    assert len(controls) == 4 and not set(controls) & set(res.channels)
    assert 0.5 < res.power_ratio["delta"] < 2  # matched band power
    assert not clever_hans_test(held, model, removal="reference").relies


def test_counterfactual_options(models):
    held, model, _ = models["artifact", 0]
    # the artefact lives on Fp1/Fp2 at 1-3 Hz: naming other cells finds nothing
    other = clever_hans_test(held, model, channels=["O1", "O2"], bands=(1.0, 3.0))
    assert not other.relies
    assert other.bands == {"1-3 Hz": (1.0, 3.0)}
    named = clever_hans_test(
        held, model, channels=["fp1", "FP2"], bands={"slow": (0.5, 3.5)}
    )
    assert named.relies and named.channels == ["Fp1", "Fp2"]
    assert clever_hans_test(held, model, control="random", random_state=1).relies
    assert frontal_channels(["Fp1", "AF3", "FC1", "FT7", "Fz", "F10", "C3"]) == [
        "Fp1",
        "AF3",
        "Fz",
        "F10",
    ]
    with pytest.raises(ValueError, match="Invalid value for the 'control'"):
        clever_hans_test(held, model, control="nearest")
    with pytest.raises(ValueError, match="None of the suspected"):
        clever_hans_test(held, model, channels=["EOG1"])
    # an untrained model is at chance: the test says so
    torch.manual_seed(0)
    with pytest.warns(RuntimeWarning, match="at chance"):
        clever_hans_test(held, untrained_copy(model))


def test_screening_ratio_separates(models):
    """The attribution share, as a ratio to untrained copies, per class."""
    ratios = {}
    for (kind, seed), (held, model, _) in models.items():
        if seed > 2:  # three seeds of each kind keep the test short
            continue
        sal = explain(held, model, method="lrp", bands="canonical", verbose=False)
        rep = clever_hans_report(sal, epochs=held, model=model, n_baselines=3)
        assert rep.calibrated
        assert set(rep.per_class.index) == {"low", "high", "all"}
        assert {"share", "power_share", "baseline_share", "baseline_ratio"} <= set(
            rep.per_class.columns
        )
        ratios[kind, seed] = rep.per_class.loc["all", "baseline_ratio"]
        if kind == "clean":
            assert not rep.flagged, rep
        # the same share whether the map is passed per epoch or averaged
        assert clever_hans_report(sal).fraction == pytest.approx(
            clever_hans_report(sal.average()).fraction
        )
    clean = [v for (k, _), v in ratios.items() if k == "clean"]
    art = [v for (k, _), v in ratios.items() if k == "artifact"]
    assert max(clean) < min(art), ratios


def test_near_empty_map_warns(models):
    held, model, _ = models["clean", 0]
    sal = explain(held, model, method="lrp", bands="canonical", verbose=False)
    # a mask in [0, 1] whose largest value is 0.002
    values = np.abs(sal.get_data())
    tiny = sal.copy()
    tiny._data = 0.002 * values / values.max()
    with pytest.warns(RuntimeWarning, match="near-empty"):
        clever_hans_report(tiny)


@pytest.fixture(scope="module")
def distractor_models(torch_threads, _one_thread):
    """Alpha on C3/C4 under a stronger class-independent posterior alpha."""
    out = []
    for seed in (0, 1):
        epochs, truth = make_epochs(
            n_subjects=2,
            n_epochs_per_class=40,
            ch_names=CH,
            sfreq=64.0,
            n_times=128,
            distractor=dict(channels=("O1", "O2", "P3", "P4"), amplitude=3.0),
            random_state=seed,
        )
        model, hist = fit(
            epochs, "shallowfbcspnet", max_epochs=15, lr=3e-3, random_state=seed
        )
        out.append((epochs[hist["val_idx"]], model, truth))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_verify_planted(distractor_models, models, seed):
    held, model, truth = distractor_models[seed]
    res = verify_planted(held, model, truth, random_state=seed)
    assert res.passed, res
    assert res.margin >= res.min_margin
    assert "PASS" in repr(res)
    torch.manual_seed(seed)
    fresh = untrained_copy(model)
    with pytest.warns(RuntimeWarning, match="at chance"):
        bad = verify_planted(held, fresh, truth, random_state=seed)
    assert not bad.passed and "FAIL" in bad.verdict
    # one scorer: score_planted's auc is the absolute ground-truth AUROC
    sal = explain(held, model, method="lrp", bands="canonical", verbose=False)
    assert score_planted(sal, truth)["auc"] == pytest.approx(
        ground_truth_scores(sal, truth, absolute=True)["auroc"]
    )
    # without the distractor, untrained copies already score ~1: no verdict
    held, model, truth = models["clean", seed]
    res = verify_planted(held, model, truth, random_state=seed)
    assert not res.passed and "UNINFORMATIVE" in res.verdict


def test_plant_artifact(models):
    held, _, _ = models["clean", 0]
    art = plant_artifact(held, channels=("Fp1", "Fp2"), amplitude=3.0, random_state=0)
    assert art is not held and art.ch_names == held.ch_names
    flag = art.metadata["artifact"].to_numpy()
    high = art.metadata["label"].to_numpy() == 1
    assert flag[high].mean() > flag[~high].mean()
    diff = art.get_data() - held.get_data()
    assert np.abs(diff[:, 2:]).max() == 0  # only Fp1 / Fp2
    spec = np.abs(np.fft.rfft(diff[flag][:, 0], axis=-1)) ** 2
    freqs = np.fft.rfftfreq(diff.shape[-1], 1 / 64.0)
    assert spec[:, (freqs >= 1) & (freqs <= 3)].sum() > 0.99 * spec.sum()
