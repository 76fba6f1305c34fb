"""Tests of SpectralSaliency, read_saliency and the saliency plots."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mne  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402

import mne_freqmask as mfm  # noqa: E402
from mne_freqmask.saliency import SpectralSaliency, read_saliency  # noqa: E402
from mne_freqmask.spectral import FrequencyGrid  # noqa: E402
from mne_freqmask.utils._checks import _standard_montage  # noqa: E402
from mne_freqmask.viz import (  # noqa: E402
    plot_saliency,
    plot_saliency_bands,
    plot_saliency_topomap,
)

CH_NAMES = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "O1", "O2"]
N_EPOCHS = 6
SFREQ = 128.0
GRID = FrequencyGrid(SFREQ, 256, "canonical")
N_BANDS = GRID.n_bands  # delta, theta, alpha, beta, gamma


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _info(montage=True):
    info = mne.create_info(CH_NAMES, SFREQ, "eeg")
    if montage:
        info.set_montage(_standard_montage())
    return info


def _make(n_epochs=N_EPOCHS, *, montage=True, metadata=True, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.random((n_epochs, len(CH_NAMES), N_BANDS)).astype(np.float32)
    events = np.column_stack(
        [
            np.arange(n_epochs) * 256,
            np.zeros(n_epochs, int),
            1 + np.arange(n_epochs) % 2,
        ]
    )
    md = None
    if metadata:
        md = pd.DataFrame(
            dict(
                subject=np.arange(n_epochs) // 2 + 1,
                rt=rng.random(n_epochs) + 0.1 + 0.2,  # not exact in 15 digits
                session=[f"s{k % 3}" for k in range(n_epochs)],
                correct=np.arange(n_epochs) % 3 != 0,
            ),
            index=np.arange(n_epochs) + 10,  # like Epochs.selection
        )
    return SpectralSaliency(
        data,
        _info(montage),
        GRID.freqs,
        GRID.band_names,
        GRID.band_edges,
        method="freqmask",
        method_params=dict(lr=0.01, n_steps=300, bands="canonical", pair=(1, 2)),
        events=events,
        event_id={"left/hand": 1, "right/hand": 2},
        metadata=md,
        diagnostics=dict(n_steps=np.arange(n_epochs) + 50, loss=rng.random(n_epochs)),
    )


@pytest.fixture
def sal():
    return _make()


# ---------------------------------------------------------------- basics


def test_repr_and_properties(sal):
    # the fixture's diagnostics hold step counts (no stop reasons): shown
    assert repr(sal) == (
        "<SpectralSaliency (freqmask) | 6 epochs × 8 channels × 5 bands, "
        "0.0-45.0 Hz; steps: median 52.5 (max 55)>"
    )
    grp = sal.average()
    assert repr(grp) == (
        "<SpectralSaliency (freqmask, group of 6 epochs) | 8 channels × 5 bands, "
        "0.0-45.0 Hz>"
    )
    assert sal.level == "instance" and grp.level == "group"
    assert sal.dims == ("epoch", "channel", "band")
    assert grp.dims == ("channel", "band")
    assert sal.shape == (N_EPOCHS, 8, N_BANDS) and grp.shape == (8, N_BANDS)
    assert len(sal) == N_EPOCHS
    assert sal.ch_names == CH_NAMES
    assert sal.band_names == ["delta", "theta", "alpha", "beta", "gamma"]
    assert sal.bands["alpha"] == (8.0, 12.0)
    assert sal.data.dtype == np.float32
    assert_array_equal(sal.freqs, GRID.freqs)
    with pytest.raises(ValueError, match="read-only"):
        sal.data[0, 0, 0] = 1.0
    # JSON-normalised parameters (tuples become lists)
    assert sal.method_params["pair"] == [1, 2]
    assert sal.nave is None and grp.nave == N_EPOCHS
    assert list(sal.metadata.index) == list(range(N_EPOCHS))  # reset
    assert grp.events is None and grp.metadata is None and grp.diagnostics == {}
    with pytest.raises(TypeError, match="group level"):
        len(grp)


def test_constructor_errors():
    info = _info()
    data = np.zeros((2, 8, N_BANDS), np.float32)
    args = (GRID.freqs, GRID.band_names, GRID.band_edges)
    with pytest.raises(ValueError, match="8 channels but info has 7"):
        SpectralSaliency(data, mne.pick_info(info, range(7)), *args, method="m")
    with pytest.raises(ValueError, match="3 dimensions"):
        SpectralSaliency(data[0], info, *args, method="m")
    with pytest.raises(ValueError, match="Invalid value for the 'dims'"):
        SpectralSaliency(data, info, *args, method="m", dims=("epoch", "freq"))
    with pytest.raises(ValueError, match="band_names has 4"):
        SpectralSaliency(data, info, GRID.freqs, GRID.band_names[:4], GRID.band_edges,
                         method="m")  # fmt: skip
    with pytest.raises(ValueError, match="nave must be None"):
        SpectralSaliency(data, info, *args, method="m", nave=2)
    with pytest.raises(ValueError, match="one row per epoch"):
        SpectralSaliency(
            data, info, *args, method="m", metadata=pd.DataFrame({"a": [1]})
        )
    with pytest.raises(ValueError, match="one entry per epoch"):
        SpectralSaliency(data, info, *args, method="m", diagnostics={"x": [1, 2, 3]})
    with pytest.raises(TypeError, match="JSON-like"):
        SpectralSaliency(data, info, *args, method="m", method_params={"f": object()})
    with pytest.raises(ValueError, match="events must be None for group"):
        SpectralSaliency(data[0], info, *args, method="m", dims=("channel", "band"),
                         events=np.ones((1, 3), int))  # fmt: skip
    with pytest.raises(ValueError, match="real numbers"):
        SpectralSaliency(data + 1j, info, *args, method="m")
    # events without event_id: one name per code
    ev = np.array([[0, 0, 3], [10, 0, 4]])
    sal = SpectralSaliency(data, info, *args, method="m", events=ev)
    assert sal.event_id == {"3": 3, "4": 4}


def test_eq_and_copy(sal):
    other = _make()
    assert sal == other
    assert sal != 3
    cp = sal.copy()
    assert cp == sal
    cp._data[0, 0, 0] += 1
    assert cp != sal
    assert sal.data[0, 0, 0] != cp.data[0, 0, 0]  # deep copy
    cp = sal.copy()
    cp.metadata.loc[0, "rt"] = 99.0
    assert cp != sal
    cp = sal.copy()
    cp.info["bads"] = ["C3"]
    assert cp != sal
    cp = sal.copy()
    cp._diagnostics["loss"][1] = -1
    assert cp != sal
    assert_allclose(pickle.loads(pickle.dumps(sal)).get_data(), sal.get_data())
    assert pickle.loads(pickle.dumps(sal)) == sal


# ---------------------------------------------------------------- selection


def test_getitem(sal):
    data = sal.get_data()
    one = sal[2]
    assert len(one) == 1 and one.shape == (1, 8, N_BANDS)
    assert_array_equal(one.get_data(), data[2:3])
    assert_array_equal(one.events, sal.events[2:3])
    assert one.diagnostics["n_steps"].tolist() == [52]
    assert one.metadata["subject"].tolist() == [2]
    assert_array_equal(sal[-1].get_data(), data[-1:])
    sub = sal[1:4]
    assert len(sub) == 3 and sub.method == "freqmask"
    assert_array_equal(sub.get_data(), data[1:4])
    assert_array_equal(sal[[0, 5]].get_data(), data[[0, 5]])
    mask = np.arange(N_EPOCHS) % 2 == 0
    assert_array_equal(sal[mask].get_data(), data[mask])
    # pandas query on the metadata
    q = sal["subject == 3"]
    assert_array_equal(q.get_data(), data[4:6])
    assert q.metadata["subject"].tolist() == [3, 3]
    assert list(q.metadata.index) == [0, 1]
    assert_array_equal(q.diagnostics["loss"], sal.diagnostics["loss"][4:6])
    assert_array_equal(sal["correct and rt > 0"].get_data(), data[sal.metadata.correct])
    # event names and tags, as mne.Epochs
    assert_array_equal(sal["left/hand"].events[:, 2], [1, 1, 1])
    assert_array_equal(sal["right"].get_data(), data[1::2])
    assert len(sal[["left", "right"]]) == N_EPOCHS
    # errors
    with pytest.raises(IndexError, match="out of range"):
        sal[N_EPOCHS]
    with pytest.raises(IndexError, match="no epochs"):
        sal["subject == 99"]
    with pytest.raises(IndexError, match="no epochs"):
        sal[[]]
    with pytest.raises(IndexError, match="boolean mask"):
        sal[np.ones(3, bool)]
    with pytest.raises(KeyError, match="neither an event name"):
        sal["nonexistent_column == 1"]
    with pytest.raises(TypeError, match="group level"):
        sal.average()[0]
    with pytest.raises(TypeError, match="selected by"):
        sal[1.5]
    nometa = _make(metadata=False)
    with pytest.raises(KeyError, match="no metadata"):
        nometa["subject == 1"]


def test_get_data_and_pick(sal):
    data = sal.get_data()
    assert_array_equal(data, sal.data)
    data[0] = -1  # a copy
    assert (sal.data >= 0).all()
    sub, names = sal.get_data(
        picks=["C3", "O1"], bands=["beta", "alpha"], return_bands=True
    )
    assert names == ["beta", "alpha"]
    assert_array_equal(sub, sal.data[:, [4, 6]][:, :, [3, 2]])
    assert_array_equal(sal.get_data(bands="theta"), sal.data[..., [1]])
    with pytest.raises(ValueError, match="Unknown band"):
        sal.get_data(bands=["mu"])
    # pick: in place, returns self
    full = sal.get_data()
    out = sal.pick(["O2", "Fp1"])
    assert out is sal
    assert sal.ch_names == ["O2", "Fp1"]
    assert sal.info["nchan"] == 2
    assert_array_equal(sal.get_data(), full[:, [7, 0]])
    other = _make()
    other.info["bads"] = ["F3"]
    other.pick("eeg", exclude="bads")
    assert "F3" not in other.ch_names and len(other.ch_names) == 7


def test_average(sal):
    data = sal.get_data()
    mean = sal.average()
    assert_allclose(mean.get_data(), data.mean(axis=0))
    assert mean.get_data().dtype == np.float32
    median = sal.average("median")
    assert_allclose(median.get_data(), np.median(data, axis=0))
    assert median.nave == N_EPOCHS
    mx = sal.average(lambda x: x.max(axis=0))
    assert_allclose(mx.get_data(), data.max(axis=0))
    with pytest.raises(ValueError, match="must return shape"):
        sal.average(lambda x: x)
    with pytest.raises(ValueError, match="Invalid value for the 'method'"):
        sal.average("mode")
    with pytest.raises(TypeError, match="group level"):
        mean.average()
    assert mean.method_params == sal.method_params
    assert mean.info is not sal.info


def test_to_data_frame(sal):
    data = sal.get_data()
    df = sal.to_data_frame()
    n = N_EPOCHS * 8 * N_BANDS
    assert len(df) == n
    assert list(df.columns[:6]) == [
        "epoch",
        "channel",
        "band",
        "fmin",
        "fmax",
        "saliency",
    ]
    assert set(df.columns[6:]) == {"subject", "rt", "session", "correct"}
    row = df[(df.epoch == 3) & (df.channel == "C4") & (df.band == "alpha")]
    assert len(row) == 1
    assert row.saliency.item() == data[3, 5, 2]
    assert (row.fmin.item(), row.fmax.item()) == (8.0, 12.0)
    assert row.subject.item() == 2
    assert_allclose(df.saliency.to_numpy(), data.ravel())
    # picks, bands, index
    df = sal.to_data_frame(picks=["O1"], bands=["gamma"], index=["epoch", "channel"])
    assert df.index.names == ["epoch", "channel"]
    assert_allclose(df.saliency.to_numpy(), data[:, 6, 4])
    # group level: no epoch column
    grp = sal.average()
    gdf = grp.to_data_frame()
    assert "epoch" not in gdf.columns and len(gdf) == 8 * N_BANDS
    assert_allclose(gdf.saliency.to_numpy(), grp.get_data().ravel())
    # wide format
    wide = sal.to_data_frame(long_format=False, index="epoch")
    assert wide.shape == (N_EPOCHS, 8 * N_BANDS + 4)
    assert_allclose(wide["Fp2_beta"].to_numpy(), data[:, 1, 3])
    assert wide["subject"].tolist() == sal.metadata["subject"].tolist()
    gwide = grp.to_data_frame(long_format=False)
    assert gwide.shape == (1, 8 * N_BANDS)
    assert grp.to_data_frame(index=["channel", "band"]).index.nlevels == 2
    with pytest.raises(ValueError, match="Invalid value for the 'index'"):
        grp.to_data_frame(index="epoch")
    with pytest.raises(ValueError, match="index must be None"):
        grp.to_data_frame(index="epoch", long_format=False)


# ---------------------------------------------------------------- I/O


@pytest.mark.parametrize("level", ["instance", "group"])
def test_save_read_roundtrip(sal, tmp_path, level):
    obj = sal if level == "instance" else sal.average("median")
    fname = tmp_path / "subj01-sal.h5"
    obj.save(fname)
    back = read_saliency(fname)
    assert back == obj
    assert back.level == level
    assert back.data.dtype == obj.data.dtype
    assert back.info["dig"] is not None
    assert_array_equal(back.get_data(), obj.get_data())
    assert back.method_params == obj.method_params
    if level == "instance":
        pd.testing.assert_frame_equal(back.metadata, obj.metadata)
        assert back.event_id == {"left/hand": 1, "right/hand": 2}
        assert_array_equal(back.events, obj.events)
        assert_array_equal(back.diagnostics["n_steps"], obj.diagnostics["n_steps"])
        assert back["subject == 1"] == obj["subject == 1"]
    # str paths and the .hdf5 extension work too; without metadata as well
    nometa = _make(metadata=False)
    nometa.save(str(tmp_path / "x.hdf5"))
    assert read_saliency(str(tmp_path / "x.hdf5")) == nometa


def test_save_overwrite_and_fname(sal, tmp_path):
    fname = tmp_path / "sal.h5"
    sal.save(fname)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        sal.save(fname)
    other = _make(seed=1)
    other.save(fname, overwrite=True)
    assert read_saliency(fname) == other
    with pytest.raises(ValueError, match=r"\.h5 or \.hdf5"):
        sal.save(tmp_path / "sal.fif")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sal.save(tmp_path / "missing" / "sal.h5")
    with pytest.raises(FileNotFoundError):
        read_saliency(tmp_path / "nope.h5")
    import h5io

    h5io.write_hdf5(tmp_path / "foreign.h5", {"a": 1}, title="other")
    with pytest.raises(ValueError, match="not a SpectralSaliency file"):
        read_saliency(tmp_path / "foreign.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.h5", "sal.h5"]


def test_save_failure_leaves_no_file(sal, tmp_path, monkeypatch):
    import h5io

    def failing_write(fname, *args, **kwargs):
        Path(fname).write_bytes(b"partial")  # half-written temporary file
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5io, "write_hdf5", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        sal.save(tmp_path / "sal.h5")
    assert list(tmp_path.iterdir()) == []
    # when overwriting, a failed save keeps the old file intact
    monkeypatch.undo()
    sal.save(tmp_path / "sal.h5")
    monkeypatch.setattr(h5io, "write_hdf5", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        _make(seed=2).save(tmp_path / "sal.h5", overwrite=True)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["sal.h5"]
    assert read_saliency(tmp_path / "sal.h5") == sal


# ---------------------------------------------------------------- plots


def test_plot_topomap(sal):
    fig = sal.plot_topomap(show=False)
    # 5 topomaps + 1 shared colorbar
    assert len(fig.axes) == N_BANDS + 1
    assert fig.axes[2].get_title() == "alpha\n8-12 Hz"
    assert "mean over 6 epochs" in fig.get_suptitle()
    assert len(fig.axes[0].images) == 1
    # a subset, per-band color scales (one colorbar each)
    fig = plot_saliency_topomap(
        sal.average(), bands=["alpha", "beta"], vlim=(0, None), show=False
    )
    assert len(fig.axes) == 4
    assert "group of 6 epochs" in fig.get_suptitle()
    # user axes, no colorbar
    fig, axes = plt.subplots(1, 2)
    out = sal.plot_topomap(["delta", "gamma"], axes=axes, colorbar=False, show=False)
    assert out is fig and len(fig.axes) == 2
    with pytest.raises(ValueError, match="one Axes per band"):
        sal.plot_topomap(["delta", "gamma"], axes=axes[:1], show=False)
    with pytest.raises(ValueError, match="vlim"):
        sal.plot_topomap(vlim="separate", show=False)
    # constant map: no contour warning
    const = _make()
    const._data[:] = 0.5
    const.plot_topomap(show=False)


def test_plot_symmetric_vlim():
    """Signed relevance on a diverging scale centred on 0."""
    signed = _make()
    signed._data -= 0.7  # mostly negative, a few positive cells
    m = np.abs(signed.get_data().mean(0)).max()
    fig = signed.plot_topomap(cmap="RdBu_r", vlim="symmetric", show=False)
    assert len(fig.axes) == N_BANDS + 1  # one shared colorbar
    for ax in fig.axes[:N_BANDS]:
        assert_allclose(ax.images[0].get_clim(), (-m, m), rtol=1e-6)
    fig = signed.plot_bands(cmap="RdBu_r", vlim="symmetric", show=False)
    assert_allclose(fig.axes[0].images[0].get_clim(), (-m, m), rtol=1e-6)
    # the explicit pair does the same
    fig = signed.plot_topomap(cmap="RdBu_r", vlim=(-m, m), show=False)
    assert_allclose(fig.axes[0].images[0].get_clim(), (-m, m), rtol=1e-6)
    with pytest.raises(ValueError, match="symmetric"):
        signed.plot_bands(vlim="joint", show=False)
    # by default a signed map (any negative value) gets the diverging scale
    # symmetric about 0, a non-negative one "Reds" from its min to its max
    for fig in (
        signed.plot_topomap(show=False),
        signed.plot_bands(show=False),
    ):
        im = fig.axes[0].images[0]
        assert im.get_cmap().name == "RdBu_r"
        assert_allclose(im.get_clim(), (-m, m), rtol=1e-6)
    positive = _make()
    assert positive.get_data().min() >= 0
    im = positive.plot_bands(show=False).axes[0].images[0]
    assert im.get_cmap().name == "Reds"
    mean = positive.get_data().mean(0)
    assert_allclose(im.get_clim(), (mean.min(), mean.max()), rtol=1e-6)
    # an explicit choice is kept
    im = signed.plot_bands(cmap="viridis", show=False).axes[0].images[0]
    assert im.get_cmap().name == "viridis"
    assert_allclose(im.get_clim(), (-m, m), rtol=1e-6)


def test_plot_topomap_no_montage():
    sal = _make(montage=False)
    with pytest.raises(RuntimeError, match=r"set_montage\(\.\.\.\)"):
        sal.plot_topomap(show=False)
    # the other plots do not need positions
    sal.plot(show=False)
    sal.plot_bands(show=False)


def test_plot_bands(sal):
    fig = sal.plot_bands(show=False)
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # image + colorbar
    assert len(ax.images) == 1
    assert ax.images[0].get_array().shape == (8, N_BANDS)
    assert_allclose(ax.images[0].get_array(), sal.get_data().mean(axis=0), rtol=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()] == CH_NAMES
    assert [t.get_text() for t in ax.get_xticklabels()] == sal.band_names
    assert fig.axes[1].get_ylabel() == "saliency"
    fig, ax = plt.subplots()
    out = plot_saliency_bands(
        sal.average(), picks=["C3", "C4"], bands=["alpha"], axes=ax, colorbar=False,
        show=False,
    )  # fmt: skip
    assert out is fig and ax.images[0].get_array().shape == (2, 1)


def test_plot(sal):
    fig = sal.plot(show=False)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in CH_NAMES]
    assert len(lines) == 8
    x, y = lines[4].get_data()  # C3, step line over the band edges
    assert_allclose(x[:4], [0, 4, 4, 8])
    mean = sal.get_data().mean(axis=0)
    assert_allclose(y[:4], [mean[4, 0]] * 2 + [mean[4, 1]] * 2, rtol=1e-6)
    assert ax.get_xlabel() == "Frequency (Hz)"
    assert ax.get_legend() is not None
    fig = plot_saliency(sal.average(), picks=["O1"], show=False)
    assert len([ln for ln in fig.axes[0].get_lines() if ln.get_label() == "O1"]) == 1


def test_plot_non_contiguous_bands():
    info = _info()
    edges = np.array([[1.0, 4.0], [8.0, 13.0]])
    sal = SpectralSaliency(
        np.ones((8, 2)), info, GRID.freqs, ["low", "alpha"], edges,
        method="m", dims=("channel", "band"),
    )  # fmt: skip
    fig = sal.plot(show=False)
    x, _ = fig.axes[0].get_lines()[0].get_data()
    assert np.isnan(x[2])  # the gap between 4 and 8 Hz is not drawn
    assert "group)" in fig.axes[0].get_title()


# ---------------------------------------------------------------- no torch


@pytest.mark.parametrize(
    "code",
    [
        # the modules themselves (bypassing the package __init__)
        "import sys, types; pkg = types.ModuleType('mne_freqmask'); "
        "pkg.__path__ = [{root!r}]; sys.modules['mne_freqmask'] = pkg; "
        "import mne_freqmask.saliency, mne_freqmask.viz; "
        "assert 'torch' not in sys.modules, 'torch imported'",
        # through the package, as users import it
        "import sys; import mne_freqmask.saliency; "
        "assert 'torch' not in sys.modules, 'torch imported'",
    ],
    ids=["modules", "package"],
)
def test_no_torch_import(code):
    import mne_freqmask

    root = os.path.dirname(mne_freqmask.__file__)
    proc = subprocess.run(
        [sys.executable, "-c", code.format(root=root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- grid, concat


def test_grid_and_concatenate(tmp_path):
    """SpectralSaliency.grid survives I/O; concatenate_saliencies joins epochs."""
    info = mne.create_info(["C3", "Cz", "C4"], 100.0, "eeg")
    grid = mfm.FrequencyGrid(100.0, 201, "canonical")
    rng = np.random.default_rng(0)
    events = np.column_stack([np.arange(6), np.zeros(6, int), [1, 2] * 3])
    meta = pd.DataFrame(dict(subject=[0, 0, 0, 1, 1, 1]))
    sal = mfm.SpectralSaliency(
        rng.random((6, 3, grid.n_bands)),
        info,
        grid,
        method="freqmask",
        events=events,
        event_id=dict(a=1, b=2),
        metadata=meta,
        diagnostics=dict(n_steps=np.arange(6)),
    )
    for got in (sal.grid, mfm.read_saliency(_saved(sal, tmp_path)).grid):
        assert got.n_times == 201 and got.sfreq == 100.0
        assert got.band_names == grid.band_names
        np.testing.assert_array_equal(got.bin_band, grid.bin_band)
    # built from arrays: the grid is inferred from info["sfreq"] and freqs
    legacy = mfm.SpectralSaliency(
        sal.get_data(),
        info,
        grid.freqs,
        grid.band_names,
        grid.band_edges,
        method="x",
    )
    np.testing.assert_array_equal(legacy.grid.bin_band, grid.bin_band)
    with pytest.raises(ValueError, match="band_names and band_edges must be None"):
        mfm.SpectralSaliency(sal.get_data(), info, grid, grid.band_names, method="x")
    bad = mfm.SpectralSaliency(
        sal.get_data(),
        info,
        np.arange(7.0),
        grid.band_names,
        grid.band_edges,
        method="x",
    )
    with pytest.raises(ValueError, match="not the rfft"):
        bad.grid  # noqa: B018
    both = mfm.concatenate_saliencies([sal[:2], sal[2:]])
    assert both == sal
    np.testing.assert_array_equal(
        mfm.concatenate_saliencies(
            [sal["subject == 1"], sal["subject == 0"]]
        ).get_data(),
        np.concatenate([sal.get_data()[3:], sal.get_data()[:3]]),
    )
    with pytest.raises(ValueError, match="group level"):
        mfm.concatenate_saliencies([sal, sal.average()])
    with pytest.raises(ValueError, match="differs from"):
        mfm.concatenate_saliencies([sal, sal.copy().pick(["C3", "Cz"])])
    with pytest.raises(TypeError, match="saliencies"):
        mfm.concatenate_saliencies([sal, 1])


def _saved(sal, tmp_path):
    fname = tmp_path / "grid-sal.h5"
    sal.save(fname)
    return fname


def test_normalize(sal, tmp_path):
    """Each normalisation puts every map on its stated scale, and is labelled."""
    raw = sal.get_data()
    signed = SpectralSaliency(
        raw - 0.5, sal.info, GRID, method="lrp", events=sal.events
    )
    for orig in (sal, signed):
        data = orig.get_data()
        peak = orig.copy().normalize("max").get_data()
        assert_allclose(np.abs(peak).max((1, 2)), 1, rtol=1e-6)
        assert_allclose(peak * np.abs(data).max((1, 2), keepdims=True), data, 1e-5)
        share = orig.copy().normalize("sum").get_data()
        assert_allclose(np.abs(share).sum((1, 2)), 1, rtol=1e-5)
        z = orig.copy().normalize("zscore").get_data()
        assert_allclose(z.mean((1, 2)), 0, atol=1e-5)
        assert_allclose(z.std((1, 2)), 1, rtol=1e-4)
        rank = orig.copy().normalize("rank").get_data()
        n_cells = data.shape[1] * data.shape[2]
        assert_allclose(rank.max((1, 2)), 1)
        assert_allclose(rank.min((1, 2)), 1 / n_cells)
        # the ranks keep each epoch's order of cells
        for a, b in zip(data, rank, strict=True):
            assert_array_equal(np.argsort(a, None), np.argsort(b, None))
    # the original is untouched by a normalised copy; normalize is in place
    assert_array_equal(sal.get_data(), raw)
    norm = sal.copy()
    assert norm.normalize("max") is norm
    assert norm.normalization == "max" and sal.normalization is None
    # it survives selection, averaging, saving and reading
    assert norm[:2].normalization == "max"
    assert norm.average().normalization == "max"
    norm.save(tmp_path / "n-sal.h5")
    back = read_saliency(tmp_path / "n-sal.h5")
    assert back.normalization == "max" and back == norm
    # the same normalisation twice is harmless; another one is refused
    assert_allclose(norm.copy().normalize("max").get_data(), norm.get_data())
    with pytest.raises(ValueError, match="already normalised with 'max'"):
        norm.copy().normalize("sum")
    with pytest.raises(ValueError, match="Invalid value for the 'kind'"):
        sal.copy().normalize("peak")
    # an all-zero map stays 0 (no NaN)
    zero = SpectralSaliency(np.zeros_like(raw), sal.info, GRID, method="freqmask")
    for kind in ("max", "sum", "zscore"):
        assert_array_equal(zero.copy().normalize(kind).get_data(), 0)
    # the plots say what the values are
    fig = norm.average().plot_topomap(show=False)
    assert fig.axes[-1].get_ylabel() == "saliency / map maximum"
    fig = sal.average().plot_topomap(show=False)
    assert fig.axes[-1].get_ylabel() == "saliency"
    fig = sal.copy().normalize("sum").average().plot(show=False)
    assert fig.axes[0].get_ylabel() == "Share of the map's total"
    fig = sal.copy().normalize("rank").average().plot_bands(show=False)
    assert fig.axes[-1].get_ylabel() == "percentile rank within map"
