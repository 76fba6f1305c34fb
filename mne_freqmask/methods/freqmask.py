"""Frequency-domain mask perturbation (Wang et al.), fitted in batches.

For each epoch ``x`` (channels x times) with spectrum ``X = rfft(x)``, a mask
``M`` in [0, 1] over channel x band cells (expanded to bins by repetition) and
a perturbation ``Xr = NN(X)`` from a two-branch dense generator (one linear
layer over the frequency axis for the real part, one for the imaginary part)
define the perturbed epoch ``irfft(X * M + (1 - M) * Xr)``. The mask and the
generator minimise (paper eq. 5)::

    CE(f(x_hat), f(x)) + a_M * mean(M) + a_r * mean|Xr| + lambda * L_align

where ``L_align`` pulls ``Xr`` towards the frequency-domain samples of the
nearest subject cluster of the reference set. With the squared distance,
``mean_i |Xr - X_i|^2 = |Xr - mean_i X_i|^2 + const``, so only the per-subject
mean spectrum is needed.

All epochs of a chunk are fitted in one optimisation. Each epoch has its own
mask and its own generator, the loss is a sum of per-epoch terms and Adam acts
element-wise, so the result equals fitting the epochs one at a time. Early
stopping is per epoch: after ``min_steps`` steps, an epoch whose loss has not
improved by ``tol`` (relative) for ``patience`` steps is frozen and removed
from the active batch, so later steps only pay for the epochs still moving.
"""

import numpy as np
import torch
from mne.utils import _check_option, deprecated, logger
from torch.nn.functional import cross_entropy, log_softmax, softmax
from torch.optim.adam import adam as _adam

from mne_freqmask._torch_utils import (
    inverse_spectrum,
    model_dtype,
    spectral_dtype,
    spectrum,
)
from mne_freqmask.methods._base import MethodResult, chunk_slices, chunking
from mne_freqmask.utils._checks import _check_positive


def _memory_per_epoch(inp, grid):
    """~4 copies (value, grad, two Adam moments) of the generator and mask,
    plus an allowance for the model's activations."""
    n_f = grid.n_freqs
    return 4 * (4 * (2 * n_f * n_f + 2 * n_f) + 64 * np.prod(inp.x.shape[1:]))


@chunking(memory_per_epoch=_memory_per_epoch)
def freqmask(
    inp,
    grid,
    model,
    *,
    device,
    chunk_size,
    random_state=None,
    n_steps=300,
    lr=0.01,
    lambda_align=0.05,
    l1_mask=1.0,
    l1_perturbation=1.0,
    alignment="complex",
    generator="two_branch",
    patience=10,
    tol=1e-3,
    min_steps=50,
    return_perturbed=False,
):
    """Fit FreqMask masks for every epoch of ``inp`` (see module docstring).

    With ``return_perturbed=True``, ``diagnostics["perturbed"]`` holds the
    final perturbed epochs ``irfft(X * M + (1 - M) * Xr)`` (all channels, the
    units of the epochs, float32), e.g. for the OOD score of
    :func:`mne_freqmask.evaluation.ood_score`.
    """
    n_steps = _check_positive(n_steps, "n_steps", integer=True)
    lr = _check_positive(lr, "lr")
    lambda_align = _check_positive(lambda_align, "lambda_align", strict=False)
    l1_mask = _check_positive(l1_mask, "l1_mask", strict=False)
    l1_perturbation = _check_positive(l1_perturbation, "l1_perturbation", strict=False)
    patience = _check_positive(patience, "patience", integer=True)
    tol = _check_positive(tol, "tol", strict=False)
    min_steps = _check_positive(min_steps, "min_steps", integer=True, strict=False)
    _check_option("alignment", alignment, ("complex", "magnitude"))
    _check_option("generator", generator, ("two_branch", "one_branch"))
    params = dict(
        n_steps=n_steps,
        lr=lr,
        lambda_align=lambda_align,
        l1_mask=l1_mask,
        l1_perturbation=l1_perturbation,
        alignment=alignment,
        generator=generator,
        patience=patience,
        tol=tol,
        min_steps=min_steps,
    )
    # masks, generators and spectra in float32 at least; the model gets its
    # own dtype (half-precision models: rfft has no float16 kernel on CPU)
    net_dtype = model_dtype(model)
    dtype = spectral_dtype(net_dtype)
    centres, cluster = _subject_centres(inp, alignment, device, dtype)
    n_epochs = inp.n_epochs
    out = np.empty((n_epochs, len(inp.picks), grid.n_bands), np.float32)
    steps = np.empty(n_epochs, np.int32)
    loss_out = np.empty(n_epochs, np.float32)
    ce_out = np.empty(n_epochs, np.float32)
    perturbed = np.empty(inp.x.shape, np.float32) if return_perturbed else None
    fitter = _ChunkFitter(inp, grid, model, params, device, dtype, net_dtype)
    for sl in chunk_slices(n_epochs, chunk_size, "FreqMask chunks"):
        out_x = None if perturbed is None else perturbed[sl]
        mask, n_done, loss, ce = fitter.fit(sl, centres[cluster[sl]], out_x)
        out[sl], steps[sl], loss_out[sl], ce_out[sl] = mask, n_done, loss, ce
    logger.info(
        f"FreqMask: median {np.median(steps):.0f} steps to convergence "
        f"(max {steps.max()}), median final loss {np.median(loss_out):.3f}."
    )
    diagnostics = dict(
        n_steps=steps, loss=loss_out, cross_entropy=ce_out, cluster=cluster
    )
    if perturbed is not None:
        diagnostics["perturbed"] = perturbed
    return MethodResult(out, params, diagnostics)


def _at_least_float32(t):
    """Losses in float32 at least (half-precision logits are upcast)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _subject_centres(inp, alignment, device, dtype):
    """Per-subject mean spectra of the reference and each epoch's nearest one.

    For ``"complex"`` the centre is the mean complex spectrum, which by
    Parseval (orthonormal FFT) is the spectrum of the time-domain centre of
    eq. 3, so the nearest centre is the same in both domains. For
    ``"magnitude"`` it is the mean magnitude spectrum, and nearness is measured
    between magnitude spectra.
    """
    subjects, ref_subject = np.unique(inp.ref_groups, return_inverse=True)

    def features(xb):
        xf = spectrum(torch.as_tensor(xb, device=device).to(dtype), inp.scale)
        return torch.view_as_real(xf) if alignment == "complex" else xf.abs()

    # one pass over the reference, summing each subject's spectra (in float64
    # so that the mean of many epochs does not drift)
    sums, counts = None, np.bincount(ref_subject, minlength=len(subjects))
    for sl, xb in inp.ref_x.chunks():
        feat = features(xb[:, inp.picks]).double()
        if sums is None:
            sums = feat.new_zeros((len(subjects),) + feat.shape[1:])
        sums.index_add_(0, torch.as_tensor(ref_subject[sl], device=device), feat)
    shape = (-1,) + (1,) * (sums.ndim - 1)
    counts = torch.as_tensor(counts, device=device, dtype=torch.float64)
    centres = (sums / counts.reshape(shape)).to(dtype)
    # (n_subjects, n_picks, n_freqs[, 2])
    cluster = np.empty(inp.n_epochs, np.int64)
    flat = centres.reshape(len(subjects), -1)
    for sl, xb in inp.x.chunks():
        feat = features(xb[:, inp.picks])
        dist = torch.cdist(feat.reshape(len(feat), -1), flat)
        cluster[sl] = dist.argmin(1).cpu().numpy()
    return centres, cluster


def adam_update(params, grads, exp_avg, exp_avg_sq, steps, *, lr, fused):
    """One Adam step in place (torch.optim.Adam's defaults, no weight decay).

    torch's functional Adam: the same update as :class:`torch.optim.Adam`, on
    plain tensors that the caller may shrink when epochs converge. With
    ``fused=True`` the whole update is one kernel, one pass over memory.
    """
    _adam(
        params,
        grads,
        exp_avg,
        exp_avg_sq,
        [],
        steps,
        amsgrad=False,
        beta1=0.9,
        beta2=0.999,
        lr=lr,
        weight_decay=0.0,
        eps=1e-8,
        maximize=False,
        foreach=False,
        fused=fused,
    )


def _fused_adam_ok(device, dtype):
    """Whether torch's fused Adam kernel runs on ``device`` for ``dtype``."""
    try:
        t = torch.zeros(2, device=device, dtype=dtype)
        adam_update(
            [t.clone()],
            [t.clone()],
            [t.clone()],
            [t.clone()],
            [torch.zeros((), device=device, dtype=torch.float32)],
            lr=0.01,
            fused=True,
        )
    except (RuntimeError, NotImplementedError):
        return False
    return True


class _ChunkFitter:
    """One batched FreqMask optimisation over a chunk of epochs."""

    def __init__(self, inp, grid, model, params, device, dtype, net_dtype=None):
        self.inp, self.grid, self.model = inp, grid, model
        self.p, self.device, self.dtype = params, device, dtype
        self.net_dtype = dtype if net_dtype is None else net_dtype
        self.picks = torch.as_tensor(inp.picks, device=device)
        self.all_picked = len(inp.picks) == inp.x.shape[1] and np.array_equal(
            inp.picks, np.arange(inp.x.shape[1])
        )
        # index that expands band values (+ a trailing 1 for bins in no band)
        self.bin_index = torch.as_tensor(
            np.where(grid.bin_band < 0, grid.n_bands, grid.bin_band), device=device
        )
        self.fused = _fused_adam_ok(device, dtype)

    def _expand(self, mask):
        ones = mask.new_ones(mask.shape[:-1] + (1,))
        return torch.cat([mask, ones], -1).index_select(-1, self.bin_index)

    def _generate(self, w, b, x2):
        """Generator output ``(B, 2, n_picks, n_freqs)`` (real, imaginary).

        ``x2`` is the spectrum as ``(B, 2, n_picks, n_freqs)``. Two branches:
        ``w`` is ``(B, 2, F, F)`` and both dense layers run as one batched
        matmul over (epoch, branch), so autograd writes the gradient of ``w``
        in place rather than through per-branch slices. One branch: ``w`` is
        ``(B, 2F, 2F)`` on ``[re, im]`` concatenated.
        """
        if self.p["generator"] == "two_branch":
            return torch.matmul(x2, w) + b[:, :, None]
        n_b, _, n_p, n_f = x2.shape
        flat = x2.transpose(1, 2).reshape(n_b, n_p, 2 * n_f)
        r = torch.bmm(flat, w) + b[:, None]
        return r.reshape(n_b, n_p, 2, n_f).transpose(1, 2)

    def _init_state(self, sl, centres):
        """Tensors of one chunk: data, targets, parameters, Adam moments."""
        inp, p, dev, dtype = self.inp, self.p, self.device, self.dtype
        x = torch.as_tensor(inp.x[sl], device=dev).to(dtype)
        n_b = len(x)
        xf = spectrum(x.index_select(1, self.picks), inp.scale)
        x2 = torch.stack([xf.real, xf.imag], 1)  # (B, 2, n_picks, n_freqs)
        with torch.no_grad():
            logits = self.model(x.to(self.net_dtype))
        if inp.target is None:
            target = softmax(_at_least_float32(logits), -1)
        else:
            target = torch.as_tensor(inp.target[sl], device=dev)
        n_f = self.grid.n_freqs
        n_p = len(inp.picks)
        mask = torch.full((n_b, n_p, self.grid.n_bands), 0.5, device=dev, dtype=dtype)
        if p["generator"] == "two_branch":
            w = torch.zeros((n_b, 2, n_f, n_f), device=dev, dtype=dtype)
            b = torch.zeros((n_b, 2, n_f), device=dev, dtype=dtype)
        else:
            w = torch.zeros((n_b, 2 * n_f, 2 * n_f), device=dev, dtype=dtype)
            b = torch.zeros((n_b, 2 * n_f), device=dev, dtype=dtype)
        if p["alignment"] == "complex":  # (B, 2, n_picks, n_freqs) like x2
            centres = centres.to(dtype).permute(0, 3, 1, 2)
        else:
            centres = centres.to(dtype)
        return dict(
            x=x,
            x2=x2,
            target=target,
            centres=centres,
            params=[mask, w, b],
            exp_avg=[torch.zeros_like(t) for t in (mask, w, b)],
            exp_avg_sq=[torch.zeros_like(t) for t in (mask, w, b)],
            # one Adam step counter per parameter tensor: every active epoch
            # has taken the same number of steps, so the batch shares it
            adam_steps=[
                torch.zeros((), dtype=torch.float32, device=dev) for _ in range(3)
            ],
            best=torch.full((n_b,), np.inf, device=dev),
            wait=torch.zeros(n_b, dtype=torch.long, device=dev),
        )

    def _step(self, state):
        """One projected Adam step of every active epoch; returns losses."""
        mask, w, b = (t.requires_grad_(True) for t in state["params"])
        loss, ce = self._loss(state, mask, w, b)
        grads = torch.autograd.grad(loss.sum(), [mask, w, b])
        with torch.no_grad():
            params = [t.detach() for t in (mask, w, b)]
            adam_update(
                params,
                list(grads),
                state["exp_avg"],
                state["exp_avg_sq"],
                state["adam_steps"],
                lr=self.p["lr"],
                fused=self.fused,
            )
            params[0].clamp_(0.0, 1.0)
            state["params"] = params
        return loss.detach(), ce.detach()

    def fit(self, sl, centres, out_perturbed=None):
        p, dev = self.p, self.device
        state = self._init_state(sl, centres)
        n_b = len(state["x"])
        active = np.arange(n_b)  # positions (in the chunk) still optimised
        mask_out = np.empty((n_b, len(self.inp.picks), self.grid.n_bands), np.float32)
        steps_out = np.full(n_b, p["n_steps"], np.int32)
        loss_out = np.empty(n_b, np.float32)
        ce_out = np.empty(n_b, np.float32)
        for step in range(p["n_steps"]):
            ld, ce = self._step(state)
            params = state["params"]
            # per-epoch early stopping on the loss before this update
            best = state["best"]
            improved = torch.isinf(best) | (ld < best - p["tol"] * best.abs())
            state["best"] = torch.where(improved, ld, best)
            state["wait"] = torch.where(improved, 0, state["wait"] + 1)
            last = step == p["n_steps"] - 1
            if step + 1 < p["min_steps"] and not last:
                continue  # warm-up: no epoch stops before min_steps
            done = (state["wait"] >= p["patience"]).cpu().numpy()
            if not (done.any() or last):
                continue
            fin = np.ones_like(done) if last else done
            pos = active[fin]
            sel = torch.as_tensor(fin, device=dev)
            mask_out[pos] = params[0][sel].float().cpu().numpy()
            if not last:
                steps_out[pos] = step + 1
            loss_out[pos] = ld[sel].float().cpu().numpy()
            ce_out[pos] = ce[sel].float().cpu().numpy()
            if out_perturbed is not None:
                with torch.no_grad():
                    xhat = self._xhat(
                        state["x"][sel], state["x2"][sel], *(t[sel] for t in params)
                    )[0]
                out_perturbed[pos] = xhat.float().cpu().numpy()
            keep = ~fin
            if not keep.any():
                break
            active = active[keep]
            self._shrink(state, torch.as_tensor(keep, device=dev))
        return mask_out, steps_out, loss_out, ce_out

    @staticmethod
    def _shrink(state, keep):
        for key in ("x", "x2", "target", "centres", "best", "wait"):
            state[key] = state[key][keep]
        for key in ("params", "exp_avg", "exp_avg_sq"):
            state[key] = [t[keep] for t in state[key]]

    def _xhat(self, x, x2, mask, w, b):
        """The perturbed epochs (all channels) and the generator's output."""
        r = self._generate(w, b, x2)
        m = self._expand(mask)[:, None]  # (B, 1, n_picks, n_freqs)
        h = x2 * m + (1 - m) * r
        xhat = inverse_spectrum(
            torch.complex(h[:, 0], h[:, 1]), self.inp.n_times, self.inp.scale
        )
        if not self.all_picked:
            xhat = x.index_copy(1, self.picks, xhat)
        return xhat, r

    def _loss(self, state, mask, w, b):
        p = self.p
        xhat, r = self._xhat(state["x"], state["x2"], mask, w, b)
        logits = _at_least_float32(self.model(xhat.to(self.net_dtype)))
        if state["target"].ndim == 2:
            ce = -(state["target"] * log_softmax(logits, -1)).sum(-1)
        else:
            ce = cross_entropy(logits, state["target"], reduction="none")
        loss = ce
        if p["l1_mask"]:
            loss = loss + p["l1_mask"] * mask.mean((1, 2))
        if p["l1_perturbation"]:
            # mean over picks and bins of |Re| + |Im|, halved (as before)
            loss = loss + p["l1_perturbation"] * r.abs().mean((1, 2, 3))
        if p["lambda_align"]:
            cen = state["centres"]
            if p["alignment"] == "complex":
                # (|Re - c_re|^2 + |Im - c_im|^2) averaged over picks and bins
                dist = 2 * ((r - cen) ** 2).mean((1, 2, 3))
            else:
                mag = torch.sqrt(r[:, 0] ** 2 + r[:, 1] ** 2 + 1e-12)
                dist = ((mag - cen) ** 2).mean((1, 2))
            loss = loss + p["lambda_align"] * dist
        return loss, ce


@deprecated("use freqmask, named after its method, instead.")
def fit_freqmask(*args, **kwargs):
    """Deprecated name of :func:`freqmask`."""
    return freqmask(*args, **kwargs)
