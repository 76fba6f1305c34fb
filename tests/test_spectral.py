"""FrequencyGrid and the removal helpers."""

import numpy as np
import pytest

from mne_freqmask.evaluation import remove_cells, salient_cells
from mne_freqmask.spectral import FrequencyGrid


def test_int_bands_cover_every_bin():
    grid = FrequencyGrid(200.0, 400, 10)
    np.testing.assert_allclose(grid.freqs, np.fft.rfftfreq(400, 1 / 200.0))
    assert grid.n_freqs == 201 and grid.n_bands == 10
    assert (grid.bin_band >= 0).all()
    assert np.all(np.diff(grid.bin_band) >= 0)  # contiguous segments
    counts = np.bincount(grid.bin_band)
    assert counts.max() - counts.min() <= 1  # equal segments
    assert grid.band_edges[0, 0] == 0 and grid.band_edges[-1, 1] == 100.0


def test_canonical_bands_clipped_at_nyquist():
    grid = FrequencyGrid(64.0, 128, "canonical")
    assert grid.band_names == ["delta", "theta", "alpha", "beta", "gamma"]
    assert grid.bands["gamma"] == (30.0, 32.0)
    # the Nyquist bin (32 Hz) belongs to gamma, which reaches Nyquist
    assert grid.bin_band[-1] == 4
    grid = FrequencyGrid(50.0, 100, "canonical")  # Nyquist 25 Hz: no gamma
    assert grid.band_names == ["delta", "theta", "alpha", "beta"]


def test_dict_bands_and_uncovered_bins():
    grid = FrequencyGrid(100.0, 100, {"mu": (8, 13), "beta": (13, 30)})
    assert grid.band_names == ["mu", "beta"]
    np.testing.assert_array_equal(grid.freqs[grid.bin_band == 0], np.arange(8, 13))
    assert (grid.bin_band[grid.freqs < 8] == -1).all()
    vals = grid.expand(np.array([0.2, 0.7]), fill=1.0)
    assert vals[10] == 0.2 and vals[20] == 0.7 and vals[0] == 1.0
    np.testing.assert_allclose(grid.collapse(np.ones(51)), [5, 17])


def test_salient_cells_median_split_without_ties():
    rng = np.random.default_rng(0)
    vals = rng.random((3, 4, 5))
    sal = salient_cells(vals)
    for v, s in zip(vals, sal, strict=True):
        assert s.sum() == 10
        assert v[s].min() > v[~s].max()
        np.testing.assert_array_equal(s, v > np.median(v))
    # ties (a saturated mask) still give an exact half
    assert salient_cells(np.zeros((4, 5))).sum() == 10


def test_remove_cells_zeroes_exactly_the_cells():
    sfreq, n_times = 100.0, 200
    t = np.arange(n_times) / sfreq
    x = np.zeros((1, 2, n_times), np.float32)
    x[0, 0] = np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 30 * t)
    x[0, 1] = np.sin(2 * np.pi * 10 * t)
    grid = FrequencyGrid(sfreq, n_times, {"alpha": (8, 13), "beta": (13, 35)})
    keep = np.array([[True, False]])  # channel 0: keep alpha, drop beta
    out = remove_cells(x, keep, grid, picks=np.array([0]))
    np.testing.assert_allclose(out[0, 0], np.sin(2 * np.pi * 10 * t), atol=1e-5)
    np.testing.assert_array_equal(out[0, 1], x[0, 1])  # not picked: untouched


@pytest.mark.parametrize("bands", [3, "canonical", {"a": (1, 2)}])
def test_grid_repr(bands):
    assert "FrequencyGrid" in repr(FrequencyGrid(128.0, 256, bands))


@pytest.mark.parametrize("short", [False, True])
def test_grid_blend_zero_donor_and_band_power(short):
    """The grid's one perturbation: keep 1 is the identity, keep 0 with a
    donor's spectrum gives the donor's channel, zero fill leaves no power in
    a removed cell; torch and numpy agree (expand, band power), and the
    band power of the rfft is Parseval's energy (sum over the bins)."""
    torch = pytest.importorskip("torch")
    from mne_freqmask._cells import channel_index, put_back
    from mne_freqmask.spectral import short_time_grid

    sfreq, n_times = 100.0, 200
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, n_times))
    grid = (
        short_time_grid(sfreq, n_times, 4, (0.4, 0.2))
        if short
        else FrequencyGrid(sfreq, n_times, {"alpha": (8, 13), "beta": (13, 30)})
    )
    assert grid.short_time is short
    xt = torch.as_tensor(x)
    xf = grid.spectrum(xt, 2.0)
    assert xf.shape == (3, 4, grid.n_freqs)
    np.testing.assert_allclose(grid.inverse(xf, scale=2.0).numpy(), x, atol=1e-10)
    keep = rng.random((3, 4, grid.n_bands))
    np.testing.assert_array_equal(
        grid.expand(torch.as_tensor(keep)).numpy(), grid.expand(keep)
    )
    ones = np.ones_like(keep)
    picks = channel_index(np.arange(4), 4, "cpu")
    assert picks is None and channel_index([0, 2], 4, "cpu").tolist() == [0, 2]
    same = grid.perturb(xt, torch.as_tensor(ones), picks=picks)
    np.testing.assert_allclose(same.numpy(), x, atol=1e-10)
    donor = torch.as_tensor(x[::-1].copy())
    swapped = grid.perturb(xt, torch.zeros(3, 4, grid.n_bands), grid.spectrum(donor))
    if short:  # every bin is in a cell: the donor comes back whole
        np.testing.assert_allclose(swapped.numpy(), x[::-1], atol=1e-10)
    # zero fill on channel 1 only: its removed cells hold no power
    removed = np.zeros((3, 1, grid.n_bands))
    out = grid.perturb(xt, torch.as_tensor(removed), picks=torch.tensor([1]))
    np.testing.assert_array_equal(out.numpy()[:, [0, 2, 3]], x[:, [0, 2, 3]])
    assert grid.band_power(out[:, 1:2], norm="backward").max() < 1e-20
    assert put_back(xt, None, out).dtype == xt.dtype
    # band power: torch and numpy, Parseval
    power = grid.band_power(xt, norm="backward", func=np.sum)
    if not short:
        np.testing.assert_allclose(
            power, grid.band_power(x, norm="backward", func=np.sum)
        )
        full = FrequencyGrid(sfreq, n_times, 1)  # one band: every bin
        total = full.band_power(x, func=np.sum)[..., 0]  # orthonormal
        edge = (np.abs(full.spectrum(x)[..., [0, -1]]) ** 2).sum(-1)  # DC, Nyquist
        np.testing.assert_allclose(2 * total - edge, (x**2).sum(-1), rtol=1e-10)
    # the donor pool: reproducible, sorted, the epochs' own spectra
    pool, idx = grid.donor_pool(
        x, 2, np.random.default_rng(1), [0, 3], scale=1.0, device="cpu",
        dtype=torch.float64,
    )  # fmt: skip
    assert list(idx) == sorted(idx) and len(idx) == 2
    np.testing.assert_allclose(pool.numpy(), grid.spectrum(xt[idx][:, [0, 3]]).numpy())
