"""``mne-freqmask demo``: load or simulate epochs, train, explain, score, report."""

import time
from pathlib import Path

from mne_freqmask._cli_load import check_out
from mne_freqmask._cli_report import (
    demo_summary_html,
    format_demo_summary,
    model_name,
    n_subjects,
    score_for_report,
    write_report,
)
from mne_freqmask._report import top_cells
from mne_freqmask._saliency_utils import steps_summary

DATASETS = ("simulated", "eegbci", "eegmat", "seed")


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
    n_jobs=None,
):
    """Run the demo and write the report to ``out``; return its path.

    Unless ``quiet``, each long step (training, explaining, scoring) shows
    MNE's progress bar or a log line, and a summary of what was found is
    printed at the end.
    """
    from mne.utils import use_log_level

    out = check_out(out, (".html", ".htm"), overwrite, "--out")
    if data not in DATASETS:
        raise ValueError(f"--data must be one of {DATASETS}, got {data!r}.")
    # MNE's logger and ProgressBar follow the log level; the package's own
    # functions are called with verbose=None so that they inherit it.
    from mne_freqmask._torch_utils import torch_threads

    # training, explaining and scoring all at n_jobs threads (then restored)
    with use_log_level("warning" if quiet else "info"), torch_threads(n_jobs):
        summary = _demo(out, quick, seed, data, data_path, model, method)
    if not quiet:
        print(format_demo_summary(summary))
    return out


def _step(text):
    from mne.utils import logger

    logger.info(f"[mne-freqmask demo] {text}")


def _demo(out, quick, seed, data, data_path, model, method):
    from mne_freqmask import explain
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
    _step("Scoring: removal game, deletion curves against a random map ...")
    removal, check = score_for_report(epochs[held], net, sal, seed)
    summary = dict(
        data=data,
        n_epochs=len(epochs),
        n_subjects=n_subjects(epochs),
        n_channels=len(epochs.ch_names),
        sfreq=epochs.info["sfreq"],
        classes=list(epochs.event_id),
        model=model_name(net),
        accuracy=history["val_accuracy"][-1],
        n_held=len(held),
        method=method,
        removal=removal,
        check=check,
        truth=truth,
        top=top_cells(sal.average(), truth=truth),
        out=out,
    )
    steps = steps_summary(sal.diagnostics)
    if steps is not None:
        summary["steps"] = steps
    if truth is not None:
        from mne_freqmask.evaluation import ground_truth_scores

        summary["auroc"] = float(ground_truth_scores(sal, truth)["auroc"])
    _step("Writing the report ...")
    summary["time"] = time.perf_counter() - t0
    write_report(out, sal, demo_summary_html(summary), removal, check)
    summary["time"] = time.perf_counter() - t0
    return summary
