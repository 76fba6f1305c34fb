"""What SpectralSaliency and SpectralSaliencyTFR share: state and properties.

The state (``__getstate__`` / ``__setstate__``, the single source of truth
for pickling, HDF5 files and ``==``), ``copy`` and the read-only properties
over the attributes (``_data``, ``_info``, ``_freqs``, ...) that both
containers set in their ``__init__``; no torch.
"""

import json
from copy import deepcopy

from mne.utils import _validate_type, object_diff

from ._saliency_io import check_state_keys, info_from_state
from ._saliency_utils import _metadata_from_json, _metadata_to_json, _params_to_json


class SaliencyProperties:
    """State and public properties of a saliency container.

    A container sets ``_format_version`` and may add its own state with
    ``_own_state()`` (keys -> values) and ``_own_kwargs(state)`` (the
    keyword arguments of its ``__init__`` that they give back).
    """

    _format_version = 1

    def _own_state(self):
        return {}

    def _own_kwargs(self, state):
        return {}

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

    def _repr_html_(self):
        """A small table of what the map is, for notebooks."""
        from ._report import saliency_html

        return saliency_html(self)
