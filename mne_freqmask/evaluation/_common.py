"""Helpers shared by the evaluation modules: cell ranks, the data source, scores.

Every evaluation function reads its epochs through
:class:`mne_freqmask._inputs.EpochsSource`, chunk by chunk, as
:func:`mne_freqmask.explain` does: epochs that are not preloaded are never
held in memory at once.
"""

import numpy as np
import torch
from mne.utils import _validate_type, check_random_state, warn

from mne_freqmask._inputs import EpochsSource, _ready_epochs, epochs_labels
from mne_freqmask._saliency_base import BaseSaliency
from mne_freqmask._saliency_cells import flat_cells
from mne_freqmask._saliency_utils import explained_classes
from mne_freqmask._torch_utils import (
    check_model,
    model_context,
    resolve_device,
)
from mne_freqmask.models import as_model
from mne_freqmask.utils._checks import _check_finite

#: maps ranked at a time by _cell_ranks: the sort's int64 indices and the
#: tie-breaking draws exist for one block only (at 100,000 SEED-shaped maps
#: of 10 bands the whole-array sort held 1.0-1.5 GB besides the map)
_RANK_BLOCK = 4096


def _cell_ranks(values, random_state=None):
    """Rank of each cell of each map (0 = most salient), last two axes.

    Ties are broken by position (stable sort) when ``random_state`` is None,
    else at random (seeded), so that a map with many equal cells (a saturated
    mask, a flat map) does not favour the first channels. Maps are ranked
    ``_RANK_BLOCK`` at a time, so memory beyond the int32 ranks stays bounded;
    the seeded draws are taken block after block from the same stream, which
    gives the same numbers as one draw of the whole array.
    """
    values = np.asarray(values)
    flat = values.reshape((-1,) + values.shape[-2:]).reshape(
        (-1, values.shape[-2] * values.shape[-1])
    )
    n_maps, n_cells = flat.shape
    rng = None if random_state is None else check_random_state(random_state)
    ranks = np.empty(flat.shape, np.int32)
    cells = np.arange(n_cells, dtype=np.int32)
    for start in range(0, max(n_maps, 1), _RANK_BLOCK):
        block = -flat[start : start + _RANK_BLOCK]
        if rng is None:
            order = np.argsort(block, axis=-1, kind="stable")
        else:
            tie = rng.random_sample(block.shape)
            order = np.lexsort((tie, block), axis=-1)
        np.put_along_axis(
            ranks[start : start + _RANK_BLOCK],
            order,
            np.broadcast_to(cells, order.shape),
            axis=-1,
        )
    return ranks.reshape(values.shape)


def _n_tied(values):
    """Number of cells of each map (last two axes) that share their value.

    A cell counts when at least one other cell of the same map has exactly its
    value; those cells are ordered by the tie-breaking, not by the map.
    """
    values = np.asarray(values)
    flat = np.sort(values.reshape(values.shape[:-2] + (-1,)), axis=-1)
    same = flat[..., 1:] == flat[..., :-1]
    tied = np.zeros(flat.shape, bool)
    tied[..., 1:] |= same
    tied[..., :-1] |= same
    return tied.sum(-1)


def _source(epochs, name="epochs"):
    """The epochs as an :class:`EpochsSource` (bad epochs dropped, not loaded)."""
    src = EpochsSource(_ready_epochs(epochs, name))
    if len(src) == 0:
        raise ValueError(f"{name} holds no epochs (all dropped?).")
    return src


def _chunks(src, name="epochs"):
    """Yield ``(slice, float32 data)`` of ``src``, each chunk checked finite."""
    for sl, xb in src.chunks():
        _check_finite(xb, name)
        yield sl, xb


def _n_classes(model, src, device):
    """The model's number of outputs, from two epochs (checked finite)."""
    dev = resolve_device(device, model)
    with model_context(model, dev):
        return check_model(model, src[:2], dev)


def _labels(epochs, y, model, device, src=None):
    """Class index of every epoch, checked against the model's outputs.

    Event codes become classes as in :func:`mne_freqmask.explain` (one
    place: :func:`mne_freqmask._inputs.event_classes`), so an evaluation
    never scores against a class the model cannot output.
    """
    src = _source(epochs) if src is None else src
    return epochs_labels(epochs, y, _n_classes(model, src, device))


def _check_map_finite(saliency):
    values = saliency.get_data()
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"The saliency holds {int(bad.sum())} NaN or infinite value(s) of "
            f"{values.size}, so its cells cannot be ranked; explain again (a "
            "model that returns NaN, or a non-finite lr, gives such maps) or "
            "replace them (e.g. np.nan_to_num) before evaluating."
        )


def _prepare(epochs, saliency, y, model, device):
    """Epochs source, labels, cell grid and explained-channel indices, checked.

    The grid is the map's :class:`~mne_freqmask.FrequencyGrid` (channel x band
    cells) or, for a :class:`~mne_freqmask.SpectralSaliencyTFR`, its
    :class:`~mne_freqmask.spectral.ShortTimeGrid` (channel x band x window
    cells, in the grid's flat layout: see :func:`_map_values`).
    """
    _validate_type(
        saliency,
        BaseSaliency,
        "saliency",
        "SpectralSaliency or SpectralSaliencyTFR",
    )
    _check_map_finite(saliency)
    epochs = _ready_epochs(epochs)
    src = _source(epochs)
    labels = _labels(epochs, _scored_y(saliency, y, len(src)), model, device, src)
    _check_grid(saliency)
    grid = saliency.grid
    n_times = src.shape[-1]
    if grid.n_times != n_times or not np.isclose(grid.sfreq, epochs.info["sfreq"]):
        freqs = np.fft.rfftfreq(n_times, 1.0 / epochs.info["sfreq"])
        fg = getattr(grid, "frequency_grid", grid)
        raise ValueError(
            "The saliency was computed on another frequency resolution "
            f"({fg.n_freqs} bins up to {fg.freqs[-1]:.1f} Hz, epochs of "
            f"{grid.n_times} samples at {grid.sfreq} Hz) than the epochs "
            f"({len(freqs)} bins up to {freqs[-1]:.1f} Hz, {n_times} samples); "
            "use epochs with the same duration and sampling rate."
            + (
                " A map collapsed over its windows (SpectralSaliencyTFR."
                "average(dim='times')) lives on one window's bins; evaluate "
                "the SpectralSaliencyTFR itself."
                if grid.n_times < n_times
                else ""
            )
        )
    missing = sorted(set(saliency.ch_names) - set(epochs.ch_names))
    if missing:
        raise ValueError(
            f"The saliency has channels {missing} that the epochs lack; use "
            "epochs with the explained channels."
        )
    picks = np.array([epochs.ch_names.index(ch) for ch in saliency.ch_names])
    return src, labels, grid, picks


def _scored_y(saliency, y, n_epochs, what="saliency"):
    """``y`` as the curves score it: ``"explained"`` becomes the class each
    epoch's map of ``saliency`` records (issue #29); anything else is as given."""
    if not isinstance(y, str):
        return y
    if y != "explained":
        raise ValueError(
            "y must be None (the labels), an array of class indices or "
            f'"explained" (the class each map explains), got {y!r}.'
        )
    classes = explained_classes(saliency, what)
    if len(classes) != n_epochs:
        raise ValueError(
            f"{what} explains {len(classes)} epochs and the epochs hold "
            f"{n_epochs}; evaluate the map on the epochs it explains."
        )
    return classes


def _check_grid(saliency):
    """A TFR map must know its windows: its cells are removed from the epochs."""
    if saliency.grid is None:
        raise ValueError(
            "The time-resolved saliency does not know its windows (win_length, "
            "hop, n_times, tmin), so its cells cannot be removed from the "
            "epochs; use the map returned by explain(..., time_windows=...)."
        )


def _find_channels(names, ch_names, what, param="channels"):
    """The channels of ``names`` present in ``ch_names`` (case-insensitive)."""
    upper = {ch.upper(): ch for ch in ch_names}
    found = [upper[ch.upper()] for ch in names if ch.upper() in upper]
    if not found:
        raise ValueError(
            f"None of the {what} {list(names)[:10]} is in the data (channels: "
            f"{list(ch_names)[:10]}...); pass {param}=."
        )
    return found


def _cell_power(src, grid, picks, labels=None, moments=None):
    """Mean rfft power of each (picked channel, cell of ``grid``), chunk by chunk.

    Per class of ``labels`` (a dict class -> ``(n_picks, n_bands)``), or over
    all epochs (``labels=None``: one array). ``moments`` (a
    :class:`~mne_freqmask.utils._moments.RunningMoments`) is updated with
    every chunk, for statistics of the data in the same pass.
    """
    classes = [None] if labels is None else [int(c) for c in np.unique(labels)]
    total = {c: np.zeros((len(picks), grid.n_bands)) for c in classes}
    for sl, xb in _chunks(src):
        if moments is not None:
            moments.update(xb)
        cells = grid.band_power(
            xb[:, picks].astype(np.float64), norm="backward", func=np.sum
        )
        for c in classes:
            total[c] += cells.sum(0) if c is None else cells[labels[sl] == c].sum(0)
    if labels is None:
        return total[None] / len(src)
    return {c: p / max((labels == c).sum(), 1) for c, p in total.items()}


def _map_values(saliency, level, n_epochs):
    """The map(s) the cells are ranked by: one group map or one per epoch.

    Shape ``([n_epochs, ]n_channels, n_cells)``: a time-resolved map's
    band x window cells are flattened in its grid's layout, so the ranking,
    the removal and the counts treat a cell of either grid alike.
    """
    values = flat_cells(saliency)
    if level == "group":
        return values.mean(0) if saliency.level == "instance" else values
    if saliency.level != "instance" or len(saliency) != n_epochs:
        raise ValueError(
            f'level="instance" needs one saliency map per epoch ({n_epochs}); '
            f'got {saliency!r}. Use level="group" for an averaged map.'
        )
    return values


def _per_epoch(values, sl):
    """The rows of per-epoch ``values`` for chunk ``sl`` (a group map as is)."""
    return values[sl] if values.ndim == 3 else values


def _check_model(model):
    return as_model(model)


#: explain() arguments an evaluation sets itself, never taken from explain_kw
_OWN_KW = {
    "method": "the method comes from the map or the function's method / methods "
    "argument (compare_methods: methods=dict(label=dict(method=..., **params)))",
    "device": "pass device= to the evaluation function",
    "verbose": "pass verbose= to the evaluation function",
}


def _check_explain_kw(explain_kw):
    """Refuse the keys of ``explain_kw`` that the evaluation sets itself."""
    for key, fix in _OWN_KW.items():
        if explain_kw is not None and key in explain_kw:
            raise ValueError(
                f"explain_kw holds {key}={explain_kw[key]!r}, but the evaluation "
                f"sets {key} itself: {fix}. Remove {key!r} from explain_kw."
            )


def _explain(epochs, model, method, explain_kw, random_state, device):
    """:func:`mne_freqmask.explain` with the evaluation's settings."""
    from mne_freqmask._explain import explain

    _check_explain_kw(explain_kw)
    kw = dict(explain_kw or {})
    kw.setdefault("random_state", random_state)
    return explain(epochs, model, method=method, device=device, verbose=False, **kw)


def _group_codes(epochs, groups):
    """Integer group of each epoch (None: one group per epoch)."""
    if groups is None:
        return None
    if isinstance(groups, str):
        md = epochs.metadata
        if md is None or groups not in md.columns:
            raise ValueError(
                f"groups={groups!r} is not a metadata column of the epochs; pass "
                "one group label per epoch instead."
            )
        groups = md[groups].to_numpy()
    groups = np.asarray(groups)
    if groups.shape != (len(epochs),):
        raise ValueError(
            f"groups must have one label per epoch ({len(epochs)}), got shape "
            f"{groups.shape}."
        )
    return np.unique(groups, return_inverse=True)[1]


def _group_means(values, codes):
    """Per-group means of per-epoch ``values`` (first axis), groups in order."""
    if codes is None:
        return values
    counts = np.bincount(codes)
    sums = np.zeros((len(counts),) + values.shape[1:])
    np.add.at(sums, codes, values)
    return sums / counts.reshape((-1,) + (1,) * (values.ndim - 1))


def _chance_test(correct, labels, n_classes):
    """Chance level (the larger class's share) and the one-sided binomial p."""
    from scipy.stats import binomtest

    counts = np.bincount(labels, minlength=n_classes)
    chance = float(counts.max() / counts.sum())
    k, n = int(correct.sum()), len(correct)
    return chance, float(binomtest(k, n, chance, alternative="greater").pvalue)


def _check_chance(correct, labels, n_classes):
    chance, p = _chance_test(correct, labels, n_classes)
    k, n = int(correct.sum()), len(correct)
    if p > 0.05:
        warn(
            f"The model is at chance on these epochs (accuracy {k / n:.2f}, "
            f"chance {chance:.2f}, binomial p={p:.2f}, {n} epochs): a model "
            "that has learned nothing proves nothing, whatever the verdict. Use "
            "held-out epochs the model classifies.",
            RuntimeWarning,
        )
    return chance


def _untrained_explanations(epochs, model, method, explain_kw, rng, n, device):
    """Explain ``epochs`` with ``n`` untrained copies of ``model`` (baselines).

    Each copy is built under its own seed drawn from ``rng`` (the global torch
    RNG is left as it was); the seed also drives its explanation. An untrained
    model may predict one class for every epoch, so that warning of
    :func:`mne_freqmask.explain` is silenced here. Yields the saliencies.
    """
    import warnings

    from mne_freqmask.models import untrained_copy

    for _ in range(int(n)):
        seed = int(rng.randint(0, 2**31 - 1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = untrained_copy(model).eval()
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", "The model predicts class", RuntimeWarning
            )
            yield _explain(epochs, fresh, method, explain_kw, seed, device)


def _class_names(epochs, labels):
    from mne_freqmask._inputs import event_classes

    try:
        classes = event_classes(epochs.event_id)
        inv = {code: name for name, code in epochs.event_id.items()}
        return {inv[code]: idx for code, idx in classes.items()}
    except Exception:  # y given with classes not in event_id
        return {str(c): int(c) for c in np.unique(labels)}


def _draw_donors(n_epochs, n_ref, same, rng, name="operator"):
    """Reference epoch lending its cells to each epoch (never itself)."""
    if not same:
        return rng.randint(0, n_ref, n_epochs)
    if n_ref < 2:
        raise ValueError(
            f'{name}="reference" without a reference needs at least 2 epochs '
            "(an epoch never receives its own cells); pass reference=."
        )
    return (np.arange(n_epochs) + rng.randint(1, n_ref, n_epochs)) % n_ref


def _reference_source(reference, src, epochs):
    if reference is None:
        return src
    ref = _source(reference, "reference")
    if ref.shape[1:] != src.shape[1:] or reference.ch_names != epochs.ch_names:
        raise ValueError(
            "reference must have the channels and number of samples of epochs; "
            f"got {ref.shape[1:]} vs {src.shape[1:]}."
        )
    if not np.isclose(reference.info["sfreq"], epochs.info["sfreq"]):
        raise ValueError(
            f"reference is sampled at {reference.info['sfreq']} Hz, epochs at "
            f"{epochs.info['sfreq']} Hz; resample one of them."
        )
    return ref


def _steps(n_cells, n_points, fractions):
    if fractions is None:
        _validate_type(n_points, "int-like", "n_points")
        if n_points < 2:
            raise ValueError(f"n_points must be at least 2, got {n_points}.")
        fractions = np.linspace(0, 1, int(n_points))
    fractions = np.asarray(fractions, float)
    if fractions.ndim != 1 or len(fractions) == 0:
        raise ValueError(f"fractions must be a 1-D list, got {fractions!r}.")
    if (fractions < 0).any() or (fractions > 1).any():
        raise ValueError(f"fractions must lie in [0, 1], got {fractions}.")
    return np.unique(np.round(fractions * n_cells).astype(int))
