"""Quantus' complexity and sparseness of the maps, through Quantus itself.

FLEXtime (Brüsch et al.) reports Quantus' ``Complexity`` next to its
faithfulness curves (``src/evaluation/metrics.py``, ``compute_complexity``, in
theabrusch/FLEXtime); :func:`quantus_scores` computes it, and Quantus'
``Sparseness``, on each channel x band map (or channel x band x window map)
with Quantus (the ``evaluation`` extra), not a rewrite.
"""

import numpy as np
import pandas as pd
from mne.utils import _check_option, _validate_type

from mne_freqmask._saliency_base import BaseSaliency
from mne_freqmask._saliency_cells import flat_cells
from mne_freqmask.utils._deps import import_optional

#: our name -> Quantus class name
QUANTUS_METRICS = {"complexity": "Complexity", "sparseness": "Sparseness"}


def quantus_scores(saliency, *, metrics=("complexity", "sparseness"), level="instance"):
    """Quantus' complexity / sparseness of each channel x band (x window) map.

    Each map is passed to the Quantus metric as one explanation (its
    ``__call__`` with the map as both input and attribution, no model needed),
    with Quantus' defaults: the absolute value is taken and the map is
    normalised by its maximum. ``Complexity`` is the entropy of the
    normalised map (Bhatt et al., 2020; low: relevance on few cells);
    ``Sparseness`` its Gini index (Chalasani et al., 2020; high: few cells
    hold the relevance).

    Parameters
    ----------
    saliency : SpectralSaliency | SpectralSaliencyTFR
        The maps (per epoch or one group map). A time-resolved map is one
        explanation of all its channel x band x window cells (its band x
        window cells flattened per channel; both metrics depend only on the
        set of cell values).
    metrics : tuple of str
        Among ``"complexity"`` and ``"sparseness"``.
    level : "instance" | "group"
        Score each epoch's map, or the epoch-averaged map.

    Returns
    -------
    scores : pandas.DataFrame
        One row per map (epoch) and one column per metric.

    Notes
    -----
    Needs Quantus (``pip install "mne-freqmask[evaluation]"``; tested with
    quantus 0.6.0). FLEXtime calls ``Complexity.evaluate_batch`` on the raw
    attributions, which skips Quantus' absolute value and normalisation and
    gives NaN on negative relevance (it then sets NaN to 0); the metric's
    ``__call__`` used here applies them, so signed maps (LRP, integrated
    gradients) are scored on their magnitude.
    """
    _validate_type(
        saliency,
        BaseSaliency,
        "saliency",
        "SpectralSaliency or SpectralSaliencyTFR",
    )
    _check_option("level", level, ("instance", "group"))
    _validate_type(metrics, (tuple, list), "metrics")
    for m in metrics:
        _check_option("metrics", m, tuple(QUANTUS_METRICS))
    quantus = import_optional("quantus")
    values = flat_cells(saliency, np.asarray(saliency.get_data(), np.float64))
    if values.ndim == 2:
        values = values[None]
    elif level == "group":
        values = values.mean(0, keepdims=True)
    n = len(values)
    out = {}
    for name in metrics:
        metric = getattr(quantus, QUANTUS_METRICS[name])(
            disable_warnings=True, display_progressbar=False
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            # Quantus writes into its inputs: give it copies
            res = metric(
                model=None,
                x_batch=values.copy(),
                y_batch=np.zeros(n, int),
                a_batch=values.copy(),
                channel_first=True,
            )
        out[name] = np.asarray(res, float)
    return pd.DataFrame(out)
