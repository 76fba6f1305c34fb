"""captum's IntegratedGradients and FeatureAblation in the frequency domain.

Both attribute the output of the explained class (``target``, or the
predicted class) to the spectrum of the picked channels. The model is wrapped
(:class:`~mne_freqmask.methods._spectral_attr.InBandSpectrumModel`) so that
its input is the real and imaginary parts of the rfft bins that belong to a
band, stacked on a last axis of size 2 (orthonormal rfft of the data divided
by its standard deviation, so values are of order 1); the forward pass puts
them back into the spectrum, applies ``irfft`` and runs the model. Bins in no
band and unpicked channels keep their values. The baseline is zero: an
all-zero cell is that channel x band removed from the epoch.

- ``"integrated_gradients"``: the attributions of a cell's real and
  imaginary parts are summed over its bins. By completeness, the cells of an
  epoch sum to ``f(x) - f(x with every cell zeroed)`` up to the integral's
  error, which is returned per epoch as the diagnostic
  ``convergence_delta``.
- ``"ablation"``: one channel x band cell at a time is zeroed; the map holds
  ``f(x) - f(x without the cell)``. captum writes that value into every
  element of the cell, so it is read once per cell (not summed over bins).

Inputs are evaluated in batches: ``internal_batch_size=batch_size`` for the
integral, and as many cells per forward pass as fit ``batch_size`` epochs for
the ablation. Deterministic: ``random_state`` is not used.
"""

import numpy as np
import torch
from mne.utils import _check_option

from mne_freqmask.methods._base import MethodResult, method_spec
from mne_freqmask.methods._spectral_attr import (
    InBandSpectrumModel,
    check_batch_size,
    in_band_bins,
    in_band_to_grid,
    target_classes,
)
from mne_freqmask.utils._checks import _check_positive


def _captum():
    from mne_freqmask.utils._deps import import_optional

    return import_optional("captum.attr")


@method_spec(
    name="integrated_gradients",
    summary="captum's IntegratedGradients on the (real, imaginary) spectrum, "
    "through an inverse FFT",
    short_time=True,
    fast_kwargs={"n_steps": 8},
)
def integrated_gradients(run, *, n_steps=50, method="gausslegendre", batch_size=512):
    """Integrated gradients per channel x band cell (see module docstring).

    Parameters (``explain(..., **method_kw)``): ``n_steps=50``,
    ``method="gausslegendre"``, ``batch_size=512``.
    """
    n_steps = _check_positive(n_steps, "n_steps", integer=True)
    _check_option(
        "method",
        method,
        (
            "gausslegendre",
            "riemann_trapezoid",
            "riemann_left",
            "riemann_right",
            "riemann_middle",
        ),
    )
    batch_size = check_batch_size(batch_size)
    wrapped, bins, target = _setup(run)
    ig = _captum().IntegratedGradients(wrapped)
    out = run.new_map()
    delta = np.empty(run.inp.n_epochs, np.float32)
    for sl, x in run.chunks():
        _, inband = wrapped.split(x)
        with torch.enable_grad():
            attr, dl = ig.attribute(
                inband,
                baselines=torch.zeros_like(inband),
                target=torch.as_tensor(target[sl], device=run.device),
                additional_forward_args=(x,),
                n_steps=n_steps,
                method=method,
                internal_batch_size=batch_size,
                return_convergence_delta=True,
            )
        vals = attr.sum(-1).double().cpu().numpy()
        out[sl] = in_band_to_grid(vals, bins, run.grid, np.sum)
        delta[sl] = dl.float().cpu().numpy()
    params = dict(
        n_steps=n_steps,
        method=method,
        batch_size=batch_size,
        baseline="zero",
        aggregation="sum",
    )
    return MethodResult(out, params, dict(target=target, convergence_delta=delta))


@method_spec(
    name="ablation",
    summary="captum's FeatureAblation of each channel x band cell of the "
    "spectrum, through an inverse FFT",
)
def ablation(run, *, batch_size=512):
    """Feature ablation of every channel x band cell (see module docstring).

    Parameters (``explain(..., **method_kw)``): ``batch_size=512``.
    """
    batch_size = check_batch_size(batch_size)
    wrapped, bins, target = _setup(run)
    grid, device = run.grid, run.device
    n_picks, n_bands = len(run.inp.picks), grid.n_bands
    band_of_bin = grid.bin_band[bins]
    # cell id of every (channel, in-band bin, part): channel * n_bands + band
    mask = np.arange(n_picks)[:, None] * n_bands + band_of_bin[None, :]
    mask = np.repeat(mask[:, :, None], 2, axis=2)[None]
    mask_t = torch.as_tensor(mask, device=device)
    # first element of each cell, to read its (repeated) attribution
    first = np.array([np.flatnonzero(band_of_bin == b)[0] for b in range(n_bands)])
    fa = _captum().FeatureAblation(wrapped)
    out = run.new_map()
    for sl, x in run.chunks():
        _, inband = wrapped.split(x)
        with torch.no_grad():
            attr = fa.attribute(
                inband,
                baselines=0.0,
                target=torch.as_tensor(target[sl], device=device),
                additional_forward_args=(x,),
                feature_mask=mask_t,
                perturbations_per_eval=max(1, batch_size // len(x)),
            )
        out[sl] = attr[:, :, first, 0].float().cpu().numpy()
    params = dict(batch_size=batch_size, baseline="zero", aggregation="cell")
    return MethodResult(out, params, dict(target=target))


def _setup(run):
    inp, model, device = run.inp, run.model, run.device
    bins, _ = in_band_bins(run.grid)
    wrapped = InBandSpectrumModel(
        model, inp.picks, bins, inp.n_times, inp.scale, device, run.grid
    )
    return wrapped, bins, target_classes(inp, model, device)
