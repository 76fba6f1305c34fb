"""The spectral grid: rfft bins, bands, and band <-> bin expansion.

This module imports no torch, so :class:`~mne_freqmask.SpectralSaliency` can
use it; the torch helpers that act on spectra live in :mod:`._torch_utils`.
"""

import numpy as np
from mne.utils import _validate_type

#: The canonical EEG bands (Hz), as in :func:`mne.viz.plot_epochs_psd_topomap`.
CANONICAL_BANDS = {
    "delta": (0.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "beta": (12.0, 30.0),
    "gamma": (30.0, 45.0),
}


class FrequencyGrid:
    """The channel x band grid of an explanation.

    Parameters
    ----------
    sfreq : float
        Sampling frequency in Hz.
    n_times : int
        Number of time samples of an epoch.
    bands : int | dict | str
        See :func:`mne_freqmask.explain`.

    Attributes
    ----------
    freqs : ndarray, shape (n_freqs,)
        Frequencies of the rfft bins in Hz (``np.fft.rfftfreq``).
    band_names : list of str
        Band names.
    band_edges : ndarray, shape (n_bands, 2)
        ``(fmin, fmax)`` of each band in Hz, as requested (for an int, the edges
        halfway between the bins that border each segment).
    bin_band : ndarray of int, shape (n_freqs,)
        Band index of each bin, ``-1`` for bins in no band.
    """

    def __init__(self, sfreq, n_times, bands=10):
        self.sfreq = float(sfreq)
        self.n_times = int(n_times)
        if self.n_times < 2:
            raise ValueError(f"Epochs need at least 2 samples, got {n_times}.")
        self.freqs = np.fft.rfftfreq(self.n_times, 1.0 / self.sfreq)
        nyq = self.sfreq / 2.0
        self.bin_band, self.band_names, self.band_edges = _make_bands(
            self.freqs, nyq, bands
        )

    @classmethod
    def from_edges(cls, sfreq, n_times, band_names, band_edges):
        """Rebuild a grid from its band names and ``(fmin, fmax)`` edges.

        Bins are assigned to bands as for a dict of bands, without checking
        the edges again; this is how a saved explanation gets its grid back
        (see :attr:`mne_freqmask.SpectralSaliency.grid`).

        Parameters
        ----------
        sfreq : float
            Sampling frequency in Hz.
        n_times : int
            Number of time samples of an epoch.
        band_names : list of str
            Name of each band.
        band_edges : array-like, shape (n_bands, 2)
            ``(fmin, fmax)`` of each band in Hz.

        Returns
        -------
        grid : FrequencyGrid
            The grid.
        """
        grid = cls.__new__(cls)
        grid.sfreq = float(sfreq)
        grid.n_times = int(n_times)
        grid.freqs = np.fft.rfftfreq(grid.n_times, 1.0 / grid.sfreq)
        grid.band_names = list(band_names)
        grid.band_edges = np.array(band_edges, float).reshape(-1, 2)
        grid.bin_band = _assign_bins(
            grid.freqs, grid.sfreq / 2.0, grid.band_names, grid.band_edges
        )
        return grid

    @property
    def n_freqs(self):
        """Number of rfft bins."""
        return len(self.freqs)

    @property
    def n_bands(self):
        """Number of bands."""
        return len(self.band_names)

    @property
    def bands(self):
        """Dict of band name -> (fmin, fmax) in Hz."""
        return {
            name: (float(lo), float(hi))
            for name, (lo, hi) in zip(self.band_names, self.band_edges, strict=True)
        }

    def expand(self, values, fill=1.0):
        """Expand ``(..., n_bands)`` band values to ``(..., n_freqs)`` bins.

        Parameters
        ----------
        values : array-like, shape (..., n_bands)
            One value per band.
        fill : float
            The value of bins that belong to no band.

        Returns
        -------
        expanded : ndarray, shape (..., n_freqs)
            Each band's value repeated over its bins.
        """
        values = np.asarray(values)
        padded = np.concatenate(
            [values, np.full(values.shape[:-1] + (1,), fill, values.dtype)], axis=-1
        )
        return padded[..., self.bin_band]  # -1 picks the fill column

    def collapse(self, values, func=np.sum):
        """Aggregate ``(..., n_freqs)`` bin values to ``(..., n_bands)``.

        Parameters
        ----------
        values : array-like, shape (..., n_freqs)
            One value per rfft bin.
        func : callable
            Reduction applied to the bins of each band, called as
            ``func(values, axis=-1)`` (default :func:`numpy.sum`).

        Returns
        -------
        collapsed : ndarray, shape (..., n_bands)
            One value per band; bins in no band are left out.
        """
        values = np.asarray(values)
        out = np.empty(values.shape[:-1] + (self.n_bands,), values.dtype)
        for bi in range(self.n_bands):
            out[..., bi] = func(values[..., self.bin_band == bi], axis=-1)
        return out

    def __repr__(self):
        return (
            f"<FrequencyGrid | {self.n_bands} bands over {self.n_freqs} bins, "
            f"{self.freqs[0]:.1f}-{self.freqs[-1]:.1f} Hz, "
            f"df={self.freqs[1] - self.freqs[0]:.3g} Hz>"
        )


def _make_bands(freqs, nyq, bands):
    _validate_type(bands, ("int-like", dict, str), "bands", "int, dict or str")
    n_freqs = len(freqs)
    if isinstance(bands, str):
        if bands != "canonical":
            raise ValueError(
                f'bands must be an int, a dict or "canonical", got {bands!r}.'
            )
        bands = {
            name: (lo, min(hi, nyq))
            for name, (lo, hi) in CANONICAL_BANDS.items()
            if lo < nyq
        }
    if not isinstance(bands, dict):
        n_bands = int(bands)
        if not 1 <= n_bands <= n_freqs:
            raise ValueError(
                f"bands must be between 1 and the number of rfft bins "
                f"({n_freqs}), got {n_bands}."
            )
        segments = np.array_split(np.arange(n_freqs), n_bands)
        bin_band = np.concatenate(
            [np.full(len(seg), bi) for bi, seg in enumerate(segments)]
        ).astype(int)
        df = freqs[1] - freqs[0]
        edges = np.array(
            [
                [max(freqs[seg[0]] - df / 2, 0.0), min(freqs[seg[-1]] + df / 2, nyq)]
                for seg in segments
            ]
        )
        names = [f"{lo:.1f}-{hi:.1f} Hz" for lo, hi in edges]
        return bin_band, names, edges
    if len(bands) == 0:
        raise ValueError("bands is an empty dict; give at least one (fmin, fmax).")
    names, edges = [], []
    for name, edge in bands.items():
        _validate_type(name, str, "band name")
        try:
            lo, hi = (float(e) for e in edge)
        except (TypeError, ValueError):
            raise ValueError(
                f"Band {name!r} must be a (fmin, fmax) pair in Hz, got {edge!r}."
            ) from None
        if not 0 <= lo < hi:
            raise ValueError(f"Band {name!r} needs 0 <= fmin < fmax, got ({lo}, {hi}).")
        if lo >= nyq:
            raise ValueError(
                f"Band {name!r} ({lo}-{hi} Hz) starts at or beyond the Nyquist "
                f"frequency ({nyq} Hz); remove it or use data with a higher "
                "sampling rate."
            )
        names.append(name)
        edges.append((lo, hi))
    edges = np.array(edges)
    order = np.argsort(edges[:, 0])
    for a, b in zip(order[:-1], order[1:], strict=True):
        if edges[b, 0] < edges[a, 1]:
            raise ValueError(
                f"Bands {names[a]!r} {tuple(edges[a])} and {names[b]!r} "
                f"{tuple(edges[b])} overlap; make them disjoint."
            )
    return _assign_bins(freqs, nyq, names, edges), names, edges


def _assign_bins(freqs, nyq, names, edges):
    """Band index of each bin (``-1``: in no band) for ``(fmin, fmax)`` edges."""
    bin_band = np.full(len(freqs), -1, int)
    df = freqs[1] - freqs[0]
    for bi, (lo, hi) in enumerate(edges):
        inside = (freqs >= lo) & (freqs < hi)
        if hi >= nyq:
            inside |= freqs >= lo
        if not inside.any():
            raise ValueError(
                f"Band {names[bi]!r} ({lo}-{hi} Hz) contains no frequency bin at "
                f"this resolution (bins every {df:.3g} Hz); widen the band or use "
                "longer epochs."
            )
        bin_band[inside] = bi
    return bin_band


def band_indices(band_names, bands=None):
    """Indices of the bands named in ``bands``, in the order given.

    Parameters
    ----------
    band_names : list of str
        All band names (e.g. ``saliency.band_names`` or ``grid.band_names``).
    bands : None | str | list of str
        The bands to select, by name; ``None`` selects all bands.

    Returns
    -------
    idx : ndarray of int
        The index of each selected band in ``band_names``.
    """
    band_names = list(band_names)
    if bands is None:
        return np.arange(len(band_names))
    _validate_type(bands, (str, list, tuple), "bands", "None, str or list of str")
    bands = [bands] if isinstance(bands, str) else list(bands)
    if len(bands) == 0:
        raise ValueError("bands is empty; give at least one band name.")
    unknown = [b for b in bands if b not in band_names]
    if unknown:
        raise ValueError(
            f"Unknown band(s) {unknown}; this saliency has bands {band_names}."
        )
    if len(set(bands)) != len(bands):
        raise ValueError(f"bands contains duplicates: {bands}.")
    return np.array([band_names.index(b) for b in bands], int)
