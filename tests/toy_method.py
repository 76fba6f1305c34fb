"""A toy explanation method, as a user (or a new built-in) writes one.

The whole method: this file (the function and its spec) and one call,
``register_method(band_power.spec)`` (``test_method_contract.py``), after
which ``explain(method="toy_band_power")`` runs it, and the contract test
holds it to what its spec declares.
"""

import numpy as np

from mne_freqmask.methods import MethodResult, iter_chunks, method_spec


@method_spec(
    name="toy_band_power",
    summary="the mean spectral power of each cell, to the power ``exponent``",
    fast_kwargs={"exponent": 1.0},
)
def band_power(inp, grid, model, *, device, chunk_size, random_state=None,
               exponent=0.5):  # fmt: skip
    """Mean rfft power of each channel x band cell, to the power ``exponent``.

    The model is not used; ``random_state`` neither (deterministic).
    """
    out = np.empty((inp.n_epochs, len(inp.picks), grid.n_bands), np.float32)
    for sl, x in iter_chunks(inp, chunk_size, model, device, "Toy chunks"):
        xp = x[:, inp.picks].double().cpu().numpy() / inp.scale
        power = np.abs(np.fft.rfft(xp, axis=-1)) ** 2
        out[sl] = grid.collapse(power**exponent, np.mean)
    return MethodResult(out, dict(exponent=float(exponent)))
