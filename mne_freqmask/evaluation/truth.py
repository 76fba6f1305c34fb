"""Ground truth: planted signals, Clever-Hans artefacts, CSP patterns.

- :func:`ground_truth_scores` and :func:`score_planted`: how well a map finds
  the planted channel x band cells of simulated data (or of any data whose
  informative channels and band are known); both use the same AUROC.
- :func:`clever_hans_report`: whether the relevance piles up on
  artefact-prone (frontal, slow) cells, a model relying on eye movements
  rather than brain activity (Meyer zu Bexten et al., 2026).
- :func:`csp_comparison`: the map's topography next to the patterns of a
  classical, well-understood decoder (CSP + LDA for motor imagery).

They work on any :class:`~mne_freqmask.SpectralSaliency` (every method of
:func:`mne_freqmask.explain`) and, where no frequency is needed, on the
time-domain relevance of :func:`mne_freqmask.lrp.compute_relevance`.
"""

import numpy as np
import pandas as pd
from mne import BaseEpochs
from mne.utils import _check_option, _validate_type, logger, verbose
from scipy.stats import rankdata

from mne_freqmask._inputs import epochs_labels
from mne_freqmask.evaluation._common import _cell_ranks
from mne_freqmask.evaluation._maps import _band_overlap, _channel_band_map
from mne_freqmask.evaluation.clever_hans import (  # noqa: F401 (moved there)
    ARTIFACT_CHANNELS,
    CleverHansReport,
    clever_hans_report,
)
from mne_freqmask.saliency import SpectralSaliency


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


def _truth_cells(saliency, truth):
    if hasattr(truth, "cells"):
        return truth.cells(saliency.ch_names, saliency.band_edges)
    cells = np.asarray(truth, bool)
    if cells.shape != saliency.shape[-2:]:
        raise ValueError(
            f"truth must be a PlantedTruth or a boolean (n_channels, n_bands) = "
            f"{saliency.shape[-2:]} array, got shape {cells.shape}."
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

    Parameters
    ----------
    saliency : SpectralSaliency
        The explanation (per epoch or group level).
    truth : PlantedTruth | ndarray of bool, shape (n_channels, n_bands)
        The planted cells, e.g. from
        :func:`mne_freqmask.datasets.simulated.make_epochs`.
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
    _validate_type(saliency, SpectralSaliency, "saliency")
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
    values = saliency.get_data()
    if absolute:
        values = np.abs(values)
    if values.ndim == 2:
        values = values[None]
    elif level == "group":
        values = values.mean(0, keepdims=True)
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
    auc = _auroc(data, cells)
    return dict(
        top_cell=(ch_names[ci], saliency.band_names[bi]),
        top_is_planted=bool(cells[ci, bi]),
        planted_fraction=float(data[cells].sum() / total) if total else np.nan,
        chance=float(cells.mean()),
        auc=auc,
    )


@verbose
def csp_comparison(
    epochs,
    saliency,
    *,
    y=None,
    fmin=8.0,
    fmax=30.0,
    n_components=4,
    cv=5,
    random_state=0,
    verbose=None,
):
    """Compare an explanation's topography with CSP patterns (and CSP-LDA).

    Common spatial patterns on band-passed epochs are the classical,
    physiologically understood decoder of motor imagery: their patterns peak
    over the sensorimotor cortex (C3 / C4) in the mu and beta bands. A model
    whose explanation correlates with them uses the same sources; one that
    does not may use something else (an artefact, or a real but different
    signal).

    Parameters
    ----------
    epochs : mne.Epochs
        The epochs the explanation was computed on (or the training epochs of
        the model), with their class events.
    saliency : SpectralSaliency | mne.Epochs | mne.Evoked
        The explanation; a SpectralSaliency is summed over the bands that
        overlap ``fmin``-``fmax``, time-domain relevance over time.
    y : array-like of int | None
        Class of each epoch; ``None`` reads the events (as
        :func:`mne_freqmask.explain`).
    fmin, fmax : float
        The band-pass of CSP in Hz (mu and beta by default).
    n_components : int
        Number of CSP components whose patterns form the CSP topography.
    cv : int
        Folds of the stratified cross-validation of CSP-LDA.
    random_state : int | None
        Seed of the fold split.
    %(verbose)s

    Returns
    -------
    result : dict
        ``correlation`` (Pearson) and ``spearman`` between the two channel
        topographies, ``csp_topography`` and ``saliency_topography`` (each
        normalised to sum 1), ``ch_names``, ``csp_lda_accuracy`` (mean
        cross-validated accuracy), ``csp_lda_scores`` and the fitted ``csp``
        (:class:`mne.decoding.CSP`; ``csp.plot_patterns(epochs.info)`` plots
        its patterns).
    """
    from mne.decoding import CSP
    from scipy.stats import spearmanr
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    _validate_type(epochs, BaseEpochs, "epochs", "mne.Epochs")
    data, ch_names, edges = _channel_band_map(saliency, absolute=True)
    if edges is not None:
        inside = _band_overlap(edges, float(fmin), float(fmax)) > 0
        if not inside.any():
            raise ValueError(f"No band of the saliency overlaps {fmin}-{fmax} Hz.")
        sal_topo = data[:, inside].sum(1)
    else:
        sal_topo = data[:, 0]
    missing = sorted(set(ch_names) - set(epochs.ch_names))
    if missing:
        raise ValueError(f"Channels {missing} of the saliency are not in epochs.")
    labels = epochs_labels(epochs, y)
    filt = epochs.copy().pick(ch_names).load_data()
    filt.filter(fmin, fmax, verbose=False)
    x = filt.get_data(copy=False).astype(np.float64)
    csp = CSP(n_components=n_components, reg=None, log=True, norm_trace=False)
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    scores = cross_val_score(
        make_pipeline(
            CSP(n_components=n_components, log=True), LinearDiscriminantAnalysis()
        ),
        x,
        labels,
        cv=folds,
    )
    csp.fit(x, labels)
    pats = np.abs(np.asarray(csp.patterns_)[:n_components])
    pats /= np.maximum(pats.max(1, keepdims=True), np.finfo(float).tiny)
    csp_topo = pats.sum(0)
    csp_topo /= csp_topo.sum()
    sal_topo = sal_topo / max(sal_topo.sum(), np.finfo(float).tiny)
    corr = float(np.corrcoef(csp_topo, sal_topo)[0, 1])
    rho = float(spearmanr(csp_topo, sal_topo).statistic)
    logger.info(
        f"CSP-LDA accuracy {scores.mean():.2f}; topography correlation with CSP "
        f"patterns r={corr:.2f} (Spearman {rho:.2f})."
    )
    return dict(
        correlation=corr,
        spearman=rho,
        csp_topography=csp_topo,
        saliency_topography=sal_topo,
        ch_names=ch_names,
        csp_lda_accuracy=float(scores.mean()),
        csp_lda_scores=scores,
        csp=csp,
    )
