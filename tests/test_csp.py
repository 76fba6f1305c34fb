"""The comparison with CSP-LDA, band by band, on simulated data.

Alpha (8-12 Hz) power on C3/C4 is the only class signal of the simulation
(10 channels, 64 Hz, 2 s); a small ShallowFBCSPNet is trained on half of the
epochs and explained with LRP on the other half.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("braindecode")
threadpoolctl = pytest.importorskip("threadpoolctl")

from mne_freqmask import SpectralSaliency, explain  # noqa: E402
from mne_freqmask.datasets.simulated import make_epochs  # noqa: E402
from mne_freqmask.evaluation import CSPComparison, csp_comparison  # noqa: E402
from mne_freqmask.models import fit  # noqa: E402

CH = "Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2".split()


@pytest.fixture(scope="module")
def sim(torch_threads):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    # CSP's covariances and eigen-decompositions: one BLAS thread is much
    # faster than two on busy cores
    with threadpoolctl.threadpool_limits(1):
        epochs, truth = make_epochs(
            n_subjects=2,
            n_epochs_per_class=40,
            ch_names=CH,
            sfreq=64.0,
            n_times=128,
            random_state=0,
        )
        model, hist = fit(
            epochs,
            "shallowfbcspnet",
            max_epochs=15,
            lr=3e-3,
            val_size=0.5,
            random_state=0,
        )
        held = epochs[hist["val_idx"]]
        sal = explain(held, model, method="lrp", bands="canonical", verbose=False)
        yield dict(held=held, model=model, sal=sal, acc=hist["val_accuracy"][-1])
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def comparison(sim):
    with threadpoolctl.threadpool_limits(1):
        before = sim["held"].get_data(copy=True)
        res = csp_comparison(sim["held"], sim["sal"], model=sim["model"])
        np.testing.assert_array_equal(sim["held"].get_data(), before)
    return res


def test_planted_band_wins(sim, comparison):
    """CSP-LDA is best in the planted band, where relevance follows CSP."""
    s = comparison.scores
    assert isinstance(comparison, CSPComparison)
    assert list(s.index) == list(sim["sal"].band_names)  # all within 0-32 Hz
    assert sim["acc"] >= 0.8
    assert s["csp_lda_accuracy"].idxmax() == "alpha"
    assert s.loc["alpha", "csp_lda_accuracy"] >= 0.9
    assert s.loc["alpha", "correlation"] > 0.5
    assert s.loc["alpha", "spearman"] > 0
    assert set(s.loc["alpha", "csp_peak"].split(", ")[:2]) == {"C3", "C4"}
    # an unplanted band is near chance
    assert abs(s.loc["theta", "csp_lda_accuracy"] - s.loc["theta", "chance"]) < 0.15
    # the relevance is mostly in alpha, and the shares cover it all
    assert s["relevance_share"].idxmax() == "alpha"
    np.testing.assert_allclose(s["relevance_share"].sum(), 1)
    np.testing.assert_allclose(s["model_accuracy"], sim["acc"])
    np.testing.assert_allclose(s["chance"], 0.5)
    np.testing.assert_allclose(comparison.csp_profiles.sum(), 1)
    np.testing.assert_allclose(comparison.saliency_profiles.sum(), 1)
    assert list(comparison.csp_profiles.index) == CH
    assert comparison.csp["alpha"].patterns_.shape == (len(CH), len(CH))
    assert len(comparison.fold_scores["alpha"]) == 5
    assert "CSP-LDA best in alpha" in repr(comparison)


def test_bands_given(sim):
    held, sal = sim["held"], sim["sal"]
    with threadpoolctl.threadpool_limits(1):
        res = csp_comparison(held, sal, bands={"mu-beta": (8.0, 30.0)}, cv=3)
        s = res.scores
        assert list(s.index) == ["mu-beta"]
        # alpha and beta lie wholly inside 8-30 Hz
        full = np.abs(sal.get_data()).mean(0).sum(0)
        np.testing.assert_allclose(
            s.loc["mu-beta", "relevance_share"], full[2:4].sum() / full.sum()
        )
        assert np.isnan(s.loc["mu-beta", "model_accuracy"])  # no model given
        res = csp_comparison(held, sal, bands=["theta", "alpha"], cv=3)
        assert list(res.scores.index) == ["theta", "alpha"]
        # one subject per fold: trained on one, tested on the other
        by_subject = csp_comparison(held, sal, bands="alpha", groups="subject", cv=2)
        assert len(by_subject.fold_scores["alpha"]) == 2
        assert by_subject.scores.loc["alpha", "csp_lda_accuracy"] >= 0.8
        with pytest.raises(ValueError, match="metadata column"):
            csp_comparison(held, sal, bands="alpha", groups="trial")
        assert list(csp_comparison(held, sal, bands=(8, 12), cv=3).scores.index) == [
            "8-12 Hz"
        ]
        # a saliency shaped like the CSP profile correlates perfectly
        twin = SpectralSaliency(
            res.csp_profiles[["alpha"]].to_numpy(),
            sal.info,
            sal.freqs,
            ["alpha"],
            [[8.0, 12.0]],
            method="test",
            dims=("channel", "band"),
            nave=1,
        )
        r = csp_comparison(held, twin, cv=3).scores.loc["alpha", "correlation"]
        assert r > 0.999


def test_filter_range_and_errors(sim):
    held, sal = sim["held"], sim["sal"]
    hp = held.copy().filter(13.0, None, verbose=False)
    with threadpoolctl.threadpool_limits(1):
        # default bands: only those within the data's filter range
        res = csp_comparison(hp, sal, bands=None, cv=3)
        assert list(res.scores.index) == ["beta", "gamma"]
        np.testing.assert_allclose(res.scores.loc["beta", "fmin"], 13.0)
    with pytest.raises(ValueError, match="outside the data's filter range"):
        csp_comparison(hp, sal, bands={"delta": (0.5, 4.0)})
    with pytest.raises(ValueError, match="n_patterns"):
        csp_comparison(held, sal, n_components=2, n_patterns=3)
    with pytest.raises(ValueError, match="not in the saliency"):
        csp_comparison(held, sal, bands=["mu"])
    with pytest.raises(TypeError, match="reg"):
        csp_comparison(held, sal, reg=[0.1])


def test_time_domain_relevance(sim):
    from mne_freqmask.lrp import compute_relevance

    rel = compute_relevance(sim["held"][:10], sim["model"], verbose=False)
    with pytest.raises(ValueError, match="pass bands="):
        csp_comparison(sim["held"], rel)
    with threadpoolctl.threadpool_limits(1):
        res = csp_comparison(sim["held"], rel, bands=(8, 12), cv=3)
    s = res.scores.iloc[0]
    assert np.isnan(s["relevance_share"])
    assert -1 <= s["spearman"] <= 1


def test_plot(comparison):
    fig = comparison.plot(show=False)
    # one row (alpha is both the best CSP band and the most relevant), two
    # patterns and two profiles (plus MNE's colorbar-free pattern axes)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:2] == ["alpha\nCSP pattern 0", "alpha\nCSP pattern 1"]
    assert len(titles) == 4
    fig = comparison.plot(["theta", "beta"], components=[0], show=False)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 6
    with pytest.raises(ValueError, match="were not compared"):
        comparison.plot("mu", show=False)
    with pytest.raises(ValueError, match="components"):
        comparison.plot(components=[99], show=False)


def test_comparison_is_an_evaluation_result(comparison):
    """The verdict, ``passed``, the scores' table and HTML of the base."""
    from dataclasses import replace

    from mne_freqmask.evaluation import EvaluationResult

    assert isinstance(comparison, EvaluationResult)
    assert repr(comparison) == f"<CSPComparison | {comparison.verdict}>"
    assert "relevance mostly in alpha" in comparison.verdict
    # relevance mostly in alpha, where CSP-LDA is best: they agree
    assert comparison.passed
    assert comparison.to_data_frame() is comparison.scores
    html = comparison.to_html()
    assert "(passed)" in html and "csp_lda_accuracy" in html
    # relevance put in theta instead (CSP-LDA near chance there): no agreement
    scores = comparison.scores.copy()
    scores["relevance_share"] = (scores.index == "theta").astype(float)
    assert not replace(comparison, scores=scores).passed
    # time-domain relevance has no share per band
    scores["relevance_share"] = np.nan
    assert not replace(comparison, scores=scores).passed
