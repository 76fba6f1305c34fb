"""Workflows that chain fit, explain and evaluate.

:func:`leave_one_subject_out` is the unseen-subject validation of Wang et al.
(§4.5): a subject-independent model is trained without one subject, explains
that subject's epochs, and the explanation is checked with the removal game;
the group map of all unseen subjects is then compared with the map of the
model trained on every subject (seen subjects).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from mne.utils import _validate_type, check_random_state, logger, verbose

from mne_freqmask._inputs import epochs_groups
from mne_freqmask.evaluation import deletion_curves, evaluate_removal, spearman
from mne_freqmask.evaluation._common import _explain
from mne_freqmask.models import fit, untrained_copy
from mne_freqmask.saliency import SpectralSaliency, concatenate_saliencies
from mne_freqmask.utils._docs import fill_doc


@dataclass
class LOSOResult:
    """Result of :func:`leave_one_subject_out`.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per held-out subject: ``n_epochs`` (all of the subject's
        epochs, scored by the group-level game) and ``n_explained`` (those
        explained), the removal game with the subject's own group map
        (``original``, ``RN``, ``RS`` accuracy and ``gap`` = RN - RS), the
        instance-level game on the explained epochs (``RN_instance``,
        ``RS_instance``, ``gap_instance``), ``deletion_auc`` and
        ``insertion_auc`` (when ``curves=True``) and ``spearman_seen`` (rank
        correlation of the subject's unseen map with the seen model's map on
        the same epochs, when ``seen=True``).
    unseen : SpectralSaliency
        Group-level map of all unseen subjects: the per-epoch maps of every
        held-out subject (each from its own fold's model), concatenated and
        averaged (paper Fig. 10).
    seen : SpectralSaliency | None
        Group-level map of the same epochs explained by the model trained on
        all subjects.
    correlation : float
        Spearman rank correlation of ``unseen`` and ``seen`` (NaN without
        ``seen``).
    saliencies : dict
        Subject -> per-epoch :class:`~mne_freqmask.SpectralSaliency` of the unseen
        subject.
    models : dict
        Subject -> the model trained without that subject; key ``"all"``:
        the model trained on all subjects (when ``seen=True``).
    """

    scores: pd.DataFrame
    unseen: SpectralSaliency
    seen: SpectralSaliency | None
    correlation: float
    saliencies: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)

    def __repr__(self):
        return (
            f"<LOSOResult | {len(self.scores)} held-out subjects, mean gap "
            f"{self.scores['gap'].mean():.3f}, unseen vs seen Spearman "
            f"{self.correlation:.3f}>"
        )


def _new_model(model):
    """What :func:`~mne_freqmask.models.fit` trains in one fold."""
    if isinstance(model, str):
        return model
    if isinstance(model, torch.nn.Module):
        return untrained_copy(model)
    if callable(model):
        out = model()
        _validate_type(out, torch.nn.Module, "model()", "torch.nn.Module")
        return out
    raise TypeError(
        "model must be a name for mne_freqmask.models.make_model, a "
        f"torch.nn.Module or a callable returning one, got {type(model).__name__}."
    )


@verbose
@fill_doc
def leave_one_subject_out(
    epochs,
    model="eegnet",
    *,
    subjects=None,
    groups=None,
    method="freqmask",
    fit_kw=None,
    explain_kw=None,
    n_explain=None,
    seen=True,
    curves=True,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Explain a subject-independent model on subjects it never saw.

    For each held-out subject: train on all the other subjects
    (:func:`mne_freqmask.models.fit`), explain the held-out subject's epochs
    with the training epochs as ``reference`` (the target alignment pulls
    towards the nearest *training* subject), and play the removal game on the
    held-out subject. Then the group map of the unseen subjects is compared
    with the map of the model trained on all subjects (paper §4.5, Fig. 9-10).

    Parameters
    ----------
    epochs : instance of mne.Epochs
        Epochs of several subjects.
    model : str | torch.nn.Module | callable
        A name for :func:`mne_freqmask.models.make_model`, a module whose
        architecture is reused (rebuilt untrained in each fold), or a callable
        returning a new untrained module.
    subjects : list | None
        The subjects to hold out, one fold each; None: all.
    groups : array-like | None
        Subject of each epoch; None reads ``epochs.metadata["subject"]``.
    %(eval_method)s
    fit_kw : dict | None
        Keyword arguments of :func:`mne_freqmask.models.fit`; the default
        ``val_size`` here is 0 (train on every epoch of the other subjects).
    %(explain_kw)s
    n_explain : int | None
        Explain at most this many epochs per held-out subject (a random,
        seeded subset); the group-level removal game still scores all of the
        subject's epochs. None: explain all.
    seen : bool
        Also train on all subjects and explain the same epochs (the seen map).
    curves : bool
        Also compute the deletion / insertion areas
        (:func:`~mne_freqmask.evaluation.deletion_curves`, group level).
    %(random_state)s
    %(device)s
    %(verbose)s

    Returns
    -------
    result : LOSOResult
        Per-subject scores, the unseen and seen group maps and their
        correlation, the per-subject maps and the trained models.
    """

    groups = epochs_groups(epochs, groups)
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise ValueError(
            "leave_one_subject_out needs epochs of at least 2 subjects "
            '(metadata["subject"] or groups).'
        )
    subjects = list(uniq) if subjects is None else list(subjects)
    unknown = sorted(set(subjects) - set(uniq.tolist()))
    if unknown:
        raise ValueError(f"subjects {unknown} have no epochs; known: {list(uniq)}.")
    fit_kw = dict(val_size=0.0, **(fit_kw or {}))
    fit_kw.setdefault("random_state", random_state)
    fit_kw.setdefault("device", device)
    fit_kw.setdefault("verbose", False)
    explain_kw = dict(explain_kw or {})
    for key in ("reference", "groups"):
        if key in explain_kw:
            raise ValueError(
                f"explain_kw must not set {key!r}: each fold uses its training "
                "epochs as the reference."
            )
    rng = check_random_state(random_state)
    rows, sals, models, explained = [], {}, {}, {}
    for subject in subjects:
        test = groups == subject
        train_ep, test_ep = epochs[~test], epochs[test]
        idx = np.arange(int(test.sum()))
        if n_explain is not None and n_explain < len(idx):
            idx = np.sort(rng.choice(idx, int(n_explain), replace=False))
        explained[subject] = idx
        fold_model, _ = fit(train_ep, _new_model(model), **fit_kw)
        kw = dict(explain_kw, reference=train_ep, groups=groups[~test])
        sal = _explain(test_ep[idx], fold_model, method, kw, random_state, device)
        group = evaluate_removal(test_ep, fold_model, sal, device=device, verbose=False)
        inst = evaluate_removal(
            test_ep[idx],
            fold_model,
            sal,
            level="instance",
            device=device,
            verbose=False,
        )
        row = dict(
            subject=subject,
            n_epochs=int(test.sum()),
            n_explained=len(idx),
            original=group.loc["original", "accuracy"],
            RN=group.loc["RN", "accuracy"],
            RS=group.loc["RS", "accuracy"],
            gap=group.attrs["gap"],
            RN_instance=inst.loc["RN", "accuracy"],
            RS_instance=inst.loc["RS", "accuracy"],
            gap_instance=inst.attrs["gap"],
        )
        if curves:
            cur = deletion_curves(
                test_ep, fold_model, sal, n_points=11, device=device, verbose=False
            )
            row.update(
                deletion_auc=cur.attrs["deletion_auc"],
                insertion_auc=cur.attrs["insertion_auc"],
            )
        rows.append(row)
        sals[subject], models[subject] = sal, fold_model
        logger.info(
            f"Subject {subject} held out: original {row['original']:.3f}, RN "
            f"{row['RN']:.3f}, RS {row['RS']:.3f}"
        )
    scores = pd.DataFrame(rows).set_index("subject")
    unseen = concatenate_saliencies([sals[s] for s in subjects]).average()
    seen_map, corr = None, float("nan")
    if seen:
        all_model, _ = fit(epochs, _new_model(model), **fit_kw)
        models["all"] = all_model
        pos = np.concatenate(
            [np.flatnonzero(groups == s)[explained[s]] for s in subjects]
        )
        kw = dict(explain_kw, reference=epochs, groups=groups)
        seen_sal = _explain(epochs[pos], all_model, method, kw, random_state, device)
        seen_map = seen_sal.average()
        corr = spearman(unseen.get_data(), seen_map.get_data())
        start, per_subject = 0, []
        for s in subjects:
            n = len(explained[s])
            own = seen_sal.get_data()[start : start + n].mean(0)
            per_subject.append(spearman(sals[s].get_data().mean(0), own))
            start += n
        scores["spearman_seen"] = per_subject
    logger.info(
        f"LOSO over {len(subjects)} subjects: mean gap {scores['gap'].mean():.3f}; "
        f"unseen vs seen map Spearman {corr:.3f}"
    )
    return LOSOResult(
        scores=scores,
        unseen=unseen,
        seen=seen_map,
        correlation=corr,
        saliencies=sals,
        models=models,
    )
