"""The explanation next to CSP-LDA, band by band.

Common spatial patterns (CSP) on band-limited epochs, followed by linear
discriminant analysis (LDA), is the classical, physiologically understood
decoder of motor imagery. :func:`csp_comparison` fits it in every band the
explanation is compared in and puts, for each band, side by side: the share
of the explanation's relevance in the band, the cross-validated accuracy of
CSP-LDA there, the model's accuracy, and the correlation between the CSP
patterns' channel weights and the explanation's channel profile in the band.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mne import BaseEpochs, pick_info
from mne.utils import _validate_type, logger, verbose

from mne_freqmask._inputs import epochs_labels
from mne_freqmask.evaluation._common import (
    _check_model,
    _group_codes,
    _labels,
)
from mne_freqmask.evaluation._engine import _accuracy
from mne_freqmask.evaluation._maps import _band_overlap, _channel_band_map
from mne_freqmask.evaluation._result import EvaluationResult
from mne_freqmask.utils._docs import fill_doc


def _peaks(profile, ch_names, n=3):
    order = np.argsort(-np.asarray(profile), kind="stable")[:n]
    return ", ".join(ch_names[i] for i in order)


@dataclass(repr=False)
class CSPComparison(EvaluationResult):
    """Result of :func:`csp_comparison`.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per compared band (index: band name). Columns: ``fmin``,
        ``fmax`` (the band CSP was fitted on, in Hz), ``relevance_share``
        (share of the explanation's absolute relevance, summed over channels,
        that lies in the band; NaN for time-domain relevance),
        ``csp_lda_accuracy`` and ``csp_lda_std`` (mean and standard deviation
        over the cross-validation folds), ``chance`` (share of the most
        frequent class), ``model_accuracy`` (the model's accuracy on the
        epochs; NaN without ``model``), ``correlation`` (Pearson) and
        ``spearman`` between the CSP channel profile and the explanation's
        channel profile in the band, ``csp_peak`` and ``saliency_peak`` (the
        three channels where each profile is largest).
    csp : dict
        Band name -> the :class:`mne.decoding.CSP` fitted on all epochs in
        that band (``csp[band].plot_patterns(comparison.info, components=[0,
        1])`` draws two patterns).
    csp_profiles : pandas.DataFrame
        Channels x bands: the CSP channel profile of each band (mean over the
        first ``n_patterns`` patterns of their absolute weights, each pattern
        scaled to a maximum of 1), normalised to sum 1.
    saliency_profiles : pandas.DataFrame
        Channels x bands: the explanation's absolute relevance per channel in
        each band (epoch-averaged), normalised to sum 1.
    info : mne.Info
        The compared channels (for topomaps).
    fold_scores : dict
        Band name -> the CSP-LDA accuracy of every fold.
    n_patterns : int
        Patterns that form the CSP profile.
    n_epochs : int
        Epochs compared.
    """

    scores: pd.DataFrame
    csp: dict = field(repr=False)
    csp_profiles: pd.DataFrame = field(repr=False)
    saliency_profiles: pd.DataFrame = field(repr=False)
    info: object = field(repr=False)
    fold_scores: dict = field(repr=False)
    n_patterns: int = 4
    n_epochs: int = 0

    @property
    def verdict(self):
        """The comparison in one line.

        Where CSP-LDA is best, the model's accuracy, where the relevance lies
        and its correlation with CSP there.
        """
        s = self.scores
        best = s["csp_lda_accuracy"].idxmax()
        parts = [
            f"{len(s)} band(s), {self.n_epochs} epochs",
            f"CSP-LDA best in {best}: {s.loc[best, 'csp_lda_accuracy']:.2f} "
            f"(chance {s.loc[best, 'chance']:.2f})",
        ]
        if np.isfinite(s["model_accuracy"]).any():
            parts.append(f"model {s['model_accuracy'].iloc[0]:.2f}")
        if np.isfinite(s["relevance_share"]).any():
            top = s["relevance_share"].idxmax()
            parts.append(
                f"relevance mostly in {top} ({s.loc[top, 'relevance_share']:.2f}), "
                f"r with CSP there {s.loc[top, 'correlation']:+.2f}"
            )
        return " | ".join(parts)

    @property
    def passed(self):
        """Whether the relevance lies mostly where CSP-LDA is best.

        True when the band holding most of the relevance is the band where
        CSP-LDA is most accurate; False for time-domain relevance (no share
        per band).
        """
        share = self.scores["relevance_share"]
        best = self.scores["csp_lda_accuracy"].idxmax()
        return bool(np.isfinite(share).any() and share.idxmax() == best)

    def plot(self, bands=None, *, components=(0, 1), show=True):
        """Plot a few CSP patterns next to both channel profiles, per band.

        One row per band: the CSP patterns ``components`` (signed, as
        :meth:`mne.decoding.CSP.plot_patterns` draws them), the CSP channel
        profile and the explanation's channel profile (both absolute).

        Parameters
        ----------
        bands : str | list of str | None
            Bands (rows) to draw. ``None`` (default): the band where CSP-LDA
            is most accurate and the band holding most relevance (one row
            when they are the same).
        components : list of int
            CSP components to draw in each row (default the first two).
        show : bool
            Show the figure.

        Returns
        -------
        fig : instance of matplotlib.figure.Figure
            The figure.
        """
        import matplotlib.pyplot as plt
        from mne.viz import plot_topomap
        from mne.viz.utils import plt_show

        s = self.scores
        if bands is None:
            bands = [s["csp_lda_accuracy"].idxmax()]
            if np.isfinite(s["relevance_share"]).any():
                bands.append(s["relevance_share"].idxmax())
            bands = list(dict.fromkeys(bands))
        elif isinstance(bands, str):
            bands = [bands]
        unknown = [b for b in bands if b not in s.index]
        if unknown:
            raise ValueError(f"Bands {unknown} were not compared; use {list(s.index)}.")
        components = [int(c) for c in components]
        n_ch = len(self.info.ch_names)
        if any(not 0 <= c < n_ch for c in components):
            raise ValueError(f"components must lie in [0, {n_ch - 1}].")
        n_col = len(components) + 2
        fig, axes = plt.subplots(
            len(bands),
            n_col,
            figsize=(1.9 * n_col + 0.6, 2.1 * len(bands)),
            squeeze=False,
            layout="constrained",
        )
        for row, band in zip(axes, bands, strict=True):
            self.csp[band].plot_patterns(
                self.info,
                components=components,
                axes=list(row[: len(components)]),
                colorbar=False,
                show=False,
            )
            for ax, comp in zip(row, components, strict=False):
                ax.set_title(f"{band}\nCSP pattern {comp}", fontsize=9)
            r = s.loc[band, "correlation"]
            for ax, prof, title in (
                (row[-2], self.csp_profiles[band], "|CSP patterns|"),
                (row[-1], self.saliency_profiles[band], f"|relevance|, r={r:+.2f}"),
            ):
                plot_topomap(
                    prof.to_numpy(), self.info, axes=ax, cmap="Reds", show=False
                )
                ax.set_title(title, fontsize=9)
        plt_show(show)
        return fig


def _parse_bands(bands, edges, names):
    """``{name: (fmin, fmax)}`` from the user's bands or the saliency's."""
    if bands is None:
        if edges is None:
            raise ValueError(
                "Time-domain relevance has no bands; pass bands= (a dict of "
                "name -> (fmin, fmax), or one (fmin, fmax) pair)."
            )
        return {n: tuple(map(float, e)) for n, e in zip(names, edges, strict=True)}
    if isinstance(bands, tuple) and len(bands) == 2:
        if all(isinstance(b, int | float | np.number) for b in bands):
            lo, hi = (float(b) for b in bands)
            return {f"{lo:g}-{hi:g} Hz": (lo, hi)}
    if isinstance(bands, str):
        bands = [bands]
    if isinstance(bands, list | tuple):
        if edges is None:
            raise ValueError("Band names need a SpectralSaliency; pass a dict.")
        unknown = [b for b in bands if b not in names]
        if unknown:
            raise ValueError(f"Bands {unknown} are not in the saliency ({names}).")
        return {b: tuple(map(float, edges[names.index(b)])) for b in bands}
    _validate_type(bands, dict, "bands", "None, dict, list of band names, or a pair")
    out = {}
    for name, (lo, hi) in bands.items():
        if not 0 <= float(lo) < float(hi):
            raise ValueError(f"Band {name!r} needs 0 <= fmin < fmax, got {lo, hi}.")
        out[str(name)] = (float(lo), float(hi))
    return out


def _passband(bands, info, user):
    """Clip the bands to the data's filter range; drop those mostly outside."""
    lo_pass = float(info["highpass"] or 0.0)
    hi_pass = min(float(info["lowpass"]), info["sfreq"] / 2.0)
    out = {}
    for name, (lo, hi) in bands.items():
        clo, chi = max(lo, lo_pass), min(hi, hi_pass)
        if chi - clo >= 0.5 * (hi - lo):
            out[name] = (clo, chi)
        elif user:
            raise ValueError(
                f"Band {name!r} ({lo:g}-{hi:g} Hz) lies mostly outside the data's "
                f"filter range ({lo_pass:g}-{hi_pass:g} Hz)."
            )
        else:
            logger.info(f"Band {name!r} left out: outside {lo_pass:g}-{hi_pass:g} Hz.")
    if not out:
        raise ValueError(
            f"No band lies within the data's filter range ({lo_pass:g}-"
            f"{hi_pass:g} Hz); pass bands=."
        )
    return out


def _band_limited(x, sfreq, lo, hi):
    """Keep the rfft bins ``lo <= f < hi`` (``f <= hi`` at Nyquist), not DC."""
    n_times = x.shape[-1]
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    keep = (freqs >= lo) & ((freqs < hi) | (hi >= freqs[-1])) & (freqs > 0)
    if keep.sum() < 1:
        raise ValueError(
            f"The band {lo:g}-{hi:g} Hz holds no rfft bin of the epochs "
            f"(resolution {freqs[1]:g} Hz); widen it."
        )
    spec = np.fft.rfft(x, axis=-1)
    spec[..., ~keep] = 0
    return np.fft.irfft(spec, n=n_times, axis=-1), int(keep.sum())


def _csp_profile(csp, n_patterns):
    pats = np.abs(np.asarray(csp.patterns_, float)[:n_patterns])
    pats /= np.maximum(pats.max(1, keepdims=True), np.finfo(float).tiny)
    prof = pats.mean(0)
    return prof / prof.sum()


@verbose
@fill_doc
def csp_comparison(
    epochs,
    saliency,
    *,
    bands=None,
    model=None,
    y=None,
    groups=None,
    reg="ledoit_wolf",
    n_components=4,
    n_patterns=None,
    cv=5,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Compare an explanation with CSP-LDA, band by band.

    For each compared band, the epochs are band-limited (the rfft bins of
    the band are kept, the others and DC zeroed: the bins a channel x band
    cell of the explanation holds), a regularised CSP (:class:`mne.decoding.CSP`,
    log-variance features) followed by LDA is cross-validated on them, and
    CSP is fitted once more on all epochs for its patterns. Each band's row
    then holds:

    - ``relevance_share``: how much of the explanation's relevance is in the
      band (so that a comparison on a band that holds 3 percent of it is read as
      such);
    - ``csp_lda_accuracy`` next to ``chance`` and the model's
      ``model_accuracy``: how much a classical decoder finds in the band,
      compared with what the model achieves;
    - ``correlation`` / ``spearman``: whether the explanation's channel
      profile in the band follows the CSP patterns' channel weights.

    Parameters
    ----------
    epochs : mne.Epochs
        The epochs the explanation was computed on (held-out epochs of the
        model, with their class events); never modified. CSP-LDA is
        cross-validated on them.
    saliency : SpectralSaliency | mne.Epochs | mne.Evoked
        The explanation; its absolute value is averaged over epochs. A
        SpectralSaliency gives one channel profile per band (a band that
        partly overlaps the saliency's bands takes each overlapping band in
        proportion to the overlap); time-domain relevance (e.g. from
        :func:`mne_freqmask.lrp.compute_relevance`) one profile for all
        bands, summed over time.
    bands : None | dict | list of str | tuple of float
        The bands to compare. ``None`` (default): every band of the saliency
        that lies within the data's filter range (``info["highpass"]`` to
        ``info["lowpass"]`` and Nyquist; a band at least half inside is
        clipped to it). A dict maps names to ``(fmin, fmax)`` in Hz, a list
        picks bands of the saliency by name, a pair is one band.
    model : torch.nn.Module | None
        The explained model; when given, its accuracy on ``epochs`` fills
        ``model_accuracy`` (else NaN). It is not changed.
    %(y)s
    groups : str | array-like | None
        Group of each epoch (a metadata column such as ``"trial"`` or
        ``"subject"``, or one label per epoch): the cross-validation keeps
        each group in one fold (scikit-learn's ``StratifiedGroupKFold``),
        so that crops of one trial are never in both the training and the
        test fold. ``None`` (default): epochs are independent
        (``StratifiedKFold``).
    reg : float | str | None
        Regularisation of the CSP covariances, passed to
        :class:`mne.decoding.CSP`: a shrinkage in [0, 1], a method such as
        ``"ledoit_wolf"`` (default) or ``"oas"``, or None (none; unstable
        with many channels and few epochs).
    n_components : int
        CSP components fed to LDA.
    n_patterns : int | None
        First patterns (in CSP's order, most discriminative first) whose
        absolute channel weights form the CSP channel profile; at most
        ``n_components``. ``None`` (default): all ``n_components``, the
        patterns LDA uses. CSP's order is itself estimated and unstable with
        few epochs: on 90 EEGBCI windows with a planted frontal artefact, the
        artefact's patterns came third and fourth, behind two that a clean
        copy of the data gave as well.
    cv : int
        Folds of the stratified cross-validation of CSP-LDA.
    random_state : int | None
        Seed of the fold split.
    %(device)s
    %(verbose)s

    Returns
    -------
    comparison : CSPComparison
        ``comparison.scores`` is the table (one row per band);
        ``comparison.plot()`` draws two CSP patterns and both profiles for
        the best CSP band and the band with most relevance.

    Notes
    -----
    **What r means.** ``correlation`` is the Pearson correlation, over the
    channels, between the absolute weights of the first ``n_patterns`` CSP
    patterns (each scaled to a maximum of 1, then averaged) and the
    explanation's epoch-averaged absolute relevance per channel in the band.
    A high r says that the channels where the explanation puts relevance are
    the channels onto which the most discriminative CSP sources project.

    **Its limits.** A pattern says how strongly a source *projects* onto each
    channel, not where the class information is; volume conduction spreads
    it over neighbours, and strong non-discriminative signals (eye movements
    on frontal channels) shape patterns too, so CSP patterns can peak away
    from C3 / C4 (``csp_peak`` names where). Signs are dropped, so a source
    and its opposite look alike. The channels are spatially correlated, so r
    has far fewer degrees of freedom than channels and no p-value is given;
    r from a band where CSP-LDA is at chance, or that holds little of the
    relevance, compares two noisy profiles and means little. A low r does
    not prove the model wrong (it may use a different but real signal, or
    other bands); a high r does not prove it right (an artefact can shape
    both). Read r with ``csp_lda_accuracy`` and ``relevance_share`` of the
    same row, and test reliance on suspect cells with
    :func:`~mne_freqmask.evaluation.clever_hans_test`.

    CSP-LDA is cross-validated within ``epochs``, the model was trained on
    other epochs: the two accuracies are estimates of the same kind (on
    unseen epochs), not on the same split.
    """
    from mne.decoding import CSP
    from scipy.stats import spearmanr
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import (
        StratifiedGroupKFold,
        StratifiedKFold,
        cross_val_score,
    )
    from sklearn.pipeline import make_pipeline

    _validate_type(epochs, BaseEpochs, "epochs", "mne.Epochs")
    _validate_type(reg, (None, "numeric", str), "reg", "float, str or None")
    n_components = int(n_components)
    n_patterns = n_components if n_patterns is None else int(n_patterns)
    if not 1 <= n_patterns <= n_components:
        raise ValueError(
            f"n_patterns must be between 1 and n_components ({n_components}), "
            f"got {n_patterns}."
        )
    data, ch_names, edges = _channel_band_map(saliency, absolute=True)
    names = None if edges is None else list(saliency.band_names)
    user = bands is not None
    bands = _passband(_parse_bands(bands, edges, names), epochs.info, user)
    missing = sorted(set(ch_names) - set(epochs.ch_names))
    if missing:
        raise ValueError(f"Channels {missing} of the saliency are not in epochs.")
    if model is not None:
        model = _check_model(model)
        labels = _labels(epochs, y, model, device)
        model_acc = _accuracy(epochs, model, labels, device)
    else:
        labels = epochs_labels(epochs, y)
        model_acc = np.nan
    chance = float(np.bincount(labels).max() / len(labels))
    picks = [epochs.ch_names.index(ch) for ch in ch_names]
    x = epochs.get_data(picks=picks).astype(np.float64)  # a copy
    sfreq = epochs.info["sfreq"]
    total = data.sum()
    rows, csps, csp_prof, sal_prof, folds_out = [], {}, {}, {}, {}
    codes = _group_codes(epochs, groups)
    if codes is None:
        folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    else:
        folds = StratifiedGroupKFold(cv, shuffle=True, random_state=random_state)
    for name, (lo, hi) in bands.items():
        xb, n_bins = _band_limited(x, sfreq, lo, hi)
        xb /= max(float(xb.std()), np.finfo(float).tiny)  # CSP is scale-free
        if edges is not None:
            weight = _band_overlap(edges, lo, hi)
            if not weight.any():
                raise ValueError(f"No band of the saliency overlaps {lo:g}-{hi:g} Hz.")
            prof = data @ weight
            share = float(prof.sum() / total) if total > 0 else np.nan
        else:
            prof, share = data[:, 0], np.nan
        prof = prof / max(float(prof.sum()), np.finfo(float).tiny)
        kw = dict(n_components=n_components, reg=reg, log=True)
        scores = cross_val_score(
            make_pipeline(CSP(**kw), LinearDiscriminantAnalysis()),
            xb,
            labels,
            groups=codes,
            cv=folds,
        )
        csp = CSP(**kw).fit(xb, labels)
        cprof = _csp_profile(csp, n_patterns)
        r = float(np.corrcoef(cprof, prof)[0, 1]) if np.ptp(prof) > 0 else np.nan
        rho = float(spearmanr(cprof, prof).statistic) if np.ptp(prof) > 0 else np.nan
        rows.append(
            dict(
                band=name,
                fmin=lo,
                fmax=hi,
                n_bins=n_bins,
                relevance_share=share,
                csp_lda_accuracy=float(scores.mean()),
                csp_lda_std=float(scores.std()),
                chance=chance,
                model_accuracy=model_acc,
                correlation=r,
                spearman=rho,
                csp_peak=_peaks(cprof, ch_names),
                saliency_peak=_peaks(prof, ch_names),
            )
        )
        csps[name], csp_prof[name], sal_prof[name] = csp, cprof, prof
        folds_out[name] = scores
        logger.info(
            f"{name} ({lo:g}-{hi:g} Hz): relevance share {share:.2f}, CSP-LDA "
            f"{scores.mean():.2f} (chance {chance:.2f}), r={r:+.2f}, CSP peaks "
            f"{rows[-1]['csp_peak']}."
        )
    return CSPComparison(
        scores=pd.DataFrame(rows).set_index("band"),
        csp=csps,
        csp_profiles=pd.DataFrame(csp_prof, index=ch_names),
        saliency_profiles=pd.DataFrame(sal_prof, index=ch_names),
        info=pick_info(epochs.info, picks),
        fold_scores=folds_out,
        n_patterns=n_patterns,
        n_epochs=len(labels),
    )
