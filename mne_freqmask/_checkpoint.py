"""Resumable runs: ``explain(..., checkpoint="run.h5")`` (see its docs).

After each chunk the results of all finished chunks are written atomically
(temporary file, fsync, rename) with the run's fingerprint
(:mod:`mne_freqmask._fingerprint`, which :func:`mne_freqmask.explain_files`
uses too); a run whose fingerprint differs is refused. A chunk of a
time-resolved run holds the flat channel x (band x window) cells that the
methods return; :func:`mne_freqmask.explain` reshapes the whole as it does
without a checkpoint.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
from mne.utils import _validate_type, logger

from mne_freqmask._fingerprint import (
    changed_keys,
    epochs_identity,
    model_sha,
    reference_identity,
    run_fingerprint,
)
from mne_freqmask._inputs import EpochsSource
from mne_freqmask._saliency_io import check_h5_file, write_h5
from mne_freqmask._saliency_utils import _params_to_json
from mne_freqmask.methods._base import MethodResult
from mne_freqmask.utils._checks import _atomic_write

_TITLE = "mnefreqmask_checkpoint"
_VERSION = 2


class _EpochRange(EpochsSource):
    """Epochs ``start:stop`` of an :class:`~mne_freqmask._inputs.EpochsSource`,
    with indices relative to ``start``."""

    def __init__(self, source, start, stop):
        self._src, self._start = source, int(start)
        self.shape = (int(stop) - int(start),) + tuple(source.shape[1:])
        self.preloaded = source.preloaded

    def _absolute(self, item):
        idx = np.arange(self.shape[0])[item] + self._start
        if idx.ndim == 0:
            return int(idx)
        if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
            return slice(int(idx[0]), int(idx[0]) + len(idx))
        return idx

    def __getitem__(self, item):
        rest = ()
        if isinstance(item, tuple):
            item, rest = item[0], item[1:]
        return self._src[(self._absolute(item),) + rest]

    def _read(self, item):
        return self._src._read(self._absolute(item))


# one fingerprint for checkpoints and explain_files (mne_freqmask._fingerprint)
_model_sha = model_sha


def fingerprint(
    *,
    method,
    method_kw,
    bands,
    inp,
    epochs,
    reference,
    model,
    random_state,
    windows=None,
):
    """What must be equal for a checkpoint to be resumed: the
    :func:`~mne_freqmask._fingerprint.run_fingerprint` of the epochs in memory."""
    return run_fingerprint(
        model=model,
        method=method,
        method_kw=method_kw,
        bands=bands,
        picks=[epochs.ch_names[i] for i in inp.picks],
        random_state=random_state,
        reference=reference_identity(reference),
        windows=windows,
        sfreq=epochs.info["sfreq"],
        data=epochs_identity(epochs, inp),
    )


def _windows_hint(stored, fp):
    """The part of the refusal that names the windows of both runs."""
    whole = "time_windows=None (whole epoch)"
    return (
        f": the checkpoint holds {stored.get('time_windows', whole)}, this run "
        f"asks for {fp.get('time_windows', whole)}"
    )


def check_checkpoint_args(checkpoint, method, method_kw, random_state):
    """Validate ``checkpoint`` and what it needs; return the path or None."""
    if checkpoint is None:
        return None
    _validate_type(checkpoint, "path-like", "checkpoint")
    path = Path(checkpoint).expanduser().absolute()
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"checkpoint must end with .h5 or .hdf5, got {path.name!r}.")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"The folder {path.parent} of the checkpoint does not exist."
        )
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder, not a file name.")
    if not (random_state is None or isinstance(random_state, int | np.integer)):
        raise ValueError(
            "A checkpointed run must be repeatable: random_state must be None or "
            f"an int, got {type(random_state).__name__}."
        )
    if method == "easypeasi" and method_kw.get("level", "group") == "group":
        raise ValueError(
            'method="easypeasi" with level="group" scores all epochs at once and '
            'cannot be split into resumable chunks; use level="instance" or no '
            "checkpoint."
        )
    return path


def _read(path):
    import h5io

    # the bytes are checked first: HDF5 can hang on a damaged file
    check_h5_file(
        path, "delete it or pass another checkpoint file (the run starts over)"
    )
    try:
        state = h5io.read_hdf5(str(path), title=_TITLE, slash="replace")
    except Exception as exp:  # HDF5 on a damaged file raises anything
        raise ValueError(
            f"checkpoint {path} exists but is not a checkpoint of "
            f"mne_freqmask.explain ({exp}); pass another file name or delete it."
        ) from None
    return state


def _write(path, state):
    # with the byte checksum that _read checks
    _atomic_write(path, lambda tmp: write_h5(tmp, state, _TITLE), fsync=True)


def run_chunks(path, fp, func, run, *, chunk_size, kw, provenance=None):
    """Run ``func`` on ``run`` (a MethodRun) chunk by chunk, resuming from
    and writing to ``path``.

    ``provenance`` (JSON text) is stored in a new checkpoint.

    ``chunk_size`` is an int, or a callable giving the "auto" size (the size
    stored in an existing checkpoint is used instead).
    """
    state = None
    if path.exists():
        state = _read(path)
        if int(state.get("version", 1)) < _VERSION:
            raise ValueError(
                f"checkpoint {path} was written by an earlier version of "
                "mne_freqmask, whose fingerprint of a run was weaker (the "
                "model's hash now covers its structure); it cannot be resumed: "
                "delete it, or pass another checkpoint file, to start over."
            )
        stored = json.loads(state["fingerprint"])
        diff = changed_keys(stored, fp)
        size = int(state["chunk_size"])
        if not callable(chunk_size) and int(chunk_size) != size:
            diff.append("chunk_size")
        if diff:
            hint = _windows_hint(stored, fp) if "time_windows" in diff else ""
            raise ValueError(
                f"checkpoint {path} was written by a run with other arguments "
                f"({', '.join(diff)} differ{hint}); repeat that run's arguments "
                "to resume it, or pass another checkpoint file (or delete this "
                "one) to start over."
            )
    else:
        size = int(chunk_size() if callable(chunk_size) else chunk_size)
        state = dict(
            version=_VERSION,
            fingerprint=json.dumps(fp, sort_keys=True),
            chunk_size=size,
            chunks={},
            provenance=provenance or "{}",
        )
    inp = run.inp
    starts = list(range(0, inp.n_epochs, size))
    done = state["chunks"]
    if done:
        logger.info(
            f"Checkpoint {path.name}: {len(done)} of {len(starts)} chunks done, "
            f"resuming at chunk {len(done) + 1}."
        )
    for k, start in enumerate(starts):
        if str(k) in done:
            continue
        stop = min(start + size, inp.n_epochs)
        sub = dataclasses.replace(
            inp,
            x=_EpochRange(inp.x, start, stop),
            y=None if inp.y is None else inp.y[start:stop],
            target=None if inp.target is None else inp.target[start:stop],
        )
        res = func(dataclasses.replace(run, inp=sub, chunk_size=size), **kw)
        done[str(k)] = dict(
            data=np.asarray(res.data),
            # the container's own encoding, keys in the method's order: a
            # resumed run's method_params are those of an uninterrupted one
            params=_params_to_json(res.params),
            diagnostics={key: np.asarray(v) for key, v in res.diagnostics.items()},
        )
        _write(path, state)
        logger.info(f"Checkpoint {path.name}: chunk {k + 1}/{len(starts)} written.")
    parts = [done[str(k)] for k in range(len(starts))]
    data = np.concatenate([p["data"] for p in parts])
    keys = parts[0]["diagnostics"].keys()
    diagnostics = {
        key: np.concatenate([np.atleast_1d(p["diagnostics"][key]) for p in parts])
        for key in keys
    }
    return MethodResult(data, json.loads(parts[0]["params"]), diagnostics)
