"""Ground truth: planted signals, Clever-Hans artefacts, CSP patterns.

- :func:`ground_truth_scores`: how well a map finds the planted channel x
  band (x window) cells of simulated data (or of any data whose informative
  channels and band are known), the one ground-truth score;
  :func:`score_planted` and :func:`planted_window_auroc` read it.
- :func:`verify_planted`: the verdict, against untrained copies of the
  model scored the same way (an untrained model's map can score high too:
  the planted band may simply hold the most power).
- :func:`~.clever_hans.clever_hans_report` (in :mod:`.clever_hans`):
  whether the relevance piles up on artefact-prone (frontal, slow) cells,
  a model relying on eye movements rather than brain activity (Meyer zu
  Bexten et al., 2026).
- :func:`~.csp.csp_comparison` (in :mod:`.csp`): the map next to
  a classical, well-understood decoder (CSP + LDA for motor imagery), band by
  band.

They work on any :class:`~mne_freqmask.SpectralSaliency` (every method of
:func:`mne_freqmask.explain`) and, where no frequency is needed, on the
time-domain relevance of :func:`mne_freqmask.lrp.compute_relevance`.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mne import BaseEpochs
from mne.utils import _check_option, _validate_type, check_random_state, logger, verbose
from scipy.stats import rankdata

from mne_freqmask._saliency_base import BaseSaliency
from mne_freqmask._saliency_cells import cell_shape, truth_cells
from mne_freqmask.evaluation._common import (
    _cell_ranks,
    _check_chance,
    _check_model,
    _explain,
    _labels,
    _source,
    _untrained_explanations,
)
from mne_freqmask.evaluation._engine import _predictions
from mne_freqmask.evaluation._maps import _channel_band_map
from mne_freqmask.evaluation._result import EvaluationResult
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.saliency_tfr import SpectralSaliencyTFR
from mne_freqmask.utils._docs import fill_doc


def _auroc(scores, positive):
    """Area under the ROC curve (Mann-Whitney U, ties count one half).

    The probability that a positive cell outranks a negative one; 1 when
    there is no negative cell.
    """
    scores, positive = np.ravel(scores), np.ravel(positive)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_neg == 0:
        return 1.0
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _maps_to_score(saliency, level, absolute, n_cell_dims):
    """The maps scored: ``(n_maps, *cells)``, one group map or one per epoch."""
    values = saliency.get_data()
    if absolute:
        values = np.abs(values)
    if values.ndim == n_cell_dims:
        return values[None]
    return values.mean(0, keepdims=True) if level == "group" else values


def _truth_cells(saliency, truth):
    """The planted cells of ``truth`` on the cells of ``saliency`` (bool).

    ``(n_channels, n_bands)``, or ``(n_channels, n_bands, n_windows)`` for a
    :class:`~mne_freqmask.SpectralSaliencyTFR`.
    """
    if hasattr(truth, "cells"):
        return truth_cells(saliency, truth)
    cells = np.asarray(truth, bool)
    if cells.shape != cell_shape(saliency):
        raise ValueError(
            "truth must be a PlantedTruth or a boolean (n_channels, n_bands) "
            "array, or for a time-resolved map a PlantedBurst or one cell per "
            f"channel x band x window; expected shape "
            f"{cell_shape(saliency)}, got {cells.shape}."
        )
    return cells


def ground_truth_scores(
    saliency, truth, *, level="group", k=None, absolute=False, random_state=None
):
    """How well a map finds the planted cells of simulated data.

    Next to the AUROC and the precision at ``k``, the two scores FLEXtime
    reports where the truth is known (theabrusch/FLEXtime,
    ``src/evaluation/metrics.py``): the relevance rank accuracy
    (``relevance_rank_accuracy``: with ``K`` the number of planted features,
    the share of the ``K`` top-ranked features that are planted; Arras et
    al., 2022) and the relevance mass accuracy (``compute_relevance_score``:
    the share of the map's sum on the planted features), each computed per
    map and averaged. Here a feature is a channel x band cell.

    The one ground-truth score of the package: a time-resolved map
    (:class:`~mne_freqmask.SpectralSaliencyTFR`) is scored the same way over
    its channel x band x window cells (a cell is planted when its channel,
    band and window all are, see
    :meth:`~mne_freqmask.datasets.simulated.PlantedBurst.cells`).

    Parameters
    ----------
    saliency : SpectralSaliency | SpectralSaliencyTFR
        The explanation (per epoch or group level).
    truth : PlantedTruth | PlantedBurst | ndarray of bool
        The planted cells, e.g. from
        :func:`mne_freqmask.datasets.simulated.make_epochs`: an array of shape
        ``(n_channels, n_bands)``, or ``(n_channels, n_bands, n_windows)``
        for a time-resolved map.
    level : "group" | "instance"
        Score the epoch-averaged map, or each epoch's map and average the
        scores.
    k : int | None
        Cells counted by the precision at ``k``; None: the number of planted
        cells (then precision at ``k`` equals recall at ``k``).
    absolute : bool
        ``False`` (default): rank the maps as they are, **signed** (a mask,
        or relevance for the target class; evidence against the class ranks
        low). ``True``: rank the **magnitude** of each epoch's map (taken
        before the epochs are averaged for ``level="group"``); both signs of
        LRP relevance show that the model uses a cell. With ``True``,
        ``auroc`` equals the ``auc`` of :func:`score_planted`, and is the
        score :func:`~mne_freqmask.evaluation.verify_planted` uses.
    random_state : None | int | instance of ~numpy.random.RandomState
        How ties between equal cells are broken for the precision at ``k``
        and the rank accuracy: by position (None, default) or at random
        (seeded).

    Returns
    -------
    scores : pandas.Series
        ``auroc`` (probability that a planted cell outranks a non-planted one;
        0.5 is chance, 1 perfect), ``precision_at_k`` (fraction of planted
        cells among the ``k`` top-ranked), ``rank_accuracy`` (FLEXtime's
        relevance rank accuracy: the precision at ``k = n_planted``, whatever
        ``k``), ``mass_accuracy`` (FLEXtime's relevance score: planted share of
        the map's signed sum; NaN for a map summing to 0),
        ``chance_precision`` (planted fraction of all cells, the rank accuracy
        of a random map on average), ``k`` and ``n_planted``.

    Notes
    -----
    FLEXtime takes the top ``K`` with ``np.argsort`` (ties in the sort's
    order) on the signed relevance of one sample; here ties follow
    ``random_state`` and the maps are ranked as they are (signed). Pass
    ``abs`` of a signed map to rank by magnitude.
    """
    _validate_type(
        saliency,
        BaseSaliency,
        "saliency",
        "SpectralSaliency or SpectralSaliencyTFR",
    )
    _check_option("level", level, ("group", "instance"))
    cells = _truth_cells(saliency, truth)
    n_planted = int(cells.sum())
    if n_planted in (0, cells.size):
        raise ValueError(
            f"The truth marks {n_planted} of {cells.size} cells; scores need both "
            "planted and non-planted cells (check the bands against the planted "
            "band)."
        )
    k = n_planted if k is None else int(k)
    if not 1 <= k <= cells.size:
        raise ValueError(f"k must be between 1 and {cells.size}, got {k}.")
    values = _maps_to_score(saliency, level, absolute, cells.ndim)
    # one row per channel, the cells of all bands (and windows) along it
    values = values.reshape(values.shape[:2] + (-1,))
    cells = cells.reshape(len(cells), -1)
    aurocs, precs, ranks_acc, mass = [], [], [], []
    for v in values:
        aurocs.append(_auroc(v, cells))
        ranks = _cell_ranks(v, random_state)
        precs.append(float(cells[ranks < k].mean()))
        ranks_acc.append(float(cells[ranks < n_planted].mean()))
        total = float(v.sum())
        mass.append(float(v[cells].sum()) / total if total != 0 else np.nan)
    return pd.Series(
        dict(
            auroc=float(np.mean(aurocs)),
            precision_at_k=float(np.mean(precs)),
            rank_accuracy=float(np.mean(ranks_acc)),
            mass_accuracy=float(np.mean(mass)),
            chance_precision=n_planted / cells.size,
            k=k,
            n_planted=n_planted,
        )
    )


def score_planted(saliency, truth, *, absolute=True):
    """Score a frequency explanation against the planted answer (magnitudes).

    The known-signal check: on simulated data (or any data whose informative
    channels and band are known), the explanation should put its relevance on
    the planted channel x band cells. It scores the **absolute** value of
    each epoch's map (by default), averaged over the epochs; its ``auc`` is
    ``ground_truth_scores(saliency, truth, absolute=True)["auroc"]``, which
    ranks signed values unless told otherwise (the two disagree on signed
    maps such as LRP relevance; for a verdict with a baseline use
    :func:`~mne_freqmask.evaluation.verify_planted`).

    Parameters
    ----------
    saliency : SpectralSaliency
        The explanation (per epoch or averaged).
    truth : PlantedTruth
        The planted channels and band, e.g. from
        :func:`mne_freqmask.datasets.simulated.make_epochs`.
    absolute : bool
        Score the magnitude of the saliency (default; LRP relevance is signed
        and both signs are evidence the model uses) rather than its signed
        value.

    Returns
    -------
    scores : dict
        ``top_cell`` (channel, band name) of the largest epoch-averaged value;
        ``top_is_planted``; ``planted_fraction``: the share of the total on
        the planted cells; ``chance``: the share of cells that are planted (the
        fraction a uniform map would give); ``auc``: the probability that a
        planted cell outranks a non-planted one (0.5 is chance, 1 perfect).
    """
    _validate_type(saliency, SpectralSaliency, "saliency", "SpectralSaliency")
    data, ch_names, edges = _channel_band_map(saliency, absolute)
    cells = truth.cells(ch_names, edges)
    if not cells.any():
        raise ValueError(
            f"No cell of the saliency is planted: channels {truth.channels} in "
            f"{truth.band} Hz do not meet its channels / bands."
        )
    ci, bi = np.unravel_index(np.argmax(data), data.shape)
    total = data.sum()
    return dict(
        top_cell=(ch_names[ci], saliency.band_names[bi]),
        top_is_planted=bool(cells[ci, bi]),
        planted_fraction=float(data[cells].sum() / total) if total else np.nan,
        chance=float(cells.mean()),
        auc=float(ground_truth_scores(saliency, cells, absolute=absolute)["auroc"]),
    )


def planted_window_auroc(saliency, truth, *, level="group", absolute=False):
    """AUROC of the planted channel x band x window cells of a time-resolved map.

    ``ground_truth_scores(saliency, truth, ...)["auroc"]`` for a
    :class:`~mne_freqmask.SpectralSaliencyTFR`:
    the probability that a planted cell (channel, band and window all
    planted, see :meth:`~mne_freqmask.datasets.simulated.PlantedBurst.cells`)
    outranks a non-planted one, with the same AUROC (ties count one half).

    Parameters
    ----------
    saliency : SpectralSaliencyTFR
        The explanation, from ``explain(..., time_windows=...)`` (per epoch
        or group level).
    truth : PlantedBurst | ndarray of bool, shape (n_channels, n_bands, n_windows)
        The planted cells, e.g. from ``make_epochs(burst=...)``.
    level : "group" | "instance"
        Score the epoch-averaged map, or each epoch's map and average.
    absolute : bool
        Rank the magnitude of each epoch's map (before averaging) rather
        than its signed value.

    Returns
    -------
    auroc : float
        0.5 is chance, 1 perfect.
    """
    _validate_type(saliency, SpectralSaliencyTFR, "saliency", "SpectralSaliencyTFR")
    scores = ground_truth_scores(saliency, truth, level=level, absolute=absolute)
    return float(scores["auroc"])


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
        float(ground_truth_scores(sal, truth, absolute=True)["auroc"])
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
