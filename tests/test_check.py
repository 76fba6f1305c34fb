"""Tests of check_explanation: one verdict per check, on real models."""

import numpy as np
import pytest

import mne_freqmask as mfm
from mne_freqmask.evaluation import ExplanationCheck, check_explanation
from mne_freqmask.models import untrained_copy


@pytest.fixture(scope="module")
def held_out(simulated):
    epochs, _, model, history = simulated
    return epochs[history["val_idx"]], model


def test_check_trained_and_random_models(held_out):
    """A right model passes every check; one with random weights does not."""
    epochs, model = held_out
    sal = mfm.explain(epochs, model, random_state=0, verbose=False)
    good = check_explanation(epochs, model, sal, n_boot=500)
    assert isinstance(good, ExplanationCheck)
    assert good.verdicts == {
        "accuracy": "pass",
        "morf": "pass",
        "lerf": "pass",
        "randomization": "pass",
        "cells": "pass",
    }
    assert good.passed
    assert good.accuracy > 0.9 and good.chance == pytest.approx(0.5, abs=0.1)
    # the removal checks are paired against a random map: MoRF lower, LeRF higher
    assert good.checks.loc["morf", "ci_high"] < 0 < good.checks.loc["lerf", "ci_low"]
    # the strongest reliable cells are the planted alpha on C3 / C4
    assert "C3 " in good.checks.loc["cells", "line"]
    assert set(good.timings) == {"accuracy", "deletion", "randomization", "cells"}
    assert good.steps.startswith("steps: median ")
    text = str(good)
    assert len(text.splitlines()) == 2 + len(good.checks)
    assert "5 pass, 0 fail, 0 tie" in repr(good)
    assert "<table>" in good.to_html() and "pass" in good.to_html()

    rand = untrained_copy(model)
    sal_r = mfm.explain(epochs, rand, random_state=0, verbose=False)
    bad = check_explanation(
        epochs, rand, sal_r, checks=("accuracy", "deletion"), n_boot=500
    )
    assert not bad.passed
    assert bad.verdicts["accuracy"] == "fail"
    assert "at chance" in bad.checks.loc["accuracy", "line"]
    # a random model's map is no better than random ranks of its cells
    assert bad.verdicts["morf"] != "pass"
    assert list(bad.checks.index) == ["accuracy", "morf", "lerf"]


def test_check_groups_and_errors(held_out):
    epochs, model = held_out
    sal = mfm.explain(epochs, model, method="amplitude_gradients", verbose=False)
    groups = np.arange(len(epochs)) // 4
    res = check_explanation(
        epochs, model, sal, checks=("accuracy", "cells"), groups=groups, n_boot=200
    )
    assert res.n_groups == len(epochs) // 4 and res.n_epochs == len(epochs)
    assert f"{len(epochs) // 4} observations" in res.checks.loc["cells", "line"]
    # no interval, no verdict on accuracy
    res = check_explanation(epochs, model, sal, checks=("accuracy",), n_boot=0)
    assert res.verdicts == {"accuracy": "tie"}
    with pytest.raises(ValueError, match="one map per epoch"):
        check_explanation(epochs, model, sal.average())
    with pytest.raises(ValueError, match="holds 3 maps and epochs"):
        check_explanation(epochs, model, sal[:3])
    with pytest.raises(ValueError, match="Unknown check 'truth'"):
        check_explanation(epochs, model, sal, checks=("truth",))


def test_check_cells_of_a_signed_map(held_out):
    """A signed map whose sign flips between epochs: tested on its magnitude.

    Explaining one class on epochs of both (``target`` fixed) makes the
    planted C3/C4 alpha evidence for the class in its own epochs and against
    it in the others; the one-sided test of the signed values then finds no
    cell, the test of the magnitude finds C3/C4 alpha.
    """
    from mne_freqmask.evaluation import cell_permutation_test
    from mne_freqmask.lrp import LRPConservationWarning

    epochs, model = held_out
    target = np.zeros(len(epochs), int)
    # in the epochs predicted "low" (no planted alpha) the BatchNorm shifts
    # carry the class and the input's relevance sums against it: warned
    with pytest.warns(LRPConservationWarning, match="negative"):
        sal = mfm.explain(epochs, model, method="lrp", target=target, verbose=False)
    assert sal.get_data().min() < 0
    signed = cell_permutation_test(sal, adjacency=None, verbose=False)
    assert signed.significant.sum() == 0
    res = check_explanation(epochs, model, sal, checks=("cells",))
    assert res.verdicts == {"cells": "pass"}
    line = res.checks.loc["cells", "line"]
    assert "in magnitude (signed map)" in line
    strongest = line.split("strongest: ")[1].split(", ")[0].split()
    assert strongest[0] in ("C3", "C4") and strongest[1] == "6.2-12.8", line
    assert res.details["cells"].absolute and not res.details["cells_signed"].absolute
    assert "signed values: 0 cells" in line
