"""EEGBCI (PhysioNet EEG Motor Movement/Imagery) motor-imagery epochs.

A thin reader on top of MNE: :func:`mne.datasets.eegbci.load_data` fetches the
EDF files (or a local folder holding them is read), and :func:`load_epochs`
returns the imagery trials as epochs with a montage, class names and metadata.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from mne import Epochs, concatenate_raws, events_from_annotations
from mne.io import read_raw_edf
from mne.utils import _validate_type, logger, verbose

from mne_freqmask.datasets._utils import int_list
from mne_freqmask.utils._checks import _check_positive, _standard_montage
from mne_freqmask.utils._docs import fill_doc

#: Sampling frequency of the EEGBCI recordings, in Hz.
SFREQ = 160.0

#: Class names of the two cues (annotations ``T1`` / ``T2``) of each imagery run.
RUN_CLASSES = {
    4: ("left_fist", "right_fist"),
    8: ("left_fist", "right_fist"),
    12: ("left_fist", "right_fist"),
    6: ("both_fists", "both_feet"),
    10: ("both_fists", "both_feet"),
    14: ("both_fists", "both_feet"),
}

#: Event codes; the k-th code in ascending order is class index k.
EVENT_CODES = {"left_fist": 1, "right_fist": 2, "both_fists": 3, "both_feet": 4}


def _run_list(runs):
    _validate_type(runs, ("int-like", list, tuple, np.ndarray), "runs", "int or list")
    out = int_list(runs, "runs", empty="e.g. runs=(4, 8, 12)")
    for run in out:
        if run not in RUN_CLASSES:
            raise ValueError(
                f"Run {run} is not a motor-imagery run; use runs among "
                f"{sorted(RUN_CLASSES)} (4/8/12: left vs right fist, 6/10/14: "
                "both fists vs both feet)."
            )
    if len(set(out)) != len(out):
        raise ValueError(f"runs has duplicates: {out}.")
    return out


def _local_files(path, subject, runs):
    path = Path(path).expanduser()
    fnames = []
    for run in runs:
        base = f"S{subject:03d}R{run:02d}.edf"
        candidates = [path / base, path / f"S{subject:03d}" / base]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise FileNotFoundError(
                f"{base} not found in {path} (nor in {path / f'S{subject:03d}'}). "
                "Pass the folder holding the EDF files, or path=None to download "
                "them with mne.datasets.eegbci.load_data."
            )
        fnames.append(found[0])
    return fnames


def _read_run(fname, run, resample):
    from mne.datasets.eegbci import standardize

    raw = read_raw_edf(fname, preload=True, verbose=False)
    standardize(raw)
    raw.set_montage(_standard_montage())
    if resample is not None:
        raw.resample(resample, verbose=False)
    t1, t2 = RUN_CLASSES[run]
    raw.annotations.rename({"T1": t1, "T2": t2}, verbose=False)
    return raw


@verbose
@fill_doc
def load_epochs(
    path=None,
    runs=(4, 8, 12),
    *,
    subject=1,
    tmin=0.0,
    tmax=None,
    resample=None,
    verbose=None,
):
    """Read EEGBCI motor-imagery trials as epochs.

    Parameters
    ----------
    path : path-like | None
        Folder holding ``S001R04.edf``... (directly or in an ``S001/``
        subfolder). ``None`` (default) fetches the files with
        :func:`mne.datasets.eegbci.load_data` (downloaded once into MNE's data
        folder, then read from there; the MNE config is not changed).
    runs : int | list of int
        Imagery runs: 4, 8, 12 (imagined left vs right fist; default) and/or
        6, 10, 14 (imagined both fists vs both feet).
    subject : int
        Subject number (1-109). The local copy in ``shared/data`` holds
        subject 1 only.
    tmin : float
        Start of each epoch relative to the cue onset, in seconds.
    tmax : float | None
        End of each epoch relative to the cue onset, in seconds (included).
        ``None`` (default) is 4 s minus one sample, so that an epoch holds
        exactly ``4 * sfreq`` samples (640 at 160 Hz) of the ~4.1 s cue.
    resample : float | None
        New sampling frequency in Hz, applied to each run before epoching
        (with MNE's anti-aliasing). ``None`` keeps 160 Hz.
    %(verbose)s

    Returns
    -------
    epochs : instance of mne.Epochs
        The trials, EEG in volts, 64 channels with their 10-05 template
        positions, no baseline correction. ``event_id`` holds the classes of
        the runs read, with codes ``left_fist`` = 1, ``right_fist`` = 2,
        ``both_fists`` = 3, ``both_feet`` = 4 (the k-th code in ascending
        order is class index k). ``metadata`` has the columns ``subject``,
        ``run`` and ``label`` (class name).

    Notes
    -----
    The signals are not filtered: the recordings' own 0-80 Hz band is kept,
    so that the frequency explanation sees all of it (band-pass the epochs
    yourself if the model needs it). Channel names are made standard with
    :func:`mne.datasets.eegbci.standardize`. The rest periods (``T0``) are
    not epoched. Epochs that overlap the boundary between two runs are
    dropped.

    References
    ----------
    Schalk, G. et al. (2004). BCI2000: a general-purpose brain-computer
    interface (BCI) system. IEEE TBME 51(6), 1034-1043.

    Goldberger, A. L. et al. (2000). PhysioBank, PhysioToolkit, and
    PhysioNet. Circulation 101(23), e215-e220.
    """
    _validate_type(path, ("path-like", None), "path")
    runs = _run_list(runs)
    _validate_type(subject, "int", "subject")
    _validate_type(tmin, "numeric", "tmin")
    _validate_type(tmax, ("numeric", None), "tmax")
    if resample is not None:
        resample = _check_positive(resample, "resample")
    if path is None:
        from mne.datasets import eegbci

        # update_path=False: MNE would otherwise prompt (and fail without a
        # stdin) to store the path in its config; the default folder is found
        # again on the next call anyway
        fnames = [Path(f) for f in eegbci.load_data(subject, runs, update_path=False)]
    else:
        fnames = _local_files(path, subject, runs)

    raws = []
    for fname, run in zip(fnames, runs, strict=True):
        logger.info(f"Reading {Path(fname).name}")
        raws.append(_read_run(fname, run, resample))
    # first sample of each run in the concatenated recording
    starts = np.cumsum([0] + [r.n_times for r in raws[:-1]]) + raws[0].first_samp
    sfreq = raws[0].info["sfreq"]
    raw = concatenate_raws(raws, verbose=False)

    names = {name for run in runs for name in RUN_CLASSES[run]}
    event_id = {k: v for k, v in EVENT_CODES.items() if k in names}
    events, _ = events_from_annotations(raw, event_id=event_id, verbose=False)
    if tmax is None:
        tmax = 4.0 - 1.0 / sfreq
    if tmax <= tmin:
        raise ValueError(f"tmax ({tmax}) must be greater than tmin ({tmin}).")
    run_of = np.asarray(runs)[np.searchsorted(starts, events[:, 0], side="right") - 1]
    code_to_name = {v: k for k, v in event_id.items()}
    metadata = pd.DataFrame(
        dict(
            subject=subject,
            run=run_of,
            label=[code_to_name[c] for c in events[:, 2]],
        )
    )
    epochs = Epochs(
        raw,
        events,
        event_id=event_id,
        tmin=tmin,
        tmax=tmax,
        baseline=None,
        picks="eeg",
        preload=True,
        metadata=metadata,
        reject_by_annotation=True,
        on_missing="ignore",
        verbose=False,
    )
    logger.info(f"Read {len(epochs)} epochs from run(s) {runs}")
    return epochs
