"""Layer-wise relevance propagation for EEG transformers and CNNs.

Attention-aware LRP (AttnLRP, CP-LRP) for braindecode's transformers
(EEGConformer, Labram, CTNet, MEDFormer, or any model built from torch
operations, ``nn.MultiheadAttention`` included) and the usual LRP rules for
CNNs (EEGNet, Deep4Net, TSception...), as modified gradients x input
(:mod:`mne_freqmask.lrp.rules`), applied by a scoped torch function mode
(:func:`lrp_rules`, whose table of handlers is :mod:`mne_freqmask.lrp._handlers`;
:func:`make_config` builds a :class:`RuleConfig`). :func:`relevance_time` /
:func:`compute_relevance` give time-domain relevance through one batch loop
(:func:`iter_relevance`); ``mne_freqmask.explain(..., method="lrp")`` the
frequency-domain one (DFT-LRP). zennit's LRP for CNNs is the other path,
``method="dft_lrp"`` (:func:`mne_freqmask.methods.dft_lrp.zennit_context`,
:func:`~mne_freqmask.methods.dft_lrp.zennit_relevance`). The checks of
explanations (planted signals, Clever-Hans artefacts, CSP patterns) are in
:mod:`mne_freqmask.evaluation`.

**Why our own rules.** zennit (0.5.1) has rules for linear, convolution and
BatchNorm layers but none for LayerNorm, softmax attention or the products
inside attention; mixing its relevance-valued hooks with plain gradients
through those operations gives sums off by orders of magnitude (-4e-9 times the
logit on a small trained Labram, 20 times on CTNet), and its hooks fail on
EEGConformer's in-place residual additions. captum's ``LRP`` has no rule for
einops or ELU layers. lxt (AttnLRP's reference implementation) requires
transformers, timm and open_clip, does not import with transformers 5, and
patches classes process-wide. The AttnLRP rules themselves are small once
written as gradient x input (as lxt's "efficient" mode does): identity rule on
element-wise non-linearities, a detached standard deviation in normalisation
layers, the plain softmax gradient, and gradients divided by two at the
products of attention. We implement them, and zennit's epsilon / gamma / z+ for
linear and convolution layers (checked equal to zennit's on a CNN), in this
small framework.

Nothing is patched: a :class:`torch.overrides.TorchFunctionMode` sees every
torch function called while :func:`lrp_rules` is active, on the calling thread
only, which covers functional calls (``F.linear`` with a weight slice,
``F.scaled_dot_product_attention``, ``Tensor.softmax``, ``@``, ``einsum``)
that module hooks miss. Only ``nn.MultiheadAttention`` instances get an
instance-level forward for the duration (its fused kernels hide their
operations), removed again in a ``finally`` clause. Each rule returns the
operation's native output with the rule's gradient grafted on, so the forward
pass is unchanged (bit for bit, except ``nn.MultiheadAttention``: to rounding).

**Loud where it is not LRP.** An operation on the relevance path without a
rule (an LSTM or GRU, ``torch.baddbmm``, an in-place non-linearity such as
``tanh_``) is crossed by its plain gradient, which is not LRP: a
:class:`LRPCoverageWarning` names each such operation with its count, and
``strict=True`` raises :class:`LRPCoverageError` instead. A median share of
the explained logit reaching the input below ``MIN_SHARE`` gives an
:class:`LRPConservationWarning`. The table of supported layers and operations
is in the user guide (``doc/user_guide/lrp.rst``).
"""

from mne_freqmask.lrp._context import lrp_rules
from mne_freqmask.lrp._coverage import (
    MAX_LOW_FRACTION,
    MIN_SHARE,
    LRPConservationWarning,
    LRPCoverageError,
    LRPCoverageWarning,
)
from mne_freqmask.lrp.relevance import (
    compute_relevance,
    iter_relevance,
    lrp_batch,
    relevance_time,
)
from mne_freqmask.lrp.rules import RuleConfig, make_config

__all__ = [
    "LRPConservationWarning",
    "LRPCoverageError",
    "LRPCoverageWarning",
    "MAX_LOW_FRACTION",
    "MIN_SHARE",
    "RuleConfig",
    "compute_relevance",
    "iter_relevance",
    "lrp_batch",
    "lrp_rules",
    "make_config",
    "relevance_time",
]
