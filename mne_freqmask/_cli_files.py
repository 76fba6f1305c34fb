"""``mne-freqmask explain`` on several epochs files (one saliency file each)."""

from mne_freqmask._cli_load import (
    explainer_options,
    parse_model_kwargs,
    parse_pairs,
    parse_time_windows,
)
from mne_freqmask.methods._registry import check_short_time


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
    if (
        args.out is not None
        or args.report is not None
        or args.checkpoint
        or getattr(args, "reference", None) is not None
    ):
        raise ValueError(
            "--out, --report, --checkpoint and --reference are for one epochs "
            "file; with "
            "--out-dir each file gets <name>-sal.h5 (with --time-windows "
            "<name>-sal-tfr.h5), and a stopped run resumes."
        )
    net, kwargs = _files_kwargs(args)
    return explain_files(list(args.epochs), net, args.out_dir, **kwargs)


def _files_kwargs(args):
    """The model file and the keyword arguments of
    :func:`~mne_freqmask.explain_files` (and :func:`~mne_freqmask.explain_bids`)
    from the options."""
    time_windows = parse_time_windows(args.time_windows)
    if time_windows is not None:
        check_short_time(args.method)  # before the model is loaded
    method_kw = parse_pairs(args.param, "--param")
    if args.n_steps is not None:
        method_kw["n_steps"] = args.n_steps
    extra, bands, picks = explainer_options(
        args.method, getattr(args, "explainer", None), args.bands, args.picks
    )
    method_kw.update(extra)
    # the model FILE and its loader's options: each worker loads it itself
    # (any --jobs, any model: a loaded module may not pickle), and the
    # fingerprint of the run is that of the loaded model
    options = dict(
        model_class_name=args.model_class,
        model_kwargs=parse_model_kwargs(args.model_kwargs),
        scale=args.input_scale,
    )
    return args.model, dict(
        model_options=options,
        on_error=args.on_error,
        method=args.method,
        time_windows=time_windows,
        overwrite=args.overwrite,
        n_jobs=args.jobs,
        device=args.device,
        threads=args.n_jobs,
        bands=bands,
        picks=picks,
        random_state=args.seed,
        # --quiet: stdout holds the files written only (main prints each
        # failure on stderr)
        verbose="error" if args.quiet else "info",
        **method_kw,
    )


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
    if args.out is not None or args.report is not None or args.checkpoint:
        raise ValueError(
            "--out, --report and --checkpoint are for one epochs file; with "
            "--bids each file gets its BIDS-named map in the derivatives "
            "folder (--out-dir), and a stopped run resumes."
        )
    net, kwargs = _files_kwargs(args)
    return explain_bids(
        args.epochs[0],
        net,
        out_root=args.out_dir,
        subjects=_labels(args.bids_subjects),
        tasks=_labels(args.bids_tasks),
        processing=args.bids_processing or None,
        **kwargs,
    )
