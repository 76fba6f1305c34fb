"""The method registry: a method is one :class:`MethodSpec`, in its own file.

A built-in method is a file of this folder, named in :data:`BUILTIN_MODULES`,
that defines the method's function and declares its spec on it::

    @method_spec(name="lrp", summary="...", short_time=True)
    def lrp(run, *, rule="epsilon", ...):

The specs are read from the files' source (:mod:`ast`), not by importing
them: a method's module imports torch, and the registry must stay light
(``import mne_freqmask``, the command line's parser and ``explain``'s
docstring, which :func:`method_docs` builds from the specs, read it). The
function is imported on first use (:func:`get_method`). The contract test
(``tests/test_method_contract.py``) checks that what is read equals what the
function carries (``func.spec``), and runs every registered method.

:data:`METHODS` (name -> the function or ``"module:function"``) and
:data:`SHORT_TIME_METHODS` are live views of the registered specs.
"""

import ast
import inspect
import re
import textwrap
from collections.abc import MutableMapping
from pathlib import Path

from mne.utils import _check_option, _validate_type

from mne_freqmask.methods._base import (  # noqa: F401 (re-export)
    FIXED_ARGS,
    MethodResult,
    MethodSpec,
)

#: The files of this folder holding the built-in methods, in the order of
#: ``explain``'s documentation (each declares one method or more).
BUILTIN_MODULES = tuple(
    "freqmask easypeasi gradients captum_methods dft_lrp lrp flextime freqrise "
    "amortised".split()
)

_SPECS = {}  # name -> MethodSpec; filled by _specs() on first use


def read_specs(module):
    """The specs a method file declares, read from its source.

    Parameters
    ----------
    module : str
        A name of :data:`BUILTIN_MODULES` (a file of this folder).

    Returns
    -------
    specs : list of MethodSpec
        One per top-level function decorated with ``@method_spec(...)``, with
        ``func`` as ``"mne_freqmask.methods.<module>:<function>"``.
    """
    path = Path(__file__).with_name(f"{module}.py")
    text = path.read_text(encoding="utf-8")
    # parse only the decorated definitions' heads (a whole file costs ~5 ms):
    # from each top-level "@method_spec(" to the name of the def it decorates
    heads = re.findall(r"^@method_spec\(.*?^def \w+", text, re.M | re.S)
    tree = ast.parse("".join(f"{head}(): pass\n" for head in heads), str(path))
    specs = []
    for node in tree.body:
        for deco in getattr(node, "decorator_list", ()):
            if getattr(getattr(deco, "func", None), "id", None) != "method_spec":
                continue
            where = f"{path.name}, method_spec of {node.name}"
            kw = dict(func=f"{__package__}.{module}:{node.name}")
            for item in deco.keywords:
                try:
                    kw[item.arg] = ast.literal_eval(item.value)
                except ValueError:
                    raise ValueError(
                        f"method_spec({item.arg}=...) must be a literal ({where}): "
                        "the registry reads the specs without importing the methods."
                    ) from None
            specs.append(MethodSpec(**kw))
    return specs


def _specs():
    """The registered specs (the built-in ones read on first use)."""
    if not _SPECS:
        for module in BUILTIN_MODULES:
            for spec in read_specs(module):
                _SPECS[spec.name] = spec
    return _SPECS


class _Functions(MutableMapping):
    """Name -> function (or ``"module:function"``) of the registered methods
    whose spec passes ``where``: a live view of the specs."""

    def __init__(self, where=None):
        self.where = where or (lambda spec: True)

    def _selected(self):
        return {n: spec for n, spec in _specs().items() if self.where(spec)}

    def __getitem__(self, name):
        return self._selected()[name].func

    def __setitem__(self, name, func):
        register_method(name, func, overwrite=True)

    def __delitem__(self, name):
        del _specs()[name]

    def __iter__(self):
        return iter(self._selected())

    def __len__(self):
        return len(self._selected())

    def __repr__(self):
        return repr(dict(self))


#: Method names of ``explain(method=...)`` -> the function, or
#: ``"module:function"`` for a method imported on first use (a view of the
#: registered specs: :func:`get_spec` gives the whole spec).
METHODS = _Functions()

#: Methods that explain the short-time Fourier transform too
#: (``explain(..., time_windows=...)``; a view of the specs).
SHORT_TIME_METHODS = _Functions(lambda spec: spec.short_time).keys()


def get_spec(name):
    """Return the :class:`MethodSpec` of the method ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`.

    Returns
    -------
    spec : MethodSpec
        The method's spec.
    """
    _check_option("method", name, sorted(_specs()))
    return _specs()[name]


def get_method(name):
    """Return the function of a registered method, imported on first use.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`.

    Returns
    -------
    func : callable
        ``get_spec(name).function()``.
    """
    return get_spec(name).function()


def method_parameters(func):
    """The parameters of a method function (its signature less
    :data:`~mne_freqmask.methods._base.FIXED_ARGS`)."""
    return [p for p in inspect.signature(func).parameters if p not in FIXED_ARGS]


def check_method_kw(name, method_kw):
    """Raise, naming what it accepts, for a parameter ``name`` does not take."""
    allowed = sorted(method_parameters(get_method(name)))
    unknown = sorted(set(method_kw) - set(allowed))
    if unknown:
        raise TypeError(
            f"Unknown parameter(s) {unknown} for method={name!r}; it accepts "
            f"{allowed}. Known methods: {sorted(_specs())}."
        )


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


def register_method(name, func=None, *, overwrite=False, short_time=None):
    """Add an explanation method.

    Parameters
    ----------
    name : str | MethodSpec
        The name for ``explain(method=name)``, or the method's whole spec
        (then ``func`` and ``short_time`` are not given).
    func : callable | str
        The method, or ``"module:function"`` to import it on first use. It is
        called as ``func(run, **method_kw)`` with a
        :class:`~mne_freqmask.methods.MethodRun` and returns a
        :class:`MethodResult`
        (see ``mne_freqmask.methods``); decorate it with
        :func:`~mne_freqmask.methods.chunking` to declare its memory per
        epoch.
    overwrite : bool
        Replace a method already registered under ``name``.
    short_time : bool | None
        Whether the method also explains short-time grids
        (:class:`~mne_freqmask.spectral.ShortTimeGrid`, ``explain(...,
        time_windows=...)``), i.e. it reaches the spectrum only through the
        grid's transforms (``grid.spectrum`` / ``grid.inverse``) and its
        flat cells. None: False.

    Returns
    -------
    spec : MethodSpec
        The registered spec.
    """
    if isinstance(name, MethodSpec):
        if func is not None or short_time is not None:
            raise TypeError("Give a MethodSpec alone: func and short_time are in it.")
        spec = name
    else:
        _validate_type(name, str, "name")
        _validate_type(short_time, (bool, None), "short_time")
        spec = MethodSpec(name=name, func=func, short_time=bool(short_time))
    _validate_type(spec.name, str, "name")
    _validate_type(
        spec.func, (str, "callable"), "func", "callable or 'module:function'"
    )
    for flag in ("short_time", "needs_labels", "deterministic"):
        _validate_type(getattr(spec, flag), bool, flag)
    _validate_type(spec.fast_kwargs, dict, "fast_kwargs")
    if spec.name in _specs() and not overwrite:
        raise ValueError(
            f"A method named {spec.name!r} is already registered; pass "
            "overwrite=True to replace it."
        )
    if isinstance(spec.func, str):
        if spec.func.count(":") != 1:
            raise ValueError(f'func must be "module:function", got {spec.func!r}.')
    else:
        params = inspect.signature(spec.func).parameters
        missing = [arg for arg in FIXED_ARGS if arg not in params]
        if missing:
            raise TypeError(
                f"A method function must accept {list(FIXED_ARGS)}; "
                f"{getattr(spec.func, '__name__', spec.func)!r} lacks {missing}."
            )
        unknown = sorted(set(spec.fast_kwargs) - set(method_parameters(spec.func)))
        if unknown:
            raise TypeError(f"fast_kwargs {unknown} are not parameters of the method.")
    _specs()[spec.name] = spec
    return spec


def _indent(text, first="", rest="    "):
    return textwrap.fill(
        text,
        79 - len(rest),
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
    )


def method_docs():
    """The docdict entries of ``explain``'s method and its parameters.

    Built from the registered specs: one line per method (its summary, what
    it declares, a link to its function, whose docstring documents its
    parameters, as MNE's ``method_kw`` entries point to the functions).

    Returns
    -------
    entries : dict
        ``"method_explain"``, ``"method_kw_explain"`` and
        ``"short_time_methods"`` (an inline list).
    """
    specs = _specs()
    lines = [
        "method : str",
        _indent(
            "The explanation method, a key of :data:`mne_freqmask.methods.METHODS` "
            "(more can be added with :func:`mne_freqmask.methods.register_method`); "
            'default ``"freqmask"``. Each names its function, whose docstring '
            "documents its parameters (``**method_kw``):",
            "    ",
        ),
        "",
    ]
    for name, spec in specs.items():
        notes = [
            "short-time too" if spec.short_time else "whole epoch only",
            "needs labels" if spec.needs_labels else None,
            "deterministic" if spec.deterministic else "seeded by ``random_state``",
        ]
        text = (
            f'``"{name}"``: {spec.summary} ({", ".join(n for n in notes if n)}; '
            f"``{spec.path()}``)."
        )
        lines.append(_indent(text, "    - ", "      "))
    short = ", ".join(f'``"{n}"``' for n in sorted(SHORT_TIME_METHODS))
    method_kw = "\n".join(
        [
            "**method_kw",
            _indent(
                "Parameters of the method: those of its function (linked under "
                "``method``, with their defaults), checked against its signature.",
                "    ",
            ),
        ]
    )
    return dict(
        method_explain="\n".join(lines),
        method_kw_explain=method_kw,
        short_time_methods=short,
    )
