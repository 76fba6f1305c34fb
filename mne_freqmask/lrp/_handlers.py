"""The table of LRP rules: which torch function is handled by which rule.

:data:`HANDLERS` maps a torch function (``F.linear``, ``torch.softmax``,
``Tensor.__matmul__``...) to a handler ``handler(mode, func, args, kwargs)``
that computes the native result and grafts the rule's gradient onto it
(:mod:`mne_freqmask.lrp.rules`). :data:`LINEAR_NAMES` lists the operations
whose plain gradient is already LRP-0; the mode of
:func:`~mne_freqmask.lrp.lrp_rules` reports any other operation without a
rule.
"""

import inspect

import torch
import torch.nn.functional as F
from mne.utils import logger

from mne_freqmask.lrp.rules import (
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

# ---------------------------------------------------------------------------
# argument handling


def _bind(names, args, kwargs):
    out = dict(zip(names, args, strict=False))
    out.update(kwargs)
    return out


def _operands(args, kwargs, other="other"):
    """The two operands of a binary operation: ``input`` (or the method's
    ``self``) and ``other``."""
    bound = _bind(("input", other), args, kwargs)
    return bound.get("input", bound.get("self")), bound.get(other)


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


def needs_rule(t):
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
        if not needs_rule(x) or needs_rule(weight) or needs_rule(bias):
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
    if not needs_rule(x):
        return func(*args, **kwargs)
    args, kwargs = _no_inplace(func, args, kwargs)
    with torch.no_grad():
        y = func(*args, **kwargs)
    return identity_rule(x, y)


def _pow_handler(mode, func, args, kwargs):
    x, exponent = _operands(args, kwargs, "exponent")
    if not needs_rule(x) or needs_rule(exponent):
        return func(*args, **kwargs)
    with torch.no_grad():
        y = func(*args, **kwargs)
    return identity_rule(x, y)


def _mul_handler(mode, func, args, kwargs):
    a, b = _operands(args, kwargs)
    if not (needs_rule(a) and needs_rule(b)):
        return func(*args, **kwargs)
    return product_rule(torch.mul, [a, b])


def _matmul_handler(mode, func, args, kwargs):
    a, b = (
        args[0],
        args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2")),
    )
    if not (needs_rule(a) and needs_rule(b)):
        return func(*args, **kwargs)
    if func is torch.Tensor.__rmatmul__:
        a, b = b, a
        func = torch.matmul
    return product_rule(func, [a, b])


def _einsum_handler(mode, func, args, kwargs):
    equation, *operands = args
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = list(operands[0])
    if sum(needs_rule(t) for t in operands) < 2 or kwargs:
        return func(*args, **kwargs)
    return product_rule(lambda *ops: torch.einsum(equation, *ops), operands)


def _softmax_handler(mode, func, args, kwargs):
    x = _first(args, kwargs)
    y = func(*args, **kwargs)
    # attention weights have a query and a key axis at least: (..., L, S); a
    # classifier's own softmax over (n_epochs, n_classes) is left alone
    if needs_rule(x) and x.dim() >= 3:
        return softmax_rule(y, mode.cfg.attention)
    return y


def _normalisation(names, rule):
    """The handler of a normalisation: its native output, with
    ``rule(x, y, bound_args)``'s gradient (the statistics detached).

    A bias is the shift whose relevance is tracked; a ``normalized_shape``
    is made a tuple."""

    def handler(mode, func, args, kwargs):
        b = _bind(names, args, kwargs)
        x = b["input"]
        if not needs_rule(x):
            return func(*args, **kwargs)
        with torch.no_grad():
            y = func(*args, **kwargs)
        if b.get("bias") is not None:
            b["bias"] = mode.probe(b["bias"], x)
        shape = b.get("normalized_shape")
        if shape is not None:
            b["normalized_shape"] = (shape,) if isinstance(shape, int) else tuple(shape)
        return rule(x, y, b)

    return handler


_layer_norm_handler = _normalisation(
    ("input", "normalized_shape", "weight", "bias", "eps"),
    lambda x, y, b: layer_norm_rule(
        x, y, b["normalized_shape"], b.get("weight"), b.get("bias"), b.get("eps", 1e-5)
    ),
)
_group_norm_handler = _normalisation(
    ("input", "num_groups", "weight", "bias", "eps"),
    lambda x, y, b: group_norm_rule(
        x, y, b["num_groups"], b.get("weight"), b.get("bias"), b.get("eps", 1e-5)
    ),
)
_rms_norm_handler = _normalisation(
    ("input", "normalized_shape", "weight", "eps"),
    lambda x, y, b: rms_norm_rule(
        x, y, b["normalized_shape"], b.get("weight"), b.get("eps")
    ),
)


_SDPA_NAMES = tuple(
    "query key value attn_mask dropout_p is_causal scale enable_gqa".split()
)


def _sdpa_handler(mode, func, args, kwargs):
    bound = _bind(_SDPA_NAMES, args, kwargs)
    if bound.get("dropout_p", 0.0):
        logger.info("LRP: attention dropout ignored (explaining in eval mode).")
    bound.pop("dropout_p", None)
    return sdpa_rule(mode.cfg, **bound)


def _unsupported_handler(mode, func, args, kwargs):
    """A fused attention kernel: counted (it hides its products and softmax)."""
    out = func(*args, **kwargs)
    if any(needs_rule(t) for t in (*args, *kwargs.values())):
        mode.plain_ops[getattr(func, "__name__", repr(func))] += 1
    return out


def _inplace_scale_handler(mode, func, args, kwargs):
    """In-place ``*=`` / ``/=``: linear unless both factors depend on the input.

    A product of two input-dependent tensors, or a division by one, has no
    rule in place (the out-of-place ``*`` has the product rule).
    """
    a, b = _operands(args, kwargs)
    name = getattr(func, "__name__", repr(func))
    ruled = needs_rule(b) and (needs_rule(a) or "mul" not in name)
    out = func(*args, **kwargs)
    if ruled:
        mode.plain_ops[name] += 1
    return out


def _add_handler(mode, func, args, kwargs):
    """Additions of a constant: the constant's relevance is tracked."""
    if not mode.track or len(args) < 2:
        return func(*args, **kwargs)
    grads = [needs_rule(args[0]), needs_rule(args[1])]
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
    if not mode.track or not any(needs_rule(t) for t in tensors):
        return func(*args, **kwargs)
    like = next(t for t in tensors if needs_rule(t))
    new = [mode.probe(t, like) if not needs_rule(t) else t for t in tensors]
    if args:
        return func(new, *args[1:], **kwargs)
    return func(**dict(kwargs, tensors=new))


_BN_NAMES = tuple(
    "input running_mean running_var weight bias training momentum eps".split()
)


def _batch_norm_handler(mode, func, args, kwargs):
    """BatchNorm in eval mode: linear; only its shift is tracked."""
    b = _bind(_BN_NAMES, args, kwargs)
    x = b["input"]
    if (
        not mode.track
        or not needs_rule(x)
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
    "sigmoid softplus softsign log log1p sqrt abs square clamp clip clamp_min "
    "clamp_max"
).split()

_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_TENSOR = (torch, torch.Tensor)

#: The rule table, one row per rule: ``(row, handler, operation names,
#: namespaces)``; :data:`HANDLERS` is built from it, and the table of supported
#: operations in the user guide (``doc/user_guide/lrp.rst``) is checked
#: against it (``tests/test_lrp.py``).
RULE_ROWS = (
    (
        "linear",
        _linear_handler("linear", ("input", "weight", "bias")),
        ("linear",),
        (F, torch._C._nn),
    ),
    (
        "conv",
        _linear_handler("conv", _CONV_ARGS),
        ("conv1d", "conv2d", "conv3d"),
        (torch, F),
    ),
    ("activation", _activation_handler, tuple(_ACTIVATIONS), None),
    ("pow", _pow_handler, ("pow", "__pow__"), None),
    ("mul", _mul_handler, ("mul", "__mul__", "__rmul__", "multiply"), None),
    (
        "matmul",
        _matmul_handler,
        ("matmul", "__matmul__", "__rmatmul__", "bmm", "mm"),
        None,
    ),
    ("einsum", _einsum_handler, ("einsum",), (torch,)),
    ("softmax", _softmax_handler, ("softmax",), None),
    ("layer_norm", _layer_norm_handler, ("layer_norm",), (F,)),
    ("group_norm", _group_norm_handler, ("group_norm",), (F,)),
    ("rms_norm", _rms_norm_handler, ("rms_norm",), (F,)),
    ("sdpa", _sdpa_handler, ("scaled_dot_product_attention",), (F,)),
    ("batch_norm", _batch_norm_handler, ("batch_norm",), (F,)),
    (
        "add",
        _add_handler,
        tuple("add __add__ __radd__ __iadd__ add_ sub __sub__ __rsub__".split())
        + ("__isub__", "sub_"),
        _TENSOR,
    ),
    ("cat", _cat_handler, ("cat", "concat", "concatenate", "stack"), (torch,)),
    (
        "inplace_scale",
        _inplace_scale_handler,
        ("mul_", "__imul__", "div_", "__itruediv__", "true_divide_", "divide_"),
        (torch.Tensor,),
    ),
    (
        "fused_attention",
        _unsupported_handler,
        (
            "_native_multi_head_attention",
            "_transformer_encoder_layer_fwd",
            "multi_head_attention_forward",
        ),
        (torch, F),
    ),
)

HANDLERS = {}
for _row, _handler, _names, _spaces in RULE_ROWS:
    _found = _functions(_names, *(() if _spaces is None else (_spaces,)))
    for _f in _found:
        HANDLERS[_f] = _handler
del _row, _handler, _names, _spaces, _found, _f

#: Names of operations that are linear in a tensor argument (or select from
#: it); their plain gradient is LRP-0. Anything else that returns an
#: input-dependent tensor (or a tuple of them) without a rule is reported in
#: ``plain_ops``.
LINEAR_NAMES = frozenset(
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
    threshold prelu max min amax amin sort topk kthvalue msort median
    """.split()
)
DIV_NAMES = frozenset("div __truediv__ __itruediv__ true_divide divide".split())


def supported_operations():
    """The operations with a rule, by row of the rule table.

    Returns
    -------
    table : dict
        Row name -> sorted tuple of operation names: the rows of
        :data:`RULE_ROWS` (except the fused attention kernels, which are
        counted as operations without a rule), plus ``"plain_lrp0"``
        (:data:`LINEAR_NAMES`, whose plain gradient is LRP-0) and ``"div"``
        (:data:`DIV_NAMES`, linear when the divisor is constant).
    """
    table = {
        row: tuple(sorted(names))
        for row, handler, names, _ in RULE_ROWS
        if handler is not _unsupported_handler
    }
    ruled = {name for _, _, names, _ in RULE_ROWS for name in names}
    table["plain_lrp0"] = tuple(sorted(LINEAR_NAMES - ruled))
    table["div"] = tuple(sorted(DIV_NAMES - ruled))
    return table
