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
import inspect
import math
import types
from collections import Counter

import torch
import torch.nn.functional as F
from mne.utils import _check_option, _validate_type, logger, warn
from torch.overrides import TorchFunctionMode

from mne_freqmask.lrp import rules as _rules
from mne_freqmask.lrp.rules import (
    ATTENTION_RULES,
    LINEAR_RULES,
    RuleConfig,
    graft,
    group_norm_rule,
    identity_rule,
    layer_norm_rule,
    linear_rule,
    product_rule,
    rms_norm_rule,
    sdpa_rule,
    softmax_rule,
)


def make_config(rule="epsilon", attention="attnlrp", eps=1e-6, gamma=0.25):
    """Validate the LRP rule parameters and bundle them.

    Parameters
    ----------
    rule : "epsilon" | "gamma" | "zplus" | dict
        Rule for linear and convolution layers alike, or a dict with keys
        ``"linear"`` and/or ``"conv"`` (the other defaults to ``"epsilon"``).
    attention : "attnlrp" | "cplrp"
        How relevance crosses softmax attention.
    eps : float
        Stabiliser of the epsilon rule (non-negative).
    gamma : float
        Parameter of the gamma rule (non-negative).

    Returns
    -------
    cfg : RuleConfig
        The validated rules, for :func:`~mne_freqmask.lrp.lrp_batch`.
    """
    _validate_type(rule, (str, dict), "rule", "str or dict")
    if isinstance(rule, str):
        _check_option("rule", rule, LINEAR_RULES)
        lin = conv = rule
    else:
        unknown = sorted(set(rule) - {"linear", "conv"})
        if unknown:
            raise ValueError(
                f'rule dict keys must be "linear" and/or "conv", got {unknown}.'
            )
        lin = rule.get("linear", "epsilon")
        conv = rule.get("conv", "epsilon")
        _check_option('rule["linear"]', lin, LINEAR_RULES)
        _check_option('rule["conv"]', conv, LINEAR_RULES)
    _check_option("attention", attention, ATTENTION_RULES)
    for name, val in (("eps", eps), ("gamma", gamma)):
        _validate_type(val, "numeric", name)
        if not math.isfinite(val):
            raise ValueError(f"{name} must be finite (non-negative), got {val}.")
        if not val >= 0:
            raise ValueError(f"{name} must be non-negative, got {val}.")
    return RuleConfig(
        linear=lin, conv=conv, attention=attention, eps=float(eps), gamma=float(gamma)
    )


# ---------------------------------------------------------------------------
# argument handling


def _bind(names, args, kwargs):
    out = dict(zip(names, args, strict=False))
    out.update(kwargs)
    return out


_SIGNATURES = {}


def _no_inplace(func, args, kwargs):
    """Call arguments of ``func`` with ``inplace=False`` where it has one."""
    try:
        sig = _SIGNATURES[func]
    except KeyError:
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):
            sig = None
        _SIGNATURES[func] = sig
    if sig is None or "inplace" not in sig.parameters:
        return args, kwargs
    bound = sig.bind(*args, **kwargs)
    bound.arguments["inplace"] = False
    return bound.args, bound.kwargs


def _first(args, kwargs):
    if args:
        return args[0]
    return kwargs.get("input", kwargs.get("self"))


def _needs_rule(t):
    return isinstance(t, torch.Tensor) and t.requires_grad and t.is_floating_point()


def _functions(names, spaces=(torch, torch.Tensor, F, torch._C._nn)):
    out = set()
    for space in spaces:
        for name in names:
            func = getattr(space, name, None)
            if func is not None:
                out.add(func)
    return out


# ---------------------------------------------------------------------------
# handlers: (cfg, func, args, kwargs) -> output


def _linear_handler(kind, names):
    def handler(mode, func, args, kwargs):
        bound = _bind(names, args, kwargs)
        x, weight = bound["input"], bound["weight"]
        bias = bound.get("bias")
        if not _needs_rule(x) or _needs_rule(weight) or _needs_rule(bias):
            return func(*args, **kwargs)
        rest = {k: v for k, v in bound.items() if k not in ("input", "weight", "bias")}

        def call(xx, w, b):
            return func(xx, w, b, **rest)

        cfg = mode.cfg
        rule = cfg.linear if kind == "linear" else cfg.conv
        bias = None if bias is None else mode.probe(bias, x)
        return linear_rule(call, x, weight, bias, rule, eps=cfg.eps, gamma=cfg.gamma)

    return handler


def _activation_handler(mode, func, args, kwargs):
    x = _first(args, kwargs)
    if not _needs_rule(x):
        return func(*args, **kwargs)
    args, kwargs = _no_inplace(func, args, kwargs)
    with torch.no_grad():
        y = func(*args, **kwargs)
    return identity_rule(x, y)


def _pow_handler(mode, func, args, kwargs):
    bound = _bind(("input", "exponent"), args, kwargs)
    x, exponent = bound.get("input", bound.get("self")), bound.get("exponent")
    if not _needs_rule(x) or _needs_rule(exponent):
        return func(*args, **kwargs)
    with torch.no_grad():
        y = func(*args, **kwargs)
    return identity_rule(x, y)


def _mul_handler(mode, func, args, kwargs):
    bound = _bind(("input", "other"), args, kwargs)
    a, b = bound.get("input", bound.get("self")), bound.get("other")
    if not (_needs_rule(a) and _needs_rule(b)):
        return func(*args, **kwargs)
    return product_rule(torch.mul, [a, b])


def _matmul_handler(mode, func, args, kwargs):
    a, b = (
        args[0],
        args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2")),
    )
    if not (_needs_rule(a) and _needs_rule(b)):
        return func(*args, **kwargs)
    if func is torch.Tensor.__rmatmul__:
        a, b = b, a
        func = torch.matmul
    return product_rule(func, [a, b])


def _einsum_handler(mode, func, args, kwargs):
    equation, *operands = args
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = list(operands[0])
    if sum(_needs_rule(t) for t in operands) < 2 or kwargs:
        return func(*args, **kwargs)
    return product_rule(lambda *ops: torch.einsum(equation, *ops), operands)


def _softmax_handler(mode, func, args, kwargs):
    x = _first(args, kwargs)
    y = func(*args, **kwargs)
    # attention weights have a query and a key axis at least: (..., L, S); a
    # classifier's own softmax over (n_epochs, n_classes) is left alone
    if _needs_rule(x) and x.dim() >= 3:
        return softmax_rule(y, mode.cfg.attention)
    return y


def _layer_norm_handler(mode, func, args, kwargs):
    b = _bind(("input", "normalized_shape", "weight", "bias", "eps"), args, kwargs)
    x = b["input"]
    if not _needs_rule(x):
        return func(*args, **kwargs)
    with torch.no_grad():
        y = func(*args, **kwargs)
    shape = b["normalized_shape"]
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    bias = b.get("bias")
    bias = None if bias is None else mode.probe(bias, x)
    return layer_norm_rule(x, y, shape, b.get("weight"), bias, b.get("eps", 1e-5))


def _group_norm_handler(mode, func, args, kwargs):
    b = _bind(("input", "num_groups", "weight", "bias", "eps"), args, kwargs)
    x = b["input"]
    if not _needs_rule(x):
        return func(*args, **kwargs)
    with torch.no_grad():
        y = func(*args, **kwargs)
    bias = b.get("bias")
    bias = None if bias is None else mode.probe(bias, x)
    return group_norm_rule(
        x, y, b["num_groups"], b.get("weight"), bias, b.get("eps", 1e-5)
    )


def _rms_norm_handler(mode, func, args, kwargs):
    b = _bind(("input", "normalized_shape", "weight", "eps"), args, kwargs)
    x = b["input"]
    if not _needs_rule(x):
        return func(*args, **kwargs)
    with torch.no_grad():
        y = func(*args, **kwargs)
    shape = b["normalized_shape"]
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return rms_norm_rule(x, y, shape, b.get("weight"), b.get("eps"))


_SDPA_NAMES = (
    "query",
    "key",
    "value",
    "attn_mask",
    "dropout_p",
    "is_causal",
    "scale",
    "enable_gqa",
)


def _sdpa_handler(mode, func, args, kwargs):
    bound = _bind(_SDPA_NAMES, args, kwargs)
    if bound.get("dropout_p", 0.0):
        logger.info("LRP: attention dropout ignored (explaining in eval mode).")
    bound.pop("dropout_p", None)
    return sdpa_rule(mode.cfg, **bound)


def _unsupported_handler(mode, func, args, kwargs):
    warn(
        f"LRP: {getattr(func, '__name__', func)} is a fused attention kernel whose "
        "matmuls and softmax the LRP rules cannot see; relevance through it uses "
        "the plain gradient. Call the model through its nn.Module forward (which "
        "the rules replace for nn.MultiheadAttention)."
    )
    return func(*args, **kwargs)


def _add_handler(mode, func, args, kwargs):
    """Additions of a constant: the constant's relevance is tracked."""
    if not mode.track or len(args) < 2:
        return func(*args, **kwargs)
    grads = [_needs_rule(args[0]), _needs_rule(args[1])]
    if grads[0] == grads[1]:
        return func(*args, **kwargs)
    pos = 1 if grads[0] else 0
    name = getattr(func, "__name__", "")
    if pos == 0 and (
        name.endswith("_") and not name.endswith("__") or name.startswith("__i")
    ):
        return func(*args, **kwargs)  # in place into the constant
    args = list(args)
    args[pos] = mode.probe(args[pos], args[1 - pos])
    return func(*args, **kwargs)


def _cat_handler(mode, func, args, kwargs):
    """Concatenation with constant tensors (e.g. a class token)."""
    tensors = args[0] if args else kwargs.get("tensors")
    if not mode.track or not any(_needs_rule(t) for t in tensors):
        return func(*args, **kwargs)
    like = next(t for t in tensors if _needs_rule(t))
    new = [mode.probe(t, like) if not _needs_rule(t) else t for t in tensors]
    if args:
        return func(new, *args[1:], **kwargs)
    return func(**dict(kwargs, tensors=new))


_BN_NAMES = (
    "input",
    "running_mean",
    "running_var",
    "weight",
    "bias",
    "training",
    "momentum",
    "eps",
)


def _batch_norm_handler(mode, func, args, kwargs):
    """BatchNorm in eval mode: linear; only its shift is tracked."""
    b = _bind(_BN_NAMES, args, kwargs)
    x = b["input"]
    if (
        not mode.track
        or not _needs_rule(x)
        or b.get("training", False)
        or b["running_mean"] is None
    ):
        return func(*args, **kwargs)
    with torch.no_grad():
        y = func(*args, **kwargs)
    scale = torch.rsqrt(b["running_var"] + b.get("eps", 1e-5))
    if b.get("weight") is not None:
        scale = scale * b["weight"]
    shift = -b["running_mean"] * scale
    if b.get("bias") is not None:
        shift = shift + b["bias"]
    shape = (1, -1) + (1,) * (x.dim() - 2)
    s = x * scale.reshape(shape) + mode.probe(shift.reshape(shape), x)
    return graft(y, s)


_ACTIVATIONS = (
    "gelu elu selu celu relu6 silu mish hardswish hardtanh tanh "
    "sigmoid softplus softsign log log1p sqrt abs square"
).split()

_HANDLERS = {}
for _f in _functions(["linear"], (F, torch._C._nn)):
    _HANDLERS[_f] = _linear_handler("linear", ("input", "weight", "bias"))
for _f in _functions(["conv1d", "conv2d", "conv3d"], (torch, F)):
    _HANDLERS[_f] = _linear_handler(
        "conv", ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    )
for _f in _functions(_ACTIVATIONS):
    _HANDLERS[_f] = _activation_handler
for _f in _functions(["pow", "__pow__"]):
    _HANDLERS[_f] = _pow_handler
for _f in _functions(["mul", "__mul__", "__rmul__", "multiply"]):
    _HANDLERS[_f] = _mul_handler
for _f in _functions(["matmul", "__matmul__", "__rmatmul__", "bmm", "mm"]):
    _HANDLERS[_f] = _matmul_handler
_HANDLERS[torch.einsum] = _einsum_handler
for _f in _functions(["softmax"]):
    _HANDLERS[_f] = _softmax_handler
_HANDLERS[F.layer_norm] = _layer_norm_handler
_HANDLERS[F.group_norm] = _group_norm_handler
if hasattr(F, "rms_norm"):
    _HANDLERS[F.rms_norm] = _rms_norm_handler
_HANDLERS[F.scaled_dot_product_attention] = _sdpa_handler
_HANDLERS[F.batch_norm] = _batch_norm_handler
for _f in _functions(
    "add __add__ __radd__ __iadd__ add_ sub __sub__ __rsub__ __isub__ sub_".split(),
    (torch, torch.Tensor),
):
    _HANDLERS[_f] = _add_handler
for _f in _functions(["cat", "concat", "concatenate", "stack"], (torch,)):
    _HANDLERS[_f] = _cat_handler
for _f in _functions(
    ["_native_multi_head_attention", "_transformer_encoder_layer_fwd"], (torch,)
) | {F.multi_head_attention_forward}:
    _HANDLERS[_f] = _unsupported_handler
del _f

#: Names of operations that are linear in a tensor argument (or select from
#: it); their plain gradient is LRP-0. Anything else that returns an
#: input-dependent tensor without a rule is reported in ``plain_ops``.
_LINEAR_NAMES = frozenset(
    """
    __get__ __getitem__ __setitem__ add add_ __add__ __radd__ __iadd__ sub sub_
    __sub__ __rsub__ __isub__ neg __neg__ sum mean nansum reshape view view_as
    permute transpose t flatten unflatten squeeze unsqueeze cat concat
    concatenate stack hstack vstack split chunk unbind tensor_split clone
    contiguous pad avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d
    adaptive_avg_pool2d adaptive_avg_pool3d max_pool1d max_pool2d max_pool3d
    max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices
    adaptive_max_pool1d adaptive_max_pool2d dropout dropout1d dropout2d
    dropout3d alpha_dropout feature_alpha_dropout batch_norm expand expand_as
    repeat repeat_interleave narrow select index_select gather take_along_dim
    roll flip fliplr flipud to type type_as float double half bfloat16
    masked_fill masked_fill_ fft rfft irfft ifft fftn rfftn irfftn movedim
    moveaxis swapaxes swapdims tile tril triu diff cumsum unfold as_strided
    renorm detach requires_grad_ zero_ copy_ fill_ new_zeros zeros_like
    ones_like full_like empty_like where relu relu_ leaky_relu leaky_relu_
    threshold prelu
    """.split()
)
_DIV_NAMES = frozenset("div __truediv__ __itruediv__ true_divide divide".split())


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
        handler = _HANDLERS.get(func)
        if handler is not None:
            return handler(self, func, args, kwargs)
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            name = getattr(func, "__name__", repr(func))
            if name in _DIV_NAMES:
                divisor = args[1] if len(args) > 1 else kwargs.get("other")
                if _needs_rule(divisor):
                    self.plain_ops[name] += 1
            elif name not in _LINEAR_NAMES:
                self.plain_ops[name] += 1
        return out


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
