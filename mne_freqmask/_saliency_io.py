"""Integrity of saved saliencies: state keys, a SHA-256 checksum, info checks.

Kept apart from :mod:`mne_freqmask.saliency` so that the container stays
readable; this module imports no torch either.
"""

import hashlib

import numpy as np
from mne import Info
from mne.utils import logger

#: title of the state in saved files
H5_TITLE = "mnefreqmask"
#: title of the checksum entry stored beside the state in saved files
H5_CHECKSUM_TITLE = "mnefreqmask_checksum"
#: keys of the state that :meth:`SpectralSaliency.__setstate__` needs
STATE_KEYS = (
    "data",
    "info",
    "freqs",
    "band_names",
    "band_edges",
    "method",
    "method_params",
    "dims",
    "nave",
    "events",
    "event_id",
    "metadata",
    "diagnostics",
)


def check_state_keys(state):
    """Raise if the state lacks a key that the container needs."""
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise ValueError(
            f"The saliency is incomplete: it lacks {missing} (a file cut "
            "short or written by another program?); save it again from the "
            "original object or re-run the explanation."
        )


def info_from_state(info):
    """An :class:`mne.Info` from the state, checked for consistency."""
    if isinstance(info, Info):
        return info
    if not isinstance(info, dict):
        raise ValueError(
            f"The stored info is a {type(info).__name__}, not an mne.Info."
        )
    try:
        info = Info(**info)
        names = [ch["ch_name"] for ch in info["chs"]]
        if info["nchan"] != len(names) or list(info["ch_names"]) != names:
            raise ValueError(
                f"nchan={info['nchan']} and ch_names {list(info['ch_names'])} do "
                f"not match the {len(names)} channel entries {names}"
            )
        info._check_consistency()
    except Exception as exp:  # any failure: the stored info is unusable
        raise ValueError(
            f"The stored info is inconsistent ({type(exp).__name__}: {exp})."
        ) from None
    return info


def _digest(obj, h=None):
    """SHA-256 of a nested state (dicts, lists, arrays, scalars, strings).

    Canonical: dict keys are sorted, arrays contribute their dtype, shape and
    bytes, other values their type and ``repr``. Applied to the state as
    h5io reads it back, so that writing and reading agree.
    """
    top = h is None
    if top:
        h = hashlib.sha256()
    if isinstance(obj, dict):
        h.update(b"{%d" % len(obj))
        for key in sorted(obj, key=repr):
            _digest(key, h)
            _digest(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[%d" % len(obj))
        for item in obj:
            _digest(item, h)
        h.update(b"]")
    elif isinstance(obj, np.ndarray) and obj.dtype != object:
        arr = np.ascontiguousarray(obj)
        h.update(f"a{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    elif isinstance(obj, np.ndarray):
        _digest(obj.tolist(), h)
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    return h.hexdigest() if top else None


def write_checksum(fname):
    """Store the SHA-256 of the state in ``fname`` (read back from it)."""
    import h5io

    state = h5io.read_hdf5(str(fname), title=H5_TITLE, slash="replace")
    h5io.write_hdf5(
        str(fname),
        {"algorithm": "sha256", "digest": _digest(state)},
        title=H5_CHECKSUM_TITLE,
        overwrite="update",
    )


def verify_checksum(fname, state):
    """Raise if the state read from ``fname`` does not match its checksum."""
    import h5io

    try:
        stored = h5io.read_hdf5(str(fname), title=H5_CHECKSUM_TITLE)
    except ValueError:  # no checksum: a file written before checksums existed
        logger.info(f"{fname} holds no checksum (older file); not verified.")
        return
    except OSError as exp:
        raise ValueError(
            f"{fname} is damaged: its checksum is unreadable ({exp})."
        ) from None
    digest = stored.get("digest") if isinstance(stored, dict) else None
    if not isinstance(digest, str) or stored.get("algorithm") != "sha256":
        raise ValueError(f"{fname} is damaged: its checksum entry is unreadable.")
    if _digest(state) != digest:
        raise ValueError(
            f"{fname} is damaged: its content does not match the SHA-256 "
            "checksum written with it (the file was changed or corrupted after "
            "saving); save it again or re-run the explanation."
        )


def check_h5_fname(fname):
    """``fname`` as an absolute path, checked to end with .h5 or .hdf5."""
    from pathlib import Path

    from mne.utils import _validate_type

    _validate_type(fname, "path-like", "fname")
    fname = Path(fname).expanduser().absolute()
    if fname.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(
            f"fname must end with .h5 or .hdf5 (an HDF5 file), got {fname.name!r}."
        )
    return fname


def write_state(fname, state, overwrite):
    """Write a saliency's state and its checksum to ``fname``, atomically."""
    import h5io

    from mne_freqmask.utils._checks import _write_new_file

    fname = check_h5_fname(fname)

    def write(tmp):
        h5io.write_hdf5(
            str(tmp), state, title=H5_TITLE, slash="replace", overwrite=True
        )
        write_checksum(tmp)

    _write_new_file(fname, write, overwrite)


def read_state(fname, cls, *, time_resolved, other):
    """Read ``fname``, verify its checksum and build a ``cls`` from its state.

    ``time_resolved`` says whether ``cls`` has a ``"time"`` dimension;
    ``other`` is ``(name, reader)`` of the container that has the other
    kind: a file whose dims say it holds that one is refused with a message
    naming its reader.
    """
    from pathlib import Path

    import h5io
    from mne.utils import _validate_type

    _validate_type(fname, "path-like", "fname")
    fname = Path(fname).expanduser().absolute()
    what = cls.__name__
    if not fname.is_file():
        raise FileNotFoundError(f"No such file: {fname}")
    logger.info(f"Reading {fname}")
    try:
        state = h5io.read_hdf5(str(fname), title=H5_TITLE, slash="replace")
    except (ValueError, OSError) as exp:
        raise ValueError(
            f"{fname} is not a {what} file written by {what}.save ({exp})."
        ) from None
    if not isinstance(state, dict):
        raise ValueError(
            f"{fname} is not a {what} file written by {what}.save (its content "
            f"is a {type(state).__name__})."
        )
    verify_checksum(fname, state)
    if ("time" in tuple(state.get("dims", ()))) != time_resolved:
        raise ValueError(
            f"{fname} holds a {other[0]}, not a {what}; read it with {other[1]}."
        )
    out = cls.__new__(cls)
    try:
        out.__setstate__(state)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exp:
        raise ValueError(f"{fname} cannot be read back as a {what}: {exp}") from None
    return out
