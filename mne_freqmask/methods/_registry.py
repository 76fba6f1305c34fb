"""The method registry: a new method is one file plus one line here.

Each entry maps the name accepted by ``explain(method=...)`` to
``"module:function"``. The function is imported lazily and called as::

    func(inp, grid, model, *, device, chunk_size, random_state, **method_kw)

with ``inp`` an :class:`mne_freqmask._inputs.ExplainInput`, ``grid`` a
:class:`mne_freqmask.spectral.FrequencyGrid` and ``model`` already in eval mode,
frozen and on ``device``. It returns a :class:`MethodResult`.
"""

import importlib
from dataclasses import dataclass, field

import numpy as np

#: Method names of ``explain(method=...)`` -> ``"module:function"``.
METHODS = {
    "freqmask": "mne_freqmask.methods.freqmask:fit_freqmask",
    "easypeasi": "mne_freqmask.methods.easypeasi:fit_easypeasi",
    "amplitude_gradients": "mne_freqmask.methods.gradients:fit_amplitude_gradients",
    "integrated_gradients": "mne_freqmask.methods.captum_methods:fit_integrated_grads",
    "ablation": "mne_freqmask.methods.captum_methods:fit_ablation",
    "dft_lrp": "mne_freqmask.methods.dft_lrp:fit_dft_lrp",
    "lrp": "mne_freqmask.methods.lrp:fit_lrp",
    "flextime": "mne_freqmask.methods.flextime:fit_flextime",
    "freqrise": "mne_freqmask.methods.freqrise:fit_freqrise",
}


@dataclass
class MethodResult:
    """What a method returns to :func:`mne_freqmask.explain`.

    Parameters
    ----------
    data : ndarray, shape (n_epochs, n_picked_channels, n_bands)
        Saliency of each channel x band cell of each epoch.
    params : dict
        The parameters used (JSON-like scalars, lists and strings).
    diagnostics : dict
        Per-epoch arrays (e.g. steps to convergence, final loss).
    """

    data: np.ndarray
    params: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)


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
    from mne.utils import _check_option

    _check_option("method", name, sorted(METHODS))
    module, func = METHODS[name].split(":")
    return getattr(importlib.import_module(module), func)
