"""Is the explanation true? Scores for a :class:`~mne_freqmask.SpectralSaliency`.

- The removal / feed-in game (paper §4.3-4.4, :func:`evaluate_removal`): the
  channel x band cells of a map are split at the median into salient and
  non-salient halves; zeroing the non-salient cells in the spectrum (RN)
  should leave the model's accuracy close to the original, zeroing the salient
  cells (RS) should destroy it.
- Deletion and insertion curves (:func:`deletion_curves`), the threshold-free
  version: remove (deletion) or keep only (insertion) the ``k`` top-ranked
  cells for every ``k``, and take the area under the accuracy curve.
- The out-of-distribution score (paper §4.6, :func:`ood_score`): the kernel
  density log-likelihood of perturbed epochs under the original data.
- Sanity checks (Adebayo et al., 2018): the map must change when the model's
  weights are re-initialised layer by layer from the output
  (:func:`cascading_randomization`) or when the model is retrained on shuffled
  labels (:func:`label_randomization`).
- Ground truth for simulated data (:func:`ground_truth_scores`) and a
  permutation / cluster test of which cells are reliably salient across epochs
  or subjects (:func:`cell_permutation_test`).
"""

import copy
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import torch
from mne.utils import (
    _check_option,
    _validate_type,
    check_random_state,
    logger,
    verbose,
)
from scipy.integrate import trapezoid
from scipy.special import logsumexp
from scipy.stats import rankdata

from mne_freqmask._inputs import epochs_data, epochs_labels
from mne_freqmask._torch_utils import model_context, predict, resolve_device
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._docs import docdict, fill_doc

docdict.update(
    explain_kw="""
explain_kw : dict | None
    Keyword arguments of :func:`mne_freqmask.explain` (``bands``,
    ``reference``, ``target``, method parameters such as ``n_steps`` ...) used
    for every map this function computes; give the ones used for
    ``saliency``.""",
    eval_method="""
method : str
    The explanation method (see :func:`mne_freqmask.explain`), used for every
    map this function computes.""",
)


def salient_cells(values, fraction=0.5, random_state=None):
    """Boolean mask of the top ``fraction`` of cells along the last two axes.

    The paper thresholds at the median of the map; ranking instead of comparing
    with the median gives the same split without ties (and an exact half when
    many cells share a value, e.g. a mask saturated at 0 or 1). Ties are broken
    by position (stable sort).

    Parameters
    ----------
    values : ndarray, shape (..., n_channels, n_bands)
        Saliency values.
    fraction : float
        Fraction of cells called salient (0.5: the median split).
    random_state : None | int | instance of ~numpy.random.RandomState
        How ties are broken: by position (None) or at random (seeded).

    Returns
    -------
    salient : ndarray of bool, same shape as ``values``
        True on the ``ceil(fraction * n_cells)`` largest cells of each map.
    """
    values = np.asarray(values)
    n_cells = values.shape[-2] * values.shape[-1]
    n_top = int(np.ceil(fraction * n_cells))
    return _cell_ranks(values, random_state) < n_top


def _cell_ranks(values, random_state=None):
    """Rank of each cell of each map (0 = most salient), last two axes.

    Ties are broken by position (stable sort) when ``random_state`` is None,
    else at random (seeded), so that a map with many equal cells (a saturated
    mask, a flat map) does not favour the first channels.
    """
    values = np.asarray(values)
    flat = values.reshape(values.shape[:-2] + (-1,))
    n_cells = flat.shape[-1]
    if random_state is None:
        order = np.argsort(-flat, axis=-1, kind="stable")
    else:
        rng = check_random_state(random_state)
        tie = rng.random_sample(flat.shape)
        order = np.lexsort((tie, -flat), axis=-1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n_cells), axis=-1)
    return ranks.reshape(values.shape)


def remove_cells(x, keep, grid, picks, device=None):
    """Zero the channel x band cells where ``keep`` is False, back in time.

    Parameters
    ----------
    x : ndarray, shape (n_epochs, n_channels, n_times)
        Epoch data.
    keep : ndarray of bool, shape (n_picks, n_bands) or (n_epochs, n_picks, n_bands)
        Cells to keep; bins in no band and channels not in ``picks`` are kept.
        Float weights in [0, 1] (e.g. a FreqMask mask) scale the cells
        instead.
    grid : FrequencyGrid
        The band grid.
    picks : array of int
        Channel index (in ``x``) of each row of ``keep``.
    device : torch.device | None
        Where to compute.

    Returns
    -------
    x_removed : ndarray, shape (n_epochs, n_channels, n_times)
        The data with the removed cells zeroed in the rfft spectrum.
    """
    device = torch.device("cpu") if device is None else device
    keep_bins = torch.as_tensor(grid.expand(keep.astype(np.float32), fill=1.0))
    xt = torch.as_tensor(x, device=device)
    picks_t = torch.as_tensor(picks, device=device)
    spec = torch.fft.rfft(xt.index_select(1, picks_t).double(), dim=-1)
    spec = spec * keep_bins.to(device)
    sub = torch.fft.irfft(spec, n=x.shape[-1], dim=-1).to(xt.dtype)
    return xt.index_copy(1, picks_t, sub).cpu().numpy()


def _scores(logits, y):
    pred = logits.argmax(1)
    acc = float((pred == y).mean())
    recalls = [float((pred[y == c] == c).mean()) for c in np.unique(y)]
    return acc, float(np.mean(recalls))


@verbose
@fill_doc
def evaluate_removal(
    epochs,
    model,
    saliency,
    *,
    level="group",
    y=None,
    fraction=0.5,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Score an explanation with the removal / feed-in game.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    %(saliency)s
    %(level)s
    %(y)s
    fraction : float
        Fraction of cells called salient; 0.5 (default) is the paper's median
        threshold (see :func:`~mne_freqmask.evaluation.salient_cells`).
    random_state : None | int | instance of ~numpy.random.RandomState
        How ties between equal cells are broken at the threshold: at random
        with this seed (default 0), or by position (None). A mask saturated at
        0 (common for FreqMask's sparse masks) has far more tied cells than
        the half that must be called salient; breaking the ties by position
        would always call the first channels salient.
    %(device)s
    %(verbose)s

    Returns
    -------
    scores : pandas.DataFrame
        Rows ``original``, ``RN`` (non-salient cells removed) and ``RS``
        (salient cells removed); columns ``accuracy``, ``balanced_accuracy``
        and ``removed_fraction`` (fraction of channel x band cells zeroed).
        ``scores.attrs`` holds ``level``, ``fraction`` and ``gap`` (RN minus
        RS accuracy; large is good).
    """
    _check_option("level", level, ("group", "instance"))
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    _validate_type(model, torch.nn.Module, "model", "torch.nn.Module")
    x, labels, grid, picks = _prepare(epochs, saliency, y)
    values = _map_values(saliency, level, len(epochs))
    salient = salient_cells(values, fraction, random_state)
    dev = resolve_device(device, model)
    rows = {}
    with model_context(model, dev):
        rows["original"] = _scores(predict(model, x, dev), labels) + (0.0,)
        for name, keep in (("RN", salient), ("RS", ~salient)):
            xr = remove_cells(x, keep, grid, picks, dev)
            removed = 1.0 - float(keep.mean())
            rows[name] = _scores(predict(model, xr, dev), labels) + (removed,)
    scores = pd.DataFrame.from_dict(
        rows,
        orient="index",
        columns=["accuracy", "balanced_accuracy", "removed_fraction"],
    )
    scores.index.name = "condition"
    scores.attrs.update(
        level=level,
        fraction=fraction,
        gap=float(scores.loc["RN", "accuracy"] - scores.loc["RS", "accuracy"]),
    )
    logger.info(
        f"Removal game ({level}): original {scores.loc['original', 'accuracy']:.3f}, "
        f"RN {scores.loc['RN', 'accuracy']:.3f}, RS {scores.loc['RS', 'accuracy']:.3f}"
    )
    return scores


def _prepare(epochs, saliency, y):
    """Data, labels, band grid and explained-channel indices, all checked."""
    _validate_type(saliency, SpectralSaliency, "saliency")
    x = epochs_data(epochs)
    labels = epochs_labels(epochs, y)
    grid = _grid_for(epochs, saliency, x.shape[-1])
    missing = sorted(set(saliency.ch_names) - set(epochs.ch_names))
    if missing:
        raise ValueError(
            f"The saliency has channels {missing} that the epochs lack; use "
            "epochs with the explained channels."
        )
    picks = np.array([epochs.ch_names.index(ch) for ch in saliency.ch_names])
    return x, labels, grid, picks


def _map_values(saliency, level, n_epochs):
    """The map(s) the cells are ranked by: one group map or one per epoch."""
    values = saliency.get_data()
    if level == "group":
        return values.mean(0) if saliency.level == "instance" else values
    if saliency.level != "instance" or len(saliency) != n_epochs:
        raise ValueError(
            f'level="instance" needs one saliency map per epoch ({n_epochs}); '
            f'got {saliency!r}. Use level="group" for an averaged map.'
        )
    return values


def _grid_for(epochs, saliency, n_times):
    """The saliency's band grid on the epochs' rfft bins (checked to match)."""
    grid = FrequencyGrid(epochs.info["sfreq"], n_times, saliency.bands)
    if len(grid.freqs) != len(saliency.freqs) or not np.allclose(
        grid.freqs, saliency.freqs
    ):
        raise ValueError(
            "The saliency was computed on another frequency resolution "
            f"({len(saliency.freqs)} bins up to {saliency.freqs[-1]:.1f} Hz) than "
            f"the epochs ({len(grid.freqs)} bins up to {grid.freqs[-1]:.1f} Hz); "
            "use epochs with the same duration and sampling rate."
        )
    return grid


# ----------------------------------------------------------------------------
# deletion / insertion curves


@verbose
@fill_doc
def deletion_curves(
    epochs,
    model,
    saliency,
    *,
    level="group",
    y=None,
    n_points=21,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Deletion and insertion curves over the ranked channel x band cells.

    The cells are ranked by the map (most salient first). For each ``k``, the
    deletion curve zeroes the ``k`` top cells in the spectrum (as
    :func:`~mne_freqmask.evaluate_removal` does) and the insertion curve zeroes
    all the *other* cells (keeps only the top ``k``); the model is scored on the
    result. A faithful map gives a deletion curve that falls fast (small area)
    and an insertion curve that rises fast (large area). The areas need no
    threshold, unlike the removal game's median split.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    %(saliency)s
    level : "group" | "instance"
        ``"group"`` ranks the cells of the epoch-averaged map (one order for
        all epochs); ``"instance"`` ranks each epoch's own map.
    %(y)s
    n_points : int
        Number of values of ``k``, evenly spaced from 0 to all cells (at least
        2; duplicates are dropped when there are fewer cells).
    random_state : None | int | instance of ~numpy.random.RandomState
        Breaks ties between equal cells at random (``None``: by position). A
        mask saturated at 0 or 1 has many ties; random order is fair to it.
    %(device)s
    %(verbose)s

    Returns
    -------
    curves : pandas.DataFrame
        Indexed by ``fraction`` (``k`` over the number of cells), with
        columns ``n_cells`` (``k``), ``deletion_accuracy``,
        ``insertion_accuracy``, ``deletion_probability`` and
        ``insertion_probability`` (mean softmax probability of the true
        class). ``curves.attrs`` holds ``level``, ``n_cells_total`` and the
        areas under the curves over ``fraction`` in [0, 1] (trapezoid rule):
        ``deletion_auc`` and ``insertion_auc`` (accuracy),
        ``deletion_auc_probability`` and ``insertion_auc_probability``. The
        first row of the deletion curve and the last of the insertion curve
        are the original data.

    See Also
    --------
    mne_freqmask.evaluate_removal

    Notes
    -----
    A random ranking gives, on average, the same area for both curves; so a
    useful one-number summary is ``insertion_auc - deletion_auc`` (positive
    is good), and both areas are best read next to those of a random map
    computed the same way.
    """
    _check_option("level", level, ("group", "instance"))
    _validate_type(n_points, "int-like", "n_points")
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}.")
    _validate_type(model, torch.nn.Module, "model", "torch.nn.Module")
    x, labels, grid, picks = _prepare(epochs, saliency, y)
    values = _map_values(saliency, level, len(epochs))
    ranks = _cell_ranks(values, random_state)
    n_cells = values.shape[-2] * values.shape[-1]
    ks = np.unique(np.round(np.linspace(0, n_cells, int(n_points))).astype(int))
    dev = resolve_device(device, model)
    rows = []
    with model_context(model, dev):
        for k in ks:
            row = dict(n_cells=int(k))
            for name, keep in (("deletion", ranks >= k), ("insertion", ranks < k)):
                logits = predict(model, remove_cells(x, keep, grid, picks, dev), dev)
                acc, prob = _acc_prob(logits, labels)
                row[f"{name}_accuracy"], row[f"{name}_probability"] = acc, prob
            rows.append(row)
    curves = pd.DataFrame(rows, index=pd.Index(ks / n_cells, name="fraction"))
    frac = curves.index.to_numpy()
    attrs = dict(level=level, n_cells_total=int(n_cells))
    for name in ("deletion", "insertion"):
        attrs[f"{name}_auc"] = float(trapezoid(curves[f"{name}_accuracy"], frac))
        attrs[f"{name}_auc_probability"] = float(
            trapezoid(curves[f"{name}_probability"], frac)
        )
    curves.attrs.update(attrs)
    logger.info(
        f"Deletion AUC {attrs['deletion_auc']:.3f}, insertion AUC "
        f"{attrs['insertion_auc']:.3f} ({level}, {len(ks)} points)"
    )
    return curves


def _acc_prob(logits, y):
    """Accuracy and mean softmax probability of the true class."""
    logits = logits - logits.max(1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(1, keepdims=True)
    acc = float((logits.argmax(1) == y).mean())
    return acc, float(prob[np.arange(len(y)), y].mean())


# ----------------------------------------------------------------------------
# out-of-distribution score (kernel density)


def _as_array(data, name, sfreq):
    """(n, n_channels, n_times) float64 array and sfreq from Epochs or array."""
    from mne import BaseEpochs

    if isinstance(data, BaseEpochs):
        if sfreq is not None and float(sfreq) != data.info["sfreq"]:
            raise ValueError(
                f"sfreq={sfreq} differs from {name}.info['sfreq'] "
                f"({data.info['sfreq']})."
            )
        return epochs_data(data, name).astype(np.float64), data.info["sfreq"]
    _validate_type(data, np.ndarray, name, "Epochs or ndarray")
    if data.ndim != 3 or len(data) == 0:
        raise ValueError(
            f"{name} must have shape (n_epochs, n_channels, n_times), got {data.shape}."
        )
    if not np.isfinite(data).all():
        raise ValueError(f"{name} holds NaN or Inf values.")
    return data.astype(np.float64), sfreq


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
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    power = grid.collapse(power, np.mean)
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
    xr, sfreq = _as_array(reference, "reference", sfreq)
    xs, sfreq2 = _as_array(samples, "samples", sfreq)
    sfreq = sfreq if sfreq is not None else sfreq2
    if sfreq is None:
        raise ValueError("sfreq is needed when reference and samples are arrays.")
    if xr.shape[1:] != xs.shape[1:]:
        raise ValueError(
            f"reference and samples must have the same (n_channels, n_times), got "
            f"{xr.shape[1:]} and {xs.shape[1:]}."
        )
    _validate_type(n_components, "int-like", "n_components")
    if len(xr) < 3:
        raise ValueError(f"reference needs at least 3 epochs, got {len(xr)}.")
    grid = FrequencyGrid(sfreq, xr.shape[-1], bands)
    ref_power = grid.collapse(np.abs(np.fft.rfft(xr, axis=-1)) ** 2, np.mean)
    floor = 1e-6 * ref_power.mean(0) + np.finfo(float).tiny
    fr = np.log10(ref_power + floor).reshape(len(xr), -1)
    fs = band_log_power(xs, sfreq, bands, floor).reshape(len(xs), -1)
    mu, sd = fr.mean(0), fr.std(0)
    sd[sd == 0] = 1.0
    zr, zs = (fr - mu) / sd, (fs - mu) / sd
    _, sv, vt = np.linalg.svd(zr, full_matrices=False)
    d = int(min(n_components, len(xr) - 1, zr.shape[1], np.sum(sv > 1e-10 * sv[0])))
    if d < 1:
        raise ValueError("The reference features have no variance.")
    proj = vt[:d].T / (sv[:d] / np.sqrt(len(xr) - 1))
    zr, zs = zr @ proj, zs @ proj
    h = _kde_bandwidth(zr, bandwidth)
    ll = _kde_loglik(zr, zs, h)
    logger.info(
        f"OOD score: mean log-likelihood {ll.mean():.2f} of {len(xs)} samples "
        f"under a KDE of {len(xr)} reference epochs (d={d}, bandwidth={h:.3g})"
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


# ----------------------------------------------------------------------------
# sanity checks (Adebayo et al., 2018)


def spearman(a, b):
    """Spearman rank correlation of two maps (flattened); 0 if one is flat.

    Parameters
    ----------
    a, b : array-like
        Two maps of the same shape.

    Returns
    -------
    rho : float
        The rank correlation. A constant map carries no ranking, so its
        correlation with anything is defined as 0 (where
        :func:`scipy.stats.spearmanr` returns NaN with a warning).
    """
    a, b = np.ravel(a), np.ravel(b)
    if a.shape != b.shape:
        raise ValueError(f"The maps differ in size: {a.size} and {b.size}.")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def _map_correlations(orig, other):
    """Spearman correlation of the group maps and mean over epochs."""
    a, b = orig.get_data(), other.get_data()
    group = spearman(a.mean(0), b.mean(0))
    inst = float(np.mean([spearman(ai, bi) for ai, bi in zip(a, b, strict=True)]))
    return group, inst


def _param_layers(model):
    """Modules holding parameters of their own, in registration order."""
    return [
        (name, mod)
        for name, mod in model.named_modules()
        if any(True for _ in mod.parameters(recurse=False))
    ]


def _reinit(module):
    """Re-initialise a module: its own ``reset_parameters`` or a normal draw."""
    if callable(getattr(module, "reset_parameters", None)):
        module.reset_parameters()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            std = float(p.std()) if p.numel() > 1 else 0.0
            p.normal_(0.0, std if std > 0 else 0.02)


def _explain(epochs, model, method, explain_kw, random_state, device):
    from mne_freqmask._explain import explain

    kw = dict(explain_kw or {})
    kw.setdefault("random_state", random_state)
    return explain(epochs, model, method=method, device=device, verbose=False, **kw)


def _accuracy(epochs, model, labels, device):
    dev = resolve_device(device, model)
    with model_context(model, dev):
        logits = predict(model, epochs_data(epochs), dev)
    return float((logits.argmax(1) == labels).mean())


@verbose
@fill_doc
def cascading_randomization(
    epochs,
    model,
    *,
    method="freqmask",
    saliency=None,
    layers=None,
    y=None,
    explain_kw=None,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Sanity check: re-initialise the model from the output backwards.

    Adebayo et al. (2018): a map that explains the *model* must change when
    the model's learnt weights are destroyed. The layers holding parameters
    are re-initialised cumulatively, starting at the output, on a deep copy
    (the user's model is never touched), and the epochs are explained again
    after each step. The Spearman rank correlation with the original map
    should drop towards 0.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    %(eval_method)s
    saliency : SpectralSaliency | None
        The map of the trained model (per epoch) on ``epochs``; None computes
        it with ``method`` and ``explain_kw``.
    layers : None | int
        None (default): one step per layer with parameters (modules in
        registration order, which is the forward order of braindecode
        models). An int groups the layers into that many cumulative steps of
        about equal size (``1``: all layers at once, the fully random model).
    %(y)s
    %(explain_kw)s
    random_state : None | int
        Seed of the re-initialisation (and of the explanations).
    %(device)s
    %(verbose)s

    Returns
    -------
    result : pandas.DataFrame
        One row per step (step 0: the trained model), with columns
        ``layers`` (the modules re-initialised at this step),
        ``n_layers`` (re-initialised so far), ``accuracy`` (of the model on
        ``epochs``), ``spearman`` (rank correlation of the epoch-averaged map
        with the original one) and ``spearman_instance`` (mean over epochs of
        the per-epoch rank correlations). A constant map counts as
        correlation 0 (see :func:`spearman`).

    References
    ----------
    Adebayo, J. et al. (2018). Sanity checks for saliency maps. NeurIPS.
    """
    _validate_type(model, torch.nn.Module, "model", "torch.nn.Module")
    labels = epochs_labels(epochs, y)
    if saliency is None:
        saliency = _explain(epochs, model, method, explain_kw, random_state, device)
    _validate_type(saliency, SpectralSaliency, "saliency")
    if saliency.level != "instance" or len(saliency) != len(epochs):
        raise ValueError("saliency must hold one map per epoch of epochs.")
    rand_model = copy.deepcopy(model)
    named = _param_layers(rand_model)[::-1]
    if not named:
        raise ValueError("The model has no parameters to randomise.")
    _validate_type(layers, ("int-like", None), "layers", "int or None")
    n_steps = len(named) if layers is None else int(layers)
    if not 1 <= n_steps <= len(named):
        raise ValueError(
            f"layers must be between 1 and the number of layers ({len(named)}), "
            f"got {layers}."
        )
    seed = check_random_state(random_state).randint(0, 2**31 - 1)
    rows = [
        dict(
            layers="",
            n_layers=0,
            accuracy=_accuracy(epochs, model, labels, device),
            spearman=1.0,
            spearman_instance=1.0,
        )
    ]
    done = 0
    for step, idx in enumerate(np.array_split(np.arange(len(named)), n_steps)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + step)
            for i in idx:
                _reinit(named[i][1])
        done += len(idx)
        sal = _explain(epochs, rand_model, method, explain_kw, random_state, device)
        group, inst = _map_correlations(saliency, sal)
        rows.append(
            dict(
                layers=",".join(named[i][0] for i in idx),
                n_layers=done,
                accuracy=_accuracy(epochs, rand_model, labels, device),
                spearman=group,
                spearman_instance=inst,
            )
        )
        logger.info(
            f"Randomised {done}/{len(named)} layers: Spearman {group:.3f} (group), "
            f"{inst:.3f} (instance)"
        )
    out = pd.DataFrame(rows)
    out.index.name = "step"
    out.attrs.update(method=method)
    return out


def _fresh_copy(model):
    """An untrained model of the same architecture."""
    init_args = getattr(model, "init_args_", None)
    if init_args is not None:
        from mne_freqmask.models import make_model

        args = dict(init_args["kwargs"])
        return make_model(
            init_args["name"],
            args.pop("n_chans"),
            args.pop("n_outputs"),
            args.pop("n_times"),
            args.pop("sfreq", 1.0),
            input_scale=init_args.get("input_scale"),
            **args,
        )
    fresh = copy.deepcopy(model)
    for _, mod in _param_layers(fresh):
        _reinit(mod)
    return fresh


@verbose
@fill_doc
def label_randomization(
    epochs,
    model,
    *,
    train_epochs=None,
    method="freqmask",
    saliency=None,
    y=None,
    fit_kw=None,
    explain_kw=None,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Sanity check: retrain on shuffled labels; the map must change.

    Adebayo et al. (2018): a model trained on randomly permuted labels can
    only have learnt noise, so a map that explains the model (and not just
    the input) must differ from the map of the model trained on true labels.

    Parameters
    ----------
    %(epochs_explain)s
    model : str | torch.nn.Module
        The model trained on the true labels, or a name for
        :func:`mne_freqmask.models.fit` (then it is trained here on
        ``train_epochs`` with ``fit_kw``, like the shuffled one). A model built
        by :func:`~mne_freqmask.models.make_model` is rebuilt untrained from
        its ``init_args_``; any other module is deep-copied and
        re-initialised. Never modified.
    train_epochs : instance of mne.Epochs | None
        What the model was (and the shuffled one is) trained on; None means
        ``epochs``.
    %(eval_method)s
    saliency : SpectralSaliency | None
        The trained model's map on ``epochs`` (computed when None).
    %(y)s
    fit_kw : dict | None
        Keyword arguments of :func:`mne_freqmask.models.fit` for training on
        shuffled labels (``max_epochs``, ``lr``, ...); use those of the
        original model.
    %(explain_kw)s
    random_state : None | int
        Seed of the label permutation, the training and the explanations.
    %(device)s
    %(verbose)s

    Returns
    -------
    result : pandas.DataFrame
        Rows ``original`` and ``shuffled_labels``, columns ``accuracy`` (on
        ``epochs``), ``spearman`` (group-level rank correlation with the
        original map) and ``spearman_instance`` (mean per-epoch). The
        shuffled model is in ``result.attrs["model"]``.

    References
    ----------
    Adebayo, J. et al. (2018). Sanity checks for saliency maps. NeurIPS.
    """
    from mne_freqmask.models import fit

    train_epochs = epochs if train_epochs is None else train_epochs
    labels = epochs_labels(epochs, y)
    train_labels = epochs_labels(train_epochs, y if train_epochs is epochs else None)
    fit_kw = dict(fit_kw or {})
    fit_kw.setdefault("random_state", random_state)
    fit_kw.setdefault("device", device)
    fit_kw.setdefault("verbose", False)
    if isinstance(model, str):
        name = model
        model, _ = fit(train_epochs, name, y=train_labels, **fit_kw)
        fresh = name
    else:
        _validate_type(model, torch.nn.Module, "model", "str or torch.nn.Module")
        fresh = _fresh_copy(model)
    if saliency is None:
        saliency = _explain(epochs, model, method, explain_kw, random_state, device)
    _validate_type(saliency, SpectralSaliency, "saliency")
    if saliency.level != "instance" or len(saliency) != len(epochs):
        raise ValueError("saliency must hold one map per epoch of epochs.")
    rng = check_random_state(random_state)
    shuffled = rng.permutation(train_labels)
    shuffled_model, _ = fit(train_epochs, fresh, y=shuffled, **fit_kw)
    sal = _explain(epochs, shuffled_model, method, explain_kw, random_state, device)
    group, inst = _map_correlations(saliency, sal)
    out = pd.DataFrame(
        dict(
            accuracy=[
                _accuracy(epochs, model, labels, device),
                _accuracy(epochs, shuffled_model, labels, device),
            ],
            spearman=[1.0, group],
            spearman_instance=[1.0, inst],
        ),
        index=pd.Index(["original", "shuffled_labels"], name="model"),
    )
    out.attrs.update(method=method, model=shuffled_model)
    logger.info(f"Shuffled labels: Spearman {group:.3f} (group), {inst:.3f} (instance)")
    return out


# ----------------------------------------------------------------------------
# ground truth (simulated data)


def _truth_cells(saliency, truth):
    if hasattr(truth, "cells"):
        return truth.cells(saliency.ch_names, saliency.band_edges)
    cells = np.asarray(truth, bool)
    if cells.shape != saliency.shape[-2:]:
        raise ValueError(
            f"truth must be a PlantedTruth or a boolean (n_channels, n_bands) = "
            f"{saliency.shape[-2:]} array, got shape {cells.shape}."
        )
    return cells


def _auroc(scores, positive):
    """Area under the ROC curve (Mann-Whitney U, ties count one half)."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ground_truth_scores(saliency, truth, *, level="group", k=None):
    """How well a map finds the planted cells of simulated data.

    Parameters
    ----------
    saliency : SpectralSaliency
        The explanation (per epoch or group level).
    truth : PlantedTruth | ndarray of bool, shape (n_channels, n_bands)
        The planted cells, e.g. from
        :func:`mne_freqmask.datasets.simulated.make_epochs`.
    level : "group" | "instance"
        Score the epoch-averaged map, or each epoch's map and average the
        scores.
    k : int | None
        Cells counted by the precision at ``k``; None: the number of planted
        cells (then precision at ``k`` equals recall at ``k``).

    Returns
    -------
    scores : pandas.Series
        ``auroc`` (probability that a planted cell outranks a non-planted one;
        0.5 is chance, 1 perfect), ``precision_at_k`` (fraction of planted
        cells among the ``k`` top-ranked; ties broken by position),
        ``chance_precision`` (planted fraction of all cells), ``k`` and
        ``n_planted``.
    """
    _validate_type(saliency, SpectralSaliency, "saliency")
    _check_option("level", level, ("group", "instance"))
    cells = _truth_cells(saliency, truth)
    n_planted = int(cells.sum())
    if n_planted in (0, cells.size):
        raise ValueError(
            f"The truth marks {n_planted} of {cells.size} cells; scores need both "
            "planted and non-planted cells (check the bands against the planted "
            "band)."
        )
    k = n_planted if k is None else int(k)
    if not 1 <= k <= cells.size:
        raise ValueError(f"k must be between 1 and {cells.size}, got {k}.")
    values = saliency.get_data()
    if values.ndim == 2:
        values = values[None]
    elif level == "group":
        values = values.mean(0, keepdims=True)
    aurocs, precs = [], []
    for v in values:
        aurocs.append(_auroc(v.ravel(), cells.ravel()))
        top = _cell_ranks(v) < k
        precs.append(float(cells[top].mean()))
    return pd.Series(
        dict(
            auroc=float(np.mean(aurocs)),
            precision_at_k=float(np.mean(precs)),
            chance_precision=n_planted / cells.size,
            k=k,
            n_planted=n_planted,
        )
    )


# ----------------------------------------------------------------------------
# statistics: which cells are reliably salient


@dataclass
class CellTestResult:
    """Result of :func:`cell_permutation_test`.

    Attributes
    ----------
    t : ndarray, shape (n_channels, n_bands)
        One-sample t-values of (map - baseline) across observations.
    p_values : ndarray, shape (n_channels, n_bands)
        Corrected p-values: the p-value of the cluster holding the cell (1 for
        cells in no cluster) for ``"cluster"``, the max-t corrected p-value of
        the cell for ``"tmax"``.
    significant : ndarray of bool, shape (n_channels, n_bands)
        ``p_values < alpha``.
    clusters : list of ndarray of bool, shape (n_channels, n_bands)
        The clusters (``"cluster"`` only).
    cluster_p_values : ndarray
        One p-value per cluster (``"cluster"`` only).
    correction : str
        ``"cluster"`` or ``"tmax"``.
    n_observations : int
        Number of maps tested (epochs or groups).
    ch_names, band_names : list of str
        Rows and columns.
    alpha : float
        The significance level.
    """

    t: np.ndarray
    p_values: np.ndarray
    significant: np.ndarray
    correction: str
    n_observations: int
    ch_names: list
    band_names: list
    alpha: float
    clusters: list = field(default_factory=list)
    cluster_p_values: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def to_data_frame(self):
        """One row per cell.

        Returns
        -------
        df : pandas.DataFrame
            Columns ``channel``, ``band``, ``t``, ``p_value`` and
            ``significant``.
        """
        ch, band = np.meshgrid(
            np.arange(len(self.ch_names)),
            np.arange(len(self.band_names)),
            indexing="ij",
        )
        return pd.DataFrame(
            dict(
                channel=np.asarray(self.ch_names)[ch.ravel()],
                band=np.asarray(self.band_names)[band.ravel()],
                t=self.t.ravel(),
                p_value=self.p_values.ravel(),
                significant=self.significant.ravel(),
            )
        )

    def __repr__(self):
        return (
            f"<CellTestResult | {self.correction}, {self.n_observations} "
            f"observations, {int(self.significant.sum())}/{self.significant.size} "
            f"cells significant at {self.alpha}>"
        )


@verbose
@fill_doc
def cell_permutation_test(
    saliency,
    *,
    baseline="median",
    groups=None,
    adjacency="auto",
    threshold=None,
    n_permutations=1024,
    tail=1,
    sigma=1e-3,
    alpha=0.05,
    random_state=0,
    verbose=None,
):
    """Which channel x band cells are reliably salient across epochs or subjects.

    Each observation (an epoch's map, or a subject's average map) minus its
    baseline is tested against 0 with a sign-flip permutation test, corrected
    for the many cells either by spatio-spectral clusters
    (:func:`mne.stats.permutation_cluster_1samp_test`) or by the maximum
    statistic (:func:`mne.stats.permutation_t_test`).

    Parameters
    ----------
    saliency : SpectralSaliency
        Per-epoch maps.
    baseline : "median" | float | SpectralSaliency
        What "salient" is compared with. ``"median"`` (default) subtracts
        each map's own median over cells (the removal game's threshold): a
        cell is reliably salient when it beats the typical cell of its map.
        A number is subtracted from every cell. A
        :class:`~mne_freqmask.SpectralSaliency` is a null map (e.g. of a
        randomised model, see
        :func:`cascading_randomization`): a group-level one is subtracted
        from every observation, a per-epoch one with the same epochs epoch by
        epoch (a paired test).
    groups : None | str | array-like
        None: each epoch is one observation. A metadata column name (e.g.
        ``"subject"``) or one label per epoch: the maps are averaged within
        each group first and each group is one observation (subjects as the
        random effect).
    adjacency : "auto" | None | scipy.sparse matrix
        ``"auto"`` (default): clusters over neighbouring channels
        (:func:`mne.channels.find_ch_adjacency` on the saliency's ``info``,
        which needs channel positions) combined with neighbouring bands
        (:func:`mne.stats.combine_adjacency`). A sparse matrix over the
        ``n_bands * n_channels`` cells (band-major, as in
        :func:`~mne.stats.combine_adjacency` ``(n_bands, ch_adjacency)``).
        None: no clusters; every cell is tested on its own with the max-t
        correction over cells (the permutation distribution of the largest
        t-value, as :func:`mne.stats.permutation_t_test`).
    threshold : float | None
        Cluster-forming t threshold (None: MNE's default, the t quantile for
        p = 0.05 of the chosen tail).
    n_permutations : int
        Number of sign-flip permutations (all of them when there are fewer).
    tail : -1 | 0 | 1
        1 (default): salient means larger than the baseline.
    sigma : float
        "hat" regularisation of the t statistic (Ridgway et al., 2012):
        ``sigma * max(variance)`` is added to every cell's variance, so that
        cells with (nearly) no variance, common in masks saturated at 0 or 1,
        do not get huge t-values (see :func:`mne.stats.ttest_1samp_no_p`).
    alpha : float
        Significance level of ``result.significant`` (see
        :class:`~mne_freqmask.evaluation.CellTestResult`).
    random_state : None | int
        Seed of the permutations.
    %(verbose)s

    Returns
    -------
    result : CellTestResult
        The t-values, corrected p-values and clusters per cell.
    """
    import mne

    _validate_type(saliency, SpectralSaliency, "saliency")
    saliency._check_instance("cell_permutation_test")
    data = saliency.get_data().astype(np.float64)
    if isinstance(baseline, str):
        _check_option("baseline", baseline, ("median",))
        data = data - np.median(data, axis=(1, 2), keepdims=True)
    elif isinstance(baseline, SpectralSaliency):
        null = baseline.get_data().astype(np.float64)
        if null.shape[-2:] != data.shape[-2:]:
            raise ValueError(
                f"The null map has shape {null.shape[-2:]}, the saliency "
                f"{data.shape[-2:]} (channels x bands)."
            )
        if baseline.level == "instance" and len(null) != len(data):
            raise ValueError(
                "A per-epoch null map needs as many epochs as the saliency; "
                "average it first (baseline.average())."
            )
        data = data - null
    else:
        _validate_type(
            baseline, "numeric", "baseline", '"median", float or SpectralSaliency'
        )
        data = data - float(baseline)
    if groups is not None:
        if isinstance(groups, str):
            if saliency.metadata is None or groups not in saliency.metadata:
                raise ValueError(
                    f"groups={groups!r} is not a metadata column of the saliency."
                )
            groups = saliency.metadata[groups].to_numpy()
        groups = np.asarray(groups)
        if groups.shape != (len(data),):
            raise ValueError(
                f"groups must have one entry per epoch ({len(data)}), got shape "
                f"{groups.shape}."
            )
        data = np.stack([data[groups == g].mean(0) for g in np.unique(groups)])
    n_obs = len(data)
    if n_obs < 2:
        raise ValueError(f"The test needs at least 2 observations, got {n_obs}.")
    x = data.transpose(0, 2, 1)  # (n_obs, n_bands, n_channels)
    n_bands, n_ch = x.shape[1:]
    seed = (
        None
        if random_state is None
        else int(check_random_state(random_state).randint(0, 2**31 - 1))
    )
    common = dict(
        t=None,
        correction=None,
        n_observations=n_obs,
        ch_names=saliency.ch_names,
        band_names=saliency.band_names,
        alpha=float(alpha),
    )
    stat_fun = partial(mne.stats.ttest_1samp_no_p, sigma=sigma)
    if adjacency is None:
        # every cell its own cluster, formed at t > 0: the cluster-level
        # correction is then the max-t correction over cells
        adjacency, threshold, correction = False, 0.0, "tmax"
    else:
        correction = "cluster"
        if threshold is None:  # MNE's default, computed here for the hat t
            from scipy.stats import t as t_dist

            threshold = float(-t_dist.ppf(0.05 / (1 + (tail == 0)), n_obs - 1))
            threshold = -threshold if tail < 0 else threshold
        if isinstance(adjacency, str):
            _check_option("adjacency", adjacency, ("auto",))
            try:
                ch_adj, _ = mne.channels.find_ch_adjacency(saliency.info, ch_type=None)
            except Exception as exp:
                raise ValueError(
                    "Could not find a channel adjacency for the saliency's "
                    f"channels ({exp}); set a montage, give adjacency=, or use "
                    "adjacency=None for the max-t test without clusters."
                ) from exp
            adjacency = mne.stats.combine_adjacency(n_bands, ch_adj)
    # flattened band-major: a full adjacency needs 1-D observations
    t, clusters, cluster_p, _ = mne.stats.permutation_cluster_1samp_test(
        x.reshape(n_obs, -1),
        threshold=threshold,
        n_permutations=n_permutations,
        tail=tail,
        stat_fun=stat_fun,
        adjacency=adjacency,
        out_type="mask",
        rng=seed,
        verbose=False,
    )
    t = t.reshape(n_bands, n_ch)
    masks = []
    for c in clusters:  # boolean masks, or index tuples without adjacency
        mask = np.zeros(n_bands * n_ch, bool)
        mask[c] = True
        masks.append(mask.reshape(n_bands, n_ch))
    clusters = masks
    p = np.ones((n_bands, n_ch))
    for mask, cp in zip(clusters, cluster_p, strict=True):
        p[mask] = np.minimum(p[mask], cp)
    common.update(t=t.T, correction=correction)
    return CellTestResult(
        p_values=p.T,
        significant=p.T < alpha,
        clusters=[c.T for c in clusters] if correction == "cluster" else [],
        cluster_p_values=np.asarray(cluster_p if correction == "cluster" else []),
        **common,
    )
