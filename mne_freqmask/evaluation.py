"""Is the explanation true? The removal / feed-in game (paper §4.3-4.4).

The channel x band cells of a saliency map are split at the median into
salient and non-salient halves; zeroing the non-salient cells in the spectrum
(RN) should leave the model's accuracy close to the original, zeroing the
salient cells (RS) should destroy it.
"""

import numpy as np
import pandas as pd
import torch
from mne.utils import _check_option, _validate_type, logger, verbose

from mne_freqmask._inputs import epochs_data, epochs_labels
from mne_freqmask._torch_utils import model_context, predict, resolve_device
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._docs import fill_doc


def salient_cells(values, fraction=0.5):
    """Boolean mask of the top ``fraction`` of cells along the last two axes.

    The paper thresholds at the median of the map; ranking instead of comparing
    with the median gives the same split without ties (and an exact half when
    many cells share a value, e.g. a mask saturated at 0 or 1). Ties are broken
    by position (stable sort).

    Parameters
    ----------
    values : ndarray, shape (..., n_channels, n_bands)
        Saliency values.
    fraction : float
        Fraction of cells called salient (0.5: the median split).

    Returns
    -------
    salient : ndarray of bool, same shape as ``values``
        True on the ``ceil(fraction * n_cells)`` largest cells of each map.
    """
    values = np.asarray(values)
    flat = values.reshape(values.shape[:-2] + (-1,))
    n_cells = flat.shape[-1]
    n_top = int(np.ceil(fraction * n_cells))
    order = np.argsort(-flat, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n_cells), axis=-1)
    return (ranks < n_top).reshape(values.shape)


def remove_cells(x, keep, grid, picks, device=None):
    """Zero the channel x band cells where ``keep`` is False, back in time.

    Parameters
    ----------
    x : ndarray, shape (n_epochs, n_channels, n_times)
        Epoch data.
    keep : ndarray of bool, shape (n_picks, n_bands) or (n_epochs, n_picks, n_bands)
        Cells to keep; bins in no band and channels not in ``picks`` are kept.
    grid : FrequencyGrid
        The band grid.
    picks : array of int
        Channel index (in ``x``) of each row of ``keep``.
    device : torch.device | None
        Where to compute.

    Returns
    -------
    x_removed : ndarray, shape (n_epochs, n_channels, n_times)
        The data with the removed cells zeroed in the rfft spectrum.
    """
    device = torch.device("cpu") if device is None else device
    keep_bins = torch.as_tensor(grid.expand(keep.astype(np.float32), fill=1.0))
    xt = torch.as_tensor(x, device=device)
    picks_t = torch.as_tensor(picks, device=device)
    spec = torch.fft.rfft(xt.index_select(1, picks_t).double(), dim=-1)
    spec = spec * keep_bins.to(device)
    sub = torch.fft.irfft(spec, n=x.shape[-1], dim=-1).to(xt.dtype)
    return xt.index_copy(1, picks_t, sub).cpu().numpy()


def _scores(logits, y):
    pred = logits.argmax(1)
    acc = float((pred == y).mean())
    recalls = [float((pred[y == c] == c).mean()) for c in np.unique(y)]
    return acc, float(np.mean(recalls))


@verbose
@fill_doc
def evaluate_removal(
    epochs,
    model,
    saliency,
    *,
    level="group",
    y=None,
    fraction=0.5,
    device="auto",
    verbose=None,
):
    """Score an explanation with the removal / feed-in game.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    %(saliency)s
    %(level)s
    %(y)s
    fraction : float
        Fraction of cells called salient; 0.5 (default) is the paper's median
        threshold (see :func:`~mne_freqmask.evaluation.salient_cells`).
    %(device)s
    %(verbose)s

    Returns
    -------
    scores : pandas.DataFrame
        Rows ``original``, ``RN`` (non-salient cells removed) and ``RS``
        (salient cells removed); columns ``accuracy``, ``balanced_accuracy``
        and ``removed_fraction`` (fraction of channel x band cells zeroed).
        ``scores.attrs`` holds ``level``, ``fraction`` and ``gap`` (RN minus
        RS accuracy; large is good).
    """
    _validate_type(saliency, SpectralSaliency, "saliency")
    _check_option("level", level, ("group", "instance"))
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    x = epochs_data(epochs)
    labels = epochs_labels(epochs, y)
    grid = _grid_for(epochs, saliency, x.shape[-1])
    missing = sorted(set(saliency.ch_names) - set(epochs.ch_names))
    if missing:
        raise ValueError(
            f"The saliency has channels {missing} that the epochs lack; use "
            "epochs with the explained channels."
        )
    picks = np.array([epochs.ch_names.index(ch) for ch in saliency.ch_names])
    if level == "group":
        values = saliency.get_data()
        if saliency.level == "instance":
            values = values.mean(0)
    else:
        if saliency.level != "instance" or len(saliency) != len(epochs):
            raise ValueError(
                'level="instance" needs one saliency map per epoch '
                f"({len(epochs)}); got {saliency!r}. Use level=\"group\" for "
                "an averaged map."
            )
        values = saliency.get_data()
    salient = salient_cells(values, fraction)
    dev = resolve_device(device, model)
    rows = {}
    with model_context(model, dev):
        rows["original"] = _scores(predict(model, x, dev), labels) + (0.0,)
        for name, keep in (("RN", salient), ("RS", ~salient)):
            xr = remove_cells(x, keep, grid, picks, dev)
            removed = 1.0 - float(keep.mean())
            rows[name] = _scores(predict(model, xr, dev), labels) + (removed,)
    scores = pd.DataFrame.from_dict(
        rows, orient="index",
        columns=["accuracy", "balanced_accuracy", "removed_fraction"],
    )
    scores.index.name = "condition"
    scores.attrs.update(
        level=level,
        fraction=fraction,
        gap=float(scores.loc["RN", "accuracy"] - scores.loc["RS", "accuracy"]),
    )
    logger.info(
        f"Removal game ({level}): original {scores.loc['original', 'accuracy']:.3f}, "
        f"RN {scores.loc['RN', 'accuracy']:.3f}, RS {scores.loc['RS', 'accuracy']:.3f}"
    )
    return scores


def _grid_for(epochs, saliency, n_times):
    """The saliency's band grid on the epochs' rfft bins (checked to match)."""
    grid = FrequencyGrid(epochs.info["sfreq"], n_times, saliency.bands)
    if len(grid.freqs) != len(saliency.freqs) or not np.allclose(
        grid.freqs, saliency.freqs
    ):
        raise ValueError(
            "The saliency was computed on another frequency resolution "
            f"({len(saliency.freqs)} bins up to {saliency.freqs[-1]:.1f} Hz) than "
            f"the epochs ({len(grid.freqs)} bins up to {grid.freqs[-1]:.1f} Hz); "
            "use epochs with the same duration and sampling rate."
        )
    return grid
