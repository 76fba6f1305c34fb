"""The maps :func:`~mne_freqmask.evaluation.check_explanation` compares with.

Whole-epoch (channel x band) and time-resolved (channel x band x window) maps
alike: the parameters to explain the epochs again (with the map's own
windows), the random control on the map's own cells, and the words that
describe the cells.
"""

import numpy as np
from mne.utils import check_random_state

from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.saliency_tfr import SpectralSaliencyTFR
from mne_freqmask.spectral import short_time_grid


def _windows_words(saliency):
    """``"0.5 s windows every 0.25 s"`` for a TFR map, ``None`` otherwise."""
    if not isinstance(saliency, SpectralSaliencyTFR):
        return None
    length, step = saliency.time_windows
    return f"{length:g} s windows every {step:g} s"


def _check_grid(saliency):
    """A TFR map must know its windows: they are removed from the epochs."""
    if isinstance(saliency, SpectralSaliencyTFR) and saliency.grid is None:
        raise ValueError(
            "The time-resolved saliency does not know its windows (win_length, "
            "hop, n_times, tmin), so it cannot be checked on the epochs; use "
            "the map returned by explain(..., time_windows=...)."
        )


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
    given = kw.get("time_windows")
    if not isinstance(saliency, SpectralSaliencyTFR):
        if given is not None:
            raise ValueError(
                f"explain_kw has time_windows={given!r}, but the saliency is a "
                "whole-epoch SpectralSaliency (channel x band cells); check a "
                "SpectralSaliencyTFR from explain(..., time_windows=...) "
                "instead, or leave time_windows out of explain_kw."
            )
        kw.pop("time_windows", None)
        return kw
    _check_grid(saliency)
    grid = saliency.grid
    if given is None:
        kw["time_windows"] = saliency.time_windows
        return kw
    try:  # the windows in samples (one band: any window has its bins)
        other = short_time_grid(grid.sfreq, grid.n_times, 1, given, grid.tmin)
        same = (other.win_length, other.hop) == (grid.win_length, grid.hop)
    except ValueError:
        same = False
    if not same:
        raise ValueError(
            f"explain_kw has time_windows={given!r}, but the saliency was "
            f"computed on {_windows_words(saliency)} ({grid.win_length} and "
            f"{grid.hop} samples); leave time_windows out of explain_kw (the "
            "map's windows are used) or give "
            f"time_windows={tuple(saliency.time_windows)}."
        )
    return kw


def _stored_kw(saliency):
    """The entries of ``saliency.method_params`` that :func:`explain` takes.

    The method's keywords and ``explain``'s own (bands, windows); entries
    that describe the map (``aggregation``, ``baseline``...) are left out:
    passed back they were refused as unknown parameters. An amortised map
    does not hold its explainer: ``explainer=None``, which
    :func:`_refit_explainer` refuses, naming the fix. A map of a method
    that is not registered (a control) keeps every entry.
    """
    import inspect

    from mne_freqmask.methods import METHODS, get_method

    if saliency.method not in METHODS:
        return dict(saliency.method_params)
    own = set(inspect.signature(get_method(saliency.method)).parameters)
    own = (own - {"inp", "grid", "model", "device", "chunk_size"}) | {
        "bands",
        "time_windows",
    }
    kw = {k: v for k, v in saliency.method_params.items() if k in own}
    if saliency.method == "freqmask_amortised":
        kw["explainer"] = None
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
    if not isinstance(saliency, SpectralSaliencyTFR):
        return SpectralSaliency(data, saliency.info, saliency.grid, **common)
    return SpectralSaliencyTFR._from_grid(data, saliency.info, saliency.grid, **common)


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
