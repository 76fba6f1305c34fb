"""What ``mne-freqmask explain`` reads from the command line and from disk.

Pure parsers of the typed options (``--bands``, ``--picks``, ``--param``,
``--model-kwargs``, ``--time-windows``) and the model loader of the three file
kinds: a file of :func:`mne_freqmask.models.save_model`, a TorchScript archive
(``torch.jit.save``) and a plain state dict with ``--model-class``. Every
user mistake raises ``ValueError`` (or ``FileNotFoundError``) with one line
that names the fix; :func:`mne_freqmask.cli.main` prints it and exits 2.
"""

import difflib
import json
import re
import warnings
import zipfile
from pathlib import Path

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_BAND = re.compile(rf"^(?:([^:,=\s]+):)?({_NUMBER})-({_NUMBER})$")
_BANDS_FIX = (
    'give an int (e.g. 10), "canonical", or name:fmin-fmax pairs separated by '
    "commas (e.g. mu:8-13,beta:13-30)"
)


def parse_bands(text):
    """``--bands``: an int, ``"canonical"`` or ``"mu:8-13,beta:13-30"``.

    Parameters
    ----------
    text : str
        The option's value. A pair without a name (``8-13``) is named after
        its edges (``"8-13 Hz"``).

    Returns
    -------
    bands : int | str | dict
        What :func:`mne_freqmask.explain` takes as ``bands``.
    """
    text = str(text).strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError(f"--bands {text}: the number of bands must be >= 1.")
        return int(text)
    if text == "canonical":
        return text
    bands = {}
    for part in text.split(","):
        match = _BAND.match(part.strip())
        if match is None:
            raise ValueError(f"--bands: cannot read {part.strip()!r}; {_BANDS_FIX}.")
        name, fmin, fmax = match.group(1), float(match.group(2)), float(match.group(3))
        if fmin >= fmax:
            raise ValueError(
                f"--bands: band {part.strip()!r} must have fmin < fmax (e.g. mu:8-13)."
            )
        name = name or f"{fmin:g}-{fmax:g} Hz"
        if name in bands:
            raise ValueError(f"--bands: band name {name!r} is given twice.")
        bands[name] = (fmin, fmax)
    return bands


def parse_value(text):
    """A typed value: int, float, bool (true/false), None (none/null) or str."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_pairs(items, flag):
    """``key=value`` items -> dict with typed values (:func:`parse_value`)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(
                f"{flag}: cannot read {item!r}; write key=value (e.g. {flag} "
                "n_steps=50)."
            )
        if key in out:
            raise ValueError(f"{flag}: {key} is given twice.")
        out[key] = parse_value(value)
    return out


def parse_model_kwargs(text):
    """``--model-kwargs``: ``n_chans=64,n_outputs=2`` or a JSON object."""
    if text is None:
        return {}
    if text.lstrip().startswith("{"):
        try:
            out = json.loads(text)
        except json.JSONDecodeError as exp:
            raise ValueError(f"--model-kwargs is not valid JSON ({exp}).") from None
        if not isinstance(out, dict):
            raise ValueError("--model-kwargs JSON must be an object {...}.")
        return out
    return parse_pairs([p for p in text.split(",") if p.strip()], "--model-kwargs")


def parse_picks(text):
    """``--picks``: a channel type or name, names / indices separated by commas."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("--picks is empty; give e.g. eeg or C3,Cz,C4.")
    if all(p.isdigit() for p in parts):
        return [int(p) for p in parts]
    return parts[0] if len(parts) == 1 else parts


def parse_time_windows(text):
    """``--time-windows``: ``LENGTH,STEP`` in seconds (``0.5,0.25``) or ``auto``.

    Parameters
    ----------
    text : str | None
        The option's value (None: the option is not given).

    Returns
    -------
    time_windows : None | tuple of float | "auto"
        What :func:`mne_freqmask.explain` takes as ``time_windows``, its form
        checked (two positive numbers, the step at most half the length);
        the epochs' own sampling decides the rest.
    """
    from mne_freqmask.spectral import short_time_grid

    if text is None:
        return None
    text = str(text).strip()
    if text.lower() == "auto":
        return "auto"
    parts = [p.strip() for p in text.split(",")]
    fix = (
        "give LENGTH,STEP in seconds (e.g. --time-windows 0.5,0.25: 0.5 s "
        "windows every 0.25 s) or auto (a quarter of the epoch, half a window "
        "apart)"
    )
    try:
        windows = tuple(float(p) for p in parts)
    except ValueError:
        windows = ()
    if len(windows) != 2 or not all(v > 0 for v in windows):
        raise ValueError(f"--time-windows: cannot read {text!r}; {fix}.")
    if windows[1] > windows[0] / 2:
        raise ValueError(
            f"--time-windows {text}: the step must be at most half the window "
            f"({windows[0] / 2:g} s) so that the inverse STFT exists (NOLA); "
            f"{fix}."
        )
    # the rest of explain's rule, on a fine sampling (any epoch length)
    short_time_grid(1e4, 10**7, 1, windows)
    return windows


def _is_torchscript(fname):
    """True for an archive written by ``torch.jit.save``."""
    try:
        with zipfile.ZipFile(fname) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def model_class(name):
    """The braindecode model class called ``name`` (or a package short name)."""
    import torch

    from mne_freqmask.models import MODEL_NAMES
    from mne_freqmask.utils._deps import import_optional

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


def _load_state_dict(fname):
    import torch

    try:
        state = torch.load(fname, map_location="cpu", weights_only=True)
    except Exception as exp:  # pickled objects, truncated files, not torch
        first = (str(exp).strip().splitlines() or [""])[0][:160]
        raise ValueError(
            f"{fname} is not a model file written by "
            "mne_freqmask.models.save_model, torch.jit.save or "
            "torch.save(model.state_dict()) (torch.load(weights_only=True): "
            f"{type(exp).__name__}: {first}); a whole pickled model is not "
            "loaded (unpickling runs arbitrary code): save model.state_dict() "
            "or torch.jit.save(torch.jit.script(model), fname)."
        ) from None
    return state


def _build(cls, kwargs, fname, state):
    try:
        net = cls(**kwargs)
    except (TypeError, ValueError) as exp:
        first = (str(exp).strip().splitlines() or [""])[0]
        raise ValueError(
            f"{cls.__name__}(**{kwargs}) failed ({first}); give its settings "
            "with --model-kwargs, e.g. n_chans=64,n_outputs=2,n_times=481."
        ) from None
    try:
        net.load_state_dict(state)
    except RuntimeError as exp:
        lines = [line.strip() for line in str(exp).strip().splitlines() if line]
        detail = " ".join(lines[1:3])[:300]
        raise ValueError(
            f"{fname}: the weights do not fit {cls.__name__}({_kw_text(kwargs)}) "
            f"({detail}); give the settings the model was trained with in "
            "--model-kwargs."
        ) from None
    return net


def _kw_text(kwargs):
    return ",".join(f"{k}={v}" for k, v in kwargs.items())


def load_any_model(fname, *, model_class_name=None, model_kwargs=None, scale=None):
    """Load the model of ``mne-freqmask explain`` (eval mode, on the CPU).

    Parameters
    ----------
    fname : path-like
        A file of :func:`mne_freqmask.models.save_model`, a TorchScript
        archive, or (with ``model_class_name``) a state dict.
    model_class_name : str | None
        braindecode class whose state dict ``fname`` holds.
    model_kwargs : dict | None
        Its constructor arguments.
    scale : float | None
        ``--input-scale``: the factor the model's training data were
        multiplied by (``1e6`` for microvolts); the model is wrapped as
        ``Sequential(InputScaler(scale), model)``. Not for files of
        ``save_model``, which store their own.

    Returns
    -------
    model : torch.nn.Module
        The model, in eval mode.
    kind : str
        ``"package file"``, ``"TorchScript"`` or ``"state dict"``.
    """
    import torch

    from mne_freqmask.models import InputScaler, load_model

    fname = Path(fname)
    if not fname.is_file():
        raise FileNotFoundError(f"{fname} does not exist.")
    if model_kwargs and model_class_name is None:
        raise ValueError(
            "--model-kwargs needs --model-class (the braindecode class whose "
            "state dict the model file holds)."
        )
    if scale is not None and not float(scale) > 0:
        raise ValueError(f"--input-scale must be > 0, got {scale}.")
    if _is_torchscript(fname):
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
            first = (str(exp).strip().splitlines() or [""])[0][:200]
            raise ValueError(
                f"{fname} looks like TorchScript but cannot be loaded ({first}); "
                "save it again with torch.jit.save(torch.jit.script(model), fname)."
            ) from None
    else:
        state = _load_state_dict(fname)
        is_package = isinstance(state, dict) and "init_args" in state
        if is_package:
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
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]  # {"state_dict": ..., ...} checkpoints
        cls = model_class(model_class_name)
        net, kind = _build(cls, dict(model_kwargs or {}), fname, state), "state dict"
    if scale is not None:
        net = torch.nn.Sequential(InputScaler(float(scale)), net)
    return net.eval(), kind


def check_out(path, suffixes, overwrite, flag):
    """An output path: suffix checked, not overwritten unless asked, folder there."""
    path = Path(path).expanduser().resolve()
    if path.suffix not in suffixes:
        raise ValueError(
            f"{flag} must end in {' or '.join(suffixes)}, got {path.name}."
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Folder {path.parent} does not exist.")
    return path
