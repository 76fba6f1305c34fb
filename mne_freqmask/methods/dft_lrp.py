"""DFT-LRP: layer-wise relevance propagation in the frequency domain, for CNNs.

1. Time-domain relevance ``R_t`` of the explained class (``target``, or the
   predicted class; initial relevance 1) from zennit, with the
   ``SequentialMergeBatchNorm`` canonizer and by default the ``EpsilonPlus``
   composite: z+ on every convolution, epsilon on dense layers, pass-through
   for activations, norm rule for average pooling.
   ``composite="epsilon_plus_flat"`` (zennit's usual choice for images) puts
   the flat rule on the first convolution instead; it is offered but not the
   default: the flat rule spreads relevance evenly over the first layer's
   receptive field whatever the signal, and the DFT step divides ``R_t`` by
   the signal, so ``R_t / x_t`` explodes near every zero crossing and the
   spectrum of the relevance is dominated by that, not by what the model
   uses (AUROC of the planted cells 0.48 with the flat rule, 1.0 without, on
   the test suite's simulated data). ``"epsilon_alpha2_beta1"`` (alpha-beta
   on convolutions) is offered as well.
2. ``R_t`` is mapped onto the rfft bins with
   :func:`~mne_freqmask.methods._dft.dft_relevance` (the "virtual inspection
   layer" of Vielhaben et al., 2024; real and imaginary parts summed), which
   conserves it: per channel, the bins sum to the sum over time of ``R_t``.
3. Bins are summed per band.

Short-time (``explain(..., time_windows=...)``, the STDFT variant of
Vielhaben et al.): step 2 goes through the inverse STFT of the grid instead
of the inverse rfft, and the coefficients are summed per channel x band x
window cell (see :mod:`mne_freqmask.methods._dft` for how this follows the
published STDFT layer). Step 1 is unchanged: zennit explains the time
samples, whatever the cells.

zennit runs on a deep copy of the model, so the user's model is untouched
whatever happens (zennit's canonizers write merged weights into the modules
they change, and a failure while registering them would leave them there).
On the copy, before the composite is applied:

- braindecode's ``CombinedConv`` (Deep4Net, ShallowFBCSPNet) is replaced by
  its temporal and spatial convolutions in sequence, the same function, so
  that the rules see them;
- braindecode's max-norm constrained layers (``Conv2dWithConstraint``,
  ``LinearWithConstraint``) are torch parametrizations; zennit can neither
  see them as leaves nor write merged weights into them, so the constrained
  weights are baked into plain ones (the forward is unchanged);
- a batch norm merged into the preceding layer is set to the identity with
  ``running_var = 1 - eps`` (zennit sets it to 1, which leaves a factor
  ``1 / sqrt(1 + eps)``: 0.05 % per layer with braindecode's ``eps=1e-3``).

Modules without a rule pass relevance as plain gradient: that is exact for
the reshaping modules (braindecode's ``Ensure4d``, ``Expression`` around
transposes/squeezes, einops ``Rearrange``), dropout (eval), max pooling
(winner takes all) and ELU (zennit's ``Pass`` for activations).
:class:`~mne_freqmask.models.InputScaler` gets a ``Pass`` rule (its plain
gradient would multiply relevance by its factor). Non-linear operations
without a rule (TSception's power layer ``log(mean(x ** 2))``) break
conservation; the diagnostic ``relevance_total`` (time-domain relevance
summed over all channels per epoch; 1 when fully conserved, less when
biases absorb some) shows how much is left.

**Loud where it is not LRP**, as ``method="lrp"``: while the model runs,
every torch function called outside the modules that the composite gives a
rule is watched (a torch function mode, as in
:func:`~mne_freqmask.lrp.lrp_rules`). In zennit the gradient that flows
between hooked modules *is* the relevance, so a plain gradient is only right
where it merely moves relevance around (reshapes, indexing, concatenation,
means and pooling, dropout, ReLU). Any other operation on the relevance path
(a recurrent layer, LayerNorm, softmax, a product of two input-dependent
tensors, a residual sum, an in-place non-linearity, a power
``log(mean(x ** 2))``) and every ``nn.MultiheadAttention`` (which zennit
passes through unchanged, as if it were an activation) are counted, and a
:class:`~mne_freqmask.lrp.LRPCoverageWarning` names them with a pointer to
``method="lrp"``, which has rules for attention, normalisation and
residuals (``strict=True``: an :class:`~mne_freqmask.lrp.LRPCoverageError`).
We warn rather than refuse: the map of a CNN with one uncovered power layer
is still useful, and the user decides. Where zennit's hooks fail outright
(in-place residuals, ``nn.TransformerEncoderLayer``), the error says so and
names ``method="lrp"``.

``diagnostics`` hold, per epoch, ``target``, ``logit`` (the explained
logit), ``relevance_total`` (input relevance summed over channels and
times; zennit starts from an initial relevance of 1, so this is also the
share of the decision that reached the input, ``input_share``),
``absorbed`` (``1 - relevance_total``: what biases, BatchNorm shifts and
the stabilisers absorbed, or operations without a rule lost) and
``n_plain_ops``. A median share below ``mne_freqmask.lrp.MIN_SHARE`` in
magnitude, or shares that are negative or below it in many epochs, give an
:class:`~mne_freqmask.lrp.LRPConservationWarning`.

Deterministic: ``random_state`` is not used.

**Why a method of its own, not a backend of** ``method="lrp"`` (decided in
issue #28). Both are LRP mapped onto the spectrum by the same
:func:`~mne_freqmask.methods._dft.dft_relevance` and checked by the same
:func:`~mne_freqmask.lrp.relevance.check_lrp`, but they do not compute the
same map: ``lrp`` with ``rule="epsilon"`` puts epsilon on every layer (checked
equal to zennit's ``Epsilon``, ``tests/test_lrp.py``), while ``dft_lrp``
defaults to zennit's ``EpsilonPlus`` (z+ on convolutions) after merging each
BatchNorm into the layer before it, starts from a relevance of 1 rather than
the logit, and offers the flat and alpha-beta composites, which ``lrp`` lacks.
As a backend it would keep all of this module (the model copy, the unfused
``CombinedConv``, the baked parametrizations and the coverage mode are needed
whatever name selects zennit) and the name ``"dft_lrp"``, and add one
signature whose parameters (``composite`` / ``epsilon`` against ``rule`` /
``attention`` / ``eps`` / ``gamma``) each apply to one backend only. Kept
apart, zennit stays an independent reference for the package's own rules.
"""

import contextlib
import copy
from collections import Counter

import numpy as np
import torch
from mne.utils import _check_option, _validate_type, logger
from torch.overrides import TorchFunctionMode

from mne_freqmask.lrp._context import _on_path
from mne_freqmask.lrp._coverage import LRPCoverageError
from mne_freqmask.lrp.relevance import check_lrp
from mne_freqmask.methods._base import MethodResult, method_spec
from mne_freqmask.methods._dft import dft_relevance
from mne_freqmask.methods._spectral_attr import target_classes
from mne_freqmask.utils._checks import _check_positive

#: zennit composites offered (all take ``canonizers`` and ``layer_map``).
COMPOSITES = ("epsilon_plus", "epsilon_plus_flat", "epsilon_alpha2_beta1")


#: What the coverage warning of ``dft_lrp`` advises.
ADVICE = (
    'method="lrp" has rules for attention, LayerNorm, softmax, products and '
    "residual sums (an LSTM or GRU has no LRP rule in either)."
)


@method_spec(
    name="dft_lrp",
    summary="LRP in time (zennit, for CNNs) mapped onto the rfft bins with the "
    "DFT-LRP rule",
    short_time=True,
)
def dft_lrp(run, *, composite="epsilon_plus", epsilon=1e-6, strict=False):
    """DFT-LRP relevance per channel x band cell (see module docstring).

    ``strict=True`` raises :class:`~mne_freqmask.lrp.LRPCoverageError` at an
    operation without a zennit rule instead of warning.

    Parameters (``explain(..., **method_kw)``): ``composite="epsilon_plus"``
    (one of :data:`COMPOSITES`), ``epsilon=1e-6``.
    """
    _check_option("composite", composite, COMPOSITES)
    _validate_type(strict, bool, "strict")
    epsilon = _check_positive(epsilon, "epsilon")
    inp, grid, model, device = run.inp, run.grid, run.model, run.device
    target = target_classes(inp, model, device)
    picks = inp.picks
    n_epochs = inp.n_epochs
    out = run.new_map()
    total = np.empty(n_epochs, np.float64)
    logit = np.empty(n_epochs, np.float64)
    n_plain = np.zeros(n_epochs, np.int64)
    predicted = np.empty(n_epochs, bool)
    plain = Counter()
    with _zennit_model(model, composite, epsilon) as (lrp_model, covered):
        for sl, x in run.chunks():
            counter = _ZennitCoverage(covered)
            try:
                rel, logit_b, pred_b = _relevance_counted(
                    lrp_model,
                    x,
                    torch.as_tensor(target[sl], device=device),
                    counter,
                    strict,
                )
            except LRPCoverageError:
                raise
            except (KeyError, RuntimeError) as exp:
                # the model ran in check_model: a failure here is zennit's
                # hooks (anything else, an out-of-memory, is raised as is)
                if isinstance(exp, RuntimeError) and "hook" not in str(exp):
                    raise
                raise _hook_error(exp) from exp
            n_plain[sl] = sum(counter.plain_ops.values())
            plain.update(counter.plain_ops)
            # in units of the data's std, so that dft_relevance's absolute
            # stabiliser means the same whatever the units (volts, microvolts)
            rel_f = dft_relevance(x[:, picks] / inp.scale, rel[:, picks], grid=grid)
            out[sl] = grid.collapse(rel_f.cpu().numpy(), np.sum)
            total[sl] = rel.double().sum((1, 2)).cpu().numpy()
            logit[sl] = logit_b.double().cpu().numpy()
            predicted[sl] = pred_b.cpu().numpy()
    logger.info(f"DFT-LRP (zennit, {composite}):")
    # zennit's initial relevance is 1: the input's total is its share
    share = check_lrp(
        total, np.ones(n_epochs), dict(plain), advice=ADVICE, predicted=predicted
    )
    params = dict(
        composite=composite,
        epsilon=epsilon,
        canonizer="SequentialMergeBatchNorm",
        aggregation="sum",
    )
    diagnostics = dict(
        target=target,
        logit=logit,
        relevance_total=total,
        input_share=share,
        absorbed=1.0 - total,
        n_plain_ops=n_plain,
    )
    return MethodResult(out, params, diagnostics)


def _hook_error(exp):
    """A clear error for a failure inside zennit's hooks (the fix named)."""
    if isinstance(exp, KeyError):
        # zennit's hooks lose their stored gradient when a module's output is
        # modified in place (EEGConformer's residual ``x += attn(x)``)
        why = (
            f"zennit failed with KeyError {exp} inside its hooks, which happens "
            "when a layer's output is modified in place (residual 'x += ...', "
            "as in EEGConformer)"
        )
    else:
        # e.g. nn.TransformerEncoderLayer: zennit's Pass rule on
        # nn.MultiheadAttention returns one gradient for its three inputs
        why = (
            f"zennit failed inside its hooks ({type(exp).__name__}: {exp}); "
            "its rules cover convolution, linear, BatchNorm, pooling and "
            "activation modules, not attention (nn.MultiheadAttention, "
            "nn.TransformerEncoderLayer), normalisation or in-place residuals"
        )
    return ValueError(
        f'method="dft_lrp" (zennit) cannot propagate relevance through this '
        f'model: {why}. Use method="lrp", whose rules handle transformers and '
        "in-place residuals."
    )


def _relevance_counted(model, x, target, counter, strict):
    """``zennit_relevance`` with the operations of the forward pass counted."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        with counter.watch(model):
            out = model(x)
        if strict and counter.plain_ops:
            from mne_freqmask.lrp._coverage import check_coverage

            check_coverage(counter.plain_ops, strict=True, advice=ADVICE)
        logit = out.gather(1, target.long()[:, None])[:, 0]
        (rel,) = torch.autograd.grad(logit.sum(), x)
    return rel.detach(), logit.detach(), out.detach().argmax(1) == target.long()


#: Operations whose plain gradient only moves zennit's relevance around
#: (the gradient between hooked modules is the relevance itself): reshapes,
#: indexing, concatenation, broadcasting, means and pooling, dropout, ReLU.
#: A subset of :data:`mne_freqmask.lrp._handlers.LINEAR_NAMES`, whose plain
#: gradient is LRP-0 under gradient x input but not under zennit's scheme
#: (a sum copies relevance, a scaling scales it).
_ZENNIT_PASS = frozenset(
    """
    __get__ __getitem__ reshape view view_as permute transpose t flatten
    unflatten squeeze unsqueeze cat concat concatenate stack hstack vstack
    split chunk unbind tensor_split clone contiguous pad narrow select
    index_select gather take_along_dim movedim moveaxis swapaxes swapdims to
    type type_as float double half bfloat16 detach requires_grad_ expand
    expand_as repeat mean avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d
    adaptive_avg_pool2d adaptive_avg_pool3d max_pool1d max_pool2d max_pool3d
    max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices
    adaptive_max_pool1d adaptive_max_pool2d dropout dropout1d dropout2d
    dropout3d alpha_dropout feature_alpha_dropout relu roll flip
    """.split()
)
_ADDS = frozenset("add __add__ __radd__ sub __sub__ __rsub__".split())


class _ZennitCoverage(TorchFunctionMode):
    """Count the operations on the relevance path that zennit has no rule for.

    Functions called inside a module that the composite gives a rule are
    skipped (the rule replaces the module's whole gradient); so are those
    inside an ``nn.MultiheadAttention``, which is counted once per call
    (zennit passes relevance through it unchanged). Any other function whose
    output depends on the input is counted unless it is in
    :data:`_ZENNIT_PASS`, or an addition with one input-dependent operand (a
    bias); a sum of two input-dependent tensors is a ``"residual add"``. The
    names are those of :func:`~mne_freqmask.lrp._coverage.hint`.
    """

    def __init__(self, covered):
        super().__init__()
        self.covered = covered
        self.plain_ops = Counter()
        self._inside = 0

    @contextlib.contextmanager
    def watch(self, model):
        """Track module entry / exit on ``model`` and activate the mode."""
        handles = []

        def enter(module, args):
            if module in self.covered or isinstance(
                module, torch.nn.MultiheadAttention
            ):
                if isinstance(module, torch.nn.MultiheadAttention) and not self._inside:
                    if any(_on_path(a) for a in args):
                        self.plain_ops["MultiheadAttention"] += 1
                self._inside += 1

        def leave(module, args, output):
            if module in self.covered or isinstance(
                module, torch.nn.MultiheadAttention
            ):
                self._inside -= 1

        try:
            for module in model.modules():
                # first in, last out: zennit's own hooks run inside the frame
                handles.append(module.register_forward_pre_hook(enter, prepend=True))
                handles.append(module.register_forward_hook(leave))
            with self:
                yield self
        finally:
            for handle in handles:
                handle.remove()
            self._inside = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self._inside or not _on_path(out):
            return out
        name = getattr(func, "__name__", repr(func))
        if name in _ADDS:
            operands = list(args[:2]) + [kwargs.get("other")]
            if sum(_on_path(a) for a in operands) >= 2:
                self.plain_ops["residual add"] += 1
        elif name not in _ZENNIT_PASS:
            self.plain_ops[name] += 1
        return out


@contextlib.contextmanager
def _zennit_model(model, composite, epsilon):
    """``zennit_context``'s copy, and the set of its modules that got a rule."""
    comp = _composite(composite, epsilon)
    lrp_model = _plain_copy(model)
    with comp.context(lrp_model) as modified:
        ctx = {}
        covered = {
            child
            for name, child in modified.named_modules()
            if comp.module_map(ctx, name, child) is not None
            and not isinstance(child, torch.nn.MultiheadAttention)
        }
        yield modified, covered


@contextlib.contextmanager
def zennit_context(model, composite="epsilon_plus", epsilon=1e-6):
    """A copy of ``model`` with a zennit composite registered (see module doc).

    The composite is removed when the block exits (normally or not); the
    copy is discarded, and ``model`` itself is never modified.
    """
    with _zennit_model(model, composite, epsilon) as (modified, _):
        yield modified


def _composite(composite, epsilon):
    """The zennit composite (with our batch-norm merge and InputScaler rule)."""
    from mne_freqmask.utils._deps import import_optional

    SequentialMergeBatchNorm = import_optional(
        "zennit.canonizers"
    ).SequentialMergeBatchNorm
    ZENNIT_COMPOSITES = import_optional("zennit.composites").COMPOSITES
    Pass = import_optional("zennit.rules").Pass
    from mne_freqmask.models import InputScaler

    class _MergeBatchNorm(SequentialMergeBatchNorm):
        @staticmethod
        def merge_batch_norm(modules, batch_norm):
            SequentialMergeBatchNorm.merge_batch_norm(modules, batch_norm)
            # an exact identity: (x - 0) / sqrt((1 - eps) + eps) * 1 + 0
            batch_norm.running_var.data = torch.full_like(
                batch_norm.running_var.data, 1.0 - batch_norm.eps
            )

    return ZENNIT_COMPOSITES[composite](
        epsilon=epsilon,
        stabilizer=epsilon,
        layer_map=[(InputScaler, Pass())],
        canonizers=[_MergeBatchNorm()],
    )


def zennit_relevance(model, x, target):
    """Relevance of every input sample (the composite is registered)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        seed = torch.zeros_like(out)
        seed[torch.arange(len(out)), target.long()] = 1.0
        (rel,) = torch.autograd.grad(out, x, grad_outputs=seed)
    return rel.detach()


def _plain_copy(model):
    """A deep copy of ``model`` with parametrized weights baked in.

    ``torch.nn.utils.parametrize.remove_parametrizations`` cannot be used: it
    deletes the property from the parametrized class, which a deep copy
    shares with the original, and so breaks the user's model. Instead the
    copy's modules get their plain class back and a plain parameter holding
    the parametrized value.
    """
    from torch.nn.utils import parametrize

    try:
        lrp_model = copy.deepcopy(model)
    except Exception as exp:
        raise ValueError(
            f'method="dft_lrp" works on a copy of the model, and copying it failed '
            f"({type(exp).__name__}: {exp})."
        ) from exp
    for module in [m for m in lrp_model.modules() if parametrize.is_parametrized(m)]:
        values = {
            name: getattr(module, name).detach().clone()
            for name in module.parametrizations
        }
        del module._modules["parametrizations"]
        # parametrize made the class Parametrized<Cls>(Cls); restore Cls
        module.__class__ = module.__class__.__bases__[0]
        for name, value in values.items():
            module._parameters.pop(name, None)
            module.register_parameter(
                name, torch.nn.Parameter(value, requires_grad=False)
            )
    _unfuse_combined_conv(lrp_model)
    return lrp_model.eval()


def _unfuse_combined_conv(model):
    """Replace braindecode's ``CombinedConv`` by its two convolutions in turn.

    ``CombinedConv`` (Deep4Net, ShallowFBCSPNet) multiplies the weights of its
    temporal and spatial convolutions and calls ``F.conv2d`` once, so zennit's
    hooks on the two sub-convolutions never fire and relevance would flow
    through it as a plain gradient. Applied in sequence, the two are the same
    function (braindecode documents them as numerically equivalent).
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ == "CombinedConv" and hasattr(child, "conv_spat"):
                setattr(
                    parent, name, torch.nn.Sequential(child.conv_time, child.conv_spat)
                )
