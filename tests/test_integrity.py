"""No stale map, no lost batch: the fingerprint of a run (shared by
``explain(checkpoint=)`` and ``explain_files``), reruns after a change, and
failure isolation, on real files in a temporary folder."""

import json
import os
from pathlib import Path

import mne
import numpy as np
import pytest
import torch

import mne_freqmask as mfm
from mne_freqmask import _checkpoint, _fingerprint
from mne_freqmask.models import make_model, save_model

CH_NAMES = ["Fz", "C3", "Cz", "C4", "Pz", "Oz"]
SFREQ, N_TIMES, N_EPOCHS = 64.0, 64, 6
FAST = dict(method="amplitude_gradients", bands=4, threads=1)


def _epochs(seed, scale=1e-5):
    rng = np.random.default_rng(seed)
    data = scale * rng.standard_normal((N_EPOCHS, len(CH_NAMES), N_TIMES))
    events = np.c_[np.arange(N_EPOCHS) * N_TIMES, np.zeros(N_EPOCHS, int)]
    events = np.c_[events, np.resize([1, 2], N_EPOCHS)]
    info = mne.create_info(CH_NAMES, SFREQ, "eeg")
    return mne.EpochsArray(
        data, info, events=events, event_id=dict(a=1, b=2), verbose=False
    )


class Tiny(torch.nn.Module):
    """A conv over channels and a linear read-out (picklable, unlike EEGNet)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(len(CH_NAMES), 3, 9)
        self.lin = torch.nn.Linear(3 * (N_TIMES - 8), 2)

    def forward(self, x):
        return self.lin(torch.tanh(self.conv(x * 1e5)).flatten(1))


def _model(seed):
    torch.manual_seed(seed)
    return make_model("eegnet", len(CH_NAMES), 2, N_TIMES, SFREQ).eval()


@pytest.fixture()
def files(tmp_path):
    folder = tmp_path / "epochs"
    folder.mkdir()
    fnames = []
    for k in range(3):
        fname = folder / f"sub-{k}-epo.fif"
        _epochs(k).save(fname, verbose=False)
        fnames.append(fname)
    out = tmp_path / "out"
    out.mkdir()
    return fnames, out


def _direct(fname, model, **kw):
    """explain() on the file, on one thread as explain_files(threads=1)."""
    epochs = mne.read_epochs(fname, preload=False, verbose=False)
    kw = {k: v for k, v in kw.items() if k != "threads"}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return mfm.explain(epochs, model, verbose=False, **kw).get_data()
    finally:
        torch.set_num_threads(before)


def _mtimes(outs):
    return [os.stat(o).st_mtime_ns for o in outs]


def test_rerun_redoes_or_refuses_what_changed(files, torch_threads):
    """Model, method, a method parameter, the input file's content: each
    change is named and refused without overwrite, redone with it; an
    unchanged rerun (or a touched file) is skipped."""
    fnames, out_dir = files
    fnames = fnames[:2]
    model_a, model_b = _model(0), _model(1)
    outs = mfm.explain_files(fnames, model_a, out_dir, **FAST)
    assert outs.failures == []
    for fname, out in zip(fnames, outs, strict=True):
        np.testing.assert_array_equal(
            mfm.read_saliency(out).get_data(), _direct(fname, model_a, **FAST)
        )
    # unchanged (defaults given explicitly, a touched input): skipped
    before = _mtimes(outs)
    os.utime(fnames[0])
    again = mfm.explain_files(fnames, model_a, out_dir, random_state=None, **FAST)
    assert again == outs and _mtimes(outs) == before
    # another model: refused with what changed and the fix, nothing touched
    with pytest.raises(ValueError, match=r"the model \(its weights.*overwrite=True"):
        mfm.explain_files(fnames, model_b, out_dir, **FAST)
    assert _mtimes(outs) == before
    mfm.explain_files(fnames, model_b, out_dir, overwrite=True, **FAST)
    for fname, out in zip(fnames, outs, strict=True):
        np.testing.assert_array_equal(
            mfm.read_saliency(out).get_data(), _direct(fname, model_b, **FAST)
        )
    # another method, then another parameter of that method
    ig = dict(FAST, method="integrated_gradients", n_steps=4)
    with pytest.raises(
        ValueError, match=r"the method \(amplitude_gradients -> integrated_gradients"
    ):
        mfm.explain_files(fnames, model_b, out_dir, **ig)
    mfm.explain_files(fnames, model_b, out_dir, overwrite=True, **ig)
    assert mfm.read_saliency(outs[0]).method == "integrated_gradients"
    with pytest.raises(ValueError, match=r"parameter n_steps \(4 -> 8\) changed"):
        mfm.explain_files(fnames, model_b, out_dir, **dict(ig, n_steps=8))
    mfm.explain_files(fnames, model_b, out_dir, overwrite=True, **dict(ig, n_steps=8))
    np.testing.assert_array_equal(
        mfm.read_saliency(outs[1]).get_data(),
        _direct(fnames[1], model_b, **dict(ig, n_steps=8)),
    )
    # the epochs file replaced by new content under the same name
    ig8 = dict(ig, n_steps=8)
    _epochs(7).save(fnames[1], overwrite=True, verbose=False)
    before = _mtimes(outs)
    with pytest.raises(ValueError, match="sub-1-sal.h5 exists but .*the input file"):
        mfm.explain_files(fnames, model_b, out_dir, **ig8)
    assert _mtimes(outs) == before
    mfm.explain_files(fnames, model_b, out_dir, overwrite=True, **ig8)
    assert _mtimes(outs)[0] == before[0]  # only the changed file was redone
    np.testing.assert_array_equal(
        mfm.read_saliency(outs[1]).get_data(), _direct(fnames[1], model_b, **ig8)
    )
    # a map without its record (an older version's) is not taken as done
    os.remove(f"{outs[0]}.fingerprint.json")
    with pytest.raises(ValueError, match="has no fingerprint record"):
        mfm.explain_files(fnames, model_b, out_dir, **ig8)
    # a map edited after its record was written: not done either
    mfm.explain_files(fnames, model_b, out_dir, overwrite=True, **ig8)
    mfm.read_saliency(outs[1]).save(outs[0], overwrite=True)
    with pytest.raises(ValueError, match="not the map its fingerprint record"):
        mfm.explain_files(fnames, model_b, out_dir, **ig8)
    # the record names the input and the run
    rec = json.loads(Path(f"{outs[1]}.fingerprint.json").read_text())
    assert rec["input"]["fname"] == str(fnames[1])
    assert rec["input"]["size"] == os.stat(fnames[1]).st_size
    assert rec["fingerprint"]["method"] == "integrated_gradients"


def test_on_error_continue_and_raise(files, tmp_path, capsys, torch_threads):
    """One corrupt epochs file among three."""
    fnames, out_dir = files
    model_file = tmp_path / "eegnet.pt"
    save_model(model_file, _model(0))
    fnames[1].write_bytes(b"\x00" * 5000)  # not a FIF file any more
    res = mfm.explain_files(fnames, _model(0), out_dir, on_error="continue", **FAST)
    assert [o.name for o in res] == ["sub-0-sal.h5", "sub-2-sal.h5"]
    assert len(res.failures) == 1
    fail = res.failures[0]
    assert fail.fname == fnames[1] and fail.out == out_dir / "sub-1-sal.h5"
    assert not fail.out.exists() and fail.error.split(":")[0].endswith("Error")
    assert "cannot be read as MNE epochs" in fail.error
    for fname, out in zip([fnames[0], fnames[2]], res, strict=True):
        np.testing.assert_array_equal(
            mfm.read_saliency(out).get_data(), _direct(fname, _model(0), **FAST)
        )
    tsv = (out_dir / "explain_files_failures.tsv").read_text().splitlines()
    assert tsv[0] == "fname\tout\terror" and len(tsv) == 2
    assert tsv[1].startswith(f"{fnames[1]}\t")
    # "raise" (the default) names the file; what was written before is whole
    other = out_dir.parent / "raise"
    other.mkdir()
    with pytest.raises(Exception, match=f"^{fnames[1]}: "):
        mfm.explain_files(fnames, _model(0), other, **FAST)
    written = sorted(p.name for p in other.iterdir())
    assert written == ["sub-0-sal.h5", "sub-0-sal.h5.fingerprint.json"]
    assert mfm.read_saliency(other / "sub-0-sal.h5") == mfm.read_saliency(res[0])
    # the file repaired, a rerun explains it and drops the failure report
    _epochs(1).save(fnames[1], overwrite=True, verbose=False)
    res = mfm.explain_files(fnames, _model(0), out_dir, on_error="continue", **FAST)
    assert len(res) == 3 and res.failures == []
    assert not (out_dir / "explain_files_failures.tsv").exists()
    # the command line: --on-error continue lists the failure, exit status 1
    from mne_freqmask import cli

    fnames[2].write_bytes(b"\x00" * 5000)
    cli_dir = out_dir.parent / "cli"
    cli_dir.mkdir()
    argv = ["explain", *map(str, fnames), str(model_file), "--out-dir", str(cli_dir)]
    argv += ["--method", "amplitude_gradients", "--bands", "4", "--quiet"]
    capsys.readouterr()
    assert cli.main(argv + ["--on-error", "continue"]) == 1
    captured = capsys.readouterr()
    assert captured.out.split() == [str(cli_dir / f"sub-{k}-sal.h5") for k in (0, 1)]
    assert f"mne-freqmask: failed: {fnames[2]}: " in captured.err
    assert cli.main(argv) == 2  # --on-error raise: the error names the file
    assert str(fnames[2]) in capsys.readouterr().err
    with pytest.raises(ValueError, match="on_error"):
        mfm.explain_files(fnames, _model(0), out_dir, on_error="ignore", **FAST)


def test_one_fingerprint_for_checkpoints_and_files(files, tmp_path, monkeypatch):
    """The checkpoint and explain_files build their fingerprint with the same
    function: patching its model hash changes both, and the shared entries
    agree for the same run."""
    import h5io

    assert _checkpoint._model_sha is _fingerprint.model_sha
    fnames, out_dir = files
    model = _model(0)
    # FreqMask: its method_params are not in alphabetical order
    kw = dict(method="freqmask", bands=4, n_steps=3, min_steps=3, random_state=0)
    epochs = mne.read_epochs(fnames[0], preload=False, verbose=False)
    for tag in ("real", "patched"):
        if tag == "patched":
            monkeypatch.setattr(_fingerprint, "model_sha", lambda m: "patched")
        ckpt = tmp_path / f"{tag}.h5"
        by_ckpt = mfm.explain(epochs, model, checkpoint=ckpt, verbose=False, **kw)
        state = h5io.read_hdf5(str(ckpt), title="mnefreqmask_checkpoint")
        fp_ckpt = json.loads(state["fingerprint"])
        folder = out_dir / tag
        folder.mkdir()
        (out,) = mfm.explain_files(fnames[:1], model, folder, threads=1, **kw)
        fp_file = json.loads(Path(f"{out}.fingerprint.json").read_text())["fingerprint"]
        for key in ("model", "method", "bands", "random_state", "reference"):
            assert fp_ckpt[key] == fp_file[key], key
        assert (fp_ckpt["model"] == "patched") == (tag == "patched")
        # the checkpointed map equals the uninterrupted one, method_params too
        direct = mfm.explain(epochs, model, verbose=False, **kw)
        np.testing.assert_array_equal(by_ckpt.get_data(), direct.get_data())
        assert list(by_ckpt.method_params.items()) == list(direct.method_params.items())
    # a checkpoint of an earlier version (a weaker fingerprint) is refused
    state = h5io.read_hdf5(str(ckpt), title="mnefreqmask_checkpoint")
    state["version"] = 1
    h5io.write_hdf5(str(ckpt), state, title="mnefreqmask_checkpoint", overwrite=True)
    with pytest.raises(ValueError, match="earlier version of mne_freqmask.*delete"):
        mfm.explain(epochs, model, checkpoint=ckpt, verbose=False, **kw)
    # the model's structure is part of its hash: an input scale is not a weight
    scaled = torch.nn.Sequential(mfm.models.InputScaler(1e6), model)
    unscaled = torch.nn.Sequential(mfm.models.InputScaler(1.0), model)
    monkeypatch.undo()
    assert _fingerprint.model_sha(scaled) != _fingerprint.model_sha(unscaled)


def test_parallel_model_file_and_reference(files, tmp_path, torch_threads):
    """n_jobs=2: the reference goes to the workers once, as a file; the maps
    equal a serial run with everything in memory, and a run given the
    reference's file. The CLI's many-file route at --jobs 2 with a state
    dict file of EEGNet (which cannot be pickled: the workers load it)."""
    from mne_freqmask import cli

    fnames, out_dir = files
    torch.manual_seed(0)
    tiny = Tiny().eval()
    reference = mne.concatenate_epochs(
        [_epochs(10 + k, scale=5e-5) for k in range(2)], verbose=False
    )
    reference.metadata = __import__("pandas").DataFrame(
        dict(subject=np.repeat([0, 1], N_EPOCHS))
    )
    kw = dict(bands=4, n_steps=5, min_steps=5, lr=0.1, random_state=0, threads=1)
    serial = mfm.explain_files(fnames, tiny, out_dir, reference=reference, **kw)
    par_dir = tmp_path / "par"
    par_dir.mkdir()
    par = mfm.explain_files(fnames, tiny, par_dir, reference=reference, n_jobs=2, **kw)
    for a, b in zip(serial, par, strict=True):
        assert mfm.read_saliency(a) == mfm.read_saliency(b)
    # the reference matters (its scale and subject centres): without it the
    # map differs
    with_ref = mfm.read_saliency(serial[0]).get_data()
    assert np.ptp(with_ref) > 0.1
    assert np.abs(_direct(fnames[0], tiny, **kw) - with_ref).max() > 0.1
    # the temporary reference file is gone; the records agree on the run
    assert not any(p.name.startswith(".") for p in par_dir.iterdir())
    rec_a = json.loads(Path(f"{serial[0]}.fingerprint.json").read_text())
    rec_b = json.loads(Path(f"{par[0]}.fingerprint.json").read_text())
    assert rec_a["fingerprint"] == rec_b["fingerprint"]
    # a reference file, read by each worker: the same maps
    ref_file = tmp_path / "ref-epo.fif"
    reference.save(ref_file, fmt="double", verbose=False)
    file_dir = tmp_path / "reffile"
    file_dir.mkdir()
    by_file = mfm.explain_files(fnames, tiny, file_dir, reference=ref_file, **kw)
    assert mfm.read_saliency(by_file[0]) == mfm.read_saliency(serial[0])
    # the CLI at --jobs 2 with a state dict + --model-class
    model = _model(0)
    state_file = tmp_path / "state.pt"
    torch.save(model[1].state_dict(), state_file)  # the EEGNet behind the scaler
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()
    argv = ["explain", *map(str, fnames), str(state_file), "--out-dir", str(cli_dir)]
    argv += ["--model-class", "EEGNet", "--input-scale", "1e6", "--quiet"]
    argv += ["--model-kwargs", f"n_chans=6,n_outputs=2,n_times={N_TIMES},"]
    argv[-1] += "final_layer_with_constraint=true"
    argv += ["--method", "amplitude_gradients", "--bands", "4", "--jobs", "2"]
    assert cli.main(argv) == 0
    for fname in fnames:
        name = fname.name.replace("-epo.fif", "-sal.h5")
        got = mfm.read_saliency(cli_dir / name).get_data()
        np.testing.assert_array_equal(got, _direct(fname, model, **FAST))
    # the Python route with a file of save_model at n_jobs=2: the same maps
    model_file = tmp_path / "eegnet.pt"
    save_model(model_file, model)
    api_dir = tmp_path / "api"
    api_dir.mkdir()
    fast = dict(FAST, n_jobs=2)
    for out in mfm.explain_files(fnames, model_file, api_dir, **fast):
        cli_out = cli_dir / out.name
        assert mfm.read_saliency(out) == mfm.read_saliency(cli_out)
