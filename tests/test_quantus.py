"""Quantus both ways: band components, the wrapped model and explain_func.

On conftest's ``simulated`` data (alpha planted on C3/C4, EEGNet trained on
it): the band components sum to the epochs, the wrapped model returns the
model's output without changing the model, ``quantus_explain_func`` returns
:func:`mne_freqmask.explain`'s map, Quantus' PixelFlipping over whole cells is
the package's own MoRF deletion curve, and a faithfulness, a robustness and
a randomisation metric of Quantus give finite scores on these inputs.
"""

import copy

import numpy as np
import pytest
import torch

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev

#: bands covering 0 Hz to Nyquist (64 Hz), the planted alpha in one of them
BANDS = {
    "slow": (0.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "high": (30.0, 64.0),
}
N_EPOCHS = 8


@pytest.fixture(scope="module")
def inputs(simulated):
    """8 held-out epochs of both classes in the band-component form."""
    epochs, truth, model, history = simulated
    idx = np.sort(history["val_idx"])
    codes = epochs.events[idx, 2]
    pick = np.concatenate([idx[codes == c][: N_EPOCHS // 2] for c in np.unique(codes)])
    held = epochs[np.sort(pick)]
    x, y, wrapped = ev.quantus_inputs(held, model, bands=BANDS)
    return held, truth, model, x, y, wrapped


def _quantus_kw():
    return dict(disable_warnings=True, display_progressbar=False)


def test_components_and_wrapped_model(inputs):
    held, _, model, x, y, wrapped = inputs
    data = held.get_data()
    n_ch = len(held.ch_names)
    assert x.shape == (N_EPOCHS, n_ch, len(BANDS), len(held.times))
    assert x.dtype == np.float32
    # the components sum to the epochs (float32 components, scale: the std)
    np.testing.assert_allclose(
        x.sum(2) * wrapped.scale, data, atol=1e-6 * np.abs(data).max()
    )
    assert wrapped.scale == pytest.approx(data.std(), rel=1e-3)
    # each component holds its band's bins only
    spec = np.abs(np.fft.rfft(x[:, :, 1].astype(float), axis=-1))
    alpha = (wrapped.grid.freqs >= 8) & (wrapped.grid.freqs < 13)
    assert spec[..., ~alpha].max() < 1e-4 * spec[..., alpha].max()
    # y: the model's predicted class
    with torch.no_grad():
        logits = model(torch.as_tensor(data, dtype=torch.float32)).numpy()
    np.testing.assert_array_equal(y, logits.argmax(1))
    # the wrapped model is in eval mode (Quantus refuses training mode) and
    # returns the model's output on the summed epochs
    assert not wrapped.training
    with torch.no_grad():
        out = wrapped(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(out, logits, rtol=1e-4, atol=1e-4)
    # a model in training mode (dropout, batch norm) is run in eval mode and
    # left as it was: flags, requires_grad, weights
    user = copy.deepcopy(model).train()
    before = {k: v.clone() for k, v in user.state_dict().items()}
    _, _, w2 = ev.quantus_inputs(held[:4], user, bands=BANDS, scale=1.0)
    assert w2.scale == 1.0
    with torch.no_grad():
        out2 = w2(torch.as_tensor(x[:4]) * wrapped.scale).numpy()
    np.testing.assert_allclose(out2, logits[:4], rtol=1e-4, atol=1e-4)
    assert all(m.training for m in user.modules())
    assert all(p.requires_grad for p in user.parameters())
    for k, v in user.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    with pytest.raises(ValueError, match="band components of shape"):
        wrapped(torch.as_tensor(x[:, :, :2]))


def test_bands_must_cover_spectrum(inputs):
    held, _, model, *_ = inputs
    with pytest.raises(ValueError, match="in no band"):
        ev.quantus_inputs(held[:2], model, bands="canonical")
    with pytest.raises(ValueError, match="scale must be"):
        ev.quantus_inputs(held[:2], model, bands=4, scale=-1.0)


def test_explain_func_is_explain(inputs):
    """The map of quantus_explain_func is explain()'s on the same epochs."""
    held, _, model, x, y, wrapped = inputs
    kw = dict(method="integrated_gradients", n_steps=8)
    a = ev.quantus_explain_func(wrapped, x, y, **kw)
    assert a.shape == x.shape[:3] + (1,)
    sal = mfm.explain(held, model, bands=BANDS, target=y, verbose=False, **kw)
    np.testing.assert_allclose(
        a[..., 0], sal.get_data(), rtol=1e-4, atol=1e-5 * np.abs(a).max()
    )
    with pytest.raises(TypeError, match="fixed by quantus_inputs"):
        ev.quantus_explain_func(wrapped, x, y, bands=4)
    with pytest.raises(TypeError, match="wrapped model returned by"):
        ev.quantus_explain_func(model, x, y)


def test_pixel_flipping_is_deletion_curve(inputs):
    """Quantus' PixelFlipping, whole cells with a zero baseline, is the
    package's MoRF deletion curve with zero removal (instance ranks): four
    cells (4 x n_times features of the components) per step."""
    quantus = pytest.importorskip("quantus")
    held, _, model, x, y, wrapped = inputs
    sal = mfm.explain(held, model, method="amplitude_gradients", bands=BANDS)
    a = sal.get_data()[..., None]
    metric = quantus.PixelFlipping(
        features_in_step=4 * x.shape[-1], perturb_baseline=0.0, **_quantus_kw()
    )
    curves = np.asarray(
        metric(
            model=wrapped,
            x_batch=x,
            y_batch=y,
            a_batch=a,
            channel_first=True,
            softmax=True,
        )
    )
    n_cells = a.shape[1] * a.shape[2]
    assert curves.shape == (N_EPOCHS, n_cells // 4)
    _, scores = ev.deletion_curves(
        held,
        model,
        sal,
        level="instance",
        y=y,
        fractions=np.arange(4, n_cells + 1, 4) / n_cells,
        curves=("deletion",),
        random_state=None,
        return_epoch_scores=True,
        verbose=False,
    )
    np.testing.assert_allclose(curves, scores["deletion_probability"], atol=1e-4)


def test_quantus_metrics(inputs):
    """A faithfulness, a robustness and a randomisation metric of Quantus
    run on the band components and give finite scores; the planted map is
    more faithful than a random one for the class that carries the plant."""
    quantus = pytest.importorskip("quantus")
    held, truth, model, x, y, wrapped = inputs
    flags = [
        (m.training, [p.requires_grad for p in m.parameters(recurse=False)])
        for m in model.modules()
    ]
    n_times = x.shape[-1]
    explain_kw = dict(explain_func=ev.quantus_explain_func, channel_first=True)
    ef_kw = dict(method="amplitude_gradients")
    # faithfulness: Pixel-Flipping AUC (cells removed by rank, zero baseline)
    cells = truth.cells(held.ch_names, np.array(list(BANDS.values())))
    assert cells.any()
    planted = np.broadcast_to(cells[None, ..., None], x.shape[:3] + (1,)).astype(float)
    rng = np.random.default_rng(0)
    random = rng.random(planted.shape)
    aucs = {}
    for name, a in (("planted", planted + 1e-3 * random), ("random", random)):
        metric = quantus.PixelFlipping(  # 4 cells a step
            features_in_step=4 * n_times, perturb_baseline=0.0, **_quantus_kw()
        )
        curve = np.asarray(
            metric(
                model=wrapped,
                x_batch=x,
                y_batch=y,
                a_batch=a,
                channel_first=True,
                softmax=True,
            )
        )
        aucs[name] = curve.mean(1)
    assert np.isfinite(aucs["planted"]).all()
    # removing the planted alpha destroys the evidence for class "high"
    # (class 1: event codes low 1, high 2), not for "low": on the epochs
    # predicted "high", the planted map's curve falls faster than a random one
    high = y == 1
    assert 0 < high.sum() < len(y)
    assert (aucs["planted"][high] < aucs["random"][high]).all()
    assert aucs["planted"][high].mean() < aucs["random"][high].mean() - 0.2
    # faithfulness through explain_func: Faithfulness Correlation
    faith = quantus.FaithfulnessCorrelation(
        nr_runs=5,
        subset_size=2 * n_times,
        perturb_baseline=0.0,
        return_aggregate=False,
        **_quantus_kw(),
    )
    scores = faith(
        model=wrapped, x_batch=x, y_batch=y, explain_func_kwargs=ef_kw, **explain_kw
    )
    assert np.isfinite(scores).all() and np.all(np.abs(scores) <= 1)
    # robustness: Max-Sensitivity (noise in units of the data's std)
    sens = quantus.MaxSensitivity(nr_samples=3, lower_bound=0.05, **_quantus_kw())
    scores = np.asarray(
        sens(
            model=wrapped, x_batch=x, y_batch=y, explain_func_kwargs=ef_kw, **explain_kw
        )
    )
    assert scores.shape == (N_EPOCHS,)
    assert np.isfinite(scores).all() and (scores > 0).all()
    # randomisation: Random Logit (SSIM with the map of the other class,
    # 1 for the same map); on signed gradients (the magnitudes of a two-class
    # model's logit gradients are nearly equal: SSIM 0.999 with the default
    # absolute=True) the other class's map differs
    rl = quantus.RandomLogit(num_classes=2, seed=0, **_quantus_kw())
    signed = dict(method="amplitude_gradients", absolute=False)
    scores = np.asarray(
        rl(
            model=wrapped,
            x_batch=x,
            y_batch=y,
            explain_func_kwargs=signed,
            **explain_kw,
        )
    )
    assert scores.shape == (N_EPOCHS,) and np.isfinite(scores).all()
    assert (scores < 0.9).all()
    # the user's model was not touched by Quantus' metrics
    assert flags == [
        (m.training, [p.requires_grad for p in m.parameters(recurse=False)])
        for m in model.modules()
    ]


def test_sensitivity_in_compare_methods(inputs):
    """compare_methods(sensitivity=...) adds Quantus' Max-Sensitivity; it
    grows with the noise, and is NaN for the random map."""
    pytest.importorskip("quantus")
    from mne_freqmask.evaluation._sensitivity import _max_sensitivity

    held, _, model, *_ = inputs
    codes = held.events[:, 2]
    two = [np.flatnonzero(codes == c)[:2] for c in np.unique(codes)]
    held = held[np.sort(np.concatenate(two))]
    kw = dict(explain_kw=dict(bands=BANDS), n_draws=2, random_state=0)
    small = _max_sensitivity(held, model, "amplitude_gradients", noise=0.01, **kw)
    large = _max_sensitivity(held, model, "amplitude_gradients", noise=0.5, **kw)
    assert small.shape == (4,) and np.isfinite(small).all()
    assert (large > small).all()
    scores = ev.compare_methods(
        held,
        model,
        ["amplitude_gradients", "random"],
        rankings=("instance",),
        operators=("zero",),
        orders=("morf",),
        fractions=(0.0, 0.5),
        explain_kw=dict(bands=BANDS),
        sensitivity=2,
        n_boot=0,
    )
    per_method = scores.groupby("method")["max_sensitivity"].first()
    assert np.isnan(per_method["random"])
    # the same seed and draws as the direct call (FLEXtime's 5 % noise)
    direct = _max_sensitivity(held, model, "amplitude_gradients", **kw)
    assert per_method["amplitude_gradients"] == pytest.approx(direct.mean())
    with pytest.raises(ValueError, match="whole-epoch maps"):
        ev.compare_methods(
            held,
            model,
            ["amplitude_gradients"],
            sensitivity=1,
            explain_kw=dict(picks=["C3"]),
        )
