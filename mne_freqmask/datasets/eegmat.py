"""PhysioNet "EEG During Mental Arithmetic Tasks" (EEGMAT), rest vs task.

36 subjects (``Subject00``-``Subject35``), each with an artefact-free resting
recording (``SubjectNN_1.edf``, 3 min) and a serial-subtraction recording
(``SubjectNN_2.edf``, 1 min), 500 Hz, ear-linked reference, ICA-cleaned by the
authors (Zyma et al., 2019). Open access (Open Data Commons Attribution 1.0).
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
from mne import pick_info, pick_types
from mne.io import read_raw_edf
from mne.utils import _validate_type, logger, verbose

from mne_freqmask.datasets._utils import (
    cut_segments,
    int_list,
    mne_data_folder,
    segment_samples,
    segments_epochs,
)
from mne_freqmask.utils._checks import _check_positive, _standard_montage
from mne_freqmask.utils._docs import fill_doc

#: Where PhysioNet serves the dataset (version 1.0.0).
BASE_URL = "https://physionet.org/files/eegmat/1.0.0/"
#: Number of subjects in the dataset (``Subject00``-``Subject35``).
N_SUBJECTS = 36
#: Event codes; rest is class index 0, task class index 1.
EVENT_ID = {"rest": 1, "task": 2}
CONDITIONS = {1: "rest", 2: "task"}  # file suffix -> condition
FOLDER_NAME = "MNE-eegmat-data"
INFO_FILE = "subject-info.csv"
CHECKSUMS = "SHA256SUMS.txt"
_FILE_RE = re.compile(r"^Subject(\d{2})_([12])\.edf$")


def _fname(subject, k):
    return f"Subject{subject:02d}_{k}.edf"


def _subject_list(subjects):
    subjects = int_list(subjects, "subjects", empty="use None for all")
    if subjects is None:
        return None
    for subject in subjects:
        if not 0 <= subject < N_SUBJECTS:
            raise ValueError(
                f"EEGMAT subjects are numbered 0-{N_SUBJECTS - 1}, got {subject}."
            )
    return sorted(set(subjects))


def _parse_checksums(fname):
    sums = {}
    for line in Path(fname).read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            sums[parts[1].lstrip("*").lstrip("./")] = parts[0].lower()
    return sums


@verbose
@fill_doc
def data_path(
    path=None,
    *,
    subjects=None,
    base_url=BASE_URL,
    force_update=False,
    download=True,
    verbose=None,
):
    """Get the path to EEGMAT, downloading the missing files from PhysioNet.

    Parameters
    ----------
    path : path-like | None
        Folder of the EDF files (flat, as on PhysioNet). If it already holds
        the files of ``subjects`` and ``subject-info.csv`` they are used as
        they are (see Notes). ``None`` (default) uses
        ``<MNE_DATA>/MNE-eegmat-data``, where ``<MNE_DATA>`` is the
        ``MNE_DATA`` config value or ``~/mne_data``.
    %(eegmat_subjects)s
    base_url : str
        Where to download from (a mirror of the PhysioNet project folder with
        its ``SHA256SUMS.txt``). Default: PhysioNet, version 1.0.0.
    force_update : bool
        Download the checksums and the files again even if present.
    download : bool
        If False and files are missing, raise :class:`FileNotFoundError`
        instead of downloading.
    %(verbose)s

    Returns
    -------
    path : pathlib.Path
        The folder holding ``SubjectNN_1.edf``, ``SubjectNN_2.edf`` and
        ``subject-info.csv``.

    Notes
    -----
    Downloads go through :mod:`pooch`, one file at a time, each checked
    against the SHA256 listed in PhysioNet's ``SHA256SUMS.txt`` for the
    project, which is downloaded first (over HTTPS) and kept in ``path``. The
    package ships no hashes of its own: the copy of EEGMAT in this project's
    ``shared/data`` folder is a reduced one (8 of the 21 channels), so its
    hashes cannot be those of the official files. A file that fails its check
    is not kept (pooch streams to a temporary file and moves it into place
    only when the hash matches); an interrupted download leaves no partial
    file, and the next call resumes with the files still missing. Files
    already present whose hash differs from PhysioNet's are downloaded again.

    When ``path`` already holds every requested file nothing is downloaded
    and nothing is verified: any copy in the PhysioNet layout works, such as
    the reduced one in ``shared/data``.

    Here :mod:`pooch` is used directly rather than
    :func:`mne.datasets.fetch_dataset`, which returns early as soon as the
    dataset folder exists: with one download per file, an interrupted or
    partial download (or a request for more subjects) would then never be
    completed.
    """
    import pooch

    _validate_type(path, ("path-like", None), "path")
    subjects = _subject_list(subjects)
    _validate_type(base_url, str, "base_url")
    _validate_type(force_update, bool, "force_update")
    _validate_type(download, bool, "download")
    folder = mne_data_folder(FOLDER_NAME) if path is None else Path(path).expanduser()
    use = list(range(N_SUBJECTS)) if subjects is None else subjects
    needed = [_fname(s, k) for s in use for k in CONDITIONS] + [INFO_FILE]
    missing = [f for f in needed if not (folder / f).is_file()]
    if not missing and not force_update:
        logger.info(f"Using EEGMAT at {folder}")
        return folder
    if not download:
        raise FileNotFoundError(
            f"{len(missing)} EEGMAT file(s) missing in {folder} (e.g. "
            f"{missing[0]}) and download=False. Pass download=True to fetch them "
            "from PhysioNet, or path=... pointing at a folder that holds them."
        )
    if not base_url.endswith("/"):
        base_url += "/"
    pooch.get_logger().setLevel(logger.getEffectiveLevel())
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=30)
    to_get = needed if force_update else missing
    if force_update:
        for fname in [CHECKSUMS, *to_get]:
            (folder / fname).unlink(missing_ok=True)

    # 1. PhysioNet's checksums (trusted as served over HTTPS)
    sums_fetcher = pooch.create(
        path=folder, base_url=base_url, registry={CHECKSUMS: None}, retry_if_failed=2
    )
    sums = _parse_checksums(sums_fetcher.fetch(CHECKSUMS, downloader=downloader))
    registry = {}
    for fname in needed:
        if fname in sums:
            registry[fname] = f"sha256:{sums[fname]}"
        elif fname.endswith(".edf"):
            raise RuntimeError(
                f"{fname} is not listed in {base_url}{CHECKSUMS}; is base_url the "
                "EEGMAT project folder (e.g. "
                f"{BASE_URL})?"
            )
        else:
            logger.info(f"{fname} is not in {CHECKSUMS}; it is not verified.")
            registry[fname] = None
    # 2. the files, each checked against its SHA256 (pooch re-downloads files
    # whose hash differs, keeps those that match)
    fetcher = pooch.create(
        path=folder, base_url=base_url, registry=registry, retry_if_failed=2
    )
    logger.info(f"Fetching {len(to_get)} EEGMAT file(s) into {folder}")
    for fname in needed:
        try:
            fetcher.fetch(fname, downloader=downloader)
        except ValueError as err:
            if "hash" not in str(err).lower():
                raise
            raise ValueError(
                f"{fname} downloaded from {base_url} does not match the SHA256 in "
                f"{CHECKSUMS}; it was not kept (files already fetched are kept, "
                f"they passed their check). Try again later or use another "
                f"base_url. {err}"
            ) from None
    return folder


def _read_info_csv(folder):
    fname = Path(folder) / INFO_FILE
    if not fname.is_file():
        return {}
    table = pd.read_csv(fname)
    table.columns = [c.strip().lower() for c in table.columns]
    if "subject" not in table or "count quality" not in table:
        return {}
    out = {}
    for name, quality in zip(table["subject"], table["count quality"], strict=True):
        match = re.fullmatch(r"Subject(\d+)", str(name).strip())
        if match is not None and pd.notna(quality):
            out[int(match.group(1))] = int(quality)
    return out


def _read_raw(fname, resample, l_freq=None, h_freq=None):
    raw = read_raw_edf(fname, preload=True, verbose=False)
    # PhysioNet names: "EEG Fp1", ..., "EEG A2-A1", "ECG ECG"
    raw.rename_channels(lambda name: re.sub(r"^(EEG|ECG)\s+", "", name.strip()))
    template = _standard_montage()
    lookup = {name.lower(): name for name in template.ch_names}
    types, names = {}, {}
    for name in raw.ch_names:
        if name.lower() in lookup:
            names[name] = lookup[name.lower()]
        elif name.upper() == "ECG":
            types[name] = "ecg"
        else:  # e.g. the A2-A1 reference difference
            types[name] = "misc"
    raw.rename_channels({k: v for k, v in names.items() if k != v})
    if types:
        raw.set_channel_types(types, verbose=False)
    raw.pick(pick_types(raw.info, eeg=True, exclude=()))
    raw.set_montage(template)
    if l_freq is not None or h_freq is not None:
        raw.filter(l_freq, h_freq, verbose=False)
    if resample is not None:
        raw.resample(resample, verbose=False)
    return raw


@verbose
@fill_doc
def load_epochs(
    path=None,
    subjects=None,
    *,
    segment=2.0,
    resample=None,
    l_freq=None,
    h_freq=None,
    balance=True,
    verbose=None,
):
    """Read EEGMAT as fixed-length rest and task epochs.

    Each recording is cut into non-overlapping segments of ``segment``
    seconds from its first sample; the remainder at the end is dropped.

    Parameters
    ----------
    path : path-like | None
        Folder holding ``SubjectNN_1.edf`` (rest), ``SubjectNN_2.edf``
        (mental arithmetic) and optionally ``subject-info.csv``. ``None``
        (default) calls :func:`data_path` (downloading what is missing).
    %(eegmat_subjects)s
    segment : float
        Epoch length in seconds; ``segment * sfreq`` must be a whole number
        of samples.
    resample : float | None
        New sampling frequency in Hz, applied to each recording before
        cutting (with MNE's anti-aliasing). ``None`` keeps 500 Hz.
    l_freq, h_freq : float | None
        Band-pass edges in Hz applied to each continuous recording (before
        resampling and cutting, so that epochs carry no filter edge effects);
        ``None`` (default) leaves that side unfiltered.
    balance : bool
        If True (default), keep as many rest as task segments per subject:
        the **last** rest segments, those recorded closest in time to the
        task (less drift between the two classes than with the first
        minutes of rest). If False, keep all (about 3 rest segments for 1 task
        segment).
    %(verbose)s

    Returns
    -------
    epochs : instance of mne.EpochsArray
        The segments, EEG channels only (in volts, 10-05 template positions),
        ``event_id`` ``{"rest": 1, "task": 2}`` (class index 0 = rest,
        1 = task). ``metadata`` has the columns ``subject`` (int),
        ``condition`` (``"rest"``/``"task"``), ``segment`` (index of the
        segment in its recording, before balancing) and ``count_quality``
        (1 = good, 0 = bad performer, from ``subject-info.csv``; ``<NA>``
        when the file or the subject is absent).

    Notes
    -----
    Channel names lose PhysioNet's ``"EEG "`` prefix; the reference
    difference (``A2-A1``) and the ECG channel of the official files are
    dropped, as are channels without a template position. The old 10-20 names
    of the official files (``T3``, ``T5``, ...) are kept; the template knows
    them. The ``info`` of the first recording read is used for all epochs,
    with measurement date and subject information removed.

    References
    ----------
    Zyma, I. et al. (2019). Electroencephalograms during mental arithmetic
    task performance. Data 4(1), 14.

    Goldberger, A. L. et al. (2000). PhysioBank, PhysioToolkit, and
    PhysioNet. Circulation 101(23), e215-e220.
    """
    _validate_type(path, ("path-like", None), "path")
    subjects = _subject_list(subjects)
    segment = _check_positive(segment, "segment")
    if resample is not None:
        resample = _check_positive(resample, "resample")
    _validate_type(balance, bool, "balance")
    if path is None:
        folder = data_path(subjects=subjects)
    else:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} is not a folder; pass the folder holding the "
                "SubjectNN_k.edf files, or path=None to download them."
            )
    found = {}
    for fname in folder.iterdir():
        match = _FILE_RE.match(fname.name)
        if match is not None:
            found.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if subjects is None:
        subjects = sorted(s for s, ks in found.items() if ks == set(CONDITIONS))
        if not subjects:
            raise FileNotFoundError(
                f"No SubjectNN_1.edf / SubjectNN_2.edf pairs in {folder}; use "
                "data_path() to download EEGMAT."
            )
    for subject in subjects:
        for k in CONDITIONS:
            if k not in found.get(subject, ()):
                raise FileNotFoundError(
                    f"{_fname(subject, k)} is missing in {folder}; fetch it with "
                    f"data_path(path={str(folder)!r}, subjects=[{subject}])."
                )
    quality = _read_info_csv(folder)

    info, data, events, rows, offset = None, [], [], [], 0
    for subject in subjects:
        cut = {}
        for k, condition in CONDITIONS.items():
            raw = _read_raw(folder / _fname(subject, k), resample, l_freq, h_freq)
            if info is None:
                info = pick_info(raw.info, np.arange(len(raw.ch_names)))
                info.set_meas_date(None)
                info["subject_info"] = None
                sfreq = info["sfreq"]
                n_seg = segment_samples(segment, sfreq)
            elif raw.ch_names != info["ch_names"] or raw.info["sfreq"] != sfreq:
                raise RuntimeError(
                    f"{_fname(subject, k)} has channels {raw.ch_names} at "
                    f"{raw.info['sfreq']} Hz; the first file read has "
                    f"{info['ch_names']} at {sfreq} Hz."
                )
            x = raw.get_data()
            segs, ev = cut_segments(x, n_seg, offset, EVENT_ID[condition])
            cut[condition] = (segs, ev, np.arange(len(segs)))
            offset += x.shape[1]
        if balance:
            n_keep = min(len(cut["rest"][0]), len(cut["task"][0]))
            cut["rest"] = tuple(a[len(a) - n_keep :] for a in cut["rest"])
            cut["task"] = tuple(a[:n_keep] for a in cut["task"])
        for condition, (segs, ev, index) in cut.items():
            data.append(segs)
            events.append(ev)
            rows.extend(
                dict(
                    subject=subject,
                    condition=condition,
                    segment=int(j),
                    count_quality=quality.get(subject, pd.NA),
                )
                for j in index
            )
        logger.info(
            f"Subject{subject:02d}: {len(cut['rest'][0])} rest, "
            f"{len(cut['task'][0])} task segments"
        )
    metadata = pd.DataFrame(rows)
    metadata["count_quality"] = metadata["count_quality"].astype("Int64")
    return segments_epochs(data, info, events, dict(EVENT_ID), metadata)
