"""Epochs read from disk chunk by chunk give the same saliency as in memory."""

import mne
import numpy as np
import pytest

import mne_freqmask as mfm
from mne_freqmask import _inputs
from mne_freqmask.utils._moments import RunningMoments


def _lazy_copy(epochs, tmp_path):
    """The same epochs, cut from a Raw on disk with preload=False.

    The epochs are laid end to end in a continuous recording saved as FIF
    (float32 on disk, as explain() computes in float32) and re-epoched without
    baseline, so the data are identical but never loaded at once.
    """
    data = epochs.get_data()
    n_epochs, n_ch, n_times = data.shape
    raw = mne.io.RawArray(
        data.transpose(1, 0, 2).reshape(n_ch, -1), epochs.info.copy(), verbose=False
    )
    fname = tmp_path / "sim_raw.fif"
    raw.save(fname, verbose=False)
    raw = mne.io.read_raw_fif(fname, preload=False, verbose=False)
    events = epochs.events.copy()
    events[:, 0] = np.arange(n_epochs) * n_times
    lazy = mne.Epochs(
        raw,
        events,
        epochs.event_id,
        tmin=0,
        tmax=(n_times - 1) / epochs.info["sfreq"],
        baseline=None,
        preload=False,
        metadata=epochs.metadata,
        verbose=False,
    )
    return lazy


def test_running_moments_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (103, 4, 50)) * 1e-5 + 1e-3  # offset >> spread
    mom = RunningMoments(axis=(0, 2))
    for start in range(0, len(x), 17):
        mom.update(x[start : start + 17])
    np.testing.assert_allclose(mom.mean, x.mean((0, 2), keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(mom.std, x.std((0, 2), keepdims=True), rtol=1e-9)


@pytest.mark.parametrize("method", ["freqmask", "easypeasi"])
def test_lazy_epochs_match_preloaded(simulated, tmp_path, monkeypatch, method):
    """Non-preloaded epochs: same saliency, read in chunks, user object intact."""
    epochs, _, model, _ = simulated
    lazy = _lazy_copy(epochs, tmp_path)
    assert not lazy.preload and not lazy._bad_dropped
    # the in-memory twin holds exactly the float32 values stored on disk
    loaded = lazy.copy().load_data()
    if method == "freqmask":
        kw = dict(n_steps=30, chunk_size=48)
    else:
        kw = dict(method="easypeasi", noise_stats="dataset", batch_size=48)
        kw.update(level="instance", random_state=0)
    ref = mfm.explain(loaded, model, bands="canonical", **kw)

    reads = []
    getitem = _inputs.EpochsSource.__getitem__

    def spy(self, item):
        out = getitem(self, item)
        if not self.preloaded:
            reads.append(len(out))
        return out

    monkeypatch.setattr(_inputs.EpochsSource, "__getitem__", spy)
    # full passes (scale, centres, clusters) read 32 epochs at a time
    monkeypatch.setattr(_inputs.EpochsSource.chunks, "__defaults__", (32,))
    got = mfm.explain(lazy, model, bands="canonical", **kw)
    np.testing.assert_allclose(got.get_data(), ref.get_data(), atol=1e-6, rtol=0)
    assert len(got) == len(epochs)
    # read from disk, never more than one chunk (48 epochs) at a time
    assert reads and max(reads) <= 48 and sum(reads) >= len(epochs)
    # the user's epochs were not loaded, nor had their bad epochs dropped
    assert not lazy.preload and not lazy._bad_dropped
    if method == "freqmask":
        # the masks moved (path score: their mean over the steps, measured 0.16)
        assert np.abs(got.get_data() - 0.5).max() > 0.1


def test_lazy_evaluation_matches_preloaded(simulated, tmp_path, monkeypatch):
    """The evaluation reads non-preloaded epochs chunk by chunk, same scores."""
    epochs, _, model, _ = simulated
    lazy = _lazy_copy(epochs, tmp_path)
    loaded = lazy.copy().load_data()
    rng = np.random.default_rng(0)
    grid = mfm.FrequencyGrid(epochs.info["sfreq"], len(epochs.times), "canonical")
    picks = mne.pick_types(epochs.info, eeg=True)
    sal = mfm.SpectralSaliency(
        rng.random((len(epochs), len(picks), grid.n_bands)),
        mne.pick_info(epochs.info, picks),
        grid,
        method="random",
    )
    ev = mfm.evaluation
    ref = mfm.evaluate_removal(loaded, model, sal, level="instance")
    ref_curves = ev.deletion_curves(loaded, model, sal, n_points=4)
    ref_ood = ev.ood_score(loaded, loaded[:10])

    reads = []
    getitem = _inputs.EpochsSource.__getitem__

    def spy(self, item):
        out = getitem(self, item)
        if not self.preloaded:
            reads.append(len(out))
        return out

    monkeypatch.setattr(_inputs.EpochsSource, "__getitem__", spy)
    monkeypatch.setattr(_inputs.EpochsSource.chunks, "__defaults__", (32,))
    got = mfm.evaluate_removal(lazy, model, sal, level="instance")
    assert reads and max(reads) <= 32 and sum(reads) >= len(epochs)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy())
    curves = ev.deletion_curves(lazy, model, sal, n_points=4)
    np.testing.assert_allclose(curves.to_numpy(), ref_curves.to_numpy(), atol=1e-6)
    assert ev.ood_score(lazy, lazy[:10]) == pytest.approx(ref_ood, rel=1e-6)
    assert max(reads) <= 32
    assert not lazy.preload and not lazy._bad_dropped
