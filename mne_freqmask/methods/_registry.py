"""The method registry: a new method is one file plus one line here.

Each entry maps the name accepted by ``explain(method=...)`` to
``"module:function"`` (or, for a method added with :func:`register_method`,
to the function itself); the function has the registered name. It is
imported lazily and called as::

    func(inp, grid, model, *, device, chunk_size, random_state, **method_kw)

with ``inp`` an :class:`mne_freqmask._inputs.ExplainInput`, ``grid`` a
:class:`mne_freqmask.spectral.FrequencyGrid` and ``model`` already in eval mode,
frozen and on ``device``. It returns a :class:`MethodResult`.
"""

import importlib
import inspect

from mne.utils import _check_option, _validate_type

from mne_freqmask.methods._base import MethodResult  # noqa: F401 (re-export)

#: Method names of ``explain(method=...)`` -> ``"module:function"``.
METHODS = {
    "freqmask": "mne_freqmask.methods.freqmask:freqmask",
    "easypeasi": "mne_freqmask.methods.easypeasi:easypeasi",
    "amplitude_gradients": "mne_freqmask.methods.gradients:amplitude_gradients",
    "integrated_gradients": "mne_freqmask.methods.captum_methods:integrated_gradients",
    "ablation": "mne_freqmask.methods.captum_methods:ablation",
    "dft_lrp": "mne_freqmask.methods.dft_lrp:dft_lrp",
    "lrp": "mne_freqmask.methods.lrp:lrp",
    "flextime": "mne_freqmask.methods.flextime:flextime",
    "freqrise": "mne_freqmask.methods.freqrise:freqrise",
    "freqmask_amortised": "mne_freqmask.methods.amortised:freqmask_amortised",
}

#: Methods that explain the short-time Fourier transform too
#: (``explain(..., time_windows=...)``): they reach the spectrum only through
#: ``mne_freqmask._stft`` and its cells only through the grid's flat view.
SHORT_TIME_METHODS = {
    "freqmask",
    "amplitude_gradients",
    "integrated_gradients",
    "freqrise",
    "dft_lrp",
    "lrp",
}

#: The arguments every method function takes (the rest are method parameters).
FIXED_ARGS = ("inp", "grid", "model", "device", "chunk_size", "random_state")


def get_method(name):
    """Return the function implementing ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`.

    Returns
    -------
    func : callable
        The method's function, imported on first use.
    """
    _check_option("method", name, sorted(METHODS))
    entry = METHODS[name]
    if callable(entry):
        return entry
    module, func = entry.split(":")
    return getattr(importlib.import_module(module), func)


def check_short_time(name):
    """Raise, naming the methods that can, if ``name`` cannot run short-time.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`.
    """
    if name not in SHORT_TIME_METHODS:
        raise ValueError(
            f"method={name!r} explains the whole epoch only and cannot take "
            f"time_windows; the methods that can are {sorted(SHORT_TIME_METHODS)} "
            "(or pass time_windows=None)."
        )


def register_method(name, func, *, overwrite=False, short_time=False):
    """Add an explanation method to :data:`METHODS`.

    Parameters
    ----------
    name : str
        The name for ``explain(method=name)``.
    func : callable | str
        The method, or ``"module:function"`` to import it on first use. It is
        called as ``func(inp, grid, model, *, device, chunk_size,
        random_state, **method_kw)`` and returns a :class:`MethodResult`
        (see ``mne_freqmask.methods``); decorate it with
        :func:`~mne_freqmask.methods.chunking` to declare its memory per
        epoch.
    overwrite : bool
        Replace a method already registered under ``name``.
    short_time : bool
        Whether the method also explains short-time grids
        (:class:`~mne_freqmask.spectral.ShortTimeGrid`, ``explain(...,
        time_windows=...)``), i.e. it reaches the spectrum only through the
        grid's transforms (``mne_freqmask._stft``) and its flat cells.
    """
    _validate_type(name, str, "name")
    _validate_type(func, (str, "callable"), "func", "callable or 'module:function'")
    if name in METHODS and not overwrite:
        raise ValueError(
            f"A method named {name!r} is already registered; pass overwrite=True "
            "to replace it."
        )
    if isinstance(func, str):
        if func.count(":") != 1:
            raise ValueError(f'func must be "module:function", got {func!r}.')
    else:
        params = inspect.signature(func).parameters
        missing = [arg for arg in FIXED_ARGS if arg not in params]
        if missing:
            raise TypeError(
                f"A method function must accept {list(FIXED_ARGS)}; "
                f"{getattr(func, '__name__', func)!r} lacks {missing}."
            )
    _validate_type(short_time, bool, "short_time")
    METHODS[name] = func
    if short_time:
        SHORT_TIME_METHODS.add(name)
    else:
        SHORT_TIME_METHODS.discard(name)
