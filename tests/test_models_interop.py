"""Models as braindecode users keep them: skorch nets, hub folders, params files.

One tiny EEGClassifier (12 epochs, 2 passes) fitted on Epochs is shared by the
module; its ``module_`` is the reference every other way in is compared with.
"""

import json
import re

import mne
import numpy as np
import pytest

from mne_freqmask.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

_GRAD = dict(method="amplitude_gradients", bands=dict(mu=(8, 13), beta=(13, 30)))
_GRAD_ARGV = ["--method", "amplitude_gradients", "--bands", "mu:8-13,beta:13-30"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, torch_threads):
    """A fitted EEGClassifier (EEGNet built from the epochs' chs_info / sfreq)."""
    from braindecode import EEGClassifier
    from braindecode.models import EEGNet

    from mne_freqmask.datasets.simulated import make_epochs

    epochs, _ = make_epochs(n_subjects=1, n_epochs_per_class=6, random_state=0)
    y = epochs.events[:, 2] - epochs.events[:, 2].min()
    torch.manual_seed(0)
    clf = EEGClassifier(
        EEGNet,
        module__final_layer_with_constraint=True,
        optimizer=torch.optim.Adam,
        optimizer__lr=1e-2,
        max_epochs=4,
        batch_size=6,
        train_split=None,
        verbose=0,
    )
    clf.fit(epochs, y=y)
    assert len(np.unique(clf.predict(epochs))) == 2, "it predicts one class"
    folder = tmp_path_factory.mktemp("interop")
    epo = folder / "sim-epo.fif"
    epochs.save(epo)
    return epochs, clf, epo, folder


def _outputs(model, epochs, scale=1e6):
    x = torch.as_tensor(epochs.get_data() * scale, dtype=torch.float32)
    with torch.no_grad():
        return model.eval()(x)


def _write_hub_folder(net, folder, weights):
    """braindecode 1.8.1's ``_save_pretrained`` layout, written without the hub.

    ``EEGModuleMixin._save_pretrained`` (braindecode/models/base.py) writes
    ``config.json`` (``build_model_config`` + ``braindecode_version``) and
    ``pytorch_model.bin`` (``torch.save(state_dict)``); huggingface_hub's
    mixin adds ``model.safetensors`` (``safetensors.torch.save_model``) and a
    model card whose tags name the class.
    """
    import braindecode
    from safetensors.torch import save_model as save_safetensors

    folder.mkdir()
    config = dict(net.get_config(), braindecode_version=braindecode.__version__)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    if "bin" in weights:
        torch.save(net.state_dict(), folder / "pytorch_model.bin")
    if "safetensors" in weights:
        save_safetensors(net, str(folder / "model.safetensors"))
    card = "---\nlibrary_name: braindecode\ntags:\n- braindecode\n"
    card += f"- {type(net).__name__}\n---\n"
    (folder / "README.md").write_text(card)
    return folder


def test_skorch_net_explained_as_its_module(classifier):
    """braindecode reads Epochs in microvolts: the net is its module_ on uV."""
    from mne_freqmask import evaluate_removal, explain
    from mne_freqmask.models import InputScaler, as_model

    epochs, clf, _, _ = classifier
    model = as_model(clf)
    assert model[1] is clf.module_ and model[0].factor == 1e6
    # the function net.predict(epochs) applies, on the epochs in volts
    np.testing.assert_array_equal(
        _outputs(model, epochs, scale=1.0).argmax(1).numpy(), clf.predict(epochs)
    )
    sal = explain(epochs, clf, verbose=False, **_GRAD)
    same = torch.nn.Sequential(InputScaler(1e6), clf.module_)
    expected = explain(epochs, same, verbose=False, **_GRAD)
    np.testing.assert_array_equal(sal.get_data(), expected.get_data())
    assert np.ptp(sal.get_data()) > 0
    scores = evaluate_removal(epochs, clf, sal, verbose=False)
    assert scores.equals(evaluate_removal(epochs, same, sal, verbose=False))


def test_skorch_net_refused_unfitted_or_regressor(classifier):
    from braindecode import EEGClassifier, EEGRegressor
    from braindecode.models import EEGNet

    from mne_freqmask import explain

    epochs = classifier[0]
    with pytest.raises(ValueError, match=r"not fitted.*model\.fit\(epochs, y\)"):
        explain(epochs, EEGClassifier(EEGNet), verbose=False)
    with pytest.raises(ValueError, match="regression net.*explains classifiers"):
        explain(epochs, EEGRegressor(EEGNet), verbose=False)
    with pytest.raises(TypeError, match="fitted skorch net"):
        explain(epochs, 3, verbose=False)
    with pytest.raises(TypeError, match="'nope.pt' is no existing file"):
        explain(epochs, "nope.pt", verbose=False)


@pytest.mark.parametrize(
    "weights", ["model.safetensors", "pytorch_model.bin", "safetensors+bin"]
)
def test_hub_folder_python_and_cli(classifier, tmp_path, weights, capsys):
    from mne_freqmask import explain, read_saliency
    from mne_freqmask.models import load_any_model

    epochs, clf, epo, _ = classifier
    folder = _write_hub_folder(clf.module_, tmp_path / "my-model", weights)
    net, kind = load_any_model(folder)
    assert kind == "hub folder" and type(net).__name__ == "EEGNet"
    assert net.chs_info[3]["ch_name"] == epochs.ch_names[3] and net.sfreq == 128
    torch.testing.assert_close(_outputs(net, epochs), _outputs(clf.module_, epochs))
    # one of its files names the folder too
    name = (
        "pytorch_model.bin" if weights == "pytorch_model.bin" else "model.safetensors"
    )
    net2, _ = load_any_model(folder / name)
    torch.testing.assert_close(_outputs(net2, epochs), _outputs(net, epochs))
    expected = explain(epochs, clf, verbose=False, **_GRAD)
    h5 = tmp_path / "sal.h5"
    argv = ["explain", str(epo), str(folder), "--out", str(h5), *_GRAD_ARGV]
    # trained on microvolts: on volts it predicts one class, and the command
    # stops before the fit, naming the fix
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Stopped before the fit. " in err and "pass --input-scale 1e6" in err
    assert main([*argv, "--input-scale", "1e6"]) == 0
    assert "(hub folder: EEGNet)" in capsys.readouterr().out
    np.testing.assert_allclose(
        read_saliency(h5).get_data(), expected.get_data(), rtol=1e-5
    )
    if weights == "model.safetensors":  # a path is a model in Python too
        with pytest.warns(RuntimeWarning, match="predicts class"):  # volts
            direct = explain(epochs, folder, verbose=False, **_GRAD)
        unscaled = explain(epochs, clf.module_, verbose=False, **_GRAD)
        np.testing.assert_allclose(direct.get_data(), unscaled.get_data(), rtol=1e-5)


def test_hub_folder_class_and_not_a_model_folder(classifier, tmp_path, capsys):
    from mne_freqmask.models import load_any_model

    epochs, clf, epo, _ = classifier
    folder = _write_hub_folder(clf.module_, tmp_path / "m", "model.safetensors")
    (folder / "README.md").unlink()  # no model card: the class must be given
    with pytest.raises(
        ValueError, match=r"does not name the model's class.*--model-class"
    ):
        load_any_model(folder)
    net, _ = load_any_model(folder, model_class_name="EEGNet")
    torch.testing.assert_close(_outputs(net, epochs), _outputs(clf.module_, epochs))
    with pytest.raises(ValueError, match="holds its settings in config.json"):
        load_any_model(folder, model_class_name="EEGNet", model_kwargs=dict(F1=4))
    junk = tmp_path / "results"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a model")
    fix = "not a model folder: a model folder holds config.json"
    with pytest.raises(ValueError, match=fix):
        load_any_model(junk)
    h5 = tmp_path / "sal.h5"
    assert main(["explain", str(epo), str(junk), "--out", str(h5)]) == 2
    err = capsys.readouterr().err
    assert fix in err and "does not exist" not in err and "notes.txt" in err
    assert not h5.exists()


@pytest.mark.parametrize("use_safetensors", [False, True])
def test_skorch_save_params_loaded_with_class(classifier, tmp_path, use_safetensors):
    from mne_freqmask.models import load_any_model

    epochs, clf, _, _ = classifier
    fname = tmp_path / "params.pt"
    clf.save_params(f_params=str(fname), use_safetensors=use_safetensors)
    kwargs = dict(
        n_chans=len(epochs.ch_names),
        n_outputs=2,
        n_times=len(epochs.times),
        final_layer_with_constraint=True,
    )
    net, kind = load_any_model(fname, model_class_name="EEGNet", model_kwargs=kwargs)
    assert kind == "state dict"
    torch.testing.assert_close(_outputs(net, epochs), _outputs(clf.module_, epochs))
    with pytest.raises(ValueError, match="weights without the model's class"):
        load_any_model(fname)


def test_model_channels_and_rate_checked(classifier):
    from mne_freqmask import explain

    epochs, clf, _, _ = classifier
    shuffled = epochs.copy().reorder_channels(epochs.ch_names[::-1])
    with pytest.raises(ValueError, match=r"another order.*epochs\.reorder_channels"):
        explain(shuffled, clf, verbose=False, **_GRAD)
    # the same samples labelled with another rate: same shape, other meaning
    info = mne.create_info(epochs.ch_names, 100.0, "eeg")
    info.set_montage(epochs.get_montage())
    relabelled = mne.EpochsArray(epochs.get_data(), info, epochs.events, verbose=False)
    with pytest.raises(ValueError, match=r"sampled at 100.0 Hz.*128.0 Hz.*resample"):
        explain(relabelled, clf, verbose=False, **_GRAD)


def _one_class_model(n_chans, scaled):
    """A model that predicts class 0 whatever the input."""
    from mne_freqmask.models import InputScaler

    head = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(), torch.nn.Linear(n_chans, 2)
    )
    with torch.no_grad():
        head[-1].weight.zero_()
        head[-1].bias.copy_(torch.tensor([3.0, 0.0]))
    return torch.nn.Sequential(InputScaler(1e6), head) if scaled else head


@pytest.mark.parametrize("scaled", [False, True])
def test_units_hint_only_without_input_scaler(classifier, scaled):
    from mne_freqmask import explain

    epochs = classifier[0]
    model = _one_class_model(len(epochs.ch_names), scaled)
    with pytest.warns(RuntimeWarning) as record:
        explain(epochs, model, verbose=False, **_GRAD)
    said = [str(w.message) for w in record]
    assert any(m.startswith("The model predicts class 0") for m in said), said
    hinted = [m for m in said if "InputScaler(1e6)" in m]
    assert bool(hinted) is not scaled, said


def test_cli_stops_on_one_class_model(classifier, tmp_path, capsys):
    epochs, _, epo, _ = classifier
    model = _one_class_model(len(epochs.ch_names), scaled=False).eval()
    ts = tmp_path / "const.ts.pt"
    x = torch.as_tensor(epochs.get_data()[:2], dtype=torch.float32)
    with pytest.warns(FutureWarning):  # torch 2.14 deprecates TorchScript
        torch.jit.save(torch.jit.trace(model, x), ts)
    h5 = tmp_path / "sal.h5"
    assert main(["explain", str(epo), str(ts), "--out", str(h5)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "predicts class 0 for all 12 epochs" in err
    assert "Stopped before the fit. " in err and "pass --input-scale 1e6" in err
    assert not h5.exists()


def test_save_model_checks_the_round_trip(classifier, tmp_path):
    from braindecode.models import EEGNet

    from mne_freqmask.models import load_model, save_model

    epochs = classifier[0]
    kwargs = dict(n_chans=len(epochs.ch_names), n_outputs=2, n_times=len(epochs.times))
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match="final_layer_with_constraint"):
        net = EEGNet(**kwargs)  # braindecode's default: no max-norm head
    fname = tmp_path / "mine.pt"
    init_args = dict(name="eegnet", kwargs=kwargs, input_scale=None)
    fix = re.escape(
        "final_layer_with_constraint=False in the model, True in make_model's"
    )
    with pytest.raises(ValueError, match=f"not written.*{fix}"):
        save_model(fname, net, init_args=init_args)
    assert not fname.exists() and not list(tmp_path.iterdir())
    kwargs["final_layer_with_constraint"] = False
    with pytest.warns(DeprecationWarning, match="final_layer_with_constraint"):
        save_model(fname, net, init_args=init_args)
        loaded = load_model(fname)
    torch.testing.assert_close(_outputs(loaded, epochs), _outputs(net, epochs))


def test_cli_reference_and_explainer(classifier, tmp_path, capsys):
    from mne_freqmask import FreqMaskExplainer, explain, read_saliency
    from mne_freqmask.datasets.simulated import make_epochs

    epochs, clf, epo, _ = classifier
    ts = _write_hub_folder(clf.module_, tmp_path / "hub", "model.safetensors")
    # --reference: the donors come from that file
    ref, _ = make_epochs(n_subjects=1, n_epochs_per_class=4, random_state=5)
    ref_file = tmp_path / "ref-epo.fif"
    ref.save(ref_file)
    h5 = tmp_path / "ref.h5"
    argv = ["explain", str(epo), str(ts), "--out", str(h5), "--bands", "4"]
    argv += ["--input-scale", "1e6"]
    argv += ["--n-steps", "3", "--param", "perturbation=reference", "--quiet"]
    assert main([*argv, "--reference", str(ref_file)]) == 0
    kw = dict(bands=4, n_steps=3, perturbation="reference", random_state=0)
    with_ref = explain(epochs, clf, reference=ref, verbose=False, **kw).get_data()
    without = explain(epochs, clf, verbose=False, **kw).get_data()
    np.testing.assert_allclose(read_saliency(h5).get_data(), with_ref, rtol=1e-4)
    assert not np.allclose(with_ref, without, rtol=1e-2)
    # --explainer: an amortised explainer's file; its bands and picks by default
    explainer = FreqMaskExplainer().fit(
        epochs, clf, bands=3, n_epochs=2, random_state=0, verbose=False
    )
    exp_file = tmp_path / "explainer.pt"
    explainer.save(exp_file)
    h5 = tmp_path / "amortised.h5"
    argv = ["explain", str(epo), str(ts), "--out", str(h5), "--quiet", "--overwrite"]
    argv += ["--method", "freqmask_amortised", "--input-scale", "1e6"]
    assert main([*argv, "--explainer", str(exp_file)]) == 0
    np.testing.assert_allclose(
        read_saliency(h5).get_data(), explainer.explain(epochs).get_data(), rtol=1e-5
    )
    capsys.readouterr()
    assert main(argv) == 2
    assert "needs --explainer FILE" in capsys.readouterr().err
    argv = ["explain", str(epo), str(ts), "--out", str(h5), "--overwrite"]
    assert main([*argv, "--explainer", str(exp_file)]) == 2
    assert "--explainer is for --method freqmask_amortised" in capsys.readouterr().err
