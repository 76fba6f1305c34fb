"""Robustness (issue #15): bad channels, devices, non-finite values, labels,
half precision, file integrity and messages.

Everything runs on a tiny channel-mixing model and 8 short epochs, so each
test takes well under a second or two on a shared CPU.
"""

import copy
import pickle
from pathlib import Path

import mne
import numpy as np
import pytest
import torch
from mne.utils import catch_logging
from model_guard import assert_unchanged as _assert_unchanged
from model_guard import snapshot as _snapshot
from numpy.testing import assert_allclose, assert_array_equal

import mne_freqmask as mfm
from mne_freqmask._inputs import epochs_labels, event_classes
from mne_freqmask._torch_utils import model_context
from mne_freqmask.saliency import SpectralSaliency, read_saliency

CH_NAMES = ["Fz", "C3", "Cz", "C4", "Pz", "Oz"]
SFREQ, N_TIMES, N_EPOCHS, N_CHANS = 64.0, 64, 8, len(CH_NAMES)


class Tiny(torch.nn.Module):
    """Mixes channels by position (a conv over channels), like an EEG net."""

    def __init__(self, n_chans=N_CHANS, n_times=N_TIMES, n_outputs=2):
        super().__init__()
        self.n_chans, self.n_times = n_chans, n_times
        self.conv = torch.nn.Conv1d(n_chans, 3, 9)
        self.lin = torch.nn.Linear(3 * (n_times - 8), n_outputs)

    def forward(self, x):
        return self.lin(torch.tanh(self.conv(x)).flatten(1))


class Recorder(torch.nn.Module):
    """Records the inputs the wrapped model receives."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.model(x)


class Broken(torch.nn.Module):
    """Returns NaN or Inf, from the first call or after ``after`` calls."""

    def __init__(self, model, value=float("nan"), after=0):
        super().__init__()
        self.model, self.value, self.after = model, value, after
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = self.model(x)
        if self.calls > self.after:  # a product: gradients turn non-finite too
            out = out * self.value
        return out


def _epochs(event_codes=(1, 2), seed=0, bads=()):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((N_EPOCHS, len(CH_NAMES), N_TIMES))
    codes = np.resize(np.asarray(event_codes), N_EPOCHS)
    events = np.c_[np.arange(N_EPOCHS) * N_TIMES, np.zeros(N_EPOCHS, int), codes]
    event_id = {f"e{c}": int(c) for c in sorted(set(codes.tolist()))}
    info = mne.create_info(CH_NAMES, SFREQ, "eeg")
    epochs = mne.EpochsArray(data, info, events=events, event_id=event_id, verbose=0)
    epochs.info["bads"] = list(bads)
    return epochs


@pytest.fixture(scope="module")
def model(torch_threads):
    torch.manual_seed(0)
    return Tiny().eval()


FAST = {
    "freqmask": dict(n_steps=15, min_steps=15),
    "amplitude_gradients": {},
    "integrated_gradients": dict(n_steps=8),
}


# ---------------------------------------------------------------- 1. bads


@pytest.mark.parametrize("method", ["amplitude_gradients", "freqmask"])
def test_bads_fed_to_model_not_explained(model, method):
    """The model sees every channel in order; bads are left out of the map."""
    epochs = _epochs(bads=["Cz"])
    rec = Recorder(model)
    with catch_logging() as log:
        sal = mfm.explain(epochs, rec, method=method, verbose=True, **FAST[method])
    full = epochs.get_data(picks=np.arange(len(CH_NAMES)))
    assert all(x.shape[1] == len(CH_NAMES) for x in rec.seen)
    # the first call is the model check on the unperturbed epochs, all channels
    assert_allclose(rec.seen[0].numpy(), full[:2], rtol=1e-6)
    assert sal.ch_names == ["Fz", "C3", "C4", "Pz", "Oz"]
    assert "Bad channel(s) ['Cz'] are fed to the model unchanged but not " in (
        log.getvalue()
    )
    # the user's epochs keep their bads
    assert epochs.info["bads"] == ["Cz"]


@pytest.mark.parametrize("method", ["amplitude_gradients", "freqmask"])
def test_bads_saliency_equals_unmarked(model, method):
    """Each labelled channel's saliency is that of the same data without bads."""
    kw = FAST[method]
    clean = _epochs()
    marked = _epochs(bads=["Cz", "Oz"])
    good = ["Fz", "C3", "C4", "Pz"]
    sal = mfm.explain(marked, model, method=method, **kw)
    ref = mfm.explain(clean, model, method=method, picks=good, **kw)
    assert sal.ch_names == good == ref.ch_names
    for ch in good:
        assert_allclose(sal.get_data(picks=[ch]), ref.get_data(picks=[ch]), rtol=1e-5)
    # the saliency of different channels differs: equality above is not trivial
    assert not np.allclose(sal.get_data(picks=["C3"]), sal.get_data(picks=["C4"]))
    if method == "amplitude_gradients":  # per-channel, independent of picks
        every = mfm.explain(clean, model, method=method)
        for ch in good:
            assert_allclose(
                sal.get_data(picks=[ch]), every.get_data(picks=[ch]), rtol=1e-5
            )


@pytest.mark.parametrize("method", ["amplitude_gradients", "freqmask"])
def test_bads_explicit_picks_label_right_channels(model, method):
    """picks by name: labels match the channels, bads included when named."""
    kw = FAST[method]
    clean, marked = _epochs(), _epochs(bads=["Cz"])
    sal = mfm.explain(marked, model, method=method, picks=["C3", "C4"], **kw)
    ref = mfm.explain(clean, model, method=method, picks=["C3", "C4"], **kw)
    assert sal.ch_names == ["C3", "C4"]
    assert_allclose(sal.get_data(), ref.get_data(), rtol=1e-5)
    # a bad channel picked by name is explained, with its own values
    with catch_logging() as log:
        sal = mfm.explain(
            marked, model, method=method, picks=["Cz", "C4"], verbose=True, **kw
        )
    ref = mfm.explain(clean, model, method=method, picks=["Cz", "C4"], **kw)
    assert sal.ch_names == ["Cz", "C4"]
    assert sal.info["bads"] == ["Cz"]
    assert_allclose(sal.get_data(), ref.get_data(), rtol=1e-5)
    assert "Bad channel(s) ['Cz'] are explained, as picked." in log.getvalue()


def test_bads_model_checks_and_evaluation(model):
    """A braindecode-like n_chans check passes; evaluation sees all channels."""
    marked = _epochs(bads=["Fz", "Pz"])
    sal = mfm.explain(marked, model, method="amplitude_gradients")
    assert sal.ch_names == ["C3", "Cz", "C4", "Oz"]
    scores = mfm.evaluate_removal(marked, model, sal)
    clean_sal = mfm.explain(
        _epochs(), model, method="amplitude_gradients", picks=sal.ch_names
    )
    clean = mfm.evaluate_removal(_epochs(), model, clean_sal)
    assert_allclose(scores.to_numpy(), clean.to_numpy())
    # every data channel bad: the message names both ways out
    allbad = _epochs(bads=CH_NAMES)
    with pytest.raises(ValueError, match=r"selects no channel once the bad"):
        mfm.explain(allbad, model, method="amplitude_gradients")
    sal = mfm.explain(allbad, model, method="amplitude_gradients", picks=["C3"])
    assert sal.ch_names == ["C3"]


def test_bads_non_preloaded(model, tmp_path):
    """Epochs read from disk chunk by chunk keep their bad channels too."""
    fname = tmp_path / "bads-epo.fif"
    _epochs(bads=["C3"]).save(fname, verbose=0)
    lazy = mne.read_epochs(fname, preload=False, verbose=0)
    sal = mfm.explain(lazy, model, method="amplitude_gradients")
    ref = mfm.explain(
        _epochs(), model, method="amplitude_gradients", picks=sal.ch_names
    )
    assert "C3" not in sal.ch_names
    assert_allclose(sal.get_data(), ref.get_data(), rtol=1e-4)


# ---------------------------------------------------------------- 2. devices


@pytest.mark.parametrize("device", ["meta", torch.device("meta")])
def test_meta_device_refused_model_untouched(device):
    torch.manual_seed(1)
    net = Tiny()
    net.train()
    net.lin.bias.requires_grad_(False)
    snap = _snapshot(net)
    with pytest.raises(ValueError, match='device="meta" holds no data'):
        mfm.explain(_epochs(), net, method="amplitude_gradients", device=device)
    _assert_unchanged(net, snap)
    with pytest.raises(ValueError, match='device="meta" holds no data'):
        with model_context(net, device):
            pass  # pragma: no cover
    _assert_unchanged(net, snap)


def test_unusable_devices_refused(model):
    snap = _snapshot(model)
    for device in ("xpu", "mps"):
        available = getattr(torch, device, None)
        if available is not None and available.is_available():
            continue
        with pytest.raises(ValueError, match="cannot hold and return data"):
            mfm.explain(_epochs(), model, method="amplitude_gradients", device=device)
        _assert_unchanged(model, snap)
    with pytest.raises(ValueError, match='device must be "auto"'):
        mfm.explain(_epochs(), model, device="gpu0")
    _assert_unchanged(model, snap)


def test_model_on_meta_refused():
    with torch.device("meta"):
        net = Tiny()
    with pytest.raises(ValueError, match="meta device: it has no weights"):
        mfm.explain(_epochs(), net, method="amplitude_gradients", device="cpu")
    with pytest.raises(ValueError, match="to_empty"):
        mfm.explain(_epochs(), net, method="amplitude_gradients")


def test_model_context_restores_flags(model):
    net = copy.deepcopy(model)
    net.train()
    net.conv.eval()
    net.conv.weight.requires_grad_(False)
    snap = _snapshot(net)
    with pytest.raises(RuntimeError, match="boom"):
        with model_context(net, "cpu"):
            assert not net.training
            assert not any(p.requires_grad for p in net.parameters())
            raise RuntimeError("boom")
    _assert_unchanged(net, snap)


# ---------------------------------------------------------------- 3. non-finite


@pytest.mark.parametrize(
    "value, word", [(float("nan"), "NaN"), (float("inf"), "Inf"), (-np.inf, "Inf")]
)
@pytest.mark.parametrize("method", ["freqmask", "amplitude_gradients"])
def test_model_non_finite_first_batch(model, value, word, method):
    net = Broken(model, value)
    with pytest.raises(ValueError, match=f"The model returned {word} for 2 of"):
        mfm.explain(_epochs(), net, method=method, **FAST[method])
    assert net.calls == 1  # found on the first batch, before the method ran


@pytest.mark.parametrize("method", ["amplitude_gradients", "integrated_gradients"])
def test_model_non_finite_later(model, method):
    """Finite on the first batch, NaN later: the result check names the model."""
    net = Broken(model, after=2)
    with pytest.raises(ValueError, match=r"the model returns NaN or Inf on epoch"):
        mfm.explain(_epochs(), net, method=method, **FAST[method])


@pytest.mark.parametrize(
    "method, kw, match",
    [
        ("freqmask", dict(lr=float("inf")), "lr must be finite"),
        ("freqmask", dict(lr=float("nan")), "lr must be finite"),
        ("freqmask", dict(lambda_align=np.inf), "lambda_align must be finite"),
        ("freqmask", dict(tol=float("nan")), "tol must be finite"),
        ("freqmask", dict(l1_mask=np.inf), "l1_mask must be finite"),
        ("integrated_gradients", dict(n_steps=np.inf), "n_steps must be finite"),
        ("easypeasi", dict(batch_size=np.inf), "batch_size must be finite"),
        ("dft_lrp", dict(epsilon=np.inf), "epsilon must be finite"),
        ("lrp", dict(eps=np.inf), "eps must be finite"),
        ("lrp", dict(gamma=np.nan), "gamma must be finite"),
    ],
)
def test_non_finite_parameters(model, method, kw, match):
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=match):
        mfm.explain(_epochs(), model, method=method, **kw)
    _assert_unchanged(model, snap)


def test_result_non_finite_from_method(model):
    """A diverging optimisation (finite model) is reported as such."""
    with pytest.raises(ValueError, match=r"method's own arithmetic overflowed"):
        mfm.explain(  # the generator diverges (the mask alone is clamped)
            _epochs(),
            model,
            lr=1e38,
            n_steps=5,
            min_steps=5,
            perturbation="generator",
        )


def test_data_non_finite_overflow_complex(model):
    epochs = _epochs()
    epochs._data[3, 1, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN or Inf values \(1 epoch"):
        mfm.explain(epochs, model)
    epochs = _epochs()
    epochs._data[2, 0, 0] = 1e39  # finite in float64, Inf in float32
    with pytest.raises(ValueError, match=r"finite values up to 1e\+39, beyond"):
        mfm.explain(epochs, model)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        mfm.explain(_epochs(), model, reference=epochs)
    hilbert = _epochs().apply_hilbert(envelope=False)
    with pytest.raises(ValueError, match="complex values .*envelope=True"):
        mfm.explain(hilbert, model)


# ---------------------------------------------------------------- 4. labels


def test_event_classes_one_mapping():
    assert event_classes({"a": 7, "b": 3}) == {3: 0, 7: 1}
    assert event_classes({"a": 7, "b": 3}, 2) == {3: 0, 7: 1}
    with pytest.raises(ValueError, match="3 event types .* 2 outputs"):
        event_classes({"a": 1, "b": 2, "c": 3}, 2)
    with pytest.raises(ValueError, match="ambiguous"):
        event_classes({"b": 2}, 2)
    epochs = _epochs(event_codes=(5, 9))
    assert_array_equal(epochs_labels(epochs), np.resize([0, 1], N_EPOCHS))
    with pytest.raises(ValueError, match=r"y holds class indices \[-1\] outside"):
        epochs_labels(epochs, np.r_[-1, np.zeros(N_EPOCHS - 1, int)], 2)


def test_third_event_type(model):
    epochs = _epochs(event_codes=(1, 2, 3))
    with pytest.raises(ValueError, match=r"3 event types .* model has 2 outputs"):
        mfm.explain(epochs, model, method="amplitude_gradients", target="true")
    with pytest.raises(ValueError, match=r"easyPEASI .*: The epochs hold 3 event"):
        mfm.explain(epochs, model, method="easypeasi")
    # labels that are not used do not matter, but the mismatch is said
    with pytest.warns(RuntimeWarning, match="2 outputs but the epochs hold 3"):
        sal = mfm.explain(epochs, model, method="amplitude_gradients")
    assert sal.shape[0] == N_EPOCHS
    # an explicit y fixes it
    y = np.resize([0, 1], N_EPOCHS)
    with pytest.warns(RuntimeWarning, match="2 outputs but the epochs hold 3"):
        sal = mfm.explain(epochs, model, method="easypeasi", y=y)
    assert sal.shape[0] == N_EPOCHS


@pytest.mark.parametrize("bad", [-1, 2, 7])
@pytest.mark.parametrize("method", ["easypeasi", "amplitude_gradients"])
def test_labels_out_of_range(model, bad, method):
    y = np.resize([0, 1], N_EPOCHS)
    y[3] = bad
    snap = _snapshot(model)
    kw = dict(target="true") if method != "easypeasi" else {}
    with pytest.raises(ValueError, match=rf"y holds class indices \[{bad}\] outside"):
        mfm.explain(_epochs(), model, method=method, y=y, **kw)
    with pytest.raises(ValueError, match=rf"target holds class indices \[{bad}\]"):
        mfm.explain(_epochs(), model, method="amplitude_gradients", target=y)
    _assert_unchanged(model, snap)


def test_evaluation_checks_labels_and_maps(model):
    """The evaluation maps event codes as explain does and refuses what it
    cannot score: labels outside the model's outputs, a map with NaN."""
    from mne_freqmask import evaluation as ev

    epochs = _epochs()
    sal = mfm.explain(epochs, model, method="amplitude_gradients")
    snap = _snapshot(model)
    y = np.resize([0, 1], N_EPOCHS)
    for bad in (-1, 2):
        yb = y.copy()
        yb[1] = bad
        for func in (ev.evaluate_removal, ev.deletion_curves):
            with pytest.raises(ValueError, match=rf"y holds class indices \[{bad}\]"):
                func(epochs, model, sal, y=yb)
    three = _epochs(event_codes=(1, 2, 3))
    for func in (ev.evaluate_removal, ev.deletion_curves):
        with pytest.raises(ValueError, match=r"3 event types .* model has 2 outputs"):
            func(three, model, sal)
    # y fixes it; the scores are then those of the same epochs with 2 types
    got = ev.evaluate_removal(three, model, sal, y=y)
    want = ev.evaluate_removal(epochs, model, sal)
    assert_allclose(got.to_numpy(), want.to_numpy())
    nan = SpectralSaliency(
        np.full(sal.shape, np.nan), sal.info, sal.grid, method="broken"
    )
    for func in (ev.evaluate_removal, ev.deletion_curves):
        with pytest.raises(ValueError, match="NaN or infinite value.*explain again"):
            func(epochs, model, nan)
    with pytest.raises(ValueError, match="NaN or infinite"):
        ev.compare_methods(epochs, model, {"m": nan}, n_boot=10)
    _assert_unchanged(model, snap)


def test_subset_of_one_class(model):
    """epochs['e2'] loses event type e1: the class of e2 is ambiguous."""
    sub = _epochs()["e2"]
    assert sub.event_id == {"e2": 2}
    with pytest.raises(ValueError, match="ambiguous .* pass y"):
        mfm.explain(sub, model, method="amplitude_gradients", target="true")
    sal = mfm.explain(
        sub, model, method="amplitude_gradients", target="true", y=np.ones(4, int)
    )
    assert_array_equal(sal.diagnostics["target"], 1)


# ---------------------------------------------------------------- 5. half


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", list(FAST))
def test_half_precision_models(model, dtype, method):
    epochs = _epochs()
    net = copy.deepcopy(model).to(dtype)
    rec = Recorder(net)
    snap = _snapshot(net)
    sal = mfm.explain(epochs, rec, method=method, **FAST[method])
    _assert_unchanged(net, snap)
    assert {x.dtype for x in rec.seen} == {dtype}
    assert np.isfinite(sal.get_data()).all()
    # close to the float32 model's result (same weights, rounded)
    ref = mfm.explain(epochs, copy.deepcopy(net).float(), method=method, **FAST[method])
    a, b = sal.get_data().ravel(), ref.get_data().ravel()
    if method == "freqmask":
        assert_allclose(a, b, atol=0.05)
        assert np.ptp(b) > 0.02  # the masks moved: the comparison is not trivial
    else:
        assert np.corrcoef(a, b)[0, 1] > 0.95


# ---------------------------------------------------------------- 6. files


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    sal = mfm.explain(_epochs(), model, method="amplitude_gradients")
    fname = tmp_path_factory.mktemp("io") / "sal.h5"
    sal.save(fname)
    return sal, fname


def _copy(fname, tmp_path):
    out = tmp_path / "edited-sal.h5"
    out.write_bytes(fname.read_bytes())
    return out


def test_checksum_roundtrip(saved):
    import hashlib

    sal, fname = saved
    assert read_saliency(fname) == sal
    # the SHA-256 of the bytes after the 512-byte HDF5 user block, in the block
    raw = fname.read_bytes()
    assert raw[:20] == b"mne_freqmask sha256 "
    assert raw[20:84].decode() == hashlib.sha256(raw[512:]).hexdigest()


@pytest.mark.parametrize(
    "path, edit",
    [
        ("mnefreqmask/key_data", lambda d: d.__setitem__((0, 0, 0), d[0, 0, 0] + 1)),
        ("mnefreqmask/key_freqs", lambda d: d.__setitem__(1, 99.0)),
        (
            "mnefreqmask/key_info/key_ch_names/idx_1",
            lambda d: d.__setitem__(0, ord("X")),
        ),
        ("mnefreqmask/key_band_edges", lambda d: d.__setitem__((0, 1), 2.5)),
    ],
)
def test_changed_bytes_detected(saved, tmp_path, path, edit):
    h5py = pytest.importorskip("h5py")
    _, fname = saved
    edited = _copy(fname, tmp_path)
    with h5py.File(edited, "r+") as f:
        edit(f[path])
    with pytest.raises(ValueError, match="is damaged: its bytes do not match"):
        read_saliency(edited)


def test_incomplete_and_inconsistent_files(saved, tmp_path):
    h5py = pytest.importorskip("h5py")
    import h5io

    sal, fname = saved
    state = sal.__getstate__()
    # the right title but keys missing (no checksum: a foreign writer)
    partial = {k: v for k, v in state.items() if k not in ("info", "freqs")}
    h5io.write_hdf5(tmp_path / "partial.h5", partial, title="mnefreqmask")
    with pytest.raises(ValueError, match=r"incomplete: it lacks \['info', 'freqs'\]"):
        read_saliency(tmp_path / "partial.h5")
    with pytest.raises(ValueError, match="incomplete"):
        SpectralSaliency.__new__(SpectralSaliency).__setstate__(partial)
    # shapes that disagree with each other
    bad = dict(state, data=state["data"][:, :-1])
    h5io.write_hdf5(tmp_path / "shape.h5", bad, title="mnefreqmask")
    with pytest.raises(ValueError, match="cannot be read back .* data has 5 chan"):
        read_saliency(tmp_path / "shape.h5")
    bad = dict(state, band_names=state["band_names"][:-1])
    h5io.write_hdf5(tmp_path / "bands.h5", bad, title="mnefreqmask")
    with pytest.raises(ValueError, match="cannot be read back .* bands but band_na"):
        read_saliency(tmp_path / "bands.h5")
    # channel names that disagree with the channel entries, in a file of an
    # earlier version (no user block, no checksum)
    edited = tmp_path / "older.h5"
    h5io.write_hdf5(edited, state, title="mnefreqmask", slash="replace")
    with h5py.File(edited, "r+") as f:
        f["mnefreqmask/key_info/key_ch_names/idx_1"][0] = ord("X")
    with catch_logging() as log:
        with pytest.raises(ValueError, match="stored info is inconsistent"):
            read_saliency(edited, verbose=True)
    assert "holds no checksum (older file); not verified" in log.getvalue()
    # pickles go through the same state checks
    assert pickle.loads(pickle.dumps(sal)) == sal


# ---------------------------------------------------------------- 7. messages


def test_reference_and_groups_messages(model):
    epochs = _epochs()
    shuffled = epochs.copy().reorder_channels(CH_NAMES[::-1])
    with pytest.raises(ValueError, match="same channels in another order.*reorder"):
        mfm.explain(epochs, model, reference=shuffled)
    other = epochs.copy().rename_channels({"Oz": "O1"})
    with pytest.raises(ValueError, match=r"it lacks \['Oz'\] and has \['O1'\]"):
        mfm.explain(epochs, model, reference=other)
    with pytest.raises(ValueError, match=r"sampled at 32.0 Hz"):
        mfm.explain(epochs, model, reference=epochs.copy().resample(32.0))
    ref = mne.concatenate_epochs([epochs, epochs], verbose=0)
    with pytest.raises(ValueError, match=r"\(16 epochs of reference\).*of reference"):
        mfm.explain(epochs, model, reference=ref, groups=np.zeros(N_EPOCHS))


@pytest.mark.parametrize(
    "seed, exc, match",
    [
        (-1, ValueError, "non-negative int below 2\\*\\*32"),
        (2**40, ValueError, "non-negative int below 2\\*\\*32"),
        ("abc", TypeError, "random_state must be an instance of None"),
        (1.5, TypeError, "random_state must be an instance of None"),
    ],
)
def test_bad_random_state(model, seed, exc, match):
    with pytest.raises(exc, match=match):
        mfm.explain(_epochs(), model, method="easypeasi", random_state=seed)


def test_cli_weights_mismatch_one_line(tmp_path, capsys, torch_threads):
    from mne_freqmask import cli
    from mne_freqmask.models import make_model, save_model

    epochs = _epochs()
    epochs.save(tmp_path / "x-epo.fif", verbose=0)
    net = make_model("eegnet", len(CH_NAMES), 2, N_TIMES, SFREQ)
    save_model(tmp_path / "m.pt", net)
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    ckpt["init_args"]["kwargs"]["n_outputs"] = 3  # settings no longer fit
    torch.save(ckpt, tmp_path / "m.pt")
    code = cli.main(
        [
            "explain",
            str(tmp_path / "x-epo.fif"),
            str(tmp_path / "m.pt"),
            "--out",
            str(tmp_path / "s.h5"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "saved weights do not fit the saved settings" in err
    assert "n_outputs=3" in err


# ---------------------------------------------------------------- 8. checkpoint

_CKPT_SCRIPT = '''
import sys
import time

import mne
import numpy as np
import torch

import mne_freqmask as mfm

KW = dict(
    method="freqmask", bands=4, chunk_size=2, n_steps=10, min_steps=10, random_state=0
)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(6, 3, 9)
        self.lin = torch.nn.Linear(3 * 56, 2)

    def forward(self, x):
        return self.lin(torch.tanh(self.conv(x)).flatten(1))


class Slow(torch.nn.Module):
    """Counts calls and sleeps in each, so a run can be killed mid-way."""

    def __init__(self, delay):
        super().__init__()
        self.net, self.delay, self.calls = Tiny(), delay, 0

    def forward(self, x):
        self.calls += 1
        time.sleep(self.delay)
        return self.net(x)


def make(delay=0.0):
    rng = np.random.default_rng(0)
    info = mne.create_info(["Fz", "C3", "Cz", "C4", "Pz", "Oz"], 64.0, "eeg")
    epochs = mne.EpochsArray(rng.standard_normal((8, 6, 64)), info, verbose=0)
    torch.manual_seed(0)
    return epochs, Slow(delay).eval()


if __name__ == "__main__":
    torch.set_num_threads(1)
    epochs, model = make(float(sys.argv[2]))
    mfm.explain(epochs, model, checkpoint=sys.argv[1], verbose=False, **KW)
'''


@pytest.fixture(scope="module")
def ckpt_mod(tmp_path_factory):
    import importlib.util

    path = tmp_path_factory.mktemp("ckpt") / "ckpt_run.py"
    path.write_text(_CKPT_SCRIPT)
    spec = importlib.util.spec_from_file_location("ckpt_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, path


def _n_chunks_done(fname):
    import h5io

    try:
        return len(h5io.read_hdf5(str(fname), title="mnefreqmask_checkpoint")["chunks"])
    except (OSError, ValueError, KeyError):
        return 0


def test_checkpoint_sigkill_resume(ckpt_mod, tmp_path, torch_threads):
    """SIGKILL a checkpointed run mid-way, resume it: same saliency."""
    import os
    import signal
    import subprocess
    import sys
    import time

    mod, script = ckpt_mod
    fname = tmp_path / "run.h5"
    root = str(Path(mfm.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, str(script.parent)]))
    log = tmp_path / "child.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(fname), "0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 240
            while _n_chunks_done(fname) < 1:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the run wrote no chunk in time"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    done = _n_chunks_done(fname)
    assert 1 <= done < 4, done
    # resumed in this process: only the unfinished chunks are computed
    epochs, model = mod.make()
    got = mfm.explain(epochs, model, checkpoint=fname, **mod.KW)
    # model check + (1 + 10 steps) per chunk + the check of the predictions
    assert model.calls == 1 + 11 * (4 - done) + 1
    epochs, model = mod.make()
    ref = mfm.explain(epochs, model, **mod.KW)
    assert_allclose(got.get_data(), ref.get_data(), rtol=1e-5, atol=1e-6)
    # the masks moved, differently per cell: the comparison is not trivial
    # (the path score: the mask's mean over 10 steps, measured >= 0.045)
    assert np.abs(ref.get_data() - 0.5).min() > 0.03
    assert np.ptp(ref.get_data()) > 1e-3
    for key in ("n_steps", "cluster"):
        assert_array_equal(got.diagnostics[key], ref.diagnostics[key])
    assert got.method_params == ref.method_params
    # a finished checkpoint: nothing is recomputed
    epochs, model = mod.make()
    again = mfm.explain(epochs, model, checkpoint=fname, **mod.KW)
    assert model.calls == 2  # the model check and the check of the predictions
    assert again == got


def test_checkpoint_refuses_other_arguments(ckpt_mod, tmp_path, torch_threads):
    mod, _ = ckpt_mod
    fname = tmp_path / "run.h5"
    epochs, model = mod.make()
    kw = dict(mod.KW, n_steps=3, min_steps=3)
    first = mfm.explain(epochs, model, checkpoint=fname, **kw)
    # a stale temporary file from a killed write is ignored
    (tmp_path / ".run.h5.0123456789ab.tmp").write_bytes(b"partial")
    assert mfm.explain(epochs, model, checkpoint=fname, **kw) == first
    for other, what in [
        (dict(kw, n_steps=4), "method_kw"),
        (dict(kw, bands=5), "bands"),
        (dict(kw, picks=["C3", "C4"]), "picks"),
        (dict(kw, chunk_size=4), "chunk_size"),
        (dict(kw, random_state=1), "random_state"),
        (dict(kw, target=np.zeros(8, int)), "target"),
    ]:
        with pytest.raises(ValueError, match=rf"other arguments \({what} differ\)"):
            mfm.explain(epochs, model, checkpoint=fname, **other)
    torch.manual_seed(1)
    with pytest.raises(ValueError, match=r"\(model differ\)"):
        mfm.explain(epochs, mod.Slow(0.0), checkpoint=fname, **kw)
    with pytest.raises(ValueError, match=r"\(data_scale differ\)"):
        mfm.explain(
            epochs.copy().apply_function(lambda x: 2 * x), model, checkpoint=fname, **kw
        )
    # "auto" reuses the chunk size stored in the checkpoint
    auto = dict(kw, chunk_size="auto")
    assert mfm.explain(epochs, model, checkpoint=fname, **auto) == first
    with pytest.raises(ValueError, match="random_state must be None or an int"):
        mfm.explain(
            epochs,
            model,
            checkpoint=tmp_path / "b.h5",
            **dict(kw, random_state=np.random.default_rng(0)),
        )
    with pytest.raises(ValueError, match='level="group" .* cannot be split'):
        mfm.explain(
            epochs,
            model,
            checkpoint=tmp_path / "c.h5",
            method="easypeasi",
            y=np.zeros(8, int),
        )
    first.save(tmp_path / "sal.h5")
    with pytest.raises(ValueError, match="is not a checkpoint of"):
        mfm.explain(epochs, model, checkpoint=tmp_path / "sal.h5", **kw)
    with pytest.raises(ValueError, match=r"must end with \.h5"):
        mfm.explain(epochs, model, checkpoint=tmp_path / "run.npz", **kw)


def test_cli_checkpoint(tmp_path, capsys, torch_threads):
    from mne_freqmask import cli
    from mne_freqmask.models import make_model, save_model

    _epochs().save(tmp_path / "x-epo.fif", verbose=0)
    torch.manual_seed(0)
    save_model(tmp_path / "m.pt", make_model("eegnet", N_CHANS, 2, N_TIMES, SFREQ))
    args = ["explain", str(tmp_path / "x-epo.fif"), str(tmp_path / "m.pt")]
    args += ["--method", "amplitude_gradients", "--out", str(tmp_path / "s.h5")]
    args += ["--checkpoint", str(tmp_path / "run.h5")]
    assert cli.main(args) == 0
    assert _n_chunks_done(tmp_path / "run.h5") >= 1
    first = read_saliency(tmp_path / "s.h5")
    assert cli.main(args + ["--overwrite"]) == 0  # resumed from a full checkpoint
    assert read_saliency(tmp_path / "s.h5") == first
    assert cli.main(args[:-1] + [str(tmp_path / "run.txt"), "--overwrite"]) == 2
    assert "checkpoint must end with .h5" in capsys.readouterr().err
