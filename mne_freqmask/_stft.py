"""The transforms of a grid: rfft for a FrequencyGrid, STFT for a ShortTimeGrid.

A method perturbs "the spectrum" of an epoch through :func:`grid_spectrum`
and :func:`grid_inverse`; for a :class:`~mne_freqmask.FrequencyGrid` (and a
whole-epoch :class:`~mne_freqmask.spectral.ShortTimeGrid`) they are exactly
:func:`._torch_utils.spectrum` and :func:`._torch_utils.inverse_spectrum`
(or the unnormalised rfft), so the whole-epoch path gives the same numbers;
for a short-time grid they are ``torch.stft`` / ``torch.istft`` with a
periodic Hann window, flattened to ``(..., n_bins * n_windows)`` (the flat
layout of :class:`~mne_freqmask.spectral.ShortTimeGrid`).
"""

import torch

from mne_freqmask._torch_utils import inverse_spectrum, spectral_dtype, spectrum


def is_short_time(grid):
    """Whether ``grid`` is a short-time grid of more than the whole epoch."""
    return not getattr(grid, "whole", True)


def _window(grid, dtype, device):
    return torch.hann_window(grid.win_length, periodic=True, dtype=dtype, device=device)


def grid_spectrum(grid, x, scale=1.0, norm="ortho"):
    """Spectrum of ``x`` (``(..., n_times)``) on ``grid``: ``(..., n_freqs)``.

    ``norm="ortho"``: of ``x / scale``, orthonormal (the convention of
    :func:`._torch_utils.spectrum`); ``"backward"``: unnormalised, as
    :func:`torch.fft.rfft` (``scale`` must be 1).
    """
    if not is_short_time(grid):
        if norm == "ortho":
            return spectrum(x, scale)
        return torch.fft.rfft(x, dim=-1)
    x = x.to(spectral_dtype(x.dtype))
    if norm == "ortho":
        x = x / scale
    lead = x.shape[:-1]
    xf = torch.stft(
        x.reshape(-1, x.shape[-1]),
        grid.win_length,
        hop_length=grid.hop,
        window=_window(grid, x.dtype, x.device),
        center=True,
        pad_mode="reflect",
        normalized=norm == "ortho",
        onesided=True,
        return_complex=True,
    )
    return xf.reshape(*lead, -1)


def grid_inverse(grid, xf, n_times, scale=1.0, norm="ortho"):
    """Inverse of :func:`grid_spectrum`: ``(..., n_freqs)`` -> ``(..., n_times)``."""
    if not is_short_time(grid):
        if norm == "ortho":
            return inverse_spectrum(xf, n_times, scale)
        return torch.fft.irfft(xf, n=n_times, dim=-1)
    lead = xf.shape[:-1]
    n_bins = grid.frequency_grid.n_freqs
    x = torch.istft(
        xf.reshape(-1, n_bins, grid.n_windows),
        grid.win_length,
        hop_length=grid.hop,
        window=_window(grid, xf.real.dtype, xf.device),
        center=True,
        normalized=norm == "ortho",
        onesided=True,
        length=n_times,
    )
    x = x.reshape(*lead, n_times)
    return x * scale if norm == "ortho" else x
