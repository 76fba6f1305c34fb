"""Amplitude gradients (Schirrmeister et al., 2017), on the band grid.

The spectrum of each picked channel, ``X = rfft(x)`` (unnormalised, in the
data's units, as braindecode), is split into amplitude ``|X|`` and phase; the
epoch is rebuilt as ``irfft(|X| exp(i phase))`` and the gradient of the
explained class's output (``target``, or the predicted class) with respect to
``|X|`` is taken. Per band, the map holds the mean over the band's bins of
``|gradient|`` (``absolute=True``, default: how sensitive the decision is to
the band's amplitude, whatever the direction, comparable across classes and
epochs) or of the signed gradient (``absolute=False``: positive where more
amplitude raises the class's score, as in Schirrmeister's class-wise maps;
an average over epochs of different classes then mixes opposite signs).

braindecode ships the same computation
(:func:`braindecode.visualization.amplitude_gradients`); it is not called here
because it back-propagates once per output unit the mean over the batch of
that unit, always in float32, from numpy, for all channels, and needs
braindecode (an optional extra). This version takes one backward pass for the
explained class of every epoch, in the model's dtype and on its device, and
only for the picked channels; the tests check that both agree.
"""

import numpy as np
import torch

from mne_freqmask._torch_utils import spectral_dtype
from mne_freqmask.methods._base import MethodResult, method_spec
from mne_freqmask.methods._spectral_attr import target_classes
from mne_freqmask.spectral import as_grid


@method_spec(
    name="amplitude_gradients",
    summary="gradient of the target logit with respect to the spectral "
    "amplitudes (Schirrmeister et al., 2017)",
    short_time=True,
)
def amplitude_gradients(run, *, absolute=True):
    """Mean amplitude gradient per channel x band cell (see module docstring).

    Deterministic: ``random_state`` is not used.

    Parameters (``explain(..., **method_kw)``): ``absolute=True``.
    """
    if not isinstance(absolute, bool):
        raise TypeError(f"absolute must be a bool, got {type(absolute).__name__}.")
    inp, grid, model, device = run.inp, run.grid, run.model, run.device
    target = target_classes(inp, model, device)
    picks = torch.as_tensor(inp.picks, device=device)
    out = run.new_map()
    logit = np.empty(inp.n_epochs, np.float32)
    for sl, x in run.chunks():
        grad, lg = amplitude_gradient(
            model, x, picks, torch.as_tensor(target[sl], device=device), grid
        )
        grad = grad.double().cpu().numpy()
        out[sl] = grid.collapse(np.abs(grad) if absolute else grad, np.mean)
        logit[sl] = lg
    params = dict(absolute=absolute, aggregation="mean")
    return MethodResult(out, params, dict(target=target, logit=logit))


def amplitude_gradient(model, x, picks, target, grid=None):
    """Gradient of ``model(x)[i, target[i]]`` w.r.t. the amplitude spectrum.

    Returns the gradient, shape ``(n_epochs, n_picks, n_freqs)``, and the
    explained logits (numpy). With a short-time ``grid``
    (:class:`~mne_freqmask.spectral.ShortTimeGrid`) the amplitudes are those
    of the STFT (unnormalised, flattened as the grid's bins) and the epoch is
    rebuilt with the inverse STFT.
    """
    # the spectrum in float32 at least (no half-precision rfft on the CPU);
    # the rebuilt epoch goes back to the model's dtype
    xp = x.index_select(1, picks).to(spectral_dtype(x.dtype))
    grid = as_grid(grid, x.shape[-1])
    spec = grid.spectrum(xp, norm="backward")
    amps = spec.abs().requires_grad_(True)
    phases = spec.angle()
    with torch.enable_grad():
        # amplitude x unit phasor rather than torch.polar: polar's backward
        # gives a zero gradient at an amplitude of exactly 0 (the DC bin of a
        # mean-removed epoch), so the map jumped with 1e-7 input changes
        spec = torch.complex(amps * torch.cos(phases), amps * torch.sin(phases))
        rebuilt = grid.inverse(spec, x.shape[-1], norm="backward").to(x.dtype)
        out = model(x.index_copy(1, picks, rebuilt))
        sel = out.gather(1, target[:, None].long())[:, 0]
        (grad,) = torch.autograd.grad(sel.sum(), amps)
    return grad, sel.detach().float().cpu().numpy()
