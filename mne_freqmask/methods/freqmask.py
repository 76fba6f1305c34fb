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
stopping is per epoch: an epoch whose loss has not improved by ``tol``
(relative) for ``patience`` steps is frozen and removed from the active batch,
so later steps only pay for the epochs still moving.
"""

import numpy as np
import torch
from mne.utils import ProgressBar, _check_option, logger
from torch.nn.functional import cross_entropy, log_softmax, softmax
from torch.optim.adam import adam as _adam

from mne_freqmask._torch_utils import inverse_spectrum, model_dtype, spectrum
from mne_freqmask.methods._registry import MethodResult
from mne_freqmask.utils._checks import _check_positive


def fit_freqmask(
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
    )
    dtype = model_dtype(model)
    centres, cluster = _subject_centres(inp, alignment, device, dtype)
    n_epochs = inp.n_epochs
    out = np.empty((n_epochs, len(inp.picks), grid.n_bands), np.float32)
    steps = np.empty(n_epochs, np.int32)
    loss_out = np.empty(n_epochs, np.float32)
    ce_out = np.empty(n_epochs, np.float32)
    perturbed = np.empty(inp.x.shape, np.float32) if return_perturbed else None
    starts = range(0, n_epochs, chunk_size)
    fitter = _ChunkFitter(inp, grid, model, params, device, dtype)
    for start in ProgressBar(starts, mesg="FreqMask chunks"):
        sl = slice(start, start + chunk_size)
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


class _ChunkFitter:
    """One batched FreqMask optimisation over a chunk of epochs."""

    def __init__(self, inp, grid, model, params, device, dtype):
        self.inp, self.grid, self.model = inp, grid, model
        self.p, self.device, self.dtype = params, device, dtype
        self.picks = torch.as_tensor(inp.picks, device=device)
        self.all_picked = len(inp.picks) == inp.x.shape[1] and np.array_equal(
            inp.picks, np.arange(inp.x.shape[1])
        )
        # index that expands band values (+ a trailing 1 for bins in no band)
        self.bin_index = torch.as_tensor(
            np.where(grid.bin_band < 0, grid.n_bands, grid.bin_band), device=device
        )

    def _expand(self, mask):
        ones = mask.new_ones(mask.shape[:-1] + (1,))
        return torch.cat([mask, ones], -1).index_select(-1, self.bin_index)

    def _generate(self, w, b, xre, xim):
        n_f = xre.shape[-1]
        if self.p["generator"] == "two_branch":
            # w: (B, 2, F, F), b: (B, 2, F): one dense layer per branch
            rre = torch.bmm(xre, w[:, 0]) + b[:, 0, None]
            rim = torch.bmm(xim, w[:, 1]) + b[:, 1, None]
        else:
            # one branch: [re, im] concatenated, w: (B, 2F, 2F), b: (B, 2F)
            r = torch.bmm(torch.cat([xre, xim], -1), w) + b[:, None]
            rre, rim = r[..., :n_f], r[..., n_f:]
        return rre, rim

    def fit(self, sl, centres, out_perturbed=None):
        inp, p, dev, dtype = self.inp, self.p, self.device, self.dtype
        x = torch.as_tensor(inp.x[sl], device=dev).to(dtype)
        n_b = len(x)
        n_times = inp.n_times
        xf = spectrum(x.index_select(1, self.picks), inp.scale)
        xre, xim = xf.real.contiguous(), xf.imag.contiguous()
        with torch.no_grad():
            logits = self.model(x)
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
        state = dict(
            x=x,
            xre=xre,
            xim=xim,
            target=target,
            centres=centres.to(dtype),
            params=[mask, w, b],
            exp_avg=[torch.zeros_like(t) for t in (mask, w, b)],
            exp_avg_sq=[torch.zeros_like(t) for t in (mask, w, b)],
            best=torch.full((n_b,), np.inf, device=dev),
            wait=torch.zeros(n_b, dtype=torch.long, device=dev),
        )
        active = np.arange(n_b)  # positions (in the chunk) still optimised
        mask_out = np.empty((n_b, n_p, self.grid.n_bands), np.float32)
        steps_out = np.full(n_b, p["n_steps"], np.int32)
        loss_out = np.empty(n_b, np.float32)
        ce_out = np.empty(n_b, np.float32)
        # one Adam step counter per parameter tensor: every active epoch has
        # taken the same number of steps, so it is shared by the whole batch
        adam_steps = [torch.zeros((), dtype=torch.float32) for _ in range(3)]
        for step in range(p["n_steps"]):
            mask, w, b = (t.requires_grad_(True) for t in state["params"])
            loss, ce = self._loss(state, mask, w, b, n_times)
            grads = torch.autograd.grad(loss.sum(), [mask, w, b])
            with torch.no_grad():
                # torch's functional Adam: the same update as torch.optim.Adam,
                # but on plain tensors we can shrink when epochs converge.
                params = [t.detach() for t in (mask, w, b)]
                _adam(
                    params,
                    list(grads),
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    [],
                    adam_steps,
                    amsgrad=False,
                    beta1=0.9,
                    beta2=0.999,
                    lr=p["lr"],
                    weight_decay=0.0,
                    eps=1e-8,
                    maximize=False,
                    foreach=False,
                )
                params[0].clamp_(0.0, 1.0)
                state["params"] = params
                # per-epoch early stopping on the loss before this update
                ld = loss.detach()
                best = state["best"]
                improved = torch.isinf(best) | (ld < best - p["tol"] * best.abs())
                state["best"] = torch.where(improved, ld, state["best"])
                state["wait"] = torch.where(improved, 0, state["wait"] + 1)
                done = (state["wait"] >= p["patience"]).cpu().numpy()
                last = step == p["n_steps"] - 1
                if done.any() or last:
                    fin = np.ones_like(done) if last else done
                    pos = active[fin]
                    mask_out[pos] = (
                        params[0][torch.as_tensor(fin, device=dev)]
                        .float()
                        .cpu()
                        .numpy()
                    )
                    if not last:
                        steps_out[pos] = step + 1
                    loss_out[pos] = (
                        ld[torch.as_tensor(fin, device=dev)].float().cpu().numpy()
                    )
                    ce_out[pos] = (
                        ce.detach()[torch.as_tensor(fin, device=dev)]
                        .float()
                        .cpu()
                        .numpy()
                    )
                    if out_perturbed is not None:
                        sel = torch.as_tensor(fin, device=dev)
                        xhat = self._xhat(
                            state["x"][sel],
                            state["xre"][sel],
                            state["xim"][sel],
                            *(t[sel] for t in params),
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
        for key in ("x", "xre", "xim", "target", "centres", "best", "wait"):
            state[key] = state[key][keep]
        for key in ("params", "exp_avg", "exp_avg_sq"):
            state[key] = [t[keep] for t in state[key]]

    def _xhat(self, x, xre, xim, mask, w, b):
        """The perturbed epochs (all channels) and the generator's output."""
        rre, rim = self._generate(w, b, xre, xim)
        m = self._expand(mask)
        hre = xre * m + (1 - m) * rre
        him = xim * m + (1 - m) * rim
        xhat = inverse_spectrum(
            torch.complex(hre, him), self.inp.n_times, self.inp.scale
        )
        if not self.all_picked:
            xhat = x.index_copy(1, self.picks, xhat)
        return xhat, rre, rim

    def _loss(self, state, mask, w, b, n_times):
        p = self.p
        xhat, rre, rim = self._xhat(state["x"], state["xre"], state["xim"], mask, w, b)
        logits = _at_least_float32(self.model(xhat))
        if state["target"].ndim == 2:
            ce = -(state["target"] * log_softmax(logits, -1)).sum(-1)
        else:
            ce = cross_entropy(logits, state["target"], reduction="none")
        loss = ce
        if p["l1_mask"]:
            loss = loss + p["l1_mask"] * mask.mean((1, 2))
        if p["l1_perturbation"]:
            l1 = (rre.abs() + rim.abs()).mean((1, 2)) / 2
            loss = loss + p["l1_perturbation"] * l1
        if p["lambda_align"]:
            cen = state["centres"]
            if p["alignment"] == "complex":
                dist = (rre - cen[..., 0]) ** 2 + (rim - cen[..., 1]) ** 2
            else:
                mag = torch.sqrt(rre**2 + rim**2 + 1e-12)
                dist = (mag - cen) ** 2
            loss = loss + p["lambda_align"] * dist.mean((1, 2))
        return loss, ce
