"""The base of both saliency containers: :class:`BaseSaliency`.

Modelled on MNE's ``BaseSpectrum`` / ``BaseTFR``: everything that
:class:`~mne_freqmask.SpectralSaliency` (channel x band maps) and
:class:`~mne_freqmask.SpectralSaliencyTFR` (the same plus a ``"time"``
axis of windows) share lives here once: the checks of ``__init__``, the
state (``__getstate__`` / ``__setstate__``, the single source of truth for
pickling, HDF5 files and ``==``), the properties, selecting epochs,
channels, bands and windows, :meth:`~BaseSaliency.pick`,
:meth:`~BaseSaliency.average` over epochs, :meth:`~BaseSaliency.normalize`,
:meth:`~BaseSaliency.to_data_frame` and :meth:`~BaseSaliency.save`. A
container adds its own axes (``_extra_dims``) and the state that describes
them (``_own_state`` / ``_own_kwargs``). No torch.
"""

import json
from copy import deepcopy

import numpy as np
from mne import Info, pick_info
from mne._fiff.pick import _picks_to_idx
from mne.utils import (
    _check_option,
    _validate_type,
    object_diff,
    verbose,
)

from ._report import saliency_html
from ._saliency_io import check_state_keys, info_from_state, write_state
from ._saliency_norm import NormalizeMixin
from ._saliency_utils import (
    DataFrameMixin,
    EpochSelectionMixin,
    _metadata_from_json,
    _metadata_to_json,
    _params_to_json,
    average_epochs,
    check_arrays,
    check_diagnostics,
    check_events,
    check_metadata,
    saliency_repr,
)
from .spectral import band_indices
from .utils._docs import fill_doc

#: the containers by their axes after "band" (filled by __init_subclass__)
CONTAINERS = {}


def container_of(dims):
    """The container class of data with dimensions ``dims``.

    Picked from the axes after ``"band"``; dims no container has go to the
    whole-epoch one, whose ``__init__`` names the valid dims.
    """
    dims = tuple(dims)
    extra = dims[dims.index("band") + 1 :] if "band" in dims else ()
    return CONTAINERS.get(extra, CONTAINERS[()])


def _state_property(name, doc):
    """A read-only property: the attribute ``_<name>``."""

    def fget(self):
        return getattr(self, f"_{name}")

    return property(fget, doc=doc)


class BaseSaliency(EpochSelectionMixin, DataFrameMixin, NormalizeMixin):
    """What both saliency containers share (see the module's docstring).

    A subclass sets ``_extra_dims`` (its axes after ``"band"``; setting it
    registers the class for :func:`~mne_freqmask.read_saliency`) and may add
    state with ``_own_keys`` (attributes ``_<key>`` that are also keyword
    arguments of its ``__init__``).
    """

    _format_version = 1
    _extra_dims = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_extra_dims" in cls.__dict__:
            CONTAINERS[tuple(cls._extra_dims)] = cls

    def __init__(
        self,
        data,
        info,
        freqs,
        band_names=None,
        band_edges=None,
        *,
        method,
        method_params=None,
        dims=None,
        nave=None,
        events=None,
        event_id=None,
        metadata=None,
        diagnostics=None,
        n_times=None,
        provenance=None,
    ):
        """Check and store what both containers hold (see their docs)."""
        _validate_type(info, Info, "info", "mne.Info")
        freqs, band_names, band_edges, n_times = self._unpack_grid(
            freqs, band_names, band_edges, n_times, info
        )
        dims = self._all_dims()["instance"] if dims is None else dims
        _validate_type(n_times, ("int-like", None), "n_times", "int or None")
        _validate_type(dims, (tuple, list), "dims", "tuple of str")
        dims = tuple(dims)
        _check_option("dims", dims, list(self._all_dims().values()))
        level = "instance" if "epoch" in dims else "group"
        data, freqs, band_names, band_edges = check_arrays(
            data, info, freqs, band_names, band_edges, dims
        )
        _validate_type(method, str, "method")
        _validate_type(method_params, (dict, None), "method_params", "dict or None")
        _validate_type(nave, ("int-like", None), "nave", "int or None")
        if nave is not None:
            nave = int(nave)
            if level == "instance":
                raise ValueError(
                    "nave must be None for per-epoch data (dims with 'epoch')."
                )
            if nave < 1:
                raise ValueError(f"nave must be a positive int, got {nave}.")
        n_epochs = data.shape[0] if level == "instance" else None
        self._events, self._event_id = check_events(events, event_id, level, n_epochs)
        self._metadata = check_metadata(metadata, level, n_epochs)
        self._diagnostics = check_diagnostics(diagnostics, level, n_epochs)
        self._data = data
        self._info = info.copy()
        self._freqs, self._band_names, self._band_edges = freqs, band_names, band_edges
        self._method = method
        self._method_params = json.loads(_params_to_json(method_params or {}))
        self._dims = dims
        self._nave = nave
        self._n_times = None if n_times is None else int(n_times)
        self._set_provenance(provenance)

    @staticmethod
    def _unpack_grid(freqs, band_names, band_edges, n_times, info):
        return freqs, band_names, band_edges, n_times

    @classmethod
    def _all_dims(cls):
        """``{"instance": dims, "group": dims}`` of this container."""
        extra = tuple(cls._extra_dims)
        return {
            "instance": ("epoch", "channel", "band") + extra,
            "group": ("channel", "band") + extra,
        }

    # ------------------------------------------------------------------
    # state: the single source of truth for pickle, HDF5 and equality

    #: the state a subclass adds: attributes ``_<key>``, keywords of __init__
    #: (the first is required in a stored state; the others may be missing
    #: from files of earlier versions, and are then None)
    _own_keys = ()

    def _own_state(self):
        return {key: getattr(self, f"_{key}") for key in self._own_keys}

    def _own_kwargs(self, state):
        check_state_keys(state, self._own_keys[:1])
        return {key: state.get(key) for key in self._own_keys}

    def __getstate__(self):
        """Return the state as a dict (used by pickle, save and ``==``)."""
        return dict(
            format_version=self._format_version,
            data=self._data,
            info=self._info,
            freqs=self._freqs,
            band_names=list(self._band_names),
            band_edges=self._band_edges,
            method=self._method,
            method_params=_params_to_json(self._method_params),
            dims=self._dims,
            nave=self._nave,
            events=self._events,
            event_id=self._event_id,
            metadata=_metadata_to_json(self._metadata),
            diagnostics=self._diagnostics,
            n_times=self._n_times,
            provenance=json.dumps(self._provenance),
            **self._own_state(),
        )

    def __setstate__(self, state):
        """Restore from a dict made by :meth:`__getstate__`."""
        version = state.get("format_version", self._format_version)
        if version > self._format_version:
            raise ValueError(
                f"This saliency was written in format version {version}, newer "
                f"than this mne_freqmask understands ({self._format_version}); "
                "upgrade mne_freqmask."
            )
        check_state_keys(state)
        self.__init__(
            state["data"],
            info_from_state(state["info"]),
            state["freqs"],
            state["band_names"],
            state["band_edges"],
            method=state["method"],
            method_params=json.loads(state["method_params"]),
            dims=tuple(state["dims"]),
            nave=state["nave"],
            events=state["events"],
            event_id=state["event_id"],
            metadata=_metadata_from_json(state["metadata"]),
            diagnostics=state["diagnostics"],
            n_times=state.get("n_times"),
            # files of earlier versions hold none: an empty dict
            provenance=json.loads(state.get("provenance") or "{}"),
            **self._own_kwargs(state),
        )

    def _set_provenance(self, provenance):
        """Store a JSON-like copy of ``provenance`` (None: empty)."""
        _validate_type(provenance, (dict, None), "provenance", "dict or None")
        self._provenance = json.loads(_params_to_json(provenance or {}))

    def _eq_state(self):
        """The state that ``==`` compares: all but the provenance, with the
        method parameters parsed (their key order does not matter)."""
        state = self.__getstate__()
        del state["provenance"]
        state["method_params"] = json.loads(state["method_params"])
        return state

    def __eq__(self, other):
        """Test equivalence (:func:`mne.utils.object_diff` on the state).

        The provenance is left out: two maps are equal when they hold the
        same saliency of the same cells with the same method and parameters,
        whenever and by whichever run they were made (a run resumed from a
        checkpoint equals an uninterrupted one). Compare ``.provenance``
        to ask whether they were made alike.
        """
        if not isinstance(other, type(self)):
            return NotImplemented
        return object_diff(self._eq_state(), other._eq_state()) == ""

    __hash__ = None

    def _replace(self, data, **changes):
        """A new object of this class with ``data``; ``changes`` replace the
        other arguments of ``__init__`` (by default those of ``self``)."""
        kwargs = dict(
            method=self._method,
            method_params=self._method_params,
            dims=self._dims,
            nave=self._nave,
            events=self._events,
            event_id=self._event_id,
            metadata=self._metadata,
            diagnostics=self._diagnostics,
            n_times=self._n_times,
            provenance=self._provenance,
            **self._own_state(),
        )
        kwargs.update(changes)
        return type(self)(
            data,
            self._info,
            self._freqs,
            self._band_names,
            self._band_edges,
            **kwargs,
        )

    def _subset(self, idx):  # EpochSelectionMixin.__getitem__
        meta = self._metadata
        return self._replace(
            self._data[idx],
            events=None if self._events is None else self._events[idx],
            metadata=None if meta is None else meta.iloc[idx],
            diagnostics={k: v[idx] for k, v in self._diagnostics.items()},
        )

    def _same_cells(self, other):
        """Whether ``other`` has the channels, bands and axes of ``self``."""
        return (
            type(other) is type(self)
            and other.shape[1:] == self.shape[1:]
            and other.ch_names == self.ch_names
            and other.band_names == self.band_names
            and np.array_equal(other.band_edges, self._band_edges)
            and np.array_equal(other.freqs, self._freqs)
            and object_diff(self._own_state(), other._own_state()) == ""
        )

    def copy(self):
        """Return a deep copy.

        Returns
        -------
        saliency : SpectralSaliency | SpectralSaliencyTFR
            The copy (the class of ``self``).
        """
        out = type(self).__new__(type(self))
        out.__dict__.update(deepcopy(self.__dict__))
        return out

    def __repr__(self):
        """Return a summary string, in the style of MNE's Spectrum."""
        return saliency_repr(self)

    def _repr_axes(self):
        return ""

    def _repr_html_(self):
        """A small table of what the map is, for notebooks."""
        return saliency_html(self)

    # ------------------------------------------------------------------
    # properties

    @property
    def data(self):
        """The saliency array (a read-only view; see :meth:`get_data`)."""
        view = self._data.view()
        view.flags.writeable = False
        return view

    info = _state_property("info", "The :class:`mne.Info` of the explained channels.")

    @property
    def ch_names(self):
        """Channel names."""
        return self._info.ch_names

    freqs = _state_property("freqs", "Frequencies of the rfft bins in Hz.")

    @property
    def band_names(self):
        """Band names."""
        return list(self._band_names)

    band_edges = _state_property(
        "band_edges", "``(fmin, fmax)`` of each band in Hz, shape (n_bands, 2)."
    )

    @property
    def bands(self):
        """Dict of band name -> ``(fmin, fmax)`` in Hz."""
        return {
            name: (float(lo), float(hi))
            for name, (lo, hi) in zip(self._band_names, self._band_edges, strict=True)
        }

    method = _state_property("method", "The explanation method.")

    @property
    def method_params(self):
        """The method's parameters (a copy)."""
        return deepcopy(self._method_params)

    @property
    def provenance(self):
        """What made the map (a dict, a copy; empty for files of earlier versions).

        Filled by :func:`~mne_freqmask.explain`: ``created`` (UTC, ISO 8601),
        ``versions`` (mne_freqmask, MNE, NumPy, torch and, for a braindecode
        model, braindecode), ``model_class``, ``model_hash`` (SHA-256 of the
        model's class and state dict), ``method`` and ``method_params`` (at
        creation) and ``source`` (the epochs' file, or None). Saved and read
        back with the map, kept by selection, :meth:`pick`, :meth:`average`
        and :meth:`copy`; :func:`~mne_freqmask.concatenate_saliencies` and
        :func:`~mne_freqmask.combine_saliency` keep equal provenances and
        otherwise keep what all share plus ``"inputs"``, the list of each
        input's. Not compared by ``==``.
        """
        return deepcopy(self._provenance)

    nave = _state_property(
        "nave", "Number of epochs averaged (``None`` for per-epoch data)."
    )
    events = _state_property(
        "events", "The events of the epochs (``None`` at group level)."
    )
    event_id = _state_property(
        "event_id", "Event names to codes (``None`` at group level)."
    )
    metadata = _state_property(
        "metadata", "Per-epoch metadata (pandas DataFrame) or ``None``."
    )

    @property
    def diagnostics(self):
        """Per-epoch diagnostics of the fit, name -> array.

        A map of :func:`~mne_freqmask.explain` holds ``"explained_class"``,
        the class each epoch's map explains (``method_params["target"]``
        says how it was chosen: ``"prediction"``, ``"true"``, ``"given"``,
        or ``"mixed"`` after concatenating maps chosen differently), which
        the evaluation scores with ``y="explained"``. Kept by selection,
        picking, copying, saving and concatenation (when every input has
        it); ``average()`` drops the diagnostics, so a group-level map
        keeps ``target`` but no per-epoch class.
        """
        return self._diagnostics

    dims = _state_property("dims", "Names of the data dimensions.")

    @property
    def level(self):
        """``"instance"`` (one map per epoch) or ``"group"`` (one map)."""
        return "instance" if "epoch" in self._dims else "group"

    @property
    def shape(self):
        """Shape of the data."""
        return self._data.shape

    # ------------------------------------------------------------------
    # selection and reduction

    def _pick_idx(self, picks, exclude=()):
        return np.asarray(
            _picks_to_idx(self._info, picks, none="all", exclude=exclude), int
        )

    def _time_idx(self, tmin, tmax):
        """Indices of the windows centred in ``[tmin, tmax]`` (time-resolved
        maps; a map without a time axis accepts only None)."""
        if tmin is not None or tmax is not None:
            raise ValueError(
                f"tmin and tmax select windows of a time-resolved map "
                f"(SpectralSaliencyTFR); this {type(self).__name__} has no time "
                "axis: leave them None."
            )
        return None

    def _select(self, picks, bands, fmin=None, fmax=None, tmin=None, tmax=None):
        """Indices of the channels, bands and windows (None: no time axis)."""
        ch = self._pick_idx(picks)
        bi = band_indices(self._band_names, bands)
        if fmin is not None or fmax is not None:
            lo = -np.inf if fmin is None else float(fmin)
            hi = np.inf if fmax is None else float(fmax)
            edges = self._band_edges[bi]
            bi = bi[(edges[:, 1] > lo) & (edges[:, 0] < hi)]
            if not len(bi):
                raise ValueError(f"No band overlaps fmin={fmin}, fmax={fmax} Hz.")
        return ch, bi, self._time_idx(tmin, tmax)

    def _take(self, ch, bi, ti):
        """A copy of the data at channels ``ch``, bands ``bi``, windows ``ti``."""
        axis = self._dims.index("channel")
        data = np.take(np.take(self._data, ch, axis=axis), bi, axis=axis + 1)
        return data if ti is None else np.take(data, ti, axis=axis + 2)

    @fill_doc
    def get_data(
        self,
        picks=None,
        bands=None,
        return_bands=False,
        *,
        fmin=None,
        fmax=None,
        tmin=None,
        tmax=None,
        return_times=False,
    ):
        """Get the saliency as a NumPy array.

        Parameters
        ----------
        %(sal_picks)s
        %(sal_bands_select)s
        return_bands : bool
            Also return the names of the selected bands.
        fmin, fmax : float | None
            Keep the bands that overlap ``[fmin, fmax]`` Hz (None: no limit).
        tmin, tmax : float | None
            Time-resolved maps only: keep the windows centred in
            ``[tmin, tmax]`` s (None: no limit).
        return_times : bool
            Time-resolved maps only: also return the centres of the selected
            windows.

        Returns
        -------
        data : ndarray, shape ([n_epochs, ]n_channels, n_bands[, n_windows])
            A copy of the data.
        band_names : list of str
            The band names (only if ``return_bands=True``).
        times : ndarray
            The window centres (only if ``return_times=True``).
        """
        _validate_type(return_bands, bool, "return_bands")
        _validate_type(return_times, bool, "return_times")
        ch, bi, ti = self._select(picks, bands, fmin, fmax, tmin, tmax)
        if return_times and ti is None:
            self._time_idx(0.0, None)  # raises: no time axis
        out = [self._take(ch, bi, ti)]
        if return_bands:
            out.append([self._band_names[i] for i in bi])
        if return_times:
            out.append(self.times[ti].copy())
        return out[0] if len(out) == 1 else tuple(out)

    def average(self, method="mean"):
        """Average the per-epoch maps into a group-level map.

        Parameters
        ----------
        method : "mean" | "median" | callable
            How to combine the epochs. A callable receives the data, shape
            ``(n_epochs, n_channels, n_bands[, n_windows])``, and must return
            the array without its first axis.

        Returns
        -------
        saliency : instance of SpectralSaliency | SpectralSaliencyTFR
            Group-level saliency (the class of ``self``, without ``"epoch"``
            in its dims), with ``nave`` the number of epochs, no events or
            metadata, empty diagnostics and the same provenance.
        """
        self._check_instance("average()")
        return self._replace(
            average_epochs(self._data, method),
            dims=self._all_dims()["group"],
            nave=len(self),
            events=None,
            event_id=None,
            metadata=None,
            diagnostics=None,
        )

    @fill_doc
    def pick(self, picks, exclude=()):
        """Pick a subset of channels, in place.

        Parameters
        ----------
        %(sal_picks)s
        exclude : list of str | "bads"
            Channels to exclude from ``picks`` given by type (``"bads"``:
            those in ``info["bads"]``), as in MNE: channels picked by name
            are kept. Default: none. A selection of no channel is an error.

        Returns
        -------
        saliency : instance of SpectralSaliency | SpectralSaliencyTFR
            The object, modified in place.
        """
        idx = self._pick_idx(picks, exclude=exclude)  # MNE refuses no channel
        pick_info(self._info, idx, copy=False)
        self._data = np.take(self._data, idx, axis=self._dims.index("channel"))
        return self

    # ------------------------------------------------------------------
    # I/O

    @verbose
    @fill_doc
    def save(self, fname, *, overwrite=False, verbose=None):
        """Save to an HDF5 file.

        The file is written under a temporary name in the same folder and then
        renamed, so an interrupted or failed save leaves no partial file (and
        an existing file untouched). Its first bytes hold a SHA-256 checksum
        of the rest, verified by :func:`~mne_freqmask.read_saliency`.

        Parameters
        ----------
        %(sal_fname_h5)s
        overwrite : bool
            Replace ``fname`` if it exists. Default ``False``.
        %(verbose)s

        See Also
        --------
        mne_freqmask.read_saliency
        """
        write_state(fname, self.__getstate__(), overwrite)
