"""Optional dependencies: one import path, one message that names the fix.

The ``models`` and ``attribution`` extras promise braindecode (which imports
torchaudio, a compiled extension tied to one torch ABI), zennit and captum;
the ``evaluation`` extra Quantus.
When one of them cannot be imported, the cause is almost always a torch family
whose builds do not match (torchaudio built for another torch); the message
says which package failed, why, the versions installed and the tested set
(``constraints.txt``), in one line.
"""

import contextlib
import importlib
import warnings
from importlib import metadata

#: module -> (distribution, extra that promises it, distributions whose pins matter)
OPTIONAL = {
    "braindecode": ("braindecode", "models", ("torch", "torchaudio", "braindecode")),
    "torchaudio": ("torchaudio", "models", ("torch", "torchaudio")),
    "torchvision": ("torchvision", "models", ("torch", "torchvision")),
    "zennit": ("zennit", "attribution", ("torch", "torchvision", "zennit")),
    "captum": ("captum", "attribution", ("torch", "captum")),
    "quantus": ("quantus", "evaluation", ("quantus", "numpy")),
    "mne_bids": ("mne-bids", "bids", ("mne", "mne-bids")),
    "safetensors": ("safetensors", "models", ("safetensors",)),
}

# braindecode 1.8.1 evaluates `mne.channels.make_standard_montage("standard_1020")`
# at import time, which MNE 1.13 deprecates with a FutureWarning. It says nothing
# about the user's data; it is filtered here, where this package imports
# braindecode, and nowhere else (the user's own warnings are left alone).
_BRAINDECODE_IMPORT_WARNINGS = (
    (FutureWarning, r"Montage name 'standard_1020' is deprecated"),
)


def _pins(dists):
    """Our requirements that name ``dists`` (from the installed metadata)."""
    from packaging.requirements import Requirement  # a dependency of MNE

    try:
        reqs = metadata.requires("mne-freqmask") or []
    except metadata.PackageNotFoundError:  # running from a source tree
        reqs = []
    found = {}
    for text in reqs:
        req = Requirement(text)
        name = req.name.lower()
        if name in dists and len(req.specifier):
            found.setdefault(name, f"{req.name}{req.specifier}")
    return [found.get(d, d) for d in dists]


def _installed(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def dependency_error(module, exp):
    """One-line message for an optional ``module`` that failed to import."""
    dist, extra, related = OPTIONAL[module.split(".")[0]]
    have = ", ".join(f"{d} {_installed(d) or 'not installed'}" for d in related)
    first = str(exp).strip().splitlines()[0] if str(exp).strip() else ""
    return (
        f"{dist} cannot be imported ({type(exp).__name__}: {first}); installed: "
        f"{have}; these must be builds for one another ({' '.join(_pins(related))} "
        f"of the '{extra}' extra): install the tested set with pip install "
        f'"mne-freqmask[{extra}]" -c constraints.txt (the file in the source), or '
        "a torchaudio / torchvision built for your torch."
    )


def import_optional(module):
    """Import an optional dependency (e.g. ``"braindecode.models"``), raising
    ImportError with one line (:func:`dependency_error`)."""
    from mne.utils import use_log_level

    quiet = module.split(".")[0] == "braindecode"
    try:
        # MNE's warn() also logs its message, whatever the warning filters say,
        # so the import runs at MNE's ERROR log level too
        level = use_log_level("error") if quiet else contextlib.nullcontext()
        with warnings.catch_warnings(), level:
            if quiet:
                for category, message in _BRAINDECODE_IMPORT_WARNINGS:
                    warnings.filterwarnings("ignore", message, category)
            return importlib.import_module(module)
    except Exception as exp:  # OSError (ABI), ImportError, RuntimeError, ...
        raise ImportError(dependency_error(module, exp)) from exp


#: distributions whose versions :func:`sys_info` adds to MNE's list: the torch
#: family, the optional extras (:data:`OPTIONAL`) and the file and parallel
#: back ends
SYS_INFO_DEPS = (
    ("torch",)
    + tuple(dict.fromkeys(dist for dist, _, _ in OPTIONAL.values()))
    + ("h5io", "h5py", "joblib", "dask", "distributed")
)


def sys_info(fid=None, *, show_paths=False):
    """Print the system information for debugging, with this package's versions.

    MNE's :func:`mne.sys_info` (platform, Python, CPU, memory, MNE and its
    dependencies; no check for a newer MNE, which needs the network), then
    the version of mne_freqmask and of each of its own dependencies (torch,
    braindecode, zennit, captum, Quantus, ...), read from the installed
    metadata without importing them. Paste it into a bug report. The
    command ``mne-freqmask sys-info`` prints the same.

    Parameters
    ----------
    fid : file-like | None
        Where to write (default: stdout).
    show_paths : bool
        Also show the paths of the modules (as in MNE).
    """
    import sys

    import mne

    fid = sys.stdout if fid is None else fid
    mne.sys_info(fid=fid, show_paths=show_paths, check_version=False)
    version = sys.modules[__name__.split(".")[0]].__version__
    width = max(len(d) for d in SYS_INFO_DEPS) + 1
    lines = [f"\nmne-freqmask {version}", "Dependencies of mne-freqmask"]
    for dist in SYS_INFO_DEPS:
        lines.append(f"  {dist:<{width}} {_installed(dist) or 'not installed'}")
    print("\n".join(lines), file=fid)
