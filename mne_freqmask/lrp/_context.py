"""Route a model's operations through the LRP rules, without patching torch.

The rules are applied by a :class:`torch.overrides.TorchFunctionMode`: while
the context is active, every torch function called *on this thread* (``F.linear``,
``F.conv2d``, ``F.layer_norm``, ``torch.softmax``, ``Tensor.matmul``,
``torch.einsum``, ``F.scaled_dot_product_attention``, ``F.gelu``...) is handed
to :meth:`_LRPMode.__torch_function__`, which computes the native result and
grafts the rule's gradient onto it. Nothing in ``torch`` is reassigned, so
there is nothing to restore and nothing leaks to other threads; leaving the
``with`` block (normally or through an exception) pops the mode.

The one per-module change is ``nn.MultiheadAttention``: its forward calls
either a fused kernel or ``F.multi_head_attention_forward``, whose inner
matmuls and softmax the mode cannot see. While the context is active, each
instance in the model gets an instance-level ``forward`` written with torch
functions (:func:`~mne_freqmask.lrp.rules.mha_forward`); the instance
attribute is removed again in a ``finally`` clause. Classes are never touched.
"""

import contextlib
import math
import types
from collections import Counter

import torch
from mne.utils import _validate_type
from torch.overrides import TorchFunctionMode

from mne_freqmask.lrp import rules as _rules
from mne_freqmask.lrp._handlers import DIV_NAMES, HANDLERS, LINEAR_NAMES, needs_rule
from mne_freqmask.lrp.rules import make_config  # noqa: F401 (its old home)


class _LRPMode(TorchFunctionMode):
    """Hand torch functions to the LRP rules (see the module docstring)."""

    def __init__(self, cfg, track=False):
        super().__init__()
        self.cfg = cfg
        self.track = track
        self.plain_ops = Counter()
        self.probes = []

    def probe(self, const, like):
        """A leaf copy of an additive constant whose gradient is recorded.

        ``(probe * probe.grad).sum()`` is then the relevance the constant
        absorbed (over the whole batch). Without tracking, ``const`` itself.
        """
        if not self.track:
            return const
        if isinstance(const, torch.Tensor):
            if not const.is_floating_point() or not torch.isfinite(const).all():
                return const
            leaf = const.detach().requires_grad_(True)
        elif isinstance(const, int | float) and not isinstance(const, bool):
            if not math.isfinite(const):
                return const
            leaf = torch.tensor(
                float(const), dtype=like.dtype, device=like.device, requires_grad=True
            )
        else:
            return const
        self.probes.append(leaf)
        return leaf

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = HANDLERS.get(func)
        if handler is not None:
            return handler(self, func, args, kwargs)
        out = func(*args, **kwargs)
        if _on_path(out):
            name = getattr(func, "__name__", repr(func))
            if name in DIV_NAMES:
                divisor = args[1] if len(args) > 1 else kwargs.get("other")
                if needs_rule(divisor):
                    self.plain_ops[name] += 1
            elif name not in LINEAR_NAMES:
                self.plain_ops[name] += 1
        return out


def _on_path(out):
    """Whether ``out`` (a tensor, or a tuple of them: ``lstm``) needs a rule."""
    if isinstance(out, torch.Tensor):
        return out.requires_grad
    if isinstance(out, tuple | list):
        return any(isinstance(t, torch.Tensor) and t.requires_grad for t in out)
    return False


@contextlib.contextmanager
def _mha_forwards(model):
    replaced = []
    try:
        if model is not None:
            for mod in model.modules():
                if isinstance(mod, torch.nn.MultiheadAttention):
                    old = mod.__dict__.get("forward")
                    replaced.append((mod, old))
                    mod.forward = types.MethodType(_rules.mha_forward, mod)
        yield len(replaced)
    finally:
        for mod, old in reversed(replaced):
            if old is None:
                mod.__dict__.pop("forward", None)
            else:
                mod.forward = old


@contextlib.contextmanager
def lrp_rules(
    model=None,
    *,
    rule="epsilon",
    attention="attnlrp",
    eps=1e-6,
    gamma=0.25,
    track_constants=False,
):
    """Context in which torch operations carry LRP rules in their gradients.

    Inside the block, gradient x input of a model's output is its LRP
    relevance (see :mod:`mne_freqmask.lrp.rules`). The forward values are
    those of the plain model.

    Parameters
    ----------
    model : torch.nn.Module | None
        The model to be explained; its ``nn.MultiheadAttention`` submodules get
        a rule-aware forward for the duration of the block.
    rule : str | dict
        Rule for linear and convolution layers: ``"epsilon"``, ``"gamma"`` or
        ``"zplus"``, or a dict with keys ``"linear"`` and ``"conv"``.
    attention : str
        ``"attnlrp"`` (Achtibat et al., 2024) or ``"cplrp"`` (Ali et al., 2022).
    eps : float
        Stabiliser of the epsilon rule and of the identity rule's division.
    gamma : float
        Parameter of the gamma rule.
    track_constants : bool
        Record the relevance absorbed by additive constants (biases, BatchNorm
        shifts, embeddings, class tokens) in ``mode.probes`` (leaf tensors:
        ``sum((p * p.grad).sum() for p in mode.probes)`` after the backward
        pass). With it, input relevance + absorbed relevance = logit, up to
        the stabilisers and the softmax rule of AttnLRP: a check of the rules.

    Yields
    ------
    mode : ``torch.overrides.TorchFunctionMode``
        The active mode; ``mode.plain_ops`` counts the operations that had no
        rule and were not linear (their plain gradient may break
        conservation).

    Notes
    -----
    Only the calling thread is affected (torch function modes are
    thread-local). Parameters should not require gradients (use
    ``mne_freqmask._torch_utils.model_context``): a tensor is treated as
    input-dependent when it requires a gradient.
    """
    cfg = make_config(rule, attention, eps, gamma)
    if model is not None:
        _validate_type(model, torch.nn.Module, "model", "torch.nn.Module")
    mode = _LRPMode(cfg, track=bool(track_constants))
    with _mha_forwards(model), mode:
        yield mode
