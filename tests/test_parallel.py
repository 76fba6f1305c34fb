"""explain_files: many epochs files, one saliency file each, in parallel."""

import os

import mne
import numpy as np
import pytest
import torch

import mne_freqmask as mfm


@pytest.fixture(scope="module")
def files(simulated, tmp_path_factory):
    """One -epo.fif file per simulated subject (not preloaded when read)."""
    epochs, _, model, _ = simulated
    folder = tmp_path_factory.mktemp("epochs")
    fnames = []
    for subject in np.unique(epochs.metadata["subject"]):
        fname = folder / f"sub-{subject}-epo.fif"
        epochs[f"subject == {subject}"][:6].save(fname, verbose=False)
        fnames.append(fname)
    return fnames, model


KW = dict(method="freqmask", n_steps=20, threads=1)


def test_explain_files_serial_resume_and_errors(files, tmp_path):
    fnames, model = files
    state = {k: v.clone() for k, v in model.state_dict().items()}
    outs = mfm.explain_files(fnames, model, tmp_path, **KW)
    assert [o.name for o in outs] == [f"sub-{k}-sal.h5" for k in range(len(fnames))]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the files' thread count, for an exact match
    try:
        for fname, out in zip(fnames, outs, strict=True):
            sal = mfm.read_saliency(out)
            assert len(sal) == 6 and sal.method == "freqmask"
            epochs = mne.read_epochs(fname, preload=False, verbose=False)
            direct = mfm.explain(epochs, model, n_steps=20, verbose=False)
            np.testing.assert_array_equal(sal.get_data(), direct.get_data())
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    # the model is untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    # a second run skips the files already done (left as they were) ...
    mtimes = [os.stat(o).st_mtime_ns for o in outs]
    os.remove(outs[1])
    again = mfm.explain_files(fnames, model, tmp_path, **KW)
    assert again == outs
    assert os.stat(outs[0]).st_mtime_ns == mtimes[0]
    assert outs[1].is_file()  # ... and redoes the one missing
    # nothing half-written is left behind: the maps and their records
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        name for o in outs for name in (o.name, f"{o.name}.fingerprint.json")
    )
    with pytest.raises(FileNotFoundError, match="does not exist; create it"):
        mfm.explain_files(fnames, model, tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="No such epochs file"):
        mfm.explain_files([tmp_path / "x-epo.fif"], model, tmp_path)
    with pytest.raises(ValueError, match="would both be written to sub-0-sal.h5"):
        mfm.explain_files([fnames[0], fnames[0]], model, tmp_path)
    with pytest.raises(ValueError, match="suffix must end with .h5"):
        mfm.explain_files(fnames, model, tmp_path, suffix=".fif")
    # braindecode's constrained layers cannot be pickled for other processes
    with pytest.raises(ValueError, match="save it with mne_freqmask.models.save"):
        mfm.explain_files(fnames, model, tmp_path, n_jobs=2, overwrite=True)
    with pytest.raises(FileNotFoundError, match="No such model file"):
        mfm.explain_files(fnames, tmp_path / "model.pt", tmp_path)


def test_explain_files_dask_equals_serial(files, tmp_path):
    """Two Dask workers (processes) write the same files as a serial run."""
    distributed = pytest.importorskip("distributed")
    import joblib

    from mne_freqmask.models import save_model

    fnames, model = files
    # the workers load the model from its file (EEGNet cannot be pickled)
    model_file = tmp_path / "eegnet.pt"
    save_model(model_file, model)
    (tmp_path / "serial").mkdir()
    (tmp_path / "dask").mkdir()
    serial = mfm.explain_files(fnames, model, tmp_path / "serial", **KW)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with joblib.parallel_config(backend="dask"):
            par = mfm.explain_files(
                fnames, model_file, tmp_path / "dask", n_jobs=2, **KW
            )
        # both workers took part
        assert len(client.scheduler_info()["workers"]) == 2
    for a, b in zip(serial, par, strict=True):
        assert mfm.read_saliency(a) == mfm.read_saliency(b)
