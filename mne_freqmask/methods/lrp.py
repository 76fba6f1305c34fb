"""LRP in the frequency domain: attention-aware LRP, then DFT-LRP.

Time-domain relevance comes from :func:`mne_freqmask.lrp.lrp_batch`
(AttnLRP / CP-LRP rules for transformers, epsilon / gamma / z+ rules for linear
and convolution layers, identity rule for element-wise non-linearities;
see :mod:`mne_freqmask.lrp.rules`). :func:`~mne_freqmask.methods._dft.dft_relevance`
then carries it through a virtual inverse-rfft layer onto the rfft bins, and
the bins are summed into the channel x band cells. Relevance is signed (positive:
evidence for the explained class); its sum over all cells and bins in a band
equals the time-domain sum, which is the explained logit up to what biases,
embeddings and the softmax absorb (``diagnostics["input_share"]``).
"""

import numpy as np
import torch
from mne.utils import logger

from mne_freqmask._torch_utils import model_dtype
from mne_freqmask.lrp._context import make_config
from mne_freqmask.lrp.relevance import lrp_batch
from mne_freqmask.methods._dft import dft_relevance
from mne_freqmask.methods._registry import MethodResult

_MAX_BATCH = 128


def fit_lrp(
    inp,
    grid,
    model,
    *,
    device,
    chunk_size,
    random_state=None,
    rule="epsilon",
    attention="attnlrp",
    eps=1e-6,
    gamma=0.25,
):
    """Frequency-domain LRP relevance of every channel x band cell.

    ``rule`` (``"epsilon"``, ``"gamma"``, ``"zplus"`` or a dict with keys
    ``"linear"`` and ``"conv"``), ``attention`` (``"attnlrp"`` or
    ``"cplrp"``), ``eps`` and ``gamma`` are those of
    :func:`mne_freqmask.lrp.relevance_time`. The explained class is
    ``target`` when given, else the model's prediction. Epochs go through the
    model in batches of ``chunk_size`` (at most 128). Deterministic
    (``random_state`` is ignored).
    """
    cfg = make_config(rule, attention, eps, gamma)
    params = dict(
        rule=rule if isinstance(rule, str) else dict(rule),
        attention=attention,
        eps=float(eps),
        gamma=float(gamma),
    )
    dtype = model_dtype(model)
    picks = np.asarray(inp.picks)
    n_epochs = inp.n_epochs
    out = np.empty((n_epochs, len(picks), grid.n_bands), np.float32)
    logit = np.empty(n_epochs)
    total = np.empty(n_epochs)
    target = np.empty(n_epochs, np.int64)
    plain = {}
    # one forward/backward pass per batch; its graph holds ~3x the activations
    batch = min(int(chunk_size), _MAX_BATCH)
    for start in range(0, n_epochs, batch):
        sl = slice(start, start + batch)
        xb = torch.as_tensor(inp.x[sl], dtype=dtype, device=device)
        tb = None if inp.target is None else torch.as_tensor(inp.target[sl])
        res = lrp_batch(model, xb, tb, cfg)
        rel_f = dft_relevance(xb[:, picks], res.relevance[:, picks])
        out[sl] = grid.collapse(rel_f.cpu().numpy())
        logit[sl] = res.logit.double().cpu().numpy()
        total[sl] = res.relevance.double().sum((1, 2)).cpu().numpy()
        target[sl] = res.target.cpu().numpy()
        for key, val in res.plain_ops.items():
            plain[key] = plain.get(key, 0) + val
    share = total / np.where(logit == 0, np.finfo(float).tiny, logit)
    logger.info(
        f"LRP ({params['attention']}, rule={params['rule']}): input relevance / "
        f"logit, median {np.median(share):.3f}."
    )
    if plain:
        logger.info(
            "LRP: operations without a rule (plain gradient): "
            + ", ".join(f"{k} x{v}" for k, v in sorted(plain.items()))
        )
    diagnostics = dict(
        target=target, logit=logit, relevance_total=total, input_share=share
    )
    return MethodResult(out, params, diagnostics)
