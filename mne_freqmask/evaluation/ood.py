"""The out-of-distribution score (paper §4.6): a kernel density in band power.

:func:`ood_score` is the kernel-density log-likelihood of perturbed epochs
under the original data, in the space of :func:`band_log_power` features.
Epochs are read chunk by chunk; only their band powers are kept.
"""

import numpy as np
from mne import BaseEpochs
from mne.utils import _check_option, _validate_type, logger, verbose
from scipy.special import logsumexp

from mne_freqmask.evaluation._common import _chunks, _source
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._docs import fill_doc


def _describe(data, name, sfreq):
    """``(sfreq, shape)`` of Epochs or an array, without reading the data."""
    if isinstance(data, BaseEpochs):
        if sfreq is not None and float(sfreq) != data.info["sfreq"]:
            raise ValueError(
                f"sfreq={sfreq} differs from {name}.info['sfreq'] "
                f"({data.info['sfreq']})."
            )
        src = _source(data, name)
        return data.info["sfreq"], src.shape, src
    _validate_type(data, np.ndarray, name, "Epochs or ndarray")
    if data.ndim != 3 or len(data) == 0:
        raise ValueError(
            f"{name} must have shape (n_epochs, n_channels, n_times), got {data.shape}."
        )
    if not np.isfinite(data).all():
        raise ValueError(f"{name} holds NaN or Inf values.")
    return sfreq, data.shape, data


def _band_power(data, grid, name):
    """Mean rfft power per channel and band of every epoch, chunk by chunk."""
    if isinstance(data, np.ndarray):
        return grid.band_power(data.astype(np.float64), norm="backward")
    out = np.empty(data.shape[:2] + (grid.n_bands,))
    for sl, xb in _chunks(data, name):
        out[sl] = grid.band_power(xb.astype(np.float64), norm="backward")
    return out


def band_log_power(x, sfreq, bands=10, floor=None):
    """Log10 power of each channel in each band: the OOD feature space.

    Parameters
    ----------
    x : ndarray, shape (n_epochs, n_channels, n_times)
        The data.
    sfreq : float
        Sampling frequency in Hz.
    bands : int | dict | str
        The band grid (see :func:`mne_freqmask.explain`).
    floor : ndarray, shape (n_channels, n_bands) | float | None
        Added to the power before the log, so that a zeroed band gives a
        finite (very low) value; None adds nothing.

    Returns
    -------
    features : ndarray, shape (n_epochs, n_channels, n_bands)
        ``log10(mean |rfft(x)|^2 over the band's bins + floor)``.
    """
    grid = FrequencyGrid(sfreq, x.shape[-1], bands)
    power = grid.band_power(x, norm="backward")
    if floor is not None:
        power = power + floor
    with np.errstate(divide="ignore"):
        return np.log10(power)


@verbose
@fill_doc
def ood_score(
    reference,
    samples,
    *,
    sfreq=None,
    bands=10,
    n_components=10,
    bandwidth="scott",
    per_sample=False,
    verbose=None,
):
    """Kernel-density log-likelihood of samples under the reference data.

    The out-of-distribution (OOD) score of Wang et al. (§4.6, Table 2): how
    likely perturbed epochs are under the distribution of the original data.
    Higher is more in-distribution.

    Parameters
    ----------
    reference : instance of mne.Epochs | ndarray, shape (n_ref, n_channels, n_times)
        The original data (e.g. the training epochs) the density is fitted on.
    samples : instance of mne.Epochs | ndarray, shape (n, n_channels, n_times)
        The epochs to score, e.g. FreqMask's perturbed epochs
        (``explain(..., return_perturbed=True).diagnostics["perturbed"]``).
    sfreq : float | None
        Sampling frequency in Hz; needed when both inputs are arrays.
    bands : int | dict | str
        Band grid of the features (see :func:`mne_freqmask.explain`).
    n_components : int
        Principal components of the standardised features kept for the
        density (fewer when there are fewer reference epochs or features).
    bandwidth : "scott" | "silverman" | "loo" | float
        Kernel width in the whitened feature space, where every component has
        unit variance in the reference: Scott's rule ``n ** (-1 / (d + 4))``
        (default, as :class:`scipy.stats.gaussian_kde`), Silverman's rule,
        the width maximising the leave-one-out likelihood of the reference
        (``"loo"``, searched on a log grid from 0.05 to 3), or a number.
    per_sample : bool
        Return one log-likelihood per sample instead of their mean.
    %(verbose)s

    Returns
    -------
    score : float | ndarray, shape (n,)
        Mean (or per-sample) log-likelihood, in nats, of ``samples`` under a
        Gaussian kernel density of ``reference``.

    Notes
    -----
    Feature space: the log power of each channel in each band
    (:func:`band_log_power`), standardised with the reference's mean and
    standard deviation, projected on the reference's first ``n_components``
    principal components and whitened. Power per band, not the time series,
    because EEG is not phase-locked: two epochs with the same spectrum and
    different phases are equally likely, and band power is what the
    perturbations and the removal game change. Log power because band power
    is roughly log-normal. A floor of ``1e-6`` times the reference's mean
    power in each cell is added before the log, so that zeroed cells (the
    removal game) are far out but finite.

    The value depends on the reference, the bands and ``n_components``
    (dimension ``d`` of the density): compare scores of sample sets against
    the same reference with the same settings only, never with the paper's
    numbers. Scoring the reference itself is optimistic (each epoch sits on
    its own kernel); use held-out epochs of the same distribution as the
    in-distribution baseline.
    """
    sfreq, shape_r, xr = _describe(reference, "reference", sfreq)
    sfreq2, shape_s, xs = _describe(samples, "samples", sfreq)
    sfreq = sfreq if sfreq is not None else sfreq2
    if sfreq is None:
        raise ValueError("sfreq is needed when reference and samples are arrays.")
    if shape_r[1:] != shape_s[1:]:
        raise ValueError(
            f"reference and samples must have the same (n_channels, n_times), got "
            f"{shape_r[1:]} and {shape_s[1:]}."
        )
    _validate_type(n_components, "int-like", "n_components")
    n_ref = shape_r[0]
    if n_ref < 3:
        raise ValueError(f"reference needs at least 3 epochs, got {n_ref}.")
    grid = FrequencyGrid(sfreq, shape_r[-1], bands)
    ref_power = _band_power(xr, grid, "reference")
    floor = 1e-6 * ref_power.mean(0) + np.finfo(float).tiny
    fr = np.log10(ref_power + floor).reshape(n_ref, -1)
    with np.errstate(divide="ignore"):
        fs = np.log10(_band_power(xs, grid, "samples") + floor)
    fs = fs.reshape(shape_s[0], -1)
    mu, sd = fr.mean(0), fr.std(0)
    sd[sd == 0] = 1.0
    zr, zs = (fr - mu) / sd, (fs - mu) / sd
    _, sv, vt = np.linalg.svd(zr, full_matrices=False)
    d = int(min(n_components, n_ref - 1, zr.shape[1], np.sum(sv > 1e-10 * sv[0])))
    if d < 1:
        raise ValueError("The reference features have no variance.")
    proj = vt[:d].T / (sv[:d] / np.sqrt(n_ref - 1))
    zr, zs = zr @ proj, zs @ proj
    h = _kde_bandwidth(zr, bandwidth)
    ll = _kde_loglik(zr, zs, h)
    logger.info(
        f"OOD score: mean log-likelihood {ll.mean():.2f} of {len(zs)} samples "
        f"under a KDE of {n_ref} reference epochs (d={d}, bandwidth={h:.3g})"
    )
    return ll if per_sample else float(ll.mean())


def _kde_loglik(ref, x, h, exclude_self=False):
    """Log-likelihood of rows of ``x`` under an isotropic Gaussian KDE."""
    n, d = ref.shape
    sq = (x**2).sum(1)[:, None] + (ref**2).sum(1)[None] - 2 * x @ ref.T
    logk = -np.maximum(sq, 0) / (2 * h**2)
    if exclude_self:
        np.fill_diagonal(logk, -np.inf)
        n = n - 1
    return logsumexp(logk, axis=1) - np.log(n) - 0.5 * d * np.log(2 * np.pi * h**2)


def _kde_bandwidth(ref, bandwidth):
    n, d = ref.shape
    if isinstance(bandwidth, str):
        _check_option("bandwidth", bandwidth, ("scott", "silverman", "loo"))
        if bandwidth == "scott":
            return float(n ** (-1.0 / (d + 4)))
        if bandwidth == "silverman":
            return float((n * (d + 2) / 4.0) ** (-1.0 / (d + 4)))
        grid = np.geomspace(0.05, 3.0, 40)
        loo = [_kde_loglik(ref, ref, h, exclude_self=True).mean() for h in grid]
        return float(grid[int(np.argmax(loo))])
    _validate_type(
        bandwidth, "numeric", "bandwidth", '"scott", "silverman", "loo" or float'
    )
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}.")
    return float(bandwidth)
