"""The checks of :func:`~mne_freqmask.evaluation.check_explanation`, one each.

Each check is a small function ``f(ctx) -> (rows, details)`` of the shared
context (epochs, model, map and settings), registered in ``_CHECK_FUNCS``;
``check_explanation`` loops over them. With them, for whole-epoch (channel x
band) and time-resolved (channel x band x window) maps alike: the parameters
to explain the epochs again (with the map's own windows), the random control
on the map's own cells, and the words that describe the cells.
"""

import inspect
import warnings

import numpy as np
import torch
from mne.utils import check_random_state

from mne_freqmask._saliency_cells import remake_windows, saliency_like
from mne_freqmask._saliency_utils import EXPLAINED
from mne_freqmask.evaluation._common import (
    _check_grid,
    _explain,
    _group_means,
    _labels,
    _source,
)
from mne_freqmask.evaluation._engine import _predictions
from mne_freqmask.evaluation.compare import compare_methods
from mne_freqmask.evaluation.sanity import spearman
from mne_freqmask.evaluation.stats import bootstrap_ci, cell_permutation_test
from mne_freqmask.methods import METHODS, get_method
from mne_freqmask.models import parameter_layers, untrained_copy
from mne_freqmask.utils._checks import _has_positions
from mne_freqmask.viz import is_signed


def _explain_kw(saliency, explain_kw):
    """Keyword arguments of :func:`~mne_freqmask.explain` that remake the map.

    None: those stored in ``saliency.method_params`` and its channels. A TFR
    map is remade on its own windows: ``time_windows`` is taken from the map
    when ``explain_kw`` lacks it, and windows other than the map's are
    refused (the randomised model's map would have other cells).
    """
    if explain_kw is None:
        kw = _stored_kw(saliency)
        kw["picks"] = list(saliency.ch_names)
    else:
        kw = dict(explain_kw)
    _check_grid(saliency)
    windows = remake_windows(saliency, kw.pop("time_windows", None))
    if windows is not None:
        kw["time_windows"] = windows
    return kw


def _stored_kw(saliency):
    """The entries of ``saliency.method_params`` that :func:`explain` takes.

    The method's keywords and ``explain``'s own (bands, windows, and the
    recorded classes as ``target`` for a map not of the prediction); entries
    that describe the map (``aggregation``, ``baseline``...) are left out:
    passed back they were refused as unknown parameters. An amortised map
    does not hold its explainer: ``explainer=None``, which
    :func:`_refit_explainer` refuses, naming the fix. A map of a method
    that is not registered (a control) keeps every entry.
    """
    if saliency.method not in METHODS:
        return dict(saliency.method_params)
    own = set(inspect.signature(get_method(saliency.method)).parameters)
    own = (own - {"run"}) | {"random_state", "bands", "time_windows"}
    kw = {k: v for k, v in saliency.method_params.items() if k in own}
    if saliency.method == "freqmask_amortised":
        kw["explainer"] = None
    # a map of the labels or of given classes is remade for the same classes
    # (the record); a map of the prediction for the randomised model's own
    explained = saliency.diagnostics.get(EXPLAINED)
    if saliency.method_params.get("target") != "prediction" and explained is not None:
        kw["target"] = np.asarray(explained)
    return kw


def _random_like(saliency, random_state):
    """A uniform random map per epoch on the cells of ``saliency``.

    The control of the deletion checks: the same channels, bands (and
    windows) as the map, whatever ``method_params`` holds. Drawn as
    :func:`~mne_freqmask.evaluation.compare_methods` draws its ``"random"``
    map (``random_sample`` of the seed's RandomState), so a map whose
    parameters give the same grid gets the same control.
    """
    rng = check_random_state(random_state)
    data = rng.random_sample(saliency.shape).astype(np.float32)
    common = dict(
        method="random",
        events=None if saliency.events is None else saliency.events.copy(),
        event_id=saliency.event_id,
        metadata=None if saliency.metadata is None else saliency.metadata.copy(),
    )
    return saliency_like(saliency, data, **common)


def _check_same_cells(saliency, other):
    """The randomised model's map must have the cells of ``saliency``."""
    if other.shape != saliency.shape or other.band_names != saliency.band_names:
        raise ValueError(
            f"The map of the randomised model has shape {other.shape} (bands "
            f"{other.band_names}), the saliency {saliency.shape} (bands "
            f"{saliency.band_names}); explain_kw must give the bands, picks and "
            "windows of the saliency (or leave explain_kw=None to use those "
            "stored in saliency.method_params)."
        )


def _cells_line(res):
    """The verdict line of the cell test (a CellTestResult) in words.

    For a time-resolved map it also says how many clusters hold the
    significant cells and which windows they reach: a cluster is significant
    as a whole, so one cluster over every window says "salient, somewhere,
    at some time", and the strongest cells say where and when.
    """
    n_sig = int(res.significant.sum())
    tfr = res.times is not None
    kind = " channel x band x window" if tfr else ""
    line = (
        f"{n_sig} of {res.significant.size}{kind} cells reliably salient"
        f"{' in magnitude (signed map)' if res.absolute else ''} (p "
        f"< {res.alpha:g}, {res.correction}, {res.n_observations} observations)"
    )
    if not n_sig:
        return line
    if tfr:
        times = np.asarray(res.times)[res.significant.any(axis=(0, 1))]
        if res.correction == "cluster":
            n_clu = int((np.asarray(res.cluster_p_values) < res.alpha).sum())
            line += f" in {n_clu} cluster{'' if n_clu == 1 else 's'}"
        line += f" over windows at {times.min():.2f} to {times.max():.2f} s"
    t = np.where(res.significant, res.t, -np.inf)
    order = np.argsort(t, None)[::-1][: min(3, n_sig)]
    top = [
        res.cell_label(idx)
        for idx in zip(*np.unravel_index(order, t.shape), strict=True)
    ]
    return line + ", strongest: " + ", ".join(top)


def _refit_explainer(kw, epochs, rand_model, seed, device):
    """``kw`` with an amortised explainer refitted on the randomised model.

    The explainer never calls the model when explaining, so the check must
    retrain it against the randomised weights (same settings, on the
    checked epochs) for its map to depend on them. Other methods: ``kw``.
    """
    from mne_freqmask.amortised import FreqMaskExplainer

    old = kw.get("explainer")
    if "explainer" in kw and old is None:
        raise ValueError(
            "An amortised map does not hold its explainer, which the "
            "randomisation check refits on the randomised model; pass "
            "explain_kw=dict(explainer=explainer, bands=explainer.grid.bands, "
            "picks=explainer.picks)."
        )
    if not isinstance(old, FreqMaskExplainer) or old.net is None:
        return kw
    fresh = FreqMaskExplainer(
        hidden=old.hidden,
        n_layers=old.n_layers,
        l1_mask=old.l1_mask,
        n_donors=old.n_donors,
        objective=old.objective,
    )
    fit_kw = {
        k: v
        for k, v in old.fit_params.items()
        if k in ("n_epochs", "batch_size", "lr", "val_size", "patience")
    }
    fresh.fit(
        epochs,
        rand_model,
        bands=old.grid.bands,
        picks=old.picks,
        random_state=seed,
        device=device,
        verbose=False,
        **fit_kw,
    )
    return dict(kw, explainer=fresh)


def _interval_verdict(low, high, better):
    """``pass`` if the interval is beyond 0 on the ``better`` side."""
    if better == "below":
        low, high = -high, -low
    if low > 0:
        return "pass"
    if high < 0:
        return "fail"
    return "tie"


def _row(verdict, value, low, high, reference, line):
    return dict(
        verdict=verdict,
        value=float(value),
        ci_low=float(low),
        ci_high=float(high),
        reference=reference,
        line=line,
    )


def _mean_ci(values, ctx):
    """Mean with its bootstrap interval over the units (NaN: none)."""
    unit = _group_means(values, ctx.codes)
    m, low, high = float(values.mean()), np.nan, np.nan
    if ctx.n_boot > 0 and len(unit) > 1:
        m, low, high = bootstrap_ci(unit, n_boot=ctx.n_boot, ci=ctx.ci, random_state=0)
    return m, low, high, len(unit)


def _check_accuracy(ctx):
    """The model's accuracy with its interval, against chance."""
    src = _source(ctx.epochs)
    # the accuracy is on the labels, whatever class the curves score
    y = None if isinstance(ctx.y, str) else ctx.y
    labels = _labels(ctx.epochs, y, ctx.model, ctx.device, src)
    correct = (_predictions(ctx.model, src, ctx.device) == labels).astype(float)
    ctx.chance = chance = float(np.bincount(labels).max() / len(labels))
    ctx.accuracy = float(correct.mean())
    acc, low, high, n_units = _mean_ci(correct, ctx)
    verdict = "tie" if np.isnan(low) else "pass" if low > chance else "fail"
    if verdict == "pass":
        words = "above chance"
    elif verdict == "tie":
        words = "no interval (n_boot=0 or one epoch): no verdict"
    elif acc <= chance:
        words = (
            "at chance: the map explains a model that has not learnt the "
            "task on these epochs"
        )
    else:  # above chance, but the interval reaches it
        words = (
            "not shown above chance: it could be at chance (the interval "
            f"reaches {chance:.2f}; {n_units} "
            f"{'epochs' if ctx.codes is None else 'groups'}), so the other "
            "verdicts may be about a model that has not learnt the task; "
            "more held-out epochs would tell"
        )
    line = f"accuracy {acc:.2f} [{low:.2f}, {high:.2f}] {words}"
    row = _row(verdict, acc, low, high, f"chance {chance:.2f}", line)
    return {"accuracy": row}, {}


def _check_deletion(ctx):
    """MoRF and LeRF areas of the map against a random map on its cells."""
    scores = compare_methods(
        ctx.epochs,
        ctx.model,
        # the control on the map's own cells (and windows)
        {"map": ctx.saliency, "random": _random_like(ctx.saliency, ctx.random_state)},
        rankings=("instance",),
        operators=(ctx.operator,),
        orders=("morf", "lerf"),
        y=ctx.y,
        reference=ctx.reference,
        groups=ctx.groups,
        baseline="random",
        n_boot=max(ctx.n_boot, 1),
        ci=ctx.ci,
        random_state=ctx.random_state,
        device=ctx.device,
        verbose=False,
    )
    sel = scores[
        (scores["statistic"] == "area")
        & (scores["metric"] == "probability")
        & (scores["method"] == "map")
    ].set_index("order")
    rows = {}
    for order, better, text in (
        ("MoRF", "below", "removing its top cells first"),
        ("LeRF", "above", "removing its bottom cells first"),
    ):
        r = sel.loc[order]
        d, lo, hi = r["difference"], r["diff_ci_low"], r["diff_ci_high"]
        verdict = _interval_verdict(lo, hi, better)
        words = {"pass": "beats", "fail": "is worse than", "tie": "ties with"}
        rows[order.lower()] = _row(
            verdict,
            d,
            lo,
            hi,
            "random map",
            f"{text} ({ctx.operator} removal) {words[verdict]} a random ranking: "
            f"area {r['score']:.3f} vs {r['score'] - d:.3f}, difference {d:+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}]",
        )
    return rows, {"deletion": scores}


def _check_randomization(ctx):
    """Spearman of the map with the map of the fully randomised model."""
    saliency, epochs = ctx.saliency, ctx.epochs
    if not parameter_layers(ctx.model):
        raise ValueError("The model has no parameters to randomise.")
    seed = 0 if ctx.random_state is None else int(ctx.random_state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rand_model = untrained_copy(ctx.model)  # every layer re-initialised
    with warnings.catch_warnings():
        # a randomised model often predicts one class for every epoch:
        # expected here, not the user's model to check
        warnings.filterwarnings("ignore", "The model predicts class", RuntimeWarning)
        rand_kw = _refit_explainer(ctx.kw, epochs, rand_model, seed, ctx.device)
        rand = _explain(
            epochs, rand_model, saliency.method, rand_kw, ctx.random_state, ctx.device
        )
    _check_same_cells(saliency, rand)
    rho = np.array(
        [
            spearman(a, b)
            for a, b in zip(saliency.get_data(), rand.get_data(), strict=True)
        ]
    )
    m, lo, hi, _ = _mean_ci(rho, ctx)
    verdict = "tie"
    if hi < ctx.max_similarity:
        verdict = "pass"
    elif lo > ctx.max_similarity:
        verdict = "fail"
    words = {
        "pass": "the map changes when the model's weights are destroyed",
        "fail": "the map stays alike when the model's weights are destroyed: "
        "it explains the input more than the model",
        "tie": "the map changes only partly when the weights are destroyed",
    }[verdict]
    row = _row(
        verdict,
        m,
        lo,
        hi,
        f"at most {ctx.max_similarity:g}",
        f"Spearman with the randomised model's map {m:.2f} [{lo:.2f}, "
        f"{hi:.2f}]: {words}",
    )
    return {"randomization": row}, {"randomization": rho}


def _check_cells(ctx):
    """The cell permutation test: is any cell reliably salient?"""
    saliency = ctx.saliency
    cell_kw = dict(
        groups=ctx.groups,
        adjacency="auto" if _has_positions(saliency.info) else None,
        alpha=ctx.alpha,
        random_state=ctx.random_state,
        verbose=False,
    )
    # a signed map: its magnitude (see Notes); the signed test is kept
    # in the line, so that a reader sees why the two differ
    signed = is_signed(saliency.get_data())
    res = cell_permutation_test(saliency, absolute=signed, **cell_kw)
    details = {"cells": res}
    n_sig = int(res.significant.sum())
    line = _cells_line(res)
    if signed:
        res_signed = cell_permutation_test(saliency, **cell_kw)
        details["cells_signed"] = res_signed
        line += (
            f"; signed values: {int(res_signed.significant.sum())} cells "
            "reliably above the median (evidence for the explained class "
            "consistently across epochs)"
        )
    verdict = "pass" if n_sig > 0 else "fail"
    row = _row(verdict, n_sig, np.nan, np.nan, "at least one cell", line)
    return {"cells": row}, details


#: the check behind each name of CHECKS: ``f(ctx) -> (rows, details)``
_CHECK_FUNCS = {
    "accuracy": _check_accuracy,
    "deletion": _check_deletion,
    "randomization": _check_randomization,
    "cells": _check_cells,
}
