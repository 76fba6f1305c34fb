"""The time-resolved result of :func:`mne_freqmask.explain`: SpectralSaliencyTFR.

``explain(epochs, model, time_windows=...)`` explains the short-time Fourier
transform of the epochs, cell by cell (channel x band x window). The container
is to :class:`~mne_freqmask.SpectralSaliency` what MNE's
:class:`~mne.time_frequency.EpochsTFR` is to its
:class:`~mne.time_frequency.EpochsSpectrum`: the same dims with ``"time"``
appended, the same state, file format (with its checksum) and epoch
selection. No torch.
"""

import numpy as np
from mne.utils import _check_option, _validate_type, verbose

from ._saliency_base import BaseSaliency, container_of
from ._saliency_io import read_state
from ._saliency_tfr_export import TFRExportMixin
from .saliency import SpectralSaliency
from .spectral import ShortTimeGrid, short_time_grid, window_edges
from .utils._docs import fill_doc


@fill_doc
class SpectralSaliencyTFR(BaseSaliency, TFRExportMixin):
    """Time-resolved frequency-domain saliency: channel x band x window maps.

    Returned by :func:`mne_freqmask.explain` with ``time_windows`` (one map
    per epoch) and by :meth:`average` (one map for a group of epochs). The
    name follows MNE: a :class:`~mne_freqmask.SpectralSaliency` whose cells
    are also resolved in time, read as a time-frequency representation
    (``TFR``, as :class:`mne.time_frequency.EpochsTFR` next to
    :class:`mne.time_frequency.EpochsSpectrum`): the same base with a
    ``"time"`` axis appended. One class holds both levels,
    as :class:`~mne_freqmask.SpectralSaliency` does, and converts to MNE's
    own TFR containers with :meth:`~mne_freqmask.SpectralSaliencyTFR.to_tfr`.

    Parameters
    ----------
    data : ndarray, shape ([n_epochs, ]n_channels, n_bands, n_windows)
        The saliency of each channel x band x window cell.
    %(sal_container_info)s
    freqs : array-like, shape (n_freqs,)
        Frequencies of the rfft bins of one window in Hz.
    band_names : list of str
        Name of each band.
    band_edges : array-like, shape (n_bands, 2)
        ``(fmin, fmax)`` of each band in Hz.
    times : array-like, shape (n_windows,)
        Centre of each window in seconds (the times of the epochs).
    %(sal_container_method)s
    dims : tuple of str
        ``("epoch", "channel", "band", "time")`` (default) or
        ``("channel", "band", "time")`` (group level).
    %(sal_container_epochs)s
    win_length : int | None
        Window length in samples.
    hop : int | None
        Samples between window centres.
    n_times : int | None
        Samples of the explained epochs.
    tmin : float | None
        Time of the epochs' first sample in seconds (``epochs.tmin``).
    %(sal_container_provenance)s

    See Also
    --------
    mne_freqmask.explain
    read_saliency
    SpectralSaliency

    Notes
    -----
    Selecting epochs (``saliency[...]``) works as for
    :class:`~mne_freqmask.SpectralSaliency` and :class:`mne.Epochs`; so do
    :meth:`pick`, :meth:`normalize`, :meth:`to_data_frame`,
    :func:`~mne_freqmask.concatenate_saliencies` and
    :func:`~mne_freqmask.combine_saliency` (all defined once, on the base
    both classes share).
    """

    _extra_dims = ("time",)
    _own_keys = ("times", "win_length", "hop", "tmin")

    def __init__(
        self,
        data,
        info,
        freqs,
        band_names,
        band_edges,
        *,
        times,
        method,
        method_params=None,
        dims=("epoch", "channel", "band", "time"),
        nave=None,
        events=None,
        event_id=None,
        metadata=None,
        diagnostics=None,
        win_length=None,
        hop=None,
        n_times=None,
        tmin=None,
        provenance=None,
    ):
        super().__init__(
            data,
            info,
            freqs,
            band_names,
            band_edges,
            method=method,
            method_params=method_params,
            dims=dims,
            nave=nave,
            events=events,
            event_id=event_id,
            metadata=metadata,
            diagnostics=diagnostics,
            n_times=n_times,
            provenance=provenance,
        )
        times = np.array(times, dtype=float)
        n_win = self._data.shape[-1]
        if times.shape != (n_win,) or not np.all(np.diff(times) > 0):
            raise ValueError(
                f"times must be increasing, one per window ({n_win}), "
                f"got shape {times.shape}."
            )
        for name, val in (("win_length", win_length), ("hop", hop)):
            _validate_type(val, ("int-like", None), name, "int or None")
        _validate_type(tmin, ("numeric", None), "tmin", "float or None")
        self._times = times
        self._win_length, self._hop = (
            None if v is None else int(v) for v in (win_length, hop)
        )
        self._tmin = None if tmin is None else float(tmin)

    def _repr_axes(self):
        return f", {self._times[0]:0.3f}-{self._times[-1]:0.3f} s"

    # ------------------------------------------------------------------
    # properties (the others: BaseSaliency)

    @property
    def times(self):
        """Centre of each window in seconds."""
        return self._times

    # the cells (see _saliency_cells)

    @classmethod
    def _from_grid(cls, data, info, grid, **kwargs):
        fg = grid.frequency_grid
        data = np.asarray(data)
        n_dims = len(kwargs.get("dims") or cls._all_dims()["instance"])
        if data.ndim == n_dims - 1:  # flat cells: band-major, as the grid's
            data = data.reshape(data.shape[:-1] + (fg.n_bands, grid.n_windows))
        return cls(
            data,
            info,
            fg.freqs,
            fg.band_names,
            fg.band_edges,
            times=grid.times,
            win_length=grid.win_length,
            hop=grid.hop,
            n_times=grid.n_times,
            tmin=grid.tmin,
            **kwargs,
        )

    def _windows(self):
        return self.time_windows or "unknown windows"

    def _cell_times(self):
        return self._times.copy()

    def _truth_args(self):
        if self.window_edges is None:
            raise ValueError(
                "The saliency does not know its window edges (win_length, "
                "n_times and tmin); pass the boolean cells as truth."
            )
        return (self._band_edges, self.window_edges)

    def _remake_windows(self, given):
        if given is None:
            return self.time_windows
        grid = self.grid
        try:  # the windows in samples (one band: any window has its bins)
            other = short_time_grid(grid.sfreq, grid.n_times, 1, given, grid.tmin)
            same = (other.win_length, other.hop) == (grid.win_length, grid.hop)
        except ValueError:
            same = False
        if not same:
            length, step = self.time_windows
            raise ValueError(
                f"explain_kw has time_windows={given!r}, but the saliency was "
                f"computed on {length:g} s windows every {step:g} s "
                f"({grid.win_length} and {grid.hop} samples); leave time_windows "
                "out of explain_kw (the map's windows are used) or give "
                f"time_windows={tuple(self.time_windows)}."
            )
        return given

    @property
    def time_windows(self):
        """``(length, step)`` of the windows in seconds (None if unknown)."""
        if self._win_length is None or self._hop is None:
            return None
        sfreq = self._info["sfreq"]
        return (self._win_length / sfreq, self._hop / sfreq)

    @property
    def grid(self):
        """The :class:`~mne_freqmask.ShortTimeGrid` the saliency was computed on.

        Rebuilt from the state (sampling rate, epoch length, windows, band
        names and edges), so it is also there after :func:`read_saliency`;
        None when the windows or the epoch length are unknown.
        """
        if None in (self._win_length, self._hop, self._n_times, self._tmin):
            return None
        return ShortTimeGrid(
            self._info["sfreq"],
            self._n_times,
            self.bands,
            self._win_length,
            self._hop,
            self._tmin,
        )

    @property
    def window_edges(self):
        """``(start, stop)`` of each window in seconds, clipped to the epoch.

        None when the window length, ``n_times`` or ``tmin`` is unknown.
        """
        if None in (self._win_length, self._n_times, self._tmin):
            return None
        return window_edges(
            self._times,
            self._win_length,
            self._info["sfreq"],
            self._tmin,
            self._n_times,
        )

    # ------------------------------------------------------------------
    # data access and reduction

    def _time_idx(self, tmin, tmax):
        """Indices of the windows centred in ``[tmin, tmax]`` s."""
        t0 = -np.inf if tmin is None else float(tmin)
        t1 = np.inf if tmax is None else float(tmax)
        ti = np.flatnonzero((self._times >= t0) & (self._times <= t1))
        if not len(ti):
            raise ValueError(
                f"No window centre lies in tmin={tmin}, tmax={tmax} s (windows "
                f"at {np.round(self._times, 3).tolist()} s)."
            )
        return ti

    def average(self, method="mean", *, dim="epochs", tmin=None, tmax=None):
        """Average over epochs (a group-level map) or over windows.

        Parameters
        ----------
        method : "mean" | "median" | callable
            How to combine; a callable receives the data with the averaged
            dimension first and returns it without that dimension.
        dim : "epochs" | "times"
            ``"epochs"`` (default, as in MNE): one map for the group, a
            :class:`SpectralSaliencyTFR` with ``nave``. ``"times"``: collapse
            the windows into a :class:`~mne_freqmask.SpectralSaliency` (same
            level; with the default mean, the mean over windows). Its
            frequencies are those of one window, so the evaluation functions
            that put cells back on the epochs' rfft bins (such as
            :func:`~mne_freqmask.evaluate_removal`) refuse it unless the
            window is the whole epoch.
        tmin, tmax : float | None
            With ``dim="times"``, the windows averaged (centres in
            ``[tmin, tmax]`` s; None: all).

        Returns
        -------
        saliency : instance of SpectralSaliencyTFR | SpectralSaliency
            The averaged saliency.
        """
        _check_option("dim", dim, ("epochs", "times"))
        if dim == "epochs":
            return super().average(method)
        ti = self._time_idx(tmin, tmax)
        moved = np.moveaxis(self._data[..., ti], -1, 0)
        if callable(method):
            data = np.asarray(method(moved))
        else:
            _check_option("method", method, ("mean", "median"))
            data = (np.mean if method == "mean" else np.median)(moved, axis=0)
        params = dict(
            self._method_params, time_average=[float(x) for x in self._times[ti]]
        )
        instance = self.level == "instance"
        return SpectralSaliency(
            data,
            self._info,
            self._freqs,
            self._band_names,
            self._band_edges,
            method=self._method,
            method_params=params,
            dims=self._dims[:-1],
            nave=self._nave,
            events=self._events,
            event_id=self._event_id,
            metadata=self._metadata,
            diagnostics=self._diagnostics if instance else None,
            n_times=self._win_length,
            provenance=self._provenance,
        )


@verbose
@fill_doc
def read_saliency_tfr(fname, verbose=None):
    """Read a :class:`SpectralSaliencyTFR` from an HDF5 file.

    :func:`~mne_freqmask.read_saliency` reads both kinds; this alias reads
    the same files and also checks that the map is time-resolved.

    Parameters
    ----------
    fname : path-like
        A file written by :meth:`SpectralSaliencyTFR.save`.
    %(verbose)s

    Returns
    -------
    saliency : instance of SpectralSaliencyTFR
        The saliency, as :func:`~mne_freqmask.read_saliency` returns it; a
        file of a whole-epoch map raises an error naming that reader.
    """
    return read_state(fname, container_of, want=SpectralSaliencyTFR)
