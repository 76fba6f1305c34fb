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

Deterministic: ``random_state`` is not used.
"""

import contextlib
import copy

import numpy as np
import torch
from mne.utils import _check_option, deprecated

from mne_freqmask.methods._base import MethodResult, iter_chunks
from mne_freqmask.methods._dft import dft_relevance
from mne_freqmask.methods._spectral_attr import target_classes
from mne_freqmask.utils._checks import _check_positive

#: zennit composites offered (all take ``canonizers`` and ``layer_map``).
COMPOSITES = ("epsilon_plus", "epsilon_plus_flat", "epsilon_alpha2_beta1")


def dft_lrp(
    inp,
    grid,
    model,
    *,
    device,
    chunk_size,
    random_state=None,
    composite="epsilon_plus",
    epsilon=1e-6,
):
    """DFT-LRP relevance per channel x band cell (see module docstring)."""
    _check_option("composite", composite, COMPOSITES)
    epsilon = _check_positive(epsilon, "epsilon")
    target = target_classes(inp, model, device)
    picks = inp.picks
    out = np.empty((inp.n_epochs, len(picks), grid.n_bands), np.float32)
    total = np.empty(inp.n_epochs, np.float64)
    with zennit_context(model, composite, epsilon) as lrp_model:
        for sl, x in iter_chunks(inp, chunk_size, model, device):
            try:
                rel = zennit_relevance(
                    lrp_model, x, torch.as_tensor(target[sl], device=device)
                )
            except KeyError as exp:
                # zennit's hooks lose their stored gradient when a module's
                # output is modified in place (e.g. EEGConformer's residual
                # ``x += attn(x)``): KeyError 'grad_output' deep inside zennit
                raise ValueError(
                    'method="dft_lrp" (zennit) cannot propagate relevance '
                    "through this model: zennit failed with KeyError "
                    f"{exp} inside its hooks, which happens when a layer's "
                    "output is modified in place (residual 'x += ...', as in "
                    'EEGConformer). Use method="lrp", whose rules handle '
                    "transformers and in-place residuals."
                ) from exp
            # in units of the data's std, so that dft_relevance's absolute
            # stabiliser means the same whatever the units (volts, microvolts)
            rel_f = dft_relevance(x[:, picks] / inp.scale, rel[:, picks], grid=grid)
            out[sl] = grid.collapse(rel_f.cpu().numpy(), np.sum)
            total[sl] = rel.double().sum((1, 2)).cpu().numpy()
    params = dict(
        composite=composite,
        epsilon=epsilon,
        canonizer="SequentialMergeBatchNorm",
        aggregation="sum",
    )
    return MethodResult(out, params, dict(target=target, relevance_total=total))


@contextlib.contextmanager
def zennit_context(model, composite="epsilon_plus", epsilon=1e-6):
    """A copy of ``model`` with a zennit composite registered (see module doc).

    The composite is removed when the block exits (normally or not); the
    copy is discarded, and ``model`` itself is never modified.
    """
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

    comp = ZENNIT_COMPOSITES[composite](
        epsilon=epsilon,
        stabilizer=epsilon,
        layer_map=[(InputScaler, Pass())],
        canonizers=[_MergeBatchNorm()],
    )
    with comp.context(_plain_copy(model)) as modified:
        yield modified


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


@deprecated("use dft_lrp, named after its method, instead.")
def fit_dft_lrp(*args, **kwargs):
    """Deprecated name of :func:`dft_lrp`."""
    return dft_lrp(*args, **kwargs)


@deprecated("use zennit_context (the zennit path, as opposed to mne_freqmask.lrp).")
def lrp_context(*args, **kwargs):
    """Deprecated name of :func:`zennit_context`."""
    return zennit_context(*args, **kwargs)


@deprecated("use zennit_relevance (the zennit path, as opposed to mne_freqmask.lrp).")
def time_relevance(*args, **kwargs):
    """Deprecated name of :func:`zennit_relevance`."""
    return zennit_relevance(*args, **kwargs)
