"""FLEXtime: a learned mask over a filterbank (Brüsch et al., 2024).

Published code: github.com/theabrusch/FLEXtime,
``src/attribution/flextime/filterbank.py`` (the filterbank),
``src/attribution/flextime/flextime.py`` (``FLEXtime.fit``),
``src/attribution/flextime/evaluation.py`` (the map) and the defaults of
``main.py`` and ``src/attribution/compute_attribution.py``. Per epoch ``x``:

1. Filterbank: ``n_filters`` FIR filters of ``numtaps`` taps
   (:func:`scipy.signal.firwin`) of equal width ``w = (sfreq / 2) / n_filters``:
   a low-pass at ``w``, band-passes ``[k w, (k + 1) w]`` and a high-pass at
   ``(n_filters - 1) w``. Each picked channel is filtered causally by each
   filter (``lfilter``) and shifted back by the group delay
   ``(numtaps - 1) // 2`` with a *circular* roll (``np.roll``), as published,
   giving ``b_i(x)``, one signal per filter.
2. Mask ``m`` in [0, 1], one value per picked channel and filter, starting at
   0.5; the masked epoch is ``sum_i m_i b_i(x)``.
3. Loss (published ``FLEXtime.fit``)::

       CE(softmax(f(x_m)), y) + r_t * R(m) + t_t * mean|m[..., 1:-1] - m[..., :-2]|

   with ``y`` the explained class, ``CE`` torch's cross-entropy applied to the
   *softmax probabilities* (published: a softmax, then ``CrossEntropyLoss``,
   which applies a second log-softmax; kept, it bounds the loss and its
   gradients), ``R(m) = max(mean(m) - keep_ratio, 0)`` (``regularization="l1"``,
   published default) or ``mean((sort(m) - r)^2)`` with ``r`` a 0/1 reference
   holding ``keep_ratio`` ones per channel (``"ratio"``), the regularisation
   weight ``r_t = reg_strength * reg_dilation ** (t / n_steps)`` and the
   smoothness over adjacent filters weighted by ``time_reg_strength`` from
   step 10 on (published name; the published index range leaves out the last
   pair of filters, kept).
4. Optimiser: SGD with momentum (``lr=1``, ``momentum=1``, as published: the
   velocity never decays), the mask clipped to [0, 1] after each step,
   ``n_steps=1000`` steps. Early stopping (``stop_criterion``, published
   ``None``, i.e. off, in the paper's runs): a step whose loss differs from the
   previous one by less than ``stop_criterion`` adds one to a counter that is
   never reset, and the fit of that epoch stops after the step at which the
   counter exceeds ``patience``.
5. Map: at each frequency ``f``, ``sum_i m_i |H_i(f)|`` (published
   ``get_collect_filter_response``).

Mapping onto the channel x band grid. The filterbank does not follow the
grid's bands: ``n_filters=int`` (default 128, published) keeps the published
filterbank and averages the map of step 5 over each band's rfft bins.
``n_filters="bands"`` builds one FIR filter per band of the grid instead
(``firwin`` with the band's edges: a low-pass for a band from 0 Hz, a
high-pass for one that reaches Nyquist), so each mask value is one cell;
whatever the filters do not pass (the bins between dict bands, the filters'
ripple) is added back unmasked, and the map is again step 5 averaged over
the band's bins.

Deviations from the published code:

- the map is averaged over each band's bins (above);
- ``|H_i|`` is evaluated at the rfft frequencies (published:
  ``freqz(worN=n_freqs)``, ``n_freqs`` points evenly spaced on
  ``[0, sfreq / 2)``, which are not the rfft frequencies);
- only the picked channels are filtered and masked; the others are fed
  unchanged (published: all channels are masked);
- the explained class is ``target``, or the predicted class when it is
  ``None`` (published: always the predicted class);
- batched: all epochs of a chunk are fitted in one optimisation, each with
  its own mask, velocity and early-stopping counter. The loss is a sum of
  per-epoch terms and SGD acts element-wise, so the result equals the
  per-epoch loop (checked by the tests); converged epochs are frozen and
  dropped from the batch. The filtering is a float32 ``conv1d`` on
  ``device`` (published: ``scipy.signal.lfilter`` in float64 on the CPU).

Deterministic: ``random_state`` is not used. Cost: one forward and one
backward pass per step and epoch, plus one forward pass for the target:
``2 * n_steps + 1`` passes per epoch (``params["model_passes_per_epoch"]``;
each epoch's count, lower with early stopping, in
``diagnostics["model_passes"]``).
"""

import numpy as np
import torch
from mne.utils import _check_option, _validate_type, logger
from torch.nn.functional import cross_entropy, softmax

from mne_freqmask._cells import channel_index, put_back
from mne_freqmask._torch_utils import model_dtype
from mne_freqmask.methods._base import MethodResult, iter_chunks, method_spec
from mne_freqmask.utils._checks import _check_positive

#: steps before the smoothness term is switched on (published: 10)
_SMOOTH_WARMUP = 10
#: bytes of filter outputs held per chunk at most
_BANK_BYTES = 1e9


@method_spec(
    name="flextime",
    summary="FLEXtime (Brüsch et al., 2024), a mask over the channels x the "
    "filters of an FIR filterbank learned by SGD against a keep-ratio "
    "penalty; the filterbank's response averaged over each band",
    fast_kwargs={"n_steps": 3, "n_filters": "bands"},
)
def flextime(
    run,
    *,
    n_filters=128,
    numtaps=51,
    keep_ratio=0.1,
    regularization="l1",
    reg_strength=1.0,
    reg_dilation=1.0,
    time_reg_strength=1.0,
    n_steps=1000,
    lr=1.0,
    momentum=1.0,
    stop_criterion=None,
    patience=10,
):
    """Fit FLEXtime filterbank masks for every epoch (see module docstring).

    Deterministic: ``random_state`` is not used.

    Parameters (``explain(..., **method_kw)``; defaults from the published
    code): ``n_filters=128`` (equal-width FIR filters from 0 Hz to Nyquist, or
    ``"bands"``: one filter per band), ``numtaps=51``, ``keep_ratio=0.1``,
    ``regularization="l1"|"ratio"``, ``reg_strength=1.0``,
    ``reg_dilation=1.0``, ``time_reg_strength=1.0`` (smoothness over adjacent
    filters), ``n_steps=1000``, ``lr=1.0``, ``momentum=1.0`` (SGD),
    ``stop_criterion=None`` (no early stopping), ``patience=10``.
    """
    _validate_type(n_filters, ("int-like", str), "n_filters", 'int or "bands"')
    if isinstance(n_filters, str):
        _check_option("n_filters", n_filters, ("bands",))
    else:
        n_filters = _check_positive(n_filters, "n_filters", integer=True)
        if n_filters < 2:
            raise ValueError(
                f"n_filters must be at least 2 (a low-pass and a high-pass), got "
                f'{n_filters}; or use n_filters="bands" (one filter per band).'
            )
    numtaps = _check_positive(numtaps, "numtaps", integer=True)
    if numtaps % 2 == 0:
        raise ValueError(
            f"numtaps must be odd (a type I FIR filter, needed for the "
            f"high-pass), got {numtaps}; use {numtaps + 1}."
        )
    keep_ratio = _check_positive(keep_ratio, "keep_ratio", strict=False)
    if keep_ratio > 1:
        raise ValueError(f"keep_ratio must be in [0, 1], got {keep_ratio}.")
    _check_option("regularization", regularization, ("l1", "ratio"))
    reg_strength = _check_positive(reg_strength, "reg_strength", strict=False)
    reg_dilation = _check_positive(reg_dilation, "reg_dilation")
    time_reg_strength = _check_positive(
        time_reg_strength, "time_reg_strength", strict=False
    )
    n_steps = _check_positive(n_steps, "n_steps", integer=True)
    lr = _check_positive(lr, "lr")
    momentum = _check_positive(momentum, "momentum", strict=False)
    if stop_criterion is not None:
        stop_criterion = _check_positive(stop_criterion, "stop_criterion")
    patience = _check_positive(patience, "patience", integer=True, strict=False)
    params = dict(
        n_filters=n_filters,
        numtaps=numtaps,
        keep_ratio=keep_ratio,
        regularization=regularization,
        reg_strength=reg_strength,
        reg_dilation=reg_dilation,
        time_reg_strength=time_reg_strength,
        n_steps=n_steps,
        lr=lr,
        momentum=momentum,
        stop_criterion=stop_criterion,
        patience=patience,
    )
    inp, grid, model, device = run.inp, run.grid, run.model, run.device
    if n_filters == "bands":
        taps = band_filterbank(grid, numtaps)
    else:
        taps = filterbank(n_filters, numtaps, grid.sfreq)
    response = filter_response(taps, grid.freqs, grid.sfreq)  # (n_filt, n_freqs)
    fitter = _ChunkFitter(inp, model, taps, params, device, n_filters == "bands")
    n_epochs, n_picks = inp.n_epochs, len(inp.picks)
    out = run.new_map()
    masks = np.empty((n_epochs, n_picks, len(taps)), np.float32)
    steps = np.empty(n_epochs, np.int64)
    loss = np.empty(n_epochs, np.float32)
    target_loss = np.empty(n_epochs, np.float32)
    target = np.empty(n_epochs, np.int64)
    # the filter outputs take n_picks x n_filters x n_times floats per epoch:
    # keep them within ~1 GB per chunk
    per_epoch = 4 * n_picks * len(taps) * inp.n_times
    chunk_size = run.chunk_size
    if chunk_size * per_epoch > _BANK_BYTES:
        chunk_size = max(1, int(_BANK_BYTES // per_epoch))
        logger.info(f"FLEXtime: chunks of {chunk_size} epochs (filter outputs).")
    for sl, x in iter_chunks(inp, chunk_size, model, device, "FLEXtime chunks"):
        masks[sl], steps[sl], loss[sl], target_loss[sl], target[sl] = fitter.fit(sl, x)
    out[:] = grid.collapse(masks.astype(np.float64) @ response, np.mean)
    logger.info(
        f"FLEXtime: median {np.median(steps):.0f} steps (max {steps.max()}), "
        f"median mean mask {np.median(masks.mean((1, 2))):.3f}."
    )
    # forward and backward passes each counted; fewer with early stopping
    # (diagnostics["model_passes"] has each epoch's count)
    params["model_passes_per_epoch"] = 2 * n_steps + 1
    diagnostics = dict(
        n_steps=steps,
        loss=loss,
        target_loss=target_loss,
        target=target,
        filter_mask=masks,
        model_passes=2 * steps + 1,
    )
    return MethodResult(out, params, diagnostics)


def filterbank(n_filters, numtaps, sfreq):
    """Build the published FLEXtime filterbank.

    ``n_filters`` FIR filters (:func:`scipy.signal.firwin`) of equal bandwidth
    ``(sfreq / 2) / n_filters``: a low-pass, band-passes and a high-pass
    (published ``FilterBank.create_fir_filterbank``).

    Parameters
    ----------
    n_filters : int
        Number of filters (at least 2).
    numtaps : int
        Taps per filter (odd).
    sfreq : float
        Sampling frequency in Hz.

    Returns
    -------
    taps : ndarray, shape (n_filters, numtaps)
        The filters' coefficients.
    """
    from scipy.signal import firwin

    width = (sfreq / 2.0) / n_filters
    taps = [firwin(numtaps, width, fs=sfreq, pass_zero="lowpass")]
    for k in range(1, n_filters - 1):
        edges = [k * width, (k + 1) * width]
        taps.append(firwin(numtaps, edges, fs=sfreq, pass_zero="bandpass"))
    taps.append(
        firwin(numtaps, (n_filters - 1) * width, fs=sfreq, pass_zero="highpass")
    )
    return np.array(taps)


def band_filterbank(grid, numtaps):
    """One FIR filter per band of ``grid`` (``n_filters="bands"``)."""
    from scipy.signal import firwin

    nyq = grid.sfreq / 2.0
    df = grid.freqs[1] - grid.freqs[0]
    taps = []
    for name, (lo, hi) in zip(grid.band_names, grid.band_edges, strict=True):
        if hi - lo < df:
            raise ValueError(
                f"Band {name!r} ({lo}-{hi} Hz) is narrower than the rfft "
                f"resolution ({df:.3g} Hz); widen it for n_filters='bands'."
            )
        low, high = lo > 0, hi < nyq
        if low and high:
            taps.append(firwin(numtaps, [lo, hi], fs=grid.sfreq, pass_zero="bandpass"))
        elif high:
            taps.append(firwin(numtaps, hi, fs=grid.sfreq, pass_zero="lowpass"))
        elif low:
            taps.append(firwin(numtaps, lo, fs=grid.sfreq, pass_zero="highpass"))
        else:
            delta = np.zeros(numtaps)
            delta[numtaps // 2] = 1.0  # a single band over 0-Nyquist: identity
            taps.append(delta)
    return np.array(taps)


def filter_response(taps, freqs, sfreq):
    """Compute the magnitude response of each filter at given frequencies.

    Parameters
    ----------
    taps : ndarray, shape (n_filters, numtaps)
        FIR coefficients, e.g. from :func:`filterbank`.
    freqs : ndarray, shape (n_freqs,)
        Frequencies in Hz (FLEXtime's map uses the rfft frequencies).
    sfreq : float
        Sampling frequency in Hz.

    Returns
    -------
    response : ndarray, shape (n_filters, n_freqs)
        ``|H_i(f)|``; FLEXtime's map of a mask ``m`` is ``m @ response``.
    """
    from scipy.signal import freqz

    return np.array([np.abs(freqz(h, 1, worN=freqs, fs=sfreq)[1]) for h in taps])


class _ChunkFitter:
    """One batched FLEXtime optimisation over a chunk of epochs."""

    def __init__(self, inp, model, taps, params, device, add_rest):
        self.inp, self.model, self.p, self.device = inp, model, params, device
        self.dtype = model_dtype(model)
        self.picks = torch.as_tensor(inp.picks, device=device)
        # conv1d correlates: flip the taps to filter (lfilter) causally
        self.weight = torch.as_tensor(
            taps[:, None, ::-1].copy(), device=device, dtype=torch.float32
        )
        self.numtaps = taps.shape[1]
        self.add_rest = add_rest
        self.put_picks = channel_index(inp.picks, inp.x.shape[1], device)
        n_f = len(taps)
        keep = n_f - int((1 - params["keep_ratio"]) * n_f)
        ref = torch.zeros(n_f, device=device, dtype=torch.float32)
        ref[n_f - keep :] = 1.0
        self.ratio_ref = ref

    def bank(self, x):
        """Filter outputs ``(B, n_picks, n_filters, n_times)`` (float32).

        Causal FIR filtering with zero initial conditions, then a circular
        shift by the group delay (published ``adjust_for_delay``). With
        ``add_rest``, a last unmasked "filter" holds ``x - sum_i b_i(x)``.
        """
        xp = x.index_select(1, self.picks).float()
        n_b, n_p, n_t = xp.shape
        scale = self.inp.scale
        flat = torch.nn.functional.pad(
            xp.reshape(n_b * n_p, 1, n_t) / scale, (self.numtaps - 1, 0)
        )
        y = torch.nn.functional.conv1d(flat, self.weight)
        y = torch.roll(y, -((self.numtaps - 1) // 2), dims=-1) * scale
        y = y.reshape(n_b, n_p, -1, n_t)
        rest = xp - y.sum(2) if self.add_rest else None
        return y, rest

    def fit(self, sl, x):
        p, dev = self.p, self.device
        n_b = len(x)
        with torch.no_grad():
            logits = self.model(x)
        if self.inp.target is None:
            target = logits.argmax(1)
        else:
            target = torch.as_tensor(self.inp.target[sl], device=dev)
        target_np = target.cpu().numpy()
        bands, rest = self.bank(x)
        n_f = bands.shape[2]
        mask = torch.full((n_b, len(self.inp.picks), n_f), 0.5, device=dev)
        buf = torch.zeros_like(mask)
        prev = torch.full((n_b,), np.inf, device=dev, dtype=torch.float64)
        counter = torch.zeros(n_b, dtype=torch.long, device=dev)
        active = np.arange(n_b)
        mask_out = np.empty((n_b,) + mask.shape[1:], np.float32)
        steps_out = np.full(n_b, p["n_steps"], np.int64)
        loss_out = np.empty(n_b, np.float32)
        tl_out = np.empty(n_b, np.float32)
        reg = p["reg_strength"]
        mult = np.exp(np.log(p["reg_dilation"]) / p["n_steps"])
        for step in range(p["n_steps"]):
            mask.requires_grad_(True)
            loss, tl = self._loss(x, bands, rest, mask, target, reg, step)
            (grad,) = torch.autograd.grad(loss.sum(), mask)
            with torch.no_grad():
                # torch.optim.SGD (dampening 0, no Nesterov): the first step
                # sets the velocity to the gradient
                buf = grad if step == 0 else p["momentum"] * buf + grad
                mask = (mask.detach() - p["lr"] * buf).clamp_(0.0, 1.0)
            reg *= mult
            last = step == p["n_steps"] - 1
            ld = loss.detach().double()
            if p["stop_criterion"] is not None:
                counter = counter + ((prev - ld).abs() < p["stop_criterion"]).long()
                prev = ld
                done = (counter > p["patience"]).cpu().numpy()
            else:
                done = np.zeros(len(active), bool)
            if not (done.any() or last):
                continue
            fin = np.ones_like(done) if last else done
            pos, sel = active[fin], torch.as_tensor(fin, device=dev)
            mask_out[pos] = mask[sel].cpu().numpy()
            if not last:
                steps_out[pos] = step + 1
            loss_out[pos] = loss.detach()[sel].float().cpu().numpy()
            tl_out[pos] = tl.detach()[sel].float().cpu().numpy()
            keep = ~fin
            if not keep.any():
                break
            active = active[keep]
            k = torch.as_tensor(keep, device=dev)
            x, bands, target, mask, buf = x[k], bands[k], target[k], mask[k], buf[k]
            rest = None if rest is None else rest[k]
            prev, counter = prev[k], counter[k]
        return mask_out, steps_out, loss_out, tl_out, target_np

    def _loss(self, x, bands, rest, mask, target, reg, step):
        p = self.p
        xm = torch.einsum("epft,epf->ept", bands, mask)
        if rest is not None:
            xm = xm + rest
        xm = put_back(x, self.put_picks, xm.to(self.dtype))
        out = self.model(xm)
        out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
        # published: CrossEntropyLoss on the softmax probabilities
        tl = cross_entropy(softmax(out, 1), target, reduction="none")
        if p["regularization"] == "l1":
            r = (mask.abs().mean((1, 2)) - p["keep_ratio"]).clamp_min(0.0)
        else:
            r = ((self.ratio_ref - torch.sort(mask, -1)[0]) ** 2).mean((1, 2))
        loss = tl + reg * r
        ts = p["time_reg_strength"] if step >= _SMOOTH_WARMUP else 0.0
        if ts >= 1e-6 and mask.shape[-1] > 2:
            smooth = (mask[..., 1:-1] - mask[..., :-2]).abs().mean((1, 2))
            loss = loss + ts * smooth
        return loss, tl
