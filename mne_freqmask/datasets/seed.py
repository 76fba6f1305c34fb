"""SEED, the SJTU Emotion EEG Dataset (licence-gated).

SEED (Zheng & Lu, 2015) holds 62-channel EEG of 15 subjects who watched 15
film clips (positive, neutral or negative) in each of 3 sessions. It is shared
under a licence agreement (https://bcmi.sjtu.edu.cn/home/seed/): after the
agreement is accepted, the BCMI laboratory sends a download link. This module
never knows that link; the user passes it (``url=`` or the environment variable
``MNE_FREQMASK_SEED_URL``), or points :func:`data_path` at a copy they already
have.
"""

import os
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from mne import create_info, get_config
from mne.channels import make_dig_montage
from mne.utils import _check_option, _validate_type, logger, verbose

from mne_freqmask.datasets._utils import (
    cut_segments,
    int_list,
    mne_data_folder,
    segment_samples,
    segments_epochs,
)
from mne_freqmask.utils._checks import _check_positive, _standard_montage
from mne_freqmask.utils._docs import fill_doc

#: Sampling frequency of SEED's ``Preprocessed_EEG`` files, in Hz.
SFREQ = 200.0

#: SEED's 62 channel names in the order of the rows of each trial array,
#: spelled as in MNE's 10-05 template (``CB1``/``CB2`` are not in it).
CH_NAMES = (
    "Fp1 Fpz Fp2 AF3 AF4 F7 F5 F3 F1 Fz F2 F4 F6 F8 FT7 FC5 FC3 FC1 FCz FC2 FC4 "
    "FC6 FT8 T7 C5 C3 C1 Cz C2 C4 C6 T8 TP7 CP5 CP3 CP1 CPz CP2 CP4 CP6 TP8 P7 P5 "
    "P3 P1 Pz P2 P4 P6 P8 PO7 PO5 PO3 POz PO4 PO6 PO8 CB1 O1 Oz O2 CB2"
).split()

#: Template positions used for SEED's two cerebellar electrodes.
CB_POSITIONS = {"CB1": "I1", "CB2": "I2"}

#: Event codes: ascending code = ascending valence, so the class index
#: (k-th code in ascending order) is 0 = negative, 1 = neutral, 2 = positive
#: (0 = negative, 1 = positive for the default two classes).
EVENT_CODES = {"negative": 1, "neutral": 2, "positive": 3}
_LABEL_VALUES = {-1: "negative", 0: "neutral", 1: "positive"}

URL_KEY = "MNE_FREQMASK_SEED_URL"
HASH_KEY = "MNE_FREQMASK_SEED_HASH"
FOLDER_NAME = "MNE-seed-data"
_DATA_DIR = "Preprocessed_EEG"
_APPLY = (
    "SEED is distributed under a licence agreement: apply for access at "
    "https://bcmi.sjtu.edu.cn/home/seed/ (the BCMI laboratory then e-mails a "
    "download link). Pass that link as url=... or set the environment variable "
    f"{URL_KEY}. If you already have SEED on disk, pass path=... pointing at the "
    f"folder that contains {_DATA_DIR}/ (e.g. path='/data/SEED')."
)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
_FILE_RE = re.compile(r"^(\d+)_(\d+)\.mat$")
_TRIAL_RE = re.compile(r"^(.+)_eeg(\d+)$")


def _find_seed_root(folder, max_depth=2):
    """Return the folder containing ``Preprocessed_EEG`` (None if not found)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if folder.name == _DATA_DIR and (folder / "label.mat").is_file():
        return folder.parent
    if (folder / _DATA_DIR).is_dir():
        return folder
    if max_depth > 0:
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.name.startswith("."):
                found = _find_seed_root(sub, max_depth - 1)
                if found is not None:
                    return found
    return None


def _normalise_hash(hash_):
    """Return a pooch hash string ``"alg:hex"`` (or None)."""
    if hash_ is None or str(hash_).strip() == "":
        return None
    _validate_type(hash_, str, "hash")
    hash_ = hash_.strip()
    alg, sep, value = hash_.rpartition(":")
    alg = alg.lower() if sep else "sha256"
    if alg not in _HASH_LENGTHS or not _HEX.match(value):
        raise ValueError(
            f"hash must be 'sha256:<64 hex digits>' (or the bare hex digest, or "
            f"'md5:...'/'sha1:...'), got {hash_!r}."
        )
    if len(value) != _HASH_LENGTHS[alg]:
        raise ValueError(
            f"A {alg} digest has {_HASH_LENGTHS[alg]} hex digits, got "
            f"{len(value)} in {hash_!r}; check that the hash was copied whole."
        )
    return f"{alg}:{value.lower()}"


def _archive_name(url):
    """Archive file name and kind (``"zip"`` or ``"tar"``) from the URL."""
    name = Path(urlsplit(url).path).name
    lower = name.lower()
    if lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return name, "tar"
    if lower.endswith(".zip"):
        return name, "zip"
    # a tokenised link without a file name: SEED is distributed as zip
    return "SEED.zip", "zip"


class _HashLoggingProcessor:
    """Log the archive's SHA256 (so it can be pinned), then unpack it."""

    def __init__(self, unpack, known):
        self.unpack = unpack
        self.known = known

    def __call__(self, fname, action, pooch):
        if self.known is None:
            from pooch import file_hash

            logger.info(
                f"SHA256 of the downloaded SEED archive: {file_hash(fname)} "
                f"(pass hash='sha256:...' or set {HASH_KEY} to verify future "
                "downloads)."
            )
        return self.unpack(fname, action, pooch)


def _remove(path):
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@verbose
@fill_doc
def data_path(
    path=None,
    url=None,
    *,
    hash=None,
    force_update=False,
    download=True,
    verbose=None,
):
    """Get the path to SEED, downloading it from a licensed URL if needed.

    Parameters
    ----------
    %(seed_path)s
    url : str | None
        The download link received from the BCMI laboratory after accepting
        the SEED licence (an ``http(s)`` URL of a ``.zip`` or ``.tar[.gz]``
        archive; a link without a file name is treated as a zip archive).
        ``None`` (default) reads the environment variable
        ``MNE_FREQMASK_SEED_URL``, then the key of the same name in the MNE
        config file (see Notes).
    hash : str | None
        Known digest of the archive, ``"sha256:<hex>"`` (a bare 64-digit hex
        string is read as SHA256; ``"md5:..."`` also works). ``None``
        (default) reads ``MNE_FREQMASK_SEED_HASH`` like ``url``; when no hash
        is given at all the download is not verified and its SHA256 is logged
        so it can be pinned.
    force_update : bool
        Download and extract again even if ``path`` already holds SEED; the
        extracted folders of the new archive replace those of the old one.
    download : bool
        If False and SEED is not found at ``path``, raise
        :class:`FileNotFoundError` instead of downloading.
    %(verbose)s

    Returns
    -------
    path : pathlib.Path
        The folder that contains ``Preprocessed_EEG/`` (pass it to
        :func:`load_epochs`).

    Notes
    -----
    The download goes through :func:`mne.datasets.fetch_dataset` (pooch): the
    archive is streamed to a temporary file next to its destination and only
    kept if its hash matches, so a wrong hash or an interrupted download leaves
    no archive behind. The archive is extracted into a temporary folder inside
    ``path`` which is moved into place only once it is complete and holds
    ``Preprocessed_EEG/``; on any failure the temporary folder and the archive
    are removed (and ``path`` too, if this call created it and it is empty).
    The archive itself is deleted after extraction.

    The URL and hash are read with :func:`mne.get_config` with
    ``use_env=True``: the environment variables ``MNE_FREQMASK_SEED_URL`` and
    ``MNE_FREQMASK_SEED_HASH`` come first, then keys of the same names in the
    MNE config file. Prefer the environment variables: ``mne.set_config``
    warns about keys it does not know (they still work).

    The ``path`` used is not stored in the MNE config.
    """
    _validate_type(path, ("path-like", None), "path")
    _validate_type(url, (str, None), "url")
    _validate_type(force_update, bool, "force_update")
    _validate_type(download, bool, "download")
    folder = mne_data_folder(FOLDER_NAME) if path is None else Path(path).expanduser()

    found = _find_seed_root(folder)
    if found is not None and not force_update:
        logger.info(f"Using SEED at {found}")
        return found
    if not download:
        raise FileNotFoundError(
            f"SEED was not found at {folder} (no {_DATA_DIR}/ folder in it or "
            f"below) and download=False. Pass path=... pointing at the folder "
            f"that contains {_DATA_DIR}/, or download=True with a url. " + _APPLY
        )
    if url is None:
        url = get_config(URL_KEY, use_env=True)
    if not url:
        raise RuntimeError(
            f"SEED was not found at {folder} and no URL was given. " + _APPLY
        )
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(
            f"url must be an http(s) link, got {url!r}. For an archive already "
            "on disk, extract it and pass path=... pointing at the folder that "
            f"contains {_DATA_DIR}/."
        )
    if hash is None:
        hash = get_config(HASH_KEY, use_env=True)
    known = _normalise_hash(hash)
    return _download(folder, url, known)


def _download(folder, url, known):
    import pooch
    from mne.datasets import fetch_dataset

    archive_name, kind = _archive_name(url)
    staging_name = f".seed-download-{uuid.uuid4().hex[:8]}"
    staging = folder / staging_name
    created = not folder.exists()
    archive_existed = (folder / archive_name).exists()
    unpack_cls = pooch.Unzip if kind == "zip" else pooch.Untar
    processor = _HashLoggingProcessor(unpack_cls(extract_dir=str(staging)), known)
    # fetch_dataset accepts any URL in its params dict (mne-icalabel's way);
    # the staging folder is its "folder_name", so its early return ("folder
    # exists") never fires and each call really downloads. pooch's registry
    # takes None for "no known hash".
    params = dict(
        dataset_name="freqmask_seed",
        archive_name=archive_name,
        hash=known,
        url=url,
        folder_name=staging_name,
    )
    logger.info(f"Downloading SEED from {url} into {folder}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fetch_dataset(params, path=folder, processor=processor, update_path=False)
        except ValueError as err:
            if "hash" in str(err).lower():
                # drop fetch_dataset's advice (force_update does not help here)
                detail = str(err).split(" Consider using force_update")[0]
                raise ValueError(
                    f"The SEED archive downloaded from {url} does not match the "
                    f"expected hash {known}; nothing was kept. Check the hash "
                    f"(the hash argument or the {HASH_KEY} environment variable); "
                    "with no hash at all the download is not verified. " + detail
                ) from None
            raise
        root = _find_seed_root(staging)
        if root is None:
            raise RuntimeError(
                f"The archive downloaded from {url} does not contain a "
                f"{_DATA_DIR}/ folder; is it the SEED archive? Nothing was kept."
            )
        # move the extracted top-level entries into place
        for entry in sorted(staging.iterdir()):
            target = folder / entry.name
            if target.exists():
                _remove(target)
            os.replace(entry, target)
        shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        _remove(staging)
        if not archive_existed:  # never delete a file the user put there
            _remove(folder / archive_name)
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise
    found = _find_seed_root(folder)
    logger.info(f"SEED is at {found}")
    return found


def _seed_montage():
    """10-05 template positions for SEED's channels; CB1/CB2 at I1/I2."""
    template = _standard_montage()
    pos = template.get_positions()
    lookup = {name.lower(): name for name in pos["ch_pos"]}
    ch_pos = {}
    for name in CH_NAMES:
        src = CB_POSITIONS.get(name, name)
        ch_pos[name] = pos["ch_pos"][lookup[src.lower()]]
    return make_dig_montage(
        ch_pos=ch_pos,
        nasion=pos["nasion"],
        lpa=pos["lpa"],
        rpa=pos["rpa"],
        coord_frame=pos["coord_frame"],
    )


def _list_files(data_dir):
    """``{subject: [(date, Path), ...]}`` sorted by date."""
    files = {}
    for fname in data_dir.iterdir():
        match = _FILE_RE.match(fname.name)
        if match is None:
            continue
        files.setdefault(int(match.group(1)), []).append((match.group(2), fname))
    return {subj: sorted(v) for subj, v in sorted(files.items())}


def _read_labels(data_dir):
    from scipy.io import loadmat

    fname = data_dir / "label.mat"
    if not fname.is_file():
        raise FileNotFoundError(
            f"{fname} is missing; it is part of SEED's {_DATA_DIR}/ folder "
            "(variable 'label' with the 15 trial labels)."
        )
    labels = np.asarray(loadmat(fname, variable_names=["label"])["label"]).ravel()
    bad = set(np.unique(labels).tolist()) - set(_LABEL_VALUES)
    if bad:
        raise ValueError(f"{fname} holds labels {sorted(bad)}; expected 1, 0 or -1.")
    return labels.astype(int)


def _trial_names(fname):
    """``{trial number: variable name}`` of one session file."""
    from scipy.io import whosmat

    names = {}
    for name, shape, _ in whosmat(fname):
        match = _TRIAL_RE.match(name)
        if match is None:
            continue
        if len(shape) != 2 or shape[0] != len(CH_NAMES):
            raise ValueError(
                f"{fname.name}: variable {name!r} has shape {shape}; SEED trials "
                f"are ({len(CH_NAMES)}, n_samples)."
            )
        names[int(match.group(2))] = name
    return names


@verbose
@fill_doc
def load_epochs(
    path,
    subjects=None,
    sessions=None,
    classes=("positive", "negative"),
    segment=2.0,
    *,
    verbose=None,
):
    """Read SEED's preprocessed EEG as fixed-length epochs.

    Each trial (one film clip) of ``Preprocessed_EEG/<subject>_<date>.mat`` is
    cut into non-overlapping segments of ``segment`` seconds, starting at the
    first sample; the remainder at the end of the trial is dropped.

    Parameters
    ----------
    path : path-like
        The folder that contains ``Preprocessed_EEG/`` (as returned by
        :func:`data_path`), or the ``Preprocessed_EEG`` folder itself.
    subjects : int | list of int | None
        Subject numbers (the numeric prefix of the file names, 1-15 in SEED).
        ``None`` (default) reads all subjects found.
    sessions : int | list of int | None
        Sessions to read, numbered 1, 2, 3 in the order of the recording dates
        of each subject. ``None`` (default) reads all.
    classes : tuple of str
        The emotions to keep, among ``"negative"`` (label -1), ``"neutral"``
        (0) and ``"positive"`` (1). Trials of other classes are not read.
    segment : float
        Epoch length in seconds; ``segment * 200`` must be an integer.
    %(verbose)s

    Returns
    -------
    epochs : instance of mne.EpochsArray
        The segments, in volts, with the 62 EEG channels and a montage.
        ``event_id`` holds the requested classes with codes negative = 1,
        neutral = 2, positive = 3, so that the k-th code in ascending order
        is class index k (valence order). ``metadata`` has the columns
        ``subject``, ``session``, ``date``, ``trial`` (1-15), ``label`` (class
        name) and ``segment`` (index of the segment within its trial).

    Notes
    -----
    **Units.** SEED's documentation does not state the unit of the
    preprocessed signals. They are assumed to be in microvolts (the unit the
    Neuroscan recordings are exported in; the values are tens of units, as
    scalp EEG in µV) and are multiplied by 1e-6 to give volts, MNE's unit.

    **Channels.** SEED's upper-case names (``FP1``, ``FCZ``, ...) are spelled
    as in MNE's 10-05 template (``Fp1``, ``FCz``, ...). Positions come from that
    template, except for ``CB1`` and ``CB2``, the cerebellar electrodes of the
    Neuroscan Quik-Cap, which are not in the 10-05 system: they sit below O1
    and O2, and are placed at the template's ``I1`` and ``I2`` (10 percent of the
    nasion-inion distance below O1/O2, at the level of the inion). Other
    readers use PO9/PO10 or POO7/POO8; the choice only affects topographic
    plots and spatial interpolation.

    Memory: a full SEED trial is about 4 minutes (62 x ~47000 samples); all
    trials of all sessions of the 15 subjects take several GB in float64.
    Read a few subjects at a time if needed.

    References
    ----------
    Zheng, W.-L. & Lu, B.-L. (2015). Investigating critical frequency bands
    and channels for EEG-based emotion recognition with deep neural networks.
    IEEE Transactions on Autonomous Mental Development, 7(3), 162-175.
    """
    from scipy.io import loadmat

    _validate_type(path, "path-like", "path")
    subjects = int_list(subjects, "subjects", empty="use None for all")
    sessions = int_list(sessions, "sessions", empty="use None for all")
    if isinstance(classes, str):
        classes = (classes,)
    _validate_type(classes, (list, tuple), "classes", "tuple of str")
    classes = tuple(classes)
    if not classes:
        raise ValueError(f"classes must name at least one of {list(EVENT_CODES)}.")
    for cls in classes:
        _check_option("classes", cls, list(EVENT_CODES))
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes has duplicates: {classes}.")
    segment = _check_positive(segment, "segment")
    n_seg = segment_samples(segment, SFREQ, "; e.g. segment=2.0 (400 samples)")

    root = _find_seed_root(Path(path).expanduser())
    if root is None:
        raise FileNotFoundError(
            f"No {_DATA_DIR}/ folder at or below {path}. Pass the folder that "
            f"contains {_DATA_DIR}/ (see data_path())."
        )
    data_dir = root / _DATA_DIR
    labels = _read_labels(data_dir)
    files = _list_files(data_dir)
    if not files:
        raise FileNotFoundError(
            f"No <subject>_<date>.mat files in {data_dir} (e.g. 1_20131027.mat)."
        )
    if subjects is not None:
        missing = sorted(set(subjects) - set(files))
        if missing:
            raise ValueError(
                f"Subject(s) {missing} not found in {data_dir}; available: "
                f"{sorted(files)}."
            )
    use_subjects = sorted(files) if subjects is None else subjects

    keep_codes = {cls: EVENT_CODES[cls] for cls in classes}
    data, events, rows = [], [], []
    offset = 0
    for subject in use_subjects:
        n_sess = len(files[subject])
        use_sessions = range(1, n_sess + 1) if sessions is None else sessions
        bad = sorted(set(use_sessions) - set(range(1, n_sess + 1)))
        if bad:
            raise ValueError(
                f"Session(s) {bad} not found for subject {subject}: it has "
                f"{n_sess} session file(s), numbered 1-{n_sess} by date."
            )
        for session in use_sessions:
            date, fname = files[subject][session - 1]
            trials = _trial_names(fname)
            if sorted(trials) != list(range(1, len(labels) + 1)):
                raise ValueError(
                    f"{fname.name} holds trials {sorted(trials)}; expected 1-"
                    f"{len(labels)} to match label.mat."
                )
            wanted = [
                k for k in sorted(trials) if _LABEL_VALUES[labels[k - 1]] in classes
            ]
            logger.info(f"Reading {fname.name} ({len(wanted)} trials)")
            mat = loadmat(fname, variable_names=[trials[k] for k in wanted])
            for k in wanted:
                trial = np.asarray(mat[trials[k]], dtype=np.float64)
                label = _LABEL_VALUES[labels[k - 1]]
                segs, ev = cut_segments(trial, n_seg, offset, keep_codes[label])
                if len(segs):
                    data.append(segs * 1e-6)
                    events.append(ev)
                    rows.extend(
                        dict(
                            subject=subject,
                            session=session,
                            date=date,
                            trial=k,
                            label=label,
                            segment=j,
                        )
                        for j in range(len(segs))
                    )
                offset += trial.shape[1]
            del mat
    if not data:
        raise RuntimeError(
            f"No segment of {segment} s could be cut from the selected trials."
        )
    info = create_info(list(CH_NAMES), SFREQ, "eeg")
    info.set_montage(_seed_montage())
    present = {lab for lab in (r["label"] for r in rows)}
    event_id = {
        cls: code
        for cls, code in sorted(keep_codes.items(), key=lambda x: x[1])
        if cls in present
    }
    return segments_epochs(data, info, events, event_id, pd.DataFrame(rows))
