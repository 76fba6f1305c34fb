"""The upper anchor of the deletion curves: a ranking searched for the metric.

A deletion (MoRF) curve needs an upper anchor as much as a lower one (the
random map): the best curve that *any* ranking of the cells reaches on the
same epochs. :func:`deletion_limit` approximates it per epoch with a
block-greedy search for the metric itself: from one deletion fraction to the
next, it grows the removed set by the cells whose removal, given the cells
already removed, lowers the true-class probability most (LeRF: least, or
raises it most). The search is itself a ranking of the cells, returned as a
:class:`~mne_freqmask.SpectralSaliency`, so
:func:`~mne_freqmask.evaluation.deletion_curves` and
:func:`~mne_freqmask.evaluation.compare_methods` score it like any method's
map, and a method's *share of the gap*
``(method - random) / (limit - random)`` says how much of the attainable
drop it captures.

Every candidate is removed with the package's one cell-removal operator
(:func:`~mne_freqmask.evaluation.remove_cells`), as the curves remove cells.
Under the distribution-preserving removal (``operator="reference"``) the
cells are chosen by the mean over ``n_draws`` donor epochs drawn with a
stream of their own, independent of the donors the score draws: a ranking
cannot know which donor the score will use.

Given a map (``guide``), the search only evaluates the ``n_candidates``
remaining cells that the map ranks highest at each fraction: a short search
guided by the map, at a fraction of the cost.
"""

import numpy as np
from mne.utils import _check_option, _validate_type, check_random_state, logger, verbose

from mne_freqmask._saliency_utils import EXPLAINED
from mne_freqmask._torch_utils import model_context, predict, resolve_device
from mne_freqmask.evaluation._common import (
    _cell_ranks,
    _check_model,
    _chunks,
    _draw_donors,
    _prepare,
    _reference_source,
    _scored_y,
    _steps,
)
from mne_freqmask.evaluation._maps import _random_map
from mne_freqmask.evaluation.compare import DEFAULT_FRACTIONS
from mne_freqmask.evaluation.removal import remove_cells
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.utils._docs import fill_doc
from mne_freqmask.utils._metrics import softmax

#: seed offset of the search's donor stream: never the score's stream, which
#: deletion_curves draws from ``random_state`` itself
_SEARCH_STREAM = 7919
#: model inputs removed and predicted at a time by the search
_ROWS = 256


def _template(epochs, saliency):
    """The map whose grid and channels the limit lives on."""
    if isinstance(saliency, SpectralSaliency):
        return saliency
    bands = 10 if saliency is None else saliency
    _validate_type(
        bands, ("int-like", dict, str), "saliency", "SpectralSaliency or bands"
    )
    return _random_map(epochs, dict(bands=bands), check_random_state(0))


@verbose
@fill_doc
def deletion_limit(
    epochs,
    model,
    saliency=None,
    *,
    order="morf",
    operator="zero",
    reference=None,
    fractions=DEFAULT_FRACTIONS,
    n_draws=4,
    n_candidates=None,
    rivals=None,
    y=None,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Rank each epoch's cells by a block-greedy search for the deletion curve.

    For each epoch, and each step from one fraction of ``fractions`` to the
    next (``k`` to ``k'`` cells), every cell not yet removed is removed in
    turn on top of the ``k`` removed ones; the ``k' - k`` cells that lower the
    true-class probability most (``order="morf"``) or least
    (``order="lerf"``: raise it most) join the removed set. The order of
    choice is the ranking; the cells beyond the last fraction follow in the
    order of their last evaluation. The result is the upper anchor of the
    MoRF (or LeRF) curve on these fractions: any method's map is a ranking
    too, so the share of the gap ``(method - random) / (limit - random)``
    measures how much of the drop a ranking can reach the method captures.
    It is a greedy search, so a lower bound on the best curve, not a proof
    of optimality.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    saliency : SpectralSaliency | int | dict | str | None
        The cells: those of a whole-epoch map (its grid and channels), or
        ``bands`` as in :func:`mne_freqmask.explain` (all data channels;
        None: 10 bands). With ``n_candidates`` the map (one per epoch) also
        guides the search.
    order : "morf" | "lerf"
        The curve the ranking is built for: ``"morf"`` (most relevant first:
        the removed cells lower the true-class probability most) or
        ``"lerf"`` (least relevant first: removing the cells ranked last
        lowers it least, or raises it).
    %(eval_operator)s
    %(eval_reference)s
    %(eval_fractions)s
        The fractions of the curve the ranking is searched for (default 0,
        5, 10, 20, 30 and 50 per cent of the cells, those of
        :func:`~mne_freqmask.evaluation.compare_methods`).
    n_draws : int
        With ``operator="reference"``: donor epochs per epoch whose mean
        true-class probability chooses the cells (default 4); drawn from a
        stream of their own, not the score's draws. Ignored (1) with
        ``"zero"``.
    n_candidates : int | None
        None (default): every remaining cell is a candidate at each step (the
        full search). An int: only the ``n_candidates`` remaining cells that
        ``saliency`` ranks highest (lowest for ``"lerf"``; at least the
        cells to choose) are evaluated: a search guided by the map, whose
        cells beyond the last fraction keep the map's order.
    rivals : list of SpectralSaliency | None
        Other rankings of the same epochs (e.g. every method's map) the
        search competes with: per epoch, the ranking (the search's or a
        rival's) whose curve has the best area on ``n_draws`` fresh donor
        draws (neither the search's, to which its ranking is fitted, nor the
        score's) is kept (``diagnostics["source"]``: 0 the search, ``i`` the ``i``-th
        rival). A greedy search misses cells that only matter together
        (removing either of two redundant cells alone changes nothing), which
        a map may see; with ``rivals`` the anchor is at least as good as
        every rival on the fresh draws (under ``"zero"``: on the score).
        Costs ``(len(rivals) + 1) * n_steps * n_draws`` more passes.
    %(y_scored)s
        With ``"explained"`` the class is that recorded by ``saliency`` (a
        map), and every rival must explain the same.
    random_state : None | int | instance of ~numpy.random.RandomState
        Seed of the search's donor draws (offset from the score's stream)
        and of the tie-breaking of a guiding map.
    %(device)s
    %(verbose)s

    Returns
    -------
    limit : SpectralSaliency
        One map per epoch whose values rank the cells (the number of cells
        for the first chosen, 1 for the last with ``"morf"``; reversed with
        ``"lerf"``), method ``"deletion_limit"``. ``limit.diagnostics``
        holds ``passes`` (model forward passes of the search per epoch),
        ``explained_class`` (the class searched for: the limit is scored
        with the other maps by ``y="explained"`` when it was searched with
        it) and ``probability`` (shape ``(n_epochs, n_steps)``: at each step, the
        true-class probability, mean over the search's draws, with the best
        candidate removed on top of the cells removed before; for ``"lerf"``
        a value above the original probability is a cell whose removal
        *raises* the prediction).

    See Also
    --------
    mne_freqmask.evaluation.deletion_curves
    mne_freqmask.evaluation.compare_methods

    Notes
    -----
    Cost: with ``n_cells`` cells and fractions ``k_0 < ... < k_m`` cells, the
    full search evaluates ``sum_i (n_cells - k_i)`` candidates for
    ``i < m`` (about ``m * n_cells`` minus the removed ones), each with
    ``n_draws`` forward passes under ``"reference"`` (one under
    ``"zero"``); no backward pass. At the default fractions and 190 cells:
    826 passes per epoch (zero), 3,304 (reference, 4 draws). The guided
    search costs ``sum_i max(n_candidates, k_{i+1} - k_i)`` times the draws.
    """
    _check_option("order", order, ("morf", "lerf"))
    _check_option("operator", operator, ("zero", "reference"))
    _validate_type(n_draws, "int-like", "n_draws")
    if n_draws < 1:
        raise ValueError(f"n_draws must be at least 1, got {n_draws}.")
    n_draws = int(n_draws) if operator == "reference" else 1
    _check_model(model)
    template = _template(epochs, saliency)
    if template.level != "instance":
        raise ValueError(
            "saliency must hold one map per epoch (or give bands); got a "
            "group-level map."
        )
    if isinstance(y, str) and not isinstance(saliency, SpectralSaliency):
        raise ValueError(
            'y="explained" searches for the class that saliency explains; pass '
            "the map (not bands) as saliency, or pass y."
        )
    src, labels, grid, picks = _prepare(epochs, template, y, model, device)
    n_ch, n_bands = len(picks), grid.n_bands
    n_cells = n_ch * n_bands
    ks = _steps(n_cells, None, fractions)
    if ks[0] != 0:
        ks = np.concatenate([[0], ks])
    rival_order = _rival_orders(rivals, y, labels, (n_ch, n_bands), order, random_state)
    guide = None
    if n_candidates is not None:
        _validate_type(n_candidates, "int-like", "n_candidates")
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be at least 1, got {n_candidates}.")
        if len(template) != len(src):
            raise ValueError(
                f"The guiding map has {len(template)} epochs, the epochs "
                f"{len(src)}; explain the same epochs."
            )
        rk = _cell_ranks(template.get_data(), random_state).reshape(len(src), -1)
        guide = rk if order == "morf" else n_cells - 1 - rk  # 0: first to try
    rng = check_random_state(random_state)
    search_rng = np.random.RandomState(rng.randint(0, 2**31 - 1) ^ _SEARCH_STREAM)
    if operator == "reference":
        ref = _reference_source(reference, src, epochs)
        # the search's draws, then (with rivals) fresh draws that choose
        # between the search and the rivals: the search's curve is fitted to
        # its own draws, so judged on them it would always look best
        donors = np.column_stack(
            [
                _draw_donors(len(src), len(ref), ref is src, search_rng)
                for _ in range(2 * n_draws if rivals else n_draws)
            ]
        )
    sign = 1.0 if order == "morf" else -1.0
    dev = resolve_device(device, model)
    values = np.empty((len(src), n_ch, n_bands), np.float32)
    passes = np.zeros(len(src), np.int64)
    curve = np.empty((len(src), len(ks) - 1), np.float32)
    source = np.zeros(len(src), np.int64)
    with model_context(model, dev):
        for sl, xb in _chunks(src):
            for j, x1 in enumerate(xb):
                e = sl.start + j
                fill = judge = None
                if operator == "reference":
                    uniq, inv = np.unique(donors[e], return_inverse=True)
                    fill = ref[uniq][inv]
                    fill, judge = fill[:n_draws], fill[n_draws:]
                chosen, p_k, n_pass = _search(
                    x1,
                    fill,
                    labels[e],
                    model,
                    grid,
                    picks,
                    dev,
                    ks,
                    sign,
                    None if guide is None else guide[e],
                    n_candidates,
                )
                if rival_order:
                    orders = [chosen] + [ro[e] for ro in rival_order]
                    best, n = _best_order(
                        x1, orders, judge, labels[e], model, grid, picks, dev, ks, sign
                    )
                    chosen, source[e], n_pass = orders[best], best, n_pass + n
                rank_value = np.empty(n_cells, np.float32)
                rank_value[chosen] = np.arange(n_cells, 0, -1)
                if order == "lerf":
                    rank_value = n_cells + 1 - rank_value
                values[e] = rank_value.reshape(n_ch, n_bands)
                passes[e], curve[e] = n_pass, p_k
    logger.info(
        f"deletion_limit ({order}, {operator}): {np.median(passes):.0f} passes "
        f"per epoch; mean true-class probability of the best candidate "
        + ", ".join(f"{p:.3f}" for p in curve.mean(0))
        + f" on top of {', '.join(str(int(k)) for k in ks[:-1])} removed cells"
    )
    return SpectralSaliency(
        values,
        template.info,
        grid,
        method="deletion_limit",
        method_params=dict(
            order=order,
            operator=operator,
            fractions=[float(k / n_cells) for k in ks],
            n_draws=n_draws,
            n_candidates=n_candidates,
            n_rivals=len(rival_order),
            target=_searched_for(template, y),
        ),
        events=template.events,
        event_id=template.event_id,
        metadata=template.metadata,
        diagnostics={
            "passes": passes,
            "probability": curve,
            "source": source,
            EXPLAINED: labels,
        },
    )


def _rival_orders(rivals, y, labels, shape, order, random_state):
    """Each rival map's cells, first removed first: rivals on the same
    epochs and cells (with ``y="explained"``, explaining the same class)."""
    _validate_type(rivals, (list, tuple, None), "rivals", "list of SpectralSaliency")
    rival_order = []
    for i, riv in enumerate(rivals or ()):
        _validate_type(riv, SpectralSaliency, f"rivals[{i}]")
        if riv.level != "instance" or len(riv) != len(labels):
            raise ValueError(
                f"rivals[{i}] must hold one map per epoch ({len(labels)}); got {riv!r}."
            )
        if riv.get_data().shape[1:] != shape:
            raise ValueError(
                f"rivals[{i}] has {riv.get_data().shape[1:]} channel x band "
                f"cells, the limit {shape}; explain with the same "
                "bands and channels."
            )
        if isinstance(y, str) and riv.method != "random":
            n_diff = int(
                (_scored_y(riv, y, len(labels), f"rivals[{i}]") != labels).sum()
            )
            if n_diff:
                raise ValueError(
                    f"rivals[{i}] explains another class than saliency on "
                    f'{n_diff} of {len(labels)} epochs, so y="explained" has no one '
                    "class to search for; explain the rivals with the target of "
                    "saliency, or pass y."
                )
        rk = _cell_ranks(riv.get_data(), random_state).reshape(len(labels), -1)
        order_of = np.argsort(rk, axis=1)  # cells, most salient first
        rival_order.append(order_of if order == "morf" else order_of[:, ::-1])
    return rival_order


def _searched_for(template, y):
    """How the class the limit is searched for was chosen (``target`` of
    ``method_params``, as :func:`mne_freqmask.explain` records it)."""
    if y is None:
        return "true"
    return template.method_params.get("target") if isinstance(y, str) else "given"


def _probability(x1, keep, fill, label, model, grid, picks, dev):
    """Mean true-class probability over the fills of each row of ``keep``.

    Rows are removed and predicted ``_ROWS`` model inputs at a time, so memory
    stays bounded whatever the number of cells.
    """
    n_fill = 1 if fill is None else len(fill)
    per = max(1, _ROWS // n_fill)
    out = []
    for start in range(0, len(keep), per):
        kb = np.repeat(keep[start : start + per], n_fill, axis=0)
        x = np.ascontiguousarray(np.broadcast_to(x1, (len(kb),) + x1.shape))
        fills = None if fill is None else np.tile(fill, (len(kb) // n_fill, 1, 1))
        xr = remove_cells(x, kb, grid, picks, dev, fill=fills)
        p = softmax(predict(model, xr, dev))[:, label]
        out.append(p.reshape(-1, n_fill).mean(1))
    return np.concatenate(out), len(keep) * n_fill


def _best_order(x1, orders, fill, label, model, grid, picks, dev, ks, sign):
    """Index of the cell order with the best curve area, and the passes used.

    The curve of each order at ``ks[1:]`` (``ks[0]`` is 0: the same for
    all), on the same fills, weighted as the trapezoid rule weights them.
    """
    n_ch, n_bands = len(picks), grid.n_bands
    keep = np.ones((len(orders), len(ks) - 1, n_ch * n_bands), bool)
    for o, cells in enumerate(orders):
        for i, k in enumerate(ks[1:]):
            keep[o, i, np.asarray(cells)[:k]] = False
    p, n = _probability(
        x1, keep.reshape(-1, n_ch, n_bands), fill, label, model, grid, picks, dev
    )
    f = np.asarray(ks, float)
    w = np.zeros(len(f))
    w[1:] += np.diff(f) / 2
    w[:-1] += np.diff(f) / 2
    area = p.reshape(len(orders), -1) @ w[1:]
    return int(np.argmin(sign * area)), n


def _search(x1, fill, label, model, grid, picks, dev, ks, sign, guide, n_cand):
    """Cells in order of choice, the probability at each ``k``, passes used."""
    n_ch, n_bands = len(picks), grid.n_bands
    n_cells = n_ch * n_bands
    removed = np.zeros(n_cells, bool)
    chosen, p_k, n_pass = [], np.empty(len(ks) - 1, np.float32), 0
    last = None  # (candidates, probabilities) of the last evaluation
    for i in range(1, len(ks)):
        size = int(ks[i] - ks[i - 1])
        cand = np.flatnonzero(~removed)
        if guide is not None:
            cand = cand[np.argsort(guide[cand], kind="stable")]
            cand = cand[: max(int(n_cand), size)]
        keep = np.tile(~removed, (len(cand), 1))
        keep[np.arange(len(cand)), cand] = False
        p, n = _probability(
            x1, keep.reshape(-1, n_ch, n_bands), fill, label, model, grid, picks, dev
        )
        n_pass += n
        # MoRF: lowest probability first; LeRF: highest first (stable: ties
        # keep the candidates' order)
        by = np.argsort(sign * p, kind="stable")
        best = cand[by][:size]
        p_k[i - 1] = p[by[0]]
        chosen.extend(best.tolist())
        removed[best] = True
        last = (cand, p)
    # the rest: in the order of their last evaluation, then any never tried
    # (guided search) in the guide's order, then by position
    rest = []
    if last is not None:
        cand, p = last
        rest = [c for c in cand[np.argsort(sign * p, kind="stable")] if not removed[c]]
    seen = set(chosen) | set(rest)
    tail = np.arange(n_cells) if guide is None else np.argsort(guide, kind="stable")
    rest += [int(c) for c in tail if c not in seen]
    return np.asarray(chosen + rest, int), p_k, n_pass
