"""Plots of a :class:`~mne_freqmask.saliency.SpectralSaliency`.

The methods :meth:`SpectralSaliency.plot_topomap`,
:meth:`SpectralSaliency.plot_bands` and :meth:`SpectralSaliency.plot` delegate to
the functions here and share their docstrings; :func:`plot_deletion_curves`
draws the table of :func:`mne_freqmask.evaluation.compare_methods`. This
module imports neither torch nor (until a plot is drawn) matplotlib.
"""

import inspect

import numpy as np
from mne._fiff.pick import _picks_to_idx
from mne.utils import _validate_type, copy_function_doc_to_method_doc

from ._color_scale import (  # noqa: F401 (public here)
    CMAP_SIGNED,
    CMAP_UNSIGNED,
    _check_vlim,
    _resolve_vlim,
    color_scale,
    image_scale,
    is_signed,
    scale_caption,
)
from ._report import add_saliency_to_report  # noqa: F401 (public here)
from ._saliency_mne import cell_mask
from ._saliency_norm import value_label
from .spectral import band_indices
from .utils._checks import _channels_without_positions
from .utils._docs import fill_doc

# what the plots use of a SpectralSaliency (this module does not import
# saliency.py, which imports it)
_SALIENCY_API = (
    "get_data",
    "info",
    "ch_names",
    "band_names",
    "level",
    "method",
    "normalization",
)


def _check_saliency(saliency):
    if not all(hasattr(saliency, attr) for attr in _SALIENCY_API):
        raise TypeError(
            "saliency must be an instance of SpectralSaliency, got "
            f"{type(saliency)} instead."
        )


def _pick_channels(saliency, picks):
    """Indices of ``picks`` among the saliency's channels (None: all)."""
    return np.asarray(_picks_to_idx(saliency.info, picks, none="all", exclude=()), int)


def _summary(saliency, picks=None, bands=None):
    """Epoch-averaged (n_channels, n_bands) map, with names and a title note."""
    ch_idx = _pick_channels(saliency, picks)
    band_idx = band_indices(saliency.band_names, bands)
    data = saliency.get_data(
        picks=ch_idx, bands=[saliency.band_names[i] for i in band_idx]
    )
    if saliency.level == "instance":
        data = data.mean(axis=0)
        n = len(saliency)
        note = f"mean over {n} epoch{'s' if n != 1 else ''}"
    elif saliency.nave is not None:
        note = f"group of {saliency.nave} epoch{'s' if saliency.nave != 1 else ''}"
    else:
        note = "group"
    ch_names = [saliency.ch_names[i] for i in ch_idx]
    return data, ch_names, band_idx, f"{saliency.method} saliency ({note})"


def _check_positions(info):
    missing = _channels_without_positions(info)
    if missing.any():
        names = [info.ch_names[i] for i in np.flatnonzero(missing)]
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise RuntimeError(
            f"No sensor positions for {len(names)} channel(s) ({shown}), so no "
            "topomap can be drawn. Set a montage with epochs.set_montage(...) "
            "before explaining (or on this object with "
            "saliency.info.set_montage(...)), e.g. with "
            "mne.channels.make_standard_montage('standard_1005')."
        )


def _new_axes(n_axes, figsize):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, n_axes, figsize=figsize, layout="constrained", squeeze=False
    )
    return fig, list(axes[0])


def _check_axes_list(axes, n_axes):
    from matplotlib.axes import Axes

    if isinstance(axes, Axes):
        axes = [axes]
    axes = list(np.ravel(np.asarray(axes, dtype=object)))
    if not all(isinstance(ax, Axes) for ax in axes):
        raise TypeError("axes must be a matplotlib Axes or a list of Axes.")
    if len(axes) != n_axes:
        raise ValueError(
            f"axes must hold one Axes per band ({n_axes}), got {len(axes)}."
        )
    return axes


def _check_axes_single(axes):
    from matplotlib.axes import Axes

    _validate_type(axes, (Axes, None), "axes", "matplotlib Axes or None")
    return axes


def _spatial_colors(info):
    """MNE-style spatial colors (x, y, z -> RGB), or None without positions."""
    if _channels_without_positions(info).any():
        return None
    locs = np.array([ch["loc"][:3] for ch in info["chs"]], float)
    rgb = locs - locs.min(axis=0)
    rgb /= np.maximum(rgb.max(axis=0), 1e-16)
    light = rgb.sum(axis=1) > 2.5
    rgb[light] -= 0.3
    return rgb


@fill_doc
def plot_saliency_topomap(
    saliency,
    bands=None,
    *,
    vlim=None,
    cmap=None,
    sensors=True,
    contours=6,
    mask=None,
    mask_params=None,
    axes=None,
    colorbar=True,
    show=True,
):
    """Plot one scalp topography of the saliency per band.

    Parameters
    ----------
    %(sal_saliency_plot)s
    %(sal_bands_select)s
    vlim : None | "joint" | "symmetric" | tuple of (float | None, float | None)
        Color limits. None (default): ``"symmetric"`` for a signed map (one
        holding a negative value), else ``"joint"`` (see
        :func:`~mne_freqmask.viz.color_scale`). ``"joint"`` shares one color
        scale, from the smallest to the largest plotted value, across all
        bands.
        ``"symmetric"`` shares one scale centred on 0, from ``-m`` to ``m``
        with ``m`` the largest absolute plotted value: the scale for signed
        relevance (LRP, gradients) with a diverging ``cmap`` such as
        ``"RdBu_r"``, where white is 0 and red and blue are evidence for and
        against the class. A ``(vmin, vmax)`` pair of floats is also shared;
        a ``None`` entry is computed for each band from its own values (one
        colorbar per band).
    %(sal_cmap)s
    sensors : bool | str
        Whether to mark the sensor positions; a str is a matplotlib format
        string (e.g. ``"k."``). Default ``True``.
    contours : int | array-like
        Number of contour lines (``0`` for none) or their levels. Default 6.
    mask : None | ndarray of bool | CellTestResult
        Channels to mark in each band's topomap, as MNE marks significant
        sensors (:func:`mne.viz.plot_topomap`'s ``mask``): an array of shape
        ``(n_channels, n_bands)`` (the map's channels and all its bands, in
        their order; each plotted band takes its column), ``(n_channels,)``
        (the same channels in every band), or the result of
        :func:`~mne_freqmask.evaluation.cell_permutation_test` on this map,
        whose significant cells are marked (matched by channel and band
        name). None (default) marks nothing.
    mask_params : dict | None
        How the marked channels are drawn (:func:`mne.viz.plot_topomap`'s
        ``mask_params``, e.g. ``dict(marker="o", markerfacecolor="w",
        markeredgecolor="k", markersize=6)``); None: MNE's default.
    axes : list of matplotlib.axes.Axes | None
        One Axes per plotted band. ``None`` (default) creates a figure with one
        row of topomaps.
    colorbar : bool
        Add a colorbar labelled with what the values are ("saliency", or
        the ``SpectralSaliency.normalize`` applied; one
        for a shared scale, one per band otherwise). Default ``True``.
    %(sal_show)s

    Returns
    -------
    fig : instance of matplotlib.figure.Figure
        The figure.

    Notes
    -----
    Channel positions are read from ``saliency.info``, i.e. from the montage
    of the explained epochs. All channels must have a position and be of one
    channel type (use :meth:`~mne_freqmask.SpectralSaliency.pick` otherwise).
    """
    from mne.viz import plot_topomap
    from mne.viz.utils import plt_show

    _check_saliency(saliency)
    _validate_type(colorbar, bool, "colorbar")
    cmap, vlim = color_scale(saliency.get_data(), cmap, vlim, unsigned_vlim="joint")
    vlim = _check_vlim(vlim, allow_joint=True)
    info = saliency.info
    ch_types = info.get_channel_types(unique=True)
    if len(ch_types) != 1:
        raise ValueError(
            f"A topomap shows one channel type, but the saliency holds {ch_types}; "
            "pick one first, e.g. saliency.copy().pick('eeg')."
        )
    _check_positions(info)
    data, _, band_idx, title = _summary(saliency, bands=bands)
    cells = cell_mask(mask, saliency.ch_names, saliency.band_names)
    _validate_type(mask_params, (dict, None), "mask_params", "dict or None")
    n_bands = len(band_idx)
    shared = vlim in ("joint", "symmetric") or None not in vlim
    if vlim == "joint":
        vlim = (None, None)
    if shared:
        vlims = [_resolve_vlim(vlim, data)] * n_bands
    else:
        vlims = [_resolve_vlim(vlim, data[:, k]) for k in range(n_bands)]

    if axes is None:
        fig, axes = _new_axes(n_bands, (2.0 * n_bands + (1.0 if colorbar else 0), 2.6))
        fig.suptitle(title)
    else:
        axes = _check_axes_list(axes, n_bands)
        fig = axes[0].get_figure()
    edges = saliency.band_edges
    for k, (ax, bi) in enumerate(zip(axes, band_idx, strict=True)):
        values = data[:, k]
        # a constant map has no contour levels (matplotlib would warn)
        use_contours = 0 if np.ptp(values) == 0 else contours
        im, _ = plot_topomap(
            values,
            info,
            axes=ax,
            cmap=cmap,
            vlim=vlims[k],
            sensors=sensors,
            contours=use_contours,
            mask=None if cells is None else cells[:, bi],
            mask_params=mask_params,
            show=False,
        )
        fmin, fmax = edges[bi]
        ax.set_title(f"{saliency.band_names[bi]}\n{fmin:g}-{fmax:g} Hz")
        if colorbar and not shared:
            fig.colorbar(im, ax=ax, label=value_label(saliency), shrink=0.7)
    if colorbar and shared:
        fig.colorbar(im, ax=axes, label=value_label(saliency), shrink=0.7)
    plt_show(show)
    return fig


@fill_doc
def plot_saliency_bands(
    saliency,
    *,
    picks=None,
    bands=None,
    cmap=None,
    vlim=None,
    axes=None,
    colorbar=True,
    show=True,
):
    """Plot the saliency as a channel x band image.

    Parameters
    ----------
    %(sal_saliency_plot)s
    %(sal_picks)s
    %(sal_bands_select)s
    %(sal_cmap)s
    vlim : None | "symmetric" | tuple of (float | None, float | None)
        Color limits. None (default): ``"symmetric"`` for a signed map (one
        holding a negative value), else from the smallest to the largest
        plotted value (see :func:`~mne_freqmask.viz.color_scale`); ``None``
        entries of a pair are the smallest and largest plotted values.
        ``"symmetric"``: from ``-m`` to ``m``, ``m`` the largest absolute
        plotted value (0 at the centre of a diverging ``cmap`` such as
        ``"RdBu_r"``, for signed relevance).
    %(sal_axes_single)s
    colorbar : bool
        Add a colorbar labelled with what the values are ("saliency", or the
        ``SpectralSaliency.normalize`` applied). Default
        ``True``.
    %(sal_show)s

    Returns
    -------
    fig : instance of matplotlib.figure.Figure
        The figure.
    """
    from mne.viz.utils import plt_show

    _check_saliency(saliency)
    _validate_type(colorbar, bool, "colorbar")
    axes = _check_axes_single(axes)
    data, ch_names, band_idx, title = _summary(saliency, picks=picks, bands=bands)
    cmap, (vmin, vmax) = image_scale(saliency.get_data(), data, cmap, vlim)
    if axes is None:
        n_ch, n_b = data.shape
        figsize = (1.5 + 0.8 * n_b, 1.2 + 0.22 * n_ch)
        fig, (axes,) = _new_axes(1, (max(figsize[0], 4.0), max(figsize[1], 3.0)))
    else:
        fig = axes.get_figure()
    im = axes.imshow(
        data,
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
    )
    axes.set_yticks(np.arange(len(ch_names)), ch_names)
    axes.set_xticks(
        np.arange(len(band_idx)),
        [saliency.band_names[bi] for bi in band_idx],
        rotation=45 if len(band_idx) > 5 else 0,
        ha="right" if len(band_idx) > 5 else "center",
    )
    axes.set(xlabel="Band", ylabel="Channel", title=title)
    if colorbar:
        fig.colorbar(im, ax=axes, label=value_label(saliency))
    plt_show(show)
    return fig


@fill_doc
def plot_saliency(saliency, *, picks=None, axes=None, show=True):
    """Plot each channel's saliency over frequency.

    Each channel is a step line: its value in a band is drawn across that
    band's frequency range (the band edges), so the x axis is in Hz whatever
    the band layout. Colors encode sensor position as in MNE's butterfly plots
    (``spatial_colors``) when all channels have positions; a legend is shown
    for up to 12 channels.

    Parameters
    ----------
    %(sal_saliency_plot)s
    %(sal_picks)s
    %(sal_axes_single)s
    %(sal_show)s

    Returns
    -------
    fig : instance of matplotlib.figure.Figure
        The figure.
    """
    from mne.viz.utils import plt_show

    _check_saliency(saliency)
    axes = _check_axes_single(axes)
    data, ch_names, _, title = _summary(saliency, picks=picks)
    ch_idx = _pick_channels(saliency, picks)
    if axes is None:
        fig, (axes,) = _new_axes(1, (7.0, 3.5))
    else:
        fig = axes.get_figure()
    edges = saliency.band_edges
    order = np.argsort(edges[:, 0], kind="stable")
    x = []
    for j, bi in enumerate(order):
        lo, hi = edges[bi]
        x += [lo, hi]
        if j + 1 < len(order) and edges[order[j + 1], 0] != hi:
            x.append(np.nan)  # gap between bands: break the line
    x = np.array(x)
    colors = _spatial_colors(saliency.info)
    for k, name in enumerate(ch_names):
        y = []
        for j, bi in enumerate(order):
            y += [data[k, bi]] * 2
            if j + 1 < len(order) and edges[order[j + 1], 0] != edges[bi, 1]:
                y.append(np.nan)
        kw = dict() if colors is None else dict(color=colors[ch_idx[k]])
        axes.plot(x, np.array(y), lw=1.2, label=name, **kw)
    for edge in np.unique(edges):
        axes.axvline(edge, color="0.85", lw=0.6, zorder=0)
    axes.set(
        xlabel="Frequency (Hz)",
        ylabel=value_label(saliency).capitalize(),
        title=title,
        xlim=(edges.min(), edges.max()),
    )
    top = axes.secondary_xaxis("top")
    rotate = len(order) > 5
    top.set_xticks(
        edges.mean(axis=1),
        saliency.band_names,
        fontsize="small",
        rotation=90 if rotate else 0,
    )
    top.tick_params(length=0)
    if len(ch_names) <= 12:
        axes.legend(fontsize="small", ncols=2 if len(ch_names) > 6 else 1)
    plt_show(show)
    return fig


def _method_of(func):
    """``func(saliency, ...)`` as a method (its docstring and signature)."""
    sig = inspect.signature(func)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [self_param] + list(sig.parameters.values())[1:]

    @copy_function_doc_to_method_doc(func)
    def method(self, *args, **kwargs):
        return func(self, *args, **kwargs)

    method.__signature__ = sig.replace(parameters=params)
    method.__name__ = func.__name__.replace("plot_saliency", "plot")
    method.__qualname__ = f"PlotSaliencyMixin.{method.__name__}"
    return method


class PlotSaliencyMixin:
    """The plot methods of :class:`~mne_freqmask.SpectralSaliency`."""

    plot_topomap = _method_of(plot_saliency_topomap)
    plot_bands = _method_of(plot_saliency_bands)
    plot = _method_of(plot_saliency)


@fill_doc
def plot_deletion_curves(scores, *, metric="probability", axes=None, show=True):
    """Plot the MoRF / LeRF curves of :func:`~mne_freqmask.evaluation.compare_methods`.

    One panel per ranking and removal operator; in each, one color per method,
    MoRF solid and LeRF dashed, with the bootstrap interval as a band.

    Parameters
    ----------
    scores : pandas.DataFrame
        The table returned by
        :func:`~mne_freqmask.evaluation.compare_methods`.
    metric : "probability" | "accuracy"
        The score drawn (the true-class probability or the accuracy).
    axes : array-like of matplotlib.axes.Axes | None
        One Axes per (ranking, operator) pair, in the order of the table
        (rankings outer); ``None`` (default) creates a new figure.
    %(sal_show)s

    Returns
    -------
    fig : instance of matplotlib.figure.Figure
        The figure.
    """
    from mne.utils import _check_option
    from mne.viz.utils import plt_show

    need = {"method", "ranking", "operator", "order", "metric", "statistic"}
    if not hasattr(scores, "columns") or not need <= set(scores.columns):
        raise TypeError(
            "scores must be the DataFrame returned by "
            "mne_freqmask.evaluation.compare_methods."
        )
    _check_option("metric", metric, ("probability", "accuracy"))
    curves = scores[(scores["statistic"] == "curve") & (scores["metric"] == metric)]
    panels = list(
        dict.fromkeys(zip(curves["ranking"], curves["operator"], strict=True))
    )
    if axes is None:
        fig, axes = _new_axes(len(panels), (4.0 * len(panels), 3.5))
    else:
        from matplotlib.axes import Axes

        axes = [axes] if isinstance(axes, Axes) else list(np.ravel(axes))
        if len(axes) != len(panels):
            raise ValueError(
                f"axes must hold one Axes per (ranking, operator) pair "
                f"({len(panels)}), got {len(axes)}."
            )
        fig = axes[0].get_figure()
    methods = list(dict.fromkeys(curves["method"]))
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    styles = {"MoRF": "-", "LeRF": "--"}
    for ax, (ranking, operator) in zip(axes, panels, strict=True):
        panel = curves[
            (curves["ranking"] == ranking) & (curves["operator"] == operator)
        ]
        for (method, order), df in panel.groupby(["method", "order"], sort=False):
            df = df.sort_values("fraction")
            x = 100 * df["fraction"].to_numpy()
            ax.plot(
                x,
                df["score"],
                styles.get(order, ":"),
                color=colors[method],
                label=f"{method} {order}",
            )
            if df["ci_low"].notna().all():
                ax.fill_between(
                    x, df["ci_low"], df["ci_high"], color=colors[method], alpha=0.2
                )
        ax.set(
            xlabel="Cells removed (%)",
            ylabel=f"True-class {metric}" if metric == "probability" else "Accuracy",
            title=f"{ranking} ranking, {operator} removal",
        )
    axes[0].legend(fontsize="small")
    plt_show(show)
    return fig
