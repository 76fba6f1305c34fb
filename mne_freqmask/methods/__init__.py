"""Explanation methods: the registry behind ``explain(method=...)``.

:data:`METHODS` maps each method name to its function (one module each:
:mod:`.freqmask`, :mod:`.easypeasi`, :mod:`.gradients`,
:mod:`.captum_methods`, :mod:`.dft_lrp`, :mod:`.lrp`); the function has the
method's name (``freqmask.freqmask``, ``lrp.lrp``, ...). :func:`get_method`
imports one on first use.

Adding a method
---------------
Write a function with the method contract and register it::

    from mne_freqmask.methods import (
        MethodResult, chunking, iter_chunks, register_method
    )

    @chunking(max_size=256)  # optional: memory per epoch, largest chunk
    def my_method(inp, grid, model, *, device, chunk_size, random_state=None,
                  my_param=1.0):
        out = np.empty((inp.n_epochs, len(inp.picks), grid.n_bands), np.float32)
        for sl, x in iter_chunks(inp, chunk_size, model, device):
            ...  # x: the chunk's epochs, a tensor on device
            out[sl] = ...
        return MethodResult(out, dict(my_param=my_param))

    register_method("my_method", my_method)
    sal = mne_freqmask.explain(epochs, model, method="my_method", my_param=2.0)

``inp`` is an :class:`mne_freqmask._inputs.ExplainInput` (``inp.x[sl]``
reads epochs, ``inp.picks`` the explained channels, ``inp.target`` the class
to explain or None), ``grid`` a :class:`~mne_freqmask.FrequencyGrid`; the
model is already in eval mode, frozen and on ``device``. Keyword arguments
of ``explain`` that are not its own go to the method and are checked against
the function's signature. A built-in method is one file in this folder plus
one line in :data:`METHODS`.
"""

from mne_freqmask.methods._base import MethodResult, chunking, iter_chunks
from mne_freqmask.methods._registry import (
    METHODS,
    SHORT_TIME_METHODS,
    get_method,
    register_method,
)

__all__ = [
    "METHODS",
    "MethodResult",
    "SHORT_TIME_METHODS",
    "chunking",
    "get_method",
    "iter_chunks",
    "register_method",
]
