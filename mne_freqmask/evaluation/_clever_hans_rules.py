"""The Clever-Hans test's controls and verdict rules (private).

:func:`~mne_freqmask.evaluation.clever_hans_test` draws its controls and
states its verdicts with these: the control channels (never the suspects'
montage neighbours), the matched control cells, the bootstrap summary of each
removal and the rules that turn the drops into a verdict, per class and
pooled.
"""

import numpy as np
import pandas as pd
from mne.utils import use_log_level, warn

from mne_freqmask.evaluation._common import _group_means
from mne_freqmask.evaluation.stats import bootstrap_ci


def _control_pool(info, picks, suspect_rows):
    """Channels the controls may be drawn from, and the suspects' neighbours.

    The neighbours are the channels adjacent to a suspect in the montage
    (:func:`mne.channels.find_ch_adjacency`: a Delaunay triangulation of the
    sensor layout, or MNE's template where one exists); they are never
    controls, since they may carry a signal correlated with the suspects'
    (a blink spreads over the frontal rows) that the model reads as a
    contrast with them. Of the other channels, the ``2 n`` farthest from the
    suspects (``n`` suspects; Euclidean distance of the sensor positions to
    the nearest suspect) form the pool. Without channel positions the pool is
    every non-suspect channel, with a warning.
    """
    from mne import pick_info
    from mne.channels import find_ch_adjacency

    free = ~suspect_rows
    n_susp = int(suspect_rows.sum())
    pos = np.array([info["chs"][i]["loc"][:3] for i in picks], float)
    known = np.isfinite(pos).all(1) & (np.abs(pos).sum(1) > 0)
    neighbours = np.zeros(len(picks), bool)
    try:
        if not known.all():
            raise ValueError("channel positions missing")
        with use_log_level(False):
            adjacency, _ = find_ch_adjacency(pick_info(info, picks), None)
    except (ValueError, RuntimeError) as err:  # no montage, mixed types, Qhull
        warn(
            f"The suspects' spatial neighbours cannot be found ({err}): the "
            "controls are drawn from every other channel and may include "
            "them. Set a montage (epochs.set_montage) to keep the controls "
            "away from the suspects."
        )
        return free, neighbours
    adjacency = adjacency.toarray().astype(bool)
    neighbours = adjacency[suspect_rows].any(0) & free
    far = free & ~neighbours
    if not far.any():
        raise ValueError(
            f"Every channel other than the {n_susp} suspected ones is adjacent "
            "to one of them, so no control can be drawn away from them; name "
            "fewer suspected channels (channels=) or use data with more "
            "channels."
        )
    dist = np.linalg.norm(pos[:, None] - pos[None, suspect_rows], axis=-1).min(1)
    order = np.flatnonzero(far)[np.argsort(-dist[far], kind="stable")]
    pool = np.zeros(len(picks), bool)
    pool[order[: 2 * n_susp]] = True
    return pool, neighbours


def _match_controls(power, suspect_rows, pool, control, rng):
    """Control rows per band: same count, pool channels, nearest log power."""
    n_ch, n_bands = power.shape
    cells = np.zeros((n_ch, n_bands), bool)
    logp = np.log(np.maximum(power, np.finfo(float).tiny))
    free = np.flatnonzero(pool)
    susp = np.flatnonzero(suspect_rows)
    if len(free) < len(susp):
        warn(
            f"Only {len(free)} channels away from the {len(susp)} suspected "
            "channels are left: the controls are fewer than the suspected "
            "cells."
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


_ROWS = ("original", "suspected", "control")


def _summary(correct, prob, codes, n_boot, ci, rng):
    """Means and paired bootstrap intervals of one set of epochs.

    ``correct`` and ``prob`` map each version (``_ROWS``) to per-epoch
    values; with ``codes`` the group means are resampled (a cluster
    bootstrap: one unit per group). Returns the table of the three rows and
    the excess drop ``(mean, low, high)``.
    """
    cols = [correct[k] for k in _ROWS] + [prob[k] for k in _ROWS]
    cols += [correct[k] - correct["original"] for k in _ROWS[1:]]
    cols += [prob[k] - prob["original"] for k in _ROWS[1:]]
    cols.append(prob["control"] - prob["suspected"])
    table = np.column_stack(cols)
    if codes is not None:
        table = _group_means(table, np.unique(codes, return_inverse=True)[1])
    if len(table) > 1:
        mean, low, high = bootstrap_ci(table, n_boot=n_boot, ci=ci, random_state=rng)
    else:
        nan = np.full(len(cols), np.nan)
        mean, low, high = table[0], nan, nan
    out = {}
    for j, col in enumerate(("accuracy", "probability")):
        sl = slice(3 * j, 3 * j + 3)
        out[col] = mean[sl]
        out[f"{col}_ci_low"] = low[sl]
        out[f"{col}_ci_high"] = high[sl]
    for j, col in enumerate(("accuracy_change", "probability_change")):
        sl = slice(6 + 2 * j, 8 + 2 * j)
        out[col] = np.r_[0.0, mean[sl]]
        out[f"{col}_ci_low"] = np.r_[0.0, low[sl]]
        out[f"{col}_ci_high"] = np.r_[0.0, high[sl]]
    out["n_units"] = np.full(3, len(table))
    excess = (float(mean[-1]), float(low[-1]), float(high[-1]))
    return pd.DataFrame(out, index=list(_ROWS)), excess


def _cost(frame, row):
    """The drop of the true-class probability when ``row`` is removed, with CI."""
    r = frame.loc[row]
    return (
        -float(r["probability_change"]),
        -float(r["probability_change_ci_high"]),
        -float(r["probability_change_ci_low"]),
    )


def _fmt(triple):
    return f"{triple[0]:+.2f} [{triple[1]:+.2f}, {triple[2]:+.2f}]"


def _unit_verdict(frame, excess, min_effect):
    """``(state, text)`` of one set of epochs (pooled or one class).

    ``"relies"``: the excess drop is above 0 beyond its interval and at least
    ``min_effect``. ``"no reliance"``: the upper bounds of the suspect drop,
    the control drop and the excess drop all lie below ``min_effect``.
    Otherwise ``"inconclusive"``, with the reasons.
    """
    ex, ex_lo, ex_hi = excess
    sus, ctl = _cost(frame, "suspected"), _cost(frame, "control")
    numbers = f"excess drop {_fmt(excess)}, minimum effect {min_effect:g}"
    if ex_lo > 0 and ex >= min_effect:
        return "relies", numbers
    reasons = []
    if not sus[2] < min_effect:
        reason = f"removing the suspect cells alone costs {_fmt(sus)}"
        if ex < min_effect:
            reason += f"; the controls cost as much ({_fmt(ctl)})"
        reasons.append(reason)
    if not ctl[2] < min_effect:
        reasons.append(
            f"the controls are not neutral: removing them alone costs {_fmt(ctl)}"
        )
    if not reasons and not ex_hi < min_effect:
        reasons.append(f"the excess drop {_fmt(excess)} may reach {min_effect:g}")
    if reasons:
        return "inconclusive", "; ".join(reasons) + f" ({numbers})"
    return "no reliance", (
        f"{numbers}; suspect cells cost {_fmt(sus)}, controls {_fmt(ctl)}"
    )


def _overall(per_class, min_effect, at_chance):
    """The verdict of the whole test from the pooled and per-class rows."""
    classes = [c for c in per_class.index if c != "all"]
    relying = [c for c in classes if per_class.loc[c, "state"] == "relies"]
    pooled = per_class.loc["all"]
    if at_chance:
        return "", False, []
    where = "; ".join(f"class {c!r}: {per_class.loc[c, 'verdict']}" for c in relying)
    pooled_text = f"pooled: {pooled['state']}, {pooled['verdict']}"
    if pooled["state"] == "relies":
        if len(relying) in (0, len(classes)):
            return f"relies on the suspected cells ({pooled['verdict']})", True, relying
        return f"relies on the suspected cells ({where}; {pooled_text})", True, relying
    if relying and pooled["excess_drop"] > 0:  # diluted by the other classes
        return f"relies on the suspected cells ({where}; {pooled_text})", True, relying
    if relying:  # a class loses what another gains: the removal moves the
        # predictions between the classes, not only the evidence of one
        return (
            f"inconclusive: the removal costs more than the controls' in "
            f"{where}, but the other classes gain as much ({pooled_text})",
            False,
            [],
        )
    # a one-class cost must not be hidden by the pooled mean
    costly = [c for c in classes if per_class.loc[c, "suspect_drop"] >= min_effect]
    if pooled["state"] == "no reliance" and not costly:
        return f"no reliance on the suspected cells ({pooled['verdict']})", False, []
    if pooled["state"] == "no reliance":
        c = costly[0]
        r = per_class.loc[c]
        triple = (r["suspect_drop"], r["suspect_ci_low"], r["suspect_ci_high"])
        return (
            f"inconclusive: in class {c!r} removing the suspect cells alone costs "
            f"{_fmt(triple)} ({r['verdict']}; pooled: {pooled['verdict']})",
            False,
            [],
        )
    return f"inconclusive: {pooled['verdict']}", False, []
