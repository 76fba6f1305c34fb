"""One call that checks an explanation: :func:`check_explanation`.

The package has the pieces (deletion curves against a random map, the
model-randomisation sanity check, the cell permutation test); a user who
wants to know whether to trust a map should not have to assemble them. This
module runs them on the epochs the map explains (held-out epochs: a check on
the training epochs says little) and gives one verdict per check:

- ``accuracy``: is the model above chance on these epochs at all? A model at
  chance explains nothing, and every other verdict is then moot.
- ``morf`` / ``lerf``: do the cells the map ranks first matter more to the
  model than randomly ranked cells (deletion, most relevant first), and those
  it ranks last less (least relevant first)? Paired against a random map on
  the same epochs, with a bootstrap interval.
- ``randomization``: does the map change when the model's weights are
  destroyed (Adebayo et al., 2018)? A map that does not explains the input,
  not the model.
- ``cells``: is any channel x band cell reliably salient across epochs (or
  groups), by the sign-flip permutation test?

A time-resolved map (:class:`~mne_freqmask.SpectralSaliencyTFR`) is checked
the same way over its channel x band x window cells, on its own windows.
"""

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pandas as pd
from mne.utils import _validate_type, logger, verbose

from mne_freqmask._inputs import _ready_epochs
from mne_freqmask._saliency_base import BaseSaliency
from mne_freqmask._saliency_cells import cell_windows
from mne_freqmask._saliency_utils import steps_summary
from mne_freqmask.evaluation._checks import _CHECK_FUNCS, _explain_kw
from mne_freqmask.evaluation._common import (
    _check_explain_kw,
    _check_grid,
    _check_model,
    _group_codes,
    _scored_y,
)
from mne_freqmask.evaluation._result import EvaluationResult
from mne_freqmask.utils._docs import fill_doc

#: the checks :func:`check_explanation` can run, in the order it runs them
CHECKS = ("accuracy", "deletion", "randomization", "cells")

#: verdicts: the check is passed, failed, or undecided (a tie / not run)
VERDICTS = ("pass", "fail", "tie", "skipped")


@dataclass
class ExplanationCheck(EvaluationResult):
    """Result of :func:`check_explanation`.

    Attributes
    ----------
    checks : pandas.DataFrame
        One row per check (index: its name), with columns ``verdict``
        (``"pass"``, ``"fail"``, ``"tie"`` or ``"skipped"``), ``value``,
        ``ci_low``, ``ci_high`` (its interval, NaN when it has none),
        ``reference`` (what the value is compared with) and ``line`` (the
        one-line verdict in words).
    n_epochs : int
        Number of epochs checked.
    n_groups : int
        Number of independent units resampled (groups, or epochs).
    accuracy, chance : float
        The model's accuracy on the epochs and the chance level (the share
        of the most frequent class).
    timings : dict
        Seconds spent per stage.
    steps : str
        The optimiser's step counts and stop reasons (FreqMask), e.g.
        ``"steps: median 60 (max 100); stopped: converged 40, cap 0, first
        allowed step 0"``, or ``""``.
    time_windows : tuple of float | None
        ``(length, step)`` in seconds of the windows of a time-resolved map
        (its cells are channel x band x window); None for a whole-epoch map.
    details : dict
        What each check returned (``"deletion"``: the table of
        :func:`compare_methods`; ``"randomization"``: per-epoch rank
        correlations; ``"cells"``: the
        :class:`~mne_freqmask.evaluation.CellTestResult`).
    """

    checks: pd.DataFrame
    n_epochs: int
    n_groups: int
    accuracy: float
    chance: float
    method: str
    timings: dict = field(default_factory=dict)
    steps: str = ""
    details: dict = field(default_factory=dict)
    time_windows: tuple | None = None

    _table = "checks"

    @property
    def verdict(self):
        """``"N pass, N fail, N tie"``: the count of each verdict."""
        counts = self.checks["verdict"].value_counts()
        return ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS[:3])

    @property
    def verdicts(self):
        """``{check: verdict}``."""
        return self.checks["verdict"].to_dict()

    @property
    def passed(self):
        """True when no check failed or tied (skipped checks are ignored)."""
        v = self.checks["verdict"]
        return bool(((v == "pass") | (v == "skipped")).all())

    def lines(self):
        """Return the verdicts, one line each.

        Returns
        -------
        lines : list of str
            The head line (epochs, accuracy, chance), the step counts when
            known, and one line per check.
        """
        head = (
            f"Check of a {self.method} explanation"
            + (
                ""
                if self.time_windows is None
                else " in time (channel x band x window cells, "
                f"{self.time_windows[0]:g} s windows every "
                f"{self.time_windows[1]:g} s)"
            )
            + f" on {self.n_epochs} epochs"
            + (f" ({self.n_groups} groups)" if self.n_groups != self.n_epochs else "")
            + f": accuracy {self.accuracy:.2f} (chance {self.chance:.2f})"
        )
        out = [head]
        if self.steps:
            out.append(f"  {self.steps}")
        for name, row in self.checks.iterrows():
            out.append(f"  {name:<13} {row['verdict'].upper():<7} {row['line']}")
        return out

    def __repr__(self):
        return (
            f"<ExplanationCheck | {self.method}, {self.n_epochs} epochs, "
            f"{self.verdict}>"
        )

    def __str__(self):
        return "\n".join(self.lines())

    def to_html(self):
        """An HTML table of the verdicts (e.g. for :meth:`mne.Report.add_html`).

        Returns
        -------
        html : str
            The head line, the step counts and one row per check.
        """
        from html import escape

        lines = self.lines()
        rows = "".join(
            f"<tr><td>{escape(str(name))}</td><td><b>{escape(row['verdict'])}</b>"
            f"</td><td>{escape(row['line'])}</td></tr>"
            for name, row in self.checks.iterrows()
        )
        steps = f"<p>{escape(self.steps)}</p>" if self.steps else ""
        times = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        return (
            f"<p>{escape(lines[0])}</p>{steps}<table><tr><th>check</th>"
            f"<th>verdict</th><th>result</th></tr>{rows}</table>"
            f"<p>Time: {escape(times)}</p>"
        )


@verbose
@fill_doc
def check_explanation(
    epochs,
    model,
    saliency,
    *,
    checks=CHECKS,
    operator="reference",
    y=None,
    reference=None,
    groups=None,
    max_similarity=0.5,
    explain_kw=None,
    n_boot=1000,
    ci=0.95,
    alpha=0.05,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Check an explanation: above chance, faithful, and about the model.

    Runs, on the epochs that ``saliency`` explains, the checks a reader
    needs before trusting a map, and gives each a verdict: ``"pass"``,
    ``"fail"``, or ``"tie"`` (the interval includes the reference: the data
    cannot tell). Use held-out epochs: on the training epochs a model can be
    right for reasons it would not generalise.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    saliency : SpectralSaliency | SpectralSaliencyTFR
        The per-epoch map of ``model`` on ``epochs`` (any method), whole-epoch
        or time-resolved (``explain(..., time_windows=...)``: checked over its
        channel x band x window cells, on its own windows).
    checks : tuple of str
        Which of ``"accuracy"``, ``"deletion"``, ``"randomization"`` and
        ``"cells"`` to run (default: all; see Notes).
        ``"randomization"`` explains the epochs once more, so it costs as
        much as the explanation itself.
    operator : "reference" | "zero"
        How the deletion curves remove a cell (see
        :func:`~mne_freqmask.evaluation.deletion_curves`). ``"reference"``
        (default) fills it with another epoch's cell, which stays in the
        data's distribution; ``"zero"`` rewards maps whose cells are merely
        out of distribution once removed.
    %(y_scored)s
        With ``"explained"`` the deletion checks score the class the map
        explains; the accuracy is on the labels of the events.
    %(eval_reference)s
    groups : None | str | array-like, shape (n_epochs,)
        Epochs that are not independent (crops of one trial, epochs of one
        subject) share a group: intervals resample whole groups and the
        cell test has one observation per group. A str names a metadata
        column.
    max_similarity : float
        The randomisation check passes when the upper end of the interval
        of the per-epoch Spearman correlation between the map and the map of
        the fully randomised model is below this value (default 0.5), and
        fails when its lower end is above.
    %(explain_kw)s
        None (default): the parameters stored in ``saliency.method_params``
        that :func:`~mne_freqmask.explain` takes (an amortised map does not
        hold its explainer: pass ``explain_kw=dict(explainer=explainer,
        bands=explainer.grid.bands, picks=explainer.picks)``).
        For a time-resolved map ``time_windows`` is the map's own (other
        windows are refused).
    %(eval_boot)s
    alpha : float
        Significance level of the cell permutation test.
    random_state : None | int
        Seed of the random map, the reference draws, the bootstrap, the
        re-initialisation and the permutations.
    %(device)s
    %(verbose)s

    Returns
    -------
    result : ExplanationCheck
        One verdict per check (``print(result)`` shows them one per line;
        ``result.to_html()`` for a report), timings and the details.

    See Also
    --------
    compare_methods, cascading_randomization, cell_permutation_test

    Notes
    -----
    - **accuracy**: the model's accuracy on ``epochs`` with its bootstrap
      interval, against chance (the share of the most frequent class). Pass
      when the interval is above chance.
    - **morf**, **lerf** (``"deletion"``): the areas under the deletion
      curves of :func:`compare_methods` for the map ranked per epoch, paired
      with a uniform random map on the same epochs (same reference draws).
      ``morf`` passes when removing the top-ranked cells first lowers the
      true-class probability more than random ranks do (the interval of the
      difference below 0); ``lerf`` when removing the bottom-ranked cells
      first lowers it less (above 0). Failing is the interval on the wrong
      side.
    - **randomization**: every layer with parameters is re-initialised at
      once (on a copy) and the epochs are explained again with the same
      method, parameters (and windows) (Adebayo et al., 2018); the value is
      the mean per-epoch Spearman correlation over all the cells. An
      amortised map (``method="freqmask_amortised"``) comes from an explainer
      that never calls the model, so re-explaining with the same explainer
      would compare it with itself: a fresh explainer with the same settings
      (network, loss, bands, channels and fit parameters) is fitted on the
      randomised model, on ``epochs`` (the explainer's own training epochs
      are not known here), and explains them.
    - **cells**: :func:`cell_permutation_test` of each map against its own
      median (clusters over neighbouring channels and bands, and for a
      time-resolved map neighbouring windows, when the channels have
      positions; max-t otherwise). Pass when at least one cell is
      significant at ``alpha``; the strongest cells are named (a
      time-resolved one with its window's centre, e.g. ``"C4 beta 0.75
      s"``). Strongest means the largest t-value, i.e. the most reliable
      across epochs, not the largest mean: a cell the model uses in a
      subset of the epochs only (an artefact present in one class) has a
      large mean but a wide spread, and can rank below weaker cells that
      are present in every epoch. A **signed** map (one holding a negative value: LRP,
      gradients) is tested on its magnitude (``absolute=True``): a cell
      the model relies on carries evidence for the explained class in some
      epochs and against it in others (a fixed ``target`` explained on
      epochs of both classes; real blinks in the clean class of an
      artefact model), and its signed values then cancel across epochs,
      so that the one-sided test of the signed values finds no cell at
      all. The line also gives the count of the signed test
      (``details["cells_signed"]``): cells whose evidence is *for* the
      explained class consistently across epochs.

    For a time-resolved map the random control of ``morf`` / ``lerf`` is a
    random map on the same channel x band x window cells, and the cells are
    removed in the short-time Fourier transform of the map's windows (see
    :func:`~mne_freqmask.evaluation.remove_cells`).

    A pass is not a proof: the removal checks ask whether the model's
    output depends on the ranked cells, on these epochs and for this
    removal. A ``tie`` with few epochs often turns into a verdict with more.

    References
    ----------
    Adebayo, J. et al. (2018). Sanity checks for saliency maps. NeurIPS.
    """
    _validate_type(
        saliency,
        BaseSaliency,
        "saliency",
        "SpectralSaliency or SpectralSaliencyTFR",
    )
    _validate_type(checks, (tuple, list), "checks")
    for c in checks:
        if c not in CHECKS:
            raise ValueError(f"Unknown check {c!r}; choose among {CHECKS}.")
    if saliency.level != "instance":
        raise ValueError(
            "saliency must hold one map per epoch (pass the map before .average())."
        )
    _check_grid(saliency)
    _validate_type(max_similarity, "numeric", "max_similarity")
    epochs = _ready_epochs(epochs)
    if len(saliency) != len(epochs):
        raise ValueError(
            f"saliency holds {len(saliency)} maps and epochs {len(epochs)}; "
            "check the map on the epochs it explains."
        )
    model = _check_model(model)
    _validate_type(explain_kw, (dict, None), "explain_kw")
    _check_explain_kw(explain_kw)
    _scored_y(saliency, y, len(epochs))  # y="explained": the map's record
    ctx = SimpleNamespace(
        epochs=epochs,
        model=model,
        saliency=saliency,
        operator=operator,
        y=y,
        reference=reference,
        groups=groups,
        codes=_group_codes(epochs, groups),
        max_similarity=max_similarity,
        kw=_explain_kw(saliency, explain_kw),
        n_boot=n_boot,
        ci=ci,
        alpha=alpha,
        random_state=random_state,
        device=device,
    )
    timings, details, rows = {}, {}, {}
    # accuracy always runs: the head line and every verdict rest on it
    for name in ("accuracy",) + tuple(c for c in CHECKS[1:] if c in checks):
        start = time.perf_counter()
        new_rows, new_details = _CHECK_FUNCS[name](ctx)
        timings[name] = time.perf_counter() - start
        if name in checks:
            rows.update(new_rows)
        details.update(new_details)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "check"
    result = ExplanationCheck(
        checks=table,
        n_epochs=len(epochs),
        n_groups=len(epochs) if ctx.codes is None else int(ctx.codes.max() + 1),
        accuracy=ctx.accuracy,
        chance=ctx.chance,
        method=saliency.method,
        timings=timings,
        steps=steps_summary(saliency.diagnostics) or "",
        details=details,
        time_windows=cell_windows(saliency),
    )
    for line in result.lines():
        logger.info(line)
    return result
