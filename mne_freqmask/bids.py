"""BIDS in, BIDS derivatives out: :func:`explain_bids`.

A thin layer over :func:`mne_freqmask.explain_files` (the one loop over
epochs files) and MNE-BIDS (the ``bids`` extra): the epochs files of a BIDS
folder are found with :func:`mne_bids.find_matching_paths`, each is
explained into a derivatives folder under a BIDS name that keeps its
entities, and the folder gets a ``dataset_description.json``
(:func:`mne_bids.make_dataset_description`) and each map a JSON sidecar.
"""

import json
import os
import re
from pathlib import Path

import numpy as np
from mne.utils import _validate_type, logger, verbose

from mne_freqmask.utils._checks import _atomic_write
from mne_freqmask.utils._docs import fill_doc

#: name of the derivatives folder (the pipeline's name, as BIDS recommends)
DERIVATIVE_NAME = "mne-freqmask"

#: BIDS suffix of the maps: whole-epoch and time-resolved (distinct, so that
#: both kinds of map of one recording can sit side by side)
BIDS_SUFFIXES = {False: "saliency", True: "saliencytfr"}


def _default_out_root(root):
    """``<bids_root>/derivatives/mne-freqmask``, also when ``root`` is itself
    a derivatives folder (e.g. ``<bids_root>/derivatives/mne-bids-pipeline``)."""
    if root.parent.name == "derivatives":
        return root.parent / DERIVATIVE_NAME
    return root / "derivatives" / DERIVATIVE_NAME


def _label(text):  # a BIDS label: letters and digits only
    return re.sub(r"[^a-zA-Z0-9]", "", text)


def _as_list(value, name):
    """Labels as find_matching_paths takes them (text)."""
    _validate_type(
        value, (None, str, "int-like", list, tuple), name, "None, str or list of str"
    )
    if value is None:
        return None
    values = [value] if isinstance(value, str) or np.ndim(value) == 0 else value
    return [str(v) for v in values]


def _write_json(fname, content):
    text = json.dumps(content, indent=2, default=str) + "\n"
    _atomic_write(fname, lambda tmp: tmp.write_text(text))


def _describe_dataset(mne_bids, out_root, root):
    """``dataset_description.json`` of the derivatives (kept if present), with
    a ``DatasetLinks`` entry ``source`` for the sidecars' BIDS URIs."""
    from mne_freqmask import __version__

    mne_bids.make_dataset_description(
        path=str(out_root),
        name="mne-freqmask saliency maps",
        dataset_type="derivative",
        generated_by=[
            dict(
                Name="mne-freqmask",
                Version=__version__,
                Description="Frequency-domain saliency of an EEG model: one "
                "value per channel x band (x window) cell and epoch "
                "(mne_freqmask.explain_bids).",
            )
        ],
        overwrite=False,
        verbose=False,
    )
    fname = out_root / "dataset_description.json"
    desc = json.loads(fname.read_text())
    # make_dataset_description has no DatasetLinks (BIDS 1.8); a relative
    # path is a URI reference, as in the specification's examples
    desc["DatasetLinks"] = {"source": os.path.relpath(root, out_root)}
    _write_json(fname, desc)
    return fname


def _model_entry(model):
    if isinstance(model, str | os.PathLike):
        return dict(File=Path(model).name)
    return dict(Class=type(model).__name__)


def _sidecar(sal, source, model):
    """The JSON sidecar of one map."""
    from mne_freqmask import __version__

    tfr = "time" in sal.dims
    out = dict(
        Description="Frequency-domain saliency maps from mne_freqmask.explain: "
        + ("channel x band x window" if tfr else "channel x band")
        + " cells per epoch. Read with mne_freqmask."
        + ("read_saliency_tfr." if tfr else "read_saliency."),
        Sources=[f"bids:source:{source}"],
        Method=sal.method,
        MethodParameters=sal.method_params,
        Dims=list(sal.dims),
        Shape=list(sal.shape),
        Bands={n: [float(lo), float(hi)] for n, (lo, hi) in sal.bands.items()},
        Channels=list(sal.ch_names),
        SamplingFrequency=float(sal.info["sfreq"]),
        Model=_model_entry(model),
        GeneratedBy=dict(Name="mne-freqmask", Version=__version__),
        # the map's own record of how it was made (an empty dict for maps of
        # versions that kept none)
        Provenance=getattr(sal, "provenance", {}),
    )
    if tfr:
        out["TimeWindows"] = sal.time_windows and list(sal.time_windows)
        out["WindowCentres"] = [float(t) for t in sal.times]
    return out


@verbose
@fill_doc
def explain_bids(
    root,
    model,
    *,
    out_root=None,
    subjects=None,
    sessions=None,
    tasks=None,
    runs=None,
    processing="clean",
    suffix="epo",
    datatype=None,
    method="freqmask",
    time_windows=None,
    overwrite=False,
    n_jobs=1,
    device="auto",
    threads=None,
    verbose=None,
    **explain_kw,
):
    """Explain every epochs file of a BIDS folder into BIDS derivatives.

    The epochs files are found with :func:`mne_bids.find_matching_paths`
    (by default those named as mne-bids-pipeline writes them,
    ``sub-*/[ses-*/]<datatype>/sub-*_..._proc-clean_epo.fif``) and explained
    by :func:`~mne_freqmask.explain_files` (in parallel with ``n_jobs``;
    files already explained are skipped, so a stopped run resumes). Needs
    the ``bids`` extra (``mne-bids``).

    Parameters
    ----------
    root : path-like
        The folder whose ``sub-*`` folders hold the epochs files: a BIDS
        root, or a derivatives folder such as
        ``<bids_root>/derivatives/mne-bids-pipeline``.
    model : torch.nn.Module | path-like
        The trained model or its file, as for
        :func:`~mne_freqmask.explain_files`.
    out_root : path-like | None
        The derivatives folder written to (created if needed). None
        (default): ``<bids_root>/derivatives/mne-freqmask``, where
        ``<bids_root>`` is ``root``, or the folder above ``derivatives``
        when ``root`` is in one.
    subjects, sessions, tasks, runs : str | list of str | None
        The labels of the files to explain (None: all), as
        :func:`mne_bids.find_matching_paths` takes them; an int is its
        label as text (``runs=1`` matches ``run-1``, not ``run-01``).
    processing : str | None
        The ``proc`` entity of the epochs files (``"clean"``: the cleaned
        epochs of mne-bids-pipeline); None: any.
    suffix : str
        The BIDS suffix of the epochs files (``"epo"``, with the extension
        ``.fif``).
    datatype : str | None
        The data type folder (``"eeg"``, ``"meg"``); None: any.
    method : str
        The method of :func:`mne_freqmask.explain`.
    time_windows : None | tuple of float | "auto"
        As in :func:`mne_freqmask.explain`: time-resolved maps.
    overwrite : bool
        Explain again files whose map exists (``False``: skip them).
    n_jobs : int
        Files explained at once, as for :func:`~mne_freqmask.explain_files`.
    device : str | list of str
        Device of the explanations, as for
        :func:`~mne_freqmask.explain_files`.
    threads : int | None
        Torch threads per file, as for :func:`~mne_freqmask.explain_files`.
    %(verbose)s
    **explain_kw
        Further parameters of :func:`mne_freqmask.explain` (``bands``,
        ``picks``, method parameters ...), the same for every file.

    Returns
    -------
    fnames : list of pathlib.Path
        The map of each epochs file found, in the order of
        :func:`mne_bids.find_matching_paths`. Each has a JSON sidecar of the
        same name (``.json``). As :func:`~mne_freqmask.explain_files`'
        result: with ``on_error="continue"`` (a keyword passed on to it) the
        files that failed are left out and listed in ``.failures``.

    Notes
    -----
    Names. A map keeps every entity of its epochs file (but ``split``: the
    first part of a split file is read, as MNE reads the rest with it) and
    adds ``desc-<method>`` (letters and digits only, e.g.
    ``desc-amplitudegradients``; an existing ``desc`` label is kept before
    it), with the suffix ``saliency`` (``saliencytfr`` for time-resolved
    maps) and the extension ``.h5``::

        sub-01/eeg/sub-01_task-rest_proc-clean_desc-freqmask_saliency.h5
        sub-01/eeg/sub-01_task-rest_proc-clean_desc-freqmask_saliency.json

    The suffix says what the file holds (a saliency map, not epochs: ``_epo``
    would tell BIDS tools and pipelines that look for ``*_epo.fif`` files
    otherwise); ``desc`` is the BIDS entity for a variant of a derivative,
    so that the maps of several methods of one recording sit side by side.

    The derivatives folder gets a ``dataset_description.json``
    (``DatasetType: derivative``, ``GeneratedBy`` mne-freqmask and its
    version; an existing one is kept) with a ``DatasetLinks`` entry
    ``source`` pointing at ``root``; each sidecar names its epochs file in
    ``Sources`` (a BIDS URI, ``bids:source:sub-01/...``) and holds the
    method, its parameters, the bands, dims, channels, the model and the
    map's provenance.
    """
    from mne_freqmask.parallel import explain_files
    from mne_freqmask.saliency import read_saliency
    from mne_freqmask.saliency_tfr import read_saliency_tfr
    from mne_freqmask.utils._deps import import_optional

    mne_bids = import_optional("mne_bids")
    _validate_type(root, "path-like", "root")
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise FileNotFoundError(f"The BIDS folder {root} does not exist.")
    _validate_type(out_root, ("path-like", None), "out_root")
    out_root = (
        _default_out_root(root)
        if out_root is None
        else Path(out_root).expanduser().absolute()
    )
    _validate_type(processing, (str, None), "processing", "str or None")
    _validate_type(suffix, str, "suffix")
    _validate_type(datatype, (str, None), "datatype", "str or None")
    _validate_type(method, str, "method")
    paths = mne_bids.find_matching_paths(
        str(root),
        subjects=_as_list(subjects, "subjects"),
        sessions=_as_list(sessions, "sessions"),
        tasks=_as_list(tasks, "tasks"),
        runs=_as_list(runs, "runs"),
        processings=processing,
        suffixes=suffix,
        extensions=".fif",
        datatypes=datatype,
    )
    # files of root's own subjects only (not of derivatives below it), and
    # the first part of split files
    paths = [
        p
        for p in paths
        if Path(p.fpath).relative_to(root).parts[0].startswith("sub-")
        and p.split in (None, "01")
    ]
    if not paths:
        raise FileNotFoundError(
            f"No epochs file in {root} matches subjects={subjects}, "
            f"sessions={sessions}, tasks={tasks}, runs={runs}, processing="
            f"{processing!r}, suffix={suffix!r}, datatype={datatype!r} "
            "(extension .fif); check the entities, or pass processing=None "
            "for files without a proc- entity."
        )
    tfr = time_windows is not None
    outs = []
    for p in paths:
        desc = _label((p.description or "") + method)
        out = p.copy().update(
            root=str(out_root),
            split=None,
            description=desc,
            suffix=BIDS_SUFFIXES[tfr],
            extension=".h5",
            check=False,
        )
        outs.append(Path(out.fpath))
    logger.info(f"explain_bids: {len(paths)} epochs file(s) in {root} -> {out_root}")
    for out in outs:
        out.parent.mkdir(parents=True, exist_ok=True)
    done = explain_files(
        [Path(p.fpath) for p in paths],
        model,
        out_root,
        method=method,
        time_windows=time_windows,
        overwrite=overwrite,
        n_jobs=n_jobs,
        device=device,
        threads=threads,
        out_names=[out.relative_to(out_root).as_posix() for out in outs],
        verbose=verbose,
        **explain_kw,
    )
    _describe_dataset(mne_bids, out_root, root)
    read = read_saliency_tfr if tfr else read_saliency
    written = set(done)  # with on_error="continue", failed files are not
    for p, out in zip(paths, outs, strict=True):
        if out not in written:
            continue
        source = Path(p.fpath).relative_to(root).as_posix()
        sal = read(out, verbose=False)
        _write_json(out.with_suffix(".json"), _sidecar(sal, source, model))
    return done
