"""Integrity of saved saliencies: state keys, SHA-256 checksums, info checks.

Kept apart from :mod:`mne_freqmask.saliency` so that the container stays
readable; this module imports no torch either.

Every HDF5 file the package writes (saliencies, time-resolved saliencies,
checkpoints) starts with a 512-byte HDF5 *user block* (a region that the HDF5
library reserves for the application and skips: h5py, h5io and HDFView read
the file as usual) holding :data:`MAGIC` and the SHA-256 of every byte after
the block. The readers check it before handing the file to HDF5
(:func:`check_h5_file`): the HDF5 library can spin forever on a damaged file
(measured: h5io 0.2.5 / h5py 3.16 looped in ``attrs.__getitem__``, more
than 90 s, on a saved 222 kB saliency with 5,000 zeroed bytes at two of 55
offsets tried, and raised RuntimeError, AttributeError or KeyError from
inside h5py at others), and a Python timeout cannot interrupt it. A
checksum over the bytes was chosen over a bounded read in a subprocess (a
second interpreter per read, and no help for a file that parses into wrong
values) and over a structural check with h5py (which runs into the same
loop). Files of earlier versions, without the block, are read as before and
verified by their state checksum (:func:`verify_checksum`) after parsing, so
a damaged one can still hang HDF5; reading and saving an intact one again
adds the byte checksum.
"""

import hashlib

import numpy as np
from mne import Info
from mne.utils import logger

from mne_freqmask._fingerprint import file_sha

#: title of the state in saved files
H5_TITLE = "mnefreqmask"
#: title of the checksum entry stored beside the state in saved files
H5_CHECKSUM_TITLE = "mnefreqmask_checksum"
#: size of the HDF5 user block that holds the byte checksum
USERBLOCK = 512
#: first bytes of the user block of files written by this package
MAGIC = b"mne_freqmask sha256 "
#: the signature at the start of an HDF5 superblock
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: what a file with this top-level group (an h5io title) holds, and its reader
_KINDS = {
    "mnefreqmask": "a saliency (read it with mne_freqmask.read_saliency)",
    "mnefreqmask_checkpoint": "a checkpoint of mne_freqmask.explain (pass it "
    "as checkpoint= to resume that run)",
    "mnepython": "an MNE-Python object (read it with MNE's reader, e.g. "
    "mne.time_frequency.read_spectrum or read_tfrs)",
}
#: keys of the state that both saliency containers need
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


def check_state_keys(state, keys=STATE_KEYS):
    """Raise if the state lacks a key that the container needs."""
    missing = [key for key in keys if key not in state]
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


def _file_sha(fname):
    """SHA-256 of the HDF5 bytes of ``fname`` (after the user block)."""
    return file_sha(fname, start=USERBLOCK)


def write_h5(fname, state, title):
    """Write ``state`` under ``title`` to a new HDF5 file with its byte checksum.

    ``fname`` must not exist (the callers write a temporary file and rename
    it). The file is created with the user block, h5io adds the state (mode
    ``"update"`` keeps the block), and the SHA-256 of the HDF5 bytes is
    written into the block last.
    """
    import h5io
    import h5py

    with h5py.File(fname, "w", userblock_size=USERBLOCK):
        pass
    h5io.write_hdf5(str(fname), state, title=title, slash="replace", overwrite="update")
    digest = _file_sha(fname)
    with open(fname, "r+b") as fid:
        fid.write(MAGIC + digest.encode() + b"\n")


def check_h5_file(fname, fix):
    """Check ``fname``'s bytes before HDF5 parses it; return whether checksummed.

    Raises ValueError, naming the file and the fix (``fix``: what to do,
    e.g. "re-run the explanation"), for a file that is not
    HDF5 (e.g. a FIF or pickle renamed), or whose bytes do not match the
    checksum in its user block (truncated, corrupted or changed). A file
    without the block (an HDF5 file of an earlier version, or of another
    program) returns False and is left to the reader.
    """
    with open(fname, "rb") as fid:
        head = fid.read(USERBLOCK + len(_HDF5_SIGNATURE))
    if head.startswith(_HDF5_SIGNATURE):
        return False
    if head.startswith(MAGIC):
        stored = head[len(MAGIC) : len(MAGIC) + 64].decode("ascii", "replace")
        if _file_sha(fname) != stored:
            raise ValueError(
                f"{fname} is damaged: its bytes do not match the SHA-256 checksum "
                "written with it (the file was truncated, corrupted or changed "
                f"after saving); {fix}."
            )
        return True
    if head[USERBLOCK:].startswith(_HDF5_SIGNATURE):
        raise ValueError(
            f"{fname} is damaged: the header that holds its checksum is "
            f"overwritten; {fix}."
        )
    raise ValueError(
        f"{fname} is not an HDF5 file, or its start is damaged (it does not "
        "begin like one: another kind of file under an .h5 name, or one "
        f"overwritten or cut short); {fix}."
    )


def h5_kind(fname):
    """What ``fname`` holds, from its top-level groups (for error messages)."""
    import h5py

    try:
        with h5py.File(fname, "r") as fid:
            keys = sorted(fid.keys())
    except Exception:  # only used to word an error: never raise from here
        return "unreadable HDF5 content"
    for key in keys:
        if key in _KINDS:
            return _KINDS[key]
    return f"HDF5 groups {keys}"


def verify_checksum(fname, state):
    """Raise if the state read from ``fname`` does not match its checksum.

    The check of files written before the byte checksum (:func:`write_h5`):
    they hold the SHA-256 of their state (:func:`_digest`) under the title
    :data:`H5_CHECKSUM_TITLE`.
    """
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


#: how to replace a damaged saliency file
_FIX = "save it again from the original object or re-run the explanation"


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
    """Write a saliency's state and its byte checksum to ``fname``, atomically."""
    from mne_freqmask.utils._checks import _write_new_file

    fname = check_h5_fname(fname)
    _write_new_file(fname, lambda tmp: write_h5(tmp, state, H5_TITLE), overwrite)


def read_state(fname, container_of, *, want=None):
    """Read ``fname``, verify its checksum and build a saliency from its state.

    ``container_of(dims)`` gives the class of the stored dims (the one
    reader picks it, as MNE's ``read_spectrum`` does); ``want``, a class or
    None, refuses a file of another class with a message naming the reader.
    """
    from pathlib import Path

    import h5io
    from mne.utils import _validate_type

    _validate_type(fname, "path-like", "fname")
    fname = Path(fname).expanduser().absolute()
    what = "SpectralSaliency" if want is None else want.__name__
    wrote = f"{what} file (nor another saliency) written by .save"
    if not fname.is_file():
        raise FileNotFoundError(f"No such file: {fname}")
    logger.info(f"Reading {fname}")
    checked = check_h5_file(fname, _FIX)
    try:
        state = h5io.read_hdf5(str(fname), title=H5_TITLE, slash="replace")
    except Exception as exp:  # HDF5 on a damaged file raises anything
        if "data found" in str(exp):  # h5io: no group of this title
            raise ValueError(
                f"{fname} is not a {wrote}: it holds {h5_kind(fname)}."
            ) from None
        raise ValueError(
            f"{fname} is not a {wrote}, or it is damaged ({type(exp).__name__}: "
            f"{exp}); save it again from the original object or re-run the "
            "explanation."
        ) from None
    if not isinstance(state, dict):
        raise ValueError(
            f"{fname} is not a {wrote} (its content is a {type(state).__name__})."
        )
    if not checked:  # an earlier version's file: the checksum of its state
        verify_checksum(fname, state)
    try:
        cls = container_of(state.get("dims", ()))
    except (TypeError, ValueError) as exp:
        raise ValueError(f"{fname} cannot be read back as a {what}: {exp}") from None
    if want is not None and cls is not want:
        raise ValueError(
            f"{fname} holds a {cls.__name__}, not a {what}; read it with "
            "mne_freqmask.read_saliency."
        )
    out = cls.__new__(cls)
    try:
        out.__setstate__(state)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exp:
        raise ValueError(
            f"{fname} cannot be read back as a {cls.__name__}: {exp}"
        ) from None
    return out
