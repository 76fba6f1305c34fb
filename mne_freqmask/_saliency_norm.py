"""Normalisations of a saliency map that the plots label.

Methods put their values on different scales (a FreqMask mask in [0, 1],
gradients in the units of the model's logit per unit of spectrum, LRP in
logit shares), and FreqMask's per-epoch maps can differ a lot in size (a
class whose evidence is an absence of power keeps little mask). A
normalisation puts every map on one stated scale; it is recorded in
``method_params["normalization"]`` (so it survives saving, selecting and
averaging) and the plots name it on their colour bars and axes.
"""

import numpy as np
from mne.utils import _check_option
from scipy.stats import rankdata

#: normalisation -> what the plots call the values
NORMALIZATIONS = {
    "max": "saliency / map maximum",
    "sum": "share of the map's total",
    "zscore": "saliency (z-score within map)",
    "rank": "percentile rank within map",
}


def _normalize_maps(data, kind, n_maps):
    """Normalise each of the ``n_maps`` maps of ``data`` (its first axis, or
    the whole array for ``n_maps=1`` at group level)."""
    flat = data.reshape((n_maps, -1)).astype(np.float64)
    out = np.zeros_like(flat)
    if kind == "rank":
        for k, row in enumerate(flat):
            out[k] = rankdata(row) / row.size
        return out.reshape(data.shape)
    center = np.zeros((len(flat), 1))
    if kind == "zscore":
        center = flat.mean(1, keepdims=True)
        scale = flat.std(1, keepdims=True)
    else:
        absval = np.abs(flat)
        reduce = absval.max if kind == "max" else absval.sum
        scale = reduce(1, keepdims=True)
    # a map with no spread (all zero, or constant) has nothing to scale: it
    # stays 0 after centring rather than becoming NaN
    ok = scale[:, 0] > 0
    out[ok] = (flat[ok] - center[ok]) / scale[ok]
    return out.reshape(data.shape)


def value_label(saliency):
    """What the values of ``saliency`` are, for an axis or colour bar."""
    kind = saliency.normalization
    if kind is None:
        return "saliency"
    return NORMALIZATIONS[kind]


class NormalizeMixin:
    """:meth:`normalize` and :attr:`normalization` of both saliency containers."""

    @property
    def normalization(self):
        """The normalisation applied by :meth:`normalize` (None: none)."""
        return self._method_params.get("normalization")

    def normalize(self, kind="max"):
        """Put every map on one stated scale, in place.

        Parameters
        ----------
        kind : "max" | "sum" | "zscore" | "rank"
            Applied to each map on its own (each epoch's, or the group map;
            a time-resolved map's channel x band x window cells together):

            - ``"max"`` (default): divided by its largest absolute value, so
              its strongest cell is 1 (-1 for a signed map whose strongest
              cell is negative). Epochs with weak and strong maps then count
              alike in an average.
            - ``"sum"``: divided by the sum of its absolute values: each cell
              is its share of the map's total (the cells' absolute values
              sum to 1).
            - ``"zscore"``: minus its mean, over its standard deviation: how
              far a cell stands out from the typical cell of its map.
            - ``"rank"``: each cell's percentile rank within its map, in
              (0, 1] (ties share their mean rank): only the order is kept,
              which is all that deletion curves use.

            A map with no spread (all zero, or constant) is left at 0.

        Returns
        -------
        saliency : instance of SpectralSaliency | SpectralSaliencyTFR
            The object, modified in place (use ``.copy().normalize()`` to
            keep the original). ``method_params["normalization"]`` records
            ``kind``; the plots label their values with it.

        Notes
        -----
        Normalise the per-epoch maps before :meth:`average` to give every
        epoch the same weight; normalising the group map afterwards only
        rescales it. A map can be normalised once: a second, different
        normalisation raises an error (normalise a copy of the original
        instead).
        """
        _check_option("kind", kind, tuple(NORMALIZATIONS))
        done = self.normalization
        if done is not None and done != kind:
            raise ValueError(
                f"This saliency is already normalised with {done!r}; normalise "
                f"a copy of the original map with {kind!r} instead."
            )
        dtype = np.result_type(self._data.dtype, np.float32)
        n_maps = len(self._data) if self.level == "instance" else 1
        self._data = _normalize_maps(self._data, kind, n_maps).astype(dtype)
        self._method_params = dict(self._method_params, normalization=kind)
        return self
