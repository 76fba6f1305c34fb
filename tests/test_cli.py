"""mne-freqmask demo, end to end (short configuration)."""

import re
import subprocess
import sys

import numpy as np
import pytest

from mne_freqmask.cli import main


def test_demo_writes_report(tmp_path, torch_threads, capsys):
    out = tmp_path / "report.html"
    assert main(["demo", "--out", str(out), "--quick", "--seed", "1"]) == 0
    said = capsys.readouterr()
    text = said.out + said.err
    # progress for each long step, then a summary of what was found
    for step in ("Training eegnet", "Explaining the", "Scoring", "FreqMask epochs"):
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


def test_explain_several_files(saved_inputs, tmp_path, capsys):
    """Several epochs files: one saliency file each in --out-dir, resumable."""
    import mne

    from mne_freqmask import read_saliency

    epochs, _, pt, _ = saved_inputs
    files = []
    for k in range(2):
        fname = tmp_path / f"run{k}-epo.fif"
        epochs[k * 4 : k * 4 + 4].save(fname, verbose=False)
        files.append(str(fname))
    out_dir = tmp_path / "sal"
    out_dir.mkdir()
    argv = ["explain", *files, str(pt), "--out-dir", str(out_dir)]
    argv += ["--method", "amplitude_gradients", "--bands", "canonical", "--quiet"]
    assert main(argv) == 0
    # (stdout also holds FreqMask's warning that 3 steps do not converge)
    printed = [w for w in capsys.readouterr().out.split() if w.endswith(".h5")]
    assert printed == [str(out_dir / f"run{k}-sal.h5") for k in range(2)]
    for k, fname in enumerate(files):
        sal = read_saliency(printed[k])
        assert len(sal) == 4 and sal.band_names[2] == "alpha"
        ref = mne.read_epochs(fname, verbose=False)
        np.testing.assert_array_equal(sal.events, ref.events)
    # several files need --out-dir; --report is for one file
    assert main(["explain", *files, str(pt), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "need --out-dir" in err
    assert main(argv + ["--report", str(tmp_path / "r.html")]) == 2
    assert "are for one epochs file" in capsys.readouterr().err


def test_explain_files_same_options_as_one_file(saved_inputs, tmp_path, capsys):
    """Many files take the options of one file through the same translation:
    --reference serves every file (the maps equal explain(reference=...)),
    and --n-steps against --param n_steps= is refused on both routes."""
    import mne

    from mne_freqmask import explain, read_saliency
    from mne_freqmask.models import load_model

    epochs, _, pt, _ = saved_inputs
    files = []
    for k in range(2):
        fname = tmp_path / f"run{k}-epo.fif"
        epochs[k * 4 : k * 4 + 4].save(fname, verbose=False)
        files.append(str(fname))
    ref_file = tmp_path / "ref-epo.fif"
    epochs[8:].save(ref_file, verbose=False)
    out_dir = tmp_path / "sal"
    out_dir.mkdir()
    argv = ["explain", *files, str(pt), "--out-dir", str(out_dir), "--quiet"]
    argv += ["--bands", "4", "--n-steps", "3", "--param", "perturbation=reference"]
    capsys.readouterr()
    assert main([*argv, "--reference", str(ref_file), "--n-jobs", "1"]) == 0
    # (stdout also holds FreqMask's warning that 3 steps do not converge)
    printed = [w for w in capsys.readouterr().out.split() if w.endswith(".h5")]
    assert printed == [str(out_dir / f"run{k}-sal.h5") for k in range(2)]
    model = load_model(pt)
    ref = mne.read_epochs(ref_file, verbose=False)
    kw = dict(bands=4, n_steps=3, perturbation="reference", random_state=0)
    for k, fname in enumerate(files):
        part = mne.read_epochs(fname, verbose=False)
        with_ref = explain(part, model, reference=ref, n_jobs=1, verbose=False, **kw)
        without = explain(part, model, n_jobs=1, verbose=False, **kw)
        got = read_saliency(printed[k]).get_data()
        # the same computation on the same thread: the same numbers; the
        # reference's fills do change the map (slightly: a barely trained model)
        np.testing.assert_array_equal(got, with_ref.get_data())
        assert np.abs(got - without.get_data()).max() > 1e-6
    missing = ["--reference", str(tmp_path / "nope-epo.fif")]
    assert main([*argv, "--overwrite", *missing]) == 2
    assert "nope-epo.fif does not exist" in capsys.readouterr().err
    for route in (argv, ["explain", files[0], str(pt), "--out", "x.h5"]):
        assert main([*route, "--n-steps", "5", "--param", "n_steps=6"]) == 2
        assert "give one" in capsys.readouterr().err


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


# ---------------------------------------------------------------------------
# explain for real models: the three model files, typed options, one-line errors


def _explain_argv(epo, model_file, out, *extra):
    return ["explain", str(epo), str(model_file), "--out", str(out), *extra]


_GRADIENTS = ["--method", "amplitude_gradients", "--bands", "mu:8-13,beta:13-30"]


def test_explain_torchscript(saved_inputs, tmp_path, capsys):
    """A TorchScript file (torch.jit.save) gives the map of the scripted model."""
    import warnings

    import torch

    from mne_freqmask import explain, read_saliency
    from mne_freqmask.models import InputScaler, fit

    epochs, epo, _, _ = saved_inputs
    n_chans = len(epochs.ch_names)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        InputScaler(1e6),
        torch.nn.Conv1d(n_chans, 4, 9),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool1d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    net, history = fit(epochs, net, max_epochs=30, lr=1e-2, random_state=0)
    assert history["val_accuracy"][-1] > 0.8  # it learned the planted alpha
    x = torch.as_tensor(epochs.get_data()[:2], dtype=torch.float32)
    ts_file = tmp_path / "net.ts.pt"
    with warnings.catch_warnings():  # torch 2.14 deprecates TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(net.eval(), x), ts_file)
    h5 = tmp_path / "sal.h5"
    argv = _explain_argv(epo, ts_file, h5, *_GRADIENTS, "--picks", "C3,C4")
    capsys.readouterr()
    assert main([*argv, "--quiet"]) == 0
    said = capsys.readouterr()
    assert said.out == f"Written {h5.resolve()}\n"
    sal = read_saliency(h5)
    assert sal.ch_names == ["C3", "C4"] and sal.band_names == ["mu", "beta"]
    expected = explain(
        epochs,
        net,
        method="amplitude_gradients",
        bands=dict(mu=(8, 13), beta=(13, 30)),
        picks=["C3", "C4"],
        verbose=False,
    )
    np.testing.assert_allclose(sal.get_data(), expected.get_data(), rtol=1e-4)
    assert np.ptp(sal.get_data()) > 0


def test_explain_state_dict_with_model_class(saved_inputs, tmp_path, capsys):
    """A plain state dict + --model-class/--model-kwargs/--input-scale."""
    import torch

    from mne_freqmask import explain, read_saliency
    from mne_freqmask.models import load_model

    epochs, epo, pt, _ = saved_inputs
    model = load_model(pt)  # Sequential(InputScaler(1e6), EEGNet)
    sd = tmp_path / "eegnet_state.pt"
    torch.save(model[1].state_dict(), sd)
    h5 = tmp_path / "sal.h5"
    kwargs = (
        f"n_chans={len(epochs.ch_names)},n_outputs=2,n_times={len(epochs.times)},"
        "final_layer_with_constraint=true"
    )
    argv = _explain_argv(epo, sd, h5, *_GRADIENTS, "--model-class", "EEGNet")
    argv += ["--model-kwargs", kwargs, "--input-scale", "1e6", "--n-jobs", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  Model +.*eegnet_state\.pt \(state dict: EEGNet\)", out, re.M)
    expected = explain(
        epochs,
        model,
        method="amplitude_gradients",
        bands=dict(mu=(8, 13), beta=(13, 30)),
        verbose=False,
    )
    np.testing.assert_allclose(
        read_saliency(h5).get_data(), expected.get_data(), rtol=1e-4
    )
    # without --input-scale the model sees volts and predicts one class: the
    # command stops before the fit (exit 2), naming the option (issue 30)
    argv = _explain_argv(epo, sd, tmp_path / "volts.h5", *_GRADIENTS)
    argv += ["--model-class", "EEGNet", "--model-kwargs", kwargs, "--quiet"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Stopped before the fit" in err and "--input-scale 1e6" in err
    assert not (tmp_path / "volts.h5").exists()


def test_explain_package_file_freqmask_steps(saved_inputs, tmp_path, capsys):
    """save_model file, FreqMask with method options: steps shown and saved."""
    from mne_freqmask import read_saliency

    epochs, epo, pt, _ = saved_inputs
    h5, html = tmp_path / "sal.h5", tmp_path / "rep.html"
    argv = _explain_argv(epo, pt, h5, "--report", str(html), "--bands", "4")
    argv += ["--n-steps", "12", "--param", "min_steps=2", "--param", "patience=2"]
    argv += ["--param", "tol=0.5", "--picks", "eeg", "--device", "cpu"]
    assert main(argv) == 0
    said = capsys.readouterr()
    sal = read_saliency(h5)
    steps, stop = sal.diagnostics["n_steps"], sal.diagnostics["stop"]
    assert len(steps) == len(epochs) and steps.max() <= 12
    assert sal.method_params["n_steps"] == 12 and sal.method_params["tol"] == 0.5
    counts = np.bincount(stop, minlength=3)
    line = (
        f"steps: median {np.median(steps):g} (max {steps.max()}); stopped: "
        f"converged {counts[0]}, cap {counts[1]}, first allowed step {counts[2]}"
    )
    assert repr(sal).endswith(f"; {line}>")
    assert re.search(rf"^  Fit +{re.escape(line)}$", said.out, re.M)
    assert f"<th>Fit</th><td>{line}</td>" in html.read_text()
    # progress counts epochs, not chunks
    n = len(epochs)
    assert f"FreqMask epochs : {n}/{n}" in said.err
    # and shows the step while the epochs of a chunk are being fitted
    assert "step 10 (max 12)" in said.err


@pytest.mark.parametrize(
    "extra, fix",
    [
        (["--bands", "mu:8-x"], "name:fmin-fmax pairs separated by commas"),
        (["--bands", "mu:13-8"], "must have fmin < fmax"),
        (["--param", "lr"], "write key=value"),
        (["--param", "lamda=0.1"], "Unknown parameter(s) ['lamda']"),
        (["--n-steps", "5", "--param", "n_steps=6"], "give one"),
        (["--n-jobs", "0"], "n_jobs must be a positive int"),
        (["--n-jobs", "two"], "invalid int value: 'two'"),
        (["--device", "gpu"], 'device must be "auto", "cpu"'),
        (["--picks", "Xyz"], "Xyz"),
        (["--model-class", "EEGNet"], "drop --model-class"),
        (["--input-scale", "1e6"], "drop --model-class, --model-kwargs and --input"),
        (["--model-kwargs", "n_chans=2"], "--model-kwargs needs --model-class"),
        (["--time-windows", "0.5"], "cannot read '0.5'; give LENGTH,STEP"),
        (["--time-windows", "a,b"], "in seconds (e.g. --time-windows 0.5,0.25"),
        (["--time-windows", "0.5,0.4"], "at most half the window (0.25 s)"),
        (["--time-windows", "0,0"], "cannot read '0,0'"),
        (
            ["--time-windows", "auto", "--method", "flextime"],
            "the methods that can are ['amplitude_gradients', 'dft_lrp', "
            "'freqmask', 'freqrise', 'integrated_gradients', 'lrp']",
        ),
    ],
)
def test_explain_user_errors_one_line(saved_inputs, tmp_path, capsys, extra, fix):
    _, epo, pt, _ = saved_inputs
    h5 = tmp_path / "sal.h5"
    try:
        code = main(_explain_argv(epo, pt, h5, *extra))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mne-freqmask: error: ") and err.count("\n") == 1, err
    assert fix in err
    assert not h5.exists()


def test_explain_model_file_errors(saved_inputs, tmp_path, capsys):
    import torch

    epochs, epo, pt, _ = saved_inputs
    h5 = tmp_path / "sal.h5"
    sd = tmp_path / "state.pt"
    torch.save({"w": torch.zeros(2)}, sd)
    cases = [
        (
            [],
            "holds a state dict (weights without the model's class); pass "
            "--model-class NAME --model-kwargs",
        ),
        (["--model-class", "EEGNett"], "did you mean EEGNet"),
        (
            ["--model-class", "EEGNet", "--model-kwargs", "n_chans=3"],
            "give its settings",
        ),
        (
            [
                "--model-class",
                "EEGNet",
                "--model-kwargs",
                "n_chans=19,n_outputs=2,n_times=256,final_layer_with_constraint=1",
            ],
            "the weights do not fit EEGNet(n_chans=19",
        ),
    ]
    for extra, fix in cases:
        assert main(_explain_argv(epo, sd, h5, *extra)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and fix in err, err
    whole = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(2, 2), whole)  # a pickled module: not unpickled
    assert main(_explain_argv(epo, whole, h5)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch.jit.save(torch.jit.script(model)" in err
    assert not h5.exists()


def test_parse_bands_and_values():
    from mne_freqmask._cli_load import (
        parse_bands,
        parse_model_kwargs,
        parse_pairs,
        parse_picks,
    )

    assert parse_bands("10") == 10 and parse_bands(" canonical ") == "canonical"
    assert parse_bands("mu:8-13,beta:13-30") == {
        "mu": (8.0, 13.0),
        "beta": (13.0, 30.0),
    }
    assert parse_bands("8-12.5, gamma:30-45") == {
        "8-12.5 Hz": (8.0, 12.5),
        "gamma": (30.0, 45.0),
    }
    for bad, match in [
        ("0", ">= 1"),
        ("mu", "cannot read 'mu'"),
        ("mu:8-13,mu:13-30", "given twice"),
        ("alpha:12-8", "fmin < fmax"),
        ("", "cannot read ''"),
    ]:
        with pytest.raises(ValueError, match=re.escape(match)):
            parse_bands(bad)
    assert parse_pairs(
        ["a=1", "b=0.5", "c=True", "d=none", "e=paper", "f=1e-3", "g="], "--param"
    ) == dict(a=1, b=0.5, c=True, d=None, e="paper", f=1e-3, g="")
    assert parse_model_kwargs("n_chans=64,n_outputs=2, n_times=481") == dict(
        n_chans=64, n_outputs=2, n_times=481
    )
    assert parse_model_kwargs('{"kernel": [3, 3]}') == {"kernel": [3, 3]}
    assert parse_picks("eeg") == "eeg" and parse_picks("C3,C4") == ["C3", "C4"]
    assert parse_picks("0,2") == [0, 2] and parse_picks(None) is None


def test_model_name_of_a_bare_braindecode_model():
    """braindecode's EEGNet is a Sequential: named as such, not by its last layer."""
    import torch

    from mne_freqmask._cli_report import model_name
    from mne_freqmask.models import InputScaler, make_model

    bare = make_model("eegnet", 4, 2, 256, 128.0, input_scale=None)
    assert model_name(bare) == "EEGNet"
    assert model_name(torch.nn.Sequential(InputScaler(1e6), bare)) == "EEGNet"


# ---------------------------------------------------------------------------
# explain --time-windows: time-resolved maps (the burst simulation of conftest)

#: 0.5 s windows every 0.25 s on the 2 s burst epochs: 9 windows
TW_ARGS = ["--time-windows", "0.5,0.25"]
_TFR = ["--method", "amplitude_gradients", "--bands", "canonical", "--n-jobs", "1"]


@pytest.fixture(scope="module")
def saved_burst(burst_simulated, tmp_path_factory):
    """16 held-out burst epochs (20 Hz on C3/C4 at 0.5-1.0 s) and their
    EEGNet, saved as the CLI reads them."""
    from mne_freqmask.models import save_model

    epochs, _, model, history = burst_simulated
    folder = tmp_path_factory.mktemp("cli_tfr")
    epo, pt = folder / "burst-epo.fif", folder / "burst.pt"
    epochs[history["val_idx"][:16]].save(epo, verbose=False)
    save_model(pt, model)
    return epochs[history["val_idx"][:16]], model, epo, pt


def _line(text, label):
    match = re.search(rf"^  {label} +(.*)$", text, re.M)
    assert match is not None, (label, text)
    return match.group(1)


def test_explain_time_windows(saved_burst, tmp_path, capsys):
    """A SpectralSaliencyTFR saved (the map of explain), a summary of its
    cells and windows, a report, and the checks over its cells."""
    import mne_freqmask as mfm
    from mne_freqmask._report import top_cells

    epochs, model, epo, pt = saved_burst
    h5, html = tmp_path / "s.h5", tmp_path / "r.html"
    argv = ["explain", str(epo), str(pt), *TW_ARGS, *_TFR]
    assert main(argv + ["--out", str(h5), "--report", str(html)]) == 0
    out = capsys.readouterr().out
    sal = mfm.read_saliency_tfr(h5)
    direct = mfm.explain(
        epochs,
        model,
        method="amplitude_gradients",
        bands="canonical",
        time_windows=(0.5, 0.25),
        verbose=False,
    )
    assert sal.shape == (16, 8, 5, 9) and sal.time_windows == (0.5, 0.25)
    # the CLI ran on one torch thread: float32 sums in another order
    scale = np.abs(direct.get_data()).max()
    np.testing.assert_allclose(
        sal.get_data(), direct.get_data(), rtol=1e-4, atol=1e-5 * scale
    )
    assert "what does the model rely on, and when?" in out
    assert _line(out, "Windows").startswith(
        "9 Hann windows of 0.5 s every 0.25 s, centred at 0.00 to 2.00 s (the "
        "bands on the 2 Hz bins of one window)"
    )
    assert _line(out, "Method").endswith(
        "(delta, theta, alpha, beta, gamma) x 9 windows"
    )
    # the top cells are those of the saved map, with their windows' times ...
    top = top_cells(sal.average(), n=3)
    expected = ", ".join(
        f"{c['channel']} {c['band']} at {c['edges'][0]:.2f}-{c['edges'][1]:.2f} s "
        f"{c['value']:.3g}"
        for c in top
    )
    assert _line(out, "Top cells") == f"{expected} (group map: channel, band, window)"
    # ... and the first is a planted one: C3 / C4, beta, in the burst
    assert top[0]["channel"] in ("C3", "C4") and top[0]["band"] == "beta"
    assert 0.5 <= top[0]["time"] <= 1.0
    means = sal.average().get_data().mean(axis=(0, 1))
    k = int(np.argmax(means))
    assert 0.5 <= sal.times[k] <= 1.0
    assert _line(out, "Best window").startswith(
        f"{sal.times[k]:.2f} s ({sal.window_edges[k][0]:.2f}-"
        f"{sal.window_edges[k][1]:.2f} s): mean saliency {means[k]:.3g} over "
        f"channels and bands, against {means.mean():.3g}"
    )
    # check_explanation over the channel x band x window cells, as a direct
    # call gives it (16 epochs: the accuracy's interval is too wide to pass)
    from mne_freqmask._cli_report import REPORT_CHECKS

    check = mfm.evaluation.check_explanation(
        epochs, model, sal, checks=REPORT_CHECKS, n_boot=500, random_state=0
    )
    for name, row in check.checks.iterrows():
        assert _line(out, f"Check {name}") == f"{row['verdict'].upper()}: {row['line']}"
    assert "16 epochs" in _line(out, "Check accuracy")
    assert check.checks.loc["cells", "verdict"] == "pass"
    assert "window" in _line(out, "Check cells")
    text = html.read_text()
    assert "check_explanation over the channel x band x window cells" in text
    for alt in (
        "Saliency over time and band",
        "Topomaps at the best window",
        "Channel x band saliency at the best window",
    ):
        pattern = rf'<img [^>]*alt="{re.escape(alt)}[^"]*"\s*src="data:image/\w+;base64'
        assert re.search(pattern, text) is not None, alt
    assert "Removal game" in text and "Cells: channel x band x window" in text
    assert "time_windows" in text  # the parameters
    assert not list(tmp_path.glob(".*part*"))
    # "auto" is the same windows on these 2 s epochs
    h5_auto = tmp_path / "auto.h5"
    argv_auto = ["explain", str(epo), str(pt), "--time-windows", "auto", *_TFR]
    capsys.readouterr()
    assert main(argv_auto + ["--out", str(h5_auto), "--quiet"]) == 0
    assert capsys.readouterr().out == f"Written {h5_auto.resolve()}\n"
    np.testing.assert_array_equal(
        mfm.read_saliency_tfr(h5_auto).get_data(), sal.get_data()
    )


def test_explain_time_windows_files_and_checkpoint(saved_burst, tmp_path, capsys):
    """--out-dir writes <name>-sal-tfr.h5; --checkpoint resumes a
    time-resolved run and refuses other windows with the fix."""
    import mne_freqmask as mfm

    epochs, _, _, pt = saved_burst
    files = []
    for k in range(2):
        fname = tmp_path / f"run{k}-epo.fif"
        epochs[8 * k : 8 * k + 8].save(fname, verbose=False)
        files.append(str(fname))
    out_dir = tmp_path / "sal"
    out_dir.mkdir()
    argv = ["explain", *files, str(pt), "--out-dir", str(out_dir), *TW_ARGS, *_TFR]
    assert main(argv + ["--quiet"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out_dir / f"run{k}-sal-tfr.h5") for k in range(2)]
    for name in printed:
        sal = mfm.read_saliency_tfr(name)
        assert sal.shape == (8, 8, 5, 9) and sal.time_windows == (0.5, 0.25)
    # one file, checkpointed: resumed from the full checkpoint, the same map
    one = ["explain", files[0], str(pt), *_TFR, "--out", str(tmp_path / "c.h5")]
    ckpt = ["--checkpoint", str(tmp_path / "run.h5"), "--quiet"]
    assert main(one + TW_ARGS + ckpt) == 0
    first = mfm.read_saliency_tfr(tmp_path / "c.h5")
    assert first == mfm.read_saliency_tfr(printed[0])
    assert main(one + TW_ARGS + ckpt + ["--overwrite"]) == 0
    assert mfm.read_saliency_tfr(tmp_path / "c.h5") == first
    capsys.readouterr()
    other = ["--time-windows", "1,0.5", "--overwrite"]
    assert main(one + other + ckpt) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "time_windows differ" in err
    assert "the checkpoint holds time_windows=(0.5, 0.25)" in err
    assert "repeat that run's arguments to resume it" in err
    assert mfm.read_saliency_tfr(tmp_path / "c.h5") == first  # left as it was
