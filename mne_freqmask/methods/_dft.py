"""DFT-LRP: map time-domain relevance onto rfft bins.

The inverse rfft is a linear layer from the (real, imaginary) spectrum to the
time samples, ``x_t = sum_k a_tk Re X_k + b_tk Im X_k``. Propagating the
time-domain relevance ``R_t`` through it with the z-rule (LRP-0/epsilon) gives
``R_k = Re X_k * sum_t a_tk R_t / x_t + Im X_k * sum_t b_tk R_t / x_t``: a
vector-Jacobian product of irfft at ``R_t / x_t``, times the input. The sum over
bins equals the sum over time of ``R_t`` (up to the stabiliser ``eps``).
Reference: Vielhaben et al. (2024), "Explainable AI for time series via virtual
inspection layers", Pattern Recognition 150.

Short-time (a :class:`~mne_freqmask.spectral.ShortTimeGrid`): the same rule
through the grid's inverse STFT (``torch.istft``), the virtual inspection
layer of the short-time DFT. The published STDFT layer (jvielhaben/DFT-LRP,
as copied in theabrusch/FreqRISE ``src/lrp/dft_utils.py``,
``create_short_time_fourier_weights``, and ``src/lrp/dft_lrp.py``,
``DFTLRP.dft_lrp(short_time=True)``) is a dense matrix with rectangular or
half-sine windows whose inverse divides the summed inverse DFTs by the
summed windows; FreqRISE's own ``lrp_stft`` (``src/explainability/
evaluation.py``) runs the whole-signal rule on non-overlapping rectangular
windows. Here the layer is ``istft`` of the grid's periodic Hann windows
(overlap-add divided by the summed squared windows), so that the cells are
those of the other short-time methods and of the removal game. Every one of
these is an exact inverse, so relevance is conserved in each: per channel,
the cells sum to the sum over time of ``R_t``. ``istft`` is differentiated
by autograd instead of building the ``(2 n_bins n_windows) x n_times``
matrix.
"""

import torch

from mne_freqmask.spectral import as_grid


def dft_relevance(x, relevance, eps=1e-12, grid=None):
    """Relevance of each rfft bin from time-domain relevance.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n_times)
        The real signal that was explained.
    relevance : torch.Tensor, shape (..., n_times)
        Time-domain relevance of ``x`` (e.g. from LRP).
    eps : float
        Stabiliser of ``R_t / x_t`` (sign-preserving).
    grid : None | FrequencyGrid | ShortTimeGrid
        None or a whole-epoch grid: the rfft bins; a short-time grid: its
        STFT coefficients, flattened as the grid's bins.

    Returns
    -------
    rel_freq : torch.Tensor, shape (..., n_freqs)
        Relevance per rfft bin (``n_times // 2 + 1``) or per STFT
        coefficient (``grid.n_freqs``), real and imaginary parts summed.
    """
    x = x.detach().to(torch.float64)
    n_times = x.shape[-1]
    grid = as_grid(grid, n_times)
    spec = torch.view_as_real(grid.spectrum(x, norm="backward")).requires_grad_(True)
    recon = grid.inverse(torch.view_as_complex(spec), n_times, norm="backward")
    denom = x + eps * torch.where(x >= 0, 1.0, -1.0)
    ratio = relevance.detach().to(torch.float64) / denom
    (grad,) = torch.autograd.grad(recon, spec, grad_outputs=ratio)
    return (spec.detach() * grad).sum(-1)
