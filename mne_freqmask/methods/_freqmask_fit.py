"""FreqMask's per-chunk fitters (:func:`~.freqmask.freqmask` runs them).

:class:`_ChunkFitter` optimises the masks of one chunk of epochs (the
preservation objective, Wang et al.), :class:`_GradientFitter` the
``objective="expected_gradients"`` scores; both perturb the spectrum through
the grid's one cell perturbation (:mod:`mne_freqmask._cells`).
"""

import numpy as np
import torch
from torch.nn.functional import cross_entropy, log_softmax, softmax

from mne_freqmask._cells import channel_index, put_back
from mne_freqmask._torch_utils import _fused_adam_ok, adam_update
from mne_freqmask.methods._stopping import ranking_settled


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
        if centres is None:  # expected gradients: no generator to align
            pass
        elif p["alignment"] == "complex":  # (B, 2, n_picks, n_freqs) like x2
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
