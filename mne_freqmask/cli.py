"""Command line: ``mne-freqmask demo`` and ``mne-freqmask explain``.

``demo`` runs offline by default, on simulated epochs whose answer is known
(class-dependent 8-12 Hz power on C3/C4): it trains a small braindecode model,
explains the held-out epochs, plays the removal game and writes an HTML report.
``--data`` switches to a public set (EEGBCI, mental arithmetic) or SEED.

``explain`` explains saved epochs (``-epo.fif``) with a saved model (written by
:func:`mne_freqmask.models.save_model`) and writes the saliency (HDF5) and/or
a report.

User mistakes (missing file, wrong shapes, bad option) end with one line on
stderr and exit code 2, not a traceback.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

DATASETS = ("simulated", "eegbci", "eegmat", "seed")


def _build_parser():
    from mne_freqmask.methods import METHODS
    from mne_freqmask.models import MODEL_NAMES

    parser = argparse.ArgumentParser(
        prog="mne-freqmask",
        description="Explain EEG deep-learning models in the frequency domain.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
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
        "--quiet",
        action="store_true",
        help="Print only the report path (no progress, no summary).",
    )

    exp = sub.add_parser(
        "explain",
        help="Explain saved epochs with a saved model.",
        description="Explain EPOCHS (an MNE -epo.fif file) with MODEL (a .pt "
        "file written by mne_freqmask.models.save_model).",
    )
    exp.add_argument("epochs", help="Epochs file (-epo.fif).")
    exp.add_argument("model", help="Model file (.pt from models.save_model).")
    exp.add_argument("--method", default="freqmask", choices=sorted(METHODS))
    exp.add_argument(
        "--bands",
        default="10",
        help='Number of equal bands (e.g. 10) or "canonical". Default: 10.',
    )
    exp.add_argument("--out", default=None, help="Saliency file to write (.h5).")
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
    return parser


def main(argv=None):
    """Entry point of the ``mne-freqmask`` command."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            out = run_demo(
                args.out,
                overwrite=args.overwrite,
                quick=args.quick,
                seed=args.seed,
                data=args.data,
                data_path=args.data_path,
                model=args.model,
                method=args.method,
                quiet=args.quiet,
            )
            print(out if args.quiet else f"Report written to {out}")
        else:
            written = run_explain(
                args.epochs,
                args.model,
                method=args.method,
                bands=args.bands,
                out=args.out,
                report=args.report,
                overwrite=args.overwrite,
                seed=args.seed,
                checkpoint=args.checkpoint,
            )
            for path in written:
                print(f"Written {path}")
    except (FileExistsError, FileNotFoundError, ValueError, TypeError) as exp:
        print(f"mne-freqmask: error: {exp}", file=sys.stderr)
        return 2
    return 0


def _check_out(path, suffixes, overwrite, flag):
    path = Path(path).expanduser().resolve()
    if path.suffix not in suffixes:
        raise ValueError(
            f"{flag} must end in {' or '.join(suffixes)}, got {path.name}."
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Folder {path.parent} does not exist.")
    return path


def _load_demo_data(data, data_path, quick, seed):
    """Epochs for the demo and the planted truth (simulated only)."""
    from mne_freqmask import datasets

    if data == "simulated":
        return datasets.simulated.make_epochs(
            n_subjects=4,
            n_epochs_per_class=20 if quick else 40,
            random_state=seed,
            verbose=False,
        )
    if data == "seed":
        if data_path is None:
            raise ValueError(
                "--data seed needs --data-path FOLDER (the folder holding "
                "Preprocessed_EEG/); SEED is licence-gated, see "
                "mne_freqmask.datasets.seed.data_path."
            )
        subjects = [1, 2] if quick else None
        return datasets.seed.load_epochs(
            data_path, subjects=subjects, verbose=False
        ), None
    if data_path is not None and not Path(data_path).is_dir():
        raise FileNotFoundError(f"--data-path {data_path} is not a folder.")
    if data == "eegbci":
        return datasets.eegbci.load_epochs(
            data_path, resample=100.0, verbose=False
        ), None
    subjects = list(range(4)) if quick else None
    return datasets.eegmat.load_epochs(
        data_path,
        subjects=subjects,
        resample=128.0,
        l_freq=1.0,
        h_freq=40.0,
        verbose=False,
    ), None


def run_demo(
    out,
    *,
    overwrite=False,
    quick=False,
    seed=0,
    data="simulated",
    data_path=None,
    model="eegnet",
    method="freqmask",
    quiet=False,
):
    """Run the demo and write the report to ``out``; return its path.

    Unless ``quiet``, each long step (training, explaining, scoring) shows
    MNE's progress bar or a log line, and a summary of what was found is
    printed at the end.
    """
    from mne.utils import use_log_level

    out = _check_out(out, (".html", ".htm"), overwrite, "--out")
    if data not in DATASETS:
        raise ValueError(f"--data must be one of {DATASETS}, got {data!r}.")
    # MNE's logger and ProgressBar follow the log level; the package's own
    # functions are called with verbose=None so that they inherit it.
    with use_log_level("warning" if quiet else "info"):
        summary = _demo(out, quick, seed, data, data_path, model, method)
    if not quiet:
        print(_format_summary(summary))
    return out


def _step(text):
    from mne.utils import logger

    logger.info(f"[mne-freqmask demo] {text}")


def _demo(out, quick, seed, data, data_path, model, method):
    from mne_freqmask import evaluate_removal, explain
    from mne_freqmask.models import fit

    t0 = time.perf_counter()
    _step(f"Loading {data} epochs ...")
    epochs, truth = _load_demo_data(data, data_path, quick, seed)
    max_epochs = 40 if quick else 60
    _step(f"Training {model} ({max_epochs} passes over the training epochs) ...")
    net, history = fit(epochs, model, max_epochs=max_epochs, random_state=seed)
    train, held = history["train_idx"], history["val_idx"]
    _step(f"Explaining the {len(held)} held-out epochs with {method} ...")
    sal = explain(
        epochs[held],
        net,
        method=method,
        bands="canonical",
        reference=epochs[train],
        random_state=seed,
        # several chunks, so that the progress bar moves (the result does not
        # depend on the chunking: every epoch has its own mask and optimiser)
        chunk_size=16,
    )
    _step("Scoring: removal game (group and per-epoch maps) ...")
    removal = {
        level: evaluate_removal(epochs[held], net, sal, level=level)
        for level in ("group", "instance")
    }
    summary = dict(
        data=data,
        n_epochs=len(epochs),
        n_subjects=_n_subjects(epochs),
        n_channels=len(epochs.ch_names),
        sfreq=epochs.info["sfreq"],
        classes=list(epochs.event_id),
        model=_model_name(net),
        accuracy=history["val_accuracy"][-1],
        n_held=len(held),
        method=method,
        removal=removal,
        truth=truth,
        top=_top_cells(sal.average(), truth),
        out=out,
    )
    if "n_steps" in sal.diagnostics:
        steps = np.asarray(sal.diagnostics["n_steps"])
        summary["steps"] = (float(np.median(steps)), int(steps.max()))
    if truth is not None:
        from mne_freqmask.evaluation import ground_truth_scores

        summary["auroc"] = float(ground_truth_scores(sal, truth)["auroc"])
    _step("Writing the report ...")
    summary["time"] = time.perf_counter() - t0
    _write_report(out, sal, _summary_html(summary), removal)
    summary["time"] = time.perf_counter() - t0
    return summary


def _n_subjects(epochs):
    meta = epochs.metadata
    if meta is not None and "subject" in meta:
        return int(meta["subject"].nunique())
    return None


def _model_name(net):
    import torch

    inner = net[-1] if isinstance(net, torch.nn.Sequential) else net
    return type(inner).__name__


def _top_cells(group, truth, n=5):
    """The ``n`` highest channel x band cells of a group map (and if planted)."""
    values = group.get_data()
    planted = None if truth is None else truth.cells(group.ch_names, group.band_edges)
    order = np.argsort(values, axis=None, kind="stable")[::-1][:n]
    cells = []
    for flat in order:
        ch, band = np.unravel_index(flat, values.shape)
        cells.append(
            dict(
                channel=group.ch_names[ch],
                band=group.band_names[band],
                value=float(values[ch, band]),
                planted=None if planted is None else bool(planted[ch, band]),
            )
        )
    return cells


def _summary_lines(s):
    """(label, text) pairs shared by the terminal summary and the report."""
    subj = f", {s['n_subjects']} subjects" if s["n_subjects"] else ""
    lines = [
        (
            "Data",
            f"{s['data']}: {s['n_epochs']} epochs{subj}, {s['n_channels']} channels "
            f"at {s['sfreq']:g} Hz, classes {', '.join(s['classes'])}",
        )
    ]
    truth = s["truth"]
    if truth is not None:
        lines.append(
            (
                "Planted",
                f"class 'high' has more {truth.band[0]:g}-{truth.band[1]:g} Hz "
                f"power than 'low' on {', '.join(truth.channels)}; nothing else "
                "differs",
            )
        )
    lines.append(
        (
            "Model",
            f"{s['model']}, held-out accuracy {s['accuracy']:.3f} on "
            f"{s['n_held']} epochs",
        )
    )
    how = f"{s['method']} on the {s['n_held']} held-out epochs"
    if "steps" in s:
        how += f" (median {s['steps'][0]:.0f} steps, max {s['steps'][1]})"
    lines.append(("Method", how))
    top = ", ".join(
        f"{c['channel']} {c['band']} {c['value']:.2f}"
        + ("" if c["planted"] is None else (" (planted)" if c["planted"] else ""))
        for c in s["top"]
    )
    lines.append(("Top cells", f"{top} (group map)"))
    if "auroc" in s:
        lines.append(
            (
                "Truth",
                f"AUROC of the group map for the planted cells = {s['auroc']:.3f} "
                "(1: every planted cell ranked above every other; 0.5: chance)",
            )
        )
    for level, table in s["removal"].items():
        acc = table["accuracy"]
        lines.append(
            (
                f"Removal ({level})",
                f"accuracy original {acc['original']:.2f} / RN {acc['RN']:.2f} / "
                f"RS {acc['RS']:.2f} (RN: non-salient half of the cells zeroed, "
                "should stay; RS: salient half zeroed, should fall)",
            )
        )
    lines.append(("Time", f"{s['time']:.0f} s"))
    return lines


def _format_summary(s):
    lines = _summary_lines(s)  # main() prints the report path last
    width = max(len(label) for label, _ in lines)
    body = "\n".join(f"  {label:<{width}}  {text}" for label, text in lines)
    return f"\nmne-freqmask demo: what does the model rely on?\n{body}"


def _summary_html(s):
    import re
    from html import escape

    rows = []
    for label, text in _summary_lines(s):
        text = escape(text)
        if label == "Truth":  # the score in bold (read by users and tests)
            text = re.sub(r"= ([0-9.]+)", r"= <b>\1</b>", text, count=1)
        rows.append(f"<tr><th>{escape(label)}</th><td>{text}</td></tr>")
    return f'<table class="table">{"".join(rows)}</table>'


def run_explain(
    epochs_fname,
    model_fname,
    *,
    method="freqmask",
    bands="10",
    out=None,
    report=None,
    overwrite=False,
    seed=0,
    checkpoint=None,
):
    """Explain saved epochs with a saved model; return the files written."""
    import mne

    from mne_freqmask import explain
    from mne_freqmask.models import load_model

    if out is None and report is None:
        raise ValueError(
            "Nothing to write: give --out sal.h5 and/or --report report.html."
        )
    out = None if out is None else _check_out(out, (".h5", ".hdf5"), overwrite, "--out")
    report = (
        None
        if report is None
        else _check_out(report, (".html", ".htm"), overwrite, "--report")
    )
    for fname in (epochs_fname, model_fname):
        if not Path(fname).is_file():
            raise FileNotFoundError(f"{fname} does not exist.")
    bands = int(bands) if str(bands).isdigit() else bands
    t0 = time.perf_counter()
    # not preloaded: explain() reads the file chunk by chunk (bounded memory)
    epochs = mne.read_epochs(epochs_fname, preload=False, verbose=False)
    net = load_model(model_fname)
    sal = explain(
        epochs,
        net,
        method=method,
        bands=bands,
        random_state=seed,
        checkpoint=checkpoint,
        verbose=False,
    )
    written = []
    if out is not None:
        sal.save(out, overwrite=overwrite)
        written.append(out)
    if report is not None:
        from mne_freqmask import evaluate_removal

        removal = {
            level: evaluate_removal(epochs, net, sal, level=level, verbose=False)
            for level in ("group", "instance")
        }
        html = (
            f"<p>Epochs: {epochs_fname} ({len(epochs)} epochs, "
            f"{len(epochs.ch_names)} channels at {epochs.info['sfreq']:g} Hz)."
            f" Model: {model_fname}. Method: <b>{method}</b>.</p>"
            f"<p>Total time {time.perf_counter() - t0:.1f} s.</p>"
        )
        _write_report(report, sal, html, removal)
        written.append(report)
    return written


def _write_report(out, sal, summary_html, removal):
    """Summary, topomaps, band image, frequency plot, removal game, parameters."""
    import matplotlib.pyplot as plt
    import mne
    import pandas as pd

    group = sal.average()
    # verbose=False: no "Embedding : jquery..." lines from MNE's renderer
    report = mne.Report(
        title=f"mne-freqmask: what does the model rely on? ({sal.method})",
        verbose=False,
    )
    report.add_html(summary_html, "Summary")
    if _has_positions(group.info):
        report.add_figure(
            group.plot_topomap(show=False),
            "Group saliency per band (topomaps)",
            caption="Saliency averaged over the explained epochs, one map per band.",
        )
    report.add_figure(
        group.plot_bands(show=False),
        "Channel x band saliency",
        caption="Rows: channels; columns: bands.",
    )
    report.add_figure(
        group.plot(show=False),
        "Saliency over frequency",
        caption="Group saliency per channel over frequency.",
    )
    table = pd.concat(removal, names=["level"]).round(3)
    report.add_html(
        table.to_html() + "<p>RN: non-salient half of the channel x band cells "
        "zeroed in the spectrum; RS: salient half zeroed.</p>",
        "Removal game",
    )
    params = pd.Series({k: str(v) for k, v in sal.method_params.items()})
    report.add_html(params.to_frame("value").to_html(), "Parameters")
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.part.html")
    try:
        report.save(tmp, open_browser=False, overwrite=True, verbose=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close("all")


def _has_positions(info):
    from mne_freqmask.utils._checks import _channels_without_positions

    return not _channels_without_positions(info).any()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
