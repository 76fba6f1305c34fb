"""The colour scale of a map: diverging and symmetric when it is signed.

One rule for every plot of a map (:mod:`mne_freqmask.viz`, which makes
these functions public, the band x time image of
:class:`~mne_freqmask.SpectralSaliencyTFR` and the command line's report):
see :func:`color_scale`.
"""

import numpy as np
from mne.utils import _validate_type

#: Colormaps of the plots: a non-negative map, and a signed map (0 in white).
CMAP_UNSIGNED = "Reds"
CMAP_SIGNED = "RdBu_r"


def is_signed(values):
    """Whether a map is signed: it holds a negative value.

    Decided from the data rather than from the method, because a method's
    sign depends on its parameters and on what was done to the map since
    (LRP and the gradient methods are signed, a mask is not, but
    ``normalize("zscore")`` or a difference of two maps makes any map
    signed).

    Parameters
    ----------
    values : array-like
        The map's values (all epochs, channels, bands, windows).

    Returns
    -------
    signed : bool
        True when any finite value is below 0.
    """
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    return bool(finite.size and finite.min() < 0)


def color_scale(values, cmap=None, vlim=None, *, unsigned_vlim=(None, None)):
    """The colormap and colour limits of a map, chosen from its sign.

    The one rule of every plot of a map (topomaps, channel x band images,
    band x time images, the report): a signed map (see :func:`is_signed`) is
    drawn with the diverging ``"RdBu_r"`` on a scale symmetric about 0
    (``vlim="symmetric"``: from ``-m`` to ``m``, ``m`` the largest absolute
    value drawn), so that white is 0, red evidence for the explained class
    and blue against it; a non-negative map with ``"Reds"`` from its smallest
    to its largest value. An explicit ``cmap`` or ``vlim`` is kept.

    Parameters
    ----------
    values : array-like
        The map's values (decides whether it is signed).
    cmap : None | str | matplotlib.colors.Colormap
        None: from the sign.
    vlim : None | str | tuple
        None: ``"symmetric"`` for a signed map, else ``unsigned_vlim``.
    unsigned_vlim : str | tuple
        The limits of a non-negative map.

    Returns
    -------
    cmap : str | matplotlib.colors.Colormap
        The colormap.
    vlim : str | tuple
        The colour limits, as the plot functions take them.
    """
    signed = is_signed(values)
    if cmap is None:
        cmap = CMAP_SIGNED if signed else CMAP_UNSIGNED
    if vlim is None:
        vlim = "symmetric" if signed else unsigned_vlim
    return cmap, vlim


def image_scale(values, drawn, cmap=None, vlim=None):
    """The colormap and ``(vmin, vmax)`` of an image drawn with one scale.

    Parameters
    ----------
    values : array-like
        The whole map (decides whether it is signed; see :func:`color_scale`).
    drawn : array-like
        The values drawn (give the limits).
    cmap : None | str | matplotlib.colors.Colormap
        None: from the sign.
    vlim : None | "symmetric" | tuple of (float | None, float | None)
        None: from the sign; a None entry of a pair from ``drawn``.

    Returns
    -------
    cmap : str | matplotlib.colors.Colormap
        The colormap.
    vlim : tuple of float
        ``(vmin, vmax)``.
    """
    cmap, vlim = color_scale(values, cmap, vlim)
    return cmap, _resolve_vlim(_check_vlim(vlim, allow_joint=False), drawn)


def scale_caption(values):
    """A sentence for a figure's caption saying how its colours read."""
    if is_signed(values):
        return (
            " Signed map: red is evidence for the explained class, blue "
            "against, white 0 (colour scale symmetric about 0)."
        )
    return ""


def _check_vlim(vlim, allow_joint):
    msg = "(vmin, vmax) with floats or None" + (', "joint"' if allow_joint else "")
    msg += ' or "symmetric"'
    if isinstance(vlim, str):
        if vlim == "symmetric" or (allow_joint and vlim == "joint"):
            return vlim
        raise ValueError(f"vlim must be {msg}, got {vlim!r}.")
    try:
        vmin, vmax = vlim
    except (TypeError, ValueError):
        raise ValueError(f"vlim must be {msg}, got {vlim!r}.") from None
    for v in (vmin, vmax):
        if v is not None:
            _validate_type(v, "numeric", "vlim entries", "float or None")
    if vmin is not None and vmax is not None and not vmin < vmax:
        raise ValueError(f"vlim needs vmin < vmax, got {vlim!r}.")
    return (vmin, vmax)


def _resolve_vlim(vlim, values):
    """Fill the None entries of a (vmin, vmax) pair from ``values``.

    ``"symmetric"``: ``(-m, m)`` with ``m`` the largest absolute value, so
    that 0 sits at the centre of a diverging colormap.
    """
    if vlim == "symmetric":
        m = float(np.max(np.abs(values)))
        m = m if m > 0 else 1e-12
        return -m, m
    vmin, vmax = vlim
    vmin = float(np.min(values)) if vmin is None else float(vmin)
    vmax = float(np.max(values)) if vmax is None else float(vmax)
    if vmax <= vmin:  # constant map: give the colormap a non-empty range
        pad = max(abs(vmin) * 1e-3, 1e-12)
        vmin, vmax = vmin - pad, vmax + pad
    return vmin, vmax
