"""Many recordings: one saliency file per epochs file, in parallel.

:func:`explain_files` explains each ``-epo.fif`` file and writes its
:class:`~mne_freqmask.SpectralSaliency` (with ``time_windows``: its
:class:`~mne_freqmask.SpectralSaliencyTFR`) next to the others, skipping
files already done, so an interrupted run resumes where it stopped. The files
run in parallel through joblib, the convention of the MNE ecosystem (as
:func:`mne.parallel.parallel_func` and mne-bids-pipeline): inside
``joblib.parallel_config(backend="dask")`` with a ``dask.distributed``
client, they are spread over the Dask cluster's workers, one machine or
many.
"""

import os
from pathlib import Path

from mne.utils import _validate_type, logger, verbose

from mne_freqmask.utils._docs import fill_doc

#: default ends of the output names: whole-epoch and time-resolved maps
SUFFIXES = {False: "-sal.h5", True: "-sal-tfr.h5"}


def _out_name(fname, out_dir, suffix):
    name = Path(fname).name
    ends = ("-epo.fif.gz", "-epo.fif", "_epo.fif.gz", "_epo.fif", ".fif.gz", ".fif")
    for end in ends:
        if name.endswith(end):
            name = name[: -len(end)]
            break
    return Path(out_dir) / f"{name}{suffix}"


def _explain_one(fname, out, model, method, device, threads, time_windows, explain_kw):
    """Read, explain and write one file (runs in a joblib / Dask worker)."""
    import mne
    import torch

    from mne_freqmask._explain import explain

    if not isinstance(model, torch.nn.Module):  # a model file, loaded here
        from mne_freqmask.models import load_any_model

        model, _ = load_any_model(model)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        epochs = mne.read_epochs(fname, preload=False, verbose=False)
        sal = explain(
            epochs,
            model,
            method=method,
            device=device,
            time_windows=time_windows,
            verbose=False,
            **explain_kw,
        )
        sal.save(out, overwrite=True, verbose=False)  # atomic: a temp file, renamed
    finally:
        torch.set_num_threads(before)
    return str(out)


@verbose
@fill_doc
def explain_files(
    fnames,
    model,
    out_dir,
    *,
    method="freqmask",
    time_windows=None,
    suffix=None,
    overwrite=False,
    n_jobs=1,
    device="auto",
    threads=None,
    verbose=None,
    **explain_kw,
):
    """Explain many epochs files, writing one saliency file each.

    Parameters
    ----------
    fnames : list of path-like
        Epochs files (``-epo.fif``), read with ``preload=False``, so that one
        file's epochs need not fit in memory.
    model : torch.nn.Module | path-like
        The trained classifier (see :func:`mne_freqmask.explain`; never
        modified), or its file: one written by
        :func:`mne_freqmask.models.save_model` or ``torch.jit.save``, which
        each worker loads itself. Workers of other processes or machines
        receive a module pickled, which braindecode's models with
        weight constraints (EEGNet, ...) do not allow: pass their file then.
    out_dir : path-like
        Existing folder for the saliency files: ``<name><suffix>``, where
        ``<name>`` is the epochs file's name without ``-epo.fif``.
    method : str
        The method of :func:`mne_freqmask.explain`.
    time_windows : None | tuple of float | "auto"
        As in :func:`mne_freqmask.explain`: ``None`` (default) writes one
        :class:`~mne_freqmask.SpectralSaliency` per file (read it with
        :func:`~mne_freqmask.read_saliency`); ``(length, step)`` in seconds
        or ``"auto"`` writes one time-resolved
        :class:`~mne_freqmask.SpectralSaliencyTFR` per file (read it with
        :func:`~mne_freqmask.read_saliency_tfr`).
    suffix : str | None
        End of the saliency files' names (``.h5`` or ``.hdf5``). None
        (default): ``"-sal.h5"`` for whole-epoch maps and ``"-sal-tfr.h5"``
        for time-resolved ones (MNE's ``-tfr.h5`` ending for TFR files), so
        that the two kinds never share a name in one folder.
    overwrite : bool
        Explain again files whose saliency file exists. ``False`` (default)
        skips them: a run that was interrupted resumes where it stopped (a
        file is written under a temporary name and renamed when complete,
        so an existing one is whole). A file to be skipped is read first:
        one of the other kind (whole-epoch against time-resolved), or of
        other windows, is refused before any file is explained, so that a
        resumed run never mixes the two.
    n_jobs : int
        Files explained at once (joblib's ``n_jobs``: ``-1`` for all cores,
        or all Dask workers under ``joblib.parallel_config(backend="dask")``).
    device : str | list of str
        Device of the explanations (see :func:`mne_freqmask.explain`); a list
        assigns its devices to the files in turn, e.g.
        ``["cuda:0", "cuda:1"]`` for two GPUs of one machine. ``"auto"``
        (default) picks each worker's own GPU when it has one.
    threads : int | None
        Torch threads per file, restored afterwards. None (default): 1 when
        files run in parallel (``n_jobs != 1``: the workers share the cores),
        otherwise torch's current setting. FreqMask's map depends slightly on
        the thread count (see :ref:`performance`); fix it to compare runs.
    %(verbose)s
    **explain_kw
        Further parameters of :func:`mne_freqmask.explain` (``bands``,
        ``picks``, ``reference``, method parameters ...), the same for every
        file.

    Returns
    -------
    out_fnames : list of pathlib.Path
        The saliency file of each epochs file, in the order of ``fnames``
        (including those skipped because they existed).

    Notes
    -----
    On a Dask cluster (e.g. ``dask.distributed.LocalCluster``, or a
    ``dask-jobqueue`` cluster on an HPC system)::

        from dask.distributed import Client
        import joblib

        client = Client(cluster)
        with joblib.parallel_config(backend="dask"):
            mfm.explain_files(fnames, model, "derivatives/", n_jobs=-1)

    Every worker must see ``fnames`` and ``out_dir`` (a shared file
    system).
    """
    import pickle

    import torch
    from joblib import Parallel, delayed

    _validate_type(model, (torch.nn.Module, "path-like"), "model")
    if not isinstance(model, torch.nn.Module):
        model = Path(model).expanduser().absolute()
        if not model.is_file():
            raise FileNotFoundError(f"No such model file: {model}")
    elif n_jobs != 1:
        try:
            pickle.dumps(model)
        except Exception as exp:
            raise ValueError(
                f"The model cannot be sent to other processes ({type(exp).__name__}"
                f": {str(exp).splitlines()[0][:80]}); save it with "
                "mne_freqmask.models.save_model (or torch.jit.save) and pass "
                "the file name as model, or use n_jobs=1."
            ) from None
    _validate_type(fnames, (list, tuple), "fnames", "list of path-like")
    for k, f in enumerate(fnames):
        _validate_type(f, "path-like", f"fnames[{k}]")
    if len(fnames) == 0:
        raise ValueError("fnames is empty; give at least one epochs file.")
    missing = [str(f) for f in fnames if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"No such epochs file(s): {missing}")
    _validate_type(out_dir, "path-like", "out_dir")
    out_dir = Path(out_dir).expanduser().absolute()
    if not out_dir.is_dir():
        raise FileNotFoundError(
            f"The output folder {out_dir} does not exist; create it first."
        )
    if time_windows is not None:
        from mne_freqmask.methods._registry import check_short_time

        check_short_time(method)
        _check_windows_arg(time_windows)
    if suffix is None:
        suffix = SUFFIXES[time_windows is not None]
    _validate_type(suffix, str, "suffix")
    if not suffix.lower().endswith((".h5", ".hdf5")):
        raise ValueError(f"suffix must end with .h5 or .hdf5, got {suffix!r}.")
    _validate_type(overwrite, bool, "overwrite")
    _validate_type(n_jobs, "int-like", "n_jobs")
    _validate_type(threads, ("int-like", None), "threads")
    devices = [device] if isinstance(device, str) else list(device)
    for k, d in enumerate(devices):
        _validate_type(d, str, f"device[{k}]")
    outs = [_out_name(f, out_dir, suffix) for f in fnames]
    seen = {}
    for f, out in zip(fnames, outs, strict=True):
        if out in seen:
            raise ValueError(
                f"{seen[out]} and {f} would both be written to {out.name}; rename "
                "one of the epochs files."
            )
        seen[out] = f
    if threads is None and n_jobs != 1:
        threads = 1
    todo = [k for k, out in enumerate(outs) if overwrite or not out.exists()]
    for k in sorted(set(range(len(outs))) - set(todo)):
        _check_done(outs[k], time_windows)
    logger.info(
        f"explain_files: {len(todo)} of {len(fnames)} files to explain "
        f"({len(fnames) - len(todo)} already done), n_jobs={n_jobs}"
    )
    jobs = (
        delayed(_explain_one)(
            os.fspath(fnames[k]),
            outs[k],
            model,
            method,
            devices[k % len(devices)],
            threads,
            time_windows,
            explain_kw,
        )
        for k in todo
    )
    Parallel(n_jobs=n_jobs)(jobs)
    return outs


def _check_windows_arg(time_windows):
    """Refuse windows that :func:`mne_freqmask.explain` would, before any work."""
    from mne_freqmask.spectral import parse_time_windows, short_time_grid

    # the form, then the step rule (step <= length / 2) on a fine sampling
    # and an epoch one sample longer than the window: a grid of a few
    # windows (each file's own epochs decide the samples)
    parsed = parse_time_windows(time_windows)
    if parsed != "auto":
        sfreq = 1e4
        short_time_grid(sfreq, int(round(parsed[0] * sfreq)) + 1, 1, parsed)


def _windows_of(state):
    """``(win_length, hop)`` in samples of a saved TFR map (None if unknown)."""
    if state.get("win_length") is None or state.get("hop") is None:
        return None
    return int(state["win_length"]), int(state["hop"])


def _expected_windows(time_windows, state):
    """The ``(win_length, hop)`` that ``time_windows`` gives on that file's epochs."""
    from mne_freqmask.spectral import short_time_grid

    n_times, sfreq = state.get("n_times"), state["info"]["sfreq"]
    if n_times is None:
        return None
    grid = short_time_grid(sfreq, int(n_times), 1, time_windows)
    return grid.win_length, grid.hop


def _check_done(out, time_windows):
    """Raise unless the existing ``out`` is a map of the kind (and windows) asked."""
    import h5io

    from mne_freqmask._saliency_io import H5_TITLE

    try:
        state = h5io.read_hdf5(str(out), title=H5_TITLE, slash="replace")
        tfr = "time" in tuple(state["dims"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(
            f"{out} exists but is not a saliency file of mne_freqmask; delete "
            "it, or pass overwrite=True (or another out_dir or suffix)."
        ) from None
    fix = "pass overwrite=True to replace it, or another out_dir or suffix"
    if tfr != (time_windows is not None):
        held = "a time-resolved SpectralSaliencyTFR" if tfr else "a whole-epoch"
        held += "" if tfr else " SpectralSaliency"
        asked = (
            f"time-resolved maps (time_windows={time_windows!r})"
            if time_windows is not None
            else "whole-epoch maps (time_windows=None)"
        )
        raise ValueError(
            f"{out} exists and holds {held}, but this run asks for {asked}; {fix}."
        )
    if tfr:
        held, asked = _windows_of(state), _expected_windows(time_windows, state)
        if None not in (held, asked) and held != asked:
            sfreq = state["info"]["sfreq"]
            raise ValueError(
                f"{out} exists and holds windows of {held[0] / sfreq:g} s every "
                f"{held[1] / sfreq:g} s, but this run asks for time_windows="
                f"{time_windows!r} ({asked[0] / sfreq:g} s every "
                f"{asked[1] / sfreq:g} s); {fix}."
            )
