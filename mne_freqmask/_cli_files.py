"""``mne-freqmask explain`` on several epochs files (one saliency file each)."""

from mne_freqmask._cli_load import (
    explainer_options,
    parse_model_kwargs,
    parse_pairs,
    parse_time_windows,
)
from mne_freqmask.methods._registry import check_short_time
from mne_freqmask.models import load_any_model


def run_explain_files(args):
    """``mne-freqmask explain A-epo.fif B-epo.fif ... MODEL --out-dir D``.

    One saliency file per epochs file through
    :func:`mne_freqmask.explain_files` (files already done are skipped);
    returns the saliency files.
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
    net, _ = load_any_model(
        args.model,
        model_class_name=args.model_class,
        model_kwargs=parse_model_kwargs(args.model_kwargs),
        scale=args.input_scale,
    )
    return explain_files(
        list(args.epochs),
        net,
        args.out_dir,
        method=args.method,
        time_windows=time_windows,
        overwrite=args.overwrite,
        n_jobs=args.jobs,
        device=args.device,
        threads=args.n_jobs,
        bands=bands,
        picks=picks,
        random_state=args.seed,
        verbose="warning" if args.quiet else "info",
        **method_kw,
    )
