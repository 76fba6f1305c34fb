"""Torch helpers shared by the methods: device, model guard, batched predict."""

import contextlib
import os

import numpy as np
import torch
from mne.utils import _validate_type, logger
from torch.optim.adam import adam as _adam


def resolve_device(device, model=None):
    """Return the :class:`torch.device` to compute on."""
    _validate_type(device, (str, torch.device), "device", "str or torch.device")
    if isinstance(device, str) and device == "auto":
        if model is not None:
            dev = _model_device(model)
            if dev is not None and dev.type != "cpu":
                return dev
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as exp:
        raise ValueError(
            f'device must be "auto", "cpu", "cuda" or "cuda:N", got {device!r}.'
        ) from exp
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but CUDA is not available; "
            'use device="cpu" or "auto".'
        )
    _check_device_holds_data(device)
    return device


def available_cores():
    """CPU cores this process may run on (its affinity mask, else os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def resolve_n_jobs(n_jobs):
    """Torch intra-op threads for ``n_jobs`` (see ``docdict["n_jobs_torch"]``)."""
    _validate_type(n_jobs, ("int-like", None), "n_jobs", "int or None")
    cores = available_cores()
    if n_jobs is None:
        return min(torch.get_num_threads(), cores)
    n_jobs = int(n_jobs)
    if n_jobs == 0 or n_jobs < -cores:
        raise ValueError(
            f"n_jobs must be a positive int, -1 (all {cores} available cores), "
            f"-k (all but k-1) or None, got {n_jobs}."
        )
    return n_jobs if n_jobs > 0 else cores + 1 + n_jobs


@contextlib.contextmanager
def torch_threads(n_jobs):
    """Set torch's intra-op threads for the block, then restore the previous value.

    ``n_jobs`` as :func:`resolve_n_jobs`; an invalid value raises before
    anything changes.
    """
    n_threads = resolve_n_jobs(n_jobs)
    before = torch.get_num_threads()
    if n_threads != before:
        logger.info(f"Torch threads: {n_threads} (was {before}).")
        torch.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _check_device_holds_data(device):
    """Raise unless tensors on ``device`` hold values that can be read back.

    Checked before the model is touched: moving a model to a device without
    storage (``"meta"``) drops its weights and cannot be undone.
    """
    if device.type == "meta":
        raise ValueError(
            'device="meta" holds no data (meta tensors have a shape but no '
            "values), so the model cannot run there and its weights would be "
            'lost; use device="cpu", "cuda" or "auto".'
        )
    try:
        probe = torch.ones(2, device=device)
        ok = bool((probe + 1).cpu().sum() == 4)
    except Exception as exp:  # any backend error: the device is unusable
        raise ValueError(
            f"device={str(device)!r} cannot hold and return data here "
            f"({type(exp).__name__}: {exp}); use "
            'device="cpu" or "auto".'
        ) from None
    if not ok:
        raise ValueError(
            f"device={str(device)!r} returned wrong values for a test tensor; "
            'use device="cpu" or "auto".'
        )


def _model_device(model):
    devices = {t.device for t in list(model.parameters()) + list(model.buffers())}
    if len(devices) > 1:
        raise ValueError(
            f"The model's parameters are spread over several devices ({devices}); "
            "move the whole model to one device first."
        )
    dev = devices.pop() if devices else None
    if dev is not None and dev.type == "meta":
        raise ValueError(
            "The model's parameters are on the meta device: it has no weights. "
            "Materialise and load them first (model.to_empty(device='cpu') then "
            "model.load_state_dict(...))."
        )
    return dev


def model_dtype(model):
    """Floating dtype of the model's parameters (float32 when it has none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


@contextlib.contextmanager
def model_context(model, device):
    """Put ``model`` in eval mode, frozen, on ``device``; restore it on exit.

    Each submodule's ``training`` flag, each parameter's ``requires_grad`` and
    the model's device are restored in a ``finally`` clause, so they survive an
    exception or a KeyboardInterrupt raised inside the block. Weights are never
    written to. ``device`` is checked to hold data before the model is moved
    (see :func:`resolve_device`); the flags are restored by parameter name
    after the move back, so they hold even if ``Module.to`` replaced the
    parameter objects, and even if the move back fails.
    """
    _validate_type(model, torch.nn.Module, "model", "torch.nn.Module")
    _validate_type(device, (str, torch.device), "device", "str or torch.device")
    device = torch.device(device)
    _check_device_holds_data(device)
    orig_device = _model_device(model)
    training = [(name, m.training) for name, m in model.named_modules()]
    grads = [
        (name, p.requires_grad)
        for name, p in model.named_parameters(remove_duplicate=False)
    ]
    move = orig_device is not None and orig_device != device
    try:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if move:
            model.to(device)
        yield model
    finally:
        try:
            if move and _model_device_or_none(model) != orig_device:
                model.to(orig_device)
        finally:
            _restore_flags(model, training, grads)


def _model_device_or_none(model):
    """The model's single device, or None when it is spread or empty."""
    devices = {t.device for t in list(model.parameters()) + list(model.buffers())}
    return devices.pop() if len(devices) == 1 else None


def _restore_flags(model, training, grads):
    modules = dict(model.named_modules())
    for name, flag in training:
        if name in modules:
            modules[name].training = flag
    params = dict(model.named_parameters(remove_duplicate=False))
    for name, flag in grads:
        if name in params:
            params[name].requires_grad_(flag)


def predict(model, x, device, batch_size=256):
    """Logits of ``model`` for the numpy array ``x`` (no gradients), as numpy."""
    dtype = model_dtype(model)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start : start + batch_size], dtype=dtype)
            out.append(model(xb.to(device)).float().cpu().numpy())
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(out)


def check_model(model, x, device):
    """Run the model on two epochs; raise a clear error if shapes don't fit.

    Returns the number of classes.
    """
    n_chans, n_times = x.shape[1:]
    for attr, have in (("n_chans", n_chans), ("n_times", n_times)):
        try:
            want = getattr(model, attr)
        except Exception:  # braindecode raises when the attribute is unset
            want = None
        if isinstance(want, int | np.integer) and want != have:
            what = "channels" if attr == "n_chans" else "time samples"
            raise ValueError(
                f"The model was built for {attr}={want} but the epochs have "
                f"{have} {what}; pick/crop/resample the epochs to match the "
                "data the model was trained on."
            )
    xb = torch.as_tensor(x[:2], dtype=model_dtype(model)).to(device)
    try:
        with torch.no_grad():
            out = model(xb)
    except Exception as exp:
        raise ValueError(
            f"The model failed on input of shape {tuple(xb.shape)} "
            "(n_epochs, n_channels, n_times) built from the epochs. Check that "
            "the epochs have the channels, sampling rate and duration the model "
            f"was trained on. The model said: {type(exp).__name__}: {exp}"
        ) from exp
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != len(xb):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
        raise ValueError(
            f"The model must return scores of shape (n_epochs, n_classes); for "
            f"{len(xb)} epochs it returned {shape}. Wrap it so that it returns "
            "one row of class logits per epoch."
        )
    if out.shape[1] < 2:
        raise ValueError(
            f"The model returned {out.shape[1]} output per epoch; a classifier "
            "with at least 2 class scores (logits) is needed (regression "
            "models are not explained: target is a class index)."
        )
    check_outputs_finite(out, f"the first {len(xb)} epochs")
    logger.debug(f"Model OK: {tuple(xb.shape)} -> {tuple(out.shape)}")
    return int(out.shape[1])


def check_outputs_finite(out, what):
    """Raise if the model's outputs ``out`` hold NaN or Inf."""
    finite = torch.isfinite(out)
    if not bool(finite.all()):
        n_bad = int((~finite).any(-1).sum())
        kinds = []
        if bool(torch.isnan(out).any()):
            kinds.append("NaN")
        if bool(torch.isinf(out).any()):
            kinds.append("Inf")
        raise ValueError(
            f"The model returned {' and '.join(kinds)} for {n_bad} of {what} "
            "although the input is finite; no explanation can be computed. "
            "Check the model's weights (a diverged training?), its dtype "
            "(float16 overflows beyond 65504; use model.float()) and its "
            "input scale."
        )


def spectral_dtype(dtype):
    """Real dtype of the spectral arithmetic for a model of ``dtype``.

    Half precision (float16, bfloat16) is upcast to float32: ``torch.fft``
    does not support it on the CPU (and only for powers of two on CUDA), and
    masks and gradients need the precision. float64 models keep float64.
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def adam_update(params, grads, exp_avg, exp_avg_sq, steps, *, lr, fused):
    """One Adam step in place (torch.optim.Adam's defaults, no weight decay).

    torch's functional Adam: the same update as :class:`torch.optim.Adam`, on
    plain tensors that the caller may shrink when epochs converge. With
    ``fused=True`` the whole update is one kernel, one pass over memory.
    """
    _adam(
        params,
        grads,
        exp_avg,
        exp_avg_sq,
        [],
        steps,
        amsgrad=False,
        beta1=0.9,
        beta2=0.999,
        lr=lr,
        weight_decay=0.0,
        eps=1e-8,
        maximize=False,
        foreach=False,
        fused=fused,
    )


def _fused_adam_ok(device, dtype):
    """Whether torch's fused Adam kernel runs on ``device`` for ``dtype``."""
    try:
        t = torch.zeros(2, device=device, dtype=dtype)
        adam_update(
            [t.clone()],
            [t.clone()],
            [t.clone()],
            [t.clone()],
            [torch.zeros((), device=device, dtype=torch.float32)],
            lr=0.01,
            fused=True,
        )
    except (RuntimeError, NotImplementedError):
        return False
    return True
