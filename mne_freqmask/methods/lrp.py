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
from mne.utils import deprecated, logger

from mne_freqmask.lrp.relevance import iter_relevance, log_plain_ops
from mne_freqmask.lrp.rules import make_config
from mne_freqmask.methods._base import MethodResult, chunking
from mne_freqmask.methods._dft import dft_relevance


# one forward/backward pass per chunk; its graph holds ~3x the activations
@chunking(max_size=128)
def lrp(
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
    picks = np.asarray(inp.picks)
    n_epochs = inp.n_epochs
    out = np.empty((n_epochs, len(picks), grid.n_bands), np.float32)
    logit = np.empty(n_epochs)
    total = np.empty(n_epochs)
    target = np.empty(n_epochs, np.int64)
    plain = {}
    batches = iter_relevance(model, inp.x, inp.target, cfg, chunk_size, device, plain)
    for sl, xb, res in batches:
        rel_f = dft_relevance(xb[:, picks], res.relevance[:, picks])
        out[sl] = grid.collapse(rel_f.cpu().numpy())
        logit[sl] = res.logit.double().cpu().numpy()
        total[sl] = res.relevance.double().sum((1, 2)).cpu().numpy()
        target[sl] = res.target.cpu().numpy()
    share = total / np.where(logit == 0, np.finfo(float).tiny, logit)
    logger.info(
        f"LRP ({params['attention']}, rule={params['rule']}): input relevance / "
        f"logit, median {np.median(share):.3f}."
    )
    log_plain_ops(plain)
    diagnostics = dict(
        target=target, logit=logit, relevance_total=total, input_share=share
    )
    return MethodResult(out, params, diagnostics)


@deprecated("use lrp, named after its method, instead.")
def fit_lrp(*args, **kwargs):
    """Deprecated name of :func:`lrp`."""
    return lrp(*args, **kwargs)
