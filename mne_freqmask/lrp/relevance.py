"""Time-domain LRP relevance of a model's decision, as arrays or MNE objects."""

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from mne import BaseEpochs, EpochsArray
from mne.utils import _validate_type, logger, verbose

from mne_freqmask._inputs import epochs_data, epochs_labels
from mne_freqmask._torch_utils import (
    model_context,
    resolve_device,
)
from mne_freqmask.lrp._context import lrp_rules
from mne_freqmask.lrp._coverage import check_coverage, check_share, input_share
from mne_freqmask.lrp.rules import make_config
from mne_freqmask.methods._base import iter_chunks
from mne_freqmask.models import as_model
from mne_freqmask.utils._checks import _check_positive, _pick_indices
from mne_freqmask.utils._docs import fill_doc


@dataclass
class BatchRelevance:
    """LRP of one batch (see :func:`~mne_freqmask.lrp.lrp_batch`).

    Parameters
    ----------
    relevance : torch.Tensor, shape (n_epochs, n_channels, n_times)
        ``x * grad``: the relevance of every input sample.
    logit : torch.Tensor, shape (n_epochs,)
        The explained logit (its value from the plain forward).
    target : torch.Tensor of int, shape (n_epochs,)
        The explained class.
    absorbed : float | None
        Relevance absorbed by additive constants (biases, BatchNorm shifts,
        embeddings, class tokens), summed over the batch; ``None`` when not
        tracked.
    plain_ops : collections.Counter
        Operations without a rule that were not linear (name -> calls), on
        the relevance path: tensors or tuples of them (``lstm``, ``gru``)
        that depend on the input, in-place variants (``tanh_``) included.
    predicted : torch.Tensor of bool, shape (n_epochs,) | None
        Whether the explained class is the model's prediction.
    """

    relevance: torch.Tensor
    logit: torch.Tensor
    target: torch.Tensor
    absorbed: float | None
    plain_ops: Counter
    predicted: torch.Tensor | None = None


def lrp_batch(model, x, target, cfg, *, track_constants=False, strict=False):
    """LRP relevance of one batch.

    The model is put in eval mode with its parameters frozen for the call,
    and its flags are restored afterwards: the rules tell the input's path
    from constants by ``requires_grad``, so a parameter that requires a
    gradient would be taken for an input-dependent tensor and its layer
    crossed by the plain gradient (measured on an EEGNet: the gamma and z+
    rules silently gave the epsilon rule's relevance; issue #31 reports
    188 times the logit).

    Parameters
    ----------
    model : torch.nn.Module
        The model, on the device of ``x``; left as it was (training flags
        and ``requires_grad`` restored).
    x : torch.Tensor, shape (n_epochs, n_channels, n_times)
        Input batch in the model's dtype.
    target : torch.Tensor of int | None
        Class to explain per epoch; ``None`` explains the predicted class.
    cfg : RuleConfig
        The rules (``mne_freqmask.lrp.make_config``).
    track_constants : bool
        Also measure the relevance absorbed by additive constants.
    strict : bool
        Raise :class:`~mne_freqmask.lrp.LRPCoverageError` after the forward
        pass when an operation without an LRP rule was met (otherwise they are
        only counted in ``plain_ops``; the callers warn).

    Returns
    -------
    result : BatchRelevance
        Relevance, logits, targets and diagnostics.
    """
    x = x.detach().clone().requires_grad_(True)
    with model_context(model, x.device):
        return _lrp_batch(model, x, target, cfg, track_constants, strict)


def _lrp_batch(model, x, target, cfg, track_constants, strict):
    """:func:`lrp_batch` on a frozen model in eval mode."""
    with (
        torch.enable_grad(),
        lrp_rules(
            model,
            rule={"linear": cfg.linear, "conv": cfg.conv},
            attention=cfg.attention,
            eps=cfg.eps,
            gamma=cfg.gamma,
            track_constants=track_constants,
        ) as mode,
    ):
        out = model(x)
    if strict:
        check_coverage(mode.plain_ops, strict=True)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError(
            "The model must return class scores of shape (n_epochs, n_classes), "
            f"got {type(out).__name__} {getattr(out, 'shape', '')}."
        )
    if target is None:
        target = out.detach().argmax(1)
    target = torch.as_tensor(target, device=out.device, dtype=torch.long)
    logit = out.gather(1, target[:, None])[:, 0]
    if not logit.requires_grad:
        raise RuntimeError(
            "The model's output does not depend on its input through autograd "
            "(no gradient); LRP needs a differentiable model."
        )
    leaves = [x] + mode.probes
    grads = torch.autograd.grad(logit.sum(), leaves, allow_unused=True)
    absorbed = None
    if track_constants:
        absorbed = float(
            sum(
                (p.detach().double() * g.double()).sum()
                for p, g in zip(mode.probes, grads[1:], strict=True)
                if g is not None
            )
        )
    return BatchRelevance(
        (x * grads[0]).detach(),
        logit.detach(),
        target,
        absorbed,
        mode.plain_ops,
        out.detach().argmax(1) == target,
    )


@verbose
@fill_doc
def relevance_time(
    model,
    x,
    target=None,
    *,
    rule="epsilon",
    attention="attnlrp",
    eps=1e-6,
    gamma=0.25,
    batch_size=64,
    device="auto",
    strict=False,
    verbose=None,
):
    """Layer-wise relevance of every input sample (channel x time).

    Attention-aware LRP (AttnLRP or CP-LRP) for transformers and the usual
    epsilon / gamma / z+ rules for linear and convolution layers, computed as
    gradient x input with modified gradients (see
    :mod:`mne_freqmask.lrp.rules`). The relevance of an epoch sums to a share
    of the explained logit: what biases, embeddings, constant tokens, the
    rules' stabilisers and AttnLRP's softmax rule do not absorb. That share is
    about 1 on ShallowFBCSPNet and EEGNet, but a median 0.26-0.76 on trained
    EEGConformers (0.59-0.64 on EEGBCI data); see the user guide's page on
    the LRP rules.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier taking ``(n_epochs, n_channels, n_times)`` and returning
        ``(n_epochs, n_classes)`` logits. It is left as it was (eval mode,
        frozen parameters and device are restored afterwards).
    x : array-like | torch.Tensor, shape (n_epochs, n_channels, n_times)
        The input, as the model takes it (e.g. ``epochs.get_data()``).
    target : array-like of int | None
        The class to explain per epoch; ``None`` explains the predicted class.
    rule : "epsilon" | "gamma" | "zplus" | dict
        Rule for linear and convolution layers, or a dict with keys
        ``"linear"`` and ``"conv"`` (e.g. ``{"conv": "gamma", "linear":
        "epsilon"}``, the AttnLRP recommendation for models with a convolutional
        stem).
    attention : "attnlrp" | "cplrp"
        How relevance crosses softmax attention: ``"attnlrp"`` (Achtibat et
        al., 2024) propagates through the attention weights to queries and
        keys as well as through the values; ``"cplrp"`` (Ali et al., 2022)
        treats the weights as constants.
    %(lrp_eps_gamma)s
    batch_size : int
        Epochs per forward/backward pass.
    %(device)s
    %(lrp_strict)s
    %(verbose)s

    Returns
    -------
    relevance : ndarray, shape (n_epochs, n_channels, n_times)
        Relevance of each sample (float64).
    logit : ndarray, shape (n_epochs,)
        The explained logit of each epoch; ``relevance[i].sum() / logit[i]``
        is the share of the logit that reached the input.

    Warns
    -----
    mne_freqmask.lrp.LRPCoverageWarning
        When operations without an LRP rule were met (see ``strict``).
    mne_freqmask.lrp.LRPConservationWarning
        When the median share of the logit that reached the input is below
        ``mne_freqmask.lrp.MIN_SHARE`` in magnitude.

    See Also
    --------
    compute_relevance
    mne_freqmask.explain
    """
    cfg = make_config(rule, attention, eps, gamma)
    rel, logits, _ = _relevance(model, x, target, cfg, batch_size, device, strict)
    return rel, logits


def _relevance(model, x, target, cfg, batch_size, device, strict=False):
    """Relevance, logits and explained classes of all epochs of ``x``."""
    batch_size = _check_positive(batch_size, "batch_size", integer=True)
    model = as_model(model)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(
            f"x must have shape (n_epochs, n_channels, n_times), got {x.shape}."
        )
    if target is not None:
        target = np.asarray(target)
        if target.shape != (len(x),) or not np.issubdtype(target.dtype, np.integer):
            raise ValueError(
                f"target must hold one integer class per epoch ({len(x)}), got "
                f"shape {target.shape} and dtype {target.dtype}."
            )
    dev = resolve_device(device, model)
    rel = np.empty(x.shape, np.float64)
    logits = np.empty(len(x), np.float64)
    targets = np.empty(len(x), np.int64)
    predicted = np.empty(len(x), bool)
    plain = {}
    with model_context(model, dev):
        batches = iter_relevance(
            model, x, target, cfg, batch_size, dev, plain, strict=strict
        )
        for sl, _, res in batches:
            rel[sl] = res.relevance.double().cpu().numpy()
            logits[sl] = res.logit.double().cpu().numpy()
            targets[sl] = res.target.cpu().numpy()
            predicted[sl] = res.predicted.cpu().numpy()
    check_lrp(rel.reshape(len(rel), -1).sum(1), logits, plain, predicted=predicted)
    return rel, logits, targets


def iter_relevance(
    model, x, target, cfg, batch_size, device, plain_ops=None, *, strict=False
):
    """Run LRP over batches of epochs: the one batch loop of LRP.

    :func:`relevance_time`, :func:`compute_relevance` and
    ``explain(..., method="lrp")`` all go through it.

    Parameters
    ----------
    model : torch.nn.Module
        The model, already in ``model_context``
        (eval mode, frozen, on ``device``).
    x : ndarray | EpochsSource, shape (n_epochs, n_channels, n_times)
        The epochs; ``x[sl]`` is read one batch at a time.
    target : ndarray of int | None
        The class to explain per epoch; None: the predicted class.
    cfg : RuleConfig
        The rules (``make_config``).
    batch_size : int
        Epochs per forward / backward pass.
    device : torch.device
        Where to compute.
    plain_ops : dict | None
        If a dict, the counts of operations without a rule are added to it
        (see :func:`~mne_freqmask.lrp.relevance.check_lrp`).
    strict : bool
        Raise at the first batch that met an operation without a rule.

    Yields
    ------
    sl : slice
        The epochs of the batch.
    xb : torch.Tensor
        Their data in the model's dtype on ``device``.
    res : BatchRelevance
        Their relevance, explained logits and classes.
    """
    for sl, xb in iter_chunks(x, batch_size, model, device, "LRP batches"):
        tb = None if target is None else torch.as_tensor(target[sl], device=device)
        res = lrp_batch(model, xb, tb, cfg, strict=strict)
        if plain_ops is not None:
            for key, val in res.plain_ops.items():
                plain_ops[key] = plain_ops.get(key, 0) + val
        yield sl, xb, res


def log_plain_ops(plain_ops):
    """Log the operations that had no rule (their plain gradient was used)."""
    if plain_ops:
        logger.info(
            "LRP: operations without a rule (plain gradient): "
            + ", ".join(f"{k} x{v}" for k, v in sorted(plain_ops.items()))
        )


def check_lrp(total, logit, plain_ops, advice="", predicted=None):
    """Log the conservation share, and warn where LRP was not LRP.

    Parameters
    ----------
    total : ndarray, shape (n_epochs,)
        Input relevance summed per epoch.
    logit : ndarray, shape (n_epochs,)
        The explained logits.
    plain_ops : dict
        Operations without a rule (name -> calls); a
        :class:`~mne_freqmask.lrp.LRPCoverageWarning` names them.
    advice : str
        Appended to the coverage warning (what to use instead).
    predicted : None | ndarray of bool, shape (n_epochs,)
        Whether each epoch was explained for its predicted class (see
        ``check_share``).

    Returns
    -------
    share : ndarray, shape (n_epochs,)
        ``total / logit`` per epoch; a
        :class:`~mne_freqmask.lrp.LRPConservationWarning` is given when its
        median is below ``MIN_SHARE`` in magnitude, or when it is below
        ``MIN_SHARE`` (negative or tiny) in ``MAX_LOW_FRACTION`` or more of
        the epochs explained for their predicted class (from 10 of them).
    """
    share = input_share(total, logit)
    if len(share):
        err = np.abs(total - logit) / np.maximum(np.abs(logit), 1e-12)
        logger.info(
            f"LRP: relevance sum / logit, median {np.median(share):.3f} "
            f"(median relative deviation {np.median(err):.2%})."
        )
    log_plain_ops(plain_ops)
    check_coverage(plain_ops, advice=advice)
    check_share(share, predicted=predicted)
    return share


@verbose
@fill_doc
def compute_relevance(
    epochs,
    model,
    *,
    picks=None,
    target=None,
    y=None,
    rule="epsilon",
    attention="attnlrp",
    eps=1e-6,
    gamma=0.25,
    batch_size=64,
    device="auto",
    strict=False,
    verbose=None,
):
    """LRP relevance of each channel x time sample, as :class:`mne.EpochsArray`.

    The model sees every channel of ``epochs`` (as in
    :func:`mne_freqmask.explain`); ``picks`` selects the channels returned.
    MNE then does the plotting: ``rel.average().plot_topomap(times, scalings=1,
    units="relevance")``, ``rel.average().plot_joint(...)``,
    ``rel.plot_image(...)``.

    Parameters
    ----------
    epochs : instance of mne.Epochs
        The epochs, in the units the model takes (volts for models from
        :func:`mne_freqmask.models.make_model`).
    %(model)s
    picks : str | list | None
        Channels to return (default: the data channels).
    target : None | "true" | array-like of int
        The class to explain: the predicted class (``None``), the true class
        from the events or ``y`` (``"true"``), or one class index per epoch.
    %(y)s
    rule : "epsilon" | "gamma" | "zplus" | dict
        Rule for linear and convolution layers; see :func:`relevance_time`.
    attention : "attnlrp" | "cplrp"
        How relevance crosses softmax attention; see :func:`relevance_time`.
    %(lrp_eps_gamma)s
    batch_size : int
        Epochs per forward/backward pass.
    %(device)s
    %(lrp_strict)s
    %(verbose)s

    Returns
    -------
    relevance : instance of mne.EpochsArray
        Relevance in place of the signal (channel types kept, so topomaps and
        images work; the values are relevance, not volts: pass ``scalings=1``
        and ``units="relevance"`` to MNE's plots). Events, ``event_id`` and
        ``tmin`` are those of ``epochs``; the metadata gain the columns
        ``lrp_target`` (explained class), ``lrp_logit`` and ``lrp_sum``
        (relevance summed over all channels and times).

    Warns
    -----
    mne_freqmask.lrp.LRPCoverageWarning
        When operations without an LRP rule were met (see ``strict``).
    mne_freqmask.lrp.LRPConservationWarning
        When the median ``lrp_sum / lrp_logit`` is below
        ``mne_freqmask.lrp.MIN_SHARE`` in magnitude.

    See Also
    --------
    relevance_time
    mne_freqmask.evaluation.clever_hans_report
    """
    _validate_type(epochs, BaseEpochs, "epochs", "mne.Epochs")
    x = epochs_data(epochs)
    idx = _pick_indices(epochs.info, picks)
    if isinstance(target, str):
        if target != "true":
            raise ValueError(
                f'target must be None, "true" or class indices, got {target!r}.'
            )
        target = epochs_labels(epochs, y)
    cfg = make_config(rule, attention, eps, gamma)
    rel, logits, target = _relevance(model, x, target, cfg, batch_size, device, strict)
    import pandas as pd

    md = epochs.metadata
    md = pd.DataFrame(index=range(len(x))) if md is None else md.reset_index(drop=True)
    md = md.assign(
        lrp_target=np.asarray(target, int),
        lrp_logit=logits,
        lrp_sum=rel.reshape(len(rel), -1).sum(1),
    )
    info = epochs.info.copy()
    from mne import pick_info

    info = pick_info(info, idx)
    return EpochsArray(
        rel[:, idx],
        info,
        events=epochs.events.copy(),
        tmin=epochs.tmin,
        event_id=dict(epochs.event_id),
        metadata=md,
        verbose=False,
    )
