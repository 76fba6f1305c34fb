"""check_explanation, the cell test and Quantus on time-resolved maps.

The burst simulation of tests/conftest.py (a 20 Hz burst at 0.5-1.0 s on
C3/C4 carries the class) and its EEGNet; FreqMask's short-time map of the 32
held-out epochs must pass the checks and name cells in the planted window,
and controls on the same cells (random, constant) must not.
"""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import mne_freqmask as mfm  # noqa: E402
from mne_freqmask import evaluation as ev  # noqa: E402

#: 0.5 s windows every 0.25 s on 2 s epochs: 9 windows, 5 bands, 360 cells
TW = (0.5, 0.25)
N_CELLS = 8 * 5 * 9
#: the planted cells: C3 / C4, beta (12-30 Hz), windows centred 0.5-1.0 s
PLANTED_CHS, BETA, PLANTED_WINDOWS = ("C3", "C4"), 3, (2, 3, 4)


@pytest.fixture(scope="module")
def burst(burst_simulated):
    """The 32 held-out burst epochs, the model, and FreqMask's short-time map
    (about 5 s on one thread)."""
    epochs, _, model, history = burst_simulated
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    held = epochs[history["val_idx"]]
    sal = mfm.explain(
        held, model, bands="canonical", time_windows=TW, random_state=0, verbose=False
    )
    yield held, model, sal
    torch.set_num_threads(n_threads)


def _like(sal, data, method):
    """A per-epoch map with ``data`` on ``sal``'s short-time grid (no params)."""
    grid = sal.grid
    return mfm.SpectralSaliencyTFR(
        data,
        sal.info,
        sal.freqs,
        sal.band_names,
        sal.band_edges,
        times=sal.times,
        method=method,
        win_length=grid.win_length,
        hop=grid.hop,
        n_times=grid.n_times,
        tmin=grid.tmin,
    )


def test_check_tfr_map(burst):
    """FreqMask's short-time map passes every check; the strongest cells are
    the planted ones, named with their window; the epochs and the model are
    left as they were; the deletion check is compare_methods with the
    random control on the map's windows."""
    held, model, sal = burst
    x_before = held.get_data().copy()
    w_before = {k: v.clone() for k, v in model.state_dict().items()}
    res = ev.check_explanation(held, model, sal, n_boot=200)
    assert res.verdicts == dict.fromkeys(
        ("accuracy", "morf", "lerf", "randomization", "cells"), "pass"
    )
    assert res.time_windows == pytest.approx(TW)
    assert res.checks.loc["morf", "ci_high"] < 0 < res.checks.loc["lerf", "ci_low"]
    # randomisation: one correlation per epoch over all 360 cells, low
    assert res.details["randomization"].shape == (len(held),)
    assert res.checks.loc["randomization", "value"] < 0.3
    # the cells: over channel x band x window, the top ones in the burst
    cells = res.details["cells"]
    assert cells.t.shape == (8, 5, 9) and cells.correction == "cluster"
    np.testing.assert_allclose(cells.times, sal.times)
    t = np.where(cells.significant, cells.t, -np.inf)
    top = np.unravel_index(np.argsort(t, None)[::-1][:3], t.shape)
    assert {sal.ch_names[c] for c in top[0]} <= set(PLANTED_CHS)
    assert set(top[1]) == {BETA} and set(top[2]) <= set(PLANTED_WINDOWS)
    line = res.checks.loc["cells", "line"]
    assert f"of {N_CELLS} channel x band x window cells" in line
    assert "strongest: C4 beta 0.75 s" in line or "strongest: C3 beta 0.75 s" in line
    # what it prints says what was checked
    head = str(res).splitlines()[0]
    assert "channel x band x window cells, 0.5 s windows every 0.25 s" in head
    assert head in res.to_html() or "0.5 s windows" in res.to_html()
    assert "5 pass, 0 fail, 0 tie" in repr(res)
    # nothing of the user's changed
    np.testing.assert_array_equal(held.get_data(), x_before)
    for k, v in model.state_dict().items():
        assert torch.equal(v, w_before[k]), k
    # the deletion rows are those of compare_methods' own random control on
    # the same short-time grid
    ref = ev.compare_methods(
        held,
        model,
        {"map": sal, "random": "random"},
        rankings=("instance",),
        operators=("reference",),
        explain_kw=dict(bands="canonical", time_windows=TW),
        n_boot=200,
        verbose=False,
    )
    # (the scores; the cost columns differ: a precomputed control has none)
    cost = ["time_s", "passes_per_epoch"]
    pd.testing.assert_frame_equal(
        res.details["deletion"].drop(columns=cost), ref.drop(columns=cost)
    )


def test_check_tfr_controls(burst):
    """A random and a constant map on the same cells fail: no better than
    random deletion, no reliable cell."""
    held, model, sal = burst
    rng = np.random.default_rng(3)
    random = _like(sal, rng.random(sal.shape), "random")
    constant = _like(sal, np.ones(sal.shape), "constant")
    for control in (random, constant):
        res = ev.check_explanation(
            held, model, control, checks=("deletion", "cells"), n_boot=200
        )
        assert res.verdicts["morf"] != "pass" and res.verdicts["lerf"] != "pass"
        assert res.verdicts["cells"] == "fail", res.checks.loc["cells", "line"]
        assert not res.passed
        assert res.checks.loc["cells", "line"].startswith(f"0 of {N_CELLS} ")


def test_check_tfr_windows_and_errors(burst):
    """The re-explanation uses the map's windows (explain_kw need not repeat
    them, other windows are refused); a group map, other epochs, a map
    without its windows are refused with what to do."""
    held, model, sal = burst
    grad = mfm.explain(
        held,
        model,
        method="amplitude_gradients",
        bands="canonical",
        time_windows=TW,
        verbose=False,
    )
    res = ev.check_explanation(
        held,
        model,
        grad,
        checks=("randomization",),
        explain_kw=dict(bands="canonical"),
        n_boot=100,
    )
    assert res.details["randomization"].shape == (len(held),)
    assert list(res.checks.index) == ["randomization"]
    # 6 epochs, 4 right: the interval reaches chance, and the line says so
    # rather than calling the model at chance
    idx = np.r_[0:3, len(held) - 3 : len(held)]
    few = ev.check_explanation(
        held[idx], model, grad[idx], checks=("accuracy",), n_boot=200
    )
    assert few.verdicts == {"accuracy": "fail"} and few.accuracy > few.chance
    assert "not shown above chance" in few.checks.loc["accuracy", "line"]
    assert "reaches 0.50; 6 epochs" in few.checks.loc["accuracy", "line"]
    # groups: one observation per group in the cell test, over all windows
    res = ev.check_explanation(
        held, model, grad, checks=("cells",), groups=np.arange(len(held)) // 4
    )
    assert res.n_groups == 8 and res.details["cells"].t.shape == (8, 5, 9)
    assert "8 observations" in res.checks.loc["cells", "line"]
    # the map's own windows given again (as "auto" would not be) are accepted
    ev.check_explanation(
        held, model, grad, checks=("accuracy",), explain_kw=dict(time_windows=TW)
    )
    with pytest.raises(ValueError, match="must give the bands"):
        ev.check_explanation(
            held, model, grad, checks=("randomization",), explain_kw={}, n_boot=0
        )
    with pytest.raises(ValueError, match=r"leave time_windows out of explain_kw"):
        ev.check_explanation(
            held, model, sal, explain_kw=dict(time_windows=(1.0, 0.5)), n_boot=0
        )
    whole = sal.average(dim="times")
    with pytest.raises(ValueError, match="whole-epoch SpectralSaliency"):
        ev.check_explanation(
            held, model, whole, explain_kw=dict(time_windows=TW), n_boot=0
        )
    with pytest.raises(ValueError, match="one map per epoch"):
        ev.check_explanation(held, model, sal.average())
    with pytest.raises(ValueError, match="holds 5 maps and epochs 32"):
        ev.check_explanation(held, model, sal[:5])
    blind = mfm.SpectralSaliencyTFR(
        sal.get_data(),
        sal.info,
        sal.freqs,
        sal.band_names,
        sal.band_edges,
        times=sal.times,
        method="x",
    )
    with pytest.raises(ValueError, match="does not know its windows"):
        ev.check_explanation(held, model, blind)


def test_cell_permutation_test_tfr(burst):
    """Planted channel x band x window cells are found; the clusters span
    neighbouring windows; max-t finds exactly the planted cells."""
    _, _, sal = burst
    rng = np.random.default_rng(0)
    data = 0.3 * rng.standard_normal(sal.shape)
    planted = np.zeros(sal.shape[1:], bool)
    for ch in PLANTED_CHS:
        planted[sal.ch_names.index(ch), BETA, list(PLANTED_WINDOWS)] = True
    data[:, planted] += 1.0
    noisy = _like(sal, data, "noisy")
    res = ev.cell_permutation_test(noisy, n_permutations=200)
    assert res.correction == "cluster" and res.t.shape == planted.shape
    assert res.significant[planted].all() and res.significant.sum() <= 12
    sig = [
        c for c, p in zip(res.clusters, res.cluster_p_values, strict=True) if p < 0.05
    ]
    # each significant cluster joins a planted channel's three windows
    assert sig and all(c.any(axis=(0, 1)).sum() >= 3 for c in sig)
    tmax = ev.cell_permutation_test(noisy, adjacency=None, n_permutations=200)
    assert tmax.correction == "tmax"
    np.testing.assert_array_equal(tmax.significant, planted)
    df = tmax.to_data_frame()
    assert list(df.columns) == [
        "channel",
        "band",
        "time",
        "t",
        "p_value",
        "significant",
    ]
    assert len(df) == N_CELLS
    assert set(df.loc[df["significant"], "time"]) == {0.5, 0.75, 1.0}
    assert tmax.cell_label((3, BETA, 3)) == "C3 beta 0.75 s"
    # a whole-epoch null map, or an adjacency of another size, is refused
    with pytest.raises(ValueError, match="on the same cells"):
        ev.cell_permutation_test(noisy, baseline=sal.average(dim="times"))
    with pytest.raises(ValueError, match="adjacency must be 360 x 360"):
        from scipy import sparse

        ev.cell_permutation_test(noisy, adjacency=sparse.eye(40, format="csr"))


def test_quantus_scores_tfr(burst):
    """A short-time map is one explanation of its 360 cells: the scores are
    Quantus' own on the flattened map, and Complexity the entropy."""
    quantus = pytest.importorskip("quantus")
    _, _, sal = burst
    sub = sal[:4]
    scores = ev.quantus_scores(sub)
    assert list(scores.columns) == ["complexity", "sparseness"] and len(scores) == 4
    flat = np.asarray(sub.get_data(), np.float64).reshape(4, 1, N_CELLS)
    for name, cls in (("complexity", "Complexity"), ("sparseness", "Sparseness")):
        metric = getattr(quantus, cls)(disable_warnings=True, display_progressbar=False)
        want = metric(
            model=None,
            x_batch=flat.copy(),
            y_batch=np.zeros(4, int),
            a_batch=flat.copy(),
            channel_first=True,
        )
        np.testing.assert_allclose(scores[name], want, rtol=1e-6)
    p = np.abs(flat[:, 0]) / np.abs(flat[:, 0]).sum(1, keepdims=True)
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(1)
    np.testing.assert_allclose(scores["complexity"], entropy, rtol=1e-4)
    # the time-resolved map is not its average over windows
    whole = ev.quantus_scores(sub.average(dim="times"))
    assert not np.allclose(whole["complexity"], scores["complexity"])
    assert len(ev.quantus_scores(sal, level="group")) == 1
