"""The time-resolved result of :func:`mne_freqmask.explain`: SpectralSaliencyTFR.

``explain(epochs, model, time_windows=...)`` explains the short-time Fourier
transform of the epochs, cell by cell (channel x band x window). The container
is to :class:`~mne_freqmask.SpectralSaliency` what MNE's
:class:`~mne.time_frequency.EpochsTFR` is to its
:class:`~mne.time_frequency.EpochsSpectrum`: the same dims with ``"time"``
appended, the same state, file format (with its checksum) and epoch
selection. No torch.
"""

import json

import numpy as np
from mne import Info, pick_info
from mne._fiff.pick import _picks_to_idx
from mne.utils import (
    _check_option,
    _validate_type,
    verbose,
)

from ._provenance import provenance_repr
from ._saliency_io import read_state, write_state
from ._saliency_props import SaliencyProperties
from ._saliency_tfr_export import TFRExportMixin
from ._saliency_utils import (
    EpochSelectionMixin,
    _params_to_json,
    average_epochs,
    check_arrays,
    check_diagnostics,
    check_events,
    check_metadata,
)
from .saliency import SpectralSaliency
from .spectral import ShortTimeGrid, band_indices, window_edges
from .utils._docs import fill_doc

_DIMS = {
    "instance": ("epoch", "channel", "band", "time"),
    "group": ("channel", "band", "time"),
}


class SpectralSaliencyTFR(SaliencyProperties, EpochSelectionMixin, TFRExportMixin):
    """Time-resolved frequency-domain saliency: channel x band x window maps.

    Returned by :func:`mne_freqmask.explain` with ``time_windows`` (one map
    per epoch) and by :meth:`average` (one map for a group of epochs). The
    name follows MNE: a :class:`~mne_freqmask.SpectralSaliency` whose cells
    are also resolved in time, read as a time-frequency representation
    (``TFR``, as :class:`mne.time_frequency.EpochsTFR` next to
    :class:`mne.time_frequency.EpochsSpectrum`); one class holds both levels,
    as :class:`~mne_freqmask.SpectralSaliency` does, and converts to MNE's
    own TFR containers with :meth:`~mne_freqmask.SpectralSaliencyTFR.to_tfr`.

    Parameters
    ----------
    data : ndarray, shape ([n_epochs, ]n_channels, n_bands, n_windows)
        The saliency of each channel x band x window cell.
    info : instance of mne.Info
        Measurement info of exactly the explained channels (a copy is stored).
    freqs : array-like, shape (n_freqs,)
        Frequencies of the rfft bins of one window in Hz.
    band_names : list of str
        Name of each band.
    band_edges : array-like, shape (n_bands, 2)
        ``(fmin, fmax)`` of each band in Hz.
    times : array-like, shape (n_windows,)
        Centre of each window in seconds (the times of the epochs).
    method : str
        The explanation method.
    method_params : dict | None
        The method's parameters (JSON-like, as for SpectralSaliency).
    dims : tuple of str
        ``("epoch", "channel", "band", "time")`` (default) or
        ``("channel", "band", "time")`` (group level).
    nave : int | None
        Number of epochs averaged into group-level data (``None`` per epoch).
    events : ndarray of int, shape (n_epochs, 3) | None
        The events of the epochs, as :attr:`mne.Epochs.events`.
    event_id : dict | None
        Event names to codes, as :attr:`mne.Epochs.event_id`.
    metadata : pandas.DataFrame | None
        One row per epoch, as :attr:`mne.Epochs.metadata` (stored as JSON, as
        for :class:`~mne_freqmask.SpectralSaliency`).
    diagnostics : dict | None
        Per-epoch diagnostics of the fit, name -> array with one entry per
        epoch along its first axis.
    win_length : int | None
        Window length in samples.
    hop : int | None
        Samples between window centres.
    n_times : int | None
        Samples of the explained epochs.
    tmin : float | None
        Time of the epochs' first sample in seconds (``epochs.tmin``).
    provenance : dict | None
        What made the map (JSON-like; see :attr:`provenance`):
        :func:`~mne_freqmask.explain` fills it. None: an empty dict.

    See Also
    --------
    mne_freqmask.explain
    read_saliency_tfr
    SpectralSaliency

    Notes
    -----
    Selecting epochs (``saliency[...]``) works as for
    :class:`~mne_freqmask.SpectralSaliency` and :class:`mne.Epochs`.
    """

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
        dims=_DIMS["instance"],
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
        _validate_type(info, Info, "info", "mne.Info")
        _validate_type(dims, (tuple, list), "dims", "tuple of str")
        dims = tuple(dims)
        _check_option("dims", dims, list(_DIMS.values()))
        level = "instance" if "epoch" in dims else "group"
        data = np.array(data)  # a copy, dtype kept
        if data.ndim != len(dims):
            raise ValueError(
                f"data must have {len(dims)} dimensions {dims}, got shape {data.shape}."
            )
        # the checks of SpectralSaliency on the channel x band part
        _, freqs, band_names, band_edges = check_arrays(
            data[..., 0], info, freqs, band_names, band_edges, dims[:-1]
        )
        times = np.array(times, dtype=float)
        if times.shape != (data.shape[-1],) or not np.all(np.diff(times) > 0):
            raise ValueError(
                f"times must be increasing, one per window ({data.shape[-1]}), "
                f"got shape {times.shape}."
            )
        _validate_type(method, str, "method")
        _validate_type(method_params, (dict, None), "method_params", "dict or None")
        _validate_type(nave, ("int-like", None), "nave", "int or None")
        if (nave is not None) == (level == "instance"):
            raise ValueError("nave must be None per epoch and an int for a group.")
        for name, val in (
            ("win_length", win_length),
            ("hop", hop),
            ("n_times", n_times),
        ):
            _validate_type(val, ("int-like", None), name, "int or None")
        n_epochs = data.shape[0] if level == "instance" else None
        self._events, self._event_id = check_events(events, event_id, level, n_epochs)
        self._metadata = check_metadata(metadata, level, n_epochs)
        self._diagnostics = check_diagnostics(diagnostics, level, n_epochs)
        self._data = data
        self._info = info.copy()
        self._freqs, self._band_names, self._band_edges = freqs, band_names, band_edges
        self._times = times
        self._method = method
        self._method_params = json.loads(_params_to_json(method_params or {}))
        self._dims = dims
        self._nave = None if nave is None else int(nave)
        self._win_length, self._hop, self._n_times = (
            None if v is None else int(v) for v in (win_length, hop, n_times)
        )
        _validate_type(tmin, ("numeric", None), "tmin", "float or None")
        self._tmin = None if tmin is None else float(tmin)
        self._set_provenance(provenance)

    # ------------------------------------------------------------------
    # state: pickle, HDF5 and equality

    def _own_state(self):
        return dict(
            times=self._times,
            win_length=self._win_length,
            hop=self._hop,
            tmin=self._tmin,
        )

    def _own_kwargs(self, state):
        if "times" not in state:
            raise ValueError("The saliency is incomplete: it lacks ['times'].")
        return dict(
            times=state["times"],
            win_length=state.get("win_length"),
            hop=state.get("hop"),
            tmin=state.get("tmin"),
        )

    def __repr__(self):
        """Return a summary string."""
        sizes = " × ".join(
            f"{n} {d}{'' if n == 1 else 's'}"
            for n, d in zip(self.shape, self._dims, strict=True)
        )
        head = self._method
        if self.level == "group":
            head += f", group of {self._nave} epoch{'' if self._nave == 1 else 's'}"
        made = provenance_repr(self._provenance)
        return (
            f"<SpectralSaliencyTFR ({head}) | {sizes}, "
            f"{self._band_edges.min():0.1f}-{self._band_edges.max():0.1f} Hz, "
            f"{self._times[0]:0.3f}-{self._times[-1]:0.3f} s"
            f"{'; ' + made if made else ''}>"
        )

    def _replace(self, data, *, idx=None, nave=None):
        """A new object with ``data``: the epochs ``idx`` of this one, or
        (``nave`` given) the group-level map of its epochs."""
        if nave is not None:
            per_epoch = dict(dims=_DIMS["group"], nave=nave)
        else:
            meta = self._metadata
            per_epoch = dict(
                dims=self._dims,
                nave=self._nave,
                events=None if self._events is None else self._events[idx],
                event_id=self._event_id,
                metadata=None if meta is None else meta.iloc[idx],
                diagnostics={k: v[idx] for k, v in self._diagnostics.items()},
            )
        return type(self)(
            data,
            self._info,
            self._freqs,
            self._band_names,
            self._band_edges,
            times=self._times,
            method=self._method,
            method_params=self._method_params,
            win_length=self._win_length,
            hop=self._hop,
            n_times=self._n_times,
            tmin=self._tmin,
            provenance=self._provenance,
            **per_epoch,
        )

    def _subset(self, idx):  # EpochSelectionMixin.__getitem__
        return self._replace(self._data[idx], idx=idx)

    # ------------------------------------------------------------------
    # properties (the others: SaliencyProperties)

    @property
    def times(self):
        """Centre of each window in seconds."""
        return self._times

    @classmethod
    def _from_grid(cls, data, info, grid, **kwargs):
        """A map on the cells of ``grid`` (a short-time
        :class:`~mne_freqmask.spectral.ShortTimeGrid`): its bands, window
        centres and windows; ``kwargs`` are the other parameters."""
        fg = grid.frequency_grid
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
        names and edges), so it is also there after :func:`read_saliency_tfr`;
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

    def _select(self, picks, bands, fmin, fmax, tmin, tmax):
        """Indices of the channels, bands and windows selected."""
        ch = np.asarray(_picks_to_idx(self._info, picks, none="all"), int)
        bi = band_indices(self._band_names, bands)
        lo = -np.inf if fmin is None else float(fmin)
        hi = np.inf if fmax is None else float(fmax)
        edges = self._band_edges[bi]
        bi = bi[(edges[:, 1] > lo) & (edges[:, 0] < hi)]
        t0 = -np.inf if tmin is None else float(tmin)
        t1 = np.inf if tmax is None else float(tmax)
        ti = np.flatnonzero((self._times >= t0) & (self._times <= t1))
        if not len(bi):
            raise ValueError(f"No band overlaps fmin={fmin}, fmax={fmax} Hz.")
        if not len(ti):
            raise ValueError(
                f"No window centre lies in tmin={tmin}, tmax={tmax} s (windows "
                f"at {np.round(self._times, 3).tolist()} s)."
            )
        return ch, bi, ti

    @fill_doc
    def get_data(
        self,
        picks=None,
        *,
        bands=None,
        fmin=None,
        fmax=None,
        tmin=None,
        tmax=None,
        return_bands=False,
        return_times=False,
    ):
        """Get the saliency as a NumPy array.

        Parameters
        ----------
        %(sal_picks)s
        %(sal_bands_select)s
        fmin, fmax : float | None
            Keep the bands that overlap ``[fmin, fmax]`` Hz (None: no limit).
        tmin, tmax : float | None
            Keep the windows centred in ``[tmin, tmax]`` s (None: no limit).
        return_bands : bool
            Also return the names of the selected bands.
        return_times : bool
            Also return the centres of the selected windows.

        Returns
        -------
        data : ndarray, shape ([n_epochs, ]n_channels, n_bands, n_windows)
            A copy of the data.
        band_names : list of str
            The band names (only if ``return_bands=True``).
        times : ndarray
            The window centres (only if ``return_times=True``).
        """
        ch, bi, ti = self._select(picks, bands, fmin, fmax, tmin, tmax)
        data = self._data[..., ch, :, :][..., bi, :][..., ti]
        out = [data]
        if return_bands:
            out.append([self._band_names[i] for i in bi])
        if return_times:
            out.append(self._times[ti].copy())
        return out[0] if len(out) == 1 else tuple(out)

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
            self._check_instance("average()")
            n, rest = len(self), self._data.shape[1:]
            flat = self._data.reshape(n, rest[0], -1)
            func = method
            if callable(method):

                def func(d):  # noqa: E306
                    return np.asarray(method(d.reshape((n,) + rest))).reshape(
                        rest[0], -1
                    )

            data = average_epochs(flat, func).reshape(rest)
            return self._replace(data, nave=n)
        _, _, ti = self._select(None, None, None, None, tmin, tmax)
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

    @fill_doc
    def pick(self, picks):
        """Pick a subset of channels, in place.

        Parameters
        ----------
        %(sal_picks)s

        Returns
        -------
        saliency : instance of SpectralSaliencyTFR
            The object, modified in place.
        """
        idx = np.asarray(_picks_to_idx(self._info, picks, none="all"), int)
        pick_info(self._info, idx, copy=False)
        self._data = self._data[..., idx, :, :]
        return self

    # ------------------------------------------------------------------
    # I/O

    @verbose
    @fill_doc
    def save(self, fname, *, overwrite=False, verbose=None):
        """Save to an HDF5 file (atomically, with a SHA-256 checksum).

        Parameters
        ----------
        %(sal_fname_h5)s
        overwrite : bool
            Replace ``fname`` if it exists. Default ``False``.
        %(verbose)s

        See Also
        --------
        read_saliency_tfr
        """
        write_state(fname, self.__getstate__(), overwrite)


@verbose
@fill_doc
def read_saliency_tfr(fname, verbose=None):
    """Read a :class:`SpectralSaliencyTFR` from an HDF5 file.

    Parameters
    ----------
    fname : path-like
        A file written by :meth:`SpectralSaliencyTFR.save`.
    %(verbose)s

    Returns
    -------
    saliency : instance of SpectralSaliencyTFR
        The saliency, equal (``==``) to the one saved, with its
        :attr:`~SpectralSaliencyTFR.provenance` (empty for a file written
        before provenance was recorded). The file's checksum is verified
        before it is parsed, as for :func:`~mne_freqmask.read_saliency`.
    """
    return read_state(
        fname,
        SpectralSaliencyTFR,
        time_resolved=True,
        other=("SpectralSaliency", "mne_freqmask.read_saliency"),
    )
