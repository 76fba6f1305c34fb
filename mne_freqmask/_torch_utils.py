"""Torch helpers shared by the methods: device, model guard, batched predict."""

import contextlib

import numpy as np
import torch
from mne.utils import _validate_type, logger


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
    return device


def _model_device(model):
    devices = {t.device for t in list(model.parameters()) + list(model.buffers())}
    if len(devices) > 1:
        raise ValueError(
            f"The model's parameters are spread over several devices ({devices}); "
            "move the whole model to one device first."
        )
    return devices.pop() if devices else None


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
    written to.
    """
    _validate_type(model, torch.nn.Module, "model", "torch.nn.Module")
    orig_device = _model_device(model)
    training = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if orig_device is not None and orig_device != device:
            model.to(device)
        yield model
    finally:
        if orig_device is not None and orig_device != device:
            model.to(orig_device)
        for p, flag in grads:
            p.requires_grad_(flag)
        for m, flag in training:
            m.train(flag)


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
            "with at least 2 class scores (logits) is needed."
        )
    logger.debug(f"Model OK: {tuple(xb.shape)} -> {tuple(out.shape)}")
    return int(out.shape[1])


def spectrum(x, scale):
    """rfft of ``x / scale`` with orthonormal scaling (|X| ~ std per bin)."""
    return torch.fft.rfft(x / scale, dim=-1, norm="ortho")


def inverse_spectrum(xf, n_times, scale):
    """Inverse of :func:`spectrum`."""
    return torch.fft.irfft(xf, n=n_times, dim=-1, norm="ortho") * scale
