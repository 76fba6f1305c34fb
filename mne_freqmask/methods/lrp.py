"""LRP in the frequency domain: attention-aware LRP, then DFT-LRP.

Time-domain relevance comes from :func:`mne_freqmask.lrp.lrp_batch`
(AttnLRP / CP-LRP rules for transformers, epsilon / gamma / z+ rules for linear
and convolution layers, identity rule for element-wise non-linearities;
see :mod:`mne_freqmask.lrp.rules`). :func:`~mne_freqmask.methods._dft.dft_relevance`
then carries it through a virtual inverse-rfft layer onto the rfft bins, and
the bins are summed into the channel x band cells. Relevance is signed (positive:
evidence for the explained class); its sum over all cells and bins in a band
equals the time-domain sum, which is the explained logit up to what biases,
embeddings and the softmax absorb (``diagnostics["input_share"]``, per epoch).
With ``explain(..., time_windows=...)`` the virtual layer is the grid's inverse
STFT and the cells are channel x band x window (the short-time DFT-LRP of
:mod:`mne_freqmask.methods._dft`).

Operations without an LRP rule (recurrent layers, ``torch.baddbmm``, in-place
non-linearities...) give a :class:`~mne_freqmask.lrp.LRPCoverageWarning`
naming them (an error with ``strict=True``), and a median input share below
``mne_freqmask.lrp.MIN_SHARE`` an
:class:`~mne_freqmask.lrp.LRPConservationWarning`.
"""

import numpy as np
from mne.utils import _validate_type, logger

from mne_freqmask.lrp.relevance import check_lrp, iter_relevance
from mne_freqmask.lrp.rules import make_config
from mne_freqmask.methods._base import MethodResult, chunking, method_spec
from mne_freqmask.methods._dft import dft_relevance


# one forward/backward pass per chunk; its graph holds ~3x the activations
@method_spec(
    name="lrp",
    summary="attention-aware LRP (AttnLRP / CP-LRP) for transformers and CNNs "
    "(mne_freqmask.lrp), mapped with the DFT-LRP rule",
    short_time=True,
)
@chunking(max_size=128)
def lrp(
    run,
    *,
    rule="epsilon",
    attention="attnlrp",
    eps=1e-6,
    gamma=0.25,
    strict=False,
):
    """Frequency-domain LRP relevance of every channel x band cell.

    ``rule`` (``"epsilon"``, ``"gamma"``, ``"zplus"`` or a dict with keys
    ``"linear"`` and ``"conv"``), ``attention`` (``"attnlrp"`` or
    ``"cplrp"``), ``eps`` and ``gamma`` are those of
    :func:`mne_freqmask.lrp.relevance_time`. The explained class is
    ``target`` when given, else the model's prediction. Epochs go through the
    model in batches of ``chunk_size`` (at most 128). Deterministic
    (``random_state`` is ignored). ``strict=True`` raises
    :class:`~mne_freqmask.lrp.LRPCoverageError` at an operation without an
    LRP rule instead of warning.

    ``diagnostics`` hold, per epoch, ``target``, ``logit``,
    ``relevance_total`` (time-domain input relevance), ``input_share``
    (``relevance_total / logit``: the share of the explained logit that
    reached the input; its median is logged and checked against
    ``mne_freqmask.lrp.MIN_SHARE``), ``absorbed`` (``logit -
    relevance_total``: what biases, BatchNorm shifts, embeddings and the
    rules' stabilisers absorbed, or operations without a rule lost; where the
    rules conserve, exactly the relevance of the additive constants, as
    ``lrp_batch(..., track_constants=True)`` measures it) and
    ``n_plain_ops`` (calls of
    operations without a rule in the epoch's forward pass; 0 when the model is
    fully covered).
    """
    _validate_type(strict, bool, "strict")
    cfg = make_config(rule, attention, eps, gamma)
    params = dict(
        rule=rule if isinstance(rule, str) else dict(rule),
        attention=attention,
        eps=float(eps),
        gamma=float(gamma),
    )
    inp, grid = run.inp, run.grid
    picks = np.asarray(inp.picks)
    n_epochs = inp.n_epochs
    out = run.new_map()
    logit = np.empty(n_epochs)
    total = np.empty(n_epochs)
    target = np.empty(n_epochs, np.int64)
    n_plain = np.zeros(n_epochs, np.int64)
    predicted = np.empty(n_epochs, bool)
    plain = {}
    batches = iter_relevance(
        run.model,
        inp.x,
        inp.target,
        cfg,
        run.chunk_size,
        run.device,
        plain,
        strict=strict,
    )
    for sl, xb, res in batches:
        n_plain[sl] = sum(res.plain_ops.values())
        rel_f = dft_relevance(xb[:, picks], res.relevance[:, picks], grid=grid)
        out[sl] = grid.collapse(rel_f.cpu().numpy())
        logit[sl] = res.logit.double().cpu().numpy()
        total[sl] = res.relevance.double().sum((1, 2)).cpu().numpy()
        target[sl] = res.target.cpu().numpy()
        predicted[sl] = res.predicted.cpu().numpy()
    logger.info(f"LRP ({params['attention']}, rule={params['rule']}):")
    share = check_lrp(total, logit, plain, predicted=predicted)
    diagnostics = dict(
        target=target,
        logit=logit,
        relevance_total=total,
        input_share=share,
        absorbed=logit - total,
        n_plain_ops=n_plain,
    )
    return MethodResult(out, params, diagnostics)
