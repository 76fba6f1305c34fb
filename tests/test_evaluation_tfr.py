"""Deletion curves and the removal game over time-frequency cells.

The burst simulation of tests/test_tfr.py (a 20 Hz burst at 0.5-1.0 s on
C3/C4 carries the class) and a small EEGNet trained on it. FreqMask's
short-time map, which finds the planted channel x band x window cells, must
beat a random short-time map's MoRF curve beyond the bootstrap intervals
under both removal operators; the reference operator must keep removed
cells at a power seen in the data.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mne_freqmask as mfm  # noqa: E402
from mne_freqmask import evaluation as ev  # noqa: E402
from mne_freqmask.datasets.simulated import make_epochs  # noqa: E402
from mne_freqmask.spectral import FrequencyGrid, short_time_grid  # noqa: E402

CHS = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "P4"]  # conftest's burst
#: 0.5 s windows every 0.25 s on 2 s epochs: 9 windows, 5 bands, 360 cells
TW = (0.5, 0.25)
#: the 6 planted cells are 1.7 per cent of the 360: small fractions tell
#: the maps apart, later points only add the noise of cells both remove
FRACTIONS = (0.0, 0.02, 0.05, 0.1)


@pytest.fixture(scope="module")
def burst(burst_simulated):
    """The burst epochs and EEGNet (conftest), 96 evaluated and 64 reference
    epochs, and FreqMask's short-time map of the evaluated epochs (about 25 s on one
    thread). The evaluated epochs are the 32 held-out ones and 64 training
    ones: whether a map explains the model does not depend on the model
    having seen the epoch, and 32 epochs leave the intervals too wide
    (measured: overlapping for the group-level zero operator)."""
    epochs, truth, model, history = burst_simulated
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    train = history["train_idx"]
    held = epochs[np.sort(np.concatenate([history["val_idx"], train[:64]]))]
    ref = epochs[train[64:]]
    sal = mfm.explain(held, model, bands="canonical", reference=ref, time_windows=TW)
    yield held, ref, truth, model, sal
    torch.set_num_threads(n_threads)


def _random_tfr(sal, seed=0):
    """A uniform random map per epoch on ``sal``'s short-time grid."""
    rng = np.random.default_rng(seed)
    fg = sal.grid
    return mfm.SpectralSaliencyTFR(
        rng.random(sal.shape),
        sal.info,
        sal.freqs,
        sal.band_names,
        sal.band_edges,
        times=sal.times,
        method="random",
        win_length=fg.win_length,
        hop=fg.hop,
        n_times=fg.n_times,
        tmin=fg.tmin,
    )


def _cell_power(x, grid, picks):
    """Power of each (epoch, channel, band x window) cell of ``x`` (STFT)."""
    xt = torch.as_tensor(x[:, picks], dtype=torch.float64)
    spec = grid.spectrum(xt, norm="backward").numpy()
    return grid.collapse(np.abs(spec) ** 2)


def test_remove_cells_short_time():
    """remove_cells on a ShortTimeGrid: nothing removed is the identity, a
    (bands, windows) keep is the flat one, a whole-epoch window is the
    FrequencyGrid's removal exactly; the reference operator keeps removed
    cells within the reference range (up to the leakage of overlapping
    windows), zeroing sends them far below the epoch's own power."""
    epochs, _ = make_epochs(
        n_subjects=2,
        n_epochs_per_class=40,
        ch_names=CHS,
        band=(18.0, 22.0),
        burst=dict(),
        random_state=0,
    )
    x = epochs.get_data().astype(np.float32)
    sfreq, n_times = epochs.info["sfreq"], x.shape[-1]
    grid = short_time_grid(sfreq, n_times, "canonical", TW)
    picks = np.arange(len(CHS))
    rng = np.random.default_rng(1)
    keep = rng.random((len(x), len(picks), grid.n_bands)) < 0.5
    donors = (np.arange(len(x)) + 1 + rng.integers(0, len(x) - 1, len(x))) % len(x)
    # nothing removed: the epochs back (inverse STFT, float32)
    same = ev.remove_cells(x, np.ones_like(keep), grid, picks)
    assert np.abs(same - x).max() <= 1e-5 * np.abs(x).max()
    # the (..., bands, windows) layout is the grid's flat layout
    fg = grid.frequency_grid
    keep3 = keep.reshape(keep.shape[:-1] + (fg.n_bands, grid.n_windows))
    np.testing.assert_array_equal(
        ev.remove_cells(x[:4], keep3[:4], grid, picks),
        ev.remove_cells(x[:4], keep[:4], grid, picks),
    )
    with pytest.raises(ValueError, match="one value per cell"):
        ev.remove_cells(x[:4], keep[:4, :, :7], grid, picks)
    # one window as long as the epoch: the whole-epoch removal, exactly
    whole = short_time_grid(sfreq, n_times, 6, (2.0, 2.0))
    k6 = rng.random((len(x), len(picks), 6)) < 0.5
    np.testing.assert_array_equal(
        ev.remove_cells(x, k6, whole, picks, fill=x[donors]),
        ev.remove_cells(x, k6, FrequencyGrid(sfreq, n_times, 6), picks, fill=x[donors]),
    )
    # the reference operator: removed cells at a power seen in the data
    ref_power = _cell_power(x, grid, picks)
    lo, hi = ref_power.min(0), ref_power.max(0)  # reference range per cell
    out = ev.remove_cells(x, keep, grid, picks, fill=x[donors])
    power = _cell_power(out, grid, picks)
    removed = ~keep
    assert removed.sum() > 10000
    low = np.broadcast_to(lo, power.shape)[removed]
    high = np.broadcast_to(hi, power.shape)[removed]
    p = power[removed]
    # the windows overlap, so an edited STFT is not the STFT of a signal:
    # the inverse STFT (least squares) lets kept neighbours leak into a
    # removed cell. Measured: 99.1 per cent in range, 99.8 within a factor 2
    assert ((p >= low) & (p <= high)).mean() >= 0.98
    assert ((p >= low / 2) & (p <= 2 * high)).mean() >= 0.995
    # and on the donor's power, on average (geometric mean 0.89 measured)
    ratio = np.exp(np.mean(np.log(p / ref_power[donors][removed])))
    assert 0.75 <= ratio <= 1.25, ratio
    # zeroing: removed cells far below their own power (median 5.5 per cent
    # measured; exactly 0 for a whole-epoch grid) and mostly below the range
    zeroed = _cell_power(ev.remove_cells(x, keep, grid, picks), grid, picks)
    assert np.median(zeroed[removed] / ref_power[removed]) < 0.15
    assert (zeroed[removed] < low).mean() > 0.5
    assert np.median(p / ref_power[donors][removed]) > 0.7


def test_deletion_curves_tfr_beat_random(burst):
    """FreqMask's short-time map (it finds the planted window) beats a random
    short-time map's MoRF curve beyond the bootstrap intervals, for both
    rankings and both operators, on the probability and the accuracy."""
    held, ref, truth, model, sal = burst
    assert isinstance(sal, mfm.SpectralSaliencyTFR)
    assert ev.planted_window_auroc(sal, truth) >= 0.95
    random = _random_tfr(sal)
    n_cells = len(CHS) * 5 * 9
    for level in ("group", "instance"):
        for operator in ("zero", "reference"):
            kw = dict(
                level=level,
                fractions=FRACTIONS,
                curves=("deletion", "lerf"),
                operator=operator,
                reference=ref,
                n_boot=500,
            )
            good = ev.deletion_curves(held, model, sal, **kw)
            bad = ev.deletion_curves(held, model, random, **kw)
            assert good.attrs["n_cells_total"] == n_cells
            assert list(good["n_cells"]) == [0, 7, 18, 36]
            # nothing removed: the original data, the same for both maps
            assert good["deletion_probability"].iloc[0] == pytest.approx(
                bad["deletion_probability"].iloc[0]
            )
            for score in ("", "_probability"):
                g_lo, g_hi = good.attrs[f"deletion_auc{score}_ci"]
                b_lo, _ = bad.attrs[f"deletion_auc{score}_ci"]
                assert g_lo <= good.attrs[f"deletion_auc{score}"] <= g_hi
                assert g_hi < b_lo, (level, operator, score, g_hi, b_lo)


def test_compare_methods_time_windows(burst):
    """compare_methods(explain_kw=dict(time_windows=...)) explains and scores
    every method over the short-time cells, the random map included; the
    planted-window AUROC is reported; a method beats random beyond the
    paired interval."""
    held, ref, truth, model, sal = burst
    scores = ev.compare_methods(
        held,
        model,
        {"freqmask": sal, "gradients": "amplitude_gradients", "random": "random"},
        rankings=("group",),
        orders=("morf",),
        fractions=FRACTIONS,
        reference=ref,
        truth=truth,
        explain_kw=dict(bands="canonical", time_windows=TW),
        n_boot=300,
    )
    area = scores[(scores["statistic"] == "area") & (scores["metric"] == "probability")]
    assert set(area["method"]) == {"freqmask", "gradients", "random"}
    assert len(area) == 3 * 2  # methods x operators
    auroc = area.groupby("method")["auroc"].first()
    assert auroc["freqmask"] >= 0.95 and auroc["gradients"] >= 0.9
    assert 0.3 < auroc["random"] < 0.7
    assert area["rank_accuracy"].isna().all()  # not defined per window
    for operator in ("zero", "reference"):
        row = area[(area["method"] == "freqmask") & (area["operator"] == operator)]
        assert row["diff_ci_high"].iloc[0] < 0, row  # lower MoRF than random
    # a short-time map beside a whole-epoch random control is refused
    with pytest.raises(ValueError, match="need the same cells"):
        ev.compare_methods(held, model, {"freqmask": sal, "random": "random"})


def test_removal_game_tfr(burst):
    """evaluate_removal runs on a short-time map: removing FreqMask's top 2
    per cent of the cells (the planted window) costs more accuracy than
    removing a random map's."""
    held, _, _, model, sal = burst
    good = ev.evaluate_removal(held, model, sal, fraction=0.02)
    bad = ev.evaluate_removal(held, model, _random_tfr(sal), fraction=0.02)
    n_cells = len(CHS) * 5 * 9
    assert good.loc["RS", "removed_fraction"] == pytest.approx(
        np.ceil(0.02 * n_cells) / n_cells
    )
    assert good.loc["original", "accuracy"] == bad.loc["original", "accuracy"]
    assert good.loc["RS", "accuracy"] < bad.loc["RS", "accuracy"] - 0.1
    assert good.attrs["gap"] > bad.attrs["gap"]


def test_tfr_maps_checked(burst):
    """A map collapsed over its windows, a TFR map without its windows and a
    TFR map on other epochs are refused with what to do."""
    held, _, _, model, sal = burst
    with pytest.raises(ValueError, match="evaluate the SpectralSaliencyTFR"):
        ev.deletion_curves(held, model, sal.average(dim="times"), n_boot=0)
    blind = mfm.SpectralSaliencyTFR(
        sal.get_data(),
        sal.info,
        sal.freqs,
        sal.band_names,
        sal.band_edges,
        times=sal.times,
        method="x",
    )
    with pytest.raises(ValueError, match="does not know its windows"):
        ev.evaluate_removal(held, model, blind)
    with pytest.raises(ValueError, match="one saliency map per epoch"):
        ev.deletion_curves(
            held[:10], model, sal, level="instance", y=np.resize([0, 1], 10), n_boot=0
        )
    with pytest.raises(TypeError, match="SpectralSaliencyTFR"):
        ev.deletion_curves(held, model, sal.get_data(), n_boot=0)
