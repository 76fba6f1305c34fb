"""One fingerprint of an explanation run, for ``checkpoint=`` and ``explain_files``.

A fingerprint is a dict ``name -> str`` of everything that changes the
result of :func:`mne_freqmask.explain`: the model (a hash of its class, its
structure and its state dict), the method and its parameters, the bands,
picks and windows, the random seed, the reference, and the input. Two runs
with equal fingerprints compute the same saliency; a key that differs names
what changed. The device, the thread count and the log level are left out:
they do not change what is computed (see :ref:`performance` for the thread
count's rounding effect on FreqMask).

The input is described two ways: in memory, by what
:func:`epochs_identity` reads from the epochs (channels, events, sampling,
labels, data scale; a checkpoint re-reads the same epochs object), and on
disk, by :func:`file_identity` (the size and a SHA-256 of the whole file,
split parts included), which :func:`mne_freqmask.explain_files` uses.
"""

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

#: keys of a fingerprint and how a message names them
_NAMES = {
    "model": "the model (its weights, class or structure)",
    "method": "the method",
    "method_kw": "the method's parameters",
    "bands": "bands",
    "picks": "picks",
    "random_state": "random_state",
    "reference": "the reference",
    "time_windows": "time_windows",
    "input": "the input file's content",
}


def array_sha(*arrays):
    """SHA-256 of arrays (dtype, shape and bytes; ``None`` allowed)."""
    h = hashlib.sha256()
    for arr in arrays:
        if arr is None:
            h.update(b"none")
            continue
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def model_sha(model):
    """SHA-256 of a model: its class, its structure and its state dict.

    The structure is the module's ``repr`` (object addresses removed): it
    holds what the state dict does not, such as the factor of an
    :class:`~mne_freqmask.models.InputScaler` or a layer's kernel size.
    """
    import torch

    h = hashlib.sha256(type(model).__qualname__.encode())
    h.update(_ADDRESS.sub("", repr(model)).encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def jsonable(value):
    """Canonical JSON text of a parameter (arrays by their SHA-256)."""

    def default(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return array_sha(obj)
        if isinstance(obj, os.PathLike):
            return os.fspath(obj)
        return repr(obj)

    return json.dumps(value, sort_keys=True, default=default)


def windows_text(windows, sfreq):
    """The ``time_windows`` entry: ``(win_length, hop)`` in samples, in words."""
    win, hop = (int(v) for v in windows)
    return (
        f"time_windows=({win / sfreq:g}, {hop / sfreq:g}): {win}-sample windows "
        f"every {hop} samples"
    )


def _file_parts(fname):
    """``fname`` and the split parts MNE reads with it (``X-epo-1.fif`` ...)."""
    fname = Path(fname)
    parts = [fname]
    name = fname.name
    for end in (".fif.gz", ".fif"):
        if name.endswith(end):
            stem = name[: -len(end)]
            k = 1
            while (part := fname.with_name(f"{stem}-{k}{end}")).is_file():
                parts.append(part)
                k += 1
            break
    return parts


def file_identity(fname):
    """``size`` (bytes), ``mtime_ns`` and ``sha256`` (hex) of a file, summed /
    hashed over it and its split parts in order."""
    h = hashlib.sha256()
    size, mtime = 0, 0
    for part in _file_parts(fname):
        st = os.stat(part)
        size, mtime = size + st.st_size, max(mtime, st.st_mtime_ns)
        h.update(bytes.fromhex(file_sha(part)))
    return dict(size=size, mtime_ns=mtime, sha256=h.hexdigest())


def identity_text(identity):
    """The ``input`` entry of a file's fingerprint (size and content hash).

    The modification time is not part of it: a file copied or touched with
    the same content is the same input.
    """
    return f"{identity['size']} bytes, sha256 {identity['sha256']}"


def reference_identity(reference):
    """The ``reference`` entry: ``None``, epochs in memory, or an epochs file.

    Epochs in memory are identified by their number and their events (not
    their data); a file by its size and content hash.
    """
    if reference is None:
        return "epochs"
    if isinstance(reference, str | os.PathLike):
        return f"file {identity_text(file_identity(reference))}"
    return f"{len(reference)} epochs, events {array_sha(reference.events)}"


def epochs_identity(epochs, inp):
    """The input entries of an in-memory run (what a checkpoint compares)."""
    return {
        "channels": jsonable(list(epochs.ch_names)),
        "sfreq": repr(float(epochs.info["sfreq"])),
        "n_times": str(inp.n_times),
        "events": array_sha(epochs.events),
        "n_epochs": str(inp.n_epochs),
        "y": array_sha(inp.y),
        "target": array_sha(inp.target),
        "data_scale": repr(float(inp.scale)),
        "groups": array_sha(np.asarray(inp.ref_groups).astype(str)),
    }


def run_fingerprint(
    *,
    model,
    method,
    method_kw,
    bands,
    picks,
    random_state,
    reference,
    windows=None,
    sfreq=None,
    data,
):
    """The fingerprint of one run (name -> str).

    ``model`` is the module or its :func:`model_sha`; ``method_kw`` the
    method's parameters (for files, with the other parameters of
    :func:`~mne_freqmask.explain` that change the result); ``bands``,
    ``picks`` (possibly resolved to channel names) and ``random_state`` as
    given to :func:`~mne_freqmask.explain`; ``reference`` its
    :func:`reference_identity`; ``windows`` the ``(win_length, hop)`` in
    samples of a time-resolved run at ``sfreq`` (None: no ``time_windows``
    key); ``data`` the input's entries (:func:`epochs_identity`, or
    ``{"input": ...}`` from :func:`identity_text`).
    """
    fp = {
        "method": method,
        "method_kw": jsonable(method_kw),
        "bands": jsonable(bands),
        "picks": jsonable(picks),
        "reference": reference,
        "model": model if isinstance(model, str) else model_sha(model),
        "random_state": repr(random_state),
    }
    if windows is not None:
        fp["time_windows"] = windows_text(windows, sfreq)
    fp.update(data)
    return fp


def changed_keys(stored, fp):
    """The keys whose values differ between two fingerprints, sorted."""
    return sorted(k for k in set(stored) | set(fp) if stored.get(k) != fp.get(k))


def _short(text, n=60):
    text = str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


def describe_changes(stored, fp):
    """Words for what changed between ``stored`` and ``fp`` (a list of str)."""
    out = []
    for key in changed_keys(stored, fp):
        old, new = stored.get(key), fp.get(key)
        if key == "method_kw":
            try:
                old_kw, new_kw = json.loads(old or "{}"), json.loads(new or "{}")
            except (TypeError, ValueError):
                out.append(_NAMES[key])
                continue
            for name in changed_keys(old_kw, new_kw):
                out.append(
                    f"parameter {name} ({_short(old_kw.get(name, '<default>'))} "
                    f"-> {_short(new_kw.get(name, '<default>'))})"
                )
        elif key in ("method", "bands", "picks", "random_state"):
            out.append(f"{_NAMES[key]} ({_short(old)} -> {_short(new)})")
        elif key == "time_windows":
            whole = "time_windows=None (whole epoch)"
            out.append(f"{old or whole} -> {new or whole}")
        else:
            out.append(_NAMES.get(key, key))
    return out


# ------------------------------------------------- the records of explain_files

#: the fingerprint record written beside each saliency file: ``<out>`` + this
RECORD_END = ".fingerprint.json"


def record_name(out):
    """The fingerprint record of the saliency file ``out``."""
    return Path(f"{out}{RECORD_END}")


def resolved_windows(time_windows, sfreq, n_times):
    """``(win_length, hop)`` in samples that ``time_windows`` gives (or None)."""
    from mne_freqmask.spectral import short_time_grid

    if time_windows is None:
        return None
    grid = short_time_grid(float(sfreq), int(n_times), 1, time_windows)
    return grid.win_length, grid.hop


def file_fingerprint(run, identity, time_windows, sfreq, n_times):
    """The fingerprint of one file's run (the one of ``explain(checkpoint=)``)."""
    return run_fingerprint(
        **run,
        windows=resolved_windows(time_windows, sfreq, n_times),
        sfreq=sfreq,
        data={"input": identity_text(identity)},
    )


def file_sha(fname, start=0):
    """SHA-256 (hex) of the bytes of ``fname`` from ``start`` on.

    Read in 1 MiB blocks (no copy of the file in memory; hashlib.file_digest
    does the same but needs Python 3.11). The one file hash: input files,
    maps in their records, and the byte checksum of saved HDF5 files.
    """
    h = hashlib.sha256()
    with open(fname, "rb") as fid:
        fid.seek(start)
        for block in iter(lambda: fid.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_status(out, run, identity, time_windows):
    """``"todo"``, ``"done"`` or why the existing ``out`` is not this run's map."""
    if not out.exists():
        return "todo"
    rec_name = record_name(out)
    if not rec_name.is_file():
        return (
            "it has no fingerprint record (it was written by an earlier version "
            "of mne_freqmask or by another program), so what made it is unknown"
        )
    try:
        rec = json.loads(rec_name.read_text())
        stored, inp = rec["fingerprint"], rec["input"]
        map_sha = rec["map_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its fingerprint record {rec_name.name} is unreadable"
    if file_sha(out) != map_sha:
        return (
            "it is not the map its fingerprint record was written for (it was "
            "changed since, or a run stopped while replacing it)"
        )
    try:
        fp = file_fingerprint(run, identity, time_windows, inp["sfreq"], inp["n_times"])
    except (ValueError, KeyError, TypeError) as exp:  # windows unfit for the file
        fp = dict(stored, time_windows=f"time_windows={time_windows!r} ({exp})")
    changes = describe_changes(stored, fp)
    if changes:
        return f"it was made by a run with other inputs: {'; '.join(changes)} changed"
    return "done"
