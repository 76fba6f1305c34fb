"""FreqRISE: random frequency masks, RISE-style (Brüsch et al., NLDL 2025).

Published code: github.com/theabrusch/FreqRISE,
``src/explainability/freqrise.py`` and ``src/explainability/masking.py``, and
the multichannel version in github.com/theabrusch/FLEXtime,
``src/attribution/freqrise/{freqrise,masking,evaluation}.py`` (the one
followed here; its ``main.py`` sets the defaults below). Per epoch ``x`` with
spectrum ``X = rfft(x)``:

1. draw ``n_masks`` random masks ``m_k``; a mask cell is 1 (kept) with
   probability ``probability`` and 0 otherwise. The published argument is
   called ``probability_of_drop``, but its generator sets a cell to 1 where
   ``uniform < probability_of_drop``: it is the probability of *keeping* a
   cell (0.5 in both published ``main`` scripts, so the two readings agree);
2. feed ``irfft(X * m_k)`` to the model and read the score ``s_k`` of the
   explained class: the logit (``use_softmax=False``, as both published
   ``main`` scripts run it) or the softmax probability;
3. saliency ``S = sum_k s_k |m_k| / (n_masks * probability)``, then min-max
   normalised per epoch to [0, 1] (published).

The explained class is ``target`` or, when it is ``None``, the predicted class
(FLEXtime's ``compute_freqrise_scores``: the argmax of the model's output on
the unperturbed epoch; FreqRISE's ``forward_dataloader`` uses the true label,
``target="true"`` here).

Masks on the channel x band grid (``n_cells=None``, default). The published
generator draws, per mask and channel, ``num_cells`` Bernoulli cells (128 in
FLEXtime's ``main.py``, 200 in FreqRISE's) over the rfft bins, upsamples them
linearly to the bins (``align_corners=False``), reflect-pads by
``num_cells // 2`` bins on each side and crops at a random shift in
``[0, num_cells)``, a smooth mask whose cells do not align with any band.
Here one Bernoulli cell is drawn per channel x band cell of the grid and
repeated over the band's bins, so every sampled mask keeps or removes whole
cells of the explanation; bins in no band are always kept. ``n_cells=int``
runs the published generator instead (channels independent, as in the
FLEXtime version; the FreqRISE repository, written for one-channel audio,
shares one mask across channels) and averages the per-bin saliency over each
band's bins.

Short-time mode (``explain(..., time_windows=...)``), as FreqRISE's
``domain="stft"`` (``src/explainability/freqrise.py``: ``torch.stft`` of the
sample, the masks multiply the complex STFT, ``torch.istft`` back to the
model; ``main_attributions.py`` sets the STFT): the masks act on the STFT of
the explanation's :class:`~mne_freqmask.spectral.ShortTimeGrid` instead of
the rfft. Grid masks draw one cell per channel x band x window. The
published generator (``n_cells=int``) is its two-dimensional form
(``mask_generator(num_spatial_dims=2)`` in ``src/explainability/masking.py``):
``n_cells x n_cells`` Bernoulli cells per mask and channel, upsampled
bilinearly to bins x windows, reflect-padded by ``n_cells // 2`` on both
axes and cropped at a random offset per axis (two more uniforms per mask:
bins, then windows); the saliency per STFT coefficient is averaged over each
cell's bins. The published STFT is a symmetric Hann of 455 samples every 35
(for 8 kHz audio); here it is the grid's periodic Hann, whose windows and
step the user chooses (``time_windows``), so that the cells, the removal
game and :class:`~mne_freqmask.SpectralSaliencyTFR` share one transform.
The published default ``num_cells=200`` assumes hundreds of windows; an EEG
epoch has a few, and ``n_cells`` must stay below twice the number of windows
and of bins (the reflect padding).

Deviations from the published code, all deliberate:

- the grid masks above (default), not the published smooth masks;
- min-max normalisation over the channel x band cells of an epoch, after
  averaging over each band's bins; a constant map (max == min, e.g. a model
  whose score does not move) is set to 0 instead of the published 0 / 0;
- only the picked channels are masked (the published code masks all);
- random numbers: one :class:`numpy.random.Generator` per epoch, seeded with
  an integer drawn from ``random_state`` (one draw per epoch, in order). Each
  mask consumes ``n_picks * n_cells`` uniforms (grid: ``n_picks * n_bands``)
  in C order, then (published generator only) one uniform ``u`` for its shift
  ``floor(u * n_cells)``. The masks of an epoch therefore do not depend on
  ``chunk_size`` or ``batch_size``;
- batched: the masked copies of all epochs of a chunk are evaluated in
  forward passes of ``batch_size`` copies (published: 500 copies of one
  sample per pass), with the same result as the per-sample loop.

Cost: ``n_masks + 1`` forward passes per epoch (reported in
``diagnostics["model_passes"]``), no backward pass.
"""

import numpy as np
import torch
from mne.utils import _validate_type, logger

from mne_freqmask._cells import channel_index, put_back
from mne_freqmask._torch_utils import model_dtype
from mne_freqmask.methods._base import MethodResult, method_spec
from mne_freqmask.methods._spectral_attr import check_batch_size
from mne_freqmask.utils._checks import _check_positive, _make_rng


@method_spec(
    name="freqrise",
    summary="FreqRISE (Brüsch et al., 2025), the saliency-weighted average of "
    "random 0/1 masks of the spectrum (RISE), drawn on the channel x band "
    "cells; min-max normalised per epoch",
    short_time=True,
    deterministic=False,
    fast_kwargs={"n_masks": 8},
)
def freqrise(
    run,
    *,
    n_masks=3000,
    probability=0.5,
    n_cells=None,
    use_softmax=False,
    normalize=True,
    batch_size=500,
):
    """FreqRISE saliency of every channel x band cell (see module docstring).

    Parameters (``explain(..., **method_kw)``): ``n_masks=3000``,
    ``probability=0.5`` (of keeping a cell), ``n_cells=None`` (masks on the
    grid's cells; an int runs the published smooth masks of that many cells
    per channel), ``use_softmax=False`` (score: the logit), ``normalize=True``
    (min-max per epoch), ``batch_size=500`` (masked copies per forward pass);
    ``random_state`` seeds the masks.
    """
    n_masks = _check_positive(n_masks, "n_masks", integer=True)
    probability = _check_positive(probability, "probability")
    if probability > 1:
        raise ValueError(
            f"probability is the probability of keeping a cell and must be in "
            f"(0, 1], got {probability}."
        )
    _validate_type(n_cells, ("int-like", None), "n_cells", "int or None")
    inp, grid, model, device = run.inp, run.grid, run.model, run.device
    short = grid.short_time
    if n_cells is not None:
        n_cells = _check_positive(n_cells, "n_cells", integer=True)
        _check_n_cells(n_cells, grid, short)
    for name, flag in (("use_softmax", use_softmax), ("normalize", normalize)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}.")
    batch_size = check_batch_size(batch_size)
    params = dict(
        n_masks=n_masks,
        probability=probability,
        n_cells=n_cells,
        use_softmax=use_softmax,
        normalize=normalize,
        batch_size=batch_size,
        random_state=run.seed,
    )
    seeds = _make_rng(run.random_state).integers(0, 2**63, inp.n_epochs)
    dtype = model_dtype(model)
    picks = torch.as_tensor(inp.picks, device=device)
    put_picks = channel_index(inp.picks, inp.x.shape[1], device)
    n_picks, n_epochs = len(inp.picks), inp.n_epochs
    # uniforms per mask and channel: one per cell (grid masks), or the
    # published generator's n_cells (x n_cells over bins x windows)
    if n_cells is None:
        n_draw, n_shift = grid.n_bands, 0
    else:
        n_draw, n_shift = (n_cells**2, 2) if short else (n_cells, 1)
    out = run.new_map()
    target_out = np.empty(n_epochs, np.int64)
    logit_out = np.empty(n_epochs, np.float32)
    logger.info(
        f"FreqRISE: {n_masks} masks x {n_epochs} epochs in forward passes of "
        f"{batch_size}."
    )
    for sl, x in run.chunks("FreqRISE chunks"):
        n_b = len(x)
        with torch.no_grad():
            logits = model(x)
        if inp.target is None:
            target = logits.argmax(1)
        else:
            target = torch.as_tensor(inp.target[sl], device=device)
        target_out[sl] = target.cpu().numpy()
        logit_out[sl] = logits.gather(1, target[:, None])[:, 0].float().cpu().numpy()
        xf = grid.spectrum(x.index_select(1, picks), inp.scale)  # (B, P, F)
        rngs = [np.random.default_rng(s) for s in seeds[sl]]
        # masks per block: a block's copies of all epochs in about batch_size
        per_block = max(1, batch_size // n_b)
        n_sal = grid.n_bands if n_cells is None else grid.n_freqs
        sal = torch.zeros((n_b, n_picks, n_sal), device=device, dtype=torch.float64)
        for m0 in range(0, n_masks, per_block):
            n_m = min(per_block, n_masks - m0)
            size = n_picks * n_draw + n_shift
            u = np.stack([rng.random((n_m, size)) for rng in rngs])
            u = torch.as_tensor(u, device=device)
            cells = (u[..., : n_picks * n_draw] < probability).to(dtype)
            cells = cells.reshape(n_b, n_m, n_picks, n_draw)
            if n_cells is None:  # the grid's cells, expanded to bins
                bins = weight = cells
            elif short:
                shift = torch.floor(u[..., -2:] * n_cells).long()
                bins = smooth_masks_2d(cells, shift, grid)
                weight = bins.abs()
            else:
                shift = torch.floor(u[..., -1] * n_cells).long()
                bins = smooth_masks(cells, shift, grid.n_freqs)
                weight = bins.abs()
            xhat = grid.blend(xf[:, None], bins, bins=n_cells is not None)
            xhat = grid.inverse(xhat, inp.n_times, inp.scale)
            xhat = xhat.to(dtype).reshape(n_b * n_m, n_picks, inp.n_times)
            full = put_back(x.repeat_interleave(n_m, 0), put_picks, xhat)
            score = _scores(model, full, batch_size)
            if use_softmax:
                score = score.softmax(-1)
            score = score.gather(1, target.repeat_interleave(n_m)[:, None])
            score = score.reshape(n_b, n_m).double()
            sal += torch.einsum("em,empk->epk", score, weight.double())
        sal = (sal / (n_masks * probability)).cpu().numpy()
        if n_cells is not None:
            sal = grid.collapse(sal, np.mean)
        if normalize:
            sal = minmax(sal)
        out[sl] = sal
    params["model_passes_per_epoch"] = n_masks + 1
    diagnostics = dict(
        target=target_out,
        logit=logit_out,
        model_passes=np.full(n_epochs, n_masks + 1, np.int64),
    )
    return MethodResult(out, params, diagnostics)


def _check_n_cells(n_cells, grid, short):
    """The published generator's reflect padding of ``n_cells // 2`` needs
    fewer bins (and, short-time, windows) than that on each axis."""
    if short:
        n_bins, n_win = grid.frequency_grid.n_freqs, grid.n_windows
        top = 2 * min(n_bins, n_win) - 1
        what = f"{n_bins} bins per window and {n_win} windows"
    else:
        top, what = 2 * grid.n_freqs - 1, f"{grid.n_freqs} rfft bins"
    if not 2 <= n_cells <= top:
        raise ValueError(
            f"n_cells must be between 2 and {top} (the reflect padding of "
            f"n_cells // 2 cells needs fewer than the {what}), got {n_cells}; "
            "or use n_cells=None (masks on the explanation's own cells)."
        )


def _scores(model, x, batch_size):
    """Model outputs for ``x`` in forward passes of ``batch_size`` epochs."""
    with torch.no_grad():
        out = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    out = torch.cat(out)
    return out.float() if out.dtype in (torch.float16, torch.bfloat16) else out


def smooth_masks(cells, shift, n_freqs):
    """The published generator's smooth masks from Bernoulli ``cells``.

    Parameters
    ----------
    cells : tensor, shape (..., n_picks, n_cells)
        0 / 1 cells of each mask and channel.
    shift : tensor of int, shape (...)
        Crop offset of each mask, in ``[0, n_cells)``, shared by its channels.
    n_freqs : int
        Number of rfft bins.

    Returns
    -------
    masks : tensor, shape (..., n_picks, n_freqs)
        Cells upsampled linearly to ``n_freqs`` (``align_corners=False``),
        reflect-padded by ``n_cells // 2`` on each side, cropped at ``shift``.
    """
    lead, (n_p, n_c) = cells.shape[:-2], cells.shape[-2:]
    flat = cells.reshape(-1, n_p, n_c)
    up = torch.nn.functional.interpolate(
        flat, size=n_freqs, mode="linear", align_corners=False
    )
    pad = n_c // 2
    up = torch.nn.functional.pad(up, (pad, pad), mode="reflect")
    idx = shift.reshape(-1, 1, 1) + torch.arange(n_freqs, device=cells.device)
    up = up.gather(-1, idx.expand(-1, n_p, -1))
    return up.reshape(lead + (n_p, n_freqs))


def smooth_masks_2d(cells, shift, grid):
    """The published short-time generator's masks, flattened as ``grid``.

    FreqRISE's ``mask_generator(num_spatial_dims=2)``: ``n_cells x n_cells``
    Bernoulli cells upsampled bilinearly (``align_corners=False``) to the
    STFT's ``n_bins x n_windows``, reflect-padded by ``n_cells // 2`` on both
    axes and cropped at a random offset per axis.

    Parameters
    ----------
    cells : tensor, shape (..., n_picks, n_cells ** 2)
        0 / 1 cells of each mask and channel (bins major).
    shift : tensor of int, shape (..., 2)
        Crop offsets (bins, windows) of each mask, in ``[0, n_cells)``,
        shared by its channels.
    grid : ShortTimeGrid
        The grid whose STFT is masked.

    Returns
    -------
    masks : tensor, shape (..., n_picks, n_bins * n_windows)
        The masks in the grid's flat layout (bin ``f`` of window ``w`` at
        ``f * n_windows + w``).
    """
    n_bins, n_win = grid.frequency_grid.n_freqs, grid.n_windows
    lead, n_p = cells.shape[:-2], cells.shape[-2]
    n_c = int(round(cells.shape[-1] ** 0.5))
    flat = cells.reshape(-1, n_p, n_c, n_c)
    up = torch.nn.functional.interpolate(
        flat, size=(n_bins, n_win), mode="bilinear", align_corners=False
    )
    pad = n_c // 2
    up = torch.nn.functional.pad(up, (pad, pad, pad, pad), mode="reflect")
    shift = shift.reshape(-1, 2)
    dev = cells.device
    rows = shift[:, :1] + torch.arange(n_bins, device=dev)  # (M, n_bins)
    cols = shift[:, 1:] + torch.arange(n_win, device=dev)  # (M, n_win)
    m = torch.arange(len(shift), device=dev)[:, None, None]
    up = up.permute(0, 2, 3, 1)[m, rows[:, :, None], cols[:, None, :]]
    return up.permute(0, 3, 1, 2).reshape(lead + (n_p, n_bins * n_win))


def minmax(sal):
    """Min-max normalise each epoch's map ``(n_epochs, ...)`` to [0, 1].

    A constant map becomes 0 (the published code divides 0 by 0).
    """
    flat = sal.reshape(len(sal), -1)
    lo = flat.min(1, keepdims=True)
    span = flat.max(1, keepdims=True) - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1), 0.0)
    return norm.reshape(sal.shape).astype(np.float32)
