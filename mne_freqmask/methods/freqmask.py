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
stopping is per epoch: after ``min_steps`` steps, an epoch whose ranking of
the cells has settled (``stopping="rank"``, see
``ranking_settled`` in ``methods/_stopping.py``) or whose loss has
not improved by ``tol`` (relative) for ``patience`` steps (``"loss"``, the
paper's) is frozen and removed from the active batch, so later steps only
pay for the epochs still moving.

Short-time (``explain(..., time_windows=...)``, a ``ShortTimeGrid``): ``rfft``
becomes the STFT (``ShortTimeGrid.spectrum``), flattened to bins x windows, so
the mask is one value per channel x band x window, the donors' (or the
generator's) fill replaces a cell's STFT coefficients and ``istft`` rebuilds
the epoch; the loss, stopping and scores are unchanged. The generator spans
every bin of every window of a channel; the alignment centres are the
subjects' mean STFTs (each window against the same window).
"""

import inspect

import numpy as np
import torch
from mne.utils import _check_option, logger
from torch.nn.functional import cross_entropy, log_softmax, softmax

from mne_freqmask._cells import channel_index, put_back
from mne_freqmask._torch_utils import (  # noqa: F401 (adam_update: benchmarks)
    _fused_adam_ok,
    adam_update,
    model_dtype,
    spectral_dtype,
)
from mne_freqmask.methods._base import (
    MethodResult,
    chunk_progress,
    chunking,
    method_spec,
)
from mne_freqmask.methods._stopping import ranking_settled, stop_reasons, warn_stops
from mne_freqmask.utils._checks import _check_positive, _make_rng

#: Wang et al.'s configuration (``preset="paper"``): up to 300 Adam steps at
#: lr 0.01, lambda 0.05, early stopping after 10 steps without improvement
#: from the first step on, the final mask as the score, the generator's
#: perturbation.
PAPER = dict(
    n_steps=300,
    lr=0.01,
    lambda_align=0.05,
    l1_mask=1.0,
    l1_perturbation=1.0,
    alignment="complex",
    generator="two_branch",
    patience=10,
    tol=1e-3,
    min_steps=1,
    cell_score="mask",
    perturbation="generator",
    stopping="loss",
)


def _memory_per_epoch(inp, grid):
    """~4 copies (value, grad, two Adam moments) of the generator and mask,
    plus an allowance for the model's activations."""
    n_f = grid.n_freqs
    return 4 * (4 * (2 * n_f * n_f + 2 * n_f) + 64 * np.prod(inp.x.shape[1:]))


@method_spec(
    name="freqmask",
    summary="Wang et al.'s frequency-domain mask perturbation, in [0, 1] per cell",
    short_time=True,
    deterministic=False,
    fast_kwargs={"n_steps": 8, "min_steps": 1},
)
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
    cell_score="path",
    perturbation="reference",
    n_donors=256,
    stopping="rank",
    rank_tol=0.02,
    objective="preserve",
    preset=None,
    return_perturbed=False,
):
    """Fit FreqMask masks for every epoch of ``inp`` (see module docstring).

    Parameters (``explain(..., **method_kw)``; defaults from the paper but two,
    ``cell_score`` and ``perturbation``, found better by the faithfulness
    benchmark, BENCHMARKS.md; why: the user guide, "The method"): ``n_steps``
    (Adam steps at most), ``lr``, ``lambda_align`` (weight of the target-alignment
    loss), ``l1_mask`` and ``l1_perturbation`` (weights of the L1 terms, means
    over cells / bins so that they do not swamp the cross-entropy),
    ``alignment="complex"`` (towards the subject's mean complex spectrum, the
    paper's) or ``"magnitude"`` (its mean magnitude spectrum),
    ``generator="two_branch"`` or ``"one_branch"`` (the paper's ablation).
    Stopping is per epoch, after ``min_steps`` warm-up steps (so that models whose
    loss stalls at first, e.g. Deep4Net, do not stop with masks near 0.5):
    ``stopping="rank"`` stops once, checked every ``patience`` steps, the Spearman
    correlation of the cell scores now and at half as many steps is at least ``1 -
    rank_tol``; ``"loss"`` (the paper's; late with reference donors, whose loss is
    redrawn at every step) after ``patience`` steps without a relative improvement
    of ``tol``. ``diagnostics["stop"]`` holds why each epoch stopped
    (``_stopping.STOP_REASONS``); a warning names the fix when many did not
    converge. ``cell_score="path"`` (the mask's mean over the optimisation: ranks
    the cells that the final mask ties at 0) or ``"mask"`` (the final mask, the
    paper's). ``perturbation="reference"``: the removed part of a cell is filled
    from a random reference epoch at each step (of ``n_donors``; pass the training
    epochs as ``reference``), so that evidence that is an absence of power counts;
    the donors are drawn with ``random_state`` (None: seed 0), each epoch's from
    its own stream, so the map depends on the seed but not on ``chunk_size``.
    ``"generator"``: the paper's learned perturbation (about no power),
    deterministic. ``preset="paper"`` sets every parameter to :data:`PAPER` (Wang
    et al.'s configuration) and refuses one that contradicts it. With
    ``return_perturbed=True``, ``diagnostics["perturbed"]`` holds the final
    perturbed epochs ``irfft(X * M + (1 - M) * Xr)`` (float32, all channels, in
    the epochs' units), e.g. for :func:`mne_freqmask.evaluation.ood_score`.

    ``objective="expected_gradients"`` optimises no mask: the score of a
    cell is the mean, over ``n_steps`` draws of a donor epoch and a point
    ``alpha`` (stratified: one in each of ``n_steps`` equal slices of (0,
    1)) on the straight line from the donor to the epoch (every cell at
    ``alpha``), of the gradient of the target's probability with respect to
    the cell's mask: integrated gradients of the mask from the donor to the
    epoch, averaged over donors (Erion et al.'s expected gradients in
    FreqMask's perturbation). By the completeness of integrated gradients
    the scores of an epoch sum to the drop of the probability when every
    cell is replaced by the donor's, so a score measures the finite effect of
    the replacement the distribution-preserving deletion curve applies, and
    is signed (negative: replacing the cell by other epochs' content *raises*
    the probability; BENCHMARKS.md, issue #29). Needs
    ``perturbation="reference"``; ``n_steps`` is the number of draws (one
    forward and one backward pass each), and the stopping, ``lr`` and L1
    parameters do not apply.
    """
    if preset is not None:
        _check_option("preset", preset, ("paper",))
        args = locals()  # the call's arguments, before anything is defined
        given = {k: args[k] for k in PAPER}
        defaults = {
            k: v.default for k, v in inspect.signature(freqmask).parameters.items()
        }
        clash = sorted(
            k for k, v in given.items() if v != defaults[k] and v != PAPER[k]
        )
        if clash:
            raise ValueError(
                f'preset="paper" fixes {", ".join(clash)} to the paper\'s values '
                f"({', '.join(f'{k}={PAPER[k]!r}' for k in clash)}); drop "
                'preset="paper" to change them.'
            )
        return freqmask(
            inp,
            grid,
            model,
            device=device,
            chunk_size=chunk_size,
            random_state=random_state,
            n_donors=n_donors,
            rank_tol=rank_tol,
            objective=objective,
            return_perturbed=return_perturbed,
            **PAPER,
        )
    _check_option("objective", objective, ("preserve", "expected_gradients"))
    if objective == "expected_gradients" and perturbation != "reference":
        raise ValueError(
            'objective="expected_gradients" integrates from donor epochs to the '
            f"epoch, but perturbation={perturbation!r} has no donors; use "
            'perturbation="reference" (the default) or objective="preserve".'
        )
    if objective == "expected_gradients" and return_perturbed:
        raise ValueError(
            'objective="expected_gradients" fits no mask, so there is no '
            "perturbed epoch to return; drop return_perturbed or use "
            'objective="preserve".'
        )
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
    _check_option("cell_score", cell_score, ("mask", "path"))
    _check_option("perturbation", perturbation, ("generator", "reference"))
    n_donors = _check_positive(n_donors, "n_donors", integer=True)
    _check_option("stopping", stopping, ("rank", "loss"))
    rank_tol = _check_positive(rank_tol, "rank_tol")
    if rank_tol >= 1:
        raise ValueError(f"rank_tol must be below 1, got {rank_tol}.")
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
        cell_score=cell_score,
        perturbation=perturbation,
        stopping=stopping,
    )
    if perturbation == "reference":
        params["n_donors"] = n_donors
    if stopping == "rank":
        params["rank_tol"] = rank_tol
    if objective != "preserve":
        params["objective"] = objective
    # masks, generators and spectra in float32 at least; the model gets its
    # own dtype (half-precision models: rfft has no float16 kernel on CPU)
    net_dtype = model_dtype(model)
    dtype = spectral_dtype(net_dtype)
    centres, cluster = _subject_centres(inp, grid, alignment, device, dtype)
    n_epochs = inp.n_epochs
    out = np.empty((n_epochs, len(inp.picks), grid.n_bands), np.float32)
    steps = np.empty(n_epochs, np.int32)
    loss_out = np.empty(n_epochs, np.float32)
    ce_out = np.empty(n_epochs, np.float32)
    perturbed = np.empty(inp.x.shape, np.float32) if return_perturbed else None
    kind = _ChunkFitter if objective == "preserve" else _GradientFitter
    fitter = kind(inp, grid, model, params, device, dtype, net_dtype)
    if perturbation == "reference":
        # None draws with seed 0: a map is reproducible by default, as
        # FreqMask was before the donors (an int or a RandomState varies them)
        random_state = 0 if random_state is None else random_state
        fitter.donor_pool(n_donors, _make_rng(random_state))
    for sl, progress in chunk_progress(n_epochs, chunk_size, "FreqMask epochs"):
        out_x = None if perturbed is None else perturbed[sl]
        mask, n_done, loss, ce = fitter.fit(sl, centres[cluster[sl]], out_x, progress)
        out[sl], steps[sl], loss_out[sl], ce_out[sl] = mask, n_done, loss, ce
    if objective == "expected_gradients":  # n_steps draws: nothing to stop
        return MethodResult(out, params, dict(n_steps=steps, cluster=cluster))
    stop = stop_reasons(steps, n_steps, min_steps, patience, stopping)
    logger.info(
        f"FreqMask: median {np.median(steps):.0f} steps (max {steps.max()}); "
        f"{int((stop == 0).sum())} of {n_epochs} epochs converged, "
        f"{int((stop == 1).sum())} reached n_steps={n_steps}, "
        f"{int((stop == 2).sum())} stopped at the first step allowed; median "
        f"final loss {np.median(loss_out):.3f}."
    )
    warn_stops(stop, steps, n_steps, min_steps, patience)  # stop 2: loss only
    diagnostics = dict(
        n_steps=steps,
        stop=stop,
        loss=loss_out,
        cross_entropy=ce_out,
        cluster=cluster,
    )
    if perturbed is not None:
        diagnostics["perturbed"] = perturbed
    return MethodResult(out, params, diagnostics)


def _at_least_float32(t):
    """Losses in float32 at least (half-precision logits are upcast)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _subject_centres(inp, grid, alignment, device, dtype):
    """Per-subject mean spectra of the reference and each epoch's nearest one.

    For ``"complex"`` the centre is the mean complex spectrum, which by
    Parseval (orthonormal FFT) is the spectrum of the time-domain centre of
    eq. 3, so the nearest centre is the same in both domains. For
    ``"magnitude"`` it is the mean magnitude spectrum, and nearness is measured
    between magnitude spectra.
    """
    subjects, ref_subject = np.unique(inp.ref_groups, return_inverse=True)

    def features(xb):
        xf = grid.spectrum(torch.as_tensor(xb, device=device).to(dtype), inp.scale)
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

    def __init__(self, inp, grid, model, params, device, dtype, net_dtype=None):
        self.inp, self.grid, self.model = inp, grid, model
        self.p, self.device, self.dtype = params, device, dtype
        self.net_dtype = dtype if net_dtype is None else net_dtype
        self.picks = torch.as_tensor(inp.picks, device=device)
        self.put_picks = channel_index(inp.picks, inp.x.shape[1], device)
        self.fused = _fused_adam_ok(device, dtype)
        self.reference = params["perturbation"] == "reference"
        self.pool = self.pool_idx = None

    def donor_pool(self, n_donors, rng):
        """Spectra ``(K, 2, n_picks, n_freqs)`` of K random reference epochs.

        The pool stays on the device for the whole run (K = ``n_donors`` at
        most: 25 MB at SEED shape for 256), so memory does not grow with the
        reference.
        """
        inp = self.inp
        if len(inp.ref_x) < 2 and inp.ref_x is inp.x:
            raise ValueError(
                'perturbation="reference" fills removed cells from other epochs, '
                "but there is only one epoch and no reference; pass reference= "
                '(e.g. the training epochs) or perturbation="generator".'
            )
        pool, self.pool_idx = self.grid.donor_pool(
            inp.ref_x,
            n_donors,
            rng,
            inp.picks,
            scale=inp.scale,
            device=self.device,
            dtype=self.dtype,
        )
        self.pool = torch.stack([pool.real, pool.imag], 1)
        # each epoch draws its donors from its own stream, keyed by its index
        # in the whole run: the same donors whatever the chunks (and in a
        # resumed checkpointed run, whose chunks see an _EpochRange)
        self.seed = int(rng.integers(0, 2**63))
        self.offset = int(getattr(inp.x, "_start", 0))
        # the reference is the explained epochs: never an epoch's own donor
        self.same = inp.ref_x is getattr(inp.x, "_src", inp.x)

    def _orders(self, epochs):
        """One random order of the pool per epoch, ``(n, K)``: step t draws
        entry ``t mod K`` (a permutation, so the next one is never the same
        epoch again)."""
        k = len(self.pool_idx)
        return np.stack(
            [np.random.default_rng([self.seed, int(e)]).permutation(k) for e in epochs]
        )

    def _donors(self, state):
        """The fill of the removed part: one pool epoch per epoch and step."""
        k = len(self.pool_idx)
        t = state["t"]
        rows = np.arange(len(state["epoch"]))
        d = state["orders"][rows, t % k]
        if self.same and k > 1:
            own = self.pool_idx[d] == state["epoch"]
            d[own] = state["orders"][rows[own], (t + 1) % k]
        return self.pool[torch.as_tensor(d, device=self.device)]

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
        xf = self.grid.spectrum(x.index_select(1, self.picks), inp.scale)
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
        if self.reference:  # no generator: the fill comes from the donors
            w = b = None
        elif p["generator"] == "two_branch":
            w = torch.zeros((n_b, 2, n_f, n_f), device=dev, dtype=dtype)
            b = torch.zeros((n_b, 2, n_f), device=dev, dtype=dtype)
        else:
            w = torch.zeros((n_b, 2 * n_f, 2 * n_f), device=dev, dtype=dtype)
            b = torch.zeros((n_b, 2 * n_f), device=dev, dtype=dtype)
        if p["alignment"] == "complex":  # (B, 2, n_picks, n_freqs) like x2
            centres = centres.to(dtype).permute(0, 3, 1, 2)
        else:
            centres = centres.to(dtype)
        params = [mask] if w is None else [mask, w, b]
        return dict(
            x=x,
            x2=x2,
            target=target,
            centres=centres,
            params=params,
            exp_avg=[torch.zeros_like(t) for t in params],
            exp_avg_sq=[torch.zeros_like(t) for t in params],
            # one Adam step counter per parameter tensor: every active epoch
            # has taken the same number of steps, so the batch shares it
            adam_steps=[
                torch.zeros((), dtype=torch.float32, device=dev) for _ in params
            ],
            best=torch.full((n_b,), np.inf, device=dev),
            wait=torch.zeros(n_b, dtype=torch.long, device=dev),
            # sum of the mask over the steps taken (cell_score="path")
            path=torch.zeros_like(mask),
            # cell scores every ``patience`` steps (stopping="rank")
            snaps={},
            # index of each epoch in the whole run (its donor stream; a donor
            # is never the epoch itself)
            epoch=np.arange(sl.start, sl.start + n_b) + getattr(self, "offset", 0),
            t=0,  # steps taken (donor draws)
        )

    def _step(self, state):
        """One projected Adam step of every active epoch; returns losses."""
        leaves = [t.requires_grad_(True) for t in state["params"]]
        loss, ce = self._loss(state, *leaves)
        grads = torch.autograd.grad(loss.sum(), leaves)
        with torch.no_grad():
            params = [t.detach() for t in leaves]
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
            state["path"] += params[0]
            state["params"] = params
        return loss.detach(), ce.detach()

    def fit(self, sl, centres, out_perturbed=None, progress=None):
        p, dev = self.p, self.device
        state = self._init_state(sl, centres)
        if self.reference:
            state["orders"] = self._orders(state["epoch"])
        n_b = len(state["x"])
        active = np.arange(n_b)  # positions (in the chunk) still optimised
        mask_out = np.empty((n_b, len(self.inp.picks), self.grid.n_bands), np.float32)
        steps_out = np.full(n_b, p["n_steps"], np.int32)
        loss_out = np.empty(n_b, np.float32)
        ce_out = np.empty(n_b, np.float32)
        for step in range(p["n_steps"]):
            ld, ce = self._step(state)
            params = state["params"]
            last = step == p["n_steps"] - 1
            if progress is not None and (step + 1) % 10 == 0:
                progress(n_b - len(active), f"step {step + 1} (max {p['n_steps']})")
            if p["stopping"] == "rank":
                done = self._ranking_settled(state, step + 1, params[0])
            else:
                done = self._loss_settled(state, ld, step + 1)
            if not (done.any() or last):
                continue
            fin = np.ones_like(done) if last else done
            pos = active[fin]
            sel = torch.as_tensor(fin, device=dev)
            if p["cell_score"] == "path":  # mean mask over the steps taken
                score = state["path"][sel] / (step + 1)
            else:
                score = params[0][sel]
            mask_out[pos] = score.float().cpu().numpy()
            if not last:
                steps_out[pos] = step + 1
            loss_out[pos] = ld[sel].float().cpu().numpy()
            ce_out[pos] = ce[sel].float().cpu().numpy()
            if out_perturbed is not None:
                with torch.no_grad():
                    fill = self._donors(state)[sel] if self.reference else None
                    xhat = self._xhat(
                        state["x"][sel],
                        state["x2"][sel],
                        *(t[sel] for t in params),
                        fill=fill,
                    )[0]
                out_perturbed[pos] = xhat.float().cpu().numpy()
            keep = ~fin
            if progress is not None:  # epochs of the chunk finished so far
                progress(n_b - int(keep.sum()))
            if not keep.any():
                break
            active = active[keep]
            self._shrink(state, torch.as_tensor(keep, device=dev))
        return mask_out, steps_out, loss_out, ce_out

    def _loss_settled(self, state, ld, t):
        """Per-epoch early stopping on the loss before this update (paper)."""
        p = self.p
        best = state["best"]
        improved = torch.isinf(best) | (ld < best - p["tol"] * best.abs())
        state["best"] = torch.where(improved, ld, best)
        state["wait"] = torch.where(improved, 0, state["wait"] + 1)
        if t < p["min_steps"]:  # warm-up: no epoch stops before min_steps
            return np.zeros(len(ld), bool)
        return (state["wait"] >= p["patience"]).cpu().numpy()

    def _ranking_settled(self, state, t, mask):
        """``stopping="rank"``: see :func:`~._stopping.ranking_settled`."""
        p = self.p
        score = state["path"] / t if p["cell_score"] == "path" else mask
        return ranking_settled(
            state["snaps"], score, t, p["patience"], p["min_steps"], p["rank_tol"]
        )

    @staticmethod
    def _shrink(state, keep):
        for key in ("x", "x2", "target", "centres", "best", "wait", "path"):
            state[key] = state[key][keep]
        for key in state["snaps"]:
            state["snaps"][key] = state["snaps"][key][keep]
        keep = keep.cpu().numpy()
        state["epoch"] = state["epoch"][keep]
        if "orders" in state:
            state["orders"] = state["orders"][keep]
        for key in ("params", "exp_avg", "exp_avg_sq"):
            state[key] = [t[keep] for t in state[key]]

    def _xhat(self, x, x2, mask, w=None, b=None, *, fill=None):
        """The perturbed epochs (all channels) and the fill of the removed part.

        The fill is the generator's output, or ``fill`` (the donors' spectra,
        ``perturbation="reference"``).
        """
        r = self._generate(w, b, x2) if fill is None else fill
        h = self.grid.blend(x2, mask[:, None], r)  # (B, 2, n_picks, n_freqs)
        xhat = self.grid.inverse(
            torch.complex(h[:, 0], h[:, 1]), self.inp.n_times, self.inp.scale
        )
        return put_back(x, self.put_picks, xhat), r

    def _loss(self, state, mask, w=None, b=None):
        p = self.p
        fill = None
        if self.reference:
            fill = self._donors(state)
            state["t"] += 1
        xhat, r = self._xhat(state["x"], state["x2"], mask, w, b, fill=fill)
        logits = _at_least_float32(self.model(xhat.to(self.net_dtype)))
        if state["target"].ndim == 2:
            ce = -(state["target"] * log_softmax(logits, -1)).sum(-1)
        else:
            ce = cross_entropy(logits, state["target"], reduction="none")
        loss = ce
        if p["l1_mask"]:
            loss = loss + p["l1_mask"] * mask.mean((1, 2))
        if self.reference:  # the generator's terms regularise the generator
            return loss, ce
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


def _p_target(logits, target):
    """Probability of the target (a class, or soft: the model's prediction)."""
    prob = softmax(_at_least_float32(logits), -1)
    if target.ndim == 2:
        return (target * prob).sum(-1)
    return prob.gather(1, target[:, None])[:, 0]


class _GradientFitter(_ChunkFitter):
    """``objective="expected_gradients"``: mean mask gradient from donors."""

    def fit(self, sl, centres, out_perturbed=None, progress=None):
        state = self._init_state(sl, centres)
        state["orders"] = self._orders(state["epoch"])
        ones = torch.ones_like(state["params"][0])
        grad = torch.zeros_like(ones)
        # alpha of each draw, stratified: one in each of n_steps equal slices
        # of (0, 1), in random order, from each epoch's own stream (as its
        # donors)
        n = self.p["n_steps"]
        gen = []
        for e in state["epoch"]:
            rng = np.random.default_rng([self.seed, int(e), 1])
            gen.append((rng.permutation(n) + rng.random(n)) / n)
        gen = np.stack(gen)
        for t in range(self.p["n_steps"]):
            alpha = torch.as_tensor(gen[:, t], device=ones.device, dtype=ones.dtype)
            mask = (alpha[:, None, None] * ones).requires_grad_(True)
            fill = self._donors(state)
            state["t"] += 1
            xhat = self._xhat(state["x"], state["x2"], mask, fill=fill)[0]
            p = _p_target(self.model(xhat.to(self.net_dtype)), state["target"])
            grad += torch.autograd.grad(p.sum(), mask)[0]
            if progress is not None and (t + 1) % 10 == 0:
                progress(0, f"draw {t + 1} of {self.p['n_steps']}")
        n_b = len(ones)
        out = (grad / self.p["n_steps"]).float().cpu().numpy()
        nan = np.full(n_b, np.nan, np.float32)
        return out, np.full(n_b, self.p["n_steps"], np.int32), nan, nan
