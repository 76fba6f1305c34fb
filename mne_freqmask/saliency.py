"""The result of :func:`mne_freqmask.explain`: :class:`SpectralSaliency`.

Modelled on MNE's :class:`mne.time_frequency.Spectrum`: ``__getstate__`` /
``__setstate__`` are the single source of truth for pickling, HDF5 files
(:meth:`SpectralSaliency.save`, :func:`read_saliency`) and equality. This
module imports no torch, so saved explanations can be read, plotted and
tabulated without it.
"""

import hashlib
import json
import operator
import os
import uuid
from copy import deepcopy
from pathlib import Path

import numpy as np
from mne import Info, pick_info
from mne._fiff.pick import _picks_to_idx
from mne.utils import (
    _check_option,
    _check_pandas_installed,
    _validate_type,
    copy_function_doc_to_method_doc,
    logger,
    object_diff,
    verbose,
)

from .utils._docs import docdict, fill_doc
from .viz import plot_saliency, plot_saliency_bands, plot_saliency_topomap

_DIMS = {
    "instance": ("epoch", "channel", "band"),
    "group": ("channel", "band"),
}
_H5_TITLE = "mnefreqmask"
#: title of the checksum entry stored beside the state in saved files
_H5_CHECKSUM_TITLE = "mnefreqmask_checksum"
_FORMAT_VERSION = 1
#: keys of the state that :meth:`SpectralSaliency.__setstate__` needs
_STATE_KEYS = (
    "data",
    "info",
    "freqs",
    "band_names",
    "band_edges",
    "method",
    "method_params",
    "dims",
    "nave",
    "events",
    "event_id",
    "metadata",
    "diagnostics",
)
_DF_COLUMNS = ("epoch", "channel", "band", "fmin", "fmax", "saliency")

docdict.update(
    {
        "sal_fname_h5": """
fname : path-like
    The file name; it must end with ``.h5`` or ``.hdf5``.""",
    }
)


def _json_default(obj):
    """Make numpy scalars/arrays and paths JSON-serialisable."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    # pandas Timestamps, datetimes, ... (metadata): their ISO text
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON-like")


def _params_to_json(params):
    try:
        return json.dumps(params, default=_json_default)
    except (TypeError, ValueError) as exp:
        raise TypeError(
            "method_params must hold JSON-like values only (str, int, float, "
            f"bool, None, lists and dicts of them): {exp}."
        ) from None


def _metadata_to_json(metadata):
    if metadata is None:
        return None
    split = metadata.to_dict(orient="split", index=False)
    return json.dumps(split, default=_json_default)


def _metadata_from_json(text):
    if text is None:
        return None
    pd = _check_pandas_installed()
    split = json.loads(text)
    return pd.DataFrame(split["data"], columns=split["columns"])


class SpectralSaliency:
    """Frequency-domain saliency of a model: channel x band maps.

    Returned by :func:`mne_freqmask.explain` (one map per epoch) and by
    :meth:`average` (one map for a group of epochs). The container is modelled
    on :class:`mne.time_frequency.Spectrum`.

    Parameters
    ----------
    data : ndarray, shape (n_epochs, n_channels, n_bands) | (n_channels, n_bands)
        The saliency of each channel x band cell, per epoch for
        ``dims=("epoch", "channel", "band")`` or for a group of epochs for
        ``dims=("channel", "band")``. The dtype is kept.
    info : instance of mne.Info
        Measurement info of exactly the explained channels (a copy is stored;
        topomaps read channel positions from it).
    freqs : array-like, shape (n_freqs,)
        Frequencies of the rfft bins in Hz.
    band_names : list of str
        Name of each band.
    band_edges : array-like, shape (n_bands, 2)
        ``(fmin, fmax)`` of each band in Hz.
    method : str
        The explanation method (e.g. ``"freqmask"``).
    method_params : dict | None
        The method's parameters. They are stored as JSON, so they must be
        JSON-like (tuples become lists, numpy scalars Python scalars).
    dims : tuple of str
        ``("epoch", "channel", "band")`` (default, instance level) or
        ``("channel", "band")`` (group level).
    nave : int | None
        Number of epochs averaged into group-level data; must be ``None`` for
        per-epoch data.
    events : ndarray of int, shape (n_epochs, 3) | None
        The events of the epochs, as :attr:`mne.Epochs.events`.
    event_id : dict | None
        Event names to codes, as :attr:`mne.Epochs.event_id`. ``None`` with
        ``events`` given makes one name per code (``{"1": 1, ...}``).
    metadata : pandas.DataFrame | None
        One row per epoch, as :attr:`mne.Epochs.metadata`. The index is reset to
        ``0, ..., n_epochs - 1``. Metadata are stored as JSON: columns of
        types JSON cannot hold (categories, datetimes) come back from a file
        or a pickle as plain values (text for datetimes).
    diagnostics : dict | None
        Per-epoch diagnostics of the fit, name -> array whose first axis has
        one entry per epoch (e.g. ``{"n_steps": ..., "loss": ...}``).

    See Also
    --------
    mne_freqmask.explain
    read_saliency

    Notes
    -----
    Selecting epochs (``saliency[...]``) works like :class:`mne.Epochs`: an
    int, a slice, a boolean mask, an array of indices, an event name (with
    ``"/"``-separated tags as in MNE) or a pandas query on the metadata
    (``saliency["subject == 3"]``). It returns a new object.
    """

    def __init__(
        self,
        data,
        info,
        freqs,
        band_names,
        band_edges,
        *,
        method,
        method_params=None,
        dims=("epoch", "channel", "band"),
        nave=None,
        events=None,
        event_id=None,
        metadata=None,
        diagnostics=None,
    ):
        _validate_type(info, Info, "info", "mne.Info")
        _validate_type(dims, (tuple, list), "dims", "tuple of str")
        dims = tuple(dims)
        _check_option("dims", dims, list(_DIMS.values()))
        level = "instance" if "epoch" in dims else "group"
        _validate_type(data, (np.ndarray, list, tuple), "data", "ndarray")
        data = np.array(data)  # a copy, dtype kept
        if data.dtype.kind not in "fiu":
            raise ValueError(
                f"data must hold real numbers, got dtype {data.dtype}; take "
                "np.abs(...) or the real part of complex attributions first."
            )
        if data.ndim != len(dims):
            raise ValueError(
                f"data must have {len(dims)} dimensions {dims}, got shape {data.shape}."
            )
        n_channels, n_bands = data.shape[-2:]
        if n_channels != info["nchan"]:
            raise ValueError(
                f"data has {n_channels} channels but info has {info['nchan']}; "
                "info must describe exactly the explained channels (see "
                "mne.pick_info)."
            )
        freqs = np.array(freqs, dtype=float)
        if freqs.ndim != 1 or freqs.size == 0:
            raise ValueError(
                f"freqs must be a non-empty 1-D array, got shape {freqs.shape}."
            )
        _validate_type(band_names, (list, tuple), "band_names", "list of str")
        band_names = list(band_names)
        for name in band_names:
            _validate_type(name, str, "each band name")
        if len(band_names) != n_bands:
            raise ValueError(
                f"data has {n_bands} bands but band_names has {len(band_names)}."
            )
        if len(set(band_names)) != len(band_names):
            raise ValueError(f"band_names must be unique, got {band_names}.")
        band_edges = np.array(band_edges, dtype=float)
        if band_edges.shape != (n_bands, 2):
            raise ValueError(
                f"band_edges must have shape ({n_bands}, 2) (fmin, fmax per band), "
                f"got {band_edges.shape}."
            )
        if not (band_edges[:, 0] < band_edges[:, 1]).all():
            raise ValueError("band_edges need fmin < fmax for every band.")
        _validate_type(method, str, "method")
        _validate_type(method_params, (dict, None), "method_params", "dict or None")
        method_params = json.loads(_params_to_json(method_params or {}))
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
        events, event_id = self._check_events(events, event_id, level, n_epochs)
        metadata = self._check_metadata(metadata, level, n_epochs)
        diagnostics = self._check_diagnostics(diagnostics, level, n_epochs)

        self._data = data
        self._info = info.copy()
        self._freqs = freqs
        self._band_names = band_names
        self._band_edges = band_edges
        self._method = method
        self._method_params = method_params
        self._dims = dims
        self._nave = nave
        self._events = events
        self._event_id = event_id
        self._metadata = metadata
        self._diagnostics = diagnostics

    @staticmethod
    def _check_events(events, event_id, level, n_epochs):
        _validate_type(event_id, (dict, None), "event_id", "dict or None")
        if events is None:
            if event_id is not None:
                raise ValueError("event_id was given without events.")
            return None, None
        if level == "group":
            raise ValueError(
                "events must be None for group-level data (dims without 'epoch')."
            )
        events = np.array(events)
        if events.dtype.kind not in "iu" or events.shape != (n_epochs, 3):
            raise ValueError(
                f"events must be an int array of shape ({n_epochs}, 3) like "
                f"epochs.events, got dtype {events.dtype} and shape "
                f"{events.shape}."
            )
        if event_id is None:
            event_id = {str(code): int(code) for code in np.unique(events[:, 2])}
        for key, code in event_id.items():
            _validate_type(key, str, "event_id keys")
            _validate_type(code, "int-like", f"event_id[{key!r}]")
        return events, {key: int(code) for key, code in event_id.items()}

    @staticmethod
    def _check_metadata(metadata, level, n_epochs):
        if metadata is None:
            return None
        pd = _check_pandas_installed()
        _validate_type(metadata, pd.DataFrame, "metadata", "pandas DataFrame")
        if level == "group":
            raise ValueError(
                "metadata must be None for group-level data (dims without 'epoch')."
            )
        if len(metadata) != n_epochs:
            raise ValueError(
                f"metadata must have one row per epoch ({n_epochs}), got "
                f"{len(metadata)}."
            )
        return metadata.reset_index(drop=True)  # a copy

    @staticmethod
    def _check_diagnostics(diagnostics, level, n_epochs):
        _validate_type(diagnostics, (dict, None), "diagnostics", "dict or None")
        out = {}
        for key, value in (diagnostics or {}).items():
            _validate_type(key, str, "diagnostics keys")
            value = np.array(value)
            if level == "instance" and (value.ndim == 0 or len(value) != n_epochs):
                raise ValueError(
                    f"diagnostics[{key!r}] must have one entry per epoch "
                    f"({n_epochs}) along its first axis, got shape {value.shape}."
                )
            out[key] = value
        return out

    # ------------------------------------------------------------------
    # state: the single source of truth for pickle, HDF5 and equality

    def __getstate__(self):
        """Return the state as a dict (used by pickle, save and ``==``)."""
        return dict(
            format_version=_FORMAT_VERSION,
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
        )

    def __setstate__(self, state):
        """Restore from a dict made by :meth:`__getstate__`."""
        version = state.get("format_version", _FORMAT_VERSION)
        if version > _FORMAT_VERSION:
            raise ValueError(
                f"This saliency was written in format version {version}, newer "
                f"than this mne_freqmask understands ({_FORMAT_VERSION}); upgrade "
                "mne_freqmask."
            )
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise ValueError(
                f"The saliency is incomplete: it lacks {missing} (a file cut "
                "short or written by another program?); save it again from the "
                "original object or re-run the explanation."
            )
        info = _info_from_state(state["info"])
        self.__init__(
            state["data"],
            info,
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
        )

    def __eq__(self, other):
        """Test equivalence (via :func:`mne.utils.object_diff` on the state)."""
        if not isinstance(other, SpectralSaliency):
            return NotImplemented
        return object_diff(self.__getstate__(), other.__getstate__()) == ""

    __hash__ = None

    def __repr__(self):
        """Return a summary string."""
        sizes = [
            f"{n} {dim}{'' if n == 1 else 's'}"
            for n, dim in zip(self.shape, self._dims, strict=True)
        ]
        if self.level == "group":
            group = "group"
            if self._nave is not None:
                group += f" of {self._nave} epoch{'' if self._nave == 1 else 's'}"
            head = f"{self._method}, {group}"
        else:
            head = self._method
        frange = f"{self._band_edges.min():0.1f}-{self._band_edges.max():0.1f} Hz"
        return f"<SpectralSaliency ({head}) | {' × '.join(sizes)}, {frange}>"

    def copy(self):
        """Return a deep copy.

        Returns
        -------
        saliency : instance of SpectralSaliency
            The copy.
        """
        out = type(self).__new__(type(self))
        out.__dict__.update(deepcopy(self.__dict__))
        return out

    # ------------------------------------------------------------------
    # properties

    @property
    def data(self):
        """The saliency array (a read-only view; see :meth:`get_data`)."""
        view = self._data.view()
        view.flags.writeable = False
        return view

    @property
    def info(self):
        """The :class:`mne.Info` of the explained channels."""
        return self._info

    @property
    def ch_names(self):
        """Channel names."""
        return self._info.ch_names

    @property
    def freqs(self):
        """Frequencies of the rfft bins in Hz."""
        return self._freqs

    @property
    def band_names(self):
        """Band names."""
        return list(self._band_names)

    @property
    def band_edges(self):
        """``(fmin, fmax)`` of each band in Hz, shape (n_bands, 2)."""
        return self._band_edges

    @property
    def bands(self):
        """Dict of band name -> ``(fmin, fmax)`` in Hz."""
        return {
            name: (float(lo), float(hi))
            for name, (lo, hi) in zip(self._band_names, self._band_edges, strict=True)
        }

    @property
    def method(self):
        """The explanation method."""
        return self._method

    @property
    def method_params(self):
        """The method's parameters (a copy)."""
        return deepcopy(self._method_params)

    @property
    def nave(self):
        """Number of epochs averaged (``None`` for per-epoch data)."""
        return self._nave

    @property
    def events(self):
        """The events of the epochs (``None`` at group level)."""
        return self._events

    @property
    def event_id(self):
        """Event names to codes (``None`` at group level)."""
        return self._event_id

    @property
    def metadata(self):
        """Per-epoch metadata (pandas DataFrame) or ``None``."""
        return self._metadata

    @property
    def diagnostics(self):
        """Per-epoch diagnostics of the fit, name -> array."""
        return self._diagnostics

    @property
    def dims(self):
        """Names of the data dimensions."""
        return self._dims

    @property
    def level(self):
        """``"instance"`` (one map per epoch) or ``"group"`` (one map)."""
        return "instance" if "epoch" in self._dims else "group"

    @property
    def shape(self):
        """Shape of the data."""
        return self._data.shape

    # ------------------------------------------------------------------
    # selection

    def _check_instance(self, what):
        if self.level != "instance":
            raise TypeError(
                f"{what} needs per-epoch saliency, but this one is group level "
                f"({self._dims}); use the output of explain() before .average()."
            )

    def __len__(self):
        """Return the number of epochs (instance level only).

        Returns
        -------
        n_epochs : int
            The number of epochs.
        """
        self._check_instance("len()")
        return self._data.shape[0]

    def __getitem__(self, item):
        """Select epochs, like :class:`mne.Epochs` (returns a new object).

        Parameters
        ----------
        item : int | slice | array-like | str | list of str
            An index, a slice, a boolean mask or an array of indices, an event
            name (``"/"``-separated tags as in MNE) or list of names, or a
            pandas query on the metadata (e.g. ``"subject == 3"``).

        Returns
        -------
        saliency : instance of SpectralSaliency
            The selected epochs (instance level only).
        """
        self._check_instance("Selecting epochs")
        n = len(self)
        if isinstance(item, str) or (
            isinstance(item, list | tuple)
            and len(item)
            and all(isinstance(it, str) for it in item)
        ):
            idx = self._str_to_idx(item)
        elif isinstance(item, slice):
            idx = np.arange(n)[item]
        elif isinstance(item, int | np.integer) and not isinstance(item, bool):
            k = operator.index(item)
            if not -n <= k < n:
                raise IndexError(f"Epoch index {k} out of range for {n} epochs.")
            idx = np.array([k % n])
        else:
            arr = np.asarray(item)
            if arr.size == 0 and arr.ndim == 1:
                arr = arr.astype(int)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise IndexError(
                        f"A boolean mask must have one entry per epoch ({n}), "
                        f"got shape {arr.shape}."
                    )
                idx = np.flatnonzero(arr)
            elif arr.dtype.kind in "iu" and arr.ndim == 1:
                if arr.size and not ((arr >= -n) & (arr < n)).all():
                    raise IndexError(f"Epoch indices out of range for {n} epochs.")
                idx = arr % n if n else arr
            else:
                raise TypeError(
                    "Epochs are selected by an int, a slice, a boolean mask, an "
                    "array of int, an event name or a metadata query string, got "
                    f"{type(item).__name__}."
                )
        if len(idx) == 0:
            raise IndexError(f"The selection {item!r} contains no epochs.")
        return self._subset(idx)

    def _str_to_idx(self, item):
        keys = [item] if isinstance(item, str) else list(item)
        names = list(self._event_id or {})
        matched = set()
        for key in keys:
            tags = set(key.split("/"))
            hits = [nm for nm in names if nm == key or tags <= set(nm.split("/"))]
            if not hits:
                break
            matched.update(hits)
        else:
            codes = [self._event_id[nm] for nm in matched]
            return np.flatnonzero(np.isin(self._events[:, 2], codes))
        if isinstance(item, str) and self._metadata is not None:
            try:
                sel = self._metadata.query(item, engine="python")
            except Exception as exp:
                raise KeyError(
                    f"{item!r} is neither an event name ({names}) nor a valid "
                    "pandas query on the metadata columns "
                    f"{list(self._metadata.columns)}: {exp}"
                ) from None
            return sel.index.to_numpy()
        raise KeyError(
            f"{item!r} matches no event name ({names})"
            + ("" if self._metadata is not None else " and there is no metadata")
            + "."
        )

    def _subset(self, idx):
        return type(self)(
            self._data[idx],
            self._info,
            self._freqs,
            self._band_names,
            self._band_edges,
            method=self._method,
            method_params=self._method_params,
            dims=self._dims,
            nave=self._nave,
            events=None if self._events is None else self._events[idx],
            event_id=self._event_id,
            metadata=None if self._metadata is None else self._metadata.iloc[idx],
            diagnostics={k: v[idx] for k, v in self._diagnostics.items()},
        )

    def _pick_idx(self, picks, exclude=()):
        return np.asarray(
            _picks_to_idx(self._info, picks, none="all", exclude=exclude), int
        )

    def _band_indices(self, bands):
        if bands is None:
            return np.arange(len(self._band_names))
        _validate_type(bands, (str, list, tuple), "bands", "None, str or list of str")
        bands = [bands] if isinstance(bands, str) else list(bands)
        if len(bands) == 0:
            raise ValueError("bands is empty; give at least one band name.")
        unknown = [b for b in bands if b not in self._band_names]
        if unknown:
            raise ValueError(
                f"Unknown band(s) {unknown}; this saliency has bands "
                f"{self._band_names}."
            )
        if len(set(bands)) != len(bands):
            raise ValueError(f"bands contains duplicates: {bands}.")
        return np.array([self._band_names.index(b) for b in bands], int)

    # ------------------------------------------------------------------
    # data access and reduction

    @fill_doc
    def get_data(self, picks=None, bands=None, return_bands=False):
        """Get the saliency as a NumPy array.

        Parameters
        ----------
        %(sal_picks)s
        %(sal_bands_select)s
        return_bands : bool
            Also return the names of the selected bands.

        Returns
        -------
        data : ndarray, shape ([n_epochs, ]n_channels, n_bands)
            A copy of the data.
        band_names : list of str
            The band names (only if ``return_bands=True``).
        """
        _validate_type(return_bands, bool, "return_bands")
        ch_idx = self._pick_idx(picks)
        band_idx = self._band_indices(bands)
        data = self._data[..., ch_idx, :][..., band_idx]
        if return_bands:
            return data, [self._band_names[i] for i in band_idx]
        return data

    def average(self, method="mean"):
        """Average the per-epoch maps into a group-level map.

        Parameters
        ----------
        method : "mean" | "median" | callable
            How to combine the epochs. A callable receives the data, shape
            ``(n_epochs, n_channels, n_bands)``, and must return an array of
            shape ``(n_channels, n_bands)``.

        Returns
        -------
        saliency : instance of SpectralSaliency
            Group-level saliency, ``dims=("channel", "band")``, with
            ``nave`` the number of epochs, no events or metadata and empty
            diagnostics.
        """
        self._check_instance("average()")
        if callable(method):
            data = np.asarray(method(self._data))
            expected = self._data.shape[1:]
            if data.shape != expected:
                raise ValueError(
                    f"The averaging callable must return shape {expected} "
                    f"(n_channels, n_bands), got {data.shape}."
                )
        else:
            _check_option("method", method, ("mean", "median"))
            func = np.mean if method == "mean" else np.median
            data = func(self._data, axis=0)
        return type(self)(
            data,
            self._info,
            self._freqs,
            self._band_names,
            self._band_edges,
            method=self._method,
            method_params=self._method_params,
            dims=_DIMS["group"],
            nave=len(self),
        )

    @fill_doc
    def pick(self, picks, exclude=()):
        """Pick a subset of channels, in place.

        Parameters
        ----------
        %(sal_picks)s
        exclude : list of str | "bads"
            Channels to exclude from ``picks`` (``"bads"``: those in
            ``info["bads"]``). Default: none.

        Returns
        -------
        saliency : instance of SpectralSaliency
            The object, modified in place.
        """
        idx = self._pick_idx(picks, exclude=exclude)
        if len(idx) == 0:
            raise ValueError("picks selects no channel.")
        pick_info(self._info, idx, copy=False)
        self._data = self._data[..., idx, :]
        return self

    @fill_doc
    def to_data_frame(self, picks=None, bands=None, index=None, long_format=True):
        """Export the saliency as a pandas DataFrame.

        Parameters
        ----------
        %(sal_picks)s
        %(sal_bands_select)s
        index : None | str | list of str
            Column(s) to use as the index. Long format: any of ``"epoch"``,
            ``"channel"``, ``"band"``; wide format: ``"epoch"``. ``None``
            (default) keeps a range index.
        long_format : bool
            ``True`` (default): one row per (epoch, channel, band) cell with
            columns ``epoch`` (per-epoch data only), ``channel``, ``band``,
            ``fmin``, ``fmax`` and ``saliency``. ``False``: one row per epoch
            (a single row at group level) with a column ``"{channel}_{band}"``
            per cell (after ``epoch``). The metadata columns, when present,
            are appended to each row of their epoch.

        Returns
        -------
        df : instance of pandas.DataFrame
            The table. Epochs are numbered ``0, ..., n_epochs - 1`` in their
            order in this object.
        """
        pd = _check_pandas_installed()
        _validate_type(long_format, bool, "long_format")
        data, band_names = self.get_data(picks, bands, return_bands=True)
        ch_names = [self.ch_names[i] for i in self._pick_idx(picks)]
        edges = self._band_edges[self._band_indices(bands)]
        instance = self.level == "instance"
        n_ep = data.shape[0] if instance else 1
        n_ch, n_b = len(ch_names), len(band_names)
        if long_format:
            cols = {}
            if instance:
                cols["epoch"] = np.repeat(np.arange(n_ep), n_ch * n_b)
            cols["channel"] = np.tile(np.repeat(ch_names, n_b), n_ep)
            cols["band"] = np.tile(band_names, n_ep * n_ch)
            cols["fmin"] = np.tile(edges[:, 0], n_ep * n_ch)
            cols["fmax"] = np.tile(edges[:, 1], n_ep * n_ch)
            cols["saliency"] = data.ravel()
            valid_index = ("epoch",) * instance + ("channel", "band")
            epoch_of_row = cols.get("epoch")
        else:
            cols = {"epoch": np.arange(n_ep)} if instance else {}
            flat = data.reshape(n_ep, n_ch * n_b)
            for k, (ch, band) in enumerate(
                (ch, band) for ch in ch_names for band in band_names
            ):
                cols[f"{ch}_{band}"] = flat[:, k]
            valid_index = ("epoch",) if instance else ()
            epoch_of_row = cols.get("epoch")
        df = pd.DataFrame(cols)
        if self._metadata is not None:
            clash = sorted(set(self._metadata.columns) & set(df.columns))
            if clash:
                raise ValueError(
                    f"Metadata column(s) {clash} clash with the table's own "
                    "columns; rename them in saliency.metadata first."
                )
            meta = self._metadata.iloc[epoch_of_row].reset_index(drop=True)
            df = pd.concat([df, meta], axis=1)
        if index is not None:
            _validate_type(index, (str, list, tuple), "index", "None, str or list")
            keys = [index] if isinstance(index, str) else list(index)
            if not valid_index:
                raise ValueError(
                    "index must be None for the wide table of group-level "
                    "saliency (it has a single row)."
                )
            for key in keys:
                _check_option("index", key, valid_index)
            df = df.set_index(keys if len(keys) > 1 else keys[0])
        return df

    # ------------------------------------------------------------------
    # I/O

    @verbose
    @fill_doc
    def save(self, fname, *, overwrite=False, verbose=None):
        """Save to an HDF5 file.

        The file is written under a temporary name in the same folder and then
        renamed, so an interrupted or failed save leaves no partial file (and
        an existing file untouched).

        Parameters
        ----------
        %(sal_fname_h5)s
        overwrite : bool
            Replace ``fname`` if it exists. Default ``False``.
        %(verbose)s

        See Also
        --------
        read_saliency
        """
        import h5io

        fname = _check_h5_fname(fname)
        _validate_type(overwrite, bool, "overwrite")
        if fname.exists():
            if fname.is_dir():
                raise IsADirectoryError(f"{fname} is a folder, not a file name.")
            if not overwrite:
                raise FileExistsError(
                    f"{fname} already exists; pass overwrite=True to replace it."
                )
            logger.info(f"Overwriting existing file {fname}")
        if not fname.parent.is_dir():
            raise FileNotFoundError(
                f"The folder {fname.parent} does not exist; create it first."
            )
        tmp = fname.with_name(f".{fname.name}.{uuid.uuid4().hex[:12]}.tmp")
        logger.info(f"Writing {fname}")
        try:
            h5io.write_hdf5(
                str(tmp),
                self.__getstate__(),
                title=_H5_TITLE,
                slash="replace",
                overwrite=True,
            )
            _write_checksum(tmp)
            os.replace(tmp, fname)
        except BaseException:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # pragma: no cover
                pass
            raise

    # ------------------------------------------------------------------
    # plots (the functions live in viz.py)

    @copy_function_doc_to_method_doc(plot_saliency_topomap)
    def plot_topomap(
        self,
        bands=None,
        *,
        vlim="joint",
        cmap="Reds",
        sensors=True,
        contours=6,
        axes=None,
        colorbar=True,
        show=True,
    ):
        return plot_saliency_topomap(
            self,
            bands=bands,
            vlim=vlim,
            cmap=cmap,
            sensors=sensors,
            contours=contours,
            axes=axes,
            colorbar=colorbar,
            show=show,
        )

    @copy_function_doc_to_method_doc(plot_saliency_bands)
    def plot_bands(
        self,
        *,
        picks=None,
        bands=None,
        cmap="Reds",
        vlim=(None, None),
        axes=None,
        colorbar=True,
        show=True,
    ):
        return plot_saliency_bands(
            self,
            picks=picks,
            bands=bands,
            cmap=cmap,
            vlim=vlim,
            axes=axes,
            colorbar=colorbar,
            show=show,
        )

    @copy_function_doc_to_method_doc(plot_saliency)
    def plot(self, *, picks=None, axes=None, show=True):
        return plot_saliency(self, picks=picks, axes=axes, show=show)


def _check_h5_fname(fname):
    _validate_type(fname, "path-like", "fname")
    fname = Path(fname).expanduser().absolute()
    if fname.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(
            f"fname must end with .h5 or .hdf5 (an HDF5 file), got {fname.name!r}."
        )
    return fname


@verbose
@fill_doc
def read_saliency(fname, verbose=None):
    """Read a :class:`SpectralSaliency` from an HDF5 file.

    Parameters
    ----------
    fname : path-like
        A file written by :meth:`SpectralSaliency.save`.
    %(verbose)s

    Returns
    -------
    saliency : instance of SpectralSaliency
        The saliency, equal (``==``) to the one saved.

    See Also
    --------
    SpectralSaliency.save
    """
    import h5io

    _validate_type(fname, "path-like", "fname")
    fname = Path(fname).expanduser().absolute()
    if not fname.is_file():
        raise FileNotFoundError(f"No such file: {fname}")
    logger.info(f"Reading {fname}")
    try:
        state = h5io.read_hdf5(str(fname), title=_H5_TITLE, slash="replace")
    except (ValueError, OSError) as exp:
        raise ValueError(
            f"{fname} is not a SpectralSaliency file written by "
            f"SpectralSaliency.save ({exp})."
        ) from None
    if not isinstance(state, dict):
        raise ValueError(
            f"{fname} is not a SpectralSaliency file written by "
            f"SpectralSaliency.save (its content is a {type(state).__name__})."
        )
    _verify_checksum(fname, state)
    out = SpectralSaliency.__new__(SpectralSaliency)
    try:
        out.__setstate__(state)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exp:
        raise ValueError(
            f"{fname} cannot be read back as a SpectralSaliency: {exp}"
        ) from None
    return out


# ----------------------------------------------------------------------
# file integrity: a SHA-256 of the state as read back from the file


def _info_from_state(info):
    """An :class:`mne.Info` from the state, checked for consistency."""
    if isinstance(info, Info):
        return info
    if not isinstance(info, dict):
        raise ValueError(
            f"The stored info is a {type(info).__name__}, not an mne.Info."
        )
    try:
        info = Info(**info)
        names = [ch["ch_name"] for ch in info["chs"]]
        if info["nchan"] != len(names) or list(info["ch_names"]) != names:
            raise ValueError(
                f"nchan={info['nchan']} and ch_names {list(info['ch_names'])} do "
                f"not match the {len(names)} channel entries {names}"
            )
        info._check_consistency()
    except Exception as exp:  # any failure: the stored info is unusable
        raise ValueError(
            f"The stored info is inconsistent ({type(exp).__name__}: {exp})."
        ) from None
    return info


def _digest(obj, h=None):
    """SHA-256 of a nested state (dicts, lists, arrays, scalars, strings).

    Canonical: dict keys are sorted, arrays contribute their dtype, shape and
    bytes, other values their type and ``repr``. Applied to the state as
    h5io reads it back, so that writing and reading agree.
    """
    top = h is None
    if top:
        h = hashlib.sha256()
    if isinstance(obj, dict):
        h.update(b"{%d" % len(obj))
        for key in sorted(obj, key=repr):
            _digest(key, h)
            _digest(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[%d" % len(obj))
        for item in obj:
            _digest(item, h)
        h.update(b"]")
    elif isinstance(obj, np.ndarray) and obj.dtype != object:
        arr = np.ascontiguousarray(obj)
        h.update(f"a{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    elif isinstance(obj, np.ndarray):
        _digest(obj.tolist(), h)
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    return h.hexdigest() if top else None


def _write_checksum(fname):
    """Store the SHA-256 of the state in ``fname`` (read back from it)."""
    import h5io

    state = h5io.read_hdf5(str(fname), title=_H5_TITLE, slash="replace")
    h5io.write_hdf5(
        str(fname),
        {"algorithm": "sha256", "digest": _digest(state)},
        title=_H5_CHECKSUM_TITLE,
        overwrite="update",
    )


def _verify_checksum(fname, state):
    """Raise if the state read from ``fname`` does not match its checksum."""
    import h5io

    try:
        stored = h5io.read_hdf5(str(fname), title=_H5_CHECKSUM_TITLE)
    except ValueError:  # no checksum: a file written before checksums existed
        logger.info(f"{fname} holds no checksum (older file); not verified.")
        return
    except OSError as exp:
        raise ValueError(
            f"{fname} is damaged: its checksum is unreadable ({exp})."
        ) from None
    digest = stored.get("digest") if isinstance(stored, dict) else None
    if not isinstance(digest, str) or stored.get("algorithm") != "sha256":
        raise ValueError(f"{fname} is damaged: its checksum entry is unreadable.")
    if _digest(state) != digest:
        raise ValueError(
            f"{fname} is damaged: its content does not match the SHA-256 "
            "checksum written with it (the file was changed or corrupted after "
            "saving); save it again or re-run the explanation."
        )
