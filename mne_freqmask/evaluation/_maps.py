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
