"""Sphinx configuration of the mne-freqmask documentation.

Build with ``make -C doc html`` (warnings are errors; see ``doc/Makefile``).

Offline builds and intersphinx
------------------------------
Cross-references to MNE, NumPy, SciPy, Matplotlib, PyTorch, pandas and the
Python standard library go through :mod:`sphinx.ext.intersphinx`, which
downloads each project's ``objects.inv`` at the start of the build. Without
internet that download fails and Sphinx warns (``failed to reach any of the
inventories``), which ``-W`` turns into a failed build. The environment
variable ``FREQMASK_DOC_OFFLINE`` decides what happens:

``FREQMASK_DOC_OFFLINE=1``
    Offline. No inventory is fetched (``intersphinx_mapping`` is emptied) and
    references to those projects are rendered as plain code text instead of
    links (see :func:`_offline_reference`). References into ``mne_freqmask``
    itself are still checked (``nitpicky = True``), so a broken internal link
    still fails the build.
``FREQMASK_DOC_OFFLINE=0``
    Online: fetch every inventory; a site that cannot be reached is a warning
    and therefore an error. Use this in CI jobs that have network access.
unset (default)
    Detect: one TCP connection to ``docs.python.org:443`` with a 3 s timeout.
    If it fails the build is offline, as with ``=1``; otherwise online.

The offline build is complete except that links to the other projects'
documentation are missing; its pages, API reference and examples are the same.
"""

import builtins
import os
import socket
import sys
import warnings
from datetime import date
from pathlib import Path

import mne_freqmask

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# -- project information ----------------------------------------------------

project = "mne-freqmask"
author = "mne_freqmask developers"
copyright = f"2026-{date.today().year}, {author}"
version = mne_freqmask.__version__
release = version

# -- general configuration --------------------------------------------------

needs_sphinx = "7.2"
root_doc = "index"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
    # sphinx-gallery writes these next to the generated pages; they are
    # included from there, not documents of their own
    "auto_examples/*.rst.txt",
    "sg_execution_times.rst",
]
default_role = "py:obj"
nitpicky = True
nitpick_ignore = []
nitpick_ignore_regex = []
suppress_warnings = []

# -- autodoc / autosummary --------------------------------------------------

autosummary_generate = True
autodoc_typehints = "none"
autodoc_member_order = "groupwise"
autoclass_content = "class"

# -- numpydoc ---------------------------------------------------------------

numpydoc_show_class_members = True
# members inherited from torch.nn.Module, dict, ... are not ours to document
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    # Python
    "path-like": ":term:`python:path-like object`",
    "Path": "pathlib.Path",
    "callable": ":term:`python:callable`",
    # NumPy / pandas
    "ndarray": "numpy.ndarray",
    "array-like": ":term:`numpy:array_like`",
    "array": ":term:`numpy:array_like`",
    "DataFrame": "pandas.DataFrame",
    # MNE
    "Epochs": "mne.Epochs",
    "EpochsArray": "mne.EpochsArray",
    "Info": "mne.Info",
    "EpochsTFRArray": "mne.time_frequency.EpochsTFRArray",
    "AverageTFRArray": "mne.time_frequency.AverageTFRArray",
    "EpochsSpectrumArray": "mne.time_frequency.EpochsSpectrumArray",
    "SpectrumArray": "mne.time_frequency.SpectrumArray",
    # matplotlib
    "Figure": "matplotlib.figure.Figure",
    "Axes": "matplotlib.axes.Axes",
    "Colormap": "matplotlib.colors.Colormap",
    # torch
    "Module": "torch.nn.Module",
    "Tensor": "torch.Tensor",
    # ours
    "SpectralSaliency": "mne_freqmask.SpectralSaliency",
    "FrequencyGrid": "mne_freqmask.FrequencyGrid",
    "ShortTimeGrid": "mne_freqmask.ShortTimeGrid",
    "SpectralSaliencyTFR": "mne_freqmask.SpectralSaliencyTFR",
    "PlantedBurst": "mne_freqmask.datasets.simulated.PlantedBurst",
    "PlantedTruth": "mne_freqmask.datasets.simulated.PlantedTruth",
    "MethodResult": "mne_freqmask.methods.MethodResult",
    "RuleConfig": "mne_freqmask.lrp.rules.RuleConfig",
    "BatchRelevance": "mne_freqmask.lrp.relevance.BatchRelevance",
    "CellTestResult": "mne_freqmask.evaluation.CellTestResult",
    "ExplanationCheck": "mne_freqmask.evaluation.ExplanationCheck",
}
# words of type descriptions that are not objects to link
numpydoc_xref_ignore = {
    # "skorch net" (a fitted skorch NeuralNet; skorch has no inventory here)
    "skorch",
    "net",
    "of",
    "or",
    "and",
    "shape",
    "instance",
    "default",
    "like",
    "optional",
    "n_epochs",
    "n_channels",
    "n_picks",
    "n_bands",
    "n_freqs",
    "n_windows",
    "n_times",
    "n_classes",
    "n_picked_channels",
    "n_times // 2 + 1",
    "same",
    "as",
    "...",
    "n",
    "n_ref",
    "matrix",
    "n_points",
    "n_filters",
    "numtaps",
    "n_chunk",
    "ExplainInput",
    "EpochsSource",
}

# Validation: every docstring of mne_freqmask must pass all of numpydoc's
# checks except these (the set below is *removed* from "all"):
numpydoc_validation_exclusions = {
    "GL01",  # summary may start on the line of the opening quotes
    "ES01",  # an extended summary is optional
    "EX01",  # examples live in the gallery, not in docstrings
    "SA01",  # a See Also section is optional
    "SA04",  # See Also entries need no description
    "RT02",  # "name : type" in Returns, as MNE does
}
numpydoc_validate = True
numpydoc_validation_checks = {"all"} | numpydoc_validation_exclusions
numpydoc_validation_exclude = {
    # only our package (inherited members of torch / builtins are not ours)
    r"^(?!mne_freqmask\.)",
    # the data model: documented by their one-line docstrings
    r"\.__(eq|hash|repr|getstate|setstate)__$",
    # module-level data documented by a ``#:`` comment, not a docstring
    r"\.methods(\._registry)?\.(SHORT_TIME_)?METHODS$",
    r"\.methods\.easypeasi\.EASYPEASI_BANDS$",
    r"\.lrp\.rules\.(LINEAR|ATTENTION)_RULES$",
    r"\.(evaluation|evaluation\.clever_hans)\.ARTIFACT_CHANNELS$",
    # result containers (dataclasses): their fields are documented as
    # Attributes, not as constructor Parameters (PR01)
    r"\.(CellTestResult|LOSOResult|ExplanationCheck)$",
}

# -- intersphinx (see the module docstring for offline builds) -------------

INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "mne": ("https://mne.tools/stable", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "scipy": ("https://docs.scipy.org/doc/scipy", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "mne_bids": ("https://mne.tools/mne-bids/stable", None),
}
# top-level modules whose objects those inventories document
EXTERNAL_MODULES = {
    "mne",
    "numpy",
    "scipy",
    "matplotlib",
    "pandas",
    "torch",
    "pathlib",
    "os",
    "collections",
    "h5io",
    "pooch",
    "braindecode",
    "mne_bids",
}
# labels of other projects' documentation used by our docstrings (``:ref:``);
# MNE's ``verbose`` docstring links to its logging tutorial
EXTERNAL_LABELS = {"tut-logging"}


def _is_offline():
    flag = os.environ.get("FREQMASK_DOC_OFFLINE", "").strip()
    if flag in ("0", "1"):
        return flag == "1"
    if flag:
        raise ValueError(f"FREQMASK_DOC_OFFLINE must be 0 or 1, got {flag!r}.")
    try:
        socket.create_connection(("docs.python.org", 443), timeout=3).close()
    except OSError:
        return True
    return False


OFFLINE = _is_offline()
intersphinx_mapping = {} if OFFLINE else INTERSPHINX
intersphinx_timeout = 10


def _has_prefix(target):
    """Whether a target names its project, e.g. ``"python:path-like object"``."""
    prefix, sep, _ = target.partition(":")
    return bool(sep) and prefix in INTERSPHINX


def _is_external(target):
    """Whether a reference target belongs to a project of INTERSPHINX."""
    if _has_prefix(target):
        return True
    top = target.lstrip("~.").split(".")[0]
    return top in EXTERNAL_MODULES or hasattr(builtins, top)


def _offline_reference(app, env, node, contnode):
    """Render references to other projects as plain text when offline.

    Connected to ``missing-reference`` only for offline builds, so online every
    reference is resolved by intersphinx (or warned about, as usual).
    """
    if node.get("refdomain") not in ("py", "std"):
        return None
    target = node.get("reftarget", "")
    if node.get("reftype") == "ref":
        external = target in EXTERNAL_LABELS or _has_prefix(target)
        return contnode if external else None
    if _is_external(target):
        return contnode
    return None


# -- HTML -------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"mne-freqmask {version}"
html_static_path = ["_static"]
html_css_files = ["style.css"]
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc", "sg_download_links", "sg_launcher_links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {
    "index": [],
    "install": [],
    "api": [],
}
html_context = {"default_mode": "light"}

# -- sphinx-gallery ---------------------------------------------------------

os.environ["_MNE_BUILDING_DOC"] = "true"
os.environ.setdefault("MPLBACKEND", "Agg")

# The SEED example runs only where a local SEED copy is configured; elsewhere
# its code is shown without outputs (sphinx-gallery's filename_pattern decides
# which examples are executed).
SEED_PATH = os.environ.get("MNE_FREQMASK_SEED_PATH", "")
_run_seed = bool(SEED_PATH) and Path(SEED_PATH).expanduser().is_dir()
filename_pattern = r"\.py$" if _run_seed else r"^(?!.*06_seed\.py$).*\.py$"


def reset_warnings(gallery_conf, fname):
    """Make warnings in examples errors, as in the test suite (pyproject)."""
    warnings.resetwarnings()
    warnings.filterwarnings("error")
    # braindecode's import asks MNE for the deprecated "standard_1020" name
    warnings.filterwarnings(
        "ignore", "Montage name 'standard_1020' is deprecated", FutureWarning
    )
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pooch")
    # braindecode imports wfdb, which calls set_index(inplace=True) (pandas 3.1)
    warnings.filterwarnings(
        "ignore", "The inplace keyword in DataFrame.set_index is deprecated"
    )
    # third-party internals that deprecate things under our feet
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="jupyter")
    warnings.filterwarnings("ignore", "FigureCanvasAgg is non-interactive", UserWarning)


def reset_torch(gallery_conf, fname):
    """Same seed and thread count for every example.

    One thread by default (``FREQMASK_DOC_THREADS`` to change it): the
    examples' models are tiny, and on a machine whose cores are shared with
    other jobs, OpenMP's spinning threads made a training step of EEGNet ~40x
    slower with 2 threads than with 1 (measured here: 1.35 s vs 0.03 s per
    batch of 64 epochs).
    """
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("FREQMASK_DOC_THREADS", "1")))


sphinx_gallery_conf = {
    "doc_module": ("mne_freqmask",),
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "backreferences_dir": "generated",
    "filename_pattern": filename_pattern,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib", reset_warnings, reset_torch),
    "remove_config_comments": True,
    "capture_repr": ("_repr_html_", "__repr__"),
    "min_reported_time": 1,
    "thumbnail_size": (320, 224),
    "abort_on_example_error": False,
    "show_memory": False,
    "plot_gallery": "True",
    "download_all_examples": False,
    "log_level": {"backreference_missing": "debug"},
}


def setup(app):
    """Offline builds: render references to other projects as text."""
    if OFFLINE:
        app.connect("missing-reference", _offline_reference)
    app.add_config_value("freqmask_doc_offline", OFFLINE, "env")
