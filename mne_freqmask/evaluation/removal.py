"""The removal / feed-in game and deletion / insertion curves.

- The removal / feed-in game (paper §4.3-4.4, :func:`evaluate_removal`): the
  channel x band cells of a map are split at the median into salient and
  non-salient halves; zeroing the non-salient cells in the spectrum (RN)
  should leave the model's accuracy close to the original, zeroing the salient
  cells (RS) should destroy it.
- Deletion and insertion curves (:func:`deletion_curves`), the threshold-free
  version: remove (deletion) or keep only (insertion) the ``k`` top-ranked
  cells for every ``k``, and take the area under the accuracy curve.

Both read the epochs chunk by chunk (as :func:`mne_freqmask.explain`), so
epochs that are not preloaded are never held in memory at once.
"""

import numpy as np
import pandas as pd
import torch
from mne.utils import _check_option, _validate_type, logger, verbose
from scipy.integrate import trapezoid

from mne_freqmask._torch_utils import model_context, predict, resolve_device
from mne_freqmask.evaluation._common import (
    _cell_ranks,
    _check_model,
    _chunks,
    _map_values,
    _per_epoch,
    _prepare,
)
from mne_freqmask.utils._docs import fill_doc
from mne_freqmask.utils._metrics import balanced_accuracy, softmax


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


def _scores(pred, y):
    return float((pred == y).mean()), balanced_accuracy(y, pred)


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
    _check_model(model)
    src, labels, grid, picks = _prepare(epochs, saliency, y)
    values = _map_values(saliency, level, len(src))
    salient = salient_cells(values, fraction, random_state)
    dev = resolve_device(device, model)
    conditions = (("RN", salient), ("RS", ~salient))
    pred = {name: np.empty(len(src), int) for name in ("original", "RN", "RS")}
    with model_context(model, dev):
        for sl, xb in _chunks(src):
            pred["original"][sl] = predict(model, xb, dev).argmax(1)
            for name, keep in conditions:
                xr = remove_cells(xb, _per_epoch(keep, sl), grid, picks, dev)
                pred[name][sl] = predict(model, xr, dev).argmax(1)
    rows = {"original": _scores(pred["original"], labels) + (0.0,)}
    for name, keep in conditions:
        rows[name] = _scores(pred[name], labels) + (1.0 - float(keep.mean()),)
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
    _check_model(model)
    src, labels, grid, picks = _prepare(epochs, saliency, y)
    values = _map_values(saliency, level, len(src))
    ranks = _cell_ranks(values, random_state)
    n_cells = values.shape[-2] * values.shape[-1]
    ks = np.unique(np.round(np.linspace(0, n_cells, int(n_points))).astype(int))
    dev = resolve_device(device, model)
    names = ("deletion", "insertion")
    correct = {name: np.empty((len(ks), len(src)), bool) for name in names}
    prob = {name: np.empty((len(ks), len(src)), np.float32) for name in names}
    with model_context(model, dev):
        for sl, xb in _chunks(src):
            rk, yb = _per_epoch(ranks, sl), labels[sl]
            for ki, k in enumerate(ks):
                for name, keep in (("deletion", rk >= k), ("insertion", rk < k)):
                    xr = remove_cells(xb, keep, grid, picks, dev)
                    logits = predict(model, xr, dev)
                    correct[name][ki, sl] = logits.argmax(1) == yb
                    prob[name][ki, sl] = softmax(logits)[np.arange(len(yb)), yb]
    rows = []
    for ki, k in enumerate(ks):
        row = dict(n_cells=int(k))
        for name in names:
            row[f"{name}_accuracy"] = float(correct[name][ki].mean())
            row[f"{name}_probability"] = float(prob[name][ki].mean())
        rows.append(row)
    curves = pd.DataFrame(rows, index=pd.Index(ks / n_cells, name="fraction"))
    frac = curves.index.to_numpy()
    attrs = dict(level=level, n_cells_total=int(n_cells))
    for name in names:
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
