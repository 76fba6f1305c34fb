"""DFT-LRP: map time-domain relevance onto rfft bins.

The inverse rfft is a linear layer from the (real, imaginary) spectrum to the
time samples, ``x_t = sum_k a_tk Re X_k + b_tk Im X_k``. Propagating the
time-domain relevance ``R_t`` through it with the z-rule (LRP-0/epsilon) gives
``R_k = Re X_k * sum_t a_tk R_t / x_t + Im X_k * sum_t b_tk R_t / x_t``: a
vector-Jacobian product of irfft at ``R_t / x_t``, times the input. The sum over
bins equals the sum over time of ``R_t`` (up to the stabiliser ``eps``).
Reference: Vielhaben et al. (2024), "Explainable AI for time series via virtual
inspection layers", Pattern Recognition 150.
"""

import torch


def dft_relevance(x, relevance, eps=1e-12):
    """Relevance of each rfft bin from time-domain relevance.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n_times)
        The real signal that was explained.
    relevance : torch.Tensor, shape (..., n_times)
        Time-domain relevance of ``x`` (e.g. from LRP).
    eps : float
        Stabiliser of ``R_t / x_t`` (sign-preserving).

    Returns
    -------
    rel_freq : torch.Tensor, shape (..., n_times // 2 + 1)
        Relevance per rfft bin, real and imaginary parts summed.
    """
    x = x.detach().to(torch.float64)
    n_times = x.shape[-1]
    spec = torch.view_as_real(torch.fft.rfft(x, dim=-1)).requires_grad_(True)
    recon = torch.fft.irfft(torch.view_as_complex(spec), n=n_times, dim=-1)
    denom = x + eps * torch.where(x >= 0, 1.0, -1.0)
    ratio = relevance.detach().to(torch.float64) / denom
    (grad,) = torch.autograd.grad(recon, spec, grad_outputs=ratio)
    return (spec.detach() * grad).sum(-1)
