"""Build, fit, save and load models: the package's models and everyone else's.

Building and fitting small braindecode models on Epochs (a convenience for
examples, tests and the demo, not a model zoo), model surgery for the sanity
checks, and the one model loader (:func:`load_any_model`), which reads the
package's files, TorchScript, braindecode hub folders and skorch / plain
state dicts. Any ``torch.nn.Module`` with the braindecode input convention
``(n_epochs, n_channels, n_times)`` works with the package.
"""

from mne_freqmask.models._build import (
    MODEL_NAMES,
    InputScaler,
    LabramWrapper,
    braindecode_module,
    fit,
    input_scale_of,
    make_labram,
    make_model,
    model_metadata,
    parameter_layers,
    reinitialize,
    untrained_copy,
)
from mne_freqmask.models._load import (
    as_model,
    load_any_model,
    load_model,
    model_class,
    save_model,
)

__all__ = [
    "MODEL_NAMES",
    "InputScaler",
    "LabramWrapper",
    "as_model",
    "braindecode_module",
    "fit",
    "input_scale_of",
    "load_any_model",
    "load_model",
    "make_labram",
    "make_model",
    "model_class",
    "model_metadata",
    "parameter_layers",
    "reinitialize",
    "save_model",
    "untrained_copy",
]
