"""Provenance of saved maps, ``==`` of resumed runs, damaged files, sys-info.

Tiny seeded models on tiny epochs (one EEGNet for the braindecode entry);
every file is written in a temporary folder.
"""

import json
import pickle
from datetime import datetime, timedelta, timezone
from importlib import metadata

import mne
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mne_freqmask as mfm  # noqa: E402
from mne_freqmask._checkpoint import _model_sha  # noqa: E402
from mne_freqmask._provenance import provenance_summary  # noqa: E402
from mne_freqmask._saliency_io import H5_TITLE, write_h5  # noqa: E402

CH_NAMES = ["Fz", "C3", "Cz", "C4", "Pz", "Oz"]
SFREQ, N_TIMES, N_EPOCHS = 64.0, 64, 8
#: a run of FreqMask whose parameters come back in another key order from a
#: checkpoint (sorted) than from the method (the method's order)
FREQMASK = dict(
    method="freqmask", bands=4, chunk_size=2, n_steps=10, min_steps=10, random_state=0
)


class Tiny(torch.nn.Module):
    """A small CNN that can be interrupted (``fail_after`` forward calls);
    the counter is no parameter, so the hash ignores it."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(len(CH_NAMES), 3, 9)
        self.lin = torch.nn.Linear(3 * (N_TIMES - 8), 2)
        self.fail_after, self.calls = None, 0

    def forward(self, x):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("interrupted (simulated Ctrl-C)")
        return self.lin(torch.tanh(self.conv(x)).flatten(1))


def _epochs(seed=0):
    rng = np.random.default_rng(seed)
    info = mne.create_info(CH_NAMES, SFREQ, "eeg")
    events = np.column_stack(
        [np.arange(N_EPOCHS) * 100, np.zeros(N_EPOCHS, int), 1 + np.arange(8) % 2]
    )
    data = rng.standard_normal((N_EPOCHS, len(CH_NAMES), N_TIMES))
    return mne.EpochsArray(data, info, events=events, verbose=0)


def _model(seed=0):
    torch.manual_seed(seed)
    return Tiny().eval()


@pytest.fixture(scope="module")
def model(torch_threads):
    return _model()


@pytest.fixture(scope="module")
def from_file(model, tmp_path_factory):
    """A whole-epoch and a time-resolved map of epochs read from a file."""
    fname = tmp_path_factory.mktemp("epo") / "sub-01-epo.fif"
    _epochs().save(fname, verbose=0)
    epochs = mne.read_epochs(fname, preload=False, verbose=0)
    sal = mfm.explain(epochs, model, method="amplitude_gradients")
    tfr = mfm.explain(
        epochs, model, method="amplitude_gradients", time_windows=(0.5, 0.25)
    )
    return sal, tfr, fname


# ---------------------------------------------------------------- provenance


def test_provenance_content_and_roundtrip(from_file, model, tmp_path):
    """explain records what made the map; save / read give it back."""
    sal, tfr, epo_fname = from_file
    for obj, read in ((sal, mfm.read_saliency), (tfr, mfm.read_saliency_tfr)):
        prov = obj.provenance
        assert prov["model_hash"] == _model_sha(model)
        assert prov["model_class"] == f"{__name__}.Tiny"
        assert prov["versions"] == {
            "mne_freqmask": mfm.__version__,
            "mne": mne.__version__,
            "numpy": np.__version__,
            "torch": torch.__version__,
        }  # no braindecode entry: the model is not one of its classes
        assert prov["method"] == "amplitude_gradients"
        assert prov["method_params"] == obj.method_params
        assert prov["source"] == str(epo_fname)
        created = datetime.fromisoformat(prov["created"].replace("Z", "+00:00"))
        age = datetime.now(timezone.utc) - created
        assert timedelta(0) <= age < timedelta(minutes=30)
        assert f"Tiny {prov['model_hash'][:8]}>" in repr(obj)
        # a copy: changing it does not change the map
        obj.provenance["model_hash"] = "x"
        assert obj.provenance == prov
        fname = tmp_path / f"{type(obj).__name__}.h5"
        obj.save(fname)
        back = read(fname)
        assert back == obj and back.provenance == prov
        assert repr(back) == repr(obj)
        assert pickle.loads(pickle.dumps(obj)).provenance == prov
    assert "time_windows" in tfr.provenance["method_params"]
    # in-memory epochs have no file
    other = mfm.explain(_epochs(), model, method="amplitude_gradients")
    assert other.provenance["source"] is None
    line = provenance_summary(sal.provenance)
    assert line.startswith(f"Tiny {sal.provenance['model_hash'][:8]}; mne_freqmask ")
    assert f"from {epo_fname}" in line
    # the command line's summary and report show it
    from mne_freqmask._cli_report import method_lines, tfr_method_lines

    assert ("Provenance", line) in method_lines(sal, sal.method)
    tfr_line = ("Provenance", provenance_summary(tfr.provenance))
    assert tfr_line in tfr_method_lines(tfr, tfr.method)
    # ... and which class the map explains, as its record says
    assert ("Target", "explains the prediction") in method_lines(sal, sal.method)
    assert ("Target", "explains the prediction") in tfr_method_lines(tfr, tfr.method)
    true = mfm.explain(_epochs(), model, method="amplitude_gradients", target="true")
    assert ("Target", "explains the true class") in method_lines(true, true.method)
    no_record = sal.copy()
    no_record._method_params.pop("target")  # a map made before the record
    assert "Target" not in dict(method_lines(no_record, no_record.method))


def test_provenance_braindecode(torch_threads):
    """A braindecode model (behind make_model's input scaler): its class and
    braindecode's version."""
    from mne_freqmask.models import make_model

    torch.manual_seed(0)
    net = make_model("eegnet", len(CH_NAMES), 2, N_TIMES, SFREQ)
    sal = mfm.explain(_epochs(), net, method="amplitude_gradients")
    prov = sal.provenance
    assert prov["model_class"] == "braindecode.models.eegnet.EEGNet"
    assert prov["versions"]["braindecode"] == metadata.version("braindecode")
    assert prov["model_hash"] == _model_sha(net)
    # another model: another hash
    assert prov["model_hash"] != _model_sha(make_model("eegnet", 6, 2, 64, SFREQ))


def test_provenance_kept(from_file, model):
    """Selection, pick, average, copy, concatenate and combine keep it."""
    sal, tfr, _ = from_file
    prov = sal.provenance
    for derived in (
        sal[:3],
        sal.copy().pick(["C3", "C4"]),
        sal.average(),
        sal.average().copy(),
        mfm.concatenate_saliencies([sal[:4], sal[4:]]),
        mfm.combine_saliency([sal[:4], sal[4:]], [1, -1]),
    ):
        assert derived.provenance == prov, derived
    for derived in (tfr[2:], tfr.average(), tfr.average(dim="times"), tfr.copy()):
        assert derived.provenance == tfr.provenance
    # maps of two models: what they share, and each input's provenance
    sal2 = mfm.explain(_epochs(1), _model(1), method="amplitude_gradients")
    both = mfm.concatenate_saliencies([sal, sal2])
    merged = both.provenance
    assert merged["inputs"] == [prov, sal2.provenance]
    assert "model_hash" not in merged
    assert merged["versions"] == prov["versions"]
    assert merged["method"] == "amplitude_gradients"
    assert "Tiny" not in repr(both)
    assert "2 inputs from different models" in provenance_summary(merged)
    # the same model, other epochs (two subjects of one run): the hash stays
    sub2 = mfm.explain(_epochs(1), model, method="amplitude_gradients")
    same_model = mfm.concatenate_saliencies([sal, sub2]).provenance
    assert same_model["model_hash"] == prov["model_hash"]
    assert [p["source"] for p in same_model["inputs"]] == [prov["source"], None]


def test_eq_ignores_provenance_and_key_order(from_file):
    sal, _, _ = from_file
    state = sal.__getstate__()
    params = sal.method_params
    reordered = dict(reversed(list(params.items())))
    assert list(reordered) != list(params)

    def like(method_params, provenance):
        return mfm.SpectralSaliency(
            sal.get_data(),
            sal.info,
            sal.grid,
            method=sal.method,
            method_params=method_params,
            events=sal.events,
            event_id=sal.event_id,
            diagnostics=sal.diagnostics,
            provenance=provenance,
        )

    twin = like(reordered, dict(sal.provenance, created="2000-01-01T00:00:00Z"))
    assert twin.__getstate__()["method_params"] != state["method_params"]
    assert twin == sal
    assert twin.provenance != sal.provenance
    assert like(params, None) == sal  # no provenance at all
    # another parameter value is another map
    assert like(dict(params, absolute=not params["absolute"]), None) != sal


def test_older_file_without_provenance(from_file, tmp_path):
    """A file of an earlier version (no provenance) reads with an empty dict."""
    sal, tfr, _ = from_file
    for obj, read in ((sal, mfm.read_saliency), (tfr, mfm.read_saliency_tfr)):
        state = obj.__getstate__()
        del state["provenance"]
        fname = tmp_path / f"old-{type(obj).__name__}.h5"
        write_h5(fname, state, H5_TITLE)
        back = read(fname)
        assert back.provenance == {}
        assert back == obj
        assert "Tiny" not in repr(back)
    assert provenance_summary({}).startswith("none recorded")


# ---------------------------------------------------------------- checkpoint


def test_resumed_run_equals_uninterrupted(tmp_path, torch_threads):
    """A checkpointed run interrupted mid-way and resumed is == a run
    without a checkpoint (its parameters come back in another key order)."""
    import h5io

    epochs = _epochs()
    model = _model()
    ref = mfm.explain(epochs, model, **FREQMASK)
    fname = tmp_path / "run.h5"
    model.calls, model.fail_after = 0, 30  # past chunk 1 of 4, within chunk 3
    with pytest.raises(KeyboardInterrupt):
        mfm.explain(epochs, model, checkpoint=fname, **FREQMASK)
    state = h5io.read_hdf5(str(fname), title="mnefreqmask_checkpoint")
    assert 1 <= len(state["chunks"]) < 4
    prov = json.loads(state["provenance"])
    assert prov["model_hash"] == _model_sha(model)
    assert prov["method"] == "freqmask"
    assert prov["method_params"]["n_steps"] == 10
    model.fail_after = None
    got = mfm.explain(epochs, model, checkpoint=fname, **FREQMASK)
    # the comparison is not trivial: the masks moved; the checkpoint stores
    # the parameters in the method's order (the fingerprint's fix), and
    # __eq__ compares them as content (this file's key-order test)
    assert np.ptp(ref.get_data()) > 1e-3
    assert got.__getstate__()["method_params"] == ref.__getstate__()["method_params"]
    assert got == ref
    np.testing.assert_array_equal(got.get_data(), ref.get_data())
    assert got.provenance["model_hash"] == ref.provenance["model_hash"]


# ---------------------------------------------------------------- damaged files


def _zeroed(fname, out, start, n=5000):
    raw = bytearray(fname.read_bytes())
    raw[start : start + n] = bytes(n)
    out.write_bytes(bytes(raw))
    return out


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """A saved map of 200 epochs (about 150 kB). On such a map written by the
    previous version (no byte checksum), 5,000 zeroed bytes at offset 4,000
    made its reader loop for more than 90 s (h5io / HDF5 in
    attrs.__getitem__), and at other offsets raise RuntimeError,
    AttributeError or KeyError from inside h5py."""
    rng = np.random.default_rng(0)
    info = mne.create_info(CH_NAMES, SFREQ, "eeg")
    grid = mfm.FrequencyGrid(SFREQ, N_TIMES, "canonical")
    n = 200
    sal = mfm.SpectralSaliency(
        rng.random((n, len(CH_NAMES), grid.n_bands)).astype(np.float32),
        info,
        grid,
        method="freqmask",
        method_params=dict(n_steps=300),
        events=np.column_stack([np.arange(n), np.zeros(n, int), np.ones(n, int)]),
        diagnostics=dict(n_steps=np.arange(n)),
    )
    fname = tmp_path_factory.mktemp("big") / "sal.h5"
    sal.save(fname)
    return sal, fname


@pytest.mark.timeout(60)
def test_zeroed_bytes_never_hang(big_file, tmp_path):
    """5,000 zeroed bytes anywhere: a clear error naming the file, quickly."""
    sal, fname = big_file
    size = fname.stat().st_size
    assert mfm.read_saliency(fname) == sal
    bad = tmp_path / "bad-sal.h5"
    starts = sorted(set(range(0, size - 5000, 3000)) | {size // 2 - 2500})
    assert len(starts) > 40
    for start in starts:
        _zeroed(fname, bad, start)
        with pytest.raises(ValueError, match="is damaged|is not an HDF5 file") as err:
            mfm.read_saliency(bad)
        msg = str(err.value)
        assert str(bad) in msg and "save it again" in msg, (start, msg)
    # the middle of the file: the checksum names the cause
    _zeroed(fname, bad, size // 2 - 2500)
    with pytest.raises(ValueError, match="its bytes do not match the SHA-256"):
        mfm.read_saliency(bad)
    # the header that holds the checksum overwritten, the HDF5 data intact
    _zeroed(fname, bad, 0, n=100)
    with pytest.raises(ValueError, match="header that holds its checksum"):
        mfm.read_saliency(bad)


@pytest.mark.timeout(60)
def test_truncated_foreign_and_wrong_kind_files(big_file, from_file, tmp_path):
    sal, fname = big_file
    raw = fname.read_bytes()
    for n in (len(raw) - 1, len(raw) // 2, 600, 100):
        cut = tmp_path / f"cut{n}-sal.h5"
        cut.write_bytes(raw[:n])
        with pytest.raises(ValueError, match=f"{cut.name} is damaged: its bytes"):
            mfm.read_saliency(cut)
    # an empty file, a FIF file and a text file under .h5
    for name, content in (
        ("empty.h5", b""),
        ("text.h5", b"channel,band,value\nC3,alpha,0.5\n"),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"{name} is not an HDF5 file"):
            mfm.read_saliency(tmp_path / name)
    _, _, epo_fname = from_file
    fif = tmp_path / "epochs.h5"
    fif.write_bytes(epo_fname.read_bytes())
    with pytest.raises(ValueError, match="epochs.h5 is not an HDF5 file"):
        mfm.read_saliency(fif)
    # HDF5 files of another kind: named
    model = _model()
    ckpt = tmp_path / "run.h5"
    mfm.explain(_epochs(), model, method="amplitude_gradients", checkpoint=ckpt)
    with pytest.raises(ValueError, match="holds a checkpoint of mne_freqmask"):
        mfm.read_saliency(ckpt)
    spectrum = _epochs().compute_psd(verbose=0)
    spectrum.save(tmp_path / "psd-spectrum.h5", verbose=0)
    with pytest.raises(ValueError, match="holds an MNE-Python object"):
        mfm.read_saliency(tmp_path / "psd-spectrum.h5")
    _, tfr, _ = from_file
    tfr.save(tmp_path / "tfr.h5")
    # one reader for both kinds (#28): the class comes from the stored dims
    assert mfm.read_saliency(tmp_path / "tfr.h5") == tfr


@pytest.mark.timeout(60)
def test_damaged_checkpoint(tmp_path, torch_threads):
    """A damaged checkpoint is refused with the fix, before HDF5 parses it."""
    epochs, model = _epochs(), _model()
    fname = tmp_path / "run.h5"
    kw = dict(method="amplitude_gradients", chunk_size=2, checkpoint=fname)
    first = mfm.explain(epochs, model, **kw)
    size = fname.stat().st_size
    _zeroed(fname, fname, size // 2 - 2500, n=min(5000, size // 4))
    with pytest.raises(ValueError, match="run.h5 is damaged.*delete it or pass"):
        mfm.explain(epochs, model, **kw)
    fname.unlink()  # the fix: the run starts over, with the same result
    assert mfm.explain(epochs, model, **kw) == first


@pytest.mark.timeout(120)
def test_amortised_provenance_and_damage(tmp_path, torch_threads):
    """The amortised explainer's file: provenance back, damage detected
    (torch.load itself reads zeroed tensor bytes without an error)."""
    from mne_freqmask.amortised import FreqMaskExplainer, read_freqmask_explainer

    epochs, model = _epochs(), _model()
    exp = FreqMaskExplainer(hidden=8, n_layers=1, n_donors=4).fit(
        epochs, model, bands=4, n_epochs=2, batch_size=4, random_state=0
    )
    assert exp.provenance["model_hash"] == _model_sha(model)
    assert exp.provenance["method"] == "freqmask_amortised"
    fname = tmp_path / "exp.pt"
    exp.save(fname)
    back = read_freqmask_explainer(fname)
    assert back.provenance == exp.provenance
    # its maps name the model it was trained on, never having called it
    sal = back.explain(epochs)
    assert sal.provenance["model_hash"] == _model_sha(model)
    assert sal.provenance["model_class"] == f"{__name__}.Tiny"
    # zeroed bytes inside the network's weights
    raw = bytearray(fname.read_bytes())
    weights = back.net.state_dict()
    first = next(iter(weights.values())).numpy().tobytes()
    at = bytes(raw).find(first[:64])
    assert at > 0
    raw[at : at + 32] = bytes(32)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="bad.pt is damaged: its content does not"):
        read_freqmask_explainer(bad)
    bad.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(ValueError, match="bad.pt is not a FreqMaskExplainer file"):
        read_freqmask_explainer(bad)


# ---------------------------------------------------------------- sys-info


def test_sys_info(capsys):
    from mne_freqmask import cli

    assert cli.main(["sys-info"]) == 0
    out = capsys.readouterr().out
    assert "Platform" in out and "mne" in out  # MNE's part
    assert f"mne-freqmask {mfm.__version__}" in out
    for dist in ("torch", "braindecode", "zennit", "captum", "h5py"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "not installed"
        line = next(x for x in out.splitlines() if x.split()[:1] == [dist])
        assert line.split()[1:] == version.split(), line


# ---------------------------------------------------------------- fuzz


def test_tired_researcher_files_and_maps(from_file, tmp_path):
    """Reordered channels, NaN, bads and files of an earlier version."""
    import h5io

    sal, _, _ = from_file
    # maps of the same channels in another order: the fix is named and works
    order = sal.ch_names[::-1]
    shuffled = sal.copy().pick(order)
    assert shuffled.ch_names == order
    with pytest.raises(ValueError, match=r"another order.*\.pick\(saliencies\[0\]"):
        mfm.concatenate_saliencies([sal, shuffled])
    with pytest.raises(ValueError, match=r"another order.*\.pick\(all_saliency\[0\]"):
        mfm.combine_saliency([sal, shuffled], [1, -1])
    fixed = mfm.concatenate_saliencies([sal, shuffled.copy().pick(sal.ch_names)])
    np.testing.assert_array_equal(fixed.get_data()[len(sal) :], sal.get_data())
    # a map holding NaN (e.g. built by hand) and bads: saved and read back equal
    data = sal.get_data()
    data[0, 1, 2] = np.nan
    info = sal.info.copy()
    info["bads"] = ["C3"]
    odd = mfm.SpectralSaliency(
        data, info, sal.grid, method="custom", provenance=sal.provenance
    )
    odd.save(tmp_path / "odd.h5")
    back = mfm.read_saliency(tmp_path / "odd.h5")
    assert back == odd and back.info["bads"] == ["C3"]
    assert np.isnan(back.get_data()[0, 1, 2])
    assert back.copy().pick("all", exclude="bads").ch_names == [
        ch for ch in sal.ch_names if ch != "C3"
    ]
    # a checkpoint of an earlier version (no byte checksum) still resumes
    epochs, model = _epochs(), _model()
    fname = tmp_path / "run.h5"
    kw = dict(method="amplitude_gradients", chunk_size=2, checkpoint=fname)
    first = mfm.explain(epochs, model, **kw)
    state = h5io.read_hdf5(str(fname), title="mnefreqmask_checkpoint")
    del state["provenance"]
    fname.unlink()
    h5io.write_hdf5(str(fname), state, title="mnefreqmask_checkpoint", slash="replace")
    assert fname.read_bytes()[:4] == b"\x89HDF"
    model.calls = 0
    assert mfm.explain(epochs, model, **kw) == first
    assert model.calls == 2  # the model check and the check of the predictions
