"""Command line: ``mne-freqmask demo``, ``explain`` and ``sys-info``.

``demo`` runs offline by default, on simulated epochs whose answer is known
(class-dependent 8-12 Hz power on C3/C4): it trains a small braindecode model,
explains the held-out epochs, plays the removal game and writes an HTML report.
``--data`` switches to a public set (EEGBCI, mental arithmetic) or SEED.

``explain`` explains saved epochs (``-epo.fif``) with a saved model (a file of
:func:`mne_freqmask.models.save_model`, a TorchScript archive, or a state dict
with ``--model-class``) and writes the saliency (HDF5) and/or a report.

User mistakes (missing file, wrong shapes, bad option) end with one line on
stderr and exit code 2, not a traceback.
"""

import argparse
import sys
import time
from pathlib import Path

from mne_freqmask._cli_demo import DATASETS, run_demo
from mne_freqmask._cli_files import run_explain_bids, run_explain_files
from mne_freqmask._cli_load import check_out
from mne_freqmask._cli_report import (
    check_lines,
    format_lines,
    lines_html,
    model_name,
    score_for_report,
    summary_lines,
    summary_title,
    write_report,
)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block) and exit 2."""

    def error(self, message):
        self.exit(
            2,
            f"mne-freqmask: error: {message} (see {self.prog} --help)\n",
        )


def _build_parser():
    parser = _Parser(
        prog="mne-freqmask",
        description="Explain EEG deep-learning models in the frequency domain.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    exp = _add_explain(sub)
    _add_explain_outputs(exp)
    info = sub.add_parser(
        "sys-info",
        help="Print versions for a bug report (as mne sys_info).",
        description="MNE's system information (mne.sys_info) and the versions "
        "of mne-freqmask and its own dependencies (torch, braindecode, zennit, "
        "captum, quantus, ...).",
    )
    info.add_argument(
        "--show-paths", action="store_true", help="Also show module paths."
    )
    return parser


def _add_demo(sub):
    from mne_freqmask.methods import METHODS
    from mne_freqmask.models import MODEL_NAMES

    demo = sub.add_parser(
        "demo",
        help="Train a model on example data, explain it, write an HTML report.",
        description=(
            "By default offline, on simulated data with a planted answer "
            "(class-dependent 8-12 Hz power on C3 and C4): trains a small "
            "braindecode model, explains the held-out epochs, scores the "
            "explanation (removal game, ground truth) and writes an HTML report."
        ),
    )
    demo.add_argument(
        "--data",
        default="simulated",
        help="simulated (default), eegbci [FOLDER], eegmat [FOLDER] or seed "
        "FOLDER (the folder holding Preprocessed_EEG/). Give the folder with "
        "--data-path.",
        choices=DATASETS,
    )
    demo.add_argument("--data-path", default=None, help="Local data folder.")
    demo.add_argument("--model", default="eegnet", choices=sorted(MODEL_NAMES))
    demo.add_argument("--method", default="freqmask", choices=sorted(METHODS))
    demo.add_argument(
        "--out", default="mne_freqmask_demo.html", help="HTML report to write."
    )
    demo.add_argument(
        "--overwrite", action="store_true", help="Replace existing output files."
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help="Smaller data, shorter training and at most 100 FreqMask steps.",
    )
    demo.add_argument("--seed", type=int, default=0, help="Random seed.")
    demo.add_argument(
        "--n-jobs", type=int, default=None, help="Torch threads (as for explain)."
    )
    demo.add_argument(
        "--quiet",
        action="store_true",
        help="Print only the report path (no progress, no summary).",
    )


def _add_explain(sub):
    """``explain``'s parser and its inputs: what is explained, and how."""
    from mne_freqmask.methods import METHODS, SHORT_TIME_METHODS

    exp = sub.add_parser(
        "explain",
        help="Explain saved epochs with a saved model.",
        description="Explain EPOCHS (an MNE -epo.fif file) with MODEL: a .pt "
        "file written by mne_freqmask.models.save_model, a TorchScript file "
        "(torch.jit.save), a braindecode model folder (config.json + "
        "model.safetensors or pytorch_model.bin, as model.save_pretrained "
        "writes it), or weights without their class (torch.save("
        "model.state_dict()), skorch's net.save_params(f_params=...)) with "
        "--model-class and --model-kwargs. Prints a summary (steps and "
        "stop reasons of the fit included) and writes the saliency and/or "
        "an HTML report.",
    )
    exp.add_argument(
        "epochs",
        nargs="+",
        help="Epochs file(s) (-epo.fif); several need --out-dir.",
    )
    exp.add_argument(
        "model",
        help="Model file or folder (save_model .pt, TorchScript, braindecode "
        "folder with config.json, or a state dict / skorch params file).",
    )
    exp.add_argument("--method", default="freqmask", choices=sorted(METHODS))
    exp.add_argument(
        "--bands",
        default=None,
        help='Number of equal bands (e.g. 10), "canonical", or named bands in '
        "Hz: mu:8-13,beta:13-30 (a bin f is in a band when fmin <= f < fmax). "
        "Default: 10 (with --explainer: the explainer's bands).",
    )
    exp.add_argument(
        "--picks",
        default=None,
        help="Channels to explain: a type (eeg), names (C3,Cz,C4) or indices "
        "(0,1,2). The model always sees every channel. Default: the data "
        "channels not marked bad.",
    )
    exp.add_argument(
        "--device", default="auto", help="auto (default), cpu, cuda or cuda:N."
    )
    exp.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="Torch threads during the run (restored afterwards); -1: all "
        "cores. Default: torch's setting, capped at the cores this process "
        "may use. On cores shared with other jobs, 1 is often fastest.",
    )
    exp.add_argument(
        "--n-steps",
        type=int,
        default=None,
        help="Most optimisation steps per epoch (freqmask, flextime; "
        "integrated_gradients: integration steps; freqmask with --objective "
        "expected_gradients: draws per epoch). Same as --param n_steps=N.",
    )
    exp.add_argument(
        "--objective",
        default=None,
        choices=("preserve", "expected_gradients"),
        help="freqmask's objective: preserve (default; a mask that keeps the "
        "prediction, at most 300 steps) or expected_gradients (signed: the "
        "mean gradient of the prediction on paths from other epochs, 100 "
        "draws unless --n-steps). Same as --param objective=NAME.",
    )
    exp.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A method parameter (repeatable), e.g. --param lr=0.02 --param "
        "preset=paper; values are read as int, float, true/false, none or text.",
    )
    _add_model_options(exp)
    exp.add_argument(
        "--time-windows",
        default=None,
        metavar="LENGTH,STEP|auto",
        help="Explain short windows: LENGTH,STEP in seconds (e.g. 0.5,0.25: 0.5 "
        "s Hann windows every 0.25 s) or auto (a quarter of the epoch, half a "
        "window apart). The map is then channel x band x window (a "
        "SpectralSaliencyTFR: read --out with mne_freqmask.read_saliency_tfr). "
        f"Methods: {', '.join(sorted(SHORT_TIME_METHODS))}.",
    )
    exp.add_argument(
        "--reference",
        default=None,
        metavar="FILE",
        help="Epochs file (-epo.fif) of reference epochs (e.g. the training "
        "epochs): the donors and subject centres of the methods that use "
        "them (with --out-dir: for every file). Default: the explained epochs.",
    )
    exp.add_argument(
        "--explainer",
        default=None,
        metavar="FILE",
        help="For --method freqmask_amortised: a FreqMaskExplainer saved with "
        "explainer.save(FILE); its bands and picks are the defaults.",
    )
    return exp


def _add_model_options(exp):
    """``explain``'s options for a model file that does not carry its class,
    settings or input scale."""
    exp.add_argument(
        "--model-class",
        default=None,
        help="braindecode class (e.g. EEGNet, ShallowFBCSPNet) whose state "
        "dict MODEL holds.",
    )
    exp.add_argument(
        "--model-kwargs",
        default=None,
        help="Its settings: key=value pairs separated by commas, e.g. "
        "n_chans=64,n_outputs=2,n_times=481 (or a JSON object).",
    )
    exp.add_argument(
        "--input-scale",
        type=float,
        default=None,
        help="The factor the model's training data were multiplied by, e.g. "
        "1e6 when it was trained on epochs.get_data() * 1e6 (microvolts): the "
        "epochs (in volts) are multiplied by it before the model. For "
        "TorchScript and state-dict models; save_model files store their own.",
    )


def _add_explain_outputs(exp):
    """``explain``'s outputs: one file (``--out``, ``--report``) or many
    (``--out-dir``, ``--bids``), and how the run goes."""
    exp.add_argument("--out", default=None, help="Saliency file to write (.h5).")
    exp.add_argument(
        "--out-dir",
        default=None,
        help="Folder for one saliency file per epochs file (<name>-sal.h5, "
        "with --time-windows <name>-sal-tfr.h5); files already made by the "
        "same run are skipped (a stopped run resumes), files made by another "
        "model, method, parameter or input are refused without --overwrite.",
    )
    exp.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="With --out-dir: epochs files explained at once (joblib; -1: all "
        "cores). --n-jobs is then the torch threads per file (default 1).",
    )
    exp.add_argument(
        "--on-error",
        choices=("raise", "continue"),
        default="raise",
        help="With --out-dir: stop at the first epochs file that fails (raise, "
        "the default), or explain the others and list the failures on stderr "
        "and in explain_files_failures.tsv (continue; exit status 1).",
    )
    exp.add_argument(
        "--bids",
        action="store_true",
        help="EPOCHS is a BIDS folder (a BIDS root or e.g. derivatives/"
        "mne-bids-pipeline): explain each of its epochs files "
        "(sub-*/.../*_proc-clean_epo.fif) into BIDS derivatives, in --out-dir "
        "(default <bids_root>/derivatives/mne-freqmask). Needs mne-bids.",
    )
    exp.add_argument(
        "--bids-subjects", default=None, help="With --bids: subjects, e.g. 01,02."
    )
    exp.add_argument("--bids-tasks", default=None, help="With --bids: tasks.")
    exp.add_argument(
        "--bids-processing",
        default="clean",
        help='With --bids: the proc- label of the epochs files (default clean; "" '
        "for any).",
    )
    exp.add_argument("--report", default=None, help="HTML report to write.")
    exp.add_argument(
        "--overwrite", action="store_true", help="Replace existing output files."
    )
    exp.add_argument("--seed", type=int, default=0, help="Random seed.")
    exp.add_argument(
        "--checkpoint",
        default=None,
        help="Checkpoint file (.h5): finished chunks are saved there and a run "
        "started again with the same arguments resumes where it stopped.",
    )
    exp.add_argument(
        "--quiet",
        action="store_true",
        help="Print only the files written (no progress, no summary).",
    )


def _run_demo(args):
    options = {k: v for k, v in vars(args).items() if k not in ("command", "out")}
    out = run_demo(args.out, **options)
    print(out if args.quiet else f"Report written to {out}")
    return 0


def _run_files(args):
    written = (run_explain_bids if args.bids else run_explain_files)(args)
    for path in written:
        print(path)
    for item in getattr(written, "failures", ()):
        print(f"mne-freqmask: failed: {item.fname}: {item.error}", file=sys.stderr)
    return 1 if getattr(written, "failures", ()) else 0


def main(argv=None):
    """Entry point of the ``mne-freqmask`` command."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "sys-info":
            from mne_freqmask.utils._deps import sys_info

            sys_info(show_paths=args.show_paths)
        elif args.command == "demo":
            return _run_demo(args)
        elif args.bids or args.out_dir is not None or len(args.epochs) > 1:
            return _run_files(args)
        else:
            for path in run_explain(args):
                print(f"Written {path}")
    except (
        FileExistsError,
        FileNotFoundError,
        ValueError,
        TypeError,
        ImportError,
    ) as exp:
        # one line, whatever the message
        print(f"mne-freqmask: error: {' '.join(str(exp).split())}", file=sys.stderr)
        return 2
    return 0


def run_explain(args):
    """``mne-freqmask explain EPOCHS MODEL``: explain one epochs file; return
    the files written.

    ``args`` are the parsed options; they become keyword arguments of
    :func:`mne_freqmask.explain` through
    :func:`~._cli_load.explain_options`, the one translation that the
    many-file route (:func:`~._cli_files.run_explain_files`) uses too.
    Unless ``--quiet``, progress and a summary (with the fit's step counts)
    are printed. With ``--time-windows`` the map is time-resolved: saved as
    a :class:`~mne_freqmask.SpectralSaliencyTFR`, summarised by
    :func:`~._cli_report.tfr_method_lines`.
    """
    import mne
    from mne.utils import use_log_level

    from mne_freqmask import explain
    from mne_freqmask._cli_load import explain_options, one_class_stops
    from mne_freqmask.models import load_any_model

    if args.out is None and args.report is None:
        raise ValueError(
            "Nothing to write: give --out sal.h5 and/or --report report.html."
        )
    out, report = (
        None if path is None else check_out(path, ends, args.overwrite, flag)
        for path, ends, flag in (
            (args.out, (".h5", ".hdf5"), "--out"),
            (args.report, (".html", ".htm"), "--report"),
        )
    )
    fname = args.epochs[0]
    if not Path(fname).is_file():
        raise FileNotFoundError(f"{fname} does not exist.")
    model_options, kw = explain_options(args)
    if kw["reference"] is not None:
        kw["reference"] = mne.read_epochs(kw["reference"], preload=False, verbose=False)
    t0 = time.perf_counter()
    net, kind = load_any_model(args.model, **model_options)
    # not preloaded: explain() reads the file chunk by chunk (bounded memory)
    epochs = mne.read_epochs(fname, preload=False, verbose=False)
    with use_log_level("warning" if args.quiet else "info"), one_class_stops(kind):
        sal = explain(epochs, net, n_jobs=args.n_jobs, checkpoint=args.checkpoint, **kw)
    lines = summary_lines(
        fname, epochs, f"{args.model} ({kind}: {model_name(net)})", sal
    )
    written = []
    if out is not None:
        sal.save(out, overwrite=args.overwrite, verbose=False)
        written.append(out)
    if report is not None:
        removal, check = score_for_report(epochs, net, sal, args.seed, verbose=False)
        lines += check_lines(check)
        html_lines = lines + [("Time", f"{time.perf_counter() - t0:.1f} s")]
        write_report(report, sal, lines_html(html_lines), removal, check)
        written.append(report)
    if not args.quiet:
        lines.append(("Time", f"{time.perf_counter() - t0:.1f} s"))
        print(format_lines(summary_title(sal), lines))
    return written


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
