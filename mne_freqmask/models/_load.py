"""Save models, and the one model loader for every kind of model file.

:func:`load_any_model` reads what users of the field keep on disk:

- a file of :func:`save_model` (constructor arguments + weights);
- a TorchScript archive (``torch.jit.save``);
- braindecode's hub layout: a folder (or one of its files) holding
  ``config.json`` (``model.get_config()`` with ``braindecode_version``, as
  ``EEGModuleMixin._save_pretrained`` writes it, braindecode 1.8.1
  ``braindecode/models/base.py``) and the weights as ``model.safetensors``
  and / or ``pytorch_model.bin``; braindecode's own ``from_config`` rebuilds
  the model, so no constructor is re-implemented here;
- weights without their class, given with the class (and its settings):
  ``torch.save(model.state_dict())`` and skorch's ``net.save_params(
  f_params=...)`` files, in torch's format or, with
  ``use_safetensors=True``, in safetensors' format.

Every mistake raises ``ValueError`` (or ``FileNotFoundError``) with one line
that names the fix; the command line prints it and exits 2.
"""

import difflib
import json
import os
import re
import warnings
import zipfile
from pathlib import Path

import torch
from mne.utils import _validate_type

from mne_freqmask._torch_utils import model_context, resolve_device
from mne_freqmask.models._build import (
    MODEL_NAMES,
    InputScaler,
    braindecode_module,
    input_scale_of,
    make_model,
)
from mne_freqmask.utils._checks import _atomic_write
from mne_freqmask.utils._deps import import_optional

#: braindecode's hub layout: the settings, then the weights in the order
#: huggingface_hub prefers them (safetensors first)
HUB_CONFIG = "config.json"
HUB_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_FOLDER_FIX = (
    "a model folder holds config.json (braindecode's model.get_config(), with "
    "braindecode_version) and the weights as model.safetensors or "
    "pytorch_model.bin, as braindecode's model.save_pretrained(folder) / "
    "push_to_hub write them"
)


def as_model(model, name="model"):
    """The torch module to explain: ``model`` itself or a fitted skorch net's.

    The one place where a model argument is checked. A
    :class:`torch.nn.Module` is returned as is; a fitted skorch
    ``NeuralNetClassifier`` gives its ``module_`` (the trained network,
    returning logits). braindecode's ``EEGClassifier`` reads
    :class:`mne.Epochs` in microvolts (``EEGNeuralNet.get_dataset`` calls
    ``epochs.get_data(units="uV")``), so its network is explained as
    ``Sequential(InputScaler(1e6), net.module_)``: the function its
    ``predict(epochs)`` applies to epochs in volts. skorch is not imported: a
    net is recognised by its ``initialize`` / ``module`` API. A path is read
    with :func:`load_any_model` (files that hold their class: a
    :func:`save_model` file, TorchScript, a braindecode model folder).

    Parameters
    ----------
    model : torch.nn.Module | skorch net | path-like
        The model.
    name : str
        Its name in error messages.

    Returns
    -------
    module : torch.nn.Module
        The network (never a copy: the user's own object, wrapped for a
        braindecode net).
    """
    if isinstance(model, torch.nn.Module):
        return model
    if isinstance(model, str | os.PathLike):
        if not Path(model).exists():  # e.g. a model's name ("eegnet")
            raise TypeError(
                f"{name} must be a torch.nn.Module, a fitted skorch net or a "
                f"model file or folder; {str(model)!r} is no existing file or "
                "folder (build a model with mne_freqmask.models.make_model)."
            )
        return load_any_model(model)[0]
    kind = type(model).__name__
    if callable(getattr(model, "initialize", None)) and hasattr(model, "module"):
        if (
            any(c.__name__ == "NeuralNetRegressor" for c in type(model).__mro__)
            or getattr(model, "_estimator_type", None) == "regressor"
        ):
            raise ValueError(
                f"{name} is a regression net ({kind}); mne_freqmask explains "
                "classifiers: every method explains one class score against "
                "the others (target is a class index, and FreqMask matches the "
                "perturbed class probabilities to the unperturbed ones), which "
                "a regression output does not have. Explain a classifier."
            )
        module = getattr(model, "module_", None)
        if not getattr(model, "initialized_", False) or not isinstance(
            module, torch.nn.Module
        ):
            raise ValueError(
                f"{name} is a {kind} that is not fitted (it has no module_); "
                f"fit it first ({name}.fit(epochs, y)) or load its weights "
                f"({name}.initialize(); {name}.load_params(f_params=...))."
            )
        if callable(getattr(model, "get_dataset", None)) and any(
            c.__module__.startswith("braindecode") for c in type(model).__mro__
        ):
            return torch.nn.Sequential(InputScaler(1e6), module)
        return module
    _validate_type(
        model,
        torch.nn.Module,
        name,
        "torch.nn.Module, a fitted skorch net (braindecode EEGClassifier) or "
        "a model file or folder",
    )


def save_model(fname, model, *, overwrite=False, init_args=None):
    """Save a model's weights and constructor arguments (``.pt``).

    The file is written only when it loads back as the same model: it is
    read with :func:`load_model` and both models' outputs are compared on a
    seeded input. When they differ, the error names the setting that
    differs (e.g. ``final_layer_with_constraint``, which :func:`make_model`
    turns on for EEGNet and braindecode leaves off) and how to pass it.

    Parameters
    ----------
    fname : path-like
        Output file.
    model : torch.nn.Module
        A model built by :func:`make_model` / :func:`fit`, or any model when
        ``init_args`` is given. Never modified.
    overwrite : bool
        Overwrite an existing file.
    init_args : dict | None
        ``dict(name=..., kwargs=..., input_scale=...)`` for
        :func:`make_model`; defaults to ``model.init_args_``.
    """
    fname = Path(fname)
    if fname.exists() and not overwrite:
        raise FileExistsError(f"{fname} exists; pass overwrite=True to replace it.")
    init_args = (
        init_args if init_args is not None else getattr(model, "init_args_", None)
    )
    if init_args is None:
        raise ValueError(
            "The model was not built by mne_freqmask.models.make_model; pass "
            "init_args=dict(name=..., kwargs=...) to save it."
        )

    def write(tmp):
        torch.save(dict(init_args=init_args, state_dict=model.state_dict()), tmp)
        _check_round_trip(tmp, model, init_args, fname)

    _atomic_write(fname, write)


def _check_round_trip(tmp, model, init_args, fname):
    """Raise, naming the differing setting, unless ``tmp`` loads as ``model``."""
    try:
        loaded = load_model(tmp)
    except Exception as exp:  # a setting make_model lacks or refuses
        problem = f"load_model cannot rebuild it ({str(exp)[:200]})"
    else:
        kw = init_args.get("kwargs", {})
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, int(kw["n_chans"]), int(kw["n_times"]), generator=gen)
        scale = input_scale_of(model)
        x = x / scale if scale else x  # data in the units the model takes
        dev = resolve_device("auto", model)
        with model_context(model, dev), torch.no_grad():
            want = model(x.to(dev)).float().cpu()
        with torch.no_grad():
            got = loaded(x).float()
        if torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max())):
            return
        problem = "the model load_model rebuilds gives other outputs"
    diff = _settings_diff(model, init_args)
    raise ValueError(
        f"{fname} was not written: it would not load back as this model "
        f"({problem}). {diff}"
    )


def _rebuild(name, kwargs, input_scale):
    """The untrained model of a saved model's ``init_args`` (its name,
    constructor ``kwargs`` and ``input_scale``)."""
    args = dict(kwargs)
    return make_model(
        name,
        args.pop("n_chans"),
        args.pop("n_outputs"),
        args.pop("n_times"),
        args.pop("sfreq", 1.0),
        input_scale=input_scale,
        **args,
    )


def _settings_diff(model, init_args):
    """Which constructor setting differs between ``model`` and its rebuild."""
    name = init_args.get("name")
    kwargs = dict(init_args.get("kwargs", {}))
    try:
        rebuilt = _rebuild(name, kwargs, init_args.get("input_scale"))
    except Exception as exp:  # a name or setting make_model does not take
        return f"make_model cannot build init_args ({type(exp).__name__}: {exp})."
    have, want = input_scale_of(model), init_args.get("input_scale")
    if have != want:
        return (
            f"The model's input scale is {have} and init_args' input_scale "
            f"{want}; pass init_args=dict(..., input_scale={have})."
        )
    mine, theirs = braindecode_module(model), braindecode_module(rebuilt)
    if mine is None or type(mine) is not type(theirs):
        got = type(mine if mine is not None else model).__name__
        return (
            f"The model is a {got}, make_model({name!r}) builds a "
            f"{type(theirs).__name__}; save it with torch.jit.save or as "
            "braindecode's config.json + weights (model.save_pretrained)."
        )
    a, b = mine.get_config(), theirs.get_config()
    keys = sorted(
        k for k in set(a) | set(b) if k != "chs_info" and a.get(k) != b.get(k)
    )
    if not keys:
        return "The settings agree; the weights may be shared or tied oddly."
    text = ", ".join(
        f"{k}={a.get(k)!r} in the model, {b.get(k)!r} in make_model's" for k in keys
    )
    fix = ", ".join(f"{k}={a.get(k)!r}" for k in keys)
    return (
        f"The settings differ: {text}; pass them in init_args, e.g. "
        f"init_args=dict(name={name!r}, input_scale={want}, kwargs=dict(..., {fix}))."
    )


def load_model(fname):
    """Load a model saved with :func:`save_model` (eval mode, on the CPU).

    Parameters
    ----------
    fname : path-like
        A file written by :func:`save_model`.

    Returns
    -------
    model : torch.nn.Module
        The model rebuilt with :func:`make_model` and its saved weights.
    """
    fname = Path(fname)
    if not fname.is_file():
        raise FileNotFoundError(f"Model file {fname} does not exist.")
    try:
        ckpt = torch.load(fname, map_location="cpu", weights_only=True)
        ckpt["init_args"]["kwargs"], ckpt["state_dict"]  # noqa: B018
    except Exception as exp:
        msg = str(exp).strip().splitlines()[0] if str(exp).strip() else ""
        raise ValueError(
            f"{fname} is not a model file written by "
            f"mne_freqmask.models.save_model ({type(exp).__name__}: {msg})."
        ) from None
    name = ckpt["init_args"]["name"]
    model = _rebuild(
        name, ckpt["init_args"]["kwargs"], ckpt["init_args"].get("input_scale")
    )
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exp:  # shapes or names that do not fit the settings
        first = str(exp).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise ValueError(
            f"{fname}: the saved weights do not fit the saved settings ({name}, "
            f"n_chans={ckpt['init_args']['kwargs'].get('n_chans')}, n_outputs="
            f"{ckpt['init_args']['kwargs'].get('n_outputs')}, n_times="
            f"{ckpt['init_args']['kwargs'].get('n_times')}); the file was edited "
            f"or written by another version. Save the model again with "
            f"mne_freqmask.models.save_model. torch said: {detail}"
        ) from None
    return model.eval()


# ----------------------------------------------------------------------------
# the one loader


def model_class(name):
    """The braindecode model class called ``name`` (or a package short name).

    Parameters
    ----------
    name : str
        A class of :mod:`braindecode.models` (``"EEGNet"``) or a name of
        :func:`make_model` (``"eegnet"``).

    Returns
    -------
    cls : type
        The class.
    """
    mod = import_optional("braindecode.models")
    name = MODEL_NAMES.get(name.lower(), name)
    classes = {
        key: obj
        for key in dir(mod)
        if isinstance(obj := getattr(mod, key), type)
        and issubclass(obj, torch.nn.Module)
    }
    if name not in classes:
        near = difflib.get_close_matches(name, classes, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(near)}?" if near else "e.g. EEGNet"
        raise ValueError(
            f"--model-class {name} is not a model of braindecode.models; {hint}"
        )
    return classes[name]


def _is_torchscript(fname):
    """True for an archive written by ``torch.jit.save``."""
    try:
        with zipfile.ZipFile(fname) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def _is_safetensors(fname):
    """True for a safetensors file (an 8-byte header length, then JSON)."""
    with open(fname, "rb") as fid:
        head = fid.read(9)
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < size < Path(fname).stat().st_size


def _first_line(exp, n=160):
    return (str(exp).strip().splitlines() or [""])[0][:n]


def _read_weights(fname):
    """A state dict from a safetensors file or a ``torch.save`` file."""
    if _is_safetensors(fname):
        # skorch's save_params(use_safetensors=True) and model.safetensors
        load_file = import_optional("safetensors.torch").load_file
        try:
            return load_file(str(fname), device="cpu")
        except Exception as exp:
            raise ValueError(
                f"{fname} looks like a safetensors file but cannot be read "
                f"({type(exp).__name__}: {_first_line(exp)}); write it again."
            ) from None
    try:
        state = torch.load(fname, map_location="cpu", weights_only=True)
    except Exception as exp:  # pickled objects, truncated files, not torch
        raise ValueError(
            f"{fname} is not a model file written by "
            "mne_freqmask.models.save_model, torch.jit.save, "
            "torch.save(model.state_dict()) or skorch's net.save_params "
            f"(torch.load(weights_only=True): {type(exp).__name__}: "
            f"{_first_line(exp)}); a whole pickled model is not loaded "
            "(unpickling runs arbitrary code): save model.state_dict() or "
            "torch.jit.save(torch.jit.script(model), fname)."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        if "init_args" not in state:
            state = state["state_dict"]  # {"state_dict": ..., ...} checkpoints
    return state


def _kw_text(kwargs):
    return ",".join(f"{k}={v}" for k, v in kwargs.items())


def _load_weights(net, state, fname, settings):
    try:
        net.load_state_dict(state)
    except RuntimeError as exp:
        lines = [line.strip() for line in str(exp).strip().splitlines() if line]
        detail = " ".join(lines[1:3])[:300]
        raise ValueError(
            f"{fname}: the weights do not fit {type(net).__name__}({settings}) "
            f"({detail}); give the settings the model was trained with in "
            "--model-kwargs."
        ) from None
    return net


def _build(cls, kwargs, fname, state):
    try:
        net = cls(**kwargs)
    except (TypeError, ValueError) as exp:
        raise ValueError(
            f"{cls.__name__}(**{kwargs}) failed ({_first_line(exp, 300)}); give "
            "its settings with --model-kwargs, e.g. "
            "n_chans=64,n_outputs=2,n_times=481."
        ) from None
    return _load_weights(net, state, fname, _kw_text(kwargs))


def _hub_files(path):
    """``(folder, weights file)`` of a hub layout, or None when not one."""
    if path.is_dir():
        folder, weights = path, None
    elif (
        path.name in (HUB_CONFIG,) + HUB_WEIGHTS
        and (path.parent / HUB_CONFIG).is_file()
    ):
        folder = path.parent
        weights = path if path.name in HUB_WEIGHTS else None
    else:
        return None
    if weights is None:
        found = [folder / w for w in HUB_WEIGHTS if (folder / w).is_file()]
        if not (folder / HUB_CONFIG).is_file() or not found:
            have = sorted(p.name for p in folder.iterdir())[:8]
            raise ValueError(
                f"{folder} is a folder but not a model folder: {_FOLDER_FIX}; "
                f"it holds {have or 'nothing'}. A single model file is given by "
                "its own path."
            )
        weights = found[0]
    return folder, weights


def _hub_class(folder, config):
    """The class name of a hub folder: the model card's tags (README.md).

    braindecode 1.8.1 writes no class name into config.json; its hub mixin
    tags the model card with ``["braindecode", <class name>]``.
    """
    card = folder / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        front = text.split("---")[1] if text.startswith("---") else ""
        tags = re.findall(r"^\s*-\s*([A-Za-z_][\w]*)\s*$", front, re.M)
        classes = set(dir(import_optional("braindecode.models")))
        names = [t for t in tags if t in classes and t != "braindecode"]
        if names:
            return names[0]
    raise ValueError(
        f"{folder / HUB_CONFIG} does not name the model's class (braindecode "
        "writes it only as a tag of the model card README.md); pass it: "
        "--model-class EEGNet (model_class_name='EEGNet')."
    )


def _load_hub(folder, weights, model_class_name, model_kwargs):
    try:
        config = json.loads((folder / HUB_CONFIG).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exp:
        raise ValueError(
            f"{folder / HUB_CONFIG} is not valid JSON ({_first_line(exp)}); "
            f"{_FOLDER_FIX}."
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            f"{folder / HUB_CONFIG} must hold a JSON object; {_FOLDER_FIX}."
        )
    if model_kwargs:
        raise ValueError(
            f"{folder} holds its settings in {HUB_CONFIG}; drop --model-kwargs."
        )
    cls = model_class(model_class_name or _hub_class(folder, config))
    if not callable(getattr(cls, "from_config", None)):
        raise ValueError(
            f"{cls.__name__} has no from_config (not a braindecode model); "
            "save it with torch.jit.save instead."
        )
    settings = {k: v for k, v in config.items() if k != "chs_info"}
    try:
        with warnings.catch_warnings():
            # braindecode's note that it turns the JSON chs_info back into
            # MNE's (numpy "loc"): expected when reading a hub folder
            warnings.filterwarnings("ignore", "Modifying chs_info argument")
            net = cls.from_config(config)
    except (TypeError, ValueError) as exp:
        raise ValueError(
            f"{cls.__name__}.from_config({folder / HUB_CONFIG}) failed "
            f"({_first_line(exp, 300)}); is {cls.__name__} the class of this "
            "folder (--model-class)?"
        ) from None
    return _load_weights(net, _read_weights(weights), weights, _kw_text(settings))


def load_any_model(fname, *, model_class_name=None, model_kwargs=None, scale=None):
    """Load a model from any file or folder the package reads.

    The one model loader (the command line and
    :func:`mne_freqmask.explain_files` use it).

    Parameters
    ----------
    fname : path-like
        A file of :func:`save_model`; a TorchScript archive; a braindecode
        hub folder (``config.json`` + ``model.safetensors`` or
        ``pytorch_model.bin``) or one of its files; or (with
        ``model_class_name``) weights without their class:
        ``torch.save(model.state_dict())`` or skorch's
        ``net.save_params(f_params=...)``, safetensors included.
    model_class_name : str | None
        The braindecode class of the weights (``"EEGNet"``); for a hub folder,
        its class when the model card does not name it.
    model_kwargs : dict | None
        The class's constructor arguments (not for hub folders, whose
        ``config.json`` holds them).
    scale : float | None
        ``--input-scale``: the factor the model's training data were
        multiplied by (``1e6`` for microvolts); the model is wrapped as
        ``Sequential(InputScaler(scale), model)``. Not for files of
        :func:`save_model`, which store their own.

    Returns
    -------
    model : torch.nn.Module
        The model, in eval mode, on the CPU.
    kind : str
        ``"package file"``, ``"TorchScript"``, ``"hub folder"`` or
        ``"state dict"``.
    """
    fname = Path(fname)
    if not fname.exists():
        raise FileNotFoundError(f"{fname} does not exist.")
    if model_kwargs and model_class_name is None:
        raise ValueError(
            "--model-kwargs needs --model-class (the braindecode class whose "
            "state dict the model file holds)."
        )
    if scale is not None and not float(scale) > 0:
        raise ValueError(f"--input-scale must be > 0, got {scale}.")
    hub = _hub_files(fname)
    if hub is not None:
        net, kind = _load_hub(*hub, model_class_name, model_kwargs), "hub folder"
    elif _is_torchscript(fname):
        if model_class_name is not None:
            raise ValueError(
                f"{fname} is a TorchScript model, which holds its own class; "
                "drop --model-class and --model-kwargs."
            )
        try:
            with warnings.catch_warnings():
                # torch 2.14 deprecates TorchScript; the file is still read
                warnings.filterwarnings(
                    "ignore", "`torch.jit.load` is deprecated", FutureWarning
                )
                net = torch.jit.load(fname, map_location="cpu")
            kind = "TorchScript"
        except RuntimeError as exp:
            raise ValueError(
                f"{fname} looks like TorchScript but cannot be loaded "
                f"({_first_line(exp, 200)}); save it again with "
                "torch.jit.save(torch.jit.script(model), fname)."
            ) from None
    else:
        state = _read_weights(fname)
        if isinstance(state, dict) and "init_args" in state:
            if model_class_name is not None or scale is not None:
                raise ValueError(
                    f"{fname} was written by mne_freqmask.models.save_model, "
                    "which stores the class and the input scale; drop "
                    "--model-class, --model-kwargs and --input-scale."
                )
            return load_model(fname), "package file"
        if model_class_name is None:
            raise ValueError(
                f"{fname} holds a state dict (weights without the model's "
                "class); pass --model-class NAME --model-kwargs "
                "n_chans=...,n_outputs=...,n_times=... (e.g. --model-class "
                "EEGNet), or save the model with torch.jit.save."
            )
        cls = model_class(model_class_name)
        net, kind = _build(cls, dict(model_kwargs or {}), fname, state), "state dict"
    if scale is not None:
        net = torch.nn.Sequential(InputScaler(float(scale)), net)
    return net.eval(), kind
