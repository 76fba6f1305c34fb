"""LRP rules as modified gradients ("gradient x input").

**Convention.** The relevance of any tensor ``t`` of the forward pass is
``t * dL/dt``, where ``dL/dt`` is the gradient of the explained logit computed with
*modified* backward passes. Seeding the backward pass with a one-hot gradient
on the target logit gives that logit as the output relevance, and the input
relevance is ``x * x.grad``. Operations that are linear in the explained input
(sums, reshapes, pooling, padding, additions of constants, BatchNorm in eval
mode, FFTs) need no modification: their plain gradient times input *is* LRP-0,
and a sum ``a + b`` splits ``R = (a + b) g`` into ``a g + b g`` exactly. Only
the operations below get a rule. Every rule returns the operation's *own*
forward value (``value.detach() + (s - s.detach())``, an exact zero added), and
takes its gradient from a surrogate ``s``: the forward pass is unchanged bit
for bit.

**Rules.**

linear / convolution (``F.linear``, ``F.conv1d/2d/3d``)
    ``"epsilon"``: ``R_i = sum_j x_i w_ij R_j / (z_j + eps sign z_j)``;
    ``"gamma"``: LRP-gamma with the sign-aware form of zennit's ``Gamma``
    (positive contributions weighted by ``1 + gamma`` for positive outputs,
    negative ones for negative outputs); ``"zplus"``: zennit's ``ZPlus``
    (``x+ w+`` and ``x- w-`` only). Biases absorb their share of relevance, as
    in zennit.
element-wise non-linearities (GELU, ELU, SiLU, tanh, sigmoid, log, sqrt,
abs, powers...)
    identity rule: ``R_x = R_y``, i.e. the gradient ``g f(x) / x``. For ReLU
    and leaky ReLU this *is* the plain gradient, which is kept.
LayerNorm, GroupNorm, RMSNorm
    the standard deviation is detached (a per-token constant, Ali et al. 2022;
    Achtibat et al. 2024). What remains (mean centring, then the affine map) is
    linear, so relevance is conserved exactly through the normalisation and
    only the LayerNorm bias absorbs some. The mean is *not* detached: a
    detached mean would act as a bias and swallow ``mean * g`` relevance.
softmax
    AttnLRP: the softmax rule ``R_x = x (R_s - s sum(R_s))`` of Achtibat et
    al. (2024, Prop. 3.1) is exactly gradient x input, so its plain gradient is
    kept. CP-LRP (Ali et al. 2022): the attention weights are detached, so
    relevance flows through the values only.
products of two input-dependent tensors (``q @ k.T``, ``A @ v``, einsum,
element-wise gating)
    uniform rule (AttnLRP): each factor gets ``1 / n`` of the relevance, a
    gradient divided by the number of input-dependent factors. A product with
    a constant (a weight) is linear and keeps its plain gradient.
``F.scaled_dot_product_attention``
    decomposed into the two products and the softmax above.

References
----------
Achtibat, R. et al. (2024). AttnLRP: Attention-aware layer-wise relevance
propagation for transformers. ICML.

Ali, A. et al. (2022). XAI for transformers: better explanations through
conservative propagation. ICML.

Montavon, G. et al. (2019). Layer-wise relevance propagation: an overview. In
Explainable AI, LNCS 11700.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from mne.utils import _check_option, _validate_type

#: Rules for linear and convolution layers.
LINEAR_RULES = ("epsilon", "gamma", "zplus")
#: Attention rules.
ATTENTION_RULES = ("attnlrp", "cplrp")


@dataclass(frozen=True)
class RuleConfig:
    """Which rules to apply, and their parameters.

    Parameters
    ----------
    linear : str
        Rule for ``F.linear`` (``nn.Linear``): one of :data:`LINEAR_RULES`.
    conv : str
        Rule for convolutions: one of :data:`LINEAR_RULES`.
    attention : str
        ``"attnlrp"`` or ``"cplrp"``.
    eps : float
        Stabiliser of the epsilon rule (and of all divisions).
    gamma : float
        Weight of the positive (or negative) contributions of the gamma rule.
    """

    linear: str = "epsilon"
    conv: str = "epsilon"
    attention: str = "attnlrp"
    eps: float = 1e-6
    gamma: float = 0.25


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


def stabilize(z, eps):
    """``z + eps * sign(z)``, with ``sign(0) = 1`` (never zero)."""
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def graft(value, surrogate):
    """``value`` in the forward pass, the gradient of ``surrogate`` backward."""
    return value.detach() + (surrogate - surrogate.detach())


def _requires_grad(t):
    return isinstance(t, torch.Tensor) and t.requires_grad


# ---------------------------------------------------------------------------
# linear and convolution layers


def linear_rule(call, x, weight, bias, rule, *, eps, gamma):
    """Apply an LRP rule to a linear map ``call(x, weight, bias)``.

    Parameters
    ----------
    call : callable
        ``call(x, weight, bias)`` computes the layer (the other arguments of
        the operation, e.g. stride and padding, are bound in it).
    x : torch.Tensor
        Input (depends on the explained input).
    weight, bias : torch.Tensor | None
        Constant parameters.
    rule : str
        One of :data:`LINEAR_RULES`.
    eps, gamma : float
        Rule parameters.

    Returns
    -------
    out : torch.Tensor
        The layer's output, with the rule's gradient.
    """
    if rule == "epsilon":
        zg = call(x, weight, bias)
        z = zg.detach()
        return graft(z, zg * (z / stabilize(z, eps)))
    with torch.no_grad():
        z = call(x, weight, bias)
    xp, xn = x.clamp(min=0), x.clamp(max=0)
    wp, wn = weight.clamp(min=0), weight.clamp(max=0)
    bp = None if bias is None else bias.clamp(min=0)
    bn = None if bias is None else bias.clamp(max=0)
    if rule == "zplus":
        zp = call(xp, wp, bp) + call(xn, wn, None)
        return graft(z, zp * (z / stabilize(zp.detach(), eps)))
    if rule != "gamma":
        raise ValueError(f"Unknown rule {rule!r}; use one of {LINEAR_RULES}.")

    def _plus(b, part):
        return None if b is None else b + gamma * part

    # positive outputs: positive contributions boosted; negative outputs: the
    # negative ones (zennit's Gamma for signed inputs)
    z_pos = call(xp, weight + gamma * wp, _plus(bias, bp)) + call(
        xn, weight + gamma * wn, None
    )
    z_neg = call(xp, weight + gamma * wn, _plus(bias, bn)) + call(
        xn, weight + gamma * wp, None
    )
    zero = torch.zeros((), dtype=z.dtype, device=z.device)
    c_pos = torch.where(z > 0, z / stabilize(z_pos.detach(), eps), zero)
    c_neg = torch.where(z < 0, z / stabilize(z_neg.detach(), eps), zero)
    return graft(z, z_pos * c_pos + z_neg * c_neg)


# ---------------------------------------------------------------------------
# element-wise non-linearities


def identity_rule(x, y, eps=1e-12):
    """Pass relevance unchanged through ``y = f(x)`` (element-wise).

    The gradient becomes ``g * f(x) / x``, so ``x * grad = f(x) * g``. ``eps``
    only guards the division (it is floored at the dtype's smallest normal
    number); it is not the epsilon of the epsilon rule.
    """
    eps = max(float(eps), torch.finfo(x.dtype).tiny)
    ratio = (y.detach() / stabilize(x.detach(), eps)).to(x.dtype)
    return graft(y, x * ratio)


# ---------------------------------------------------------------------------
# normalisation layers


def layer_norm_rule(x, y, normalized_shape, weight, bias, eps):
    """LayerNorm with its standard deviation detached (``y``: native output)."""
    dims = tuple(range(-len(normalized_shape), 0))
    var = x.detach().var(dim=dims, keepdim=True, unbiased=False)
    s = (x - x.mean(dim=dims, keepdim=True)) / torch.sqrt(var + eps)
    if weight is not None:
        s = s * weight
    if bias is not None:
        s = s + bias
    return graft(y, s)


def group_norm_rule(x, y, num_groups, weight, bias, eps):
    """GroupNorm with its standard deviation detached."""
    n, c = x.shape[:2]
    xg = x.reshape(n, num_groups, -1)
    var = xg.detach().var(dim=-1, keepdim=True, unbiased=False)
    s = ((xg - xg.mean(dim=-1, keepdim=True)) / torch.sqrt(var + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        s = s * weight.reshape(shape)
    if bias is not None:
        s = s + bias.reshape(shape)
    return graft(y, s)


def rms_norm_rule(x, y, normalized_shape, weight, eps):
    """RMSNorm with its root mean square detached."""
    dims = tuple(range(-len(normalized_shape), 0))
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    rms = torch.sqrt(x.detach().pow(2).mean(dim=dims, keepdim=True) + eps)
    s = x / rms
    if weight is not None:
        s = s * weight
    return graft(y, s)


# ---------------------------------------------------------------------------
# attention


def softmax_rule(y, attention):
    """AttnLRP keeps the softmax gradient; CP-LRP detaches the weights."""
    if attention == "cplrp":
        return y.detach()
    return y


def product_rule(call, operands):
    """Uniform rule for a product of several input-dependent factors.

    ``call(*operands)`` is multilinear in the operands (matmul, einsum,
    element-wise product). Each factor that depends on the input receives an
    equal share of the relevance; constant factors keep their plain role.
    """
    active = [i for i, t in enumerate(operands) if _requires_grad(t)]
    if len(active) < 2:
        return call(*operands)
    with torch.no_grad():
        y = call(*operands)
    s = 0
    for i in active:
        ops = [
            t if j == i or not isinstance(t, torch.Tensor) else t.detach()
            for j, t in enumerate(operands)
        ]
        s = s + call(*ops)
    return graft(y, s / len(active))


def sdpa_rule(
    cfg,
    query,
    key,
    value,
    attn_mask=None,
    dropout_p=0.0,
    is_causal=False,
    scale=None,
    enable_gqa=False,
):
    """``F.scaled_dot_product_attention`` decomposed into ruled operations.

    The attention dropout is not applied (explanations are computed in eval
    mode, where braindecode passes ``dropout_p=0``).
    """
    with torch.no_grad():
        y = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attn_mask,
            dropout_p=0.0,
            is_causal=is_causal,
            scale=scale,
            enable_gqa=enable_gqa,
        )
    if not (_requires_grad(query) or _requires_grad(key) or _requires_grad(value)):
        return y
    n_q, n_k = query.size(-2), key.size(-2)
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    if enable_gqa and key.size(-3) != query.size(-3):
        rep = query.size(-3) // key.size(-3)
        key = key.repeat_interleave(rep, dim=-3)
        value = value.repeat_interleave(rep, dim=-3)
    scores = product_rule(torch.matmul, [query * scale, key.transpose(-2, -1)])
    if is_causal:
        causal = torch.ones(n_q, n_k, dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = softmax_rule(torch.softmax(scores, dim=-1), cfg.attention)
    out = product_rule(torch.matmul, [weights, value])
    return graft(y, out)


def mha_forward(
    self,
    query,
    key,
    value,
    key_padding_mask=None,
    need_weights=True,
    attn_mask=None,
    average_attn_weights=True,
    is_causal=False,
):
    """Plain-torch forward of :class:`torch.nn.MultiheadAttention`.

    It replaces the forward of each ``nn.MultiheadAttention`` instance while
    the rules are active (the fused ``torch._native_multi_head_attention``
    and ``F.multi_head_attention_forward`` hide their matmuls and softmax from
    the rules). Every operation goes through torch functions, so the rules
    apply to the projections, the two products and the softmax. Dropout is
    not applied (eval mode).
    """
    if self.bias_k is not None or self.add_zero_attn:
        raise NotImplementedError(
            "LRP rules do not support nn.MultiheadAttention with add_bias_kv or "
            "add_zero_attn."
        )
    batched = query.dim() == 3
    if not batched:
        query, key, value = (t.unsqueeze(1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    if self.batch_first and batched:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    # (L, N, E) from here on
    n_q, n_b, e = query.shape
    n_k = key.shape[0]
    h = self.num_heads
    d = e // h
    if self._qkv_same_embed_dim:
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
    else:
        w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
    if self.in_proj_bias is not None:
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
    else:
        b_q = b_k = b_v = None
    q = F.linear(query, w_q, b_q)
    k = F.linear(key, w_k, b_k)
    v = F.linear(value, w_v, b_v)

    def _heads(t, n):
        return t.reshape(n, n_b, h, d).permute(1, 2, 0, 3)  # (N, H, L, D)

    q, k, v = _heads(q, n_q), _heads(k, n_k), _heads(v, n_k)
    mask = None
    if attn_mask is not None:
        am = attn_mask
        if am.dtype == torch.bool:
            am = torch.zeros(am.shape, dtype=q.dtype, device=q.device).masked_fill(
                am, float("-inf")
            )
        mask = am.reshape(n_b, h, n_q, n_k) if am.dim() == 3 else am
    elif is_causal:
        mask = torch.zeros(n_q, n_k, dtype=q.dtype, device=q.device).masked_fill(
            torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).triu(1),
            float("-inf"),
        )
    if key_padding_mask is not None:
        kpm = key_padding_mask
        if kpm.dtype == torch.bool:
            kpm = torch.zeros(kpm.shape, dtype=q.dtype, device=q.device).masked_fill(
                kpm, float("-inf")
            )
        kpm = kpm.reshape(n_b, 1, 1, n_k)
        mask = kpm if mask is None else mask + kpm
    scores = torch.matmul(q / math.sqrt(d), k.transpose(-2, -1))
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    out = torch.matmul(weights, v)  # (N, H, L, D)
    out = out.permute(2, 0, 1, 3).reshape(n_q, n_b, e)
    out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
    if self.batch_first and batched:
        out = out.transpose(0, 1)
    if not batched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    weights = weights.detach()
    if average_attn_weights:
        weights = weights.mean(dim=1)
    if not batched:
        weights = weights.squeeze(0)
    return out, weights
