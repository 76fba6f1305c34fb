"""What ``mne-freqmask explain`` reads from the command line.

Pure parsers of the typed options (``--bands``, ``--picks``, ``--param``,
``--model-kwargs``, ``--time-windows``). Models are read by the library's one
loader, :func:`mne_freqmask.models.load_any_model`. Every user mistake raises
``ValueError`` (or ``FileNotFoundError``) with one line that names the fix;
:func:`mne_freqmask.cli.main` prints it and exits 2.
"""

import contextlib
import json
import re
import warnings
from pathlib import Path

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_BAND = re.compile(rf"^(?:([^:,=\s]+):)?({_NUMBER})-({_NUMBER})$")
_BANDS_FIX = (
    'give an int (e.g. 10), "canonical", or name:fmin-fmax pairs separated by '
    "commas (e.g. mu:8-13,beta:13-30)"
)


def parse_bands(text):
    """``--bands``: an int, ``"canonical"`` or ``"mu:8-13,beta:13-30"`` (a
    pair without a name, ``8-13``, is named ``"8-13 Hz"``), as the ``bands``
    of :func:`mne_freqmask.explain`."""
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
    """``--time-windows``: ``LENGTH,STEP`` in seconds (``0.5,0.25``), ``auto``
    or None, as the ``time_windows`` of :func:`mne_freqmask.explain`, its form
    checked (two positive numbers, the step at most half the length); the
    epochs' own sampling decides the rest."""
    from mne_freqmask.spectral import check_time_windows

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
    return check_time_windows(windows)  # the rest of explain's rule


def explainer_options(method, fname, bands, picks):
    """``--explainer``, ``--bands`` and ``--picks`` read together.

    Returns ``(method_kw, bands, picks)``: ``explainer=`` (a
    :class:`~mne_freqmask.FreqMaskExplainer` read from ``fname``) for
    ``--method freqmask_amortised``; the explainer's bands and picks are the
    defaults, otherwise 10 bands and the data channels.
    """
    if fname is None and method == "freqmask_amortised":
        raise ValueError(
            "--method freqmask_amortised needs --explainer FILE, a "
            "FreqMaskExplainer saved with explainer.save(FILE)."
        )
    if fname is not None and method != "freqmask_amortised":
        raise ValueError(
            f"--explainer is for --method freqmask_amortised, not {method}; add "
            "--method freqmask_amortised or drop --explainer."
        )
    picks = parse_picks(picks)
    if fname is None:
        return {}, parse_bands("10" if bands is None else bands), picks
    from mne_freqmask.amortised import read_freqmask_explainer

    explainer = read_freqmask_explainer(fname, verbose=False)
    return (
        dict(explainer=explainer),
        explainer.grid.bands if bands is None else parse_bands(bands),
        explainer.picks.tolist() if picks is None else picks,
    )


def explain_options(args):
    """The one translation of ``explain``'s parsed options into keyword
    arguments, for one epochs file (:func:`mne_freqmask.explain`) and many
    (:func:`mne_freqmask.explain_files`, :func:`mne_freqmask.explain_bids`).

    Returns ``(model_options, explain_kw)``: the options of
    :func:`mne_freqmask.models.load_any_model`, and ``method``, ``bands``,
    ``picks``, ``device``, ``time_windows``, ``random_state``, ``reference``
    (the epochs file, or None) and the method's parameters (``--param``,
    ``--n-steps``, ``--objective``, ``--explainer``).
    """
    time_windows = parse_time_windows(args.time_windows)
    if time_windows is not None:
        from mne_freqmask.methods._registry import check_short_time

        check_short_time(args.method)  # before the model is loaded
    method_kw = parse_pairs(args.param, "--param")
    # the method parameters with an option of their own
    for key, option in (("n_steps", "--n-steps"), ("objective", "--objective")):
        value = getattr(args, key)
        if value is None:
            continue
        if method_kw.get(key, value) != value:
            raise ValueError(f"{option} and --param {key}= differ; give one.")
        method_kw[key] = value
    extra, bands, picks = explainer_options(
        args.method, args.explainer, args.bands, args.picks
    )
    if args.reference is not None and not Path(args.reference).is_file():
        raise FileNotFoundError(f"--reference {args.reference} does not exist.")
    method_kw.update(extra)
    model_options = dict(
        model_class_name=args.model_class,
        model_kwargs=parse_model_kwargs(args.model_kwargs),
        scale=args.input_scale,
    )
    explain_kw = dict(
        method=args.method,
        bands=bands,
        picks=picks,
        device=args.device,
        time_windows=time_windows,
        random_state=args.seed,
        reference=args.reference,
        **method_kw,
    )
    return model_options, explain_kw


@contextlib.contextmanager
def one_class_stops(kind):
    """Stop (exit 2, before the fit) on a model that predicts one class on
    data that look like volts, when it does not start with ``InputScaler``.

    :func:`mne_freqmask.explain` warns before its fit; a command cannot ask,
    so the warning becomes an error that names the command's fix
    (``--input-scale 1e6``). A model that predicts one class on data of
    another scale only gets the warning: epochs of one class (``epochs
    ["left"]``) are a legitimate input on which a good model predicts one
    class.
    """
    from mne_freqmask._explain import ONE_CLASS, UNITS_HINT

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "error",
            "(?s)" + re.escape(ONE_CLASS) + ".*" + re.escape(UNITS_HINT.strip()),
            RuntimeWarning,
        )
        try:
            yield
        except RuntimeWarning as exp:
            text = " ".join(str(exp).split())
            if not text.startswith(ONE_CLASS):
                raise
            said, units, _ = text.partition(UNITS_HINT)
            fix = (
                " If the model was trained on microvolts (epochs.get_data() * "
                "1e6), pass --input-scale 1e6"
                + (
                    " (or save it with make_model(..., input_scale=1e6))"
                    if kind == "package file"
                    else ""
                )
                + "."
                if units
                else ""
            )
            raise ValueError(f"{said} Stopped before the fit.{fix}") from None


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
