"""Weighted combinations of saliency maps (contrasts between classes)."""

import numpy as np
from mne.utils import _validate_type

from mne_freqmask._provenance import merge_provenance
from mne_freqmask._saliency_base import BaseSaliency
from mne_freqmask._saliency_utils import check_order


def combine_saliency(all_saliency, weights):
    """Combine group-level saliency maps with weights, like a contrast.

    The saliency counterpart of :func:`mne.combine_evoked`: e.g.
    ``combine_saliency([sal["left_fist"], sal["right_fist"]], [1, -1])`` is
    where the left-fist epochs rely on a cell more than the right-fist ones.
    Per-epoch maps are averaged first (:meth:`SpectralSaliency.average`).

    Parameters
    ----------
    all_saliency : list of SpectralSaliency | list of SpectralSaliencyTFR
        Maps of one kind, of the same method, channels and bands (and
        windows, for time-resolved maps).
    weights : list of float
        One weight per map (``[1, -1]``: the difference; ``[0.5, 0.5]``: the
        mean of the class maps, each class counted equally whatever its
        number of epochs).

    Returns
    -------
    saliency : SpectralSaliency | SpectralSaliencyTFR
        The group-level combination (the class of the inputs);
        ``method_params["combine_weights"]`` records the weights and
        ``nave`` is the total number of epochs; the provenance is kept as by
        :func:`~mne_freqmask.concatenate_saliencies`.

    Notes
    -----
    A group map of all epochs weights each class by its number of epochs,
    and FreqMask's per-class maps can be very unequal (a class whose evidence
    is an absence of power, see the user guide's "Reading a
    SpectralSaliency"): compare the class maps, or their contrast, before
    reading the group map.
    """
    _validate_type(all_saliency, (list, tuple), "all_saliency")
    _validate_type(weights, (list, tuple, np.ndarray), "weights")
    if len(all_saliency) == 0 or len(all_saliency) != len(weights):
        raise ValueError(
            f"Give one weight per map: {len(all_saliency)} map(s) and "
            f"{len(weights)} weight(s)."
        )
    maps = []
    for k, sal in enumerate(all_saliency):
        _validate_type(sal, BaseSaliency, f"all_saliency[{k}]", "SpectralSaliency")
        maps.append(sal.average() if sal.level == "instance" else sal)
    first = maps[0]
    for k, sal in enumerate(maps[1:], 1):
        check_order(first, sal, f"all_saliency[{k}]", "all_saliency[0]")
        if not first._same_cells(sal):
            raise ValueError(
                f"all_saliency[{k}] has other channels or bands (or windows, or "
                "is of another kind) than "
                "all_saliency[0]; combine maps of the same explanation (e.g. "
                'sal["a"] and sal["b"]) or pick the same channels first.'
            )
        if sal.method != first.method:
            raise ValueError(
                f"all_saliency[{k}] comes from method {sal.method!r}, "
                f"all_saliency[0] from {first.method!r}; their scales differ."
            )
    w = np.asarray(weights, float)
    if not np.isfinite(w).all():
        raise ValueError(f"weights must be finite, got {list(weights)}.")
    data = np.tensordot(w, np.stack([m.get_data() for m in maps]), axes=1)
    params = dict(first.method_params, combine_weights=w.tolist())
    return first._replace(
        data.astype(np.float32),
        method_params=params,
        nave=int(sum(m.nave for m in maps)),
        provenance=merge_provenance([m.provenance for m in maps]),
    )
