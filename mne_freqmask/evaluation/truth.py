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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mne import BaseEpochs, Evoked
from mne._fiff.pick import _picks_to_idx
from mne.utils import _check_option, _validate_type, logger, verbose
from scipy.stats import rankdata

from mne_freqmask._inputs import epochs_labels
from mne_freqmask.evaluation._common import _cell_ranks
from mne_freqmask.saliency import SpectralSaliency

#: Channels most exposed to eye movements and blinks (10-05 names): the
#: frontal-polar and anterior-frontal rows and the lateral frontal F7/F8
#: (horizontal EOG). Those present in the data are used.
ARTIFACT_CHANNELS = (
    "Fp1",
    "Fpz",
    "Fp2",
    "AF7",
    "AF3",
    "AFz",
    "AF4",
    "AF8",
    "F7",
    "F8",
)


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


def ground_truth_scores(saliency, truth, *, level="group", k=None, random_state=None):
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


def _channel_band_map(obj, absolute):
    """``(map, ch_names, band_edges or None)``: epoch-averaged relevance.

    A SpectralSaliency gives a channel x band map; time-domain relevance
    (Epochs / Evoked) a channel x 1 map, summed over time.
    """
    _validate_type(
        obj,
        (SpectralSaliency, BaseEpochs, Evoked),
        "saliency",
        "SpectralSaliency, Epochs or Evoked",
    )
    if isinstance(obj, SpectralSaliency):
        data = np.asarray(obj.get_data(), float)
        edges = np.asarray(obj.band_edges, float)
        data = np.abs(data) if absolute else data
        if data.ndim == 3:
            data = data.mean(0)
        return data, list(obj.ch_names), edges
    data = obj.get_data(picks="data")
    ch_names = [obj.ch_names[i] for i in _data_idx(obj)]
    data = np.abs(data) if absolute else data
    data = data.sum(-1)
    if data.ndim == 2:  # epochs
        data = data.mean(0)
    return data[:, None], ch_names, None


def _data_idx(inst):
    return _picks_to_idx(inst.info, "data", exclude=())


def _band_overlap(edges, lo, hi):
    """Fraction of each band inside ``[lo, hi]``."""
    overlap = np.clip(
        np.minimum(edges[:, 1], hi) - np.maximum(edges[:, 0], lo), 0, None
    )
    return overlap / np.maximum(edges[:, 1] - edges[:, 0], np.finfo(float).tiny)


def score_planted(saliency, truth, *, absolute=True):
    """Score a frequency explanation against the planted answer.

    The known-signal check: on simulated data (or any data whose informative
    channels and band are known), the explanation should put its relevance on
    the planted channel x band cells.

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


@dataclass
class CleverHansReport:
    """Where an explanation puts its relevance: artefact-prone or not.

    Parameters
    ----------
    fraction : float
        The share of (absolute) relevance on artefact-prone cells: artefact
        channels at low frequencies for a frequency explanation, artefact
        channels for a time-domain one. This is what ``threshold`` tests.
    fraction_channels : float
        Share on the artefact channels (all frequencies).
    fraction_low_freq : float | None
        Share below ``fmax`` (all channels); ``None`` without frequencies.
    fraction_joint : float | None
        Share on the artefact channels below ``fmax``; ``None`` without
        frequencies.
    area : float
        Share of the cells counted in ``fraction``: what a uniform map gives.
    artifact_channels : list of str
        The artefact channels found in the data.
    low_bands : list of str
        The bands counted as low frequencies.
    threshold : float
        The flagging threshold.
    flagged : bool
        ``fraction >= threshold``: the model may be a Clever Hans.
    per_channel : dict
        Share of each channel (all frequencies), channel name -> float.
    """

    fraction: float
    fraction_channels: float
    fraction_low_freq: float | None
    fraction_joint: float | None
    area: float
    artifact_channels: list
    low_bands: list
    threshold: float
    flagged: bool
    per_channel: dict = field(repr=False, default_factory=dict)

    def __repr__(self):
        where = "artefact channels"
        if self.fraction_joint is not None:
            where += " at low frequencies"
        state = "FLAGGED" if self.flagged else "ok"
        return (
            f"<CleverHansReport | {state}: {self.fraction:.1%} of relevance on "
            f"{where} ({', '.join(self.artifact_channels)}; "
            f"{', '.join(self.low_bands) or 'all frequencies'}), "
            f"{self.area:.1%} of the cells, threshold {self.threshold:.0%}>"
        )


@verbose
def clever_hans_report(
    saliency,
    artifact_channels=ARTIFACT_CHANNELS,
    *,
    fmax=4.0,
    threshold=0.15,
    absolute=True,
    verbose=None,
):
    """Report how much relevance sits on artefact-prone channels and frequencies.

    A "Clever Hans" model uses a confound that happens to correlate with the
    classes, for instance eye movements in a motor-imagery task, instead of
    the brain activity of interest (Meyer zu Bexten et al., 2026, found LaBraM
    doing this on PhysioNet motor imagery). Ocular artefacts are large, slow
    (below about 4 Hz) and frontal; an explanation whose relevance piles up
    there flags the model.

    Parameters
    ----------
    saliency : SpectralSaliency | mne.Epochs | mne.Evoked
        A frequency explanation (from :func:`mne_freqmask.explain`, any
        method) or the time-domain relevance of
        :func:`mne_freqmask.lrp.compute_relevance` (then only the channel
        criterion applies; use ``explain(..., method="lrp")`` for the
        frequency one).
    artifact_channels : list of str
        Artefact-prone channels; those absent from the data are ignored
        (case-insensitive). Default:
        ``ARTIFACT_CHANNELS``.
    fmax : float
        Upper edge of the "low frequencies" in Hz: a band counts as low when at
        least half of it lies below ``fmax``.
    threshold : float
        Flag when the share of relevance on the artefact cells reaches it. The
        default, 0.15, is about 4 times the share of cells of the 4 artefact
        channels of the 19-channel 10-20 montage at delta (0.04); clean models
        of the simulated data give 0.03-0.06, models trained with
        ``make_epochs(artifact={})`` 0.15-0.25. Compare with ``report.area``
        for other montages and bands.
    absolute : bool
        Use absolute relevance (default): evidence for and against the class
        both show that the model looks there.
    %(verbose)s

    Returns
    -------
    report : CleverHansReport
        The shares, the flag and the per-channel breakdown.
    """
    _validate_type(threshold, "numeric", "threshold")
    _validate_type(fmax, "numeric", "fmax")
    data, ch_names, edges = _channel_band_map(saliency, absolute)
    upper = {ch.upper(): ch for ch in ch_names}
    found = [upper[ch.upper()] for ch in artifact_channels if ch.upper() in upper]
    if not found:
        raise ValueError(
            f"None of the artefact channels {list(artifact_channels)} is in the "
            f"data (channels: {ch_names[:10]}...); pass artifact_channels."
        )
    rows = np.isin(ch_names, found)
    total = data.sum()
    if total <= 0:
        raise ValueError("The explanation is zero everywhere (or negative in sum).")
    shares = data.sum(1) / total
    per_channel = {ch: float(v) for ch, v in zip(ch_names, shares, strict=True)}
    frac_ch = float(data[rows].sum() / total)
    frac_low = frac_joint = None
    low_bands = []
    if edges is not None:
        low = _band_overlap(edges, 0.0, float(fmax)) >= 0.5
        if not low.any():
            raise ValueError(
                f"No band lies mostly below fmax={fmax} Hz (lowest band "
                f"{edges[0, 0]:g}-{edges[0, 1]:g} Hz); raise fmax or use finer "
                "bands."
            )
        low_bands = [saliency.band_names[i] for i in np.flatnonzero(low)]
        frac_low = float(data[:, low].sum() / total)
        frac_joint = float(data[np.ix_(rows, low)].sum() / total)
        fraction, area = frac_joint, float(rows.mean() * low.mean())
    else:
        fraction, area = frac_ch, float(rows.mean())
    report = CleverHansReport(
        fraction=fraction,
        fraction_channels=frac_ch,
        fraction_low_freq=frac_low,
        fraction_joint=frac_joint,
        area=area,
        artifact_channels=found,
        low_bands=low_bands,
        threshold=float(threshold),
        flagged=bool(fraction >= threshold),
        per_channel=per_channel,
    )
    logger.info(repr(report))
    return report


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
