"""The result of :func:`mne_freqmask.explain`: :class:`SpectralSaliency`.

Modelled on MNE's :class:`mne.time_frequency.Spectrum`: ``__getstate__`` /
``__setstate__`` are the single source of truth for pickling, HDF5 files
(:meth:`SpectralSaliency.save`, :func:`read_saliency`) and equality. This
module imports no torch, so saved explanations can be read, plotted and
tabulated without it.
"""

from mne.utils import _validate_type, verbose

from ._saliency_base import BaseSaliency, container_of
from ._saliency_io import H5_TITLE, read_state
from ._saliency_utils import concatenate, grid_of, unpack_grid
from .utils._docs import fill_doc
from .viz import PlotSaliencyMixin

_H5_TITLE = H5_TITLE


@fill_doc
class SpectralSaliency(BaseSaliency, PlotSaliencyMixin):
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
    %(sal_container_info)s
    freqs : array-like, shape (n_freqs,) | FrequencyGrid
        Frequencies of the rfft bins in Hz, or the
        :class:`~mne_freqmask.FrequencyGrid` the saliency was computed on
        (then ``band_names`` and ``band_edges`` come from it and must be
        None, and ``n_times`` is the grid's).
    band_names : list of str | None
        Name of each band.
    band_edges : array-like, shape (n_bands, 2) | None
        ``(fmin, fmax)`` of each band in Hz.
    %(sal_container_method)s
    dims : tuple of str | None
        ``("epoch", "channel", "band")`` (instance level; None, the default,
        is the same) or ``("channel", "band")`` (group level).
    %(sal_container_epochs)s
    n_times : int | None
        Number of time samples of the explained epochs (with
        ``info["sfreq"]``, it fixes the rfft bins; see :attr:`grid`). None
        infers it from ``freqs``.
    %(sal_container_provenance)s

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

    _extra_dims = ()

    _unpack_grid = staticmethod(unpack_grid)  # freqs may be a FrequencyGrid

    # ------------------------------------------------------------------
    # the cells, alike for both containers (see _saliency_cells)

    @classmethod
    def _from_grid(cls, data, info, grid, **kwargs):
        return cls(data, info, grid, **kwargs)

    def _windows(self):
        return None

    def _cell_times(self):
        return None

    def _truth_args(self):
        return (self._band_edges,)

    def _remake_windows(self, given):
        if given is not None:
            raise ValueError(
                f"explain_kw has time_windows={given!r}, but the saliency is a "
                "whole-epoch SpectralSaliency (channel x band cells); check a "
                "SpectralSaliencyTFR from explain(..., time_windows=...) "
                "instead, or leave time_windows out of explain_kw."
            )
        return None

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

    def to_spectrum(self, freqs="bands"):
        """Convert to MNE's spectrum container.

        Parameters
        ----------
        freqs : "bands" | "bins"
            What the frequency axis of the spectrum holds. ``"bands"``
            (default): one frequency per band, its centre
            ``(fmin + fmax) / 2`` in Hz, in the order of ``band_names`` (as
            :meth:`SpectralSaliencyTFR.to_tfr
            <mne_freqmask.SpectralSaliencyTFR.to_tfr>` does). MNE's
            containers have no place for the band names and edges: they
            stay in ``band_names`` and ``band_edges``, and
            ``spectrum.freqs[k]`` is the centre of ``band_names[k]``.
            ``"bins"``: the rfft bins of the explained epochs (those of
            ``grid``), each holding the value of the band it belongs to
            (bins in no band are left out), so that a plot of the spectrum
            draws each band over its true width.

        Returns
        -------
        spectrum : instance of EpochsSpectrumArray | SpectrumArray
            :class:`~mne.time_frequency.EpochsSpectrumArray` for per-epoch
            maps (with the events, ``event_id`` and metadata),
            :class:`~mne.time_frequency.SpectrumArray` for a group-level map,
            with a copy of ``info``.

        Notes
        -----
        MNE labels an array spectrum a "Power Spectrum" of an "unknown
        method": the values are the saliency of ``method``, not power, so
        plot them without a decibel scale
        (``spectrum.plot(dB=False, amplitude=False)``).
        """
        from ._saliency_mne import spectrum_of

        return spectrum_of(self, freqs)


@verbose
@fill_doc
def read_saliency(fname, verbose=None):
    """Read a saliency map from an HDF5 file.

    Like :func:`mne.time_frequency.read_spectrum`, one reader for every
    kind: the class is picked from the dimensions stored in the file.

    Parameters
    ----------
    fname : path-like
        A file written by :meth:`SpectralSaliency.save` or
        :meth:`SpectralSaliencyTFR.save
        <mne_freqmask.SpectralSaliencyTFR.save>`.
    %(verbose)s

    Returns
    -------
    saliency : instance of SpectralSaliency | SpectralSaliencyTFR
        The saliency, equal (``==``) to the one saved: a
        :class:`~mne_freqmask.SpectralSaliencyTFR` when its dims hold
        ``"time"``, else a :class:`SpectralSaliency`. Its
        :attr:`~SpectralSaliency.provenance` is empty for a file written
        before provenance was recorded.

    See Also
    --------
    SpectralSaliency.save
    mne_freqmask.SpectralSaliencyTFR.save

    Notes
    -----
    The file's bytes are checked against the SHA-256 checksum written with
    them before the file is parsed, so a damaged, truncated or foreign file
    ends in an error that names it (never in a hang of the HDF5 library).
    """
    return read_state(fname, container_of)


def concatenate_saliencies(saliencies):
    """Concatenate per-epoch saliencies, like :func:`mne.concatenate_epochs`.

    Parameters
    ----------
    saliencies : list of SpectralSaliency | list of SpectralSaliencyTFR
        Per-epoch saliencies of one kind, with the same channels, frequency
        grid (and windows) and method (e.g. one per subject or per chunk of
        a large dataset).

    Returns
    -------
    saliency : SpectralSaliency | SpectralSaliencyTFR
        All epochs in the order given (the class of the inputs). The method
        parameters are those of the first; events, metadata and diagnostics
        are concatenated when every input has them (and dropped otherwise);
        ``event_id`` is merged. The provenance is the inputs' when they are
        equal; otherwise it holds the entries they all share and
        ``"inputs"``, the list of each one's.
    """
    _validate_type(saliencies, (list, tuple), "saliencies", "list of SpectralSaliency")
    for k, sal in enumerate(saliencies):
        _validate_type(sal, BaseSaliency, f"saliencies[{k}]", "SpectralSaliency")
    return concatenate(saliencies)
