"""``mne-freqmask explain`` on several epochs files (one saliency file each)."""

from mne_freqmask._cli_load import explain_options

_ONE_FILE = (
    "--out, --report and --checkpoint are for one epochs file; with {many} "
    "each file gets {name}, and a stopped run resumes."
)


def _files_kwargs(args, many, name):
    """The keyword arguments of :func:`~mne_freqmask.explain_files` (and
    :func:`~mne_freqmask.explain_bids`) from the options: those of one file
    (:func:`~._cli_load.explain_options`) and the many-file ones."""
    if args.out is not None or args.report is not None or args.checkpoint:
        raise ValueError(_ONE_FILE.format(many=many, name=name))
    model_options, explain_kw = explain_options(args)
    # the model FILE and its loader's options: each worker loads it itself
    # (any --jobs, any model: a loaded module may not pickle), and the
    # fingerprint of the run is that of the loaded model
    return dict(
        model_options=model_options,
        on_error=args.on_error,
        overwrite=args.overwrite,
        n_jobs=args.jobs,
        threads=args.n_jobs,
        # --quiet: stdout holds the files written only (main prints each
        # failure on stderr)
        verbose="error" if args.quiet else "info",
        **explain_kw,
    )


def run_explain_files(args):
    """``mne-freqmask explain A-epo.fif B-epo.fif ... MODEL --out-dir D``.

    One saliency file per epochs file through
    :func:`mne_freqmask.explain_files` (files already done are skipped);
    returns its result (the saliency files, and ``failures`` with
    ``--on-error continue``).
    """
    from mne_freqmask.parallel import explain_files

    if args.out_dir is None:
        raise ValueError(
            f"{len(args.epochs)} epochs files need --out-dir (a folder for one "
            "saliency file each); --out is for one file."
        )
    name = "<name>-sal.h5 (with --time-windows <name>-sal-tfr.h5)"
    kwargs = _files_kwargs(args, "--out-dir", name)
    return explain_files(list(args.epochs), args.model, args.out_dir, **kwargs)


def _labels(text):
    """``"01,02"`` -> ``["01", "02"]`` (None stays None)."""
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def run_explain_bids(args):
    """``mne-freqmask explain BIDS_ROOT MODEL --bids``: the epochs files of a
    BIDS folder into BIDS derivatives (:func:`mne_freqmask.explain_bids`);
    returns the saliency files."""
    from mne_freqmask.bids import explain_bids

    if len(args.epochs) != 1:
        raise ValueError(
            f"--bids takes one BIDS folder before MODEL, got {len(args.epochs)}."
        )
    name = "its BIDS-named map in the derivatives folder (--out-dir)"
    return explain_bids(
        args.epochs[0],
        args.model,
        out_root=args.out_dir,
        subjects=_labels(args.bids_subjects),
        tasks=_labels(args.bids_tasks),
        processing=args.bids_processing or None,
        **_files_kwargs(args, "--bids", name),
    )
