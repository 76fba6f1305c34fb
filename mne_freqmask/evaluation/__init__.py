"""Is the explanation true? Scores for a :class:`~mne_freqmask.SpectralSaliency`.

- The removal / feed-in game (paper §4.3-4.4, :func:`evaluate_removal`): the
  channel x band cells of a map are split at the median into salient and
  non-salient halves; zeroing the non-salient cells in the spectrum (RN)
  should leave the model's accuracy close to the original, zeroing the salient
  cells (RS) should destroy it.
- Deletion, LeRF and insertion curves (:func:`deletion_curves`), the
  threshold-free version: remove the ``k`` top-ranked (deletion, MoRF) or
  bottom-ranked (LeRF) cells, or keep only the top ``k`` (insertion), by
  zeroing them or by cells of reference epochs, with bootstrap intervals
  over the epochs (:func:`bootstrap_ci`) and paired comparisons of two maps
  (:func:`paired_comparison`).
- :func:`compare_methods`: every method on the same epochs, one tidy table of
  curves, areas, intervals, time and model passes
  (:func:`mne_freqmask.viz.plot_deletion_curves` draws it); Quantus'
  complexity and sparseness of the maps (:func:`quantus_scores`).
- Any Quantus metric on the maps (:func:`quantus_inputs`,
  :func:`quantus_explain_func`): the epochs as per-band components whose
  band axis the maps share; :func:`compare_methods` reports Quantus'
  Max-Sensitivity through them (``sensitivity=True``).
- The removal game, the curves and :func:`compare_methods` also score a
  time-resolved :class:`~mne_freqmask.SpectralSaliencyTFR`: its channel x
  band x window cells are removed in the short-time Fourier transform
  (:func:`remove_cells` on the map's ``grid``), with the same operators and
  intervals.
- The upper anchor of the deletion curves (:func:`deletion_limit`): a
  per-epoch ranking searched for the curve itself (block-greedy), scored like
  any map, so each method's share of the gap between the random map and it
  can be reported.
- The out-of-distribution score (paper §4.6, :func:`ood_score`): the kernel
  density log-likelihood of perturbed epochs under the original data.
- Sanity checks (Adebayo et al., 2018): the map must change when the model's
  weights are re-initialised layer by layer from the output
  (:func:`cascading_randomization`) or when the model is retrained on shuffled
  labels (:func:`label_randomization`).
- Ground truth (:func:`ground_truth_scores`, :func:`score_planted`) and
  the verdict against untrained copies of the model (:func:`verify_planted`);
  the counterfactual Clever-Hans test (:func:`clever_hans_test`: remove
  frontal slow cells and matched controls far from them, compare the
  model's drops, pooled and per class), the
  Clever-Hans screen (:func:`clever_hans_report`) and the comparison with
  CSP-LDA, band by band (:func:`csp_comparison`: relevance share, CSP-LDA
  accuracy next to the model's, pattern / relevance correlation).
- One call that runs the checks a reader needs and gives a verdict per check
  (:func:`check_explanation`): accuracy against chance, deletion curves
  against a random map, model randomisation, the cell permutation test.
- A permutation / cluster test of which cells are reliably salient across
  epochs or subjects (:func:`cell_permutation_test`).

Grouped by what they measure (one module each, every name importable from
here): the checks at once (:mod:`.check`); faithfulness (:mod:`.removal`,
:mod:`.limit`, :mod:`.compare`, :mod:`.complexity`, :mod:`.quantus_bridge`);
randomisation (:mod:`.sanity`); ground truth (:mod:`.truth`); Clever Hans
(:mod:`.counterfactual`, :mod:`.clever_hans`); CSP (:mod:`.csp`); out of
distribution (:mod:`.ood`); statistics (:mod:`.stats`). Every score that
removes cells runs through one removal engine
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
