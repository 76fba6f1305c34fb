"""The read-only face shared by SpectralSaliency and SpectralSaliencyTFR.

The properties over the state (``_data``, ``_info``, ``_freqs``, ...) that
both containers set in their ``__init__``; no torch.
"""

from copy import deepcopy


class SaliencyProperties:
    """Public properties of a saliency container (see SpectralSaliency)."""

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
