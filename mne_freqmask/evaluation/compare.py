"""Compare explanation methods on one model: curves, intervals, cost.

:func:`compare_methods` explains the same epochs with each method (timing it
and counting the model's forward passes), scores every map with the MoRF and
LeRF deletion curves of :func:`~mne_freqmask.evaluation.deletion_curves`
under each removal operator and ranking, with bootstrap intervals over the
epochs, and compares each method with a baseline on the same epochs
(:func:`~mne_freqmask.evaluation.paired_comparison`). The result is one tidy
table; :func:`mne_freqmask.viz.plot_deletion_curves` draws it.
"""

import contextlib
import time

import numpy as np
import pandas as pd
import torch
from mne.utils import _check_option, _validate_type, check_random_state, logger, verbose
from scipy.integrate import trapezoid

from mne_freqmask._inputs import _ready_epochs
from mne_freqmask._saliency_base import BaseSaliency
from mne_freqmask._saliency_cells import cell_windows
from mne_freqmask.evaluation._common import (
    _check_explain_kw,
    _check_model,
    _explain,
    _group_codes,
    _group_means,
    _scored_y,
    _source,
)
from mne_freqmask.evaluation._maps import _random_map
from mne_freqmask.evaluation._sensitivity import (
    SENSITIVITY_DRAWS,
    _check_sensitivity_kw,
    _max_sensitivity,
)
from mne_freqmask.evaluation.complexity import quantus_scores
from mne_freqmask.evaluation.removal import deletion_curves
from mne_freqmask.evaluation.stats import bootstrap_ci, paired_comparison
from mne_freqmask.evaluation.truth import ground_truth_scores
from mne_freqmask.utils._deps import import_optional
from mne_freqmask.utils._docs import fill_doc

#: the curve of deletion_curves behind each order
ORDERS = {"morf": "deletion", "lerf": "lerf"}
_ORDER_NAMES = {"morf": "MoRF", "lerf": "LeRF"}
DEFAULT_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


@contextlib.contextmanager
def _count_passes(model):
    """Count the epochs fed to ``model.forward`` (a hook, removed on exit)."""
    count = [0]

    def hook(module, args):
        if args and isinstance(args[0], torch.Tensor) and args[0].ndim > 0:
            count[0] += int(args[0].shape[0])

    handle = model.register_forward_pre_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def _entries(methods):
    """``{label: str | dict | SpectralSaliency[TFR]}`` from ``methods``."""
    _validate_type(methods, (list, tuple, dict, str), "methods")
    if isinstance(methods, str):
        methods = [methods]
    if not isinstance(methods, dict):
        for m in methods:
            _validate_type(m, str, "each entry of methods", "str (use a dict)")
        methods = {m: m for m in methods}
    if len(methods) == 0:
        raise ValueError("methods is empty; give at least one method.")
    for label, entry in methods.items():
        _validate_type(
            entry,
            (str, dict, BaseSaliency),
            f"methods[{label!r}]",
            "method name, dict(method=..., **params), SpectralSaliency or "
            "SpectralSaliencyTFR",
        )
        if isinstance(entry, dict) and "method" not in entry:
            raise ValueError(
                f"methods[{label!r}] is a dict without a 'method' key; write "
                "dict(method='freqmask', n_steps=100)."
            )
    return dict(methods)


def _saliency(label, entry, epochs, model, explain_kw, seed, device):
    """``(saliency, seconds, forward passes per epoch)`` of one entry."""
    if isinstance(entry, BaseSaliency):
        return entry, np.nan, np.nan
    if isinstance(entry, str) and entry == "random":
        rng = check_random_state(seed)
        return _random_map(epochs, explain_kw, rng), 0.0, 0.0
    kw = dict(explain_kw)
    if isinstance(entry, dict):
        kw.update(entry)
        entry = kw.pop("method")
    start = time.perf_counter()
    with _count_passes(model) as count:
        sal = _explain(epochs, model, entry, kw, seed, device)
    seconds = time.perf_counter() - start
    logger.info(f"{label}: {seconds:.2f} s, {count[0] / len(epochs):.1f} passes/epoch")
    return sal, seconds, count[0] / len(epochs)


def _check_same_windows(layouts, label, sal):
    """All maps of one comparison are scored over the same kind of cells."""
    layouts[label] = cell_windows(sal)
    first = next(iter(layouts))
    if layouts[label] == layouts[first]:
        return

    def say(win):
        if win is None:
            return "channel x band cells (whole epoch)"
        return f"channel x band x window cells (time_windows={win})"

    raise ValueError(
        f"methods[{label!r}] is scored over {say(layouts[label])}, "
        f"methods[{first!r}] over {say(layouts[first])}; the maps of one "
        "comparison (the random control included, which follows explain_kw) "
        "need the same cells. Pass explain_kw=dict(time_windows=...) with the "
        "windows of the precomputed maps, or none for whole-epoch maps."
    )


def _check_map(layouts, label, sal, rankings):
    """One method's map fits the others' windows and the rankings asked for."""
    _check_same_windows(layouts, label, sal)
    if "instance" in rankings and sal.level != "instance":
        raise ValueError(
            f'methods[{label!r}] is a group-level map; rankings="instance" '
            "needs one map per epoch (pass rankings=('group',) or the map "
            "before .average())."
        )


def _check_precomputed(entries, y, n_epochs):
    """A precomputed map can be scored on ``y`` (a record it lacks for
    ``y="explained"`` is reported before any method is fitted)."""
    for label, entry in entries.items():
        if isinstance(entry, BaseSaliency) and entry.method != "random":
            _scored_y(entry, y, n_epochs, f"methods[{label!r}]")


def _one_explained(maps, y, n_epochs):
    """The classes every map is scored on: ``y``, or with ``y="explained"``
    the one class per epoch that all maps record (a random control, which
    explains nothing, is scored on it too)."""
    if not isinstance(y, str):
        return y
    first = classes = None
    for label, (sal, *_) in maps.items():
        if sal.method == "random":
            continue
        got = _scored_y(sal, y, n_epochs, f"methods[{label!r}]")
        if classes is None:
            first, classes = label, got
            continue
        n_diff = int((got != classes).sum())
        if n_diff:
            how = [m[0].method_params.get("target") for m in (maps[first], sal)]
            raise ValueError(
                f"methods[{label!r}] (target {how[1]!r}) explains another class "
                f"than methods[{first!r}] (target {how[0]!r}) on {n_diff} of "
                f'{n_epochs} epochs, so y="explained" has no one class to score '
                "both on; explain every method with the same target (e.g. "
                'explain_kw=dict(target="true"), or the default target=None for '
                "all), or score them all on the labels with y=None."
            )
    if classes is None:
        raise ValueError(
            'y="explained" scores each map on the class it explains, but every '
            "map here is a random control; add a method's map, or pass y."
        )
    return classes


def _area(per_epoch, frac):
    """Per-epoch mean height of a curve over its fractions (trapezoid)."""
    if len(frac) < 2:
        return per_epoch[:, 0]
    return trapezoid(per_epoch, frac, axis=1) / (frac[-1] - frac[0])


def _map_columns(sal, truth, use_quantus):
    cols = {}
    level = "instance" if sal.level == "instance" else "group"
    if truth is not None:
        gt = ground_truth_scores(sal, truth, level=level)
        # the table reports FLEXtime's rank accuracy for channel x band maps
        whole = cell_windows(sal) is None
        cols.update(
            auroc=gt["auroc"], rank_accuracy=gt["rank_accuracy"] if whole else np.nan
        )
    if use_quantus:
        cols.update(quantus_scores(sal).mean().to_dict())
    return cols


@verbose
@fill_doc
def compare_methods(
    epochs,
    model,
    methods=("amplitude_gradients", "random"),
    *,
    rankings=("group", "instance"),
    operators=("zero", "reference"),
    orders=("morf", "lerf"),
    fractions=DEFAULT_FRACTIONS,
    y=None,
    reference=None,
    truth=None,
    baseline="random",
    groups=None,
    explain_kw=None,
    quantus=False,
    sensitivity=False,
    n_boot=1000,
    ci=0.95,
    return_epoch_scores=False,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Compare explanation methods by their deletion curves, with intervals.

    Each method explains ``epochs`` (timed, its forward passes counted); each
    map is then scored by :func:`~mne_freqmask.evaluation.deletion_curves`
    for every ranking, removal operator and order, and every score gets a
    bootstrap interval over the epochs. All methods see the same tie-breaking
    seed and the same reference draws, so their scores are paired epoch by
    epoch and each is compared with ``baseline``
    (:func:`~mne_freqmask.evaluation.paired_comparison`).

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    methods : list of str | dict
        Method names of :func:`mne_freqmask.explain` (and ``"random"``: a
        uniform random map per epoch, the control). A dict maps a label to a
        method name, to ``dict(method=name, **params)`` (parameters for that
        method only), or to a :class:`~mne_freqmask.SpectralSaliency` (or
        :class:`~mne_freqmask.SpectralSaliencyTFR`) already computed on
        ``epochs`` (its time and passes are then unknown, NaN). With
        ``time_windows`` in ``explain_kw`` every method (and the random map)
        is explained and scored over the channel x band x window cells of the
        short-time grid.
    rankings : tuple of str
        ``"group"`` (rank the cells of the epoch-averaged map) and / or
        ``"instance"`` (each epoch's own map).
    operators : tuple of str
        Removal operators, ``"zero"`` and / or ``"reference"`` (see
        ``operator`` in :func:`~mne_freqmask.evaluation.deletion_curves`).
    orders : tuple of str
        ``"morf"`` (most relevant cells removed first: a faithful map makes the
        score fall fast) and / or ``"lerf"`` (least relevant first: it should
        stay high).
    %(eval_fractions)s
        Default: 0, 5, 10, 20, 30 and 50 per cent of the cells.
    %(y_scored)s
        With ``"explained"`` every map must explain the same class per
        epoch (the same ``target``); the random control is scored on it.
    %(eval_reference)s
    truth : None | PlantedTruth | PlantedBurst | ndarray of bool
        The known answer (simulated data; an array of shape
        ``(n_channels, n_bands)``, or ``(n_channels, n_bands, n_windows)`` for
        time-resolved maps): adds ``auroc`` and ``rank_accuracy`` (FLEXtime's
        relevance rank accuracy, see
        :func:`~mne_freqmask.evaluation.ground_truth_scores`) per method; for
        a time-resolved map the ``auroc`` is that of
        :func:`~mne_freqmask.evaluation.planted_window_auroc` and
        ``rank_accuracy`` is NaN.
    baseline : str | None
        Label of the method every other is compared with, on the areas
        (default ``"random"``; None: no comparison, or when it is not among
        ``methods``).
    groups : None | str | array-like, shape (n_epochs,)
        Epochs that are not independent share a group (overlapping crops of
        one trial, epochs of one recording): the intervals and the paired
        comparisons then resample whole groups (a cluster bootstrap), and
        every score is the mean of the group means. A str names a metadata
        column. None (default): each epoch is its own group.
    %(explain_kw)s
    quantus : bool
        Add Quantus' ``complexity`` and ``sparseness`` of each method's maps
        (:func:`~mne_freqmask.evaluation.quantus_scores`; needs the
        ``evaluation`` extra; a time-resolved map over all its channel x
        band x window cells).
    sensitivity : bool | int
        Add ``max_sensitivity``: Quantus' Max-Sensitivity of each method
        (Yeh et al., 2019; lower: more robust), the mean over epochs of the
        largest relative change of an epoch's map,
        ``||e(x + d) - e(x)|| / ||e(x)||``, over draws of Gaussian noise
        ``d`` of 5 per cent of the data's standard deviation: the perturbation of
        FLEXtime's ``compute_sensitivity.py``. ``True``: 10 draws (FLEXtime's
        number); an int: that many. Each draw explains every epoch again, so
        this costs ``n_draws + 1`` times the method's time; ``False``
        (default): not computed. Computed by
        ``quantus.MaxSensitivity`` on
        :func:`~mne_freqmask.evaluation.quantus_inputs` with
        :func:`~mne_freqmask.evaluation.quantus_explain_func` (the class
        explained: the one predicted on the unperturbed epoch), so it needs
        the ``evaluation`` extra (without Quantus, an ImportError names
        it). NaN for precomputed maps and the random map (there is no method
        to run again). Whole-epoch maps of all channels only (no
        ``time_windows`` or ``picks`` in ``explain_kw``).
    %(eval_boot)s
    return_epoch_scores : bool
        Also return the area of every epoch (of every group with ``groups``),
        e.g. for :func:`~mne_freqmask.evaluation.paired_comparison` of two
        methods other than the baseline.
    random_state : None | int
        Seed of the random map, the tie-breaking, the reference draws and
        the bootstrap (one seed for all methods, so that they are paired).
    %(device)s
    %(verbose)s

    Returns
    -------
    scores : pandas.DataFrame
        One row per method, ranking, operator, order (``"MoRF"`` /
        ``"LeRF"``), ``metric`` (``"probability"``: the mean true-class
        probability; ``"accuracy"``) and point: ``statistic`` is
        ``"curve"`` (one row per ``fraction``) or ``"area"`` (``fraction``
        NaN; the mean height of the curve over the fractions, trapezoid
        rule). Columns ``score``, ``ci_low``, ``ci_high``, ``n_epochs``,
        ``n_groups`` (the units resampled),
        ``n_tied_cells`` (see :func:`deletion_curves`), ``time_s`` (seconds to
        explain all epochs), ``passes_per_epoch`` (epochs fed to the model's
        forward, over the number of epochs, including the two-epoch model
        check of :func:`mne_freqmask.explain`; a backward pass is not counted),
        with ``truth`` also ``auroc`` and ``rank_accuracy``, with ``quantus``
        also ``complexity`` and ``sparseness``, with ``sensitivity`` also
        ``max_sensitivity``, and with a ``baseline`` on
        the area rows ``difference`` (score minus the baseline's),
        ``diff_ci_low``, ``diff_ci_high`` and ``p_value`` (paired bootstrap).
    epoch_scores : pandas.DataFrame
        Only with ``return_epoch_scores=True``: one row per method, ranking,
        operator, order, metric and epoch (``unit``: the epoch's index, or
        the group's with ``groups``), column ``area``.

    See Also
    --------
    mne_freqmask.viz.plot_deletion_curves
    mne_freqmask.evaluation.deletion_curves

    Notes
    -----
    A faithful method has a lower MoRF area and a higher LeRF area than the
    random map, beyond the interval. Under ``"zero"`` removal a map can be
    rewarded for cells whose zeroing is merely out of distribution for the
    model; ``"reference"`` removal guards against it.
    """
    for name, vals, allowed in (
        ("rankings", rankings, ("group", "instance")),
        ("operators", operators, ("zero", "reference")),
        ("orders", orders, tuple(ORDERS)),
    ):
        _validate_type(vals, (tuple, list), name)
        if len(vals) == 0:
            raise ValueError(f"{name} is empty; give at least one of {allowed}.")
        for v in vals:
            _check_option(name, v, allowed)
    model = _check_model(model)
    _validate_type(explain_kw, (dict, None), "explain_kw")
    _check_explain_kw(explain_kw)
    explain_kw = dict(explain_kw or {})
    entries = _entries(methods)
    n_draws = _sensitivity_draws(sensitivity)
    if n_draws:
        _check_sensitivity_kw(explain_kw)
        import_optional("quantus")  # before any method runs
    if baseline is not None and baseline not in entries:
        logger.info(f"baseline {baseline!r} is not among the methods; no comparison.")
        baseline = None
    seed = random_state
    if seed is None or not isinstance(seed, int | np.integer):
        seed = int(check_random_state(seed).randint(0, 2**31 - 1))
    epochs = _ready_epochs(epochs)  # bad epochs dropped once, for every method
    _source(epochs)  # a clear error for empty epochs before any explanation
    codes = _group_codes(epochs, groups)
    _check_precomputed(entries, y, len(epochs))  # before any fit
    rows, areas, layouts, maps = [], {}, {}, {}
    for label, entry in entries.items():
        sal, seconds, passes = _saliency(
            label, entry, epochs, model, explain_kw, seed, device
        )
        _check_map(layouts, label, sal, rankings)
        extra = _map_columns(sal, truth, quantus)
        if n_draws:
            extra["max_sensitivity"] = _sensitivity(
                epochs, model, entry, explain_kw, n_draws, seed, device
            )
        maps[label] = sal, seconds, passes, extra
    y = _one_explained(maps, y, len(epochs))
    for label, (sal, seconds, passes, extra) in maps.items():
        for ranking in rankings:
            for operator in operators:
                curves, per_epoch = deletion_curves(
                    epochs,
                    model,
                    sal,
                    level=ranking,
                    y=y,
                    fractions=fractions,
                    curves=tuple(ORDERS[o] for o in orders),
                    operator=operator,
                    reference=reference,
                    n_boot=0,  # intervals below, over groups
                    return_epoch_scores=True,
                    random_state=seed,
                    device=device,
                    verbose=False,
                )
                frac = curves.index.to_numpy()
                common = dict(
                    method=label,
                    ranking=ranking,
                    operator=operator,
                    n_epochs=curves.attrs["n_epochs"],
                    n_groups=len(epochs) if codes is None else int(codes.max() + 1),
                    n_tied_cells=curves.attrs["n_tied_cells"],
                    time_s=seconds,
                    passes_per_epoch=passes,
                    **extra,
                )
                for order in orders:
                    curve = ORDERS[order]
                    for metric in ("probability", "accuracy"):
                        col = f"{curve}_{metric}"
                        key = dict(order=_ORDER_NAMES[order], metric=metric)
                        unit = _group_means(per_epoch[col], codes)
                        c_mean, c_low, c_high = unit.mean(0), *_nan2(frac)
                        if n_boot > 0 and len(unit) > 1:
                            c_mean, c_low, c_high = bootstrap_ci(
                                unit, n_boot=n_boot, ci=ci, random_state=seed
                            )
                        for fi, f in enumerate(frac):
                            rows.append(
                                dict(
                                    common,
                                    **key,
                                    statistic="curve",
                                    fraction=float(f),
                                    score=float(c_mean[fi]),
                                    ci_low=float(c_low[fi]),
                                    ci_high=float(c_high[fi]),
                                )
                            )
                        area = _group_means(_area(per_epoch[col], frac), codes)
                        low = high = np.nan
                        if n_boot > 0 and len(area) > 1:
                            _, low, high = bootstrap_ci(
                                area, n_boot=n_boot, ci=ci, random_state=seed
                            )
                        areas[(label, ranking, operator, order, metric)] = area
                        rows.append(
                            dict(
                                common,
                                **key,
                                statistic="area",
                                fraction=np.nan,
                                score=float(area.mean()),
                                ci_low=low,
                                ci_high=high,
                            )
                        )
    scores = pd.DataFrame(rows)
    if baseline is not None:
        _add_paired(scores, areas, baseline, max(n_boot, 1), ci, seed)
    first = ["method", "ranking", "operator", "order", "metric", "statistic"]
    scores = scores[first + [c for c in scores.columns if c not in first]]
    if not return_epoch_scores:
        return scores
    names = ["method", "ranking", "operator", "order", "metric"]
    per_unit = pd.concat(
        [
            pd.DataFrame(
                dict(zip(names, key[:3] + (_ORDER_NAMES[key[3]], key[4]), strict=True)),
                index=np.arange(len(area)),
            ).assign(unit=np.arange(len(area)), area=area)
            for key, area in areas.items()
        ],
        ignore_index=True,
    )
    return scores, per_unit


def _sensitivity_draws(sensitivity):
    """Number of noise draws of the sensitivity score (0: not computed)."""
    _validate_type(sensitivity, (bool, "int-like"), "sensitivity", "bool or int")
    if isinstance(sensitivity, bool):
        return SENSITIVITY_DRAWS if sensitivity else 0
    if int(sensitivity) < 0:
        raise ValueError(
            f"sensitivity must be a bool or a number of draws >= 0, got {sensitivity}."
        )
    return int(sensitivity)


def _sensitivity(epochs, model, entry, explain_kw, n_draws, seed, device):
    """Mean Max-Sensitivity of a method over the epochs (NaN: no method)."""
    if not isinstance(entry, str | dict) or entry == "random":
        return np.nan
    kw = dict(explain_kw)
    if isinstance(entry, dict):
        kw.update(entry)
        entry = kw.pop("method")
    scores = _max_sensitivity(
        epochs,
        model,
        entry,
        explain_kw=kw,
        n_draws=n_draws,
        random_state=seed,
        device=device,
    )
    return float(np.nanmean(scores))


def _nan2(frac):
    return np.full(len(frac), np.nan), np.full(len(frac), np.nan)


def _add_paired(scores, areas, baseline, n_boot, ci, seed):
    """Paired bootstrap of each area minus the baseline's, on the area rows."""
    for col in ("difference", "diff_ci_low", "diff_ci_high", "p_value"):
        scores[col] = np.nan
    for idx, row in scores[scores["statistic"] == "area"].iterrows():
        key = (row["method"], row["ranking"], row["operator"])
        order = {v: k for k, v in _ORDER_NAMES.items()}[row["order"]]
        mine = areas[key + (order, row["metric"])]
        ref = areas[(baseline,) + key[1:] + (order, row["metric"])]
        if len(mine) < 2:  # one epoch: nothing to resample
            continue
        res = paired_comparison(mine, ref, n_boot=n_boot, ci=ci, random_state=seed)
        scores.loc[idx, "difference"] = res["difference"]
        scores.loc[idx, "diff_ci_low"] = res["ci_low"]
        scores.loc[idx, "diff_ci_high"] = res["ci_high"]
        scores.loc[idx, "p_value"] = res["p_value"]
