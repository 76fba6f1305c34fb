"""The counterfactual Clever-Hans test: does the model need the suspected cells?

An attribution map says where a model *looks*; only the model can say what it
*needs*. :func:`clever_hans_test` removes the suspected channel x band cells
(frontal channels at low frequencies, where eye movements live, by default)
from the spectrum of held-out epochs, and, separately, as many control cells
of the same bands on other channels with about the same band power; it
compares the model's accuracy and true-class probability on the three
versions, epoch by epoch, with bootstrap intervals. A model that relies on
the suspected cells loses more when they are removed than when the controls
are.
"""

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mne import BaseEpochs
from mne._fiff.pick import _picks_to_idx
from mne.utils import (
    _check_option,
    _validate_type,
    check_random_state,
    logger,
    verbose,
    warn,
)

from mne_freqmask._inputs import _ready_epochs
from mne_freqmask._torch_utils import model_context, predict, resolve_device
from mne_freqmask.evaluation._common import (
    _check_chance,
    _check_model,
    _chunks,
    _labels,
    _source,
)
from mne_freqmask.evaluation.removal import remove_cells
from mne_freqmask.evaluation.stats import bootstrap_ci
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._docs import fill_doc
from mne_freqmask.utils._metrics import softmax

#: Frontal channels (10-05 names, case-insensitive): the frontal-polar,
#: anterior-frontal and frontal rows (``Fp1``, ``Fpz``, ``Fp2``, ``AF*``,
#: ``F1``-``F10``, ``Fz``), the channels most exposed to eye movements and
#: blinks; ``FC*`` and ``FT*`` are not counted.
FRONTAL_PATTERN = r"^(FP[0-9Z]+|AF[0-9Z]+|F[0-9Z]+)$"

#: Default suspected band: delta, from DC to 4 Hz.
LOW_BANDS = {"delta": (0.0, 4.0)}

#: Default minimum effect: the suspected cells' removal must lower the mean
#: true-class probability by at least this much more than the controls'.
MIN_EFFECT = 0.1


def frontal_channels(ch_names):
    """Return the frontal channels of a list of names.

    Parameters
    ----------
    ch_names : list of str
        Channel names.

    Returns
    -------
    frontal : list of str
        The names matching ``FRONTAL_PATTERN`` (``Fp*``, ``AF*``, ``F*``
        but not ``FC*`` / ``FT*``), in the order given.
    """
    pattern = re.compile(FRONTAL_PATTERN, re.IGNORECASE)
    return [ch for ch in ch_names if pattern.match(ch)]


def _as_bands(bands):
    if isinstance(bands, tuple | list) and len(bands) == 2:
        if all(isinstance(b, int | float | np.number) for b in bands):
            lo, hi = (float(b) for b in bands)
            return {f"{lo:g}-{hi:g} Hz": (lo, hi)}
    _validate_type(bands, dict, "bands", "dict of name -> (fmin, fmax), or a pair")
    return dict(bands)


def _find_channels(names, ch_names, what):
    upper = {ch.upper(): ch for ch in ch_names}
    found = [upper[ch.upper()] for ch in names if ch.upper() in upper]
    if not found:
        raise ValueError(
            f"None of the {what} {list(names)[:10]} is in the data (channels: "
            f"{list(ch_names)[:10]}...); pass channels=."
        )
    return found


def _band_power(src, grid, picks):
    """Mean power of each (picked channel, band) over the epochs."""
    total = np.zeros((len(picks), grid.n_bands))
    for _, xb in _chunks(src):
        spec = np.abs(np.fft.rfft(xb[:, picks].astype(np.float64), axis=-1)) ** 2
        total += grid.collapse(spec).sum(0)
    return total / len(src)


def _match_controls(power, suspect_rows, control, rng):
    """Control rows per band: same count, other channels, nearest log power."""
    n_ch, n_bands = power.shape
    cells = np.zeros((n_ch, n_bands), bool)
    logp = np.log(np.maximum(power, np.finfo(float).tiny))
    free = np.flatnonzero(~suspect_rows)
    susp = np.flatnonzero(suspect_rows)
    if len(free) < len(susp):
        warn(
            f"Only {len(free)} channels are left for {len(susp)} suspected "
            "channels: the controls are fewer than the suspected cells."
        )
    for bi in range(n_bands):
        if control == "random":
            pick = rng.permutation(free)[: len(susp)]
        else:  # greedy: the strongest suspected channel is matched first
            pick, avail = [], list(free)
            for si in susp[np.argsort(-logp[susp, bi], kind="stable")]:
                if not avail:
                    break
                j = int(np.argmin(np.abs(logp[avail, bi] - logp[si, bi])))
                pick.append(avail.pop(j))
        cells[pick, bi] = True
    return cells


def _donors(n, n_ref, same, rng):
    if not same:
        return rng.randint(0, n_ref, n)
    if n_ref < 2:
        raise ValueError('removal="reference" needs at least 2 epochs.')
    return (np.arange(n) + rng.randint(1, n_ref, n)) % n_ref


@dataclass
class CleverHansTest:
    """Result of :func:`clever_hans_test`.

    Parameters
    ----------
    verdict : str
        One line: ``"relies on the suspected cells"``, ``"no reliance on the
        suspected cells"`` (the excess drop's interval lies below
        ``min_effect``) or ``"inconclusive"``, with the numbers.
    relies : bool
        True when the excess drop exceeds 0 beyond its interval (its lower
        bound is above 0) and is at least ``min_effect``.
    excess_drop : float
        Mean over epochs of the true-class probability with the controls
        removed minus that with the suspected cells removed (how much more
        the suspected cells' removal costs).
    excess_ci : tuple of float
        Its paired bootstrap interval.
    min_effect : float
        The minimum excess drop for the verdict.
    scores : pandas.DataFrame
        Rows ``original``, ``suspected`` and ``control`` (cells removed);
        columns ``accuracy`` and ``probability`` (mean true-class
        probability), their intervals, and ``probability_change`` /
        ``accuracy_change`` (minus the original) with intervals.
    channels : list of str
        The suspected channels.
    control_channels : dict
        Band name -> list of control channels.
    bands : dict
        Band name -> (fmin, fmax) in Hz.
    power_ratio : dict
        Band name -> mean band power of the control cells over that of the
        suspected cells (1 is a perfect match).
    n_epochs : int
        Epochs tested.
    chance : float
        Accuracy of always predicting the most frequent class.
    """

    verdict: str
    relies: bool
    excess_drop: float
    excess_ci: tuple
    min_effect: float
    scores: pd.DataFrame = field(repr=False)
    channels: list = field(repr=False)
    control_channels: dict = field(repr=False)
    bands: dict = field(repr=False)
    power_ratio: dict = field(repr=False)
    n_epochs: int = 0
    chance: float = 0.5

    def __repr__(self):
        s = self.scores
        dp, da = s["probability_change"], s["accuracy_change"]
        lo, hi = s["probability_change_ci_low"], s["probability_change_ci_high"]
        return (
            f"<CleverHansTest | {self.verdict} | true-class probability "
            f"{dp['suspected']:+.2f} [{lo['suspected']:+.2f}, "
            f"{hi['suspected']:+.2f}] without {', '.join(self.channels[:4])}"
            f"{'...' if len(self.channels) > 4 else ''} "
            f"({', '.join(self.bands)}), {dp['control']:+.2f} "
            f"[{lo['control']:+.2f}, {hi['control']:+.2f}] without controls; "
            f"accuracy {s.loc['original', 'accuracy']:.2f} "
            f"({da['suspected']:+.2f} / {da['control']:+.2f}); "
            f"{self.n_epochs} epochs>"
        )


@verbose
@fill_doc
def clever_hans_test(
    epochs,
    model,
    *,
    channels=None,
    bands=None,
    control="matched",
    removal="zero",
    reference=None,
    min_effect=MIN_EFFECT,
    y=None,
    n_boot=1000,
    ci=0.95,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Test whether a model relies on suspected channel x band cells.

    The suspected cells (by default the frontal channels from DC to 4 Hz,
    where eye movements and blinks live) are removed from the rfft spectrum of
    every epoch (:func:`~mne_freqmask.evaluation.remove_cells`), and so,
    separately, are control cells: for each band, as many other channels, each
    matched to a suspected channel by its band power (``control="matched"``).
    The model's true-class probability and accuracy on the original and the
    two removed versions are compared epoch by epoch. A model that relies on
    the suspected cells (a "Clever Hans" that reads eye movements instead of
    motor cortex) loses much more without them than without the controls; a
    model that does not loses about as little either way.

    Parameters
    ----------
    epochs : mne.Epochs
        Held-out epochs (not used to train the model), with their class
        events. Epochs the model was trained on can be classified from cues
        that do not generalise.
    %(model)s
    channels : list of str | None
        Suspected channels (case-insensitive; those absent are ignored).
        ``None``: the frontal channels (:func:`frontal_channels`: ``Fp*``,
        ``AF*``, ``F*``).
    bands : dict | tuple | None
        Suspected band(s): a dict of name -> ``(fmin, fmax)`` in Hz, or one
        ``(fmin, fmax)`` pair. ``None``: ``{"delta": (0.0, 4.0)}``. Every
        suspected channel is removed in every band.
    control : "matched" | "random"
        How the control channels of each band are chosen among the
        non-suspected ones: ``"matched"`` (default) pairs each suspected
        channel with the free channel whose band power (mean over the epochs)
        is closest on a log scale; ``"random"`` draws them at random.
    removal : "zero" | "reference"
        ``"zero"`` (default) zeroes the removed cells' rfft coefficients;
        ``"reference"`` replaces them by those of another epoch (of
        ``reference``, or of ``epochs`` but never the epoch itself), which
        keeps the data closer to the model's training distribution.
    reference : mne.Epochs | None
        Epochs lending their cells with ``removal="reference"`` (same
        channels, sampling rate and duration).
    min_effect : float
        Minimum excess drop of the mean true-class probability for the
        verdict "relies". The default, 0.1, was measured with
        ShallowFBCSPNet and ``removal="zero"`` on held-out epochs: clean
        models gave excess drops of -0.00 to +0.02 on simulated data (alpha
        on C3/C4, 5 seeds, 32 epochs each) and -0.19 to +0.01 on EEGBCI fists
        vs feet (3 seeds, 36 epochs); models trained with a planted
        class-correlated frontal 1-3 Hz artefact +0.26 to +0.39 (simulated)
        and +0.26 to +0.46 (EEGBCI), each with an interval above 0. The
        issue's EEGConformers gave -0.09 to +0.04 (clean) and 0.25 to 0.51.
    %(y)s
    n_boot : int
        Bootstrap resamples of the epochs for the intervals (paired: the same
        resampled epochs for the three versions).
    ci : float
        Coverage of the intervals.
    random_state : None | int | instance of ~numpy.random.RandomState
        Seed of the bootstrap, the reference epochs and random controls.
    %(device)s
    %(verbose)s

    Returns
    -------
    result : CleverHansTest
        The verdict, the excess drop with its interval and the table of
        accuracies and probabilities (``result.scores``).

    See Also
    --------
    mne_freqmask.evaluation.clever_hans_report
        The attribution share on artefact cells: a screening figure, not a
        test.

    Notes
    -----
    The model is never modified (it runs in eval mode, its flags restored).
    Removing cells changes the data, so both drops include some
    out-of-distribution cost; the matched controls carry the same cost,
    which is why the verdict rests on the difference. Warns when the model
    is at chance on the epochs (one-sided binomial test at 0.05).
    """
    _validate_type(epochs, BaseEpochs, "epochs", "mne.Epochs")
    model = _check_model(model)
    _check_option("control", control, ("matched", "random"))
    _check_option("removal", removal, ("zero", "reference"))
    _validate_type(min_effect, "numeric", "min_effect")
    bands = _as_bands(LOW_BANDS if bands is None else bands)
    epochs = _ready_epochs(epochs)
    src = _source(epochs)
    labels = _labels(epochs, y, model, device, src)
    picks = _picks_to_idx(epochs.info, "data", exclude=())
    ch_names = [epochs.ch_names[i] for i in picks]
    if channels is None:
        channels = frontal_channels(ch_names)
        if not channels:
            raise ValueError(
                f"No frontal channel (Fp*, AF*, F*) in the data ({ch_names[:10]}"
                "...); pass channels=."
            )
    else:
        _validate_type(channels, (list, tuple), "channels", "list of str")
        channels = _find_channels(channels, ch_names, "suspected channels")
    grid = FrequencyGrid(epochs.info["sfreq"], src.shape[-1], bands)
    rng = check_random_state(random_state)
    suspect_rows = np.isin(ch_names, channels)
    suspect = np.repeat(suspect_rows[:, None], grid.n_bands, axis=1)
    power = _band_power(src, grid, picks)
    ctrl = _match_controls(power, suspect_rows, control, rng)
    if removal == "reference":
        ref = src if reference is None else _source(reference, "reference")
        if reference is not None and (
            ref.shape[1:] != src.shape[1:] or reference.ch_names != epochs.ch_names
        ):
            raise ValueError("reference must have the channels and samples of epochs.")
        donors = _donors(len(src), len(ref), reference is None, rng)
    dev = resolve_device(device, model)
    names = ("original", "suspected", "control")
    prob = {k: np.empty(len(src)) for k in names}
    correct = {k: np.empty(len(src)) for k in names}
    with model_context(model, dev):
        for sl, xb in _chunks(src):
            fill = None
            if removal == "reference":
                uniq, inv = np.unique(donors[sl], return_inverse=True)
                fill = ref[uniq][inv]
            yb = labels[sl]
            for name, keep in (
                ("original", None),
                ("suspected", ~suspect),
                ("control", ~ctrl),
            ):
                xr = xb
                if keep is not None:
                    xr = remove_cells(xb, keep, grid, picks, dev, fill=fill)
                logits = predict(model, xr, dev)
                prob[name][sl] = softmax(logits)[np.arange(len(yb)), yb]
                correct[name][sl] = logits.argmax(1) == yb
    n_classes = int(max(labels.max() + 1, 2))
    chance = _check_chance(correct["original"], labels, n_classes)
    cols = [correct[k] for k in names] + [prob[k] for k in names]
    cols += [correct[k] - correct["original"] for k in names[1:]]
    cols += [prob[k] - prob["original"] for k in names[1:]]
    cols.append(prob["control"] - prob["suspected"])
    table = np.column_stack(cols)
    if len(src) > 1:
        mean, low, high = bootstrap_ci(table, n_boot=n_boot, ci=ci, random_state=rng)
    else:
        nan = np.full(len(cols), np.nan)
        mean, low, high = table[0], nan, nan
    scores = pd.DataFrame(index=pd.Index(names, name="removed"))
    for j, col in enumerate(("accuracy", "probability")):
        sl = slice(3 * j, 3 * j + 3)
        scores[col] = mean[sl]
        scores[f"{col}_ci_low"] = low[sl]
        scores[f"{col}_ci_high"] = high[sl]
    for j, col in enumerate(("accuracy_change", "probability_change")):
        sl = slice(6 + 2 * j, 8 + 2 * j)
        scores[col] = np.r_[0.0, mean[sl]]
        scores[f"{col}_ci_low"] = np.r_[0.0, low[sl]]
        scores[f"{col}_ci_high"] = np.r_[0.0, high[sl]]
    excess, ex_lo, ex_hi = float(mean[-1]), float(low[-1]), float(high[-1])
    relies = bool(ex_lo > 0 and excess >= min_effect)
    numbers = (
        f"excess drop of the true-class probability {excess:+.2f} "
        f"[{ex_lo:+.2f}, {ex_hi:+.2f}], minimum effect {min_effect:g}"
    )
    if relies:
        verdict = f"relies on the suspected cells ({numbers})"
    elif ex_hi < min_effect:
        verdict = f"no reliance on the suspected cells ({numbers})"
    else:
        verdict = f"inconclusive ({numbers})"
    band_names = list(grid.band_names)
    control_channels = {
        b: [ch_names[i] for i in np.flatnonzero(ctrl[:, bi])]
        for bi, b in enumerate(band_names)
    }
    power_ratio = {
        b: float(power[ctrl[:, bi], bi].mean() / power[suspect_rows, bi].mean())
        for bi, b in enumerate(band_names)
    }
    result = CleverHansTest(
        verdict=verdict,
        relies=relies,
        excess_drop=excess,
        excess_ci=(ex_lo, ex_hi),
        min_effect=float(min_effect),
        scores=scores,
        channels=list(channels),
        control_channels=control_channels,
        bands=grid.bands,
        power_ratio=power_ratio,
        n_epochs=len(src),
        chance=chance,
    )
    logger.info(repr(result))
    return result
