"""The maps in MNE's own tools: Spectrum, masked topomaps, mne.Report, notebooks."""

import matplotlib

matplotlib.use("Agg")

import mne  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402

from mne_freqmask import SpectralSaliency, SpectralSaliencyTFR  # noqa: E402
from mne_freqmask.spectral import FrequencyGrid, short_time_grid  # noqa: E402
from mne_freqmask.utils._checks import _standard_montage  # noqa: E402
from mne_freqmask.viz import add_saliency_to_report  # noqa: E402

CH_NAMES = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "O1", "O2"]
SFREQ, N_TIMES = 128.0, 256
PLANTED = [CH_NAMES.index("C3"), CH_NAMES.index("C4")]


def _info():
    info = mne.create_info(CH_NAMES, SFREQ, "eeg")
    info.set_montage(_standard_montage())
    return info


def _events(n):
    return np.column_stack(
        [np.arange(n) * N_TIMES, np.zeros(n, int), 1 + np.arange(n) % 2]
    )


def _map(n_epochs=12, bands="canonical", seed=0):
    """Per-epoch maps whose C3 / C4 alpha cells are high in every epoch."""
    grid = FrequencyGrid(SFREQ, N_TIMES, bands)
    rng = np.random.default_rng(seed)
    data = rng.random((n_epochs, len(CH_NAMES), grid.n_bands))
    if "alpha" in grid.band_names:
        data[:, PLANTED, grid.band_names.index("alpha")] += 2.0
    meta = pd.DataFrame(dict(subject=np.arange(n_epochs) // 4 + 1))
    return SpectralSaliency(
        data,
        _info(),
        grid,
        method="freqmask",
        events=_events(n_epochs),
        event_id=dict(left=1, right=2),
        metadata=meta,
    )


def _tfr_map(n_epochs=12, seed=0):
    """Per-epoch TFR maps whose C3 / C4 beta cells are high in window 4 only."""
    grid = short_time_grid(SFREQ, N_TIMES, "canonical", (0.5, 0.25))
    rng = np.random.default_rng(seed)
    n_bands = grid.frequency_grid.n_bands
    shape = (n_epochs, len(CH_NAMES), n_bands, grid.n_windows)
    data = rng.random(shape)
    beta = grid.frequency_grid.band_names.index("beta")
    for ch in PLANTED:
        data[:, ch, beta, 4] += 2.0
    return SpectralSaliencyTFR._from_grid(
        data, _info(), grid, method="freqmask", events=_events(n_epochs)
    )


# --------------------------------------------------------------- to_spectrum


def test_to_spectrum_round_trip():
    from mne.time_frequency import EpochsSpectrumArray, SpectrumArray

    sal = _map()
    spec = sal.to_spectrum()
    assert isinstance(spec, EpochsSpectrumArray)
    assert_array_equal(spec.get_data(), sal.get_data())
    assert spec.ch_names == sal.ch_names
    for ch_spec, ch_sal in zip(spec.info["chs"], sal.info["chs"], strict=True):
        assert_array_equal(ch_spec["loc"], ch_sal["loc"])
    # one frequency per band, at its centre, in the order of band_names
    assert_allclose(spec.freqs, sal.band_edges.mean(axis=1))
    assert_array_equal(spec.events, sal.events)
    assert spec.event_id == sal.event_id
    pd.testing.assert_frame_equal(
        spec.metadata.reset_index(drop=True), sal.metadata.reset_index(drop=True)
    )
    # epochs selected by event name, as on the map
    assert_array_equal(spec["left"].get_data(), sal["left"].get_data())
    spec._data[:] = 0  # a copy: the map is untouched
    assert sal.get_data().max() > 0
    group = sal.average()
    avg = group.to_spectrum()
    assert isinstance(avg, SpectrumArray)
    assert_array_equal(avg.get_data(), group.get_data())
    # MNE's own average of the per-epoch spectrum is the group map
    assert_allclose(sal.to_spectrum().average().get_data(), group.get_data())


def test_to_spectrum_bins():
    # bands with a gap (12-20 Hz in no band): bins outside every band left out
    sal = _map(bands=dict(theta=(4.0, 8.0), alpha=(8.0, 12.0), beta=(20.0, 30.0)))
    spec = sal.to_spectrum(freqs="bins")
    grid = sal.grid
    inside = grid.bin_band >= 0
    assert_allclose(spec.freqs, grid.freqs[inside])
    assert spec.freqs.min() >= 4.0 and spec.freqs.max() < 30.0
    assert not ((spec.freqs >= 12) & (spec.freqs < 20)).any()
    # every bin holds its band's value: collapsing the bins gives the map back
    full = np.zeros(sal.shape[:-1] + (grid.n_freqs,))
    full[..., inside] = spec.get_data()
    assert_array_equal(grid.collapse(full, np.max), sal.get_data())
    assert_array_equal(grid.collapse(full, np.min), sal.get_data())
    with pytest.raises(ValueError, match="freqs"):
        sal.to_spectrum(freqs="centres")


# ---------------------------------------------------------------- topomap mask


def _sensor_xy(ax):
    (sensors,) = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    return np.asarray(sensors.get_offsets(), float)


def _marked_xy(ax, marker):
    lines = [line for line in ax.lines if line.get_marker() == marker]
    if not lines:
        return np.zeros((0, 2))
    (line,) = lines
    return np.column_stack([line.get_xdata(), line.get_ydata()])


def test_masked_topomap():
    sal = _map()
    bands = sal.band_names
    alpha = bands.index("alpha")
    positions = _sensor_xy(sal.plot_topomap("alpha", show=False).axes[0])
    assert len(positions) == len(CH_NAMES)
    mask = np.zeros((len(CH_NAMES), len(bands)), bool)
    mask[PLANTED, alpha] = True
    fig = sal.plot_topomap(
        mask=mask, mask_params=dict(marker="s", markersize=7), show=False
    )
    for k, ax in enumerate(fig.axes[: len(bands)]):
        marked = _marked_xy(ax, "s")
        if k == alpha:  # C3 and C4 marked, the other sensors drawn as usual
            assert_allclose(marked, positions[PLANTED])
            assert len(_sensor_xy(ax)) == len(CH_NAMES) - 2
        else:
            assert len(marked) == 0
    # a subset of bands takes its columns of the full mask
    fig = sal.plot_topomap(bands=["alpha"], mask=mask, show=False)
    assert_allclose(_marked_xy(fig.axes[0], "o"), positions[PLANTED])
    # (n_channels,): the same channels in every band
    fig = sal.plot_topomap(mask=np.isin(np.arange(8), PLANTED), show=False)
    assert all(len(_marked_xy(ax, "o")) == 2 for ax in fig.axes[: len(bands)])
    for bad in (mask[:, :3], mask[:5], mask.astype(float) * 2):
        with pytest.raises(ValueError, match="mask must"):
            sal.plot_topomap(mask=bad, show=False)
    with pytest.raises(TypeError, match="mask_params"):
        sal.plot_topomap(mask=mask, mask_params="s", show=False)


def test_topomap_mask_from_cell_test():
    from mne_freqmask.evaluation import cell_permutation_test

    sal = _map()
    result = cell_permutation_test(sal, adjacency=None, n_permutations=1000)
    alpha = sal.band_names.index("alpha")
    expected = np.zeros(result.significant.shape, bool)
    expected[PLANTED, alpha] = True
    assert_array_equal(result.significant, expected)  # the planted cells
    positions = _sensor_xy(sal.plot_topomap("alpha", show=False).axes[0])
    fig = sal.average().plot_topomap(mask=result, show=False)
    for k, ax in enumerate(fig.axes[: len(sal.band_names)]):
        assert_allclose(
            _marked_xy(ax, "o"), positions[PLANTED] if k == alpha else np.zeros((0, 2))
        )
    # matched by channel name: a picked map takes its channels' cells
    picked = sal.copy().pick(["C4", "O1", "O2"])
    fig = picked.plot_topomap(bands="alpha", mask=result, show=False)
    assert len(_marked_xy(fig.axes[0], "o")) == 1
    # a test of other channels than the map's is refused with the fix
    small = cell_permutation_test(picked, adjacency=None, n_permutations=100)
    with pytest.raises(ValueError, match="Run cell_permutation_test on this map"):
        sal.plot_topomap(mask=small, show=False)


def test_tfr_masked_topomap():
    from mne_freqmask.evaluation import cell_permutation_test

    sal = _tfr_map()
    t4, t0 = sal.times[4], sal.times[0]
    result = cell_permutation_test(sal, adjacency=None, n_permutations=1000)
    beta = sal.band_names.index("beta")
    assert set(zip(*np.nonzero(result.significant), strict=True)) == {
        (ch, beta, 4) for ch in PLANTED
    }
    positions = _sensor_xy(sal.plot_topomap(t4, t4, "beta", show=False).axes[0])
    fig = sal.plot_topomap(t4, t4, mask=result, show=False)
    for k, ax in enumerate(fig.axes[: len(sal.band_names)]):
        assert len(_marked_xy(ax, "o")) == (2 if k == beta else 0)
    assert_allclose(_marked_xy(fig.axes[beta], "o"), positions[PLANTED])
    # not in a window without significant cells; any window of a range counts
    fig = sal.plot_topomap(t0, t0, "beta", mask=result, show=False)
    assert len(_marked_xy(fig.axes[0], "o")) == 0
    fig = sal.plot_topomap(bands="beta", mask=result, show=False)
    assert len(_marked_xy(fig.axes[0], "o")) == 2
    # an array of the map's cells works the same; a wrong shape is refused
    fig = sal.plot_topomap(t4, t4, bands="beta", mask=result.significant, show=False)
    assert len(_marked_xy(fig.axes[0], "o")) == 2
    with pytest.raises(ValueError, match=r"mask must have shape .*\(8, 5, 9\)"):
        sal.plot_topomap(mask=result.significant[..., :3], show=False)
    # a time-resolved test on the whole-epoch map: pointed to the TFR map
    with pytest.raises(ValueError, match="time-resolved map"):
        sal.average(dim="times").plot_topomap(mask=result, show=False)


# ------------------------------------------------------------- notebooks


def test_repr_html():
    sal = _map()
    html = sal._repr_html_()
    assert "<table" in html and "SpectralSaliency" in html
    assert "epoch × channel × band: 12 × 8 × 5" in html
    assert "alpha 8-12 Hz" in html and "per epoch (12 epochs)" in html
    html = sal.average()._repr_html_()
    assert "group of 12 epochs" in html and "channel × band: 8 × 5" in html
    html = _tfr_map()._repr_html_()
    assert "SpectralSaliencyTFR" in html
    assert "9 windows" in html and "(0.5 s every 0.25 s)" in html


# ------------------------------------------------------------------ report


def _titles(report, section):
    return [c.name for c in report._content if c.section == section]


def test_report_whole_epoch(simulated, tmp_path):
    """A real map with its checks and removal game in a user's report."""
    import mne_freqmask as mfm
    from mne_freqmask.evaluation import check_explanation

    epochs, _, model, history = simulated
    held = epochs[history["val_idx"]]
    sal = mfm.explain(
        held, model, method="amplitude_gradients", bands="canonical", verbose=False
    )
    removal = {
        level: mfm.evaluate_removal(held, model, sal, level=level, verbose=False)
        for level in ("group", "instance")
    }
    checks = check_explanation(
        held, model, sal, checks=("accuracy", "cells"), n_boot=200, verbose=False
    )
    report = mne.Report(title="my study", verbose=False)
    report.add_html("<p>mine</p>", "My own item")
    out = add_saliency_to_report(report, sal, checks=checks, removal=removal)
    assert out is report
    section = "amplitude_gradients saliency"
    assert _titles(report, section) == [
        "The map",
        "Is the map true? (check_explanation)",
        "Group saliency per band (topomaps)",
        "Channel x band saliency",
        "Saliency over frequency",
        "Removal game",
        "Parameters",
    ]
    assert _titles(report, None) == ["My own item"]  # the user's item kept
    assert {"saliency", "amplitude_gradients"} <= set(report.tags)
    # a second map in its own section; one removal table (a DataFrame)
    add_saliency_to_report(
        report, sal.average(), removal=removal["group"], title="group map"
    )
    assert _titles(report, "group map")[-2:] == ["Removal game", "Parameters"]
    fname = tmp_path / "report.html"
    report.save(fname, open_browser=False, verbose=False)
    html = fname.read_text()
    for text in (
        "Group saliency per band",
        "Removal game",
        "Checks run: accuracy, cells",
    ):
        assert text.lower() in html.lower(), text
    # the checks' cell test marks its significant cells on the topomaps
    n_sig = int(checks.details["cells"].significant.sum())
    n_cells = sal.shape[1] * sal.shape[2]
    assert f"cell_permutation_test ({n_sig} of {n_cells} cells;" in html
    with pytest.raises(TypeError, match="checks must be"):
        add_saliency_to_report(report, sal, checks=removal)
    with pytest.raises(TypeError, match="report must be"):
        add_saliency_to_report(fname, sal)
    with pytest.raises(TypeError, match="saliency must be"):
        add_saliency_to_report(report, sal.get_data())


def test_report_time_resolved(tmp_path):
    sal = _tfr_map()
    report = add_saliency_to_report(mne.Report(verbose=False), sal, title="tfr")
    t = sal.times[4]  # the window with the planted cells has the top mean
    assert _titles(report, "tfr") == [
        "The map",
        "Saliency over time and band",
        "Saliency over time and band: channels of the top cells",
        f"Topomaps at the best window ({t:.2f} s)",
        f"Channel x band saliency at the best window ({t:.2f} s)",
        "Parameters",
    ]
