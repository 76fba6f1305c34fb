"""Why each epoch's fit ended, and the warnings when it did not converge."""

import numpy as np
from mne.utils import warn

#: ``diagnostics["stop"]`` codes: why each epoch's fit ended
STOP_REASONS = ("converged", "n_steps reached", "first step allowed")


def stop_reasons(steps, n_steps, min_steps, patience):
    """Code of :data:`STOP_REASONS` per epoch.

    The earliest stop early stopping allows is at ``max(min_steps, patience
    + 1)`` steps: an epoch that stops there had not improved for ``patience``
    steps as soon as it could be stopped.
    """
    first = max(min_steps, patience + 1)
    stop = np.zeros(len(steps), np.int8)
    stop[steps >= n_steps] = 1
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
