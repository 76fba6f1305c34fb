"""Diagnostics that warn: each warning triggered by the situation it names.

pyproject.toml ignores these warnings for the rest of the suite (many tests
run a few FreqMask steps or untrained models on purpose); ``pytest.warns``
records them here whatever the filters say.
"""

import numpy as np
import pytest
import torch

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev
from mne_freqmask.methods._stopping import STOP_REASONS
from mne_freqmask.models import InputScaler, make_model


@pytest.fixture(scope="module")
def held(simulated):
    epochs, _, model, history = simulated
    return epochs[np.sort(history["val_idx"])[:16]], model


def test_model_trained_on_microvolts_given_volts(held):
    """models.fit wraps the net in InputScaler(1e6); the bare net was trained
    on microvolts, and on volts it predicts one class for every epoch."""
    epochs, model = held
    assert isinstance(model[0], InputScaler)
    net = model[1]
    match = r"predicts class \d for all 16 epochs.*InputScaler\(1e6\)"
    with pytest.warns(RuntimeWarning, match=match):
        mfm.explain(epochs, net, method="amplitude_gradients", verbose=False)
    # the wrapped model tells the epochs apart: no warning
    with _no_warning():
        mfm.explain(epochs, model, method="amplitude_gradients", verbose=False)


class _no_warning:
    """Fail if the block emits a RuntimeWarning of the package."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.rec = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        ours = [w for w in self.rec if issubclass(w.category, RuntimeWarning)]
        assert not ours, [str(w.message) for w in ours]


def test_fit_that_hits_the_step_cap(held):
    epochs, model = held
    with pytest.warns(RuntimeWarning, match=r"1\d of 16 epochs reached n_steps=15"):
        sal = mfm.explain(epochs, model, n_steps=15, min_steps=1, verbose=False)
    capped = sal.diagnostics["stop"] == STOP_REASONS.index("n_steps reached")
    assert capped.sum() >= 14  # measured 15 of 16
    assert (sal.diagnostics["n_steps"][capped] == 15).all()


class _Blind(torch.nn.Module):
    """A classifier whose output does not depend on its input."""

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor([0.3, -0.3]))

    def forward(self, x):
        return self.bias.expand(len(x), 2) + 0 * x.sum((1, 2))[:, None]


def test_model_blind_to_the_input():
    """One class for every epoch, and a flat map: the L1 term pulls every
    cell down alike. A flat map has no ranking, so the default stopping rule
    (on the ranking) never sees it settle and every fit runs to the cap.
    With the paper's rule (on the loss) and without the L1 terms nothing
    improves the loss, and every fit stops at the first step it allows."""
    from mne_freqmask.datasets.simulated import make_epochs

    epochs, _ = make_epochs(n_subjects=1, n_epochs_per_class=5, verbose=False)
    with pytest.warns(RuntimeWarning) as rec:
        sal = mfm.explain(epochs, _Blind(), n_steps=120, verbose=False)
    text = " ".join(str(w.message) for w in rec)
    assert "predicts class 0 for all 10 epochs" in text
    assert "The saliency is constant (0.1" in text  # measured 0.102
    assert "10 of 10 epochs reached n_steps=120" in text
    assert (sal.diagnostics["stop"] == STOP_REASONS.index("n_steps reached")).all()
    with pytest.warns(RuntimeWarning) as rec:
        sal = mfm.explain(epochs, _Blind(), stopping="loss", verbose=False)
    assert (sal.diagnostics["stop"] == STOP_REASONS.index("converged")).all()
    flat = dict(l1_mask=0.0, l1_perturbation=0.0, lambda_align=0.0, stopping="loss")
    with pytest.warns(RuntimeWarning) as rec:
        sal = mfm.explain(epochs, _Blind(), verbose=False, **flat)
    text = " ".join(str(w.message) for w in rec)
    assert "10 of 10 epochs stopped at step 50, the first step" in text
    assert (sal.diagnostics["stop"] == STOP_REASONS.index("first step allowed")).all()
    assert (sal.diagnostics["n_steps"] == 50).all()


def test_map_of_bands_the_model_does_not_use(held):
    """Only gamma bands, where the simulation has no class information (it is
    planted at 8-12 Hz): removing a cell barely moves the model, the L1 term
    pulls every cell down alike, and each epoch's map is flat to ~5e-5 of its
    value (measured) without being exactly constant."""
    epochs, model = held
    bands = {"low gamma": (30.0, 45.0), "high gamma": (45.0, 60.0)}
    with pytest.warns(RuntimeWarning) as rec:
        sal = mfm.explain(epochs, model, bands=bands, n_steps=100, verbose=False)
    text = " ".join(str(w.message) for w in rec)
    assert "The saliency is nearly constant: the maps of 1" in text
    assert "The bands cover 30-60 Hz of 0-64 Hz" in text
    data = sal.get_data()
    assert np.ptp(data) > 0  # not the exactly-constant case
    # all bands: the maps rank the cells, no such warning
    with _no_warning():
        mfm.explain(epochs, model, method="amplitude_gradients", verbose=False)


def test_more_outputs_than_event_types(held):
    epochs, _ = held
    torch.manual_seed(0)
    four = make_model("eegnet", len(epochs.ch_names), 4, len(epochs.times), 128.0)
    with pytest.warns(RuntimeWarning, match="4 outputs but the epochs hold 2 event"):
        sal = mfm.explain(epochs, four, method="amplitude_gradients", verbose=False)
    # scoring needs each epoch's class: refused, not 0.25 accuracy in silence
    with pytest.raises(ValueError, match="2 event type.*4 outputs.*pass y"):
        ev.evaluate_removal(epochs, four, sal)


def test_numpy_array_points_to_epochs_array(held):
    epochs, model = held
    with pytest.raises(TypeError, match=r"shape \(16, 19, 256\).*mne.EpochsArray"):
        mfm.explain(epochs.get_data(), model)


def test_class_contrast(held):
    """The contrast of the class maps of the simulation: the planted cells
    are where "high" epochs rely on the map more than "low" ones."""
    epochs, model = held
    from mne_freqmask.datasets.simulated import PlantedTruth

    sal = mfm.explain(epochs, model, method="amplitude_gradients", verbose=False)
    diff = mfm.combine_saliency([sal["high"], sal["low"]], [1, -1])
    want = sal["high"].average().get_data() - sal["low"].average().get_data()
    np.testing.assert_allclose(diff.get_data(), want, rtol=1e-5, atol=1e-7)
    assert diff.nave == len(epochs)
    assert diff.method_params["combine_weights"] == [1.0, -1.0]
    truth = PlantedTruth(("C3", "C4"), (8.0, 12.0))
    cells = truth.cells(diff.ch_names, diff.band_edges)
    # the classes differ most on the planted cells (amplitude gradients:
    # larger for the weak-alpha class there, measured 1.4 and -18.6 on C3
    # and C4 alpha against |d| < 0.9 elsewhere)
    d = np.abs(diff.get_data())
    assert d[cells].mean() > 3 * d[~cells].mean()
    equal = mfm.combine_saliency([sal["high"], sal["low"]], [0.5, 0.5])
    np.testing.assert_allclose(
        equal.get_data(),
        0.5 * (sal["high"].average().get_data() + sal["low"].average().get_data()),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="one weight per map"):
        mfm.combine_saliency([sal], [1, 2])
    other = mfm.explain(
        epochs,
        model,
        method="amplitude_gradients",
        picks=["C3", "C4"],
        verbose=False,
    )
    with pytest.raises(ValueError, match="other channels or bands"):
        mfm.combine_saliency([sal, other], [1, -1])
