"""Tables, MNE TFR containers and plots of a SpectralSaliencyTFR.

A mixin of :class:`~mne_freqmask.SpectralSaliencyTFR` (as
``_saliency_utils.DataFrameMixin`` is of SpectralSaliency); no torch.
"""

import numpy as np
from mne.utils import _check_pandas_installed

from mne_freqmask.utils._docs import fill_doc


class TFRExportMixin:
    """:meth:`to_data_frame`, :meth:`to_tfr`, :meth:`plot`, :meth:`plot_topomap`."""

    @fill_doc
    def to_data_frame(self, picks=None, *, bands=None, tmin=None, tmax=None):
        """Export the saliency as a (long) pandas DataFrame.

        Parameters
        ----------
        %(sal_picks)s
        %(sal_bands_select)s
        tmin, tmax : float | None
            Keep the windows centred in ``[tmin, tmax]`` s.

        Returns
        -------
        df : instance of pandas.DataFrame
            One row per cell: ``epoch`` (per-epoch data only), ``channel``,
            ``band``, ``fmin``, ``fmax``, ``time`` (window centre, s) and
            ``saliency``, then the metadata columns of the row's epoch.
        """
        pd = _check_pandas_installed()
        ch, bi, ti = self._select(picks, bands, None, None, tmin, tmax)
        data = self._data[..., ch, :, :][..., bi, :][..., ti]
        lead = data.shape[:-3]
        grids = np.meshgrid(*(np.arange(n) for n in data.shape), indexing="ij")
        ep, c, b, t = ([None] * (4 - len(data.shape))) + [g.ravel() for g in grids]
        cols = {} if not lead else {"epoch": ep}
        names = np.asarray(self.ch_names)[ch]
        cols.update(
            channel=names[c],
            band=np.asarray(self._band_names)[bi][b],
            fmin=self._band_edges[bi, 0][b],
            fmax=self._band_edges[bi, 1][b],
            time=self._times[ti][t],
            saliency=data.ravel(),
        )
        df = pd.DataFrame(cols)
        if self._metadata is not None and lead:
            meta = self._metadata.iloc[ep].reset_index(drop=True)
            df = pd.concat([df, meta], axis=1)
        return df

    # ------------------------------------------------------------------
    # MNE's TFR containers and plots

    def to_tfr(self):
        """Convert to MNE's TFR container, one "frequency" per band.

        Returns
        -------
        tfr : instance of EpochsTFRArray | AverageTFRArray
            ``EpochsTFRArray`` for per-epoch data (with the events, event_id
            and metadata), ``AverageTFRArray`` (with ``nave``) for group level;
            ``freqs`` are the band centres in Hz, ``times`` the window
            centres, ``method`` the explanation method.
        """
        from mne.time_frequency import AverageTFRArray, EpochsTFRArray

        freqs = self._band_edges.mean(1)
        if self.level == "group":
            return AverageTFRArray(
                self._info,
                self._data,
                self._times,
                freqs,
                nave=self._nave,
                comment="saliency",
                method=self._method,
            )
        return EpochsTFRArray(
            self._info,
            self._data,
            self._times,
            freqs,
            comment="saliency",
            method=self._method,
            events=self._events,
            event_id=self._event_id,
            metadata=self._metadata,
        )

    @fill_doc
    def plot(self, picks=None, **kwargs):
        """Plot the band x time image of channels (epoch average).

        Delegates to :meth:`mne.time_frequency.AverageTFR.plot` on
        :meth:`to_tfr` (averaged over epochs), with the bands on the
        frequency axis at their centres.

        Parameters
        ----------
        %(sal_picks)s
        **kwargs
            Passed to :meth:`mne.time_frequency.AverageTFR.plot` (e.g.
            ``combine="mean"``, ``cmap``, ``axes``, ``show``).

        Returns
        -------
        figs : list of matplotlib.figure.Figure
            The figures, as MNE returns them.
        """
        sal = self if self.level == "group" else self.average()
        kwargs.setdefault("cmap", "Reds")
        return sal.to_tfr().plot(picks=picks, **kwargs)

    def plot_topomap(self, tmin=None, tmax=None, bands=None, **kwargs):
        """Plot topomaps of the saliency in a time range, one per band.

        The windows centred in ``[tmin, tmax]`` are averaged (and the epochs,
        for per-epoch data), and the map is drawn by
        :meth:`mne_freqmask.SpectralSaliency.plot_topomap`.

        Parameters
        ----------
        tmin, tmax : float | None
            The time range in seconds (None: from the first / to the last
            window).
        bands : None | str | list of str
            The bands to draw, by name; None draws all.
        **kwargs
            Passed to :meth:`mne_freqmask.SpectralSaliency.plot_topomap`
            (``vlim``, ``cmap``, ``axes``, ``show``, ...).

        Returns
        -------
        fig : instance of matplotlib.figure.Figure
            The figure.
        """
        spectral = self.average(dim="times", tmin=tmin, tmax=tmax)
        if spectral.level == "instance":
            spectral = spectral.average()
        return spectral.plot_topomap(bands=bands, **kwargs)
