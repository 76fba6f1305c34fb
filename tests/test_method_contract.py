"""The contract of every registered method: a new method needs no new test.

Each method of ``mne_freqmask.methods.METHODS`` runs with its spec's
``fast_kwargs`` on a few simulated epochs and a small EEGNet trained on them
(seeded), and must do what its spec declares: the map's shape, dtype and
channels (bads left out unless picked), the same map whatever the chunk size
the same map for the same seed and, for a
deterministic method, for any seed (a seeded one must use the seed), short-time
grids taken or refused as declared, labels needed or not as declared, and the
user's model and epochs left as they were (weights, training flags,
``requires_grad``, device). The static reading of the specs is checked
against what the functions carry, and a toy method registered in two files
(``toy_method.py`` and one ``register_method`` call) goes through
``explain``, its documentation and the same contract.
"""

import importlib

import mne
import numpy as np
import pytest
from model_guard import assert_unchanged
from model_guard import snapshot as _snapshot

torch = pytest.importorskip("torch")

import mne_freqmask as mfm  # noqa: E402
from mne_freqmask.datasets.simulated import make_epochs  # noqa: E402
from mne_freqmask.methods import (  # noqa: E402
    METHODS,
    SHORT_TIME_METHODS,
    MethodSpec,
    get_method,
    get_spec,
    register_method,
)
from mne_freqmask.methods._registry import (  # noqa: E402
    BUILTIN_MODULES,
    method_docs,
    method_parameters,
    read_specs,
)

CHS = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "P4"]
BAD = "Cz"
N_EPOCHS = 6  # fewer than 8: explain's one-class check does not apply
BANDS = 4
#: fast kwargs cap the fits on purpose; the warnings say so
QUIET = [
    "ignore:FreqMask.*n_steps:RuntimeWarning",
    "ignore:FreqMask.*first step:RuntimeWarning",
]


@pytest.fixture(scope="module")
def data():
    """Simulated alpha on C3/C4, an EEGNet trained on it (seeded), Cz bad."""
    from mne_freqmask.models import fit

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny data: one thread is faster on busy cores
    try:
        epochs, _ = make_epochs(
            n_subjects=2,
            n_epochs_per_class=20,
            ch_names=CHS,
            effect=3.0,
            random_state=0,
            verbose=False,
        )
        model, history = fit(
            epochs, "eegnet", max_epochs=20, lr=1e-2, random_state=0, verbose=False
        )
        assert history["val_accuracy"][-1] >= 0.75, "the contract model did not learn"
        epochs.info["bads"] = [BAD]
        held = epochs[history["val_idx"][:N_EPOCHS]]
        train = epochs[history["train_idx"]]
        yield held, train, model
    finally:
        torch.set_num_threads(n_threads)


#: Method parameters that cannot be literals in a spec, made by the test for
#: any method whose function has them: (held, train, model, picks) -> value.
def _explainer(held, train, model, picks):
    return mfm.FreqMaskExplainer().fit(
        train, model, bands=BANDS, picks=picks, n_epochs=2, random_state=0,
        verbose=False,
    )  # fmt: skip


MADE = {"explainer": _explainer}


def _kwargs(name, data, picks=None):
    held, train, model = data
    kw = dict(get_spec(name).fast_kwargs)
    for param in method_parameters(get_method(name)):
        if param in MADE:
            kw[param] = MADE[param](held, train, model, picks)
    return kw


def _explain(name, epochs, model, kw, **more):
    return mfm.explain(
        epochs, model, method=name, bands=BANDS, verbose=False, **kw, **more
    )


def check_contract(name, data):
    """Hold the method ``name`` to the contract its spec declares."""
    held, _, model = data
    spec = get_spec(name)
    snap, before = _snapshot(model), held.get_data(copy=True)
    kw = _kwargs(name, data)
    good = [ch for ch in CHS if ch != BAD]
    sal = _explain(name, held, model, kw, chunk_size=2, random_state=0)
    data0 = sal.get_data()
    # shape, dtype, channels: the bad channel is not explained unless picked
    assert sal.method == name
    assert data0.shape == (N_EPOCHS, len(good), BANDS)
    assert data0.dtype == np.float32 and np.isfinite(data0).all()
    assert sal.ch_names == good
    assert np.ptp(data0) > 0, "the map ranks no cell"
    picks = ["C3", BAD]
    sub = _explain(name, held, model, _kwargs(name, data, picks), picks=picks,
                   chunk_size=2, random_state=0)  # fmt: skip
    assert sub.ch_names == picks and sub.get_data().shape == (N_EPOCHS, 2, BANDS)
    # the same seed gives the same map; a deterministic method ignores it
    again = _explain(name, held, model, kw, chunk_size=2, random_state=0)
    np.testing.assert_array_equal(again.get_data(), data0)
    other = _explain(name, held, model, kw, chunk_size=2, random_state=1)
    if spec.deterministic:
        np.testing.assert_array_equal(other.get_data(), data0)
    else:
        assert not np.array_equal(other.get_data(), data0), "random_state unused"
    # chunk size: one chunk or chunks of 2 give the same map
    whole = _explain(name, held, model, kw, chunk_size=N_EPOCHS, random_state=0)
    scale = float(np.abs(data0).max())
    np.testing.assert_allclose(whole.get_data(), data0, rtol=1e-4, atol=1e-5 * scale)
    # short-time as declared
    if spec.short_time:
        tfr = _explain(name, held, model, kw, time_windows="auto", random_state=0)
        assert isinstance(tfr, mfm.SpectralSaliencyTFR)
        assert tfr.get_data().shape[:3] == (N_EPOCHS, len(good), BANDS)
        assert tfr.get_data().shape[3] > 1 and np.isfinite(tfr.get_data()).all()
        assert name in SHORT_TIME_METHODS
    else:
        with pytest.raises(ValueError, match="whole epoch only"):
            _explain(name, held, model, kw, time_windows="auto")
    # labels as declared: event codes that match no output unit give none
    codes = np.arange(N_EPOCHS) % 3 + 1
    events = np.c_[np.arange(N_EPOCHS), np.zeros_like(codes), codes]
    unlabelled = mne.EpochsArray(
        before, held.info, events=events, event_id=dict(a=1, b=2, c=3),
        tmin=held.tmin, verbose=False,
    )  # fmt: skip
    if spec.needs_labels:
        with pytest.raises(ValueError, match="pass y"):
            _explain(name, unlabelled, model, kw, random_state=0)
    else:
        with pytest.warns(RuntimeWarning, match="3 event types"):
            _explain(name, unlabelled, model, kw, random_state=0)
    # the user's model and epochs are as they were
    assert_unchanged(model, snap)
    np.testing.assert_array_equal(held.get_data(), before)
    assert held.info["bads"] == [BAD]


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.filterwarnings(*QUIET)
def test_method_contract(data, name):
    """Every registered method keeps the contract its spec declares."""
    check_contract(name, data)


@pytest.mark.parametrize("module", BUILTIN_MODULES)
def test_specs_read_without_import_are_the_functions(module):
    """The registry's reading of a method file is what the functions carry."""
    specs = read_specs(module)
    assert specs, f"{module}.py declares no method"
    mod = importlib.import_module(f"mne_freqmask.methods.{module}")
    for spec in specs:
        func = getattr(mod, spec.func.split(":")[1])
        assert func is get_method(spec.name)
        assert func.spec.name == spec.name and func.spec.func is func
        for field in ("summary", "short_time", "needs_labels", "deterministic",
                      "fast_kwargs"):  # fmt: skip
            assert getattr(func.spec, field) == getattr(spec, field), field
        assert spec.summary and not spec.summary.endswith(".")
        assert set(spec.fast_kwargs) <= set(method_parameters(func))
        # explain()'s docs list the method and link its function
        doc = mfm.explain.__doc__
        assert (
            f'``"{spec.name}"``: ' in doc and f"{mod.__name__}.{func.__name__}" in doc
        )


def test_explain_docs_from_specs():
    """explain()'s method entries come from the specs (no copy of parameters)."""
    doc = mfm.explain.__doc__
    # each entry names its function (``module.function``: the method
    # functions are not on the API pages, so a :func: link would not resolve)
    assert doc.count("``mne_freqmask.methods.") == len(METHODS)
    for name in SHORT_TIME_METHODS:
        assert f'``"{name}"``' in doc.split("time_windows :")[1].split("\n\n")[0]
    # the parameters are documented by the functions, not by explain
    assert "n_masks" not in doc and "lambda_align" not in doc
    assert "n_masks" in get_method("freqrise").__doc__


@pytest.mark.filterwarnings(*QUIET)
def test_toy_method_in_two_files(data):
    """A new method is its own file plus one register call."""
    import toy_method

    spec = register_method(toy_method.band_power.spec)
    try:
        assert isinstance(spec, MethodSpec) and METHODS["toy_band_power"] is (
            toy_method.band_power
        )
        held, _, model = data
        sal = mfm.explain(held, model, method="toy_band_power", bands=BANDS,
                          exponent=1.0, verbose=False)  # fmt: skip
        # the map is what the toy computes: the mean power of each cell
        x = held.get_data(picks=sal.ch_names)
        power = np.abs(np.fft.rfft(x / float(np.std(held.get_data())), axis=-1)) ** 2
        expected = sal.grid.collapse(power, np.mean)
        np.testing.assert_allclose(sal.get_data(), expected, rtol=1e-4)
        assert "toy_band_power" in method_docs()["method_explain"]
        check_contract("toy_band_power", data)
        with pytest.raises(ValueError, match="already registered"):
            register_method(toy_method.band_power.spec)
    finally:
        del METHODS["toy_band_power"]
    assert "toy_band_power" not in METHODS
