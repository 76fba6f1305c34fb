"""The cells of a saliency map, alike for both containers.

What the evaluation needs to treat a whole-epoch
:class:`~mne_freqmask.SpectralSaliency` (channel x band cells) and a
:class:`~mne_freqmask.SpectralSaliencyTFR` (channel x band x window cells)
alike, without reading a saliency's private members or testing its class:
each function calls the container's own method.
"""

import numpy as np

from .spectral import ShortTimeGrid


def saliency_on_grid(data, info, grid, **kwargs):
    """The container of the cells of ``grid`` holding ``data``.

    A :class:`~mne_freqmask.SpectralSaliency` on a
    :class:`~mne_freqmask.FrequencyGrid`, a
    :class:`~mne_freqmask.SpectralSaliencyTFR` on a
    :class:`~mne_freqmask.spectral.ShortTimeGrid`; ``data`` may hold each
    channel's cells on one axis (the grid's flat layout). ``kwargs`` are the
    container's other parameters.
    """
    from .saliency import SpectralSaliency
    from .saliency_tfr import SpectralSaliencyTFR

    cls = SpectralSaliencyTFR if isinstance(grid, ShortTimeGrid) else SpectralSaliency
    return cls._from_grid(data, info, grid, **kwargs)


def saliency_like(saliency, data, **kwargs):
    """A map of the class and on the cells of ``saliency`` holding ``data``."""
    return type(saliency)._from_grid(data, saliency.info, saliency.grid, **kwargs)


def cell_shape(saliency):
    """``(n_channels, n_bands[, n_windows])``: the cells of one map."""
    return saliency.shape[saliency.dims.index("channel") :]


def flat_cells(saliency, values=None):
    """``values`` (default: a copy of the data) with each channel's cells on
    one axis: ``(..., n_channels, n_cells)``.

    Cell ``b * n_windows + w`` of a time-resolved map: the flat layout of its
    :class:`~mne_freqmask.spectral.ShortTimeGrid` (``bin_band``, ``expand``),
    so a cell of either grid is ranked, removed and counted alike.
    """
    values = saliency.get_data() if values is None else np.asarray(values)
    n_cell_axes = len(cell_shape(saliency)) - 1
    return values.reshape(values.shape[: values.ndim - n_cell_axes] + (-1,))


def cell_windows(saliency):
    """``(length, step)`` of the map's windows in s (``"unknown windows"``
    when the map does not know them; None: the whole epoch)."""
    return saliency._windows()


def cell_times(saliency):
    """The centres of the map's windows in s, a copy (None: the whole epoch)."""
    return saliency._cell_times()


def truth_cells(saliency, truth):
    """``truth.cells`` (a planted truth) on the channels, bands (and
    windows) of ``saliency``."""
    return truth.cells(saliency.ch_names, *saliency._truth_args())


def remake_windows(saliency, given):
    """The ``time_windows`` of :func:`~mne_freqmask.explain` that remake the
    cells of ``saliency`` from ``given`` (the caller's, or None); windows
    other than the map's are refused."""
    return saliency._remake_windows(given)
