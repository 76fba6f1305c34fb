"""The removal engine, the result base class and the one ground-truth score.

On the simulated data with alpha planted on C3/C4 and an EEGNet trained on
them (conftest's ``simulated``): the engine's chunked predictions equal a
removal and prediction of the whole array at once, whatever the chunk size;
every result class states a verdict, ``passed`` and a table; the ground-truth
score of a time-resolved map is the AUROC of its planted windows.
"""

from functools import partialmethod

import numpy as np
import pandas as pd
import pytest

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev
from mne_freqmask._inputs import EpochsSource
from mne_freqmask._torch_utils import model_context, predict
from mne_freqmask.evaluation._common import _source
from mne_freqmask.evaluation._result import EvaluationResult
from mne_freqmask.evaluation.removal import run_removals
from mne_freqmask.utils._metrics import softmax


@pytest.fixture(scope="module")
def held(simulated):
    epochs, truth, model, history = simulated
    held = epochs[history["val_idx"]]
    sal = mfm.explain(held, model, method="amplitude_gradients")
    return held, truth, model, sal


def _direct(x, keep, grid, picks, model, labels):
    """Remove the cells of all epochs at once and predict (no chunks)."""
    import torch

    dev = torch.device("cpu")
    with model_context(model, dev):
        xr = x if keep is None else ev.remove_cells(x, keep, grid, picks, dev)
        logits = predict(model, xr, dev)
    return logits.argmax(1), softmax(logits)[np.arange(len(labels)), labels]


@pytest.mark.parametrize("chunk", [3, 512])
def test_engine_matches_whole_array(held, monkeypatch, chunk):
    """Chunked remove -> predict -> record equals the whole array at once."""
    epochs, truth, model, sal = held
    monkeypatch.setattr(
        EpochsSource, "chunks", partialmethod(EpochsSource.chunks, chunk)
    )
    src = _source(epochs)
    x = src[: len(src)]
    labels = epochs.events[:, 2] - 1
    picks = np.arange(len(epochs.ch_names))
    cells = truth.cells(sal.ch_names, sal.band_edges)
    removals = (("original", None), ("planted", ~cells), ("other", cells))
    pred, prob = run_removals(
        src, model, lambda sl: removals, sal.grid, picks, labels=labels, device="cpu"
    )
    assert list(pred) == ["original", "planted", "other"]
    for key, keep in removals:
        want_pred, want_prob = _direct(x, keep, sal.grid, picks, model, labels)
        np.testing.assert_array_equal(pred[key], want_pred)
        np.testing.assert_allclose(prob[key], want_prob, rtol=1e-5, atol=1e-6)
    # the planted cells carry the class: removing them costs accuracy, the
    # other cells far less
    acc = {k: float((v == labels).mean()) for k, v in pred.items()}
    assert acc["original"] > 0.9
    assert acc["planted"] < acc["original"] - 0.2
    assert acc["other"] > acc["planted"]


def test_results_share_the_base(held):
    """Every result states a verdict, passed, a table, a repr and HTML."""
    epochs, truth, model, sal = held
    cells = truth.cells(sal.ch_names, sal.band_edges)
    planted = sal.copy()
    planted._data = np.repeat(cells[None].astype(np.float32), len(sal), 0)
    planted._data += 0.01 * np.random.default_rng(0).random(planted.shape)
    results = [
        ev.cell_permutation_test(planted, random_state=0, n_permutations=200),
        ev.check_explanation(epochs, model, sal, checks=("accuracy",), n_boot=200),
        ev.clever_hans_report(sal),
    ]
    for res in results:
        assert isinstance(res, EvaluationResult)
        assert isinstance(res.verdict, str) and res.verdict
        assert isinstance(res.passed, bool)
        table = res.to_data_frame()
        assert isinstance(table, pd.DataFrame) and len(table) > 0
        html = res._repr_html_()
        assert html == res.to_html() and "<table" in html
    cell_test, check, report = results
    # the verdicts are the results' own figures
    assert cell_test.passed == bool(cell_test.significant.any())
    assert cell_test.passed  # the planted cells are reliably salient
    assert check.passed and check.verdict == "1 pass, 0 fail, 0 tie"
    # the base's HTML: the class, the verdict and the table
    for res in (cell_test, report):
        html = res.to_html()
        assert type(res).__name__ in html and res.verdict.split(":")[0] in html
        assert repr(res) == f"<{type(res).__name__} | {res.verdict}>"
    assert report.passed == (not report.flagged)
    assert ("FLAGGED" in report.verdict) == report.flagged


def test_one_ground_truth_score_for_both_containers(burst_simulated):
    """ground_truth_scores scores a time-resolved map over its windows."""
    epochs, truth, model, history = burst_simulated
    held = epochs[history["val_idx"]]
    sal = mfm.explain(
        held, model, method="amplitude_gradients", time_windows=(0.5, 0.25)
    )
    cells = truth.cells(sal.ch_names, sal.band_edges, sal.window_edges)
    perfect = sal.copy()
    perfect._data = np.repeat(cells[None].astype(np.float32), len(sal), 0)
    scores = ev.ground_truth_scores(perfect, truth)
    assert scores["auroc"] == 1.0 and scores["rank_accuracy"] == 1.0
    assert scores["n_planted"] == cells.sum()
    inverted = perfect.copy()
    inverted._data = 1.0 - perfect._data
    assert ev.ground_truth_scores(inverted, truth)["auroc"] == 0.0
    for level in ("group", "instance"):
        for absolute in (False, True):
            got = ev.ground_truth_scores(sal, truth, level=level, absolute=absolute)
            assert got["auroc"] == ev.planted_window_auroc(
                sal, truth, level=level, absolute=absolute
            )
    with pytest.raises(ValueError, match="channel x band x window"):
        ev.ground_truth_scores(sal, cells[..., :-1])
