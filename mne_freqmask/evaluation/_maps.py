"""Channel x band maps from an explanation (shared by the evaluation modules)."""

import numpy as np
from mne import BaseEpochs, Evoked
from mne._fiff.pick import _picks_to_idx
from mne.utils import _validate_type

from mne_freqmask.saliency import SpectralSaliency


def _channel_band_map(obj, absolute, *, average_first=False):
    """``(map, ch_names, band_edges or None)``: epoch-averaged relevance.

    A SpectralSaliency gives a channel x band map; time-domain relevance
    (Epochs / Evoked) a channel x 1 map, summed over time. With
    ``average_first`` the epochs are averaged before the magnitude is taken,
    so that per-epoch maps and their ``.average()`` give the same map.
    """
    _validate_type(
        obj,
        (SpectralSaliency, BaseEpochs, Evoked),
        "saliency",
        "SpectralSaliency, Epochs or Evoked",
    )
    if isinstance(obj, SpectralSaliency):
        data = np.asarray(obj.get_data(), float)
        edges = np.asarray(obj.band_edges, float)
        if average_first and data.ndim == 3:
            data = data.mean(0)
        data = np.abs(data) if absolute else data
        if data.ndim == 3:
            data = data.mean(0)
        return data, list(obj.ch_names), edges
    data = obj.get_data(picks="data")
    ch_names = [obj.ch_names[i] for i in _data_idx(obj)]
    if average_first and data.ndim == 3:
        data = data.mean(0)
    data = np.abs(data) if absolute else data
    data = data.sum(-1)
    if data.ndim == 2:  # epochs
        data = data.mean(0)
    return data[:, None], ch_names, None


def _data_idx(inst):
    return _picks_to_idx(inst.info, "data", exclude=())


def _band_overlap(edges, lo, hi):
    """Fraction of each band inside ``[lo, hi]``."""
    overlap = np.clip(
        np.minimum(edges[:, 1], hi) - np.maximum(edges[:, 0], lo), 0, None
    )
    return overlap / np.maximum(edges[:, 1] - edges[:, 0], np.finfo(float).tiny)


def _random_map(epochs, explain_kw, rng):
    """A uniform random map per epoch on the grid ``explain_kw`` asks for.

    With ``time_windows`` in ``explain_kw`` the map is a
    :class:`~mne_freqmask.SpectralSaliencyTFR` on the same short-time grid
    as :func:`mne_freqmask.explain` builds, so it is scored over the same
    channel x band x window cells as the methods.
    """
    from mne_freqmask._saliency_cells import saliency_on_grid
    from mne_freqmask.spectral import explain_grid
    from mne_freqmask.utils._checks import _pick_indices, _picked_info

    picks = _pick_indices(epochs.info, explain_kw.get("picks"))
    common = dict(
        method="random",
        events=epochs.events.copy(),
        event_id=dict(epochs.event_id),
        metadata=None if epochs.metadata is None else epochs.metadata.copy(),
    )
    info = _picked_info(epochs.info, picks)
    grid = explain_grid(
        epochs.info["sfreq"],
        len(epochs.times),
        explain_kw.get("bands", 10),
        explain_kw.get("time_windows"),
        epochs.tmin,
    )
    data = rng.random_sample((len(epochs), len(picks), grid.n_bands))
    return saliency_on_grid(data.astype(np.float32), info, grid, **common)
