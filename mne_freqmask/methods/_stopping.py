"""Why each epoch's fit ended, and the warnings when it did not converge."""

import numpy as np
import torch
from mne.utils import warn

#: ``diagnostics["stop"]`` codes: why each epoch's fit ended
STOP_REASONS = ("converged", "n_steps reached", "first step allowed")


def stop_reasons(steps, n_steps, min_steps, patience, stopping="loss"):
    """Code of :data:`STOP_REASONS` per epoch.

    With ``stopping="loss"`` the earliest stop early stopping allows is at
    ``max(min_steps, patience + 1)`` steps: an epoch that stops there had not
    improved for ``patience`` steps as soon as it could be stopped. With
    ``stopping="rank"`` a stop at the first check means that the ranking had
    settled by then, which is no sign of trouble, so code 2 is not used.
    """
    first = max(min_steps, patience + 1)
    stop = np.zeros(len(steps), np.int8)
    stop[steps >= n_steps] = 1
    if stopping == "loss":
        stop[(steps == first) & (steps < n_steps)] = 2
    return stop


def warn_stops(stop, steps, n_steps, min_steps, patience):
    """Warn, naming the fix, when many fits did not end by converging."""
    n = len(stop)
    capped, early = int((stop == 1).sum()), int((stop == 2).sum())
    if n and capped > 0.1 * n:
        warn(
            f"FreqMask: {capped} of {n} epochs reached n_steps={n_steps} before "
            "converging, so their masks were still moving; raise n_steps (or lr)."
        )
    if n and early > 0.25 * n:
        first = max(min_steps, patience + 1)
        warn(
            f"FreqMask: {early} of {n} epochs stopped at step {first}, the first "
            f"step early stopping allows: their loss had not improved for "
            f"{patience} steps, so their masks may have barely moved from 0.5 "
            "(a diffuse map). Raise min_steps or lr, or check that the model's "
            "prediction depends on the input."
        )


def ranking_settled(snaps, score, t, every, min_steps, rank_tol):
    """Which epochs' ranking of the cells no longer changes (stopping="rank").

    Every ``every`` (``patience``) steps the cell scores ``score`` (active
    epochs first) are kept in ``snaps`` (step -> tensor); from ``min_steps``
    on, an epoch stops when the Spearman correlation between its scores now
    (step ``t``) and at about ``t / 2`` is at least ``1 - rank_tol``:
    doubling the steps no longer reorders its cells. Why not the loss: with
    reference donors it is redrawn at every step, so it keeps fluctuating
    and rarely "stops improving" (median 236 of 300 steps on the faithfulness
    benchmark's simulation), while the ranking, which is all that a map's
    use and its scores read, settles far earlier (BENCHMARKS.md, "Stopping
    on the ranking").
    """
    n_b = len(score)
    if t % every:
        return np.zeros(n_b, bool)
    score = score.reshape(n_b, -1)
    snaps[t] = score.clone()
    half = every * (t // (2 * every))
    if t < min_steps or half < every:
        return np.zeros(n_b, bool)
    rho = _rank_correlation(score, snaps[half])
    for old in [s for s in snaps if s < every * ((t + every) // (2 * every))]:
        del snaps[old]  # no later check compares with them
    return (rho >= 1 - rank_tol).cpu().numpy()


def _rank_correlation(a, b):
    """Row-wise Spearman correlation of ``(n, n_cells)`` tensors.

    Ties are broken by position (torch has no average rank); a row without
    spread has no ranking and gets 0, so a flat map never counts as settled.
    """

    def centred_ranks(x):
        r = x.argsort(1).argsort(1).to(torch.float64)
        return r - r.mean(1, keepdim=True)

    ra, rb = centred_ranks(a), centred_ranks(b)
    rho = (ra * rb).sum(1) / ((ra**2).sum(1) * (rb**2).sum(1)).sqrt()
    flat = (a.max(1).values - a.min(1).values) <= 1e-7
    return torch.where(flat, torch.zeros_like(rho), rho)
