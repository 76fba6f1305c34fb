"""Is the explanation true? Scores for a saliency map.

Grouped by what they measure (one module each, every name importable from
here):

- all checks at once, a verdict per check (:mod:`.check`:
  :func:`check_explanation`);
- faithfulness: the removal game and the deletion, LeRF and insertion curves
  (:mod:`.removal`: :func:`evaluate_removal`, :func:`deletion_curves`), their
  upper anchor (:mod:`.limit`: :func:`deletion_limit`), every method on the
  same epochs in one table (:mod:`.compare`: :func:`compare_methods`),
  Quantus' metrics (:mod:`.complexity`: :func:`quantus_scores`;
  :mod:`.quantus_bridge`: :func:`quantus_inputs`,
  :func:`quantus_explain_func`);
- randomisation (:mod:`.sanity`: :func:`cascading_randomization`,
  :func:`label_randomization`);
- ground truth (:mod:`.truth`: :func:`ground_truth_scores`,
  :func:`score_planted`, :func:`verify_planted`);
- Clever Hans (:mod:`.counterfactual`: :func:`clever_hans_test`;
  :mod:`.clever_hans`: :func:`clever_hans_report`);
- CSP (:mod:`.csp`: :func:`csp_comparison`);
- out of distribution (:mod:`.ood`: :func:`ood_score`);
- statistics (:mod:`.stats`: :func:`bootstrap_ci`,
  :func:`paired_comparison`, :func:`cell_permutation_test`).

A whole-epoch :class:`~mne_freqmask.SpectralSaliency` is scored over its
channel x band cells, a time-resolved
:class:`~mne_freqmask.SpectralSaliencyTFR` over its channel x band x window
cells (removed in the short-time Fourier transform), with the same code.
Every score that removes cells runs through one removal engine
(:func:`~mne_freqmask.evaluation.removal.run_removals`: remove, predict,
record, chunk by chunk) on :func:`remove_cells`; every result with a
verdict derives from :class:`EvaluationResult`. Every function reads its
epochs chunk by chunk (as :func:`mne_freqmask.explain`), so epochs that are
not preloaded are never held in memory at once.
"""

from mne_freqmask.evaluation._common import _cell_ranks  # noqa: F401
from mne_freqmask.evaluation._result import EvaluationResult
from mne_freqmask.evaluation.check import ExplanationCheck, check_explanation
from mne_freqmask.evaluation.clever_hans import (
    ARTIFACT_CHANNELS,
    CleverHansReport,
    clever_hans_report,
)
from mne_freqmask.evaluation.compare import compare_methods
from mne_freqmask.evaluation.complexity import quantus_scores
from mne_freqmask.evaluation.counterfactual import (
    CleverHansTest,
    clever_hans_test,
    frontal_channels,
)
from mne_freqmask.evaluation.csp import CSPComparison, csp_comparison
from mne_freqmask.evaluation.limit import deletion_limit
from mne_freqmask.evaluation.ood import band_log_power, ood_score
from mne_freqmask.evaluation.quantus_bridge import (
    BandComponentModel,
    quantus_explain_func,
    quantus_inputs,
)
from mne_freqmask.evaluation.removal import (
    deletion_curves,
    evaluate_removal,
    remove_cells,
    salient_cells,
)
from mne_freqmask.evaluation.sanity import (
    cascading_randomization,
    label_randomization,
    spearman,
)
from mne_freqmask.evaluation.stats import (
    CellTestResult,
    bootstrap_ci,
    cell_permutation_test,
    paired_comparison,
)
from mne_freqmask.evaluation.truth import (
    PlantedVerification,
    ground_truth_scores,
    planted_window_auroc,
    score_planted,
    verify_planted,
)

__all__ = [
    "ARTIFACT_CHANNELS",
    "BandComponentModel",
    "CellTestResult",
    "CSPComparison",
    "PlantedVerification",
    "CleverHansReport",
    "EvaluationResult",
    "ExplanationCheck",
    "CleverHansTest",
    "band_log_power",
    "bootstrap_ci",
    "cascading_randomization",
    "cell_permutation_test",
    "check_explanation",
    "clever_hans_report",
    "clever_hans_test",
    "compare_methods",
    "csp_comparison",
    "deletion_curves",
    "deletion_limit",
    "evaluate_removal",
    "frontal_channels",
    "ground_truth_scores",
    "label_randomization",
    "ood_score",
    "paired_comparison",
    "quantus_explain_func",
    "quantus_inputs",
    "quantus_scores",
    "remove_cells",
    "salient_cells",
    "planted_window_auroc",
    "score_planted",
    "spearman",
    "verify_planted",
]
