"""A toy explanation method, as a user (or a new built-in) writes one.

The whole method: this file (the function and its spec) and one call,
``register_method(band_power.spec)`` (``test_method_contract.py``), after
which ``explain(method="toy_band_power")`` runs it, and the contract test
holds it to what its spec declares.
"""

import numpy as np

from mne_freqmask.methods import MethodResult, method_spec


@method_spec(
    name="toy_band_power",
    summary="the mean spectral power of each cell, to the power ``exponent``",
    fast_kwargs={"exponent": 1.0},
)
def band_power(run, *, exponent=0.5):
    """Mean rfft power of each channel x band cell, to the power ``exponent``.

    The model is not used; ``run.random_state`` neither (deterministic).
    """
    out = run.new_map()
    for sl, x in run.chunks("Toy chunks"):
        xp = x[:, run.inp.picks].double().cpu().numpy() / run.inp.scale
        power = np.abs(np.fft.rfft(xp, axis=-1)) ** 2
        out[sl] = run.grid.collapse(power**exponent, np.mean)
    return MethodResult(out, dict(exponent=float(exponent)))
