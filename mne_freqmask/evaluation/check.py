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
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from mne.utils import _validate_type, logger, verbose

from mne_freqmask._inputs import _ready_epochs
from mne_freqmask._saliency_utils import steps_summary
from mne_freqmask.evaluation._check_maps import (
    _cells_line,
    _check_grid,
    _check_same_cells,
    _explain_kw,
    _random_like,
    _refit_explainer,
)
from mne_freqmask.evaluation._common import (
    _check_explain_kw,
    _check_model,
    _explain,
    _group_codes,
    _group_means,
    _labels,
    _predictions,
    _source,
)
from mne_freqmask.evaluation.compare import compare_methods
from mne_freqmask.evaluation.sanity import spearman
from mne_freqmask.evaluation.stats import bootstrap_ci, cell_permutation_test
from mne_freqmask.models import parameter_layers, untrained_copy
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.saliency_tfr import SpectralSaliencyTFR
from mne_freqmask.utils._checks import _has_positions
from mne_freqmask.utils._docs import fill_doc
from mne_freqmask.viz import is_signed

#: the checks :func:`check_explanation` can run, in the order it runs them
CHECKS = ("accuracy", "deletion", "randomization", "cells")

#: verdicts: the check is passed, failed, or undecided (a tie / not run)
VERDICTS = ("pass", "fail", "tie", "skipped")


@dataclass
class ExplanationCheck:
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
        counts = self.checks["verdict"].value_counts()
        summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS[:3])
        return f"<ExplanationCheck | {self.method}, {self.n_epochs} epochs, {summary}>"

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


def _interval_verdict(low, high, better):
    """``pass`` if the interval is beyond 0 on the ``better`` side."""
    if better == "below":
        low, high = -high, -low
    if low > 0:
        return "pass"
    if high < 0:
        return "fail"
    return "tie"


def _row(verdict, value, low, high, reference, line):
    return dict(
        verdict=verdict,
        value=float(value),
        ci_low=float(low),
        ci_high=float(high),
        reference=reference,
        line=line,
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
    %(y)s
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
        (SpectralSaliency, SpectralSaliencyTFR),
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
    kw = _explain_kw(saliency, explain_kw)
    codes = _group_codes(epochs, groups)
    n_groups = len(epochs) if codes is None else int(codes.max() + 1)
    timings, details, rows = {}, {}, {}

    # accuracy, against the share of the most frequent class
    start = time.perf_counter()
    src = _source(epochs)
    labels = _labels(epochs, y, model, device, src)
    correct = (_predictions(model, src, device) == labels).astype(float)
    chance = float(np.bincount(labels).max() / len(labels))
    acc, low, high = float(correct.mean()), np.nan, np.nan
    unit = _group_means(correct, codes)
    if n_boot > 0 and len(unit) > 1:
        acc, low, high = bootstrap_ci(unit, n_boot=n_boot, ci=ci, random_state=0)
    timings["accuracy"] = time.perf_counter() - start
    if "accuracy" in checks:
        verdict = "tie" if np.isnan(low) else "pass" if low > chance else "fail"
        if verdict == "pass":
            words = "above chance"
        elif verdict == "tie":
            words = "no interval (n_boot=0 or one epoch): no verdict"
        elif acc <= chance:
            words = (
                "at chance: the map explains a model that has not learnt the "
                "task on these epochs"
            )
        else:  # above chance, but the interval reaches it
            words = (
                "not shown above chance: it could be at chance (the interval "
                f"reaches {chance:.2f}; {len(unit)} "
                f"{'epochs' if codes is None else 'groups'}), so the other "
                "verdicts may be about a model that has not learnt the task; "
                "more held-out epochs would tell"
            )
        rows["accuracy"] = _row(
            verdict,
            acc,
            low,
            high,
            f"chance {chance:.2f}",
            f"accuracy {acc:.2f} [{low:.2f}, {high:.2f}] {words}",
        )

    if "deletion" in checks:
        start = time.perf_counter()
        scores = compare_methods(
            epochs,
            model,
            # the control on the map's own cells (and windows)
            {"map": saliency, "random": _random_like(saliency, random_state)},
            rankings=("instance",),
            operators=(operator,),
            orders=("morf", "lerf"),
            y=y,
            reference=reference,
            groups=groups,
            baseline="random",
            n_boot=max(n_boot, 1),
            ci=ci,
            random_state=random_state,
            device=device,
            verbose=False,
        )
        timings["deletion"] = time.perf_counter() - start
        details["deletion"] = scores
        sel = scores[
            (scores["statistic"] == "area")
            & (scores["metric"] == "probability")
            & (scores["method"] == "map")
        ].set_index("order")
        for order, better, text in (
            ("MoRF", "below", "removing its top cells first"),
            ("LeRF", "above", "removing its bottom cells first"),
        ):
            r = sel.loc[order]
            d, lo, hi = r["difference"], r["diff_ci_low"], r["diff_ci_high"]
            verdict = _interval_verdict(lo, hi, better)
            words = {
                "pass": "beats",
                "fail": "is worse than",
                "tie": "ties with",
            }[verdict]
            rows[order.lower()] = _row(
                verdict,
                d,
                lo,
                hi,
                "random map",
                f"{text} ({operator} removal) {words} a random ranking: area "
                f"{r['score']:.3f} vs {r['score'] - d:.3f}, difference {d:+.3f} "
                f"[{lo:+.3f}, {hi:+.3f}]",
            )

    if "randomization" in checks:
        start = time.perf_counter()
        if not parameter_layers(model):
            raise ValueError("The model has no parameters to randomise.")
        seed = 0 if random_state is None else int(random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rand_model = untrained_copy(model)  # every layer re-initialised
        with warnings.catch_warnings():
            # a randomised model often predicts one class for every epoch:
            # expected here, not the user's model to check
            warnings.filterwarnings(
                "ignore", "The model predicts class", RuntimeWarning
            )
            rand_kw = _refit_explainer(kw, epochs, rand_model, seed, device)
            rand = _explain(
                epochs, rand_model, saliency.method, rand_kw, random_state, device
            )
        _check_same_cells(saliency, rand)
        rho = np.array(
            [
                spearman(a, b)
                for a, b in zip(saliency.get_data(), rand.get_data(), strict=True)
            ]
        )
        details["randomization"] = rho
        unit = _group_means(rho, codes)
        m, lo, hi = float(rho.mean()), np.nan, np.nan
        if n_boot > 0 and len(unit) > 1:
            m, lo, hi = bootstrap_ci(unit, n_boot=n_boot, ci=ci, random_state=0)
        verdict = "tie"
        if hi < max_similarity:
            verdict = "pass"
        elif lo > max_similarity:
            verdict = "fail"
        words = {
            "pass": "the map changes when the model's weights are destroyed",
            "fail": "the map stays alike when the model's weights are destroyed: "
            "it explains the input more than the model",
            "tie": "the map changes only partly when the weights are destroyed",
        }[verdict]
        rows["randomization"] = _row(
            verdict,
            m,
            lo,
            hi,
            f"at most {max_similarity:g}",
            f"Spearman with the randomised model's map {m:.2f} [{lo:.2f}, "
            f"{hi:.2f}]: {words}",
        )
        timings["randomization"] = time.perf_counter() - start

    if "cells" in checks:
        start = time.perf_counter()
        adjacency = "auto" if _has_positions(saliency.info) else None
        cell_kw = dict(
            groups=groups,
            adjacency=adjacency,
            alpha=alpha,
            random_state=random_state,
            verbose=False,
        )
        # a signed map: its magnitude (see Notes); the signed test is kept
        # in the line, so that a reader sees why the two differ
        signed = is_signed(saliency.get_data())
        res = cell_permutation_test(saliency, absolute=signed, **cell_kw)
        details["cells"] = res
        n_sig = int(res.significant.sum())
        verdict = "pass" if n_sig > 0 else "fail"
        line = _cells_line(res)
        if signed:
            res_signed = cell_permutation_test(saliency, **cell_kw)
            details["cells_signed"] = res_signed
            line += (
                f"; signed values: {int(res_signed.significant.sum())} cells "
                "reliably above the median (evidence for the explained class "
                "consistently across epochs)"
            )
        rows["cells"] = _row(verdict, n_sig, np.nan, np.nan, "at least one cell", line)
        timings["cells"] = time.perf_counter() - start

    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "check"
    result = ExplanationCheck(
        checks=table,
        n_epochs=len(epochs),
        n_groups=n_groups,
        accuracy=float(correct.mean()),
        chance=chance,
        method=saliency.method,
        timings=timings,
        steps=steps_summary(saliency.diagnostics) or "",
        details=details,
        time_windows=None
        if not isinstance(saliency, SpectralSaliencyTFR)
        else tuple(saliency.time_windows),
    )
    for line in result.lines():
        logger.info(line)
    return result
