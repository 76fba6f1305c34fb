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
epochs that are not preloaded are never held in memory at once. Both take a
time-resolved map (:class:`~mne_freqmask.SpectralSaliencyTFR`) as well: its
channel x band x window cells are removed in the short-time Fourier
transform of its grid (:func:`remove_cells`), with the same ranking,
operators and intervals.
"""

import numpy as np
import pandas as pd
from mne.utils import (
    _check_option,
    _validate_type,
    check_random_state,
    logger,
    verbose,
)
from scipy.integrate import trapezoid

from mne_freqmask.evaluation._common import (
    _cell_ranks,
    _check_model,
    _draw_donors,
    _map_values,
    _n_tied,
    _per_epoch,
    _prepare,
    _reference_source,
    _steps,
)
from mne_freqmask.evaluation._engine import remove_cells, run_removals  # noqa: F401
from mne_freqmask.evaluation.stats import bootstrap_ci
from mne_freqmask.utils._docs import fill_doc
from mne_freqmask.utils._metrics import balanced_accuracy


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
    %(y_scored)s
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
        and ``removed_fraction`` (fraction of the map's cells zeroed:
        channel x band, or channel x band x window for a
        :class:`~mne_freqmask.SpectralSaliencyTFR`).
        ``scores.attrs`` holds ``level``, ``fraction`` and ``gap`` (RN minus
        RS accuracy; large is good).
    """
    _check_option("level", level, ("group", "instance"))
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    model = _check_model(model)
    src, labels, grid, picks = _prepare(epochs, saliency, y, model, device)
    values = _map_values(saliency, level, len(src))
    salient = salient_cells(values, fraction, random_state)
    conditions = (("RN", salient), ("RS", ~salient))

    def removals(sl):
        yield "original", None
        for name, keep in conditions:
            yield name, _per_epoch(keep, sl)

    pred, _ = run_removals(src, model, removals, grid, picks, device=device)
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


#: curve name -> cells kept at step k, from the ranks (0 = most salient)
_CURVES = {
    "deletion": lambda rk, k, n: rk >= k,  # MoRF: the k top cells removed
    "insertion": lambda rk, k, n: rk < k,  # only the k top cells kept
    "lerf": lambda rk, k, n: rk < n - k,  # LeRF: the k bottom cells removed
}


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
    fractions=None,
    curves=("deletion", "insertion"),
    operator="zero",
    reference=None,
    n_boot=1000,
    ci=0.95,
    return_epoch_scores=False,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Deletion (MoRF), LeRF and insertion curves over the ranked cells.

    The cells are ranked by the map (most salient first): channel x band, or
    channel x band x window for a :class:`~mne_freqmask.SpectralSaliencyTFR`
    (removed in the short-time Fourier transform, see
    :func:`~mne_freqmask.evaluation.remove_cells`). For
    each ``k``, the deletion curve (most relevant first, MoRF) removes the
    ``k`` top cells from the spectrum (as
    :func:`~mne_freqmask.evaluate_removal` does), the LeRF curve (least
    relevant first) the ``k`` bottom cells, and the insertion curve all the
    *other* cells (keeps only the top ``k``); the model is scored on the
    result. A faithful map gives a deletion curve that falls fast (small
    area), a LeRF curve that stays high (large area) and an insertion curve
    that rises fast (large area). The areas need no threshold, unlike the
    removal game's median split.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    %(saliency)s
    level : "group" | "instance"
        ``"group"`` ranks the cells of the epoch-averaged map (one order for
        all epochs); ``"instance"`` ranks each epoch's own map.
    %(y_scored)s
    n_points : int
        Number of values of ``k``, evenly spaced from 0 to all cells (at least
        2; duplicates are dropped when there are fewer cells). Ignored when
        ``fractions`` is given.
    %(eval_fractions)s
        ``None`` (default): ``n_points`` evenly spaced fractions from 0 to 1.
    curves : tuple of str
        The curves to compute, among ``"deletion"`` (MoRF), ``"lerf"`` and
        ``"insertion"``.
    %(eval_operator)s
    %(eval_reference)s
    %(eval_boot)s
    return_epoch_scores : bool
        Also return the per-epoch scores (for
        :func:`~mne_freqmask.evaluation.paired_comparison` or other
        statistics).
    random_state : None | int | instance of ~numpy.random.RandomState
        Breaks ties between equal cells at random (``None``: by position), then
        draws the reference epochs and the bootstrap resamples. A mask
        saturated at 0 or 1 has many ties; random order is fair to it (the
        number of tied cells is reported).
    %(device)s
    %(verbose)s

    Returns
    -------
    curves : pandas.DataFrame
        Indexed by ``fraction`` (``k`` over the number of cells), with
        columns ``n_cells`` (``k``) and, for each curve ``name``,
        ``{name}_accuracy`` and ``{name}_probability`` (mean softmax
        probability of the true class); with ``n_boot > 0`` also
        ``{name}_{score}_ci_low`` and ``{name}_{score}_ci_high`` (NaN for a
        single epoch).
        ``curves.attrs`` holds ``level``, ``operator``, ``n_cells_total``,
        ``n_epochs``, ``n_tied_cells`` (cells that share their value with
        another cell of the ranked map, whose order the seeded tie-breaking
        decides; the mean over epochs for ``level="instance"``) and the areas
        under the curves over ``fraction`` (trapezoid rule): ``{name}_auc``
        (accuracy) and ``{name}_auc_probability``, with ``n_boot > 0`` their
        intervals ``{name}_auc_ci`` and ``{name}_auc_probability_ci`` as
        ``(low, high)``. The first row of the deletion and LeRF curves and the
        last of the insertion curve (with fractions up to 1) are the original
        data.
    epoch_scores : dict of ndarray, shape (n_epochs, n_points)
        Only with ``return_epoch_scores=True``: ``{name}_probability`` and
        ``{name}_accuracy`` (0 or 1) of every epoch at every point.

    See Also
    --------
    mne_freqmask.evaluate_removal
    mne_freqmask.evaluation.compare_methods

    Notes
    -----
    A random ranking gives, on average, the same area for deletion and
    insertion; so a useful one-number summary is
    ``insertion_auc - deletion_auc`` (positive is good), and all areas are
    best read next to those of a random map computed the same way. The
    intervals are over the epochs, with the ranking held fixed.
    """
    _check_option("level", level, ("group", "instance"))
    _check_option("operator", operator, ("zero", "reference"))
    _validate_type(curves, (tuple, list), "curves")
    if len(curves) == 0 or len(set(curves)) != len(curves):
        raise ValueError(f"curves must list distinct curve names, got {curves!r}.")
    for name in curves:
        _check_option("curves", name, tuple(_CURVES))
    _validate_type(n_boot, "int-like", "n_boot")
    if n_boot < 0:
        raise ValueError(f"n_boot must be 0 (no intervals) or more, got {n_boot}.")
    model = _check_model(model)
    src, labels, grid, picks = _prepare(epochs, saliency, y, model, device)
    values = _map_values(saliency, level, len(src))
    rng = check_random_state(random_state)
    ranks = _cell_ranks(values, None if random_state is None else rng)
    n_cells = values.shape[-2] * values.shape[-1]
    ks = _steps(n_cells, n_points, fractions)
    if operator == "reference":
        ref = _reference_source(reference, src, epochs)
        donors = _draw_donors(len(src), len(ref), ref is src, rng)
    fill = (ref, donors) if operator == "reference" else None

    def removals(sl):
        rk = _per_epoch(ranks, sl)
        for ki, k in enumerate(ks):
            for name in curves:
                yield (name, ki), _CURVES[name](rk, k, n_cells)

    pred, prob = run_removals(
        src, model, removals, grid, picks, labels=labels, fill=fill, device=device
    )
    correct = {
        name: np.column_stack([pred[name, ki] == labels for ki in range(len(ks))])
        for name in curves
    }
    prob = {
        name: np.column_stack([prob[name, ki] for ki in range(len(ks))])
        for name in curves
    }
    frac = ks / n_cells
    scores = {}
    for name in curves:
        scores[f"{name}_accuracy"] = correct[name].astype(float)
        scores[f"{name}_probability"] = prob[name].astype(float)
    out = pd.DataFrame(
        dict(n_cells=ks.astype(int), **{k: v.mean(0) for k, v in scores.items()}),
        index=pd.Index(frac, name="fraction"),
    )
    n_tied = _n_tied(values)
    attrs = dict(
        level=level,
        operator=operator,
        n_cells_total=int(n_cells),
        n_epochs=len(src),
        n_tied_cells=int(n_tied) if n_tied.ndim == 0 else float(n_tied.mean()),
    )
    for name in curves:
        for score, suffix in (("accuracy", ""), ("probability", "_probability")):
            per_epoch = scores[f"{name}_{score}"]
            area = trapezoid(per_epoch, frac, axis=1)
            attrs[f"{name}_auc{suffix}"] = float(area.mean())
            if n_boot > 0:
                both = np.column_stack([per_epoch, area])
                if len(both) > 1:
                    _, low, high = bootstrap_ci(
                        both, n_boot=n_boot, ci=ci, random_state=rng
                    )
                else:  # one epoch: no interval
                    low = high = np.full(both.shape[1], np.nan)
                out[f"{name}_{score}_ci_low"] = low[:-1]
                out[f"{name}_{score}_ci_high"] = high[:-1]
                attrs[f"{name}_auc{suffix}_ci"] = (float(low[-1]), float(high[-1]))
    out.attrs.update(attrs)
    summary = ", ".join(f"{name} AUC {attrs[f'{name}_auc']:.3f}" for name in curves)
    logger.info(f"{summary} ({level}, {operator}, {len(ks)} points)")
    if return_epoch_scores:
        return out, scores
    return out
