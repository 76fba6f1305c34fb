"""Say loudly where LRP is not LRP: operations without a rule, lost relevance.

The mode of :func:`~mne_freqmask.lrp.lrp_rules` counts, in ``plain_ops``,
every operation on the relevance path (its output depends on the explained
input) that has no rule and is not linear: its plain gradient is used, which
is not an LRP rule and breaks conservation (an LSTM's relevance is then its
gradient x input). :func:`check_coverage` turns those counts into a
:class:`LRPCoverageWarning` (or, with ``strict=True``, an
:class:`LRPCoverageError`), naming each operation with its count and a hint.

:func:`check_share` warns (:class:`LRPConservationWarning`) when the median
share of the explained logit that reached the input is below
``MIN_SHARE``.
"""

import numpy as np
from mne.utils import warn

#: Median of ``|input relevance / logit|`` below which a warning is given.
#: LRP's epsilon / gamma / z+ rules let biases, the stabilisers and AttnLRP's
#: softmax absorb part of the logit, so a share below 1 is expected: on the
#: package's models at their documented rules the median share was 0.26-1.97
#: (EEGNet, ShallowFBCSPNet, EEGConformer; trained and random weights; see
#: ``doc/user_guide/lrp.rst``). But single epochs of EEGConformer scatter
#: around zero: at 0.02, 0-6 % of its single epochs fall below, and at most
#: 0.3 % of medians over 2 or 5 epochs (at 0.05: up to 15 % and 2.6 %); a
#: rule-less ``baddbmm`` attention kept 0.001. Below this level, almost
#: nothing of the decision reached the input.
MIN_SHARE = 0.02

#: Fraction of epochs whose share is below ``MIN_SHARE`` (negative or tiny)
#: from which a warning is given, whatever the median (from 10 epochs on).
#: A negative share means that the biases and BatchNorm shifts absorbed more
#: than the whole logit, so the input's relevance sums to evidence *against*
#: the explained class. Measured: 50 % of the held-out epochs of the test
#: suite's simulated EEGNet (the whole class without the planted alpha;
#: epsilon and gamma rules) and 51 % in issue #31 (an EEGNet on real EEG);
#: but also 31 % (10 of 32) of a trained EEGConformer's epochs, whose single
#: epochs scatter on both sides of zero, and 0-9 % on EEGNets trained on
#: EEGBCI (``benchmarks/bench_lrp_share.py``). Only epochs explained for
#: their predicted class count (see :func:`check_share`).
MAX_LOW_FRACTION = 0.5


class LRPCoverageWarning(UserWarning):
    """LRP met operations without a rule (their plain gradient was used)."""


class LRPConservationWarning(UserWarning):
    """Little of the explained logit reached the input as relevance."""


class LRPCoverageError(RuntimeError):
    """Raised with ``strict=True`` when an operation has no LRP rule."""


_RECURRENT = frozenset(
    "lstm gru rnn_tanh rnn_relu lstm_cell gru_cell rnn_tanh_cell rnn_relu_cell".split()
)
_FUSED = frozenset(
    "_native_multi_head_attention _transformer_encoder_layer_fwd "
    "multi_head_attention_forward".split()
)
_ADD_PRODUCTS = frozenset("baddbmm addbmm addmm addmv addr addcmul addcdiv".split())


#: Operations named by the coverage check of ``method="dft_lrp"`` (zennit),
#: which sees modules where :func:`~mne_freqmask.lrp.lrp_rules` sees functions.
_ZENNIT_HINTS = {
    "MultiheadAttention": (
        "zennit treats attention as an activation and passes relevance through "
        "it unchanged: no attention rule"
    ),
    "residual add": (
        "sum of two input-dependent tensors: zennit's plain gradient copies the "
        "relevance into both branches"
    ),
}


def hint(name):
    """Why ``name`` has no rule, and what to do about it (a short phrase)."""
    if name in _ZENNIT_HINTS:
        return _ZENNIT_HINTS[name]
    if name in _RECURRENT:
        return "recurrent layer (nn.LSTM/GRU/RNN): no LRP rule"
    if name in _FUSED:
        return (
            "fused attention kernel that hides its products and softmax; call "
            "nn.MultiheadAttention through its module forward"
        )
    if name in _ADD_PRODUCTS:
        return f"product fused with an addition; write it as matmul/mul + add ({name})"
    if name.endswith("_") and not name.endswith("__"):
        return f"in-place variant; use the out-of-place {name[:-1]}"
    if name.startswith("__i") and name.endswith("__"):
        return f"in-place operator; use the out-of-place __{name[3:]}"
    return "no rule"


def describe(plain_ops):
    """``"lstm x2 (recurrent layer...), tanh_ x1 (...)"``, sorted by name."""
    return ", ".join(
        f"{name} x{count} ({hint(name)})" for name, count in sorted(plain_ops.items())
    )


def check_coverage(plain_ops, strict=False, advice=""):
    """Warn (or raise) when operations without an LRP rule were met.

    Parameters
    ----------
    plain_ops : dict
        Operation name -> number of calls (``mode.plain_ops``).
    strict : bool
        Raise :class:`LRPCoverageError` instead of warning.
    advice : str
        A sentence appended to the message (e.g. which method has the rules).
    """
    if not plain_ops:
        return
    n = sum(plain_ops.values())
    msg = (
        f"LRP: {n} operation call{'s' if n > 1 else ''} on the relevance path "
        f"had no LRP rule, so relevance crossed them as a plain gradient and "
        f"is not LRP there: {describe(plain_ops)}. See the table of supported "
        "operations in the user guide (LRP rules)." + (f" {advice}" if advice else "")
    )
    if strict:
        raise LRPCoverageError(msg + " (strict=True)")
    warn(msg, LRPCoverageWarning, module="mne_freqmask", ignore_namespaces=_OURS)


_OURS = ("mne", "mne_freqmask")


def input_share(total, logit):
    """Per-epoch ``total / logit`` (a zero logit counts as the tiniest float)."""
    logit = np.asarray(logit, float)
    return np.asarray(total, float) / np.where(logit == 0, np.finfo(float).tiny, logit)


def check_share(share, level=MIN_SHARE, max_low=MAX_LOW_FRACTION, predicted=None):
    """Warn when little of the explained logit reached the input.

    Two warnings (:class:`LRPConservationWarning`): the median magnitude of
    the input share is below ``level``; or the share is below ``level``
    (negative, or positive but tiny) in ``max_low`` or more of the epochs.

    The magnitude for the first, because per-epoch shares of a transformer
    scatter on both sides of zero (a quarter of a trained EEGConformer's
    epochs have ``|share| < 0.1``), so that the median of the signed shares of
    a handful of epochs falls near zero by chance; the median of ``|share|``
    does not. The second catches a model whose biases and BatchNorm shifts
    absorb more than the logit in many epochs (EEGNet on real EEG), where
    ``|share|`` is not small but the map of those epochs sums to evidence
    against the explained class.

    Parameters
    ----------
    share : ndarray, shape (n_epochs,)
        Per-epoch share of the explained logit that reached the input.
    level : float
        The level (``MIN_SHARE``).
    max_low : float
        The fraction of epochs below ``level`` from which to warn
        (``MAX_LOW_FRACTION``); checked from 10 epochs on (a few epochs of a
        small or untrained model scatter on both sides of zero).
    predicted : None | ndarray of bool, shape (n_epochs,)
        Whether each epoch was explained for its predicted class. The
        fraction counts only those: the logit of a class the model did not
        choose can be near 0 or negative, and its share says nothing about
        conservation (None: every epoch counts).

    Returns
    -------
    median : float
        The median of ``|share|`` (NaN without epochs).
    """
    share = np.asarray(share, float)
    if not len(share):
        return float("nan")
    median = float(np.median(np.abs(share)))
    if not median >= level:
        warn(
            f"LRP: the input received a median {median:.3g} of the explained "
            f"logit in magnitude (below {level:g}; signed median "
            f"{np.median(share):.3g}): almost all relevance was absorbed before "
            "reaching the input (by biases and the rules' stabilisers, or lost "
            "at operations without a rule), so the map holds little of the "
            "decision. Check the model's layers against the table of supported "
            'operations, or try rule="zplus" / attention="cplrp".',
            LRPConservationWarning,
            module="mne_freqmask",
            ignore_namespaces=_OURS,
        )
        return median
    if predicted is not None:
        share = share[np.asarray(predicted, bool)]
    low = ~(share >= level)
    if len(share) >= 10 and low.mean() >= max_low:
        n_neg = int((share < 0).sum())
        which = "" if predicted is None else " explained for their predicted class"
        warn(
            f"LRP: in {int(low.sum())} of {len(share)} epochs{which} "
            f"({low.mean():.0%}) the input received less than {level:g} of the "
            f"explained logit ({n_neg} negative; signed median "
            f"{np.median(share):.3g}): the biases, BatchNorm shifts and "
            "stabilisers absorbed (nearly) all of the logit, or more, so the "
            "maps of those epochs sum to little or to evidence against the "
            'explained class. diagnostics["input_share"] and '
            '["absorbed"] hold it per epoch; compare the signed map with its '
            'magnitude (np.abs), or try rule="zplus".',
            LRPConservationWarning,
            module="mne_freqmask",
            ignore_namespaces=_OURS,
        )
    return median
