"""The network and the training loop of :class:`~mne_freqmask.FreqMaskExplainer`
(its Notes give both objectives); only the network's weights are trained, the
model is frozen (:func:`mne_freqmask._torch_utils.model_context`).

With ``objective="expected_gradients"`` no map is computed beforehand: each
step draws, per epoch, one donor and one ``alpha``, takes that single
gradient ``g`` (one pass of the model and one backward) and regresses the
network's signed output on it::

    mean((net(features(x)) - n_cells * g) ** 2)

The expected squared error to an unbiased noisy target is the squared error
to its expectation plus the noise's variance, so the minimiser is the
expected-gradients map (times ``n_cells``, which brings a cell's score to
about the probability's change over the cells' mean: the output layer then
needs no rescaling). The validation epochs' targets are the mean of
:data:`VAL_DRAWS` fixed draws, computed once.
"""

import numpy as np
import torch
from mne.utils import ProgressBar, logger
from torch.nn.functional import log_softmax, softmax

from mne_freqmask._cells import channel_index
from mne_freqmask._torch_utils import predict
from mne_freqmask.methods._freqmask_fit import _p_target

#: epochs per forward pass where no gradient is needed
EVAL_BATCH = 256
#: added to the band power before the log
POWER_EPS = 1e-10
#: draws averaged into each validation epoch's expected-gradients target
VAL_DRAWS = 4


class MaskNet(torch.nn.Module):
    """A small MLP from the ``(n_picks, n_bands)`` features to mask logits.

    ``n_layers`` hidden layers of ``hidden`` units with GELU; the output layer
    starts with small weights and zero bias, so every mask starts near 0.5,
    as FreqMask's do.
    """

    def __init__(self, n_picks, n_bands, hidden=256, n_layers=2):
        super().__init__()
        n_in = n_picks * n_bands
        layers, width = [], n_in
        for _ in range(n_layers):
            layers += [torch.nn.Linear(width, hidden), torch.nn.GELU()]
            width = hidden
        out = torch.nn.Linear(width, n_in)
        with torch.no_grad():
            out.weight.mul_(0.1)
            out.bias.zero_()
        self.body = torch.nn.Sequential(*layers, out)
        self.shape = (n_picks, n_bands)

    def forward(self, z):
        """Mask logits ``(B, n_picks, n_bands)`` of features of that shape."""
        return self.body(z.reshape(len(z), -1)).reshape((len(z),) + self.shape)


def band_log_power(source, picks, grid, scale, device, dtype=torch.float32):
    """Log mean power of each picked channel x band cell, ``(n, n_picks, n_bands)``.

    ``source`` is an array or :class:`~mne_freqmask._inputs.EpochsSource`
    read :data:`EVAL_BATCH` epochs at a time; the power of a band is the mean
    of ``|X|^2`` over its bins (:meth:`FrequencyGrid.band_power`).
    """
    out = np.empty((len(source), len(picks), grid.n_bands), np.float32)
    for start in range(0, len(source), EVAL_BATCH):
        sl = slice(start, min(start + EVAL_BATCH, len(source)))
        xb = torch.as_tensor(np.asarray(source[sl])[:, picks], device=device)
        out[sl] = np.log(grid.band_power(xb.to(dtype), scale) + POWER_EPS)
    return out


class Trainer:
    """One fit of a :class:`MaskNet` against a frozen model (see module doc)."""

    def __init__(self, net, model, source, picks, grid, scale, device, params):
        self.net, self.model, self.src = net, model, source
        self.picks = np.asarray(picks)
        self.t_picks = channel_index(self.picks, source.shape[1], device)
        self.grid, self.scale, self.device, self.p = grid, scale, device, params

    def targets(self):
        """The model's soft prediction on every training epoch."""
        logits = predict(self.model, self.src, self.device, EVAL_BATCH)
        return softmax(torch.as_tensor(logits), -1)

    def donor_pool(self, ref, n_donors, rng, dtype):
        """Spectra ``(K, n_picks, n_freqs)`` of K random reference epochs."""
        return self.grid.donor_pool(
            ref,
            n_donors,
            rng,
            self.picks,
            scale=self.scale,
            device=self.device,
            dtype=dtype,
        )

    def loss(self, idx, z, target, donors, net_dtype, dtype):
        """Per-epoch loss and cross-entropy of the epochs ``idx`` (sorted)."""
        x = torch.as_tensor(self.src[idx], device=self.device).to(dtype)
        mask = torch.sigmoid(self.net(z))
        xhat = self.grid.perturb(x, mask, donors, picks=self.t_picks, scale=self.scale)
        logits = self.model(xhat.to(net_dtype)).float()
        ce = -(target * log_softmax(logits, -1)).sum(-1)
        return ce + self.p["l1_mask"] * mask.mean((1, 2)), ce

    def mask_gradient(self, idx, target, donors, alpha, net_dtype, dtype):
        """One draw of the expected-gradients map of the epochs ``idx``.

        The gradient of the probability of ``target`` (the model's soft
        prediction) with respect to the keep-mask at ``M = alpha`` (one value
        per epoch), ``donors`` filling the removed part, times ``n_cells``.
        """
        x = torch.as_tensor(self.src[idx], device=self.device).to(dtype)
        shape = (len(idx), len(self.picks), self.grid.n_bands)
        alpha = torch.as_tensor(alpha, device=self.device, dtype=dtype)
        keep = (alpha[:, None, None] * x.new_ones(shape)).requires_grad_(True)
        xhat = self.grid.perturb(x, keep, donors, picks=self.t_picks, scale=self.scale)
        prob = _p_target(self.model(xhat.to(net_dtype)), target)
        grad = torch.autograd.grad(prob.sum(), keep)[0]
        return grad.detach().float() * (shape[1] * shape[2])

    def regression_loss(self, z, grad):
        """Per-epoch squared error of the network's output to ``grad``."""
        return ((self.net(z).float() - grad) ** 2).mean((1, 2))

    def _val_gradients(self, val_idx, targets, pool, draw, rng, dtypes):
        """Expected-gradients targets of the validation epochs (fixed draws)."""
        out = torch.zeros(
            (len(val_idx), len(self.picks), self.grid.n_bands), device=self.device
        )
        for _ in range(VAL_DRAWS):
            d, alpha = draw(val_idx), rng.random(len(val_idx))
            for start in range(0, len(val_idx), EVAL_BATCH):
                sl = slice(start, start + EVAL_BATCH)
                idx = val_idx[sl]
                donors = pool[torch.as_tensor(d[sl], device=self.device)]
                out[sl] += self.mask_gradient(
                    idx, targets[idx], donors, alpha[sl], *dtypes
                )
        return out / VAL_DRAWS

    def fit(self, z, train_idx, val_idx, pool, pool_idx, same, rng, dtypes):
        """Train; returns the history (the best weights are loaded)."""
        p, dev = self.p, self.device
        net_dtype, dtype = dtypes
        targets = self.targets().to(dev)
        zt = torch.as_tensor(z, device=dev)
        k = len(pool_idx)

        def draw(idx):
            """A random pool entry per epoch, never the epoch itself."""
            d = rng.integers(0, k, len(idx))
            if same and k > 1:
                own = pool_idx[d] == idx
                d[own] = (d[own] + 1) % k
            return d

        eg = p.get("objective") == "expected_gradients"
        val_donors = draw(val_idx)
        val_grad = None
        if eg:
            val_grad = self._val_gradients(val_idx, targets, pool, draw, rng, dtypes)
        opt = torch.optim.Adam(self.net.parameters(), lr=p["lr"])
        history = dict(train_loss=[], val_loss=[])
        if not eg:
            history["val_cross_entropy"] = []
        best = ref = np.inf
        best_state, best_pass, wait = None, 0, 0
        with ProgressBar(p["n_epochs"], mesg="Training the explainer") as pbar:
            for _ in range(p["n_epochs"]):
                self.net.train()
                order = train_idx[rng.permutation(len(train_idx))]
                losses = []
                for start in range(0, len(order), p["batch_size"]):
                    idx = np.sort(order[start : start + p["batch_size"]])
                    d = torch.as_tensor(draw(idx), device=dev)
                    if eg:  # one draw (donor, alpha) per epoch: a noisy target
                        grad = self.mask_gradient(
                            idx, targets[idx], pool[d], rng.random(len(idx)), *dtypes
                        )
                        loss = self.regression_loss(zt[idx], grad)
                    else:
                        loss, _ = self.loss(
                            idx, zt[idx], targets[idx], pool[d], net_dtype, dtype
                        )
                    opt.zero_grad()
                    loss.mean().backward()
                    opt.step()
                    losses.append(float(loss.detach().sum()))
                history["train_loss"].append(float(np.sum(losses) / len(order)))
                if eg:
                    val = self._evaluate_regression(zt, val_idx, val_grad)
                else:
                    val, val_ce = self._evaluate(
                        zt, targets, val_idx, val_donors, pool, net_dtype, dtype
                    )
                    history["val_cross_entropy"].append(val_ce)
                history["val_loss"].append(val)
                pbar.update_with_increment_value(1)
                # keep the best weights; stop after ``patience`` passes without
                # a relative improvement of ``tol`` over the last one that had
                if val < best:
                    best, best_pass = val, len(history["val_loss"]) - 1
                    best_state = {
                        n: t.detach().clone() for n, t in self.net.state_dict().items()
                    }
                if not np.isfinite(ref) or val < ref - p["tol"] * abs(ref):
                    ref, wait = val, 0
                else:
                    wait += 1
                    if wait >= p["patience"]:
                        break
        self.net.load_state_dict(best_state)
        self.net.eval()
        history["best_epoch"] = best_pass
        history["n_epochs"] = len(history["val_loss"])
        logger.info(
            f"Explainer trained for {history['n_epochs']} passes (best: pass "
            f"{history['best_epoch'] + 1}, validation loss {best:.4f})."
        )
        return history

    def _evaluate_regression(self, zt, idx, grad):
        """Mean squared error on ``idx`` to its fixed targets ``grad``."""
        self.net.eval()
        with torch.no_grad():
            return float(self.regression_loss(zt[idx], grad).mean())

    def _evaluate(self, zt, targets, idx, donors, pool, net_dtype, dtype):
        """Mean loss and cross-entropy on ``idx`` with fixed donors."""
        self.net.eval()
        tot = tot_ce = 0.0
        with torch.no_grad():
            for start in range(0, len(idx), EVAL_BATCH):
                sl = slice(start, start + EVAL_BATCH)
                d = torch.as_tensor(donors[sl], device=self.device)
                loss, ce = self.loss(
                    idx[sl], zt[idx[sl]], targets[idx[sl]], pool[d], net_dtype, dtype
                )
                tot += float(loss.sum())
                tot_ce += float(ce.sum())
        return tot / len(idx), tot_ce / len(idx)
