"""The counterfactual Clever-Hans test: does the model need the suspected cells?

An attribution map says where a model *looks*; only the model can say what it
*needs*. :func:`clever_hans_test` removes the suspected channel x band cells
(frontal channels at low frequencies, where eye movements live, by default)
from the spectrum of held-out epochs, and, separately, as many control cells
of the same bands on other channels with about the same band power; it
compares the model's accuracy and true-class probability on the three
versions, epoch by epoch, with bootstrap intervals, pooled and per class. A
model that relies on the suspected cells loses more when they are removed
than when the controls are. The controls are never the suspects' spatial
neighbours (which may carry a signal the model contrasts with the suspects),
and the verdict "no reliance" needs both removals to cost little.
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
)

from mne_freqmask._inputs import _ready_epochs
from mne_freqmask.evaluation._clever_hans_rules import (
    _control_pool,
    _cost,
    _match_controls,
    _overall,
    _summary,
    _unit_verdict,
)
from mne_freqmask.evaluation._common import (
    _cell_power,
    _chance_test,
    _check_chance,
    _check_model,
    _draw_donors,
    _find_channels,
    _group_codes,
    _labels,
    _reference_source,
    _source,
)
from mne_freqmask.evaluation._engine import run_removals
from mne_freqmask.evaluation._result import EvaluationResult
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._docs import fill_doc
from mne_freqmask.utils._moments import RunningMoments

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


@dataclass
class CleverHansTest(EvaluationResult):
    """Result of :func:`clever_hans_test`.

    Parameters
    ----------
    verdict : str
        One line: ``"relies on the suspected cells"`` (naming the class when
        not all classes rely), ``"no reliance on the suspected cells"`` or
        ``"inconclusive: ..."`` with the reason (the model is at chance, the
        controls are not neutral, removing the suspect cells alone costs too
        much to rule reliance out, or the interval is too wide), with the
        numbers. See :func:`clever_hans_test` for the rules.
    relies : bool
        True when the pooled epochs or the epochs of one class rely (the
        excess drop exceeds 0 beyond its interval and is at least
        ``min_effect``) and the model is above chance.
    excess_drop : float
        Pooled mean over epochs of the true-class probability with the
        controls removed minus that with the suspected cells removed (how
        much more the suspected cells' removal costs).
    excess_ci : tuple of float
        Its paired bootstrap interval.
    min_effect : float
        The minimum excess drop for "relies", and the largest cost of either
        removal (upper bound of its interval) that "no reliance" allows.
    scores : pandas.DataFrame
        Rows indexed by ``(class, removed)``: ``class`` is ``"all"`` (the
        pooled epochs) then each class name, ``removed`` is ``original``,
        ``suspected`` and ``control`` (cells removed); columns ``accuracy``
        and ``probability`` (mean true-class probability), their intervals,
        ``probability_change`` / ``accuracy_change`` (minus the original)
        with intervals, and ``n_units`` (epochs, or groups with ``groups``).
        ``scores.loc["all"]`` is the pooled table.
    per_class : pandas.DataFrame
        One row per ``"all"`` and class: ``state`` (``"relies"``, ``"no
        reliance"``, ``"inconclusive"``), ``excess_drop`` with
        ``excess_ci_low`` / ``excess_ci_high``, ``suspect_drop`` and
        ``control_drop`` (the drops of the mean true-class probability, > 0
        is a loss) with their intervals, and ``verdict`` (the reasons).
    relies_classes : list of str
        The classes whose epochs rely on the suspected cells.
    channels : list of str
        The suspected channels.
    control_channels : dict
        Band name -> list of control channels.
    neighbours : list of str
        The suspects' neighbours in the montage, never used as controls.
    bands : dict
        Band name -> (fmin, fmax) in Hz.
    power_ratio : dict
        Band name -> mean band power of the control cells over that of the
        suspected cells (1 is a perfect match).
    n_epochs : int
        Epochs tested.
    n_groups : int
        Units resampled by the bootstrap (groups, or epochs).
    chance : float
        Accuracy of always predicting the most frequent class.
    at_chance : bool
        Whether the model is at chance on the epochs (one-sided binomial
        test at 0.05); the verdict is then "inconclusive".
    """

    verdict: str
    relies: bool
    excess_drop: float
    excess_ci: tuple
    min_effect: float
    scores: pd.DataFrame = field(repr=False)
    per_class: pd.DataFrame = field(repr=False)
    relies_classes: list = field(repr=False)
    channels: list = field(repr=False)
    control_channels: dict = field(repr=False)
    neighbours: list = field(repr=False)
    bands: dict = field(repr=False)
    power_ratio: dict = field(repr=False)
    n_epochs: int = 0
    n_groups: int = 0
    chance: float = 0.5
    at_chance: bool = False

    @property
    def passed(self):
        """True for a conclusive "no reliance on the suspected cells"."""
        return self.verdict.startswith("no reliance")

    def __repr__(self):
        s = self.scores.loc["all"]
        dp, da = s["probability_change"], s["accuracy_change"]
        lo, hi = s["probability_change_ci_low"], s["probability_change_ci_high"]
        groups = f" ({self.n_groups} groups)" if self.n_groups != self.n_epochs else ""
        return (
            f"<CleverHansTest | {self.verdict} | true-class probability "
            f"{dp['suspected']:+.2f} [{lo['suspected']:+.2f}, "
            f"{hi['suspected']:+.2f}] without {', '.join(self.channels[:4])}"
            f"{'...' if len(self.channels) > 4 else ''} "
            f"({', '.join(self.bands)}), {dp['control']:+.2f} "
            f"[{lo['control']:+.2f}, {hi['control']:+.2f}] without controls; "
            f"accuracy {s.loc['original', 'accuracy']:.2f} "
            f"({da['suspected']:+.2f} / {da['control']:+.2f}); "
            f"{self.n_epochs} epochs{groups}>"
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
    groups=None,
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
    separately, are control cells: for each band, as many channels far from
    the suspects, each matched to a suspected channel by its band power
    (``control="matched"``). The model's true-class probability and accuracy
    on the original and the two removed versions are compared epoch by
    epoch, pooled and class by class. A model that relies on the suspected
    cells (a "Clever Hans" that reads eye movements instead of motor cortex)
    loses much more without them than without the controls; a model that
    does not loses little either way.

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
        How the control channels of each band are chosen. They are never a
        suspect's neighbour in the montage (:func:`mne.channels.find_ch_adjacency`),
        and are drawn from the ``2 n`` channels farthest from the suspects
        (``n`` suspects; sensor positions): ``"matched"`` (default) pairs
        each suspected channel with the pool channel whose band power (mean
        over the epochs) is closest on a log scale; ``"random"`` draws them
        at random from the pool.
    removal : "zero" | "reference"
        ``"zero"`` (default) zeroes the removed cells' rfft coefficients;
        ``"reference"`` replaces them by those of another epoch (of
        ``reference``, or of ``epochs`` but never the epoch itself), which
        keeps the data closer to the model's training distribution.
    reference : mne.Epochs | None
        Epochs lending their cells with ``removal="reference"`` (same
        channels, sampling rate and duration).
    min_effect : float
        The effect size of the verdict, on the mean true-class probability:
        the minimum excess drop for "relies", and the largest drop (upper
        bound of its interval) that "no reliance" allows for the suspect
        cells' and for the controls' removal. The default, 0.1, was measured
        with ShallowFBCSPNet and ``removal="zero"`` on held-out epochs:
        clean models gave excess drops of -0.00 to +0.02 on simulated data
        (alpha on C3/C4, 5 seeds, 32 epochs each) and -0.19 to +0.01 on
        EEGBCI fists vs feet (3 seeds, 36 epochs); models trained with a
        planted class-correlated frontal 1-3 Hz artefact +0.26 to +0.39
        (simulated) and +0.26 to +0.46 (EEGBCI), each with an interval above
        0 (these figures predate the distant controls).
    %(y)s
    groups : str | array-like | None
        Group of each epoch (a metadata column such as ``"trial"`` or
        ``"subject"``, or one label per epoch): epochs that are not
        independent (overlapping windows of one trial, epochs of one
        subject) share a group, and the bootstrap resamples whole groups (the
        mean of each group is one unit, as in
        :func:`~mne_freqmask.evaluation.compare_methods`). ``None``
        (default): each epoch is its own unit.
    n_boot : int
        Bootstrap resamples of the epochs (or groups) for the intervals
        (paired: the same resampled units for the three versions).
    ci : float
        Coverage of the pooled intervals; the per-class intervals have a
        Bonferroni-corrected coverage ``1 - (1 - ci) / n_classes``, so that
        testing every class does not multiply the false "relies".
    random_state : None | int | instance of ~numpy.random.RandomState
        Seed of the bootstrap, the reference epochs and random controls.
    %(device)s
    %(verbose)s

    Returns
    -------
    result : CleverHansTest
        The verdict, the excess drop with its interval, the per-class
        verdicts (``result.per_class``) and the table of accuracies and
        probabilities (``result.scores``, per class and pooled).

    See Also
    --------
    mne_freqmask.evaluation.clever_hans_report
        The attribution share on artefact cells: a screening figure, not a
        test.

    Notes
    -----
    The verdict, in order:

    1. **At chance** (accuracy not above the larger class's share, one-sided
       binomial test at 0.05): ``"inconclusive: the model is at chance"``,
       and, when the model predicts one class for every epoch and the data
       look like volts, the input-scale hint of :func:`mne_freqmask.explain`
       (a model trained on microvolts needs
       :class:`~mne_freqmask.models.InputScaler`). A model that has learnt
       nothing needs nothing.
    2. **Relies**: the excess drop (controls' removal minus suspects') of the
       pooled epochs is above 0 beyond its interval and at least
       ``min_effect``; or that of the epochs of one class is, and the pooled
       excess is above 0. An artefact planted in one class costs only that
       class's epochs (the others, which lack it, may even gain: without the
       artefact every epoch looks like theirs); pooled, its drop is diluted,
       so each class is tested too and the verdict names the classes that
       rely (``result.relies_classes``). A class whose excess passes while
       the pooled excess is not above 0 gives "inconclusive: ... the other
       classes gain as much": the removal only moved the predictions from
       one class to another (seen on weak clean models whose output shifts
       when slow frontal activity is removed).
    3. **No reliance**: only when, pooled, the upper bounds of the suspect
       cells' drop, the controls' drop and the excess drop all lie below
       ``min_effect``, and no class's suspect drop reaches ``min_effect``.
       So "no reliance" is impossible while removing the suspect cells alone
       costs ``min_effect`` or more (or may, within its interval).
    4. Otherwise **inconclusive**, with the reason: ``"removing the suspect
       cells alone costs X [lo, hi]; the controls cost as much"`` (the model
       needs the suspect cells, but as much as cells far from them: a model
       fragile to any removal, or one that reads a contrast between the
       suspects and the controls), ``"the controls are not neutral"``
       (removing them alone costs that much, so they are no baseline), or
       an interval too wide.

    The controls are never the suspects' neighbours: a model that reads a
    spatial contrast (a planted frontal deflection against real blinks on
    the neighbouring channels) loses as much when the neighbours are
    removed as when the suspects are, and neighbouring controls hid such
    models (excess +0.03 while the suspects' removal cost 0.39).

    The model is never modified (it runs in eval mode, its flags restored).
    Removing cells changes the data, so both drops include some
    out-of-distribution cost; the matched controls carry the same cost,
    which is why "relies" rests on the difference. Warns when the model is
    at chance on the epochs.
    """
    from mne_freqmask._explain import _units_hint
    from mne_freqmask.evaluation._common import _class_names

    _validate_type(epochs, BaseEpochs, "epochs", "mne.Epochs")
    model = _check_model(model)
    _check_option("control", control, ("matched", "random"))
    _check_option("removal", removal, ("zero", "reference"))
    _validate_type(min_effect, "numeric", "min_effect")
    bands = _as_bands(LOW_BANDS if bands is None else bands)
    epochs = _ready_epochs(epochs)
    codes = _group_codes(epochs, groups)
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
    moments = RunningMoments(axis=(0, 1, 2))  # the data's scale, for the hint
    power = _cell_power(src, grid, picks, moments=moments)
    scale = float(moments.std.squeeze())
    pool, neighbours = _control_pool(epochs.info, picks, suspect_rows)
    ctrl = _match_controls(power, suspect_rows, pool, control, rng)
    fill = None
    if removal == "reference":
        ref = _reference_source(reference, src, epochs)
        fill = (ref, _draw_donors(len(src), len(ref), ref is src, rng, "removal"))
    removed = (("original", None), ("suspected", ~suspect), ("control", ~ctrl))
    pred, prob = run_removals(
        src,
        model,
        lambda sl: removed,
        grid,
        picks,
        labels=labels,
        fill=fill,
        device=device,
    )
    correct = {k: (v == labels).astype(float) for k, v in pred.items()}
    prob = {k: v.astype(float) for k, v in prob.items()}
    predicted = pred["original"]
    n_classes = int(max(labels.max() + 1, 2))
    chance = _check_chance(correct["original"], labels, n_classes)
    _, p_chance = _chance_test(correct["original"], labels, n_classes)
    at_chance = p_chance > 0.05
    # pooled, then each class (Bonferroni-corrected coverage)
    names = {idx: name for name, idx in _class_names(epochs, labels).items()}
    present = np.unique(labels)
    ci_class = 1 - (1 - ci) / len(present)
    units = {"all": np.ones(len(labels), bool)}
    units.update({str(names.get(int(c), c)): labels == c for c in present})
    frames, rows = {}, {}
    for unit, sel in units.items():
        frame, excess = _summary(
            {k: v[sel] for k, v in correct.items()},
            {k: v[sel] for k, v in prob.items()},
            None if codes is None else codes[sel],
            n_boot,
            ci if unit == "all" else ci_class,
            rng,
        )
        state, text = _unit_verdict(frame, excess, min_effect)
        sus, ctl = _cost(frame, "suspected"), _cost(frame, "control")
        frames[unit] = frame
        rows[unit] = dict(
            state=state,
            excess_drop=excess[0],
            excess_ci_low=excess[1],
            excess_ci_high=excess[2],
            suspect_drop=sus[0],
            suspect_ci_low=sus[1],
            suspect_ci_high=sus[2],
            control_drop=ctl[0],
            control_ci_low=ctl[1],
            control_ci_high=ctl[2],
            n_epochs=int(sel.sum()),
            verdict=text,
        )
    per_class = pd.DataFrame.from_dict(rows, orient="index")
    scores = pd.concat(frames, names=["class", "removed"])
    verdict, relies, relying = _overall(per_class, min_effect, at_chance)
    if at_chance:
        acc = float(correct["original"].mean())
        # explain's hint, where explain gives it: one class for every epoch
        one = len(np.unique(predicted)) == 1
        hint = (
            f" It predicts class {int(predicted[0])} for every epoch."
            + _units_hint(scale, model)
            if one
            else ""
        )
        verdict = (
            f"inconclusive: the model is at chance (accuracy {acc:.2f}, chance "
            f"{chance:.2f}, binomial p={p_chance:.2f}, {len(labels)} epochs); a "
            f"model that has learnt nothing needs nothing.{hint}"
        )
    band_names = list(grid.band_names)
    control_channels = {
        b: [ch_names[i] for i in np.flatnonzero(ctrl[:, bi])]
        for bi, b in enumerate(band_names)
    }
    power_ratio = {
        b: float(power[ctrl[:, bi], bi].mean() / power[suspect_rows, bi].mean())
        for bi, b in enumerate(band_names)
    }
    ex = per_class.loc["all"]
    result = CleverHansTest(
        verdict=verdict,
        relies=relies,
        excess_drop=float(ex["excess_drop"]),
        excess_ci=(float(ex["excess_ci_low"]), float(ex["excess_ci_high"])),
        min_effect=float(min_effect),
        scores=scores,
        per_class=per_class,
        relies_classes=relying,
        channels=list(channels),
        control_channels=control_channels,
        neighbours=[ch_names[i] for i in np.flatnonzero(neighbours)],
        bands=grid.bands,
        power_ratio=power_ratio,
        n_epochs=len(src),
        n_groups=len(src) if codes is None else len(np.unique(codes)),
        chance=chance,
        at_chance=bool(at_chance),
    )
    logger.info(repr(result))
    return result
