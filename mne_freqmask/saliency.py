"""The result of :func:`mne_freqmask.explain`: :class:`SpectralSaliency`.

Modelled on MNE's :class:`mne.time_frequency.Spectrum`: ``__getstate__`` /
``__setstate__`` are the single source of truth for pickling, HDF5 files
(:meth:`SpectralSaliency.save`, :func:`read_saliency`) and equality. This
module imports no torch, so saved explanations can be read, plotted and
tabulated without it.
"""

import json

import numpy as np
from mne import Info, pick_info
from mne._fiff.pick import _picks_to_idx
from mne.utils import _check_option, _validate_type, verbose

from ._saliency_io import (
    H5_TITLE,
    read_state,
    write_state,
)
from ._saliency_norm import NormalizeMixin
from ._saliency_props import SaliencyProperties
from ._saliency_utils import (
    DataFrameMixin,
    EpochSelectionMixin,
    _params_to_json,
    average_epochs,
    check_arrays,
    check_diagnostics,
    check_events,
    check_metadata,
    concatenate,
    grid_of,
    saliency_repr,
    unpack_grid,
)
from .spectral import band_indices
from .utils._docs import fill_doc
from .viz import PlotSaliencyMixin

_DIMS = {
    "instance": ("epoch", "channel", "band"),
    "group": ("channel", "band"),
}
_H5_TITLE = H5_TITLE


class SpectralSaliency(
    SaliencyProperties,
    EpochSelectionMixin,
    DataFrameMixin,
    NormalizeMixin,
    PlotSaliencyMixin,
):
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
    freqs : array-like, shape (n_freqs,) | FrequencyGrid
        Frequencies of the rfft bins in Hz, or the
        :class:`~mne_freqmask.FrequencyGrid` the saliency was computed on
        (then ``band_names`` and ``band_edges`` come from it and must be
        None, and ``n_times`` is the grid's).
    band_names : list of str | None
        Name of each band.
    band_edges : array-like, shape (n_bands, 2) | None
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
    n_times : int | None
        Number of time samples of the explained epochs (with
        ``info["sfreq"]``, it fixes the rfft bins; see :attr:`grid`). None
        infers it from ``freqs``.
    provenance : dict | None
        What made the map (JSON-like; see :attr:`provenance`):
        :func:`~mne_freqmask.explain` fills it. None: an empty dict.

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
        band_names=None,
        band_edges=None,
        *,
        method,
        method_params=None,
        dims=("epoch", "channel", "band"),
        nave=None,
        events=None,
        event_id=None,
        metadata=None,
        diagnostics=None,
        n_times=None,
        provenance=None,
    ):
        _validate_type(info, Info, "info", "mne.Info")
        freqs, band_names, band_edges, n_times = unpack_grid(
            freqs, band_names, band_edges, n_times, info
        )
        _validate_type(n_times, ("int-like", None), "n_times", "int or None")
        _validate_type(dims, (tuple, list), "dims", "tuple of str")
        dims = tuple(dims)
        _check_option("dims", dims, list(_DIMS.values()))
        level = "instance" if "epoch" in dims else "group"
        data, freqs, band_names, band_edges = check_arrays(
            data, info, freqs, band_names, band_edges, dims
        )
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
        events, event_id = check_events(events, event_id, level, n_epochs)
        metadata = check_metadata(metadata, level, n_epochs)
        diagnostics = check_diagnostics(diagnostics, level, n_epochs)

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
        self._n_times = None if n_times is None else int(n_times)
        self._set_provenance(provenance)

    # ------------------------------------------------------------------
    # state: the single source of truth for pickle, HDF5 and equality

    def __repr__(self):
        """Return a summary string."""
        return saliency_repr(self)

    # ------------------------------------------------------------------
    # properties
    @property
    def grid(self):
        """The :class:`~mne_freqmask.FrequencyGrid` the saliency was computed on.

        Rebuilt from the state (``info["sfreq"]``, the number of samples, the
        band names and edges), so it is also there after
        :func:`read_saliency`; the evaluation functions use it to put the
        cells back on the epochs' rfft bins.
        """
        return grid_of(
            self._info["sfreq"],
            self._freqs,
            self._n_times,
            self._band_names,
            self._band_edges,
        )

    def _pick_idx(self, picks, exclude=()):
        return np.asarray(
            _picks_to_idx(self._info, picks, none="all", exclude=exclude), int
        )

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
        band_idx = band_indices(self._band_names, bands)
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
            ``nave`` the number of epochs, no events or metadata, empty
            diagnostics and the same provenance.
        """
        self._check_instance("average()")
        return type(self)(
            average_epochs(self._data, method),
            self._info,
            self._freqs,
            self._band_names,
            self._band_edges,
            method=self._method,
            method_params=self._method_params,
            dims=_DIMS["group"],
            nave=len(self),
            n_times=self._n_times,
            provenance=self._provenance,
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
        write_state(fname, self.__getstate__(), overwrite)


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
        The saliency, equal (``==``) to the one saved, with its
        :attr:`~SpectralSaliency.provenance` (empty for a file written
        before provenance was recorded).

    See Also
    --------
    SpectralSaliency.save

    Notes
    -----
    The file's bytes are checked against the SHA-256 checksum written with
    them before the file is parsed, so a damaged, truncated or foreign file
    ends in an error that names it (never in a hang of the HDF5 library).
    """
    return read_state(
        fname,
        SpectralSaliency,
        time_resolved=False,
        other=("SpectralSaliencyTFR", "mne_freqmask.read_saliency_tfr"),
    )


def concatenate_saliencies(saliencies):
    """Concatenate per-epoch saliencies, like :func:`mne.concatenate_epochs`.

    Parameters
    ----------
    saliencies : list of SpectralSaliency
        Per-epoch saliencies of the same channels, frequency grid and method
        (e.g. one per subject or per chunk of a large dataset).

    Returns
    -------
    saliency : SpectralSaliency
        All epochs in the order given. The method parameters are those of the
        first; events, metadata and diagnostics are concatenated when every
        input has them (and dropped otherwise); ``event_id`` is merged.
        The provenance is the inputs' when they are equal; otherwise it holds
        the entries they all share and ``"inputs"``, the list of each one's.
    """
    _validate_type(saliencies, (list, tuple), "saliencies", "list of SpectralSaliency")
    for k, sal in enumerate(saliencies):
        _validate_type(sal, SpectralSaliency, f"saliencies[{k}]")
    return concatenate(saliencies)
