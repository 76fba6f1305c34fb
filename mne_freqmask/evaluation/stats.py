"""Statistics over epochs: reliable cells, confidence intervals, paired tests.

- :func:`cell_permutation_test`: which channel x band (x window) cells are
  reliably salient across epochs or subjects; a sign-flip permutation test of
  the maps minus a baseline, corrected over cells by spatio-spectral(-temporal)
  clusters or by the maximum statistic (:mod:`mne.stats`).
- :func:`bootstrap_ci`: the percentile bootstrap confidence interval, over
  epochs, of the mean of any per-epoch score (a deletion curve's points, its
  area).
- :func:`paired_comparison`: two methods scored on the same epochs; the
  paired bootstrap of the mean difference, with its confidence interval and
  p-value.
"""

import warnings
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from mne.utils import _check_option, _validate_type, check_random_state, verbose

from mne_freqmask._saliency_base import BaseSaliency
from mne_freqmask._saliency_cells import cell_times
from mne_freqmask.evaluation._result import EvaluationResult
from mne_freqmask.utils._docs import fill_doc


@dataclass(repr=False)
class CellTestResult(EvaluationResult):
    """Result of :func:`cell_permutation_test`.

    The cell arrays have shape ``(n_channels, n_bands)``, or ``(n_channels,
    n_bands, n_windows)`` for a :class:`~mne_freqmask.SpectralSaliencyTFR`.

    Attributes
    ----------
    t : ndarray, shape (n_channels, n_bands[, n_windows])
        One-sample t-values of (map - baseline) across observations.
    p_values : ndarray, shape (n_channels, n_bands[, n_windows])
        Corrected p-values: the p-value of the cluster holding the cell (1 for
        cells in no cluster) for ``"cluster"``, the max-t corrected p-value of
        the cell for ``"tmax"``.
    significant : ndarray of bool, shape (n_channels, n_bands[, n_windows])
        ``p_values < alpha``.
    clusters : list of ndarray of bool, shape (n_channels, n_bands[, n_windows])
        The clusters (``"cluster"`` only).
    cluster_p_values : ndarray
        One p-value per cluster (``"cluster"`` only).
    correction : str
        ``"cluster"`` or ``"tmax"``.
    n_observations : int
        Number of maps tested (epochs or groups).
    ch_names, band_names : list of str
        Rows and columns.
    alpha : float
        The significance level.
    times : ndarray, shape (n_windows,) | None
        Centre of each window in seconds (time-resolved maps; else None).
    absolute : bool
        Whether the magnitude of the maps was tested (see
        :func:`cell_permutation_test`).
    """

    t: np.ndarray
    p_values: np.ndarray
    significant: np.ndarray
    correction: str
    n_observations: int
    ch_names: list
    band_names: list
    alpha: float
    clusters: list = field(default_factory=list)
    cluster_p_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    times: np.ndarray | None = None
    absolute: bool = False

    @property
    def verdict(self):
        """How many cells are reliably salient, in words."""
        return (
            f"{int(self.significant.sum())}/{self.significant.size} cells "
            f"significant at {self.alpha} ({self.correction}, "
            f"{self.n_observations} observations)"
        )

    @property
    def passed(self):
        """True when at least one cell is significant."""
        return bool(self.significant.any())

    def to_data_frame(self):
        """One row per cell.

        Returns
        -------
        df : pandas.DataFrame
            Columns ``channel``, ``band``, (time-resolved maps: ``time``, the
            window's centre in s,) ``t``, ``p_value`` and ``significant``.
        """
        idx = np.indices(self.t.shape).reshape(self.t.ndim, -1)
        cols = dict(
            channel=np.asarray(self.ch_names)[idx[0]],
            band=np.asarray(self.band_names)[idx[1]],
        )
        if self.times is not None:
            cols["time"] = np.asarray(self.times, float)[idx[2]]
        return pd.DataFrame(
            dict(
                cols,
                t=self.t.ravel(),
                p_value=self.p_values.ravel(),
                significant=self.significant.ravel(),
            )
        )

    def cell_label(self, index):
        """Name of one cell, e.g. ``"C4 beta"`` or ``"C4 beta 0.75 s"``.

        Parameters
        ----------
        index : tuple of int
            ``(channel, band)``, or ``(channel, band, window)`` for a
            time-resolved map (an index into ``t``).

        Returns
        -------
        label : str
            The channel, the band and (time-resolved) the window's centre.
        """
        label = f"{self.ch_names[index[0]]} {self.band_names[index[1]]}"
        if self.times is not None:
            label += f" {float(self.times[index[2]]):.2f} s"
        return label


@verbose
@fill_doc
def cell_permutation_test(
    saliency,
    *,
    baseline="median",
    groups=None,
    adjacency="auto",
    threshold=None,
    n_permutations=1024,
    tail=1,
    sigma=1e-3,
    alpha=0.05,
    random_state=0,
    absolute=False,
    verbose=None,
):
    """Which channel x band cells are reliably salient across epochs or subjects.

    Each observation (an epoch's map, or a subject's average map) minus its
    baseline is tested against 0 with a sign-flip permutation test, corrected
    for the many cells either by spatio-spectral clusters
    (:func:`mne.stats.permutation_cluster_1samp_test`) or by the maximum
    statistic (:func:`mne.stats.permutation_t_test`). A time-resolved map
    (:class:`~mne_freqmask.SpectralSaliencyTFR`) is tested over its channel x
    band x window cells, its clusters also spanning neighbouring windows.

    Parameters
    ----------
    saliency : SpectralSaliency | SpectralSaliencyTFR
        Per-epoch maps.
    baseline : "median" | float | SpectralSaliency | SpectralSaliencyTFR
        What "salient" is compared with. ``"median"`` (default) subtracts
        each map's own median over cells (the removal game's threshold): a
        cell is reliably salient when it beats the typical cell of its map.
        A number is subtracted from every cell. A map of the class of
        ``saliency`` is a null map (e.g. of a randomised model, see
        :func:`cascading_randomization`): a group-level one is subtracted
        from every observation, a per-epoch one with the same epochs epoch by
        epoch (a paired test).
    groups : None | str | array-like
        None: each epoch is one observation. A metadata column name (e.g.
        ``"subject"``) or one label per epoch: the maps are averaged within
        each group first and each group is one observation (subjects as the
        random effect).
    adjacency : "auto" | None | scipy.sparse matrix
        ``"auto"`` (default): clusters over neighbouring channels
        (:func:`mne.channels.find_ch_adjacency` on the saliency's ``info``,
        which needs channel positions) combined with neighbouring bands
        (:func:`mne.stats.combine_adjacency`), and for a time-resolved map
        with neighbouring windows too (``combine_adjacency(n_bands,
        n_windows, ch_adjacency)``, as MNE's frequency x time x channel
        cluster tests). A sparse matrix over the ``n_bands * n_channels``
        cells (band-major, as in :func:`~mne.stats.combine_adjacency`
        ``(n_bands, ch_adjacency)``), or the ``n_bands * n_windows *
        n_channels`` cells of a time-resolved map (``(n_bands, n_windows,
        ch_adjacency)``). None: no clusters; every cell is tested on its own
        with the max-t correction over cells (the permutation distribution of
        the largest t-value, as :func:`mne.stats.permutation_t_test`).
    threshold : float | None
        Cluster-forming t threshold (None: MNE's default, the t quantile for
        p = 0.05 of the chosen tail).
    n_permutations : int
        Number of sign-flip permutations (all of them when there are fewer).
    tail : -1 | 0 | 1
        1 (default): salient means larger than the baseline.
    sigma : float
        "hat" regularisation of the t statistic (Ridgway et al., 2012):
        ``sigma * max(variance)`` is added to every cell's variance, so that
        cells with (nearly) no variance, common in masks saturated at 0 or 1,
        do not get huge t-values (see :func:`mne.stats.ttest_1samp_no_p`).
    alpha : float
        Significance level of ``result.significant`` (see
        :class:`~mne_freqmask.evaluation.CellTestResult`).
    random_state : None | int
        Seed of the permutations.
    absolute : bool
        Test the magnitude of the maps (``np.abs``, before the baseline is
        subtracted; a null map's magnitude too). For signed maps (LRP,
        gradients), whose sign says *for* or *against* the explained class:
        a cell the model relies on may carry evidence for the class in some
        epochs and against it in others (when the explained class differs
        between epochs, or when a fixed ``target`` is explained on epochs of
        every class), so its signed values cancel across epochs and the
        default one-sided test of the signed values (``tail=1``: larger than
        the baseline) finds nothing there. Default False (the values as they
        are).
    %(verbose)s

    Returns
    -------
    result : CellTestResult
        The t-values, corrected p-values and clusters per cell.
    """
    import mne

    kinds = BaseSaliency
    _validate_type(saliency, kinds, "saliency", "SpectralSaliency[TFR]")
    if saliency.level != "instance":
        raise TypeError(
            "cell_permutation_test needs per-epoch saliency, but this one is group "
            f"level ({saliency.dims}); use the output of explain() before "
            ".average()."
        )
    _validate_type(absolute, bool, "absolute")
    data = saliency.get_data().astype(np.float64)
    if absolute:
        data = np.abs(data)
    cells = data.shape[1:]  # (n_channels, n_bands[, n_windows])
    if isinstance(baseline, str):
        _check_option("baseline", baseline, ("median",))
        axes = tuple(range(1, data.ndim))
        data = data - np.median(data, axis=axes, keepdims=True)
    elif isinstance(baseline, kinds):
        null = baseline.get_data().astype(np.float64)
        if type(baseline) is not type(saliency) or null.shape[-len(cells) :] != cells:
            raise ValueError(
                f"The null map ({type(baseline).__name__}) has cells of shape "
                f"{null.shape[1 if baseline.level == 'instance' else 0 :]}, the "
                f"saliency ({type(saliency).__name__}) {cells}; give a null map "
                "on the same cells (the same channels, bands and windows)."
            )
        if baseline.level == "instance" and len(null) != len(data):
            raise ValueError(
                "A per-epoch null map needs as many epochs as the saliency; "
                "average it first (baseline.average())."
            )
        data = data - (np.abs(null) if absolute else null)
    else:
        _validate_type(
            baseline, "numeric", "baseline", '"median", float or SpectralSaliency'
        )
        data = data - float(baseline)
    if groups is not None:
        if isinstance(groups, str):
            if saliency.metadata is None or groups not in saliency.metadata:
                raise ValueError(
                    f"groups={groups!r} is not a metadata column of the saliency."
                )
            groups = saliency.metadata[groups].to_numpy()
        groups = np.asarray(groups)
        if groups.shape != (len(data),):
            raise ValueError(
                f"groups must have one entry per epoch ({len(data)}), got shape "
                f"{groups.shape}."
            )
        data = np.stack([data[groups == g].mean(0) for g in np.unique(groups)])
    n_obs = len(data)
    if n_obs < 2:
        raise ValueError(f"The test needs at least 2 observations, got {n_obs}.")
    # channels last: (n_obs, n_bands[, n_windows], n_channels), the order of
    # combine_adjacency(n_bands[, n_windows], ch_adjacency)
    x = np.moveaxis(data, 1, -1)
    lattice = x.shape[1:-1]
    seed = (
        None
        if random_state is None
        else int(check_random_state(random_state).randint(0, 2**31 - 1))
    )
    common = dict(
        t=None,
        correction=None,
        n_observations=n_obs,
        ch_names=saliency.ch_names,
        band_names=saliency.band_names,
        alpha=float(alpha),
        times=cell_times(saliency),
        absolute=absolute,
    )
    stat_fun = partial(mne.stats.ttest_1samp_no_p, sigma=sigma)
    if adjacency is None:
        # every cell its own cluster, formed at t > 0: the cluster-level
        # correction is then the max-t correction over cells
        adjacency, threshold, correction = False, 0.0, "tmax"
    else:
        correction = "cluster"
        if threshold is None:  # MNE's default, computed here for the hat t
            from scipy.stats import t as t_dist

            threshold = float(-t_dist.ppf(0.05 / (1 + (tail == 0)), n_obs - 1))
            threshold = -threshold if tail < 0 else threshold
        if isinstance(adjacency, str):
            _check_option("adjacency", adjacency, ("auto",))
            try:
                with mne.utils.use_log_level("warning"):  # no Delaunay log
                    ch_adj, _ = mne.channels.find_ch_adjacency(
                        saliency.info, ch_type=None
                    )
            except Exception as exp:
                raise ValueError(
                    "Could not find a channel adjacency for the saliency's "
                    f"channels ({exp}); set a montage, give adjacency=, or use "
                    "adjacency=None for the max-t test without clusters."
                ) from exp
            # neighbouring bands (and windows): lattices, as MNE's frequency x
            # time x channel tests. Adjacency decides which supra-threshold
            # cells pool into one cluster, not the validity of the sign-flip
            # null, so neighbouring (overlapping) windows are sound neighbours
            adjacency = mne.stats.combine_adjacency(*lattice, ch_adj)
        n_cells = x[0].size
        if adjacency.shape != (n_cells, n_cells):
            raise ValueError(
                f"adjacency must be {n_cells} x {n_cells} (the cells, ordered as "
                f"combine_adjacency{tuple(lattice) + ('ch_adjacency',)}), got "
                f"{adjacency.shape}."
            )
    # flattened band-major: a full adjacency needs 1-D observations. A cell
    # that is the same in every observation (a constant map) has t = 0 / 0:
    # NaN, never significant; and no cluster at all is a result (reported as
    # 0 significant cells), not something to warn about. buffer_size=None:
    # the t-test with sigma is not computed cell by cell.
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No clusters found")
        t, clusters, cluster_p, _ = mne.stats.permutation_cluster_1samp_test(
            x.reshape(n_obs, -1),
            threshold=threshold,
            n_permutations=n_permutations,
            tail=tail,
            stat_fun=stat_fun,
            adjacency=adjacency,
            out_type="mask",
            rng=seed,
            buffer_size=None,
            verbose=False,
        )
    shape = x.shape[1:]
    t = t.reshape(shape)
    masks = []
    for c in clusters:  # boolean masks, or index tuples without adjacency
        mask = np.zeros(x[0].size, bool)
        mask[c] = True
        masks.append(mask.reshape(shape))
    p = np.ones(shape)
    for mask, cp in zip(masks, cluster_p, strict=True):
        p[mask] = np.minimum(p[mask], cp)

    def back(a):  # channels first again
        return np.moveaxis(a, -1, 0)

    common.update(t=back(t), correction=correction)
    return CellTestResult(
        p_values=back(p),
        significant=back(p) < alpha,
        clusters=[back(c) for c in masks] if correction == "cluster" else [],
        cluster_p_values=np.asarray(cluster_p if correction == "cluster" else []),
        **common,
    )


def _check_boot(n_boot, ci):
    _validate_type(n_boot, "int-like", "n_boot")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}.")
    _validate_type(ci, "numeric", "ci")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), e.g. 0.95, got {ci}.")
    return int(n_boot), float(ci)


def _as_scores(scores, name):
    scores = np.asarray(scores, float)
    if scores.ndim == 0 or len(scores) < 2:
        raise ValueError(
            f"{name} needs one score per epoch along its first axis (at least "
            f"2 epochs), got shape {scores.shape}."
        )
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} holds NaN or infinite scores.")
    return scores


def _boot_means(scores, n_boot, random_state):
    """Means of ``n_boot`` resamples of the epochs (first axis), jointly."""
    rng = check_random_state(random_state)
    n = len(scores)
    means = np.empty((n_boot,) + scores.shape[1:])
    for start in range(0, n_boot, 256):  # bounded memory for long curves
        idx = rng.randint(0, n, (min(256, n_boot - start), n))
        means[start : start + len(idx)] = scores[idx].mean(1)
    return means


@fill_doc
def bootstrap_ci(scores, *, n_boot=1000, ci=0.95, random_state=0):
    """Mean of per-epoch scores and its percentile bootstrap interval.

    The epochs are resampled with replacement ``n_boot`` times and the mean is
    taken on each resample; the interval spans the central ``ci`` of those
    means (the percentile bootstrap, Efron & Tibshirani, 1993). Trailing axes
    (e.g. the points of a curve) are resampled together, epoch by epoch.

    Parameters
    ----------
    scores : array-like, shape (n_epochs, ...)
        One score (or one row of scores) per epoch, e.g. the true-class
        probability after a removal, or 0/1 for a correct prediction.
    n_boot : int
        Number of bootstrap resamples.
    ci : float
        Coverage of the interval (0.95: the 2.5 and 97.5 percentiles).
    %(boot_random_state)s

    Returns
    -------
    mean, low, high : float | ndarray, shape (...)
        The mean over epochs and the interval's bounds.

    Notes
    -----
    The interval is over the epochs only: anything fixed before the scores
    were computed (a group map ranked once, the model) is held fixed. It
    narrows as ``1 / sqrt(n_epochs)``.
    """
    n_boot, ci = _check_boot(n_boot, ci)
    scores = _as_scores(scores, "scores")
    means = _boot_means(scores, n_boot, random_state)
    alpha = (1 - ci) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], axis=0)
    mean = scores.mean(0)
    if mean.ndim == 0:
        return float(mean), float(low), float(high)
    return mean, low, high


@fill_doc
def paired_comparison(scores_a, scores_b, *, n_boot=1000, ci=0.95, random_state=0):
    """Compare two methods scored on the same epochs (paired bootstrap).

    The per-epoch differences ``scores_a - scores_b`` are resampled over
    epochs; the interval is the percentile bootstrap interval of their mean,
    and the two-sided p-value that of the null "mean difference 0", from the
    bootstrap distribution shifted to mean 0 (Efron & Tibshirani, 1993,
    §16.4): the share of shifted resamples at least as far from 0 as the
    observed mean.

    Parameters
    ----------
    scores_a, scores_b : array-like, shape (n_epochs,)
        One score per epoch for each method, the same epochs in the same
        order (e.g. the per-epoch MoRF areas of two maps, see
        :func:`~mne_freqmask.evaluation.deletion_curves` with
        ``return_epoch_scores=True``).
    n_boot : int
        Number of bootstrap resamples.
    ci : float
        Coverage of the interval.
    %(boot_random_state)s

    Returns
    -------
    result : pandas.Series
        ``difference`` (mean of a - b), ``ci_low``, ``ci_high``, ``p_value``
        (two-sided, at least ``1 / (n_boot + 1)``; 1 when every difference is
        0), ``n_epochs``, ``mean_a`` and ``mean_b``.
    """
    n_boot, ci = _check_boot(n_boot, ci)
    a = _as_scores(scores_a, "scores_a")
    b = _as_scores(scores_b, "scores_b")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            "scores_a and scores_b must hold one score per epoch for the same "
            f"epochs, got shapes {a.shape} and {b.shape}."
        )
    diff = a - b
    means = _boot_means(diff, n_boot, random_state)
    alpha = (1 - ci) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    observed = float(diff.mean())
    extreme = np.abs(means - observed) >= abs(observed) - 1e-12
    p_value = (1 + int(extreme.sum())) / (n_boot + 1)
    return pd.Series(
        dict(
            difference=observed,
            ci_low=float(low),
            ci_high=float(high),
            p_value=float(min(p_value, 1.0)),
            n_epochs=len(diff),
            mean_a=float(a.mean()),
            mean_b=float(b.mean()),
        )
    )
