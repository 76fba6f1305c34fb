"""explain(..., time_windows=...): STFT path, SpectralSaliencyTFR, planted burst."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mne_freqmask as mfm  # noqa: E402
from mne_freqmask.datasets.simulated import PlantedBurst  # noqa: E402
from mne_freqmask.evaluation import planted_window_auroc  # noqa: E402
from mne_freqmask.spectral import ShortTimeGrid, short_time_grid  # noqa: E402

#: a few channels around the motor cortex (C3 / C4 carry the burst)
CHS = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "P4"]  # conftest's burst
#: 0.5 s windows every 0.25 s on 2 s epochs: 9 windows, bins every 2 Hz
TW = (0.5, 0.25)


@pytest.fixture(scope="module")
def burst(burst_simulated):
    """The burst epochs and model (conftest); torch on one thread in this
    module (tiny data: a second thread only waits on a loaded machine)."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield burst_simulated
    torch.set_num_threads(n_threads)


def test_grid_and_stft_identity(burst):
    """The STFT and its inverse are the identity; an all-ones FreqMask mask
    gives the model the same output (1e-5)."""
    from mne_freqmask._inputs import make_input
    from mne_freqmask.methods.freqmask import _ChunkFitter

    epochs, _, model, _ = burst
    grid = short_time_grid(epochs.info["sfreq"], len(epochs.times), "canonical", TW)
    assert isinstance(grid, ShortTimeGrid) and not grid.whole
    assert grid.n_windows == 9 and grid.frequency_grid.n_freqs == 33
    np.testing.assert_allclose(grid.times, np.arange(9) * 0.25)
    assert grid.n_bands == 5 * 9 and grid.n_freqs == 33 * 9
    np.testing.assert_allclose(grid.window_edges[4], [0.75, 1.25])
    x = torch.as_tensor(epochs.get_data()[:6], dtype=torch.float32)
    scale = float(x.std())
    xf = grid.spectrum(x, scale)
    assert xf.shape == (6, len(CHS), grid.n_freqs)
    back = grid.inverse(xf, x.shape[-1], scale)
    assert float((back - x).abs().max() / x.abs().max()) < 1e-5
    # the fitter's own perturbation with M = 1 (and a fill that must vanish)
    inp = make_input(epochs[:6], picks=None, y=None, target=None, reference=None,
                     groups=None)  # fmt: skip
    params = dict(perturbation="reference", generator="two_branch")
    fitter = _ChunkFitter(inp, grid, model, params, torch.device("cpu"), x.dtype)
    xf = grid.spectrum(x, inp.scale)
    x2 = torch.stack([xf.real, xf.imag], 1)
    ones = torch.ones((6, len(CHS), grid.n_bands))
    xhat, _ = fitter._xhat(x, x2, ones, fill=torch.randn_like(x2))
    with torch.no_grad():
        out, ref = model(xhat), model(x)
    assert float((out - ref).abs().max()) < 1e-5
    # bad windows are refused with the rule
    for bad in ((0.5, 0.3), (0.01, 0.01), "long", (0.5,)):
        with pytest.raises((ValueError, TypeError)):
            short_time_grid(128.0, 256, 10, bad)


@pytest.mark.parametrize(
    "method, kw",
    [
        ("freqmask", dict(n_steps=60)),
        ("amplitude_gradients", {}),
        ("integrated_gradients", dict(n_steps=8)),
        ("freqrise", dict(n_masks=64, random_state=0)),
        ("freqrise", dict(n_masks=64, n_cells=8, random_state=0)),
        ("dft_lrp", {}),
        ("lrp", {}),
    ],
)
def test_one_window_is_the_whole_epoch(burst, method, kw):
    """A window as long as the epoch reproduces the default map exactly."""
    epochs, _, model, history = burst
    ep, ref = epochs[history["val_idx"][:4]], epochs[history["train_idx"][:20]]
    whole = mfm.explain(ep, model, method=method, bands=6, reference=ref, **kw)
    one = mfm.explain(
        ep, model, method=method, bands=6, reference=ref, time_windows=(2, 2), **kw
    )
    assert isinstance(one, mfm.SpectralSaliencyTFR)
    assert one.shape == whole.shape + (1,)
    np.testing.assert_array_equal(one.get_data()[..., 0], whole.get_data())
    np.testing.assert_array_equal(one.freqs, whole.freqs)
    collapsed = one.average(dim="times")
    assert isinstance(collapsed, mfm.SpectralSaliency)
    np.testing.assert_array_equal(collapsed.get_data(), whole.get_data())
    assert collapsed.grid.n_times == whole.grid.n_times


def test_planted_window_found(burst):
    """FreqMask (defaults) ranks the planted C3/C4 x beta x 0.5-1 s cells
    first (AUROC >= 0.95); the user's epochs and model are left as they were."""
    from test_explain import _assert_unchanged, _snapshot

    epochs, truth, model, history = burst
    held, train = history["val_idx"][:16], history["train_idx"]
    ep, ref = epochs[held], epochs[train]
    data_before = ep.get_data(copy=True)
    snap = _snapshot(model)
    sal = mfm.explain(ep, model, bands="canonical", reference=ref, time_windows=TW)
    _assert_unchanged(model, snap)
    np.testing.assert_array_equal(ep.get_data(), data_before)
    assert isinstance(truth, PlantedBurst) and truth.times == (0.5, 1.0)
    assert sal.shape == (16, len(CHS), 5, 9)
    cells = truth.cells(sal.ch_names, sal.band_edges, sal.window_edges)
    # C3 and C4, beta, the windows centred at 0.5, 0.75 and 1.0 s
    assert cells.sum() == 6 and cells[[3, 5], 3][:, [2, 3, 4]].all()
    auroc = planted_window_auroc(sal, truth)
    assert auroc >= 0.95, auroc
    # over the whole epoch the burst's cells are still found
    spectral = sal.average(dim="times")
    scores = mfm.evaluation.ground_truth_scores(spectral, truth)
    assert scores["auroc"] >= 0.9, scores
    # and the window matters: the planted band's saliency peaks in the burst
    beta = sal.average().get_data(picks=["C3", "C4"], bands="beta").mean((0, 1))
    assert 0.5 <= sal.times[np.argmax(beta)] <= 1.0


@pytest.mark.parametrize("method", ["amplitude_gradients", "integrated_gradients"])
def test_gradients_short_time(burst, method):
    """The gradient methods run short-time (on picked channels) and find the
    burst."""
    epochs, truth, model, history = burst
    ep = epochs[history["val_idx"][:16]]
    kw = dict(n_steps=16) if method == "integrated_gradients" else {}
    picks = ["C3", "Cz", "C4", "P3", "P4"]
    sal = mfm.explain(
        ep, model, method=method, bands="canonical", time_windows=TW, picks=picks, **kw
    )
    assert sal.ch_names == picks
    assert sal.shape == (16, 5, 5, 9) and np.isfinite(sal.get_data()).all()
    auroc = planted_window_auroc(sal, truth, absolute=True)
    assert auroc >= 0.8, auroc


@pytest.mark.parametrize(
    "method, kw, min_auroc",
    [
        # measured on these 16 epochs: 0.98 (grid masks), 1.00 (published
        # generator, 6 x 6 cells), 1.00 (LRP)
        ("freqrise", dict(n_masks=500, random_state=0), 0.9),
        ("freqrise", dict(n_masks=500, n_cells=6, random_state=0), 0.9),
        ("lrp", {}, 0.9),
    ],
)
def test_peers_short_time(burst, method, kw, min_auroc):
    """FreqRISE (both generators) and LRP run short-time and find the burst."""
    epochs, truth, model, history = burst
    ep = epochs[history["val_idx"][:16]]
    sal = mfm.explain(
        ep, model, method=method, bands="canonical", time_windows=TW, **kw
    )
    assert sal.shape == (16, len(CHS), 5, 9) and np.isfinite(sal.get_data()).all()
    if method == "freqrise":  # min-max normalised per epoch, over all cells
        flat = sal.get_data().reshape(16, -1)
        np.testing.assert_allclose(flat.min(1), 0, atol=1e-6)
        np.testing.assert_allclose(flat.max(1), 1, rtol=1e-6)
    auroc = planted_window_auroc(sal, truth, absolute=True)
    assert auroc >= min_auroc, auroc


def test_freqrise_published_masks_short_time():
    """The published two-dimensional generator: bilinear upsampling of the
    cells to bins x windows, reflect padding, a crop per axis."""
    from mne_freqmask.methods.freqrise import smooth_masks_2d

    grid = short_time_grid(128.0, 256, "canonical", TW)
    n_c = 5
    gen = torch.Generator().manual_seed(0)
    cells = (torch.rand((3, 2, n_c * n_c), generator=gen) < 0.5).double()
    shift = torch.randint(0, n_c, (3, 2), generator=gen)
    masks = smooth_masks_2d(cells, shift, grid)
    assert masks.shape == (3, 2, 33 * 9)
    for m in range(3):  # the published per-mask crop, written out
        up = torch.nn.functional.interpolate(
            cells[m].reshape(2, 1, n_c, n_c), size=(33, 9), mode="bilinear"
        )
        up = torch.nn.functional.pad(up, (2, 2, 2, 2), mode="reflect")
        y, x = shift[m]
        ref = up[:, 0, y : y + 33, x : x + 9].reshape(2, -1)
        torch.testing.assert_close(masks[m], ref)
    assert 0 <= masks.min() and masks.max() <= 1


def test_dft_lrp_short_time_conserves(burst):
    """Short-time DFT-LRP: the channel x band x window cells hold the
    time-domain relevance (bands covering every bin), as the rfft bins do."""
    from mne_freqmask.methods._dft import dft_relevance

    epochs, _, model, _ = burst
    ep = epochs[:3]
    for method in ("dft_lrp", "lrp"):
        sal = mfm.explain(ep, model, method=method, bands=8, time_windows=TW)
        assert sal.shape == (3, len(CHS), 8, 9)
        total = sal.diagnostics["relevance_total"]
        np.testing.assert_allclose(sal.get_data().sum((1, 2, 3)), total, rtol=1e-4)
        # and collapsed over the windows it is close to the whole-epoch map
        whole = mfm.explain(ep, model, method=method, bands=8)
        r = np.corrcoef(
            sal.average(dim="times").get_data().ravel(), whole.get_data().ravel()
        )[0, 1]
        assert r > 0.9, (method, r)  # measured 0.96 (dft_lrp), 0.998 (lrp)
    # the rule itself, in float64: coefficients sum to the relevance (1e-9)
    grid = short_time_grid(128.0, 256, 8, TW)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn((4, 3, 256), generator=gen, dtype=torch.float64)
    rel = torch.randn((4, 3, 256), generator=gen, dtype=torch.float64)
    rel_f = dft_relevance(x, rel, grid=grid)
    assert rel_f.shape == (4, 3, grid.n_freqs)
    np.testing.assert_allclose(rel_f.sum(-1), rel.sum(-1), rtol=1e-9)


def test_refused_and_checked(burst):
    """Methods that cannot run short-time refuse time_windows, naming those
    that can; bad windows are refused before the model runs (checkpoints:
    tests/test_tfr_runs.py)."""
    epochs, _, model, _ = burst
    with pytest.raises(ValueError, match="amplitude_gradients"):
        mfm.explain(epochs[:4], model, method="flextime", time_windows=TW)
    with pytest.raises(ValueError, match="NOLA"):
        mfm.explain(epochs[:4], model, time_windows=(0.5, 0.4))
    with pytest.raises(ValueError, match="auto"):
        mfm.explain(epochs[:4], model, time_windows="long")


@pytest.fixture(scope="module")
def tfr_sal(burst):
    epochs, _, model, _ = burst
    return mfm.explain(
        epochs[:6],
        model,
        method="amplitude_gradients",
        bands="canonical",
        time_windows="auto",
    )


def test_container_io_and_mne_tfr(tfr_sal, tmp_path):
    """get_data selections, file and EpochsTFRArray round trips, tables."""
    from mne.time_frequency import AverageTFRArray, EpochsTFRArray

    sal = tfr_sal
    assert sal.time_windows == (0.5, 0.25)  # auto: a quarter of 2 s, half step
    grid = short_time_grid(128.0, 256, "canonical", "auto")
    assert repr(sal.grid) == repr(grid)
    np.testing.assert_array_equal(sal.grid.bin_band, grid.bin_band)
    np.testing.assert_allclose(sal.window_edges, grid.window_edges)
    assert "SpectralSaliencyTFR (amplitude_gradients) | 6 epochs" in repr(sal)
    sub, names, times = sal.get_data(
        ["C3", "C4"], fmin=13, fmax=30, tmin=0.5, tmax=1.0,
        return_bands=True, return_times=True,
    )  # fmt: skip
    assert names == ["beta"] and sub.shape == (6, 2, 1, 3)
    np.testing.assert_allclose(times, [0.5, 0.75, 1.0])
    np.testing.assert_array_equal(sub, sal.get_data()[:, [3, 5]][:, :, [3]][..., 2:5])
    # file: equal back, checksum verified; read_saliency reads both kinds
    # (#28), read_saliency_tfr refuses a whole-epoch map
    fname = tmp_path / "s-tfr.h5"
    sal.save(fname)
    assert mfm.read_saliency_tfr(fname) == sal
    assert mfm.read_saliency(fname) == sal
    with pytest.raises(FileExistsError):
        sal.save(fname)
    h5py = pytest.importorskip("h5py")
    with h5py.File(fname, "r+") as f:
        f["mnefreqmask/key_times"][1] = 0.3
    with pytest.raises(ValueError, match="is damaged: its bytes do not match"):
        mfm.read_saliency_tfr(fname)
    spectral = sal.average(dim="times")
    spectral.save(tmp_path / "s.h5")
    with pytest.raises(ValueError, match="read_saliency"):
        mfm.read_saliency_tfr(tmp_path / "s.h5")
    # MNE's TFR containers, and back
    tfr = sal.to_tfr()
    assert isinstance(tfr, EpochsTFRArray)
    np.testing.assert_array_equal(tfr.get_data(), sal.get_data())
    np.testing.assert_allclose(tfr.times, sal.times)
    np.testing.assert_allclose(tfr.freqs, sal.band_edges.mean(1))
    np.testing.assert_array_equal(tfr.events, sal.events)
    back = mfm.SpectralSaliencyTFR(
        tfr.get_data(),
        tfr.info,
        sal.freqs,
        sal.band_names,
        sal.band_edges,
        times=tfr.times,
        method=tfr.method,
        method_params=sal.method_params,
        events=tfr.events,
        event_id=tfr.event_id,
        metadata=tfr.metadata,
        diagnostics=sal.diagnostics,
        win_length=64,
        hop=32,
        n_times=256,
        tmin=0.0,
    )
    assert back == sal
    group = sal.average()
    assert group.nave == 6 and group.shape == sal.shape[1:]
    avg = group.to_tfr()
    assert isinstance(avg, AverageTFRArray) and avg.nave == 6
    np.testing.assert_allclose(avg.get_data(), sal.get_data().mean(0))
    # epoch selection, copies, tables
    assert sal[2:4].shape == (2,) + sal.shape[1:] and sal[[0]] != sal
    assert sal.copy() == sal
    import pickle

    assert pickle.loads(pickle.dumps(sal)) == sal
    assert sal != sal.average(dim="times")  # another container
    assert len(sal["low"]) == 6  # the first 6 epochs are all class "low"
    df = sal.to_data_frame(picks="C3", bands="beta")
    assert len(df) == 6 * 9 and set(df.columns) >= {"epoch", "time", "saliency"}
    assert set(df["subject"]) <= {0, 1}  # metadata columns follow
    np.testing.assert_array_equal(
        df["saliency"].to_numpy(), sal.get_data("C3", bands="beta").ravel()
    )
    assert len(group.to_data_frame()) == np.prod(group.shape)


def test_plots(tfr_sal):
    """Band x time image through MNE's TFR plot; topomaps of a time range."""
    import matplotlib.pyplot as plt

    figs = tfr_sal.plot(picks="C3", show=False)
    assert len(figs) == 1
    ax = figs[0].axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    edges = tfr_sal.band_edges[3]  # the band on the bins of one window
    assert labels[3] == f"beta ({edges[0]:g}-{edges[1]:g} Hz)" and len(labels) == 5
    img = ax.images[0].get_array()  # bands x windows, the epochs' mean at C3
    np.testing.assert_allclose(
        img, tfr_sal.average().get_data(picks="C3")[0], rtol=1e-6
    )
    figs = tfr_sal.plot(picks=["C3", "C4"], combine="mean", tmin=0.5, show=False)
    assert len(figs) == 1 and "mean of C3, C4" in figs[0].axes[0].get_title()
    assert figs[0].axes[0].images[0].get_array().shape[1] == np.sum(
        tfr_sal.times >= 0.5
    )
    assert len(tfr_sal.plot(picks=["C3", "C4"], show=False)) == 2
    with pytest.raises(ValueError, match="one Axes per image"):
        tfr_sal.plot(picks=["C3", "C4"], axes=figs[0].axes[0], show=False)
    plt.close("all")
    fig = tfr_sal.plot_topomap(0.5, 1.0, bands=["alpha", "beta"], show=False)
    assert isinstance(fig, plt.Figure)


def test_times_follow_the_epochs(burst):
    """Window centres are in the epochs' time (tmin kept), edges clipped."""
    import mne

    epochs, _, model, _ = burst
    shifted = mne.EpochsArray(
        epochs.get_data()[:3], epochs.info, tmin=-0.5, verbose=False
    )
    sal = mfm.explain(
        shifted, model, method="amplitude_gradients", bands=4, time_windows=TW
    )
    np.testing.assert_allclose(sal.times, -0.5 + np.arange(9) * 0.25)
    np.testing.assert_allclose(
        sal.window_edges[[0, -1]], [[-0.5, -0.25], [1.25, 1.4921875]]
    )
    assert sal.average(dim="times", tmin=0.0, tmax=0.5).method_params[
        "time_average"
    ] == [0.0, 0.25, 0.5]
