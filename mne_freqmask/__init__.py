"""Explain end-to-end EEG deep-learning models in the frequency domain."""

__version__ = "0.1.0.dev0"

# Names that need torch are imported on first use, so that reading a saved
# saliency (``read_saliency``) or plotting it works without importing torch.
_LAZY = {
    "explain": "mne_freqmask._explain",
    "evaluate_removal": "mne_freqmask.evaluation",
    "check_explanation": "mne_freqmask.evaluation",
    "explain_files": "mne_freqmask.parallel",
    "explain_bids": "mne_freqmask.bids",
    "FreqMaskExplainer": "mne_freqmask.amortised",
    "read_freqmask_explainer": "mne_freqmask.amortised",
}

from mne_freqmask._combine import combine_saliency  # noqa: E402
from mne_freqmask.saliency import (  # noqa: E402
    SpectralSaliency,
    concatenate_saliencies,
    read_saliency,
)
from mne_freqmask.saliency_tfr import (  # noqa: E402
    SpectralSaliencyTFR,
    read_saliency_tfr,
)
from mne_freqmask.spectral import FrequencyGrid, ShortTimeGrid  # noqa: E402
from mne_freqmask.utils._deps import sys_info  # noqa: E402

_SUBMODULES = (
    "bids",
    "datasets",
    "evaluation",
    "lrp",
    "methods",
    "models",
    "parallel",
    "viz",
    "workflows",
)

__all__ = [
    "FreqMaskExplainer",
    "FrequencyGrid",
    "ShortTimeGrid",
    "SpectralSaliency",
    "SpectralSaliencyTFR",
    "check_explanation",
    "combine_saliency",
    "concatenate_saliencies",
    "evaluate_removal",
    "explain",
    "explain_bids",
    "explain_files",
    "read_freqmask_explainer",
    "read_saliency",
    "read_saliency_tfr",
    "sys_info",
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"mne_freqmask.{name}")
    raise AttributeError(f"module 'mne_freqmask' has no attribute {name!r}")


def __dir__():
    return sorted(__all__ + list(_SUBMODULES))
