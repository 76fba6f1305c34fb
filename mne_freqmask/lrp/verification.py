"""Verify explanations: planted signals, Clever-Hans artefacts, CSP patterns.

These checks moved to :mod:`mne_freqmask.evaluation.truth` (they work on any
:class:`~mne_freqmask.SpectralSaliency`, not only on LRP); the names are
re-exported here so that existing imports keep working.
"""

from mne_freqmask.evaluation.truth import (
    ARTIFACT_CHANNELS,
    CleverHansReport,
    clever_hans_report,
    csp_comparison,
    score_planted,
)

__all__ = [
    "ARTIFACT_CHANNELS",
    "CleverHansReport",
    "clever_hans_report",
    "csp_comparison",
    "score_planted",
]
