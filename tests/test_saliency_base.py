"""One saliency base (#28): what SpectralSaliency and SpectralSaliencyTFR share.

Both containers derive from ``_saliency_base.BaseSaliency``: ``pick`` (with
``exclude`` and the empty-selection check), ``normalize``, ``to_data_frame``
(long and wide), ``concatenate_saliencies``, ``combine_saliency`` and
``read_saliency`` take both. The maps are real: a small EEGNet trained on
the planted-burst epochs (conftest), explained per window and whole-epoch.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

torch = pytest.importorskip("torch")

import mne_freqmask as mfm  # noqa: E402

#: 0.5 s windows every 0.25 s on the 2 s burst epochs: 9 windows
TW = (0.5, 0.25)


@pytest.fixture(scope="module")
def maps(burst_simulated):
    """A time-resolved and a whole-epoch map of 8 epochs (4 per class)."""
    epochs, _, model, _ = burst_simulated
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        low = np.flatnonzero(epochs.events[:, 2] == 1)[:4]
        high = np.flatnonzero(epochs.events[:, 2] == 2)[:4]
        sub = epochs[np.sort(np.concatenate([low, high]))]
        kw = dict(method="amplitude_gradients", bands="canonical")
        tfr = mfm.explain(sub, model, time_windows=TW, **kw)
        spec = mfm.explain(sub, model, **kw)
    finally:
        torch.set_num_threads(n_threads)
    assert isinstance(tfr, mfm.SpectralSaliencyTFR) and tfr.shape[-1] == 9
    assert isinstance(spec, mfm.SpectralSaliency)
    return tfr, spec


def test_pick_exclude_and_empty(maps):
    """pick drops excluded channels (also 'bads') and refuses an empty set."""
    for sal in maps:
        full = sal.get_data()
        # as in MNE, exclude applies to picks by type (names are taken as given)
        picked = sal.copy().pick("eeg", exclude=["Cz"])
        assert picked.ch_names == [c for c in sal.ch_names if c != "Cz"]
        idx = [sal.ch_names.index(c) for c in picked.ch_names]
        assert_array_equal(picked.get_data(), np.take(full, idx, axis=1))
        two = sal.copy().pick(["C4", "C3"])
        assert_array_equal(two.get_data(), np.take(full, [5, 3], axis=1))
        bads = sal.copy()
        bads.info["bads"] = ["Fz", "P4"]
        bads.pick("eeg", exclude="bads")
        assert bads.ch_names == [c for c in sal.ch_names if c not in ("Fz", "P4")]
        assert bads.shape[1] == len(sal.ch_names) - 2
        # an empty selection is refused (by MNE's picking), the map unchanged
        for picks, exclude in (([], ()), ("eeg", sal.ch_names)):
            empty = sal.copy()
            with pytest.raises(ValueError):
                empty.pick(picks, exclude=exclude)
            assert empty == sal
        assert sal.get_data().shape == full.shape  # the original is untouched


def test_normalize_both(maps):
    """Each epoch's map (all its cells, windows included) on one scale."""
    tfr, spec = maps
    for sal in (tfr, spec):
        raw = sal.get_data().astype(np.float64)
        flat = raw.reshape(len(raw), -1)
        peak = sal.copy().normalize("max").get_data().reshape(len(raw), -1)
        assert_allclose(np.abs(peak).max(1), 1.0, rtol=1e-6)
        assert_allclose(peak, flat / np.abs(flat).max(1, keepdims=True), rtol=1e-5)
        z = sal.copy().normalize("zscore").get_data().reshape(len(raw), -1)
        want = (flat - flat.mean(1, keepdims=True)) / flat.std(1, keepdims=True)
        assert_allclose(z, want, rtol=1e-4, atol=1e-5)
        rank = sal.copy().normalize("rank")
        # only the order is kept: each epoch's cells sort the same way
        order = np.argsort(flat, axis=1, kind="stable")
        got = rank.get_data().reshape(len(raw), -1)
        assert (np.diff(np.take_along_axis(got, order, 1), axis=1) >= 0).all()
        assert rank.normalization == "rank"
        with pytest.raises(ValueError, match="already normalised with 'rank'"):
            rank.normalize("max")
    # the group map of a TFR is one map: its cells sum to 1 in absolute value
    share = tfr.average().normalize("sum").get_data()
    assert_allclose(np.abs(share).sum(), 1.0, rtol=1e-6)


def test_to_data_frame_wide_and_long(maps):
    """The wide table has one column per cell (with the window for a TFR)."""
    tfr, spec = maps
    t = float(tfr.times[4])
    wide = tfr.to_data_frame(long_format=False, index="epoch")
    n_cells = int(np.prod(tfr.shape[1:]))
    meta = [] if tfr.metadata is None else list(tfr.metadata.columns)
    assert wide.shape == (len(tfr), n_cells + len(meta))
    assert_array_equal(
        wide[f"C3_beta_{t:g}"].to_numpy(),
        tfr.get_data("C3", bands="beta", tmin=t, tmax=t).ravel(),
    )
    gwide = tfr.average().to_data_frame(long_format=False)
    assert gwide.shape == (1, n_cells)
    assert_allclose(
        gwide[f"C4_alpha_{t:g}"], tfr.get_data("C4", "alpha")[..., 4].mean()
    )
    long = tfr.to_data_frame(bands="beta", index=["channel", "time"], tmin=0.5)
    kept = tfr.times[tfr.times >= 0.5]
    assert len(long) == len(tfr) * len(tfr.ch_names) * len(kept)
    assert sorted(set(long.index.get_level_values("time"))) == list(kept)
    # the whole-epoch map: the same table without windows; no time selection
    swide = spec.to_data_frame(long_format=False)
    assert_array_equal(swide["Cz_theta"], spec.get_data("Cz", "theta").ravel())
    with pytest.raises(ValueError, match="no time axis"):
        spec.to_data_frame(tmin=0.5)
    with pytest.raises(ValueError, match="Invalid value for the 'index'"):
        spec.to_data_frame(index="time")


def test_concatenate_and_combine_tfr(maps):
    """Both functions take time-resolved maps, and refuse mixed kinds."""
    tfr, spec = maps
    both = mfm.concatenate_saliencies([tfr[:3], tfr[3:]])
    assert isinstance(both, mfm.SpectralSaliencyTFR) and both == tfr
    with pytest.raises(ValueError, match="differs from"):
        mfm.concatenate_saliencies([tfr, spec])
    other = mfm.SpectralSaliencyTFR(  # the same cells at other windows
        tfr.get_data(),
        tfr.info,
        tfr.freqs,
        tfr.band_names,
        tfr.band_edges,
        times=tfr.times + 0.1,
        method=tfr.method,
    )
    with pytest.raises(ValueError, match="differs from"):
        mfm.concatenate_saliencies([tfr, other])
    contrast = mfm.combine_saliency([tfr["high"], tfr["low"]], [1, -1])
    assert isinstance(contrast, mfm.SpectralSaliencyTFR)
    assert contrast.level == "group" and contrast.nave == len(tfr)
    assert contrast.method_params["combine_weights"] == [1.0, -1.0]
    want = tfr["high"].get_data().mean(0) - tfr["low"].get_data().mean(0)
    assert_allclose(contrast.get_data(), want, rtol=1e-5, atol=1e-7)
    assert_allclose(contrast.times, tfr.times)
    with pytest.raises(ValueError, match="other channels or bands"):
        mfm.combine_saliency([tfr, spec], [1, -1])


def test_read_saliency_both_kinds(maps, tmp_path):
    """One reader picks the class from the stored dims; the alias checks."""
    tfr, spec = maps
    for k, sal in enumerate((tfr, spec, tfr.average(), spec.average())):
        fname = tmp_path / f"m{k}-sal.h5"
        sal.save(fname)
        back = mfm.read_saliency(fname)
        assert type(back) is type(sal) and back == sal
        assert back.provenance == sal.provenance
    assert mfm.read_saliency_tfr(tmp_path / "m0-sal.h5") == tfr
    with pytest.raises(ValueError, match="holds a SpectralSaliency, not a Spec"):
        mfm.read_saliency_tfr(tmp_path / "m1-sal.h5")
