"""Provenance of saved results: what made a map, a checkpoint or an explainer.

One builder (:func:`make_provenance`), called where a result is created
(:func:`mne_freqmask.explain`, the checkpoint of a run,
:class:`~mne_freqmask.FreqMaskExplainer`), and the helpers the containers
use to keep it (:func:`merge_provenance`) and show it
(:func:`provenance_summary`, :func:`provenance_repr`); the containers make
it JSON-like. No torch at import: the containers that carry provenance are
read without it.

A provenance is a JSON-like dict:

- ``created``: the creation time, UTC, ISO 8601 (``"2026-12-07T14:03:11Z"``);
- ``versions``: ``{"mne_freqmask", "mne", "numpy", "torch"}`` (and
  ``"braindecode"`` when a module of the model comes from braindecode);
- ``model_class``: the model's class, ``module.QualName`` (the network behind
  the :class:`~mne_freqmask.models.InputScaler` that ``make_model`` puts in
  front of it; a TorchScript module's original class name);
- ``model_hash``: SHA-256 of the model's class name and state dict
  (:func:`mne_freqmask._fingerprint.model_sha`, the hash checkpoints and the
  amortised explainer compare);
- ``method`` and ``method_params``: the method and its parameters at creation;
- ``source``: the epochs' file when they were read from one (else None).
"""

import json
import sys
from copy import deepcopy
from datetime import datetime, timezone


def _versions(model=None):
    import mne
    import numpy as np

    # the package is imported (this is one of its modules); not imported
    # here, which would make an import circle of the package's modules
    out = {
        "mne_freqmask": sys.modules[__name__.split(".")[0]].__version__,
        "mne": mne.__version__,
        "numpy": np.__version__,
    }
    if model is not None or "torch" in sys.modules:  # torch ran
        import torch

        out["torch"] = torch.__version__
    if model is not None:
        modules = (type(m).__module__ for m in model.modules())
        if any(name.split(".")[0] == "braindecode" for name in modules):
            from importlib.metadata import PackageNotFoundError, version

            try:
                out["braindecode"] = version("braindecode")
            except PackageNotFoundError:  # a source checkout on sys.path
                import braindecode

                out["braindecode"] = getattr(braindecode, "__version__", "unknown")
    return out


def model_class(model):
    """``module.QualName`` of the model (the network behind an input scaler)."""
    import torch

    from mne_freqmask.models import InputScaler

    inner = model
    while (
        isinstance(inner, torch.nn.Sequential)
        and len(inner) == 2
        and isinstance(inner[0], InputScaler)
    ):
        inner = inner[-1]
    original = getattr(inner, "original_name", None)  # TorchScript
    if original:
        return f"torch.jit.{original}"
    return f"{type(inner).__module__}.{type(inner).__qualname__}"


def make_provenance(
    model=None,
    *,
    method,
    method_params=None,
    source=None,
    model_hash=None,
    model_cls=None,
):
    """The provenance of a result made now (see the module's docstring).

    Parameters
    ----------
    model : torch.nn.Module | None
        The explained model (its hash and class are computed).
    method : str
        The method.
    method_params : dict | None
        Its parameters (made JSON-like).
    source : path-like | None
        The epochs' file.
    model_hash, model_cls : str | None
        Hash and class of a model that is not at hand (e.g. the model an
        amortised explainer was trained on); ignored when ``model`` is given.

    Returns
    -------
    provenance : dict
        JSON-like.
    """
    if model is not None:
        from mne_freqmask._fingerprint import model_sha as _model_sha

        model_hash, model_cls = _model_sha(model), model_class(model)
    out = dict(
        created=datetime.now(timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        versions=_versions(model),
        model_class=model_cls,
        model_hash=model_hash,
        method=method,
        method_params=method_params or {},
        source=None if source is None else str(source),
    )
    return out


def provenance_json(model, method, method_params):
    """:func:`make_provenance` as JSON text (a checkpoint stores it so).

    Parameters that JSON cannot hold (e.g. an explainer object) are kept as
    their ``repr``, as the checkpoint keeps a method's parameters.
    """
    prov = make_provenance(model, method=method, method_params=method_params)
    return json.dumps(prov, default=repr)


def merge_provenance(provenances):
    """The provenance of a result made from several (concatenated, combined).

    Equal provenances give that one; otherwise the entries that all share,
    plus ``"inputs"``: the list of each one's provenance (so
    ``"model_hash"`` stays at the top when every input comes from the same
    model, and is absent when they do not).
    """
    provenances = [deepcopy(p or {}) for p in provenances]
    first = provenances[0]
    if all(p == first for p in provenances[1:]):
        return deepcopy(first)
    common = {
        key: deepcopy(val)
        for key, val in first.items()
        if key != "inputs" and all(key in p and p[key] == val for p in provenances)
    }
    common["inputs"] = provenances
    return common


def provenance_summary(provenance):
    """One line: model class and hash prefix, versions, creation time, source."""
    if not provenance:
        return "none recorded (a file of an earlier version)"
    parts = [provenance_repr(provenance)] if provenance.get("model_hash") else []
    if "inputs" in provenance and not parts:
        parts.append(f"{len(provenance['inputs'])} inputs from different models")
    versions = provenance.get("versions") or {}
    if versions:
        parts.append(", ".join(f"{k} {v}" for k, v in versions.items()))
    if provenance.get("created"):
        parts.append(f"created {provenance['created']}")
    if provenance.get("source"):
        parts.append(f"from {provenance['source']}")
    return "; ".join(parts)


def provenance_repr(provenance):
    """The short form in ``repr``: model class and hash prefix ("" if none)."""
    if not provenance or not provenance.get("model_hash"):
        return ""
    cls = (provenance.get("model_class") or "model").rsplit(".", 1)[-1]
    return f"{cls} {provenance['model_hash'][:8]}"
