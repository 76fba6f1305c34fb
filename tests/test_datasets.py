"""Dataset readers and fetchers.

SEED is licence-gated: its reader is tested on small files written here in the
exact SEED layout, and its download path for real, through pooch, from a local
HTTP server. EEGBCI and EEGMAT are read from the recordings in ``shared/data``
(skipped when the folder is absent); the EEGMAT download is served locally too.
"""

import functools
import hashlib
import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
from scipy.io import savemat

from mne_freqmask.datasets import eegbci, eegmat, seed
from mne_freqmask.utils._checks import _standard_montage

DATA = Path(__file__).parents[1].parent / "shared" / "data"
EEGBCI_DIR = DATA / "eegbci_S001"
EEGMAT_DIR = DATA / "eegmat"
needs_eegbci = pytest.mark.skipif(
    not (EEGBCI_DIR / "S001R04.edf").is_file(),
    reason=f"EEGBCI subject 1 recordings not found in {EEGBCI_DIR}",
)
needs_eegmat = pytest.mark.skipif(
    not (EEGMAT_DIR / "Subject00_1.edf").is_file(),
    reason=f"EEGMAT recordings not found in {EEGMAT_DIR}",
)

# SEED's real label order of the 15 trials
SEED_LABELS = np.array([1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1])
# per subject: session dates, written in non-chronological order
SEED_DATES = {1: ("20131030", "20131027"), 2: ("20140404", "20140413")}
SEG = 1.0  # seconds; 200 samples
N_SEG = 200


def _n_times(k):
    """Length of trial k: 1, 2 or 3 whole segments plus a remainder."""
    return N_SEG * (1 + k % 3) + 37


def _trial(subject, date, k):
    rng = np.random.default_rng([subject, int(date), k])
    return rng.standard_normal((62, _n_times(k))).astype(np.float32) * 20  # "µV"


def _write_seed(root):
    """Write a tiny SEED (2 subjects x 2 sessions x 15 trials) under root."""
    data_dir = Path(root) / "Preprocessed_EEG"
    data_dir.mkdir(parents=True)
    savemat(data_dir / "label.mat", {"label": SEED_LABELS[np.newaxis]})
    (data_dir / "readme.txt").write_text("SEED preprocessed EEG (test copy)\n")
    for subject, dates in SEED_DATES.items():
        initials = {1: "djc", 2: "jl"}[subject]
        for date in dates:
            trials = {
                f"{initials}_eeg{k}": _trial(subject, date, k) for k in range(1, 16)
            }
            savemat(data_dir / f"{subject}_{date}.mat", trials)
    return Path(root)


@pytest.fixture(scope="module")
def seed_root(tmp_path_factory):
    return _write_seed(tmp_path_factory.mktemp("seed") / "SEED")


def _expected_segments(classes, n_sessions=2, n_subjects=2):
    names = {-1: "negative", 0: "neutral", 1: "positive"}
    per_session = {c: 0 for c in classes}
    for k in range(1, 16):
        name = names[SEED_LABELS[k - 1]]
        if name in classes:
            per_session[name] += _n_times(k) // N_SEG
    return {c: n * n_sessions * n_subjects for c, n in per_session.items()}


def test_seed_load_epochs(seed_root):
    """Channels, montage, labels, segment counts, units and metadata."""
    epochs = seed.load_epochs(seed_root, segment=SEG)
    assert epochs.ch_names == list(seed.CH_NAMES)
    assert len(epochs.ch_names) == 62
    assert {"Fp1", "Fpz", "FCz", "POz", "Oz", "CB1", "CB2"} <= set(epochs.ch_names)
    assert set(epochs.get_channel_types()) == {"eeg"}
    assert epochs.info["sfreq"] == 200.0
    assert len(epochs.times) == N_SEG

    pos = epochs.get_montage().get_positions()["ch_pos"]
    assert set(pos) == set(seed.CH_NAMES)
    assert all(np.isfinite(p).all() for p in pos.values())
    # CB1/CB2: below O1/O2, same side, mirrored
    for cb, occ in (("CB1", "O1"), ("CB2", "O2")):
        assert pos[cb][2] < pos[occ][2] - 0.01
        assert np.sign(pos[cb][0]) == np.sign(pos[occ][0])
    np.testing.assert_allclose(pos["CB1"][1:], pos["CB2"][1:], atol=3e-3)

    # classes and codes: ascending code = ascending valence
    assert epochs.event_id == {"negative": 1, "positive": 3}
    expected = _expected_segments(("positive", "negative"))
    assert len(epochs["positive"]) == expected["positive"]
    assert len(epochs["negative"]) == expected["negative"]

    md = epochs.metadata
    assert list(md.columns) == [
        "subject",
        "session",
        "date",
        "trial",
        "label",
        "segment",
    ]
    assert sorted(md["subject"].unique()) == [1, 2]
    assert sorted(md["session"].unique()) == [1, 2]
    assert set(md["label"]) == {"positive", "negative"}
    names = {-1: "negative", 1: "positive"}
    np.testing.assert_array_equal(
        md["label"], [names[SEED_LABELS[t - 1]] for t in md["trial"]]
    )
    codes = np.where(md["label"] == "negative", 1, 3)
    np.testing.assert_array_equal(epochs.events[:, 2], codes)
    # sessions follow the dates, not the order the files were written in
    first = md[(md.subject == 1) & (md.session == 1)]
    assert set(first["date"]) == {"20131027"}

    # the data of one segment, scaled from µV to volts
    row = md[(md.subject == 2) & (md.session == 2) & (md.trial == 1)]
    assert list(row["segment"]) == [0, 1]  # 437 samples -> 2 segments
    idx = row.index[1]
    trial = _trial(2, "20140413", 1).astype(float)
    np.testing.assert_allclose(
        epochs.get_data()[idx], trial[:, N_SEG : 2 * N_SEG] * 1e-6, rtol=1e-6
    )


def test_seed_selection_and_errors(seed_root):
    """Subjects, sessions, classes; errors that name the fix."""
    epochs = seed.load_epochs(
        seed_root / "Preprocessed_EEG",  # the data folder itself works too
        subjects=2,
        sessions=[2],
        classes=("negative", "neutral", "positive"),
        segment=SEG,
    )
    assert epochs.event_id == {"negative": 1, "neutral": 2, "positive": 3}
    assert set(epochs.metadata["subject"]) == {2}
    assert set(epochs.metadata["date"]) == {"20140413"}
    expected = _expected_segments(epochs.event_id, n_sessions=1, n_subjects=1)
    for name, n in expected.items():
        assert len(epochs[name]) == n
    # default 2 s segments: 400 samples
    assert len(seed.load_epochs(seed_root, subjects=[1], sessions=1).times) == 400

    with pytest.raises(ValueError, match=r"Subject\(s\) \[3\] not found.*\[1, 2\]"):
        seed.load_epochs(seed_root, subjects=[3])
    with pytest.raises(ValueError, match=r"Session\(s\) \[3\].*numbered 1-2"):
        seed.load_epochs(seed_root, sessions=[1, 3])
    with pytest.raises(ValueError, match="classes"):
        seed.load_epochs(seed_root, classes=("happy",))
    with pytest.raises(ValueError, match="whole number of samples"):
        seed.load_epochs(seed_root, segment=0.0123)
    with pytest.raises(FileNotFoundError, match="Preprocessed_EEG"):
        seed.load_epochs(seed_root.parent / "nowhere")


# --------------------------------------------------------------------------
# SEED download through pooch, from a local HTTP server


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        if self.path.startswith("/truncated/"):
            # announce the whole file, send half of it, then hang up
            body = (Path(self.directory) / self.path.split("/")[-1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve ``tmp_path / "www"`` on 127.0.0.1 (free port) from a thread."""
    www = tmp_path / "www"
    www.mkdir()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(www))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def no_seed_config(tmp_path, monkeypatch):
    """No SEED URL or hash in the environment or in the MNE config."""
    monkeypatch.delenv(seed.URL_KEY, raising=False)
    monkeypatch.delenv(seed.HASH_KEY, raising=False)
    monkeypatch.setenv("_MNE_FAKE_HOME_DIR", str(tmp_path / "home"))


def _zip_seed(seed_root, fname, *, top="SEED"):
    with zipfile.ZipFile(fname, "w") as zf:
        for f in sorted(seed_root.rglob("*")):
            zf.write(f, Path(top) / f.relative_to(seed_root))
    return "sha256:" + hashlib.sha256(Path(fname).read_bytes()).hexdigest()


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def test_seed_download(seed_root, server, tmp_path, no_seed_config, monkeypatch):
    """data_path fetches, checks the hash, extracts; load_epochs reads it."""
    base, www = server
    known = _zip_seed(seed_root, www / "SEED.zip")
    dest = tmp_path / "dl"
    path = seed.data_path(dest, url=f"{base}/SEED.zip", hash=known)
    assert path == dest / "SEED"
    assert (path / "Preprocessed_EEG" / "label.mat").is_file()
    # the archive and the staging folder are gone
    assert [p.name for p in dest.iterdir()] == ["SEED"]
    epochs = seed.load_epochs(path, subjects=1, sessions=1, segment=SEG)
    assert (
        len(epochs)
        == _expected_segments(("positive", "negative"), 1, 1)["positive"]
        + _expected_segments(("negative",), 1, 1)["negative"]
    )
    # a second call finds the copy: no URL needed
    assert seed.data_path(dest) == path
    assert seed.data_path(dest, download=False) == path

    # URL and hash from the environment; a bare hex digest is SHA256
    monkeypatch.setenv(seed.URL_KEY, f"{base}/SEED.zip")
    monkeypatch.setenv(seed.HASH_KEY, known.split(":")[1])
    dest2 = tmp_path / "dl2"
    assert seed.data_path(dest2) == dest2 / "SEED"
    # force_update downloads again and replaces the extracted folder
    (dest2 / "SEED" / "stale.txt").write_text("old")
    assert seed.data_path(dest2, force_update=True) == dest2 / "SEED"
    assert not (dest2 / "SEED" / "stale.txt").exists()
    assert [p.name for p in dest2.iterdir()] == ["SEED"]


def test_seed_download_wrong_hash(seed_root, server, tmp_path, no_seed_config):
    """A wrong hash raises and leaves nothing behind."""
    base, www = server
    _zip_seed(seed_root, www / "SEED.zip")
    dest = tmp_path / "dl"
    with pytest.raises(ValueError, match="does not match the expected hash"):
        seed.data_path(dest, url=f"{base}/SEED.zip", hash="sha256:" + "0" * 64)
    assert not dest.exists()  # created by the call, removed again
    with pytest.raises(ValueError, match="64 hex digits"):
        seed.data_path(dest, url=f"{base}/SEED.zip", hash="sha256:abc")
    with pytest.raises(ValueError, match="sha256:<64 hex digits>"):
        seed.data_path(dest, url=f"{base}/SEED.zip", hash="crc32:00ff")
    assert seed._normalise_hash("MD5:" + "A" * 32) == "md5:" + "a" * 32
    assert seed._normalise_hash(" " + "b" * 64) == "sha256:" + "b" * 64


def test_seed_download_interrupted_or_not_seed(
    seed_root, server, tmp_path, no_seed_config
):
    """A cut download or an archive without Preprocessed_EEG leaves nothing."""
    base, www = server
    _zip_seed(seed_root, www / "SEED.zip")
    dest = tmp_path / "dl"
    with pytest.raises(requests.exceptions.RequestException, match="(?i)incomplete"):
        seed.data_path(dest, url=f"{base}/truncated/SEED.zip")
    assert not dest.exists()
    # a folder that existed keeps exactly what it held
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")

    # right hash, wrong content: extracted, found wanting, removed
    with zipfile.ZipFile(www / "other.zip", "w") as zf:
        zf.writestr("other/readme.txt", "not SEED")
    with pytest.raises(RuntimeError, match="does not contain a Preprocessed_EEG"):
        seed.data_path(dest, url=f"{base}/other.zip")
    assert _listing(dest) == ["mine.txt"]
    # not a zip at all
    (www / "broken.zip").write_bytes(b"not a zip file")
    with pytest.raises(zipfile.BadZipFile):
        seed.data_path(dest, url=f"{base}/broken.zip")
    assert _listing(dest) == ["mine.txt"]


def test_seed_without_url(tmp_path, no_seed_config, monkeypatch):
    """No URL and no local copy: how to apply, and how to point at a copy."""
    empty = tmp_path / "empty"
    with pytest.raises(RuntimeError, match=r"bcmi\.sjtu\.edu\.cn/home/seed") as err:
        seed.data_path(empty)
    assert "path=" in str(err.value) and seed.URL_KEY in str(err.value)
    assert not empty.exists()
    with pytest.raises(FileNotFoundError, match="download=False"):
        seed.data_path(empty, download=False)
    # default folder under MNE_DATA
    monkeypatch.setenv("MNE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="MNE-seed-data"):
        seed.data_path(download=False)
    with pytest.raises(ValueError, match="http"):
        seed.data_path(empty, url="/local/SEED.zip")
    # an existing copy needs no URL (the folder or one level above it)
    _write_seed(tmp_path / "copy" / "SEED")
    assert seed.data_path(tmp_path / "copy" / "SEED") == tmp_path / "copy" / "SEED"
    assert seed.data_path(tmp_path / "copy") == tmp_path / "copy" / "SEED"


# --------------------------------------------------------------------------
# EEGBCI (shared/data)


@pytest.fixture(scope="module")
def bci_epochs():
    if not (EEGBCI_DIR / "S001R04.edf").is_file():
        pytest.skip(f"EEGBCI subject 1 recordings not found in {EEGBCI_DIR}")
    return eegbci.load_epochs(EEGBCI_DIR)


@needs_eegbci
def test_eegbci_load_epochs(bci_epochs):
    """Channels, sfreq, classes, metadata and montage of runs 4/8/12."""
    epochs = bci_epochs
    assert len(epochs.ch_names) == 64
    assert {"C3", "Cz", "C4", "FCz", "Fp1"} <= set(epochs.ch_names)
    assert epochs.info["sfreq"] == 160.0
    assert len(epochs.times) == 640  # 4 s minus one sample
    assert epochs.event_id == {"left_fist": 1, "right_fist": 2}
    assert len(epochs) == 45
    assert (len(epochs["left_fist"]), len(epochs["right_fist"])) == (23, 22)
    md = epochs.metadata
    assert set(md["subject"]) == {1}
    assert md["run"].value_counts().to_dict() == {4: 15, 8: 15, 12: 15}
    np.testing.assert_array_equal(
        epochs.events[:, 2], md["label"].map(eegbci.EVENT_CODES)
    )
    pos = epochs.get_montage().get_positions()["ch_pos"]
    assert len(pos) == 64 and all(np.isfinite(p).all() for p in pos.values())
    # C3 left of C4
    assert pos["C3"][0] < 0 < pos["C4"][0]
    # raw, not filtered: EEG amplitudes in volts
    assert 1e-7 < np.median(np.abs(epochs.get_data())) < 1e-4


@needs_eegbci
def test_eegbci_runs_resample_and_fetcher(monkeypatch):
    """Feet/fists runs, resampling, the MNE fetcher branch, errors."""
    epochs = eegbci.load_epochs(EEGBCI_DIR, runs=[6], resample=80.0, tmin=0.5)
    assert epochs.event_id == {"both_fists": 3, "both_feet": 4}
    assert epochs.info["sfreq"] == 80.0
    assert epochs.times[0] == 0.5
    assert len(epochs.times) == 320 - 40  # 0.5 ... 4 - 1/80 s
    assert set(epochs.metadata["run"]) == {6}
    assert set(epochs.metadata["label"]) == {"both_fists", "both_feet"}

    calls = []

    def fake_load_data(subjects, runs, **kwargs):
        calls.append((subjects, runs, kwargs))
        return [EEGBCI_DIR / f"S001R{r:02d}.edf" for r in runs]

    monkeypatch.setattr("mne.datasets.eegbci.load_data", fake_load_data)
    epochs = eegbci.load_epochs(runs=4, tmax=2.0)
    assert calls == [(1, [4], dict(update_path=False))]
    assert len(epochs) == 15 and len(epochs.times) == 321

    with pytest.raises(ValueError, match="not a motor-imagery run"):
        eegbci.load_epochs(EEGBCI_DIR, runs=[3])
    with pytest.raises(FileNotFoundError, match="S002R04.edf"):
        eegbci.load_epochs(EEGBCI_DIR, runs=[4], subject=2)


# --------------------------------------------------------------------------
# EEGMAT (shared/data)


@needs_eegmat
def test_eegmat_load_epochs():
    """Channels, sfreq, balanced classes, metadata and montage."""
    epochs = eegmat.load_epochs(EEGMAT_DIR, subjects=[0, 1])
    assert epochs.ch_names == ["F3", "Fz", "F4", "P3", "Pz", "P4", "O1", "O2"]
    assert epochs.info["sfreq"] == 500.0
    assert len(epochs.times) == 1000
    assert epochs.event_id == {"rest": 1, "task": 2}
    md = epochs.metadata
    assert list(md.columns) == ["subject", "condition", "segment", "count_quality"]
    counts = md.groupby(["subject", "condition"]).size().to_dict()
    # 62 s of task -> 31 segments; as many of the last rest segments
    assert counts == {
        (0, "rest"): 31,
        (0, "task"): 31,
        (1, "rest"): 31,
        (1, "task"): 31,
    }
    rest0 = md[(md.subject == 0) & (md.condition == "rest")]
    assert list(rest0["segment"]) == list(range(60, 91))  # 182 s -> 91 segments
    # subject-info.csv: Subject00 count quality 0, Subject01 1
    assert md.groupby("subject")["count_quality"].first().to_dict() == {0: 0, 1: 1}
    pos = epochs.get_montage().get_positions()["ch_pos"]
    assert set(pos) == set(epochs.ch_names)
    assert all(np.isfinite(p).all() for p in pos.values())

    unbalanced = eegmat.load_epochs(
        EEGMAT_DIR, subjects=3, balance=False, resample=250.0, segment=4.0
    )
    assert unbalanced.info["sfreq"] == 250.0 and len(unbalanced.times) == 1000
    assert (len(unbalanced["rest"]), len(unbalanced["task"])) == (45, 15)

    with pytest.raises(ValueError, match="numbered 0-35"):
        eegmat.load_epochs(EEGMAT_DIR, subjects=[36])
    with pytest.raises(ValueError, match="whole number of samples"):
        eegmat.load_epochs(EEGMAT_DIR, subjects=[0], segment=0.0011)


@needs_eegmat
def test_eegmat_local_copy(tmp_path):
    """A folder holding the files is used as is; all subjects found are read."""
    assert eegmat.data_path(EEGMAT_DIR, subjects=list(range(12))) == EEGMAT_DIR
    # a range, as MNE's own dataset fetchers accept one
    assert eegmat.data_path(EEGMAT_DIR, subjects=range(12)) == EEGMAT_DIR
    with pytest.raises(TypeError, match="subjects must be"):
        eegmat.data_path(EEGMAT_DIR, subjects="0-11")
    with pytest.raises(FileNotFoundError, match="missing.*download=False"):
        eegmat.data_path(EEGMAT_DIR, subjects=[20], download=False)
    two = tmp_path / "two"
    two.mkdir()
    for name in ("Subject02_1.edf", "Subject02_2.edf", "Subject05_1.edf"):
        shutil.copy(EEGMAT_DIR / name, two / name)
    epochs = eegmat.load_epochs(two)  # Subject05 has no task file: skipped
    assert set(epochs.metadata["subject"]) == {2}
    assert epochs.metadata["count_quality"].isna().all()  # no subject-info.csv
    with pytest.raises(FileNotFoundError, match=r"Subject05_2\.edf.*data_path"):
        eegmat.load_epochs(two, subjects=[5])


@needs_eegmat
def test_eegmat_download(server, tmp_path):
    """Files fetched from a PhysioNet-like folder, checked against SHA256SUMS."""
    base, www = server
    names = ["Subject00_1.edf", "Subject00_2.edf", "subject-info.csv"]
    lines = []
    for name in names:
        shutil.copy(EEGMAT_DIR / name, www / name)
        digest = hashlib.sha256((www / name).read_bytes()).hexdigest()
        lines.append(f"{digest} {name}")
    (www / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")

    dest = tmp_path / "dl"
    path = eegmat.data_path(dest, subjects=[0], base_url=base)
    assert path == dest
    assert _listing(dest) == sorted(names + ["SHA256SUMS.txt"])
    epochs = eegmat.load_epochs(dest)
    assert len(epochs) == 62 and set(epochs.metadata["count_quality"]) == {0}

    # a file whose hash does not match is not kept
    lines[1] = "0" * 64 + " Subject00_2.edf"
    (www / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    dest2 = tmp_path / "dl2"
    with pytest.raises(ValueError, match="Subject00_2.edf .* does not match"):
        eegmat.data_path(dest2, subjects=[0], base_url=base)
    assert "Subject00_2.edf" not in _listing(dest2)
    assert all(not name.startswith("tmp") for name in _listing(dest2))


def test_montage_helper_is_the_template():
    """SEED's montage reuses the 10-05 template positions (CB1/CB2 = I1/I2)."""
    template = _standard_montage().get_positions()["ch_pos"]
    mont = seed._seed_montage().get_positions()["ch_pos"]
    np.testing.assert_array_equal(mont["Fp1"], template["Fp1"])
    np.testing.assert_array_equal(mont["CB1"], template["I1"])
    np.testing.assert_array_equal(mont["CB2"], template["I2"])
