"""Many recordings: one saliency file per epochs file, in parallel.

:func:`explain_files` explains each ``-epo.fif`` file and writes its
:class:`~mne_freqmask.SpectralSaliency` (with ``time_windows``: its
:class:`~mne_freqmask.SpectralSaliencyTFR`) next to the others, with a
fingerprint record beside each (``<out>.fingerprint.json``: the run's
fingerprint of :mod:`mne_freqmask._fingerprint`, the one checkpoints use, and
the hash of the map). A rerun skips the files whose record matches it, so an
interrupted run resumes where it stopped, and redoes (``overwrite=True``) or
refuses, naming what changed, the others: a stale map is never taken as
done. A file that fails stops the run or, with ``on_error="continue"``, is
reported while the others go on. The files
run in parallel through joblib, the convention of the MNE ecosystem (as
:func:`mne.parallel.parallel_func` and mne-bids-pipeline): inside
``joblib.parallel_config(backend="dask")`` with a ``dask.distributed``
client, they are spread over the Dask cluster's workers, one machine or
many.
"""

import os
import uuid
from pathlib import Path
from typing import NamedTuple

from mne.utils import _validate_type, logger, verbose

from mne_freqmask._files_out import (
    FAILURES_TSV,
    SUFFIXES,
    output_names,
    write_failures,
)
from mne_freqmask.utils._docs import fill_doc

#: parameters of explain() that do not change what is computed
_NEUTRAL = ("epochs", "model", "method", "device", "n_jobs", "verbose", "checkpoint")


class FileFailure(NamedTuple):
    """An epochs file that :func:`explain_files` could not explain."""

    #: the epochs file
    fname: Path
    #: its saliency file (not written)
    out: Path
    #: the error, ``"TypeName: message"``
    error: str


class ExplainedFiles(list):
    """The saliency files of :func:`explain_files`, and the files that failed.

    A list of :class:`pathlib.Path` (the saliency files written or found
    done, in the order of ``fnames``) with one attribute, ``failures``: a
    list of :class:`FileFailure` (``fname``, ``out``, ``error``), empty
    unless ``on_error="continue"`` met errors.
    """

    def __init__(self, outs, failures=()):
        super().__init__(outs)
        self.failures = list(failures)


def _load_model_file(path, options):
    """The one call of the model loader (a worker loads the file itself)."""
    from mne_freqmask.models import load_any_model

    return load_any_model(path, **(options or {}))[0]


def _named_error(exp, fname):
    """``exp`` with the epochs file's name in front of its message."""
    msg = f"{fname}: {type(exp).__name__}: {exp}"
    try:
        new = type(exp)(msg)
    except Exception:  # exceptions whose constructor takes other arguments
        new = RuntimeError(msg)
    new.__cause__ = exp
    return new


def _explain_one(fname, out, identity, device, job):
    """Read, explain and write one file; return ``(out, None)`` or ``(None, error)``.

    Runs in a joblib / Dask worker. ``job`` holds what every file shares:
    ``model`` (a module, or a model file loaded here with
    ``model_options``), ``method``, ``threads``, ``time_windows``, ``run``
    (the run's fingerprint) and ``kw`` (explain()'s other keywords;
    ``kw["reference"]`` may be an epochs file, read here);
    ``identity`` is the input's file identity taken by the caller (hashed
    again only if the file's size or modification time changed since).
    Whatever fails is returned, named after the file, so that the caller
    decides whether the others go on.
    """
    import json
    import warnings

    import mne
    import torch

    from mne_freqmask._explain import explain
    from mne_freqmask._fingerprint import (
        file_fingerprint,
        file_identity,
        file_sha,
        record_name,
    )
    from mne_freqmask.utils._checks import _atomic_write, _write_new_file

    model, kw, threads = job["model"], job["kw"], job["threads"]
    time_windows = job["time_windows"]
    before = torch.get_num_threads()
    try:
        if not isinstance(model, torch.nn.Module):
            model = _load_model_file(model, job["model_options"])
        if isinstance(kw.get("reference"), str):  # read here, once per file
            ref = mne.read_epochs(kw["reference"], preload=False, verbose=False)
            kw = dict(kw, reference=ref)
        if threads is not None:
            torch.set_num_threads(threads)
        st = os.stat(fname)
        if (st.st_size, st.st_mtime_ns) != (identity["size"], identity["mtime_ns"]):
            identity = file_identity(fname)  # changed since it was hashed
        try:
            # MNE only warns on a truncated file ("Invalid tag ..."), then
            # fails later, in the data, with a reshape error: an error here
            with warnings.catch_warnings():
                warnings.filterwarnings("error", "Invalid tag", RuntimeWarning)
                epochs = mne.read_epochs(fname, preload=False, verbose=False)
        except Exception as exp:  # truncated, damaged, or not epochs at all
            raise ValueError(
                f"cannot be read as MNE epochs ({type(exp).__name__}: {exp}); "
                "check that it is a whole -epo.fif file written by "
                "mne.Epochs.save (not truncated, not a raw or other file), or "
                "leave it out."
            ) from exp
        sfreq, n_times = float(epochs.info["sfreq"]), len(epochs.times)
        sal = explain(
            epochs,
            model,
            method=job["method"],
            device=device,
            time_windows=time_windows,
            verbose=False,
            **kw,
        )

        # the map under a temporary name, then its record, then the rename:
        # a stopped run leaves a record whose map hash no map has, never a
        # map with another run's record
        def write(tmp):
            sal.save(tmp, overwrite=True, verbose=False)
            rec = dict(
                fingerprint=file_fingerprint(
                    job["run"], identity, time_windows, sfreq, n_times
                ),
                input=dict(identity, fname=str(fname), sfreq=sfreq, n_times=n_times),
                map_sha256=file_sha(tmp),
            )
            text = json.dumps(rec, indent=1, sort_keys=True)
            _write_new_file(
                record_name(out), lambda p: Path(p).write_text(text), overwrite=True
            )

        _atomic_write(out, write)
    except Exception as exp:
        return None, _named_error(exp, fname)
    finally:
        torch.set_num_threads(before)
    return str(out), None


def _run_params(method, explain_kw):
    """explain()'s and the method's parameters that change the result, defaults
    filled in (so that giving a default explicitly changes nothing)."""
    import inspect

    from mne_freqmask._explain import explain
    from mne_freqmask.methods import get_method
    from mne_freqmask.methods._registry import FIXED_ARGS, check_method_kw

    func = get_method(method)
    sig = inspect.signature(explain).parameters
    own = {k: v for k, v in explain_kw.items() if k in sig}
    method_kw = {k: v for k, v in explain_kw.items() if k not in sig}
    check_method_kw(method, method_kw)
    params = {
        k: p.default
        for k, p in inspect.signature(func).parameters.items()
        if k not in FIXED_ARGS and p.default is not inspect.Parameter.empty
    }
    params.update(method_kw)
    for k, p in sig.items():
        if k in _NEUTRAL or k == "time_windows" or p.kind != p.KEYWORD_ONLY:
            continue
        params[k] = own.get(k, p.default)
    # defaults that depend on other parameters (freqmask's n_steps=None)
    resolve = getattr(func, "resolve_defaults", None)
    return params if resolve is None else resolve(params)


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
    on_error="raise",
    n_jobs=1,
    device="auto",
    threads=None,
    model_options=None,
    out_names=None,
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
        :func:`mne_freqmask.models.save_model` or ``torch.jit.save`` (or,
        with ``model_options``, a state dict), which each worker loads
        itself. Workers of other processes or machines receive a module
        pickled, which braindecode's models with weight constraints
        (EEGNet, ...) do not allow: pass their file then.
    out_dir : path-like
        Existing folder for the saliency files: ``<name><suffix>``, where
        ``<name>`` is the epochs file's name without ``-epo.fif``. Each has a
        fingerprint record beside it, ``<name><suffix>.fingerprint.json``.
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
        What to do with a saliency file that exists but was not made by this
        run (another model, method, parameter, ``time_windows`` or input
        file content, or no fingerprint record). ``False`` (default): refuse,
        naming what changed, before any file is explained. ``True``: explain
        that file again. Either way a file whose fingerprint matches this
        run is skipped, so an interrupted run resumes where it stopped (a
        file is written under a temporary name and renamed when complete,
        so an existing one is whole).
    on_error : "raise" | "continue"
        What a file that fails does (unreadable, wrong channels, ...; the
        convention of mne-bids-pipeline). ``"raise"`` (default): stop with
        the error, its message starting with the file's name; the files
        written before are whole. ``"continue"``: log the failure, go on
        with the other files and report every failure in the result's
        ``failures`` and in ``explain_files_failures.tsv`` in ``out_dir``
        (removed by a later run without failures). A file refused because
        of ``overwrite=False`` counts as a failure too.
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
    model_options : dict | None
        With a model file: options of the model loader, as the command
        line's ``--model-class``, ``--model-kwargs`` and ``--input-scale``
        (``model_class_name``, ``model_kwargs``, ``scale``), e.g.
        ``dict(model_class_name="EEGNet", model_kwargs=dict(n_chans=8,
        n_outputs=2, n_times=256))`` for a state dict.
    out_names : list of str | None
        The saliency file of each epochs file, in the order of ``fnames``,
        relative to ``out_dir`` (subfolders included, which must exist;
        ``suffix`` is then unused): names that ``suffix`` cannot make, such
        as the BIDS names of :func:`mne_freqmask.explain_bids`. None
        (default): ``<name><suffix>``.
    %(verbose)s
    **explain_kw
        Further parameters of :func:`mne_freqmask.explain` (``bands``,
        ``picks``, method parameters ...), the same for every file.
        ``reference`` may be an epochs file (path-like), which each worker
        reads itself; epochs in memory are written once to a temporary file
        in ``out_dir`` when files run in parallel, so that they do not travel
        with every file.

    Returns
    -------
    out_fnames : list of Path
        A list of the saliency files (:class:`pathlib.Path`) in the order of
        ``fnames``, those skipped because they were done included and those
        that failed left out; its ``failures`` attribute lists the files that
        failed (named tuples ``FileFailure``: ``fname``,
        ``out``, ``error``).

    Notes
    -----
    What a rerun checks, per saliency file, against its fingerprint record:
    the model (a hash of its class, structure and weights), the method, every
    parameter of the method and of :func:`~mne_freqmask.explain` that changes
    the result (defaults filled in), bands, picks, ``time_windows`` (in
    samples), ``random_state``, the reference (a file: its content; epochs
    in memory: their number and events only) and the epochs file's size and
    SHA-256 (split parts included), and that the saliency file is the one
    the record was written for. Not checked: the device and thread count
    (they change FreqMask's map within rounding), the versions of the
    packages, and the data of a reference passed in memory.

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
    from mne.utils import _check_option

    from mne_freqmask._fingerprint import model_sha, reference_identity

    model = _check_model_arg(model, model_options, n_jobs)
    _check_option("on_error", on_error, ("raise", "continue"))
    fnames, out_dir = _check_paths(fnames, out_dir)
    if time_windows is not None:
        from mne_freqmask.methods._registry import check_short_time
        from mne_freqmask.spectral import check_time_windows

        check_short_time(method)
        check_time_windows(time_windows)
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
    explain_kw, reference = _check_explain_kw(explain_kw)
    outs = output_names(fnames, out_dir, suffix, out_names)
    if threads is None and n_jobs != 1:
        threads = 1
    # the model as the workers will see it: loaded once here for its hash
    # (and its errors); a file goes to the workers, which load it themselves
    net = _load_model_file(model, model_options) if isinstance(model, Path) else model
    params = _run_params(method, explain_kw)
    run = dict(
        model=model_sha(net),
        method=method,
        bands=params.pop("bands"),
        picks=params.pop("picks"),
        random_state=params.pop("random_state"),
        reference=reference_identity(reference),
        method_kw={k: v for k, v in params.items() if k != "reference"},
    )
    if n_jobs == 1:
        model = net  # no second load in this process
    todo, failures, identities = _plan(fnames, outs, run, time_windows, overwrite)
    if failures and on_error == "raise":
        errors = [str(e) for _, e in failures]
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        if all(isinstance(e, ValueError) for _, e in failures):
            raise ValueError(" ".join(errors[:3]) + more)
        raise failures[0][1]
    logger.info(
        f"explain_files: {len(todo)} of {len(fnames)} files to explain "
        f"({len(fnames) - len(todo) - len(failures)} already done), n_jobs={n_jobs}"
    )
    job = dict(
        model=model,
        model_options=model_options,
        method=method,
        threads=threads,
        time_windows=time_windows,
        run=run,
        kw=explain_kw,
    )
    files = {k: (fnames[k], outs[k], identities[k]) for k in todo}
    failures += _run_jobs(todo, files, devices, job, n_jobs, on_error, out_dir)
    failed = {k for k, _ in failures}
    report = [
        FileFailure(fnames[k], outs[k], str(e).removeprefix(f"{fnames[k]}: "))
        for k, e in sorted(failures, key=lambda item: item[0])
    ]
    for item in report:
        logger.warning(f"explain_files: {item.fname} failed: {item.error}")
    write_failures(out_dir / FAILURES_TSV, report)
    return ExplainedFiles([o for k, o in enumerate(outs) if k not in failed], report)


def _check_model_arg(model, model_options, n_jobs):
    """A module (a fitted skorch net: its network), or a model file that
    exists (an absolute :class:`~pathlib.Path`)."""
    import pickle

    import torch

    from mne_freqmask.models import as_model

    if not isinstance(model, torch.nn.Module | str | os.PathLike):
        model = as_model(model)  # a fitted skorch net: its network
    _validate_type(model_options, (dict, None), "model_options")
    if not isinstance(model, torch.nn.Module):
        model = Path(model).expanduser().absolute()
        if not model.exists():
            raise FileNotFoundError(f"No such model file: {model}")
    elif model_options:
        raise ValueError(
            "model_options are for a model file; model is a torch.nn.Module "
            "already: drop model_options."
        )
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
    return model


def _check_paths(fnames, out_dir):
    """The epochs files and the output folder, checked, as absolute paths."""
    _validate_type(fnames, (list, tuple), "fnames", "list of path-like")
    for k, f in enumerate(fnames):
        _validate_type(f, "path-like", f"fnames[{k}]")
    if len(fnames) == 0:
        raise ValueError("fnames is empty; give at least one epochs file.")
    missing = [str(f) for f in fnames if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"No such epochs file(s): {missing}")
    fnames = [Path(f).expanduser().absolute() for f in fnames]
    _validate_type(out_dir, "path-like", "out_dir")
    out_dir = Path(out_dir).expanduser().absolute()
    if not out_dir.is_dir():
        raise FileNotFoundError(
            f"The output folder {out_dir} does not exist; create it first."
        )
    return fnames, out_dir


def _check_explain_kw(explain_kw):
    """explain()'s keywords without ``checkpoint``, a reference file as an
    absolute path; and the reference (epochs, a Path or None)."""
    from mne import BaseEpochs

    explain_kw = dict(explain_kw)
    if explain_kw.pop("checkpoint", None) is not None:
        raise ValueError(
            "checkpoint is for one epochs file; explain_files resumes by file "
            "(a file done is skipped): drop checkpoint."
        )
    reference = explain_kw.get("reference")
    if reference is not None:
        _validate_type(reference, (BaseEpochs, "path-like"), "reference")
        if not isinstance(reference, BaseEpochs):
            reference = Path(reference).expanduser().absolute()
            if not reference.is_file():
                raise FileNotFoundError(f"No such reference epochs file: {reference}")
            explain_kw["reference"] = str(reference)
    return explain_kw, reference


def _plan(fnames, outs, run, time_windows, overwrite):
    """Which files to explain (``todo``), which are refused (``failures``:
    ``(index, error)``), and the input files' identities."""
    from mne_freqmask._fingerprint import file_identity, record_status

    todo, failures, identities = [], [], {}
    for k, (fname, out) in enumerate(zip(fnames, outs, strict=True)):
        try:
            identities[k] = file_identity(fname)
            status = record_status(out, run, identities[k], time_windows)
        except OSError as exp:  # an input file that cannot be read
            status = _named_error(exp, fname)
        if isinstance(status, Exception):
            failures.append((k, status))
        elif status == "todo" or (status != "done" and overwrite):
            todo.append(k)
        elif status != "done":
            failures.append(
                (
                    k,
                    ValueError(
                        f"{out} exists but {status}. Pass overwrite=True "
                        "(--overwrite on the command line) to explain "
                        f"{fname.name} again, or another out_dir or suffix "
                        "to keep it."
                    ),
                )
            )
    return todo, failures, identities


def _run_jobs(todo, files, devices, job, n_jobs, on_error, out_dir):
    """Explain the files ``todo`` (``files[k]``: epochs file, saliency file,
    input identity) through joblib; return the failures (``(index, error)``;
    with ``on_error="raise"`` the first is raised)."""
    from joblib import Parallel, delayed
    from mne import BaseEpochs

    reference, tmp_ref, failures = job["kw"].get("reference"), None, []
    try:
        if isinstance(reference, BaseEpochs) and n_jobs != 1 and len(todo) > 1:
            # once to disk, read by each worker, rather than pickled with
            # every file (joblib memmaps arrays for its own processes only;
            # a Dask graph would carry the whole reference per task)
            tmp_ref = out_dir / f".reference-{uuid.uuid4().hex[:12]}-epo.fif"
            reference.save(tmp_ref, fmt="double", verbose=False)
            job = dict(job, kw=dict(job["kw"], reference=str(tmp_ref)))
        jobs = (
            delayed(_explain_one)(*files[k], devices[i % len(devices)], job)
            for i, k in enumerate(todo)
        )
        results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
        for k, (_, error) in zip(todo, results, strict=True):
            if error is None:
                continue
            if on_error == "raise":
                raise error
            failures.append((k, error))
    finally:
        if tmp_ref is not None:
            for part in out_dir.glob(f"{tmp_ref.name[:-4]}*.fif"):
                part.unlink(missing_ok=True)
    return failures
