"""MNE TFR containers and plots of a SpectralSaliencyTFR.

A mixin of :class:`~mne_freqmask.SpectralSaliencyTFR` (what only the
time-resolved map has; the table is the base's ``to_data_frame``); no torch.
"""

import numpy as np
from mne._fiff.pick import _picks_to_idx
from mne.utils import _check_option

from mne_freqmask._color_scale import image_scale
from mne_freqmask._saliency_mne import cell_mask
from mne_freqmask.utils._docs import fill_doc


def _channels_text(names, n_max=4):
    """``"C3, Cz, C4"``, or ``"64 channels"`` when there are many."""
    names = list(names)
    return ", ".join(names) if len(names) <= n_max else f"{len(names)} channels"


class TFRExportMixin:
    """:meth:`to_tfr`, :meth:`plot`, :meth:`plot_topomap`."""

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
    def plot(
        self,
        picks=None,
        *,
        combine=None,
        tmin=None,
        tmax=None,
        vlim=None,
        cmap=None,
        title=None,
        axes=None,
        show=True,
    ):
        """Plot the band x time image of channels (epoch average).

        One row per band, labelled with its name and edges, one column per
        window (at its centre). Drawn here rather than by
        :meth:`mne.time_frequency.AverageTFR.plot` on :meth:`to_tfr`
        (which stays available): MNE puts the bands on a frequency axis at
        their centres and draws the rows' edges between the centres, so
        unequal bands (``"canonical"``) would read as the wrong ranges, and
        its default colour scale is symmetric about 0, which halves the
        scale of a positive map.

        Parameters
        ----------
        %(sal_picks)s
        combine : None | "mean"
            None (default, as MNE): one image per channel; ``"mean"``: one
            image of the channels' mean.
        tmin, tmax : float | None
            Draw the windows centred in ``[tmin, tmax]`` s (None: all).
        vlim : None | "symmetric" | tuple of (float | None)
            Colour limits, shared by all images. None (default):
            ``"symmetric"`` for a signed map (one holding a negative value),
            from ``-m`` to ``m`` with ``m`` the largest absolute value drawn;
            else the smallest / the largest value drawn (a None entry of a
            pair likewise); see :func:`~mne_freqmask.viz.color_scale`.
        cmap : None | str
            Matplotlib colour map. None (default): ``"RdBu_r"`` for a signed
            map, else ``"Reds"``.
        title : None | str
            Title of each image (None: the method and the channel).
        axes : None | Axes | list of Axes
            Where to draw, one per image (None: new figures).
        show : bool
            Show the figures.

        Returns
        -------
        figs : list of matplotlib.figure.Figure
            One figure per image, as :meth:`mne.time_frequency.AverageTFR.plot`
            returns them.
        """
        import matplotlib.pyplot as plt
        from mne.viz.utils import plt_show

        _check_option("combine", combine, (None, "mean"))
        sal = self if self.level == "group" else self.average()
        data, names, times = sal.get_data(
            picks, tmin=tmin, tmax=tmax, return_bands=True, return_times=True
        )
        ch = np.asarray(sal.ch_names)[_picks_to_idx(sal.info, picks, none="all")]
        if combine == "mean":
            images, labels = [data.mean(0)], ["mean of " + _channels_text(ch)]
        else:
            images, labels = list(data), list(ch)
        if axes is not None:
            axes = list(np.atleast_1d(axes))
            if len(axes) != len(images):
                raise ValueError(
                    f"axes must hold one Axes per image ({len(images)}), got "
                    f"{len(axes)}; pass combine='mean' for one image."
                )
        cmap, (lo, hi) = image_scale(self._data, data, cmap, vlim)
        step = float(np.diff(self._times).min()) if len(self._times) > 1 else 1.0
        extent = (times[0] - step / 2, times[-1] + step / 2, -0.5, len(names) - 0.5)
        edges = dict(zip(self._band_names, self._band_edges, strict=True))
        figs = []
        for k, (img, label) in enumerate(zip(images, labels, strict=True)):
            if axes is None:
                fig, ax = plt.subplots(
                    figsize=(7.0, 1.8 + 0.45 * len(names)), layout="constrained"
                )
            else:
                ax = axes[k]
                fig = ax.figure
            im = ax.imshow(
                img,
                aspect="auto",
                origin="lower",
                interpolation="nearest",
                cmap=cmap,
                vmin=lo,
                vmax=hi,
                extent=extent,
            )
            ax.set_yticks(
                np.arange(len(names)),
                [f"{n} ({edges[n][0]:g}-{edges[n][1]:g} Hz)" for n in names],
            )
            ax.set(
                xlabel="Window centre (s)",
                title=f"{self._method} saliency, {label}" if title is None else title,
            )
            fig.colorbar(im, ax=ax, label="saliency")
            figs.append(fig)
        plt_show(show)
        return figs

    def plot_topomap(self, tmin=None, tmax=None, bands=None, *, mask=None, **kwargs):
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
        mask : None | ndarray of bool | CellTestResult
            Channels to mark in each band's topomap: an array of shape
            ``(n_channels, n_bands, n_windows)``, ``(n_channels, n_bands)``
            or ``(n_channels,)`` (the map's channels, bands and windows), or
            the result of :func:`~mne_freqmask.evaluation.cell_permutation_test`
            on this map (its significant channel x band x window cells). A
            channel is marked in a band when its cell is marked in any of the
            windows drawn. ``mask_params`` (in ``kwargs``) says how.
        **kwargs
            Passed to :meth:`mne_freqmask.SpectralSaliency.plot_topomap`
            (``vlim``, ``cmap``, ``mask_params``, ``axes``, ``show``, ...).

        Returns
        -------
        fig : instance of matplotlib.figure.Figure
            The figure.
        """
        ti = self._time_idx(tmin, tmax)
        cells = cell_mask(mask, self.ch_names, self._band_names, self._times, ti)
        spectral = self.average(dim="times", tmin=tmin, tmax=tmax)
        if spectral.level == "instance":
            spectral = spectral.average()
        return spectral.plot_topomap(bands=bands, mask=cells, **kwargs)
