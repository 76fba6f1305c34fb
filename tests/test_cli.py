"""mne-freqmask demo, end to end (short configuration)."""

import re
import subprocess
import sys

import pytest

from mne_freqmask.cli import main


def test_demo_writes_report(tmp_path, torch_threads, capsys):
    out = tmp_path / "report.html"
    assert main(["demo", "--out", str(out), "--quick", "--seed", "1"]) == 0
    said = capsys.readouterr()
    text = said.out + said.err
    # progress for each long step, then a summary of what was found
    for step in ("Training eegnet", "Explaining the", "Scoring", "FreqMask chunks"):
        assert step in text, step
    summary = said.out[said.out.index("mne-freqmask demo: what does") :]
    for label in ("Data", "Planted", "Model", "Top cells", "Truth", "Time"):
        assert re.search(rf"^  {label} ", summary, re.M), label
    assert re.search(r"held-out accuracy 1\.000|held-out accuracy 0\.9", summary)
    assert "(planted)" in summary  # the top cells are the planted ones
    removal = re.search(
        r"Removal \(group\)\s+accuracy original ([0-9.]+) / RN ([0-9.]+) / "
        r"RS ([0-9.]+)",
        summary,
    )
    orig, rn, rs = map(float, removal.groups())
    assert rn >= orig - 0.1 and rs <= 0.75  # the map is faithful at group level
    assert summary.rstrip().endswith(f"Report written to {out.resolve()}")
    # no third-party noise
    assert "Embedding" not in text and "standard_1020" not in text
    html = out.read_text()
    # topomaps, band image and frequency plot are embedded as images
    for alt in (
        "Group saliency per band",
        "Channel x band saliency",
        "Saliency over frequency",
    ):
        pattern = rf'<img [^>]*alt="{re.escape(alt)}[^"]*"\s*src="data:image/\w+;base64'
        img = re.search(pattern, html)
        assert img is not None, alt
    for title in (
        "Group saliency per band",
        "Channel x band saliency",
        "Removal game",
        "Parameters",
        "AUROC",
    ):
        assert title in html
    auroc = float(re.search(r"AUROC[^=]*= <b>([0-9.]+)</b>", html).group(1))
    assert auroc >= 0.9  # the demo recovers the planted cells
    assert not list(tmp_path.glob("*.part*"))  # nothing half-written left


def test_demo_quiet_prints_only_the_path(tmp_path):
    """In a fresh interpreter: stdout is the report path, stderr is empty."""
    import os

    out = tmp_path / "q.html"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    res = subprocess.run(
        [sys.executable, "-m", "mne_freqmask.cli", "demo", "--quick", "--quiet"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"{out.resolve()}\n"
    assert res.stderr == ""  # no warnings, no progress, no "Embedding" lines
    assert out.is_file()


def test_demo_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "report.html"
    out.write_text("keep me")
    assert main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists; pass --overwrite" in err
    assert "Traceback" not in err
    assert out.read_text() == "keep me"
    assert main(["demo", "--out", str(tmp_path / "report.txt")]) == 2
    assert "must end in .html" in capsys.readouterr().err


def test_console_script_help():
    res = subprocess.run(
        [sys.executable, "-m", "mne_freqmask.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0
    assert "--out" in res.stdout and "--quick" in res.stdout


@pytest.mark.parametrize("argv", [[], ["nope"]])
def test_bad_command(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


@pytest.fixture(scope="module")
def saved_inputs(tmp_path_factory, torch_threads):
    from mne_freqmask.datasets.simulated import make_epochs
    from mne_freqmask.models import fit, save_model

    folder = tmp_path_factory.mktemp("cli")
    epochs, _ = make_epochs(n_subjects=2, n_epochs_per_class=8, random_state=2)
    model, _ = fit(epochs, "eegnet", max_epochs=2, random_state=0)
    epo, pt = folder / "sim-epo.fif", folder / "eegnet.pt"
    epochs.save(epo)
    save_model(pt, model)
    return epochs, epo, pt, folder


def test_explain_command(saved_inputs, tmp_path):
    from mne_freqmask import read_saliency

    epochs, epo, pt, _ = saved_inputs
    h5, html = tmp_path / "sal.h5", tmp_path / "rep.html"
    argv = [
        "explain",
        str(epo),
        str(pt),
        "--bands",
        "canonical",
        "--out",
        str(h5),
        "--report",
        str(html),
    ]
    assert main(argv) == 0
    sal = read_saliency(h5)
    assert sal.shape == (len(epochs), len(epochs.ch_names), 5)
    assert sal.band_names[2] == "alpha"
    text = html.read_text()
    assert "Removal game" in text and 'alt="Channel x band saliency' in text
    assert main(argv) == 2  # outputs exist now, no --overwrite


def test_explain_command_user_errors(saved_inputs, tmp_path, capsys):
    epochs, epo, pt, folder = saved_inputs
    h5 = str(tmp_path / "sal.h5")
    assert main(["explain", str(folder / "nope-epo.fif"), str(pt), "--out", h5]) == 2
    assert "nope-epo.fif does not exist" in capsys.readouterr().err
    # epochs whose channels do not match the model
    small = folder / "small-epo.fif"
    epochs.copy().pick(epochs.ch_names[:5]).save(small, overwrite=True)
    assert main(["explain", str(small), str(pt), "--out", h5]) == 2
    err = capsys.readouterr().err
    assert "failed on input of shape (2, 5, 256)" in err and "Traceback" not in err
    # a file that is not a saved model
    junk = folder / "junk.pt"
    junk.write_bytes(b"not a model")
    assert main(["explain", str(epo), str(junk), "--out", h5]) == 2
    assert "not a model file written by" in capsys.readouterr().err
    assert main(["explain", str(epo), str(pt)]) == 2
    assert "Nothing to write" in capsys.readouterr().err
    assert not (tmp_path / "sal.h5").exists()


def test_model_save_load_round_trip(saved_inputs, tmp_path):
    import torch

    from mne_freqmask.models import fit, load_model, save_model

    epochs, _, pt, _ = saved_inputs
    model = load_model(pt)
    x = torch.as_tensor(epochs.get_data()[:4], dtype=torch.float32)
    model2, _ = fit(epochs, "eegnet", max_epochs=2, random_state=0)
    with torch.no_grad():
        # same seed, same data: the same trained weights as the saved model
        torch.testing.assert_close(model(x), model2.eval()(x))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(pt, model)
    with pytest.raises(ValueError, match="init_args"):
        save_model(tmp_path / "m.pt", torch.nn.Linear(2, 2))
    assert not (tmp_path / "m.pt").exists()
