"""Time-resolved maps in long runs: checkpoints and many epochs files.

``explain(..., time_windows=..., checkpoint=...)`` stores and resumes the
chunks of a :class:`~mne_freqmask.SpectralSaliencyTFR` and refuses a
checkpoint of other windows; :func:`~mne_freqmask.explain_files` writes one
time-resolved file per epochs file. The burst simulation of conftest (a
20 Hz burst at 0.5-1.0 s on C3/C4) and its EEGNet.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mne_freqmask as mfm  # noqa: E402

#: 0.5 s windows every 0.25 s on 2 s epochs at 128 Hz: 9 windows
TW = (0.5, 0.25)
#: FreqMask, short: 10 steps on 8 epochs in chunks of 2 (4 chunks)
KW = dict(
    bands="canonical",
    time_windows=TW,
    chunk_size=2,
    n_steps=10,
    min_steps=10,
    random_state=0,
    verbose=False,
)


@pytest.fixture(scope="module")
def burst(burst_simulated):
    """8 held-out burst epochs, the training epochs as reference, the model;
    torch on one thread (tiny data)."""
    epochs, _, model, history = burst_simulated
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield (
        epochs[history["val_idx"][:8]],
        epochs[history["train_idx"][:32]],
        model,
    )
    torch.set_num_threads(n_threads)


class _Stop(Exception):
    pass


class _Interruptible(torch.nn.Module):
    """The model, counting its calls; raises once ``budget`` calls are spent."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls, self.budget = net, 0, None

    def forward(self, x):
        if self.budget is not None and self.calls >= self.budget:
            raise _Stop
        self.calls += 1
        return self.net(x)


def _n_chunks_done(fname):
    import h5io

    return len(h5io.read_hdf5(str(fname), title="mnefreqmask_checkpoint")["chunks"])


def test_checkpoint_time_windows(burst, tmp_path):
    """A checkpointed time-resolved run equals the plain one, also when
    interrupted and resumed; a checkpoint of other windows is refused."""
    ep, ref, model = burst
    plain = mfm.explain(ep, model, reference=ref, **KW)
    assert isinstance(plain, mfm.SpectralSaliencyTFR)
    assert plain.shape == (8, len(ep.ch_names), 5, 9)
    # the masks moved, differently per cell: the comparison is not trivial
    assert np.ptp(plain.get_data()) > 0.05
    fname = tmp_path / "run.h5"
    ckpt = mfm.explain(ep, model, reference=ref, checkpoint=fname, **KW)
    assert isinstance(ckpt, mfm.SpectralSaliencyTFR)
    assert _n_chunks_done(fname) == 4
    np.testing.assert_allclose(ckpt.get_data(), plain.get_data(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ckpt.times, plain.times)
    assert ckpt.time_windows == TW and ckpt.method_params == plain.method_params
    np.testing.assert_array_equal(
        ckpt.diagnostics["n_steps"], plain.diagnostics["n_steps"]
    )
    # "auto" is the same windows on these 2 s epochs: the checkpoint resumes
    auto = dict(KW, time_windows="auto")
    assert mfm.explain(ep, model, reference=ref, checkpoint=fname, **auto) == ckpt
    # interrupted mid-way (the model raises), then resumed: the same map
    net = _Interruptible(model)
    mfm.explain(ep, net, reference=ref, checkpoint=tmp_path / "count.h5", **KW)
    total, net.calls = net.calls, 0
    net.budget = total // 2
    part = tmp_path / "part.h5"
    with pytest.raises(_Stop):
        mfm.explain(ep, net, reference=ref, checkpoint=part, **KW)
    done = _n_chunks_done(part)
    assert 1 <= done < 4, done
    net.budget, net.calls = None, 0
    resumed = mfm.explain(ep, net, reference=ref, checkpoint=part, **KW)
    assert net.calls < total  # only the unfinished chunks were computed
    np.testing.assert_allclose(
        resumed.get_data(), plain.get_data(), rtol=1e-5, atol=1e-6
    )
    # other windows, or none, are refused, naming both and the fix
    for windows, stored, asked in [
        ((1.0, 0.5), "time_windows=(0.5, 0.25)", "time_windows=(1, 0.5)"),
        (None, "time_windows=(0.5, 0.25)", "time_windows=None (whole epoch)"),
    ]:
        with pytest.raises(ValueError, match="time_windows differ") as exc:
            mfm.explain(
                ep,
                model,
                reference=ref,
                checkpoint=fname,
                **dict(KW, time_windows=windows),
            )
        msg = str(exc.value)
        assert f"the checkpoint holds {stored}" in msg, msg
        assert f"this run asks for {asked}" in msg, msg
        assert "repeat that run's arguments to resume it" in msg
    # and a whole-epoch checkpoint is refused by a time-resolved run
    whole = tmp_path / "whole.h5"
    mfm.explain(
        ep, model, reference=ref, checkpoint=whole, **dict(KW, time_windows=None)
    )
    with pytest.raises(ValueError, match=r"holds time_windows=None \(whole epoch\)"):
        mfm.explain(ep, model, reference=ref, checkpoint=whole, **KW)


def test_explain_files_time_windows(burst, tmp_path):
    """One time-resolved file per epochs file (-sal-tfr.h5), the same map as
    explain(); resumed runs skip them and refuse a file of the other kind or
    of other windows."""
    import os

    import mne

    ep, _, model = burst
    fnames = []
    for k in range(2):
        fname = tmp_path / f"run{k}-epo.fif"
        ep[4 * k : 4 * k + 4].save(fname, verbose=False)
        fnames.append(fname)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    kw = dict(method="amplitude_gradients", bands="canonical", threads=1)
    outs = mfm.explain_files(fnames, model, out_dir, time_windows=TW, **kw)
    assert [o.name for o in outs] == ["run0-sal-tfr.h5", "run1-sal-tfr.h5"]
    for fname, out in zip(fnames, outs, strict=True):
        sal = mfm.read_saliency_tfr(out)
        epochs = mne.read_epochs(fname, preload=False, verbose=False)
        direct = mfm.explain(
            epochs,
            model,
            method="amplitude_gradients",
            bands="canonical",
            time_windows=TW,
            verbose=False,
        )
        assert sal.shape == (4, len(ep.ch_names), 5, 9)
        np.testing.assert_array_equal(sal.get_data(), direct.get_data())
        np.testing.assert_array_equal(sal.events, epochs.events)
        assert sal.time_windows == TW and np.ptp(sal.get_data()) > 0
    # whole-epoch maps of the same files go beside them, under their own name
    whole = mfm.explain_files(fnames, model, out_dir, **kw)
    assert [o.name for o in whole] == ["run0-sal.h5", "run1-sal.h5"]
    assert mfm.read_saliency(whole[0]).shape == (4, len(ep.ch_names), 5)
    # a resumed run skips the files done (untouched), "auto" is the same grid
    mtimes = [os.stat(o).st_mtime_ns for o in outs]
    os.remove(outs[1])
    again = mfm.explain_files(fnames, model, out_dir, time_windows="auto", **kw)
    assert again == outs and os.stat(outs[0]).st_mtime_ns == mtimes[0]
    assert mfm.read_saliency_tfr(outs[1]).time_windows == TW
    # the other kind, or other windows, under the name of a file done: refused
    same = dict(kw, suffix="-sal.h5")
    whole_text = r"time_windows=None \(whole epoch\)"
    tw_text = r"time_windows=\(0.5, 0.25\)"
    with pytest.raises(ValueError, match=rf"{whole_text} -> {tw_text}"):
        mfm.explain_files(fnames, model, out_dir, time_windows=TW, **same)
    same = dict(kw, suffix="-sal-tfr.h5")
    with pytest.raises(ValueError, match=rf"{tw_text}.* -> {whole_text}.*overwrite"):
        mfm.explain_files(fnames, model, out_dir, **same)
    with pytest.raises(ValueError, match=rf"{tw_text}.* -> time_windows=\(1, 0.5\)"):
        mfm.explain_files(fnames, model, out_dir, time_windows=(1.0, 0.5), **kw)
    # methods that cannot run short-time, and bad windows, before any work
    with pytest.raises(ValueError, match="the methods that can are"):
        mfm.explain_files(fnames, model, out_dir, method="flextime", time_windows=TW)
    with pytest.raises(ValueError, match="NOLA"):
        mfm.explain_files(fnames, model, out_dir, time_windows=(0.5, 0.4))
    # nothing half-written is left behind: the maps and their records
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        name for o in outs + whole for name in (o.name, f"{o.name}.fingerprint.json")
    )
