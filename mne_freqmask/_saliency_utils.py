"""Parts of the saliency containers kept out of their modules.

JSON conversion of parameters and metadata, checks of the arrays and of the
per-epoch attributes, concatenation, and two mixins (in the way of MNE's
``GetEpochsMixin`` and ``ToDataFrameMixin``): selecting epochs and
exporting a table. No torch.
"""

import json
import operator
import os

import numpy as np
from mne.utils import _check_option, _check_pandas_installed, _validate_type

from mne_freqmask._provenance import merge_provenance, provenance_repr
from mne_freqmask._report import _plural
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._docs import fill_doc


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


def check_events(events, event_id, level, n_epochs):
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


def check_metadata(metadata, level, n_epochs):
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
            f"metadata must have one row per epoch ({n_epochs}), got {len(metadata)}."
        )
    return metadata.reset_index(drop=True)  # a copy


#: the record of what each map explains (issue #29): the class index per
#: epoch, ``diagnostics[EXPLAINED]``, and how :func:`mne_freqmask.explain`
#: chose it, ``method_params["target"]``: one of :data:`TARGET_MODES`
#: (``"mixed"`` after concatenating maps chosen in different ways)
EXPLAINED = "explained_class"
#: ``target=None`` (the model's prediction), ``"true"`` (the labels), an array
TARGET_MODES = ("prediction", "true", "given")


def explained_classes(sal, what="saliency"):
    """The class index that each epoch's map of ``sal`` explains.

    Raises, naming the fix, for a group-level map (it explains no single
    epoch) and for a map without the record (built by hand, read from a file
    written before the record existed, or concatenated with such a map).
    """
    if sal.level != "instance":
        raise ValueError(
            f"{what} is a group-level map: it explains no single epoch's class, "
            'so y="explained" cannot score it; evaluate the per-epoch map (before '
            ".average()), or pass y (one class per epoch) or y=None (the labels)."
        )
    classes = sal.diagnostics.get(EXPLAINED)
    if classes is None:
        raise ValueError(
            f"{what} does not record the class it explains (diagnostics["
            f'"{EXPLAINED}"]): it was built by hand, read from a file written '
            "before mne_freqmask recorded it, or concatenated with such a map. "
            "Explain the epochs again with mne_freqmask.explain, or pass y (the "
            "class of each epoch) or y=None (the labels of the events)."
        )
    return np.asarray(classes, int)


def explained_repr(sal):
    """``"explains the prediction"`` etc. for the repr; None without a record."""
    how = sal.method_params.get("target")
    words = {
        "prediction": "the prediction",
        "true": "the true class",
        "given": "given classes",
        "mixed": "mixed targets",
    }
    return None if how not in words else f"explains {words[how]}"


def check_diagnostics(diagnostics, level, n_epochs):
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


def unpack_grid(freqs, band_names, band_edges, n_times, info):
    """``freqs, band_names, band_edges, n_times`` from a FrequencyGrid or as given."""
    if isinstance(freqs, FrequencyGrid):
        if band_names is not None or band_edges is not None:
            raise ValueError(
                "band_names and band_edges must be None when freqs is a "
                "FrequencyGrid (they come from the grid)."
            )
        if n_times is not None and int(n_times) != freqs.n_times:
            raise ValueError(
                f"n_times={n_times} differs from the grid's ({freqs.n_times})."
            )
        if not np.isclose(freqs.sfreq, info["sfreq"]):
            raise ValueError(
                f"The grid's sfreq ({freqs.sfreq}) differs from "
                f"info['sfreq'] ({info['sfreq']})."
            )
        freqs, band_names, band_edges, n_times = (
            freqs.freqs,
            freqs.band_names,
            freqs.band_edges,
            freqs.n_times,
        )
    return freqs, band_names, band_edges, n_times


def check_arrays(data, info, freqs, band_names, band_edges, dims):
    """Check the arrays of a saliency container; return them as stored."""
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
    axis = dims.index("channel")
    n_channels, n_bands = data.shape[axis : axis + 2]
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
    return data, freqs, band_names, band_edges


def check_order(first, other, name, first_name):
    """Raise if ``other`` has the channels of ``first`` in another order."""
    if other.ch_names != first.ch_names and sorted(other.ch_names) == sorted(
        first.ch_names
    ):
        raise ValueError(
            f"{name} has the channels of {first_name} in another order; put "
            f"them in the same order first, e.g. {name}.pick({first_name}.ch_names)."
        )


def concatenate(saliencies):
    """:func:`~mne_freqmask.concatenate_saliencies` of checked saliencies."""
    if len(saliencies) == 0:
        raise ValueError("saliencies is empty; give at least one SpectralSaliency.")
    for k, sal in enumerate(saliencies):
        if sal.level != "instance":
            raise ValueError(
                f"saliencies[{k}] is group level; concatenate per-epoch saliencies "
                "and average the result."
            )
    first = saliencies[0]
    for k, sal in enumerate(saliencies[1:], 1):
        check_order(first, sal, f"saliencies[{k}]", "saliencies[0]")
        if not first._same_cells(sal) or sal.method != first.method:
            raise ValueError(
                f"saliencies[{k}] ({sal!r}) differs from saliencies[0] "
                f"({first!r}) in its kind, channels, bands, frequencies, windows "
                "or method."
            )
    events = event_id = metadata = None
    if all(s.events is not None for s in saliencies):
        events = np.concatenate([s.events for s in saliencies])
        event_id = {}
        for sal in saliencies:
            event_id.update(sal.event_id)
    if all(s.metadata is not None for s in saliencies):
        import pandas as pd

        metadata = pd.concat([s.metadata for s in saliencies], ignore_index=True)
    keys = set.intersection(*(set(s.diagnostics) for s in saliencies))
    diagnostics = {
        key: np.concatenate([s.diagnostics[key] for s in saliencies])
        for key in sorted(keys)
    }
    params = first.method_params
    if len({s.method_params.get("target") for s in saliencies}) > 1:
        params["target"] = "mixed"  # the per-epoch classes stay exact
    return first._replace(
        np.concatenate([s.get_data() for s in saliencies]),
        method_params=params,
        events=events,
        event_id=event_id,
        metadata=metadata,
        diagnostics=diagnostics,
        provenance=merge_provenance([s.provenance for s in saliencies]),
    )


def grid_of(sfreq, freqs, n_times, band_names, band_edges):
    """The :class:`~mne_freqmask.FrequencyGrid` of a saliency's state."""
    sfreq = float(sfreq)
    if n_times is None and len(freqs) > 1 and freqs[1] > freqs[0]:
        n_times = int(round(sfreq / (freqs[1] - freqs[0])))
    if n_times is None or n_times < 2 or n_times // 2 + 1 != len(freqs):
        ok = False
    else:
        ok = np.allclose(np.fft.rfftfreq(n_times, 1.0 / sfreq), freqs)
    if not ok:
        raise ValueError(
            f"The {len(freqs)} frequencies of this saliency are not the rfft "
            f"bins of epochs sampled at info['sfreq'] = {sfreq} Hz, so it "
            "has no FrequencyGrid; build it from a FrequencyGrid (or give "
            "n_times and the rfft frequencies)."
        )
    return FrequencyGrid.from_edges(sfreq, n_times, band_names, band_edges)


def saliency_repr(sal):
    """``repr`` of a saliency container, in the style of MNE's Spectrum."""
    sizes = " × ".join(_plural(n, d) for n, d in zip(sal.shape, sal.dims, strict=True))
    head = sal.method
    if sal.level == "group":
        head += ", group"
        if sal.nave is not None:
            head += f" of {_plural(sal.nave, 'epoch')}"
    edges = sal.band_edges
    parts = [
        f"{sizes}, {edges.min():0.1f}-{edges.max():0.1f} Hz{sal._repr_axes()}",
        explained_repr(sal),
        provenance_repr(sal.provenance),
        steps_summary(sal.diagnostics),
    ]
    body = "; ".join(p for p in parts if p)
    return f"<{type(sal).__name__} ({head}) | {body}>"


#: short names of the ``diagnostics["stop"]`` codes 0, 1, 2, in the order of
#: ``mne_freqmask.methods._stopping.STOP_REASONS`` (converged, n_steps
#: reached, stopped at the first step early stopping allows)
STOP_LABELS = ("converged", "cap", "first allowed step")


def steps_summary(diagnostics):
    """One line on the fit's step counts and stop reasons, or None.

    Parameters
    ----------
    diagnostics : dict
        ``SpectralSaliency.diagnostics``; read are ``"n_steps"`` (steps per
        epoch) and, when present, ``"stop"`` (codes of :data:`STOP_LABELS`),
        or ``"n_draws"`` (draws per epoch of a method that does not stop,
        such as FreqMask's expected gradients: ``"draws: median 100 (max
        100)"``).

    Returns
    -------
    line : str | None
        E.g. ``"steps: median 58 (max 300); stopped: converged 40, cap 3,
        first allowed step 2"``; None without per-epoch step counts.
    """
    draws = np.asarray((diagnostics or {}).get("n_draws", []))
    if draws.ndim == 1 and len(draws):  # a fixed number of draws, no stopping
        return f"draws: median {np.median(draws):g} (max {int(draws.max())})"
    steps = np.asarray((diagnostics or {}).get("n_steps", []))
    if steps.ndim != 1 or not len(steps):
        return None
    line = f"steps: median {np.median(steps):g} (max {int(steps.max())})"
    stop = (diagnostics or {}).get("stop")
    if stop is not None and np.shape(stop) == steps.shape:
        counts = np.bincount(np.asarray(stop, int), minlength=len(STOP_LABELS))
        line += "; stopped: " + ", ".join(
            f"{label} {int(n)}" for label, n in zip(STOP_LABELS, counts, strict=False)
        )
    return line


def average_epochs(data, method):
    """Combine per-epoch maps ``(n_epochs, ...)`` into one (the first axis)."""
    if callable(method):
        out = np.asarray(method(data))
        if out.shape != data.shape[1:]:
            raise ValueError(
                f"The averaging callable must return shape {data.shape[1:]} "
                f"(the data without the epoch axis), got {out.shape}."
            )
        return out
    _check_option("method", method, ("mean", "median"))
    func = np.mean if method == "mean" else np.median
    return func(data, axis=0)


class EpochSelectionMixin:
    """``len(saliency)`` and ``saliency[...]`` over epochs, like mne.Epochs."""

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


class DataFrameMixin:
    """:meth:`to_data_frame` of both containers (like MNE's ``ToDataFrameMixin``)."""

    @fill_doc
    def to_data_frame(
        self,
        picks=None,
        bands=None,
        index=None,
        long_format=True,
        *,
        tmin=None,
        tmax=None,
    ):
        """Export the saliency as a pandas DataFrame.

        Parameters
        ----------
        %(sal_picks)s
        %(sal_bands_select)s
        index : None | str | list of str
            Column(s) to use as the index. Long format: any of ``"epoch"``,
            ``"channel"``, ``"band"`` (and ``"time"`` for a time-resolved
            map); wide format: ``"epoch"``. ``None`` (default) keeps a range
            index.
        long_format : bool
            ``True`` (default): one row per cell with columns ``epoch``
            (per-epoch data only), ``channel``, ``band``, ``fmin``, ``fmax``,
            ``time`` (the window centre in s; time-resolved maps only) and
            ``saliency``. ``False``: one row per epoch (a single row at group
            level) with a column per cell (after ``epoch``), named
            ``"{channel}_{band}"`` (``"{channel}_{band}_{time:g}"`` for a
            time-resolved map). The metadata columns, when present, are
            appended to each row of their epoch.
        tmin, tmax : float | None
            Time-resolved maps only: keep the windows centred in
            ``[tmin, tmax]`` s.

        Returns
        -------
        df : instance of pandas.DataFrame
            The table. Epochs are numbered ``0, ..., n_epochs - 1`` in their
            order in this object.
        """
        pd = _check_pandas_installed()
        _validate_type(long_format, bool, "long_format")
        ch, bi, ti = self._select(picks, bands, tmin=tmin, tmax=tmax)
        data = self._take(ch, bi, ti)
        instance = self.level == "instance"
        n_ep = data.shape[0] if instance else 1
        labels = {
            "channel": np.asarray(self.ch_names)[ch],
            "band": np.asarray(self._band_names)[bi],
        }
        if ti is not None:
            labels["time"] = self.times[ti]
        cell = np.meshgrid(*(np.arange(len(v)) for v in labels.values()), indexing="ij")
        cell = dict(zip(labels, (c.ravel() for c in cell), strict=True))
        if long_format:
            n_cells = len(cell["band"])
            cols = {"epoch": np.repeat(np.arange(n_ep), n_cells)} if instance else {}
            cols["channel"] = np.tile(labels["channel"][cell["channel"]], n_ep)
            cols["band"] = np.tile(labels["band"][cell["band"]], n_ep)
            cols["fmin"] = np.tile(self._band_edges[bi, 0][cell["band"]], n_ep)
            cols["fmax"] = np.tile(self._band_edges[bi, 1][cell["band"]], n_ep)
            if ti is not None:
                cols["time"] = np.tile(labels["time"][cell["time"]], n_ep)
            cols["saliency"] = data.ravel()
            valid_index = ("epoch",) * instance + tuple(labels)
        else:
            cols = {"epoch": np.arange(n_ep)} if instance else {}
            flat = data.reshape(n_ep, -1)
            for k in range(flat.shape[1]):
                name = "_".join(
                    f"{labels[key][cell[key][k]]:g}"
                    if key == "time"
                    else str(labels[key][cell[key][k]])
                    for key in labels
                )
                cols[name] = flat[:, k]
            valid_index = ("epoch",) if instance else ()
        df = pd.DataFrame(cols)
        if self._metadata is not None:
            clash = sorted(set(self._metadata.columns) & set(df.columns))
            if clash:
                raise ValueError(
                    f"Metadata column(s) {clash} clash with the table's own "
                    "columns; rename them in saliency.metadata first."
                )
            meta = self._metadata.iloc[cols["epoch"]].reset_index(drop=True)
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
