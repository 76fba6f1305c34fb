"""Verification with a verdict: does the explanation find the planted answer?

On data whose answer is known (simulated epochs, or real epochs with a planted
signal) an explanation should put its relevance on the planted cells. A score
alone says little: an untrained model's explanation can score high too (the
planted band may simply hold the most power). :func:`verify_planted` scores
the model's explanation and those of untrained copies of the model the same
way, and passes the model when it beats them by a stated margin.
"""

from dataclasses import dataclass, field

import numpy as np
from mne import BaseEpochs
from mne.utils import _validate_type, check_random_state, logger, verbose

from mne_freqmask.evaluation._common import (
    _check_chance,
    _check_model,
    _explain,
    _labels,
    _predictions,
    _source,
    _untrained_explanations,
)
from mne_freqmask.evaluation._result import EvaluationResult
from mne_freqmask.evaluation.truth import ground_truth_scores
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.utils._docs import fill_doc

#: Default margin of :func:`verify_planted` (AUROC points).
MIN_MARGIN = 0.05


@dataclass(repr=False)
class PlantedVerification(EvaluationResult):
    """Result of :func:`verify_planted`.

    Parameters
    ----------
    passed : bool
        True when ``score - max(baseline_scores) >= min_margin`` (which
        cannot happen when a baseline scores above ``1 - min_margin``: the
        verdict then says "UNINFORMATIVE").
    verdict : str
        One line with the numbers.
    score : float
        AUROC of the model's map (absolute, per epoch then averaged): the
        probability that a planted cell outranks a non-planted one.
    baseline_scores : list of float
        The same score for each untrained copy.
    margin : float
        ``score - max(baseline_scores)``.
    min_margin : float
        The margin needed to pass.
    accuracy : float
        The model's accuracy on the epochs.
    chance : float
        Accuracy of always predicting the most frequent class.
    scores : pandas.Series
        All of :func:`ground_truth_scores` for the model's map.
    """

    passed: bool
    verdict: str
    score: float
    baseline_scores: list
    margin: float
    min_margin: float
    accuracy: float
    chance: float
    scores: object = field(repr=False, default=None)


def _score(sal, truth):
    return float(ground_truth_scores(sal, truth, absolute=True)["auroc"])


@verbose
@fill_doc
def verify_planted(
    epochs,
    model,
    truth,
    *,
    saliency=None,
    method="lrp",
    bands="canonical",
    n_baselines=3,
    min_margin=MIN_MARGIN,
    explain_kw=None,
    y=None,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Verify that a model's explanation finds the planted answer.

    The map is scored by the AUROC of its magnitude against the planted cells
    (:func:`ground_truth_scores` with ``absolute=True``: both signs of
    relevance count as use; the same as the ``auc`` of
    :func:`score_planted`), and so are the maps of ``n_baselines`` untrained
    copies of the model (:func:`mne_freqmask.models.untrained_copy`),
    explained the same way. The model passes when its score beats the best
    baseline by ``min_margin``.

    Parameters
    ----------
    epochs : mne.Epochs
        Held-out epochs with the planted signal.
    %(model)s
    truth : PlantedTruth | ndarray of bool, shape (n_channels, n_bands)
        The planted cells (e.g. from
        :func:`mne_freqmask.datasets.simulated.make_epochs`).
    saliency : SpectralSaliency | None
        The model's explanation of ``epochs``; ``None`` computes it with
        ``method`` and ``bands``. Given, its method and bands are used for
        the baselines.
    method : str
        Explanation method (see :func:`mne_freqmask.explain`) when
        ``saliency`` is None.
    bands : int | dict | str
        Bands when ``saliency`` is None.
    n_baselines : int
        Untrained copies to score.
    min_margin : float
        AUROC points above the best baseline needed to pass. The default,
        0.05, was measured with LRP and ShallowFBCSPNet on simulated alpha on
        C3/C4 with a stronger class-independent parietal-occipital alpha
        (``make_epochs(distractor=...)``, 10 channels, 3 seeds): trained
        models scored 1.00 against at most 0.92 for untrained copies (margin
        +0.08); untrained models scored 0.81 to 0.90 (margins -0.10 to
        -0.02). Without the distractor the untrained copies already score
        1.00 (the planted cells hold the most power): the verdict is then
        "UNINFORMATIVE" (not passed), whatever the model.
    explain_kw : dict | None
        Further arguments of :func:`mne_freqmask.explain`.
    %(y)s
    random_state : None | int | instance of ~numpy.random.RandomState
        Seed of the untrained copies and of the explanations.
    %(device)s
    %(verbose)s

    Returns
    -------
    result : PlantedVerification
        ``passed``, the ``margin``, the scores and a one-line ``verdict``.

    Notes
    -----
    Warns when the model is at chance on the epochs (one-sided binomial test
    at 0.05): its explanation is then no evidence either way.
    """
    _validate_type(epochs, BaseEpochs, "epochs", "mne.Epochs")
    model = _check_model(model)
    _validate_type(saliency, (SpectralSaliency, None), "saliency")
    _validate_type(n_baselines, "int-like", "n_baselines")
    if n_baselines < 1:
        raise ValueError(f"n_baselines must be at least 1, got {n_baselines}.")
    rng = check_random_state(random_state)
    src = _source(epochs)
    labels = _labels(epochs, y, model, device, src)
    pred = _predictions(model, src, device)
    chance = _check_chance(pred == labels, labels, int(labels.max()) + 1)
    kw = dict(explain_kw or {})
    if saliency is None:
        kw.setdefault("bands", bands)
        saliency = _explain(epochs, model, method, kw, random_state, device)
    else:
        method = saliency.method
        kw.setdefault("bands", saliency.bands)
        kw.setdefault("picks", list(saliency.ch_names))
    scores = ground_truth_scores(saliency, truth, absolute=True)
    score = float(scores["auroc"])
    base = [
        _score(sal, truth)
        for sal in _untrained_explanations(
            epochs, model, method, kw, rng, n_baselines, device
        )
    ]
    margin = score - max(base)
    passed = bool(margin >= min_margin)
    accuracy = float(np.mean(pred == labels))
    state = "PASS" if passed else "FAIL"
    if max(base) > 1 - min_margin:
        state = "UNINFORMATIVE (untrained copies already find the planted cells)"
    verdict = (
        f"{state}: AUROC {score:.2f} against {max(base):.2f} "
        f"for the best of {len(base)} untrained copies, margin {margin:+.2f} "
        f"(needed {min_margin:g}); accuracy {accuracy:.2f} (chance {chance:.2f})"
    )
    result = PlantedVerification(
        passed=passed,
        verdict=verdict,
        score=score,
        baseline_scores=base,
        margin=float(margin),
        min_margin=float(min_margin),
        accuracy=accuracy,
        chance=chance,
        scores=scores,
    )
    logger.info(repr(result))
    return result
