"""The Clever-Hans screen: how much relevance sits on artefact-prone cells.

:func:`clever_hans_report` gives the share of an explanation's relevance on
frontal, slow cells, a screening figure. A share means little on its own (on
64-channel EEGBCI data about a fifth of the signal power sits in those cells,
and LRP puts most of its relevance in delta whatever the model learned), so,
given the epochs and the model, it is reported as ratios: to the cells' share
of signal power, and to the same share for the explanations of untrained
copies of the model, per class. The test that decides is the counterfactual
:func:`~mne_freqmask.evaluation.clever_hans_test`.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mne import BaseEpochs
from mne.utils import _validate_type, check_random_state, logger, verbose, warn

from mne_freqmask._inputs import epochs_labels
from mne_freqmask.evaluation._common import (
    _cell_power,
    _check_model,
    _class_names,
    _find_channels,
    _source,
    _untrained_explanations,
)
from mne_freqmask.evaluation._maps import _band_overlap, _channel_band_map
from mne_freqmask.evaluation._result import EvaluationResult
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

#: Default ratio threshold of the calibrated screen (see
#: :func:`clever_hans_report`).
RATIO_THRESHOLD = 1.0


@dataclass(repr=False)
class CleverHansReport(EvaluationResult):
    """Where an explanation puts its relevance: artefact-prone or not.

    Parameters
    ----------
    fraction : float
        The share of relevance on artefact-prone cells (artefact channels at
        low frequencies for a frequency explanation, artefact channels for a
        time-domain one), of the epoch-averaged map's magnitude.
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
        The flagging threshold: of ``fraction`` when the report is not
        calibrated, of the ratios when it is.
    flagged : bool
        Whether the screen flags the model (see :func:`clever_hans_report`).
    per_channel : dict
        Share of each channel (all frequencies), channel name -> float.
    per_class : pandas.DataFrame | None
        With ``epochs``: one row per class and ``"all"``, columns ``share``,
        ``power_share`` (the cells' share of signal power), ``power_ratio``
        and, with ``model``, ``baseline_share`` (mean over the untrained
        copies) and ``baseline_ratio``.
    calibrated : bool
        True when the flag rests on the ratios (``epochs`` and ``model``
        given).
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
    per_class: pd.DataFrame | None = field(repr=False, default=None)
    calibrated: bool = False

    @property
    def verdict(self):
        """``"FLAGGED"`` or ``"ok"``, with the shares the flag rests on."""
        where = "artefact channels"
        if self.fraction_joint is not None:
            where += " at low frequencies"
        out = (
            f"{'FLAGGED' if self.flagged else 'ok'}: {self.fraction:.1%} of "
            f"relevance on {where} ({', '.join(self.artifact_channels)}; "
            f"{', '.join(self.low_bands) or 'all frequencies'}), "
            f"{self.area:.1%} of the cells"
        )
        pc = self.per_class
        if pc is not None:
            out += f", {pc.loc['all', 'power_share']:.1%} of the power"
            if "baseline_share" in pc:
                return out + (
                    f", untrained {pc.loc['all', 'baseline_share']:.1%}; ratio to "
                    f"baseline {pc.loc['all', 'baseline_ratio']:.2f}, to power "
                    f"{pc.loc['all', 'power_ratio']:.2f} (max over classes "
                    f"{self._max_ratio():.2f}), threshold {self.threshold:g}"
                )
        return out + f", uncalibrated threshold {self.threshold:.0%}"

    @property
    def passed(self):
        """True when the screen does not flag the model."""
        return not self.flagged

    def to_data_frame(self):
        """Return the shares as a table.

        Returns
        -------
        df : pandas.DataFrame
            ``per_class`` (with ``epochs``), else one row ``"all"`` with the
            ``share``.
        """
        if self.per_class is not None:
            return self.per_class
        return pd.DataFrame({"share": [self.fraction]}, index=["all"])

    def _max_ratio(self):
        pc = self.per_class
        return float(np.nanmax(pc["baseline_ratio"]))


def _check_not_empty(obj, data, absolute):
    """Warn when the map is near-empty or cancels out across epochs."""
    total = float(data.sum())
    if total <= 0 or not np.isfinite(total):
        raise ValueError("The explanation is zero everywhere (or negative in sum).")
    if not isinstance(obj, SpectralSaliency):
        return
    values = np.asarray(obj.get_data(), float)
    if values.min() >= 0 and values.max() <= 1 and values.max() < 0.01:
        warn(
            f"The map is near-empty (largest value {values.max():.2g}, a mask "
            "in [0, 1]): its shares divide by a total close to 0 and mean "
            "nothing. Explain again (more steps, a smaller sparsity weight).",
            RuntimeWarning,
        )
    elif values.ndim == 3 and absolute:
        magnitude = float(np.abs(values).mean(0).sum())
        if total < 0.01 * magnitude:
            warn(
                f"The epoch-averaged map keeps {total / magnitude:.1%} of the "
                "per-epoch magnitude (signs cancel across epochs): its shares "
                "are unreliable; look at the per-class rows.",
                RuntimeWarning,
            )


def _cell_share(data, rows, low):
    total = data.sum()
    if low is None:
        return float(data[rows].sum() / total)
    return float(data[np.ix_(rows, low)].sum() / total)


def _class_maps(saliency, labels, absolute):
    """Epoch-averaged magnitude map of each class (``None``: pooled)."""
    values = np.asarray(saliency.get_data(), float)
    out = {}
    for c in np.unique(labels):
        m = values[labels == c].mean(0)
        out[int(c)] = np.abs(m) if absolute else m
    return out


def _power_map(epochs, saliency, labels):
    """Mean rfft power per class, collapsed on the saliency's cells."""
    picks = [epochs.ch_names.index(ch) for ch in saliency.ch_names]
    return _cell_power(_source(epochs), saliency.grid, picks, labels)


def _baseline_maps(epochs, model, saliency, labels, n_baselines, explain_kw, rng):
    kw = dict(explain_kw or {})
    kw.setdefault("bands", saliency.bands)
    kw.setdefault("picks", list(saliency.ch_names))
    maps = [
        _class_maps(sal, labels, True)
        for sal in _untrained_explanations(
            epochs, model, saliency.method, kw, rng, n_baselines, "auto"
        )
    ]
    return maps


def _per_class(saliency, epochs, model, y, cells, n_baselines, kw, rng):
    rows, low = cells
    if saliency.level != "instance" or len(saliency) != len(epochs):
        raise ValueError(
            "A calibrated report needs the per-epoch saliency of the epochs "
            f"given ({len(epochs)}), got {saliency!r}."
        )
    labels = epochs_labels(epochs, y)
    names = {v: k for k, v in _class_names(epochs, labels).items()}
    maps = _class_maps(saliency, labels, True)
    power = _power_map(epochs, saliency, labels)
    base = []
    if model is not None:
        base = _baseline_maps(epochs, model, saliency, labels, n_baselines, kw, rng)
    counts = {c: int((labels == c).sum()) for c in maps}
    n = sum(counts.values())
    pooled = {
        "map": sum(maps[c] * counts[c] for c in maps) / n,
        "power": sum(power[c] * counts[c] for c in maps) / n,
        "base": [sum(b[c] * counts[c] for c in maps) / n for b in base],
    }
    rows_out = {}
    for c in maps:
        rows_out[names[c]] = {
            "map": maps[c],
            "power": power[c],
            "base": [b[c] for b in base],
        }
    rows_out["all"] = pooled
    table = {}
    for name, d in rows_out.items():
        share = _cell_share(d["map"], rows, low)
        pshare = _cell_share(d["power"], rows, low)
        row = dict(share=share, power_share=pshare, power_ratio=share / pshare)
        if d["base"]:
            bshare = float(np.mean([_cell_share(b, rows, low) for b in d["base"]]))
            row.update(baseline_share=bshare, baseline_ratio=share / bshare)
        table[name] = row
    return pd.DataFrame.from_dict(table, orient="index")


@verbose
def clever_hans_report(
    saliency,
    artifact_channels=ARTIFACT_CHANNELS,
    *,
    fmax=4.0,
    threshold=None,
    absolute=True,
    epochs=None,
    model=None,
    y=None,
    n_baselines=3,
    explain_kw=None,
    random_state=0,
    verbose=None,
):
    """Report how much relevance sits on artefact-prone channels and frequencies.

    A "Clever Hans" model uses a confound that happens to correlate with the
    classes, for instance eye movements in a motor-imagery task, instead of
    the brain activity of interest (Meyer zu Bexten et al., 2026, found LaBraM
    doing this on PhysioNet motor imagery). Ocular artefacts are large, slow
    (below about 4 Hz) and frontal. This is a screening figure; the test
    that decides is :func:`~mne_freqmask.evaluation.clever_hans_test`.

    Parameters
    ----------
    saliency : SpectralSaliency | mne.Epochs | mne.Evoked
        A frequency explanation (from :func:`mne_freqmask.explain`, any
        method) or the time-domain relevance of
        :func:`mne_freqmask.lrp.compute_relevance` (then only the channel
        criterion applies). Per-epoch maps are averaged over the epochs
        before the magnitude is taken, so ``saliency`` and
        ``saliency.average()`` give the same shares (for the mean magnitude
        per epoch, pass ``saliency.average(lambda d: np.abs(d).mean(0))``).
    artifact_channels : list of str
        Artefact-prone channels; those absent from the data are ignored
        (case-insensitive). Default: ``ARTIFACT_CHANNELS``.
    fmax : float
        Upper edge of the "low frequencies" in Hz: a band counts as low when at
        least half of it lies below ``fmax``.
    threshold : float | None
        Calibrated (``epochs`` and ``model`` given): flag when the pooled
        share is at least ``threshold`` times the mean share of the untrained
        copies (``per_class.loc["all", "baseline_ratio"]``); ``None`` is 1.0,
        "more relevance on the cells than an untrained model puts there".
        Measured with LRP and ShallowFBCSPNet (3 untrained copies): on
        simulated data (10 channels, 5 seeds each) clean models gave 0.12 to
        0.46 and artefact models 0.51 to 1.25; on EEGBCI fists vs feet (3
        seeds each) clean models 0.63 to 1.06 and artefact models 1.09 to
        1.51. No threshold separates both: the screen misses weak artefact
        models and flags some clean ones; decide with
        :func:`~mne_freqmask.evaluation.clever_hans_test`. Not calibrated:
        flag when the share reaches ``threshold``; ``None`` is 0.15 (set on a
        19-channel simulation; on 64-channel EEGBCI, where the cells hold
        about 20 %% of the power, it flags clean EEGConformers).
    absolute : bool
        Use the magnitude of the (epoch-averaged) relevance (default).
    epochs : mne.Epochs | None
        The epochs explained (one per map of ``saliency``): adds the
        per-class shares and the cells' share of signal power.
    model : torch.nn.Module | None
        The explained model (with ``epochs``): adds the share of
        ``n_baselines`` untrained copies
        (:func:`mne_freqmask.models.untrained_copy`), explained with the same
        method and bands, and calibrates the flag.
    y : array-like of int | None
        Class of each epoch; ``None`` reads the events.
    n_baselines : int
        Untrained copies to explain.
    explain_kw : dict | None
        Further arguments of :func:`mne_freqmask.explain` for the baselines.
    random_state : None | int | instance of ~numpy.random.RandomState
        Seed of the untrained copies.
    %(verbose)s

    Returns
    -------
    report : CleverHansReport
        The shares, the flag, the per-channel breakdown and, with ``epochs``,
        ``report.per_class``.
    """
    _validate_type(threshold, ("numeric", None), "threshold")
    _validate_type(fmax, "numeric", "fmax")
    _validate_type(epochs, (BaseEpochs, None), "epochs", "mne.Epochs or None")
    if model is not None and epochs is None:
        raise ValueError("model needs epochs (the epochs the map explains).")
    if model is not None:
        model = _check_model(model)
    data, ch_names, edges = _channel_band_map(saliency, absolute, average_first=True)
    found = _find_channels(
        artifact_channels, ch_names, "artefact channels", "artifact_channels"
    )
    rows = np.isin(ch_names, found)
    _check_not_empty(saliency, data, absolute)
    total = data.sum()
    shares = data.sum(1) / total
    per_channel = {ch: float(v) for ch, v in zip(ch_names, shares, strict=True)}
    frac_ch = float(data[rows].sum() / total)
    frac_low = frac_joint = low = None
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
    per_class = None
    if epochs is not None:
        _validate_type(saliency, SpectralSaliency, "saliency with epochs")
        rng = check_random_state(random_state)
        per_class = _per_class(
            saliency, epochs, model, y, (rows, low), n_baselines, explain_kw, rng
        )
    calibrated = per_class is not None and "baseline_ratio" in per_class
    if calibrated:
        threshold = RATIO_THRESHOLD if threshold is None else float(threshold)
        flagged = bool(per_class.loc["all", "baseline_ratio"] >= threshold)
    else:
        threshold = 0.15 if threshold is None else float(threshold)
        flagged = bool(fraction >= threshold)
    report = CleverHansReport(
        fraction=fraction,
        fraction_channels=frac_ch,
        fraction_low_freq=frac_low,
        fraction_joint=frac_joint,
        area=area,
        artifact_channels=found,
        low_bands=low_bands,
        threshold=threshold,
        flagged=flagged,
        per_channel=per_channel,
        per_class=per_class,
        calibrated=calibrated,
    )
    logger.info(repr(report))
    return report
