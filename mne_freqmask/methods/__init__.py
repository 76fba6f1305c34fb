"""Explanation methods: the registry behind ``explain(method=...)``.

A method is one function with one :class:`MethodSpec` (its name, one-line
summary, whether it runs short-time, needs labels, is deterministic or seeded,
and the parameters that make it fast in tests), declared on the function with
:func:`method_spec`, in one file of this folder: :mod:`.freqmask`,
:mod:`.easypeasi`, :mod:`.gradients`, :mod:`.captum_methods`, :mod:`.dft_lrp`,
:mod:`.lrp`, :mod:`.flextime`, :mod:`.freqrise`, :mod:`.amortised`.
:data:`METHODS` maps each name to its function, :func:`get_spec` gives the
spec and :func:`get_method` imports the function on first use. ``explain``'s
documentation of ``method`` is built from the specs, and the contract test
(``tests/test_method_contract.py``) runs every registered method.

Adding a method
---------------
A built-in method is its file plus its module's name in
``_registry.BUILTIN_MODULES``. One of your own is a function with the method
contract, registered with its spec::

    from mne_freqmask.methods import (
        MethodResult, chunking, method_spec, register_method
    )

    @method_spec(name="my_method", summary="what it computes",
                 fast_kwargs={"my_param": 0.5})
    @chunking(max_size=256)  # optional: memory per epoch, largest chunk
    def my_method(run, *, my_param=1.0):
        out = run.new_map()  # (n_epochs, n_picked_channels, n_bands), float32
        for sl, x in run.chunks():
            ...  # x: the chunk's epochs, a tensor on run.device
            out[sl] = ...
        return MethodResult(out, dict(my_param=my_param))

    register_method(my_method.spec)  # or register_method("my_method", my_method)
    sal = mne_freqmask.explain(epochs, model, method="my_method", my_param=2.0)

``run`` is a :class:`MethodRun`: ``run.inp`` an
:class:`mne_freqmask._inputs.ExplainInput` (``inp.x[sl]`` reads epochs,
``inp.picks`` the explained channels, ``inp.target`` the class to explain or
None), ``run.grid`` a :class:`~mne_freqmask.FrequencyGrid`, ``run.model``
already in eval mode, frozen and on ``run.device``, ``run.chunk_size`` and
``run.random_state``. Keyword arguments of ``explain`` that are not its own
go to the method and are checked against the function's signature.
"""

from mne_freqmask.methods._base import (
    MethodResult,
    MethodRun,
    MethodSpec,
    chunking,
    iter_chunks,
    method_spec,
)
from mne_freqmask.methods._registry import (
    METHODS,
    SHORT_TIME_METHODS,
    get_method,
    get_spec,
    register_method,
)

__all__ = [
    "METHODS",
    "MethodResult",
    "MethodRun",
    "MethodSpec",
    "SHORT_TIME_METHODS",
    "chunking",
    "get_method",
    "get_spec",
    "iter_chunks",
    "method_spec",
    "register_method",
]
