"""The removal engine: remove cells -> predict -> record, chunk by chunk.

:func:`remove_cells` is the one removal of channel x band (x window) cells
(through the grid's cell perturbation); :func:`run_removals` streams the
epochs through it and the model for every evaluation that removes cells and
scores the model (:func:`~.removal.evaluate_removal`,
:func:`~.removal.deletion_curves`, :func:`~.counterfactual.clever_hans_test`,
the checks' predictions).
"""

import numpy as np
import torch

from mne_freqmask._torch_utils import model_context, predict, resolve_device
from mne_freqmask.evaluation._common import _chunks, _source
from mne_freqmask.utils._metrics import softmax


def remove_cells(x, keep, grid, picks, device=None, *, fill=None):
    """Remove the cells where ``keep`` is False, back in time.

    The cells are channel x band (a :class:`~mne_freqmask.FrequencyGrid`: the
    epoch's rfft) or channel x band x window (a
    :class:`~mne_freqmask.spectral.ShortTimeGrid`: its short-time Fourier
    transform, periodic Hann windows, back in time with the inverse STFT).

    Parameters
    ----------
    x : ndarray, shape (n_epochs, n_channels, n_times)
        Epoch data.
    keep : ndarray of bool, shape ([n_epochs, ]n_picks, n_cells)
        Cells to keep; bins in no band and channels not in ``picks`` are kept.
        ``n_cells`` is ``grid.n_bands``: the bands, or for a short-time grid
        the band x window cells flattened as the grid does (cell
        ``b * n_windows + w``); a ``(..., n_bands, n_windows)`` array is
        accepted too. Float weights in [0, 1] (e.g. a FreqMask mask) scale
        the cells instead.
    grid : FrequencyGrid | ShortTimeGrid
        The cell grid (``saliency.grid``).
    picks : array of int
        Channel index (in ``x``) of each row of ``keep``.
    device : torch.device | None
        Where to compute.
    fill : None | ndarray, shape (n_epochs, n_channels, n_times)
        ``None`` (default) zeroes the removed cells' coefficients (rfft or
        STFT). Epochs (one per epoch of ``x``, e.g. epochs drawn from the
        reference data) whose coefficients of the same cell (channel, band
        and window) replace those of the removed cells: the
        distribution-preserving removal of
        :func:`~mne_freqmask.evaluation.deletion_curves`
        (``operator="reference"``). With float weights the cell is
        ``keep * x + (1 - keep) * fill``.

    Returns
    -------
    x_removed : ndarray, shape (n_epochs, n_channels, n_times)
        The data with the removed cells zeroed (or replaced) in the spectrum.

    Notes
    -----
    On a short-time grid the windows overlap, so the edited STFT is not
    exactly the STFT of any signal; the inverse STFT returns the signal whose
    STFT is closest to it (least squares), and the removed cells keep the
    replaced power up to the leakage of their neighbours.
    """
    keep = np.asarray(keep)
    n_win = getattr(grid, "n_windows", None)
    if (
        n_win is not None
        and keep.ndim >= 3
        and keep.shape[-1] != grid.n_bands
        and keep.shape[-2:] == (grid.n_bands // n_win, n_win)
    ):  # (..., bands, windows): the grid's flat layout
        keep = keep.reshape(keep.shape[:-2] + (-1,))
    if keep.shape[-1] != grid.n_bands:
        raise ValueError(
            f"keep must have one value per cell of the grid ({grid.n_bands}) "
            f"along its last axis, got shape {keep.shape}."
        )
    if fill is not None and np.shape(fill) != np.shape(x):
        raise ValueError(
            f"fill must have the shape of x {np.shape(x)} (one epoch per "
            f"epoch of x), got {np.shape(fill)}."
        )
    device = torch.device("cpu") if device is None else device
    keep = torch.as_tensor(keep.astype(np.float32), device=device)
    xt = torch.as_tensor(x, device=device)
    picks_t = torch.as_tensor(picks, device=device)
    if fill is not None:  # in float64, as the epochs
        fill = torch.as_tensor(fill, device=device).index_select(1, picks_t)
        fill = grid.spectrum(fill.double(), norm="backward")
    out = grid.perturb(xt.double(), keep, fill, picks=picks_t, norm="backward")
    return out.to(xt.dtype).cpu().numpy()


def run_removals(src, model, removals, grid, picks, *, labels=None, fill=None, device):
    """The removal engine: remove -> predict -> record, chunk by chunk.

    Every evaluation that removes cells and scores the model runs here. For
    each chunk of ``src`` (an EpochsSource, checked finite) and each
    ``(key, keep)`` that ``removals(sl)`` yields for its slice ``sl``, the
    cells are removed by :func:`remove_cells` (``keep`` as there, one map or
    one per epoch of the chunk; ``None``: the data as is) and the model's
    output recorded. ``fill`` is ``None`` (zero the removed cells) or
    ``(ref, donors)``: the reference EpochsSource and the reference epoch
    lending its cells to each epoch. Returns ``pred`` (key -> predicted
    class of every epoch) and ``prob`` (key -> true-class softmax
    probability of every epoch; empty without ``labels``).
    """
    dev = resolve_device(device, model)
    pred, prob = {}, {}
    with model_context(model, dev):
        for sl, xb in _chunks(src):
            fb = None
            if fill is not None:
                ref, donors = fill
                uniq, inv = np.unique(donors[sl], return_inverse=True)
                fb = ref[uniq][inv]
            for key, keep in removals(sl):
                xr = xb
                if keep is not None:
                    xr = remove_cells(xb, keep, grid, picks, dev, fill=fb)
                logits = predict(model, xr, dev)
                if key not in pred:
                    pred[key] = np.empty(len(src), int)
                    if labels is not None:
                        prob[key] = np.empty(len(src), np.float32)
                pred[key][sl] = logits.argmax(1)
                if labels is not None:
                    yb = labels[sl]
                    prob[key][sl] = softmax(logits)[np.arange(len(yb)), yb]
    return pred, prob


def _predictions(model, src, device):
    """Predicted class of every epoch of ``src``: the removal engine, no removal."""
    no_removal = (("original", None),)
    pred, _ = run_removals(src, model, lambda sl: no_removal, None, None, device=device)
    return pred["original"]


def _accuracy(epochs, model, labels, device):
    """Accuracy of ``model`` on ``epochs`` (read chunk by chunk)."""
    pred = _predictions(model, _source(epochs), device)
    return float((pred == labels).mean())
