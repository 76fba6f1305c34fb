"""explain_bids: a BIDS folder of epochs explained into BIDS derivatives."""

import json

import numpy as np
import pytest

from mne_freqmask.cli import main

mne_bids = pytest.importorskip("mne_bids")

TASK = "mi"
SUBJECTS = ["01", "02"]
EXPLAIN_KW = dict(method="amplitude_gradients", bands="canonical")


@pytest.fixture(scope="module")
def bids_inputs(tmp_path_factory, torch_threads):
    """A BIDS root whose mne-bids-pipeline derivatives hold one cleaned epochs
    file per subject (``sub-XX/eeg/sub-XX_task-mi_proc-clean_epo.fif``, the
    pipeline's names), and a small seeded EEGNet saved to a file (untrained:
    these tests are about files and names; the maps are compared with
    explain's own)."""
    from mne_freqmask.datasets.simulated import make_epochs
    from mne_freqmask.models import make_model, save_model

    folder = tmp_path_factory.mktemp("bids")
    bids_root = folder / "ds"
    bids_root.mkdir()
    mne_bids.make_dataset_description(
        path=str(bids_root), name="test", dataset_type="raw", verbose=False
    )
    pipeline = bids_root / "derivatives" / "mne-bids-pipeline"
    pipeline.mkdir(parents=True)
    mne_bids.make_dataset_description(
        path=str(pipeline),
        name="mne-bids-pipeline",
        dataset_type="derivative",
        generated_by=[dict(Name="mne-bids-pipeline")],
        verbose=False,
    )
    epochs, _ = make_epochs(n_subjects=2, n_epochs_per_class=6, random_state=3)
    torch_threads.manual_seed(0)
    model = make_model(
        "eegnet", len(epochs.ch_names), 2, len(epochs.times), epochs.info["sfreq"]
    ).eval()
    per_subject = {}
    for k, sub in enumerate(SUBJECTS):
        path = mne_bids.BIDSPath(
            root=pipeline,
            subject=sub,
            task=TASK,
            processing="clean",
            suffix="epo",
            extension=".fif",
            datatype="eeg",
            check=False,
        )
        path.mkdir()
        sub_epochs = epochs[k * 6 : k * 6 + 6]
        sub_epochs.save(path.fpath, verbose=False)
        per_subject[sub] = sub_epochs
    # an epochs file of another processing: not matched by processing="clean"
    other = mne_bids.BIDSPath(
        root=pipeline,
        subject="01",
        task=TASK,
        processing="filt",
        suffix="epo",
        extension=".fif",
        datatype="eeg",
        check=False,
    )
    epochs[:2].save(other.fpath, verbose=False)
    pt = folder / "eegnet.pt"
    save_model(pt, model)
    return bids_root, pipeline, model, pt, per_subject


def _expected(out_root, sub, ext, suffix="saliency"):
    name = f"sub-{sub}_task-{TASK}_proc-clean_desc-amplitudegradients_{suffix}{ext}"
    return out_root / f"sub-{sub}" / "eeg" / name


def test_explain_bids_writes_derivatives(bids_inputs):
    import mne_freqmask as mfm

    bids_root, pipeline, model, _, per_subject = bids_inputs
    out_root = bids_root / "derivatives" / "mne-freqmask"
    outs = mfm.explain_bids(pipeline, model, verbose=False, **EXPLAIN_KW)
    # BIDS names, entities kept, in <bids_root>/derivatives/mne-freqmask
    assert outs == [_expected(out_root, sub, ".h5") for sub in SUBJECTS]
    found = sorted(p.name for p in out_root.rglob("*.h5"))
    assert found == sorted(p.name for p in outs)  # the proc-filt file skipped
    for sub, out in zip(SUBJECTS, outs, strict=True):
        # each map is the explanation of that subject's epochs
        sal = mfm.read_saliency(out)
        direct = mfm.explain(per_subject[sub], model, verbose=False, **EXPLAIN_KW)
        scale = np.abs(direct.get_data()).max()
        np.testing.assert_allclose(
            sal.get_data(), direct.get_data(), rtol=1e-4, atol=1e-5 * scale
        )
        side = json.loads(out.with_suffix(".json").read_text())
        source = f"sub-{sub}/eeg/sub-{sub}_task-{TASK}_proc-clean_epo.fif"
        assert side["Sources"] == [f"bids:source:{source}"]
        assert (pipeline / source).is_file()
        assert side["Method"] == "amplitude_gradients"
        assert side["Bands"]["alpha"] == list(sal.bands["alpha"])
        assert side["Dims"] == ["epoch", "channel", "band"]
        assert side["Shape"] == list(sal.shape)
        assert side["Channels"] == sal.ch_names
        assert side["Model"] == dict(Class=type(model).__name__)
        assert side["GeneratedBy"]["Version"] == mfm.__version__
        assert side["Provenance"] == getattr(sal, "provenance", {})
    desc = json.loads((out_root / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "mne-freqmask"
    assert desc["GeneratedBy"][0]["Version"] == mfm.__version__
    # the sidecars' "bids:source:" URIs resolve through DatasetLinks
    assert (out_root / desc["DatasetLinks"]["source"]).resolve() == pipeline
    # a second run skips the maps already written
    before = [out.stat().st_mtime_ns for out in outs]
    assert mfm.explain_bids(pipeline, model, verbose=False, **EXPLAIN_KW) == outs
    assert [out.stat().st_mtime_ns for out in outs] == before


def test_explain_bids_selection_and_errors(bids_inputs, tmp_path):
    import mne_freqmask as mfm

    _, pipeline, model, _, _ = bids_inputs
    outs = mfm.explain_bids(
        pipeline,
        model,
        out_root=tmp_path / "deriv",
        subjects="02",
        time_windows=(0.5, 0.25),
        verbose=False,
        **EXPLAIN_KW,
    )
    assert outs == [_expected(tmp_path / "deriv", "02", ".h5", "saliencytfr")]
    sal = mfm.read_saliency_tfr(outs[0])
    side = json.loads(outs[0].with_suffix(".json").read_text())
    assert side["TimeWindows"] == [0.5, 0.25]
    assert side["WindowCentres"] == sal.times.tolist()
    with pytest.raises(FileNotFoundError, match="No epochs file .* processing"):
        mfm.explain_bids(pipeline, model, tasks="rest", out_root=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mfm.explain_bids(tmp_path / "nope", model)
    # explain_files' out_names (the BIDS names) stay inside out_dir
    fname = pipeline / "sub-01" / "eeg" / f"sub-01_task-{TASK}_proc-clean_epo.fif"
    for names, match in (
        (["a.h5", "b.h5"], "one name per epochs file"),
        (["../a.h5"], "inside out_dir"),
        (["a.fif"], r"\.h5"),
    ):
        with pytest.raises(ValueError, match=match):
            mfm.explain_files([fname], model, tmp_path, out_names=names)
    with pytest.raises(FileNotFoundError, match="create it first"):
        mfm.explain_files([fname], model, tmp_path, out_names=["no/a.h5"])


def test_explain_bids_command(bids_inputs, tmp_path, capsys):
    """The CLI: --bids, with the model file."""
    import mne_freqmask as mfm

    _, pipeline, _, pt, _ = bids_inputs
    out_root = tmp_path / "cli"
    argv = ["explain", str(pipeline), str(pt), "--bids", "--out-dir", str(out_root)]
    argv += ["--method", "amplitude_gradients", "--bands", "canonical"]
    argv += ["--bids-subjects", "01", "--quiet"]
    assert main(argv) == 0
    expected = _expected(out_root, "01", ".h5")
    assert capsys.readouterr().out.split() == [str(expected)]
    assert mfm.read_saliency(expected).method == "amplitude_gradients"
    assert expected.with_suffix(".json").is_file()
    assert (out_root / "dataset_description.json").is_file()
    # one line, exit 2, when nothing matches
    assert main(argv[:-3] + ["--bids-tasks", "rest", "--quiet"]) == 2
    assert "No epochs file" in capsys.readouterr().err
