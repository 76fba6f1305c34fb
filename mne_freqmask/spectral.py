"""The spectral grids: rfft bins or STFT coefficients, bands, and the cells.

A grid owns its transform (``spectrum`` / ``inverse``: the rfft for a
:class:`FrequencyGrid`, the STFT for a :class:`ShortTimeGrid`), band <-> bin
expansion, band power and the one cell perturbation ``blend`` (written once
in :mod:`._cells`). This module imports no torch at import time, so
:class:`~mne_freqmask.SpectralSaliency` can use it.
"""

import numpy as np
from mne.utils import _validate_type

from mne_freqmask._cells import CellOps
from mne_freqmask.utils._docs import fill_doc

#: The canonical EEG bands (Hz), as in :func:`mne.viz.plot_epochs_psd_topomap`.
CANONICAL_BANDS = {
    "delta": (0.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "beta": (12.0, 30.0),
    "gamma": (30.0, 45.0),
}


@fill_doc
class FrequencyGrid(CellOps):
    """The channel x band grid of an explanation.

    Parameters
    ----------
    %(grid_sfreq_n_times)s
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
    @fill_doc
    def from_edges(cls, sfreq, n_times, band_names, band_edges):
        """Rebuild a grid from its band names and ``(fmin, fmax)`` edges.

        Bins are assigned to bands as for a dict of bands, without checking
        the edges again; this is how a saved explanation gets its grid back
        (see :attr:`mne_freqmask.SpectralSaliency.grid`).

        Parameters
        ----------
        %(grid_sfreq_n_times)s
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

    @property
    def short_time(self):
        """Whether the grid has more than one (whole-epoch) window: never."""
        return False

    def _forward(self, x, scale, norm):
        import torch

        from mne_freqmask._torch_utils import spectral_dtype

        if norm == "ortho":
            x = x.to(spectral_dtype(x.dtype))
            return torch.fft.rfft(x / scale, dim=-1, norm="ortho")
        return torch.fft.rfft(x, dim=-1)

    def _backward(self, xf, n_times, scale, norm):
        import torch

        if norm == "ortho":
            return torch.fft.irfft(xf, n=n_times, dim=-1, norm="ortho") * scale
        return torch.fft.irfft(xf, n=n_times, dim=-1)

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
        lo, hi = _float_pair(edge, f"Band {name!r} must be a (fmin, fmax) pair in Hz")
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


def _float_pair(value, what):
    """``value`` as two floats, or a ValueError saying ``what``, then what
    ``value`` was."""
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}, got {value!r}.") from None
    return first, second


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


def as_grid(grid, n_times):
    """``grid``, or for None the whole-epoch grid of ``n_times`` samples.

    The transform of the whole-epoch grid is the rfft whatever its sampling
    rate and bands (one band here), so a caller without a grid gets the rfft.
    """
    return FrequencyGrid(1.0, n_times, 1) if grid is None else grid


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


@fill_doc
class ShortTimeGrid(CellOps):
    """The channel x band x window grid of a short-time explanation.

    The short-time Fourier transform (STFT) of an epoch has one spectrum per
    window; the explanation's cells are channel x band x window. Windows are
    periodic Hann windows of ``win_length`` samples, ``hop`` samples apart,
    centred on the samples ``0, hop, 2 hop, ...`` of the epoch (as
    ``torch.stft(center=True)``, reflecting the epoch at its edges), so
    there are ``1 + n_times // hop`` windows. With ``hop`` at most half the
    window, the squared windows overlap-add to a positive sum everywhere
    (the NOLA condition), so the inverse transform gives the epoch back.

    A window at least as long as the epoch is the whole-epoch case: one
    rectangular window, the epoch's rfft, the same cells and numbers as a
    :class:`FrequencyGrid` (``whole`` is then True).

    Parameters
    ----------
    %(grid_sfreq_n_times)s
    bands : int | dict | str
        See :func:`mne_freqmask.explain`; applied to the bins of one window.
    win_length : int
        Window length in samples.
    hop : int
        Samples between the centres of consecutive windows; at most
        ``win_length // 2`` (ignored for a whole-epoch window).
    tmin : float
        Time of the epoch's first sample in seconds (``epochs.tmin``), so
        that ``times`` are those of the epochs.

    Attributes
    ----------
    frequency_grid : FrequencyGrid
        The bins and bands of one window.
    times : ndarray, shape (n_windows,)
        Centre of each window in seconds.
    n_freqs, n_bands, bin_band
        The flat view that the methods see (see Notes).

    Notes
    -----
    A method sees the STFT of a channel flattened to ``n_freqs = n_bins x
    n_windows`` coefficients (bin-major: coefficient ``f * n_windows + w``
    is bin ``f`` of window ``w``) and the cells flattened to ``n_bands =
    n_bands_per_window x n_windows`` "bands" (cell ``b * n_windows + w``),
    so every method written for a :class:`FrequencyGrid` (``expand``,
    ``collapse``, ``bin_band``) runs on the short-time grid unchanged; its
    result reshapes to ``(..., n_bands_per_window, n_windows)``.
    """

    def __init__(self, sfreq, n_times, bands, win_length, hop, tmin=0.0):
        self.sfreq = float(sfreq)
        self.n_times = int(n_times)
        self.tmin = float(tmin)
        win_length, hop = int(win_length), int(hop)
        self.whole = win_length >= self.n_times
        if self.whole:
            win_length = hop = self.n_times
        elif win_length < 2 or not 1 <= hop <= win_length // 2:
            raise ValueError(
                f"Short-time windows need at least 2 samples and a step between "
                f"1 sample and half the window ({win_length // 2} samples) so "
                f"that the inverse STFT exists (NOLA); got {win_length} and "
                f"{hop} samples."
            )
        self.win_length, self.hop = win_length, hop
        self.frequency_grid = FrequencyGrid(self.sfreq, win_length, bands)
        if self.whole:
            self.times = np.array([self.tmin + (self.n_times - 1) / 2 / self.sfreq])
        else:
            n_win = 1 + self.n_times // hop
            self.times = self.tmin + np.arange(n_win) * hop / self.sfreq
        n_win = len(self.times)
        fg = self.frequency_grid
        cell = np.where(fg.bin_band < 0, -1, fg.bin_band * n_win)
        self.bin_band = (
            np.where(cell[:, None] < 0, -1, cell[:, None] + np.arange(n_win))
        ).ravel()

    @property
    def short_time(self):
        """Whether the grid has more than one (whole-epoch) window."""
        return not self.whole

    def _forward(self, x, scale, norm):
        if self.whole:  # one window: the rfft, the same numbers
            return self.frequency_grid._forward(x, scale, norm)
        import torch

        from mne_freqmask._torch_utils import spectral_dtype

        x = x.to(spectral_dtype(x.dtype))
        if norm == "ortho":
            x = x / scale
        xf = torch.stft(
            x.reshape(-1, x.shape[-1]),
            self.win_length,
            hop_length=self.hop,
            window=self._window(x.dtype, x.device),
            center=True,
            pad_mode="reflect",
            normalized=norm == "ortho",
            onesided=True,
            return_complex=True,
        )
        return xf.reshape(*x.shape[:-1], -1)

    def _backward(self, xf, n_times, scale, norm):
        if self.whole:
            return self.frequency_grid._backward(xf, n_times, scale, norm)
        import torch

        lead = xf.shape[:-1]
        x = torch.istft(
            xf.reshape(-1, self.frequency_grid.n_freqs, self.n_windows),
            self.win_length,
            hop_length=self.hop,
            window=self._window(xf.real.dtype, xf.device),
            center=True,
            normalized=norm == "ortho",
            onesided=True,
            length=n_times,
        )
        x = x.reshape(*lead, n_times)
        return x * scale if norm == "ortho" else x

    def _window(self, dtype, device):
        import torch

        return torch.hann_window(
            self.win_length, periodic=True, dtype=dtype, device=device
        )

    @property
    def n_windows(self):
        """Number of windows."""
        return len(self.times)

    @property
    def n_freqs(self):
        """Number of STFT coefficients per channel (bins x windows)."""
        return self.frequency_grid.n_freqs * self.n_windows

    @property
    def n_bands(self):
        """Number of cells per channel (bands x windows)."""
        return self.frequency_grid.n_bands * self.n_windows

    @property
    def window_edges(self):
        """``(start, stop)`` of each window in seconds, clipped to the epoch."""
        return window_edges(
            self.times, self.win_length, self.sfreq, self.tmin, self.n_times
        )

    def __repr__(self):
        fg = self.frequency_grid
        return (
            f"<ShortTimeGrid | {fg.n_bands} bands x {self.n_windows} windows of "
            f"{self.win_length / self.sfreq:.3g} s (step {self.hop / self.sfreq:.3g}"
            f" s), {fg.freqs[0]:.1f}-{fg.freqs[-1]:.1f} Hz>"
        )


def window_edges(times, win_length, sfreq, tmin, n_times):
    """``(start, stop)`` in seconds of windows centred at ``times``.

    Parameters
    ----------
    times : array-like, shape (n_windows,)
        Window centres in seconds.
    win_length : int
        Window length in samples.
    sfreq : float
        Sampling frequency in Hz.
    tmin : float
        Time of the epoch's first sample in seconds.
    n_times : int
        Samples per epoch.

    Returns
    -------
    edges : ndarray, shape (n_windows, 2)
        ``times -+ win_length / 2 / sfreq``, clipped to the epoch.
    """
    times = np.asarray(times, float)
    half = win_length / 2 / sfreq
    last = tmin + (n_times - 1) / sfreq
    return np.column_stack(
        [np.maximum(times - half, tmin), np.minimum(times + half, last)]
    )


@fill_doc
def short_time_grid(sfreq, n_times, bands, time_windows, tmin=0.0):
    """The :class:`ShortTimeGrid` of ``explain(..., time_windows=...)``.

    Parameters
    ----------
    %(grid_sfreq_n_times)s
    bands : int | dict | str
        See :func:`mne_freqmask.explain`.
    time_windows : tuple of float | "auto"
        ``(length, step)`` in seconds (rounded to samples), or ``"auto"``: a
        window a quarter of the epoch long, a step of half a window.
    tmin : float
        Time of the first sample in seconds.

    Returns
    -------
    grid : ShortTimeGrid
        The grid.
    """
    time_windows = parse_time_windows(time_windows)
    if time_windows == "auto":
        win = max(int(n_times) // 4, 2)
        return ShortTimeGrid(sfreq, n_times, bands, win, max(win // 2, 1), tmin)
    length, step = time_windows
    win = int(round(length * sfreq))
    hop = int(round(step * sfreq))
    return ShortTimeGrid(sfreq, n_times, bands, win, hop, tmin)


def parse_time_windows(time_windows):
    """Validate the form of ``time_windows`` (whatever the sampling).

    Parameters
    ----------
    time_windows : tuple of float | "auto"
        See :func:`short_time_grid`.

    Returns
    -------
    time_windows : "auto" | tuple of float
        ``"auto"``, or ``(length, step)`` in seconds, both positive. Whether
        the step is at most half the window (NOLA) is decided in samples, by
        :class:`ShortTimeGrid`.
    """
    if isinstance(time_windows, str):
        if time_windows != "auto":
            raise ValueError(
                'time_windows must be None, "auto" or (length, step) in seconds, '
                f"got {time_windows!r}."
            )
        return "auto"
    _validate_type(time_windows, (tuple, list), "time_windows", "tuple or 'auto'")
    length, step = _float_pair(
        time_windows, "time_windows must be (length, step) in seconds"
    )
    if not (length > 0 and step > 0):
        raise ValueError(
            f"time_windows needs length > 0 and step > 0, got {time_windows}."
        )
    return length, step


def explain_grid(sfreq, n_times, bands, time_windows=None, tmin=0.0):
    """The grid of ``explain(..., bands=bands, time_windows=time_windows)``.

    A :class:`FrequencyGrid` for ``time_windows=None`` (channel x band
    cells), else the :func:`short_time_grid` of the windows.
    """
    if time_windows is None:
        return FrequencyGrid(sfreq, n_times, bands)
    return short_time_grid(sfreq, n_times, bands, time_windows, tmin)


def check_time_windows(time_windows):
    """Refuse ``time_windows`` that :func:`mne_freqmask.explain` would refuse
    at any sampling, before any work (the epochs decide the samples).

    The form, then the step rule (step at most half the window) on a fine
    sampling (10 kHz) and an epoch one sample longer than the window: a grid
    of a few windows. Returns ``"auto"`` or ``(length, step)`` in s.
    """
    parsed = parse_time_windows(time_windows)
    if parsed != "auto":
        sfreq = 1e4
        short_time_grid(sfreq, int(round(parsed[0] * sfreq)) + 1, 1, parsed)
    return parsed
