"""Sanity checks (Adebayo et al., 2018): the map must depend on the model.

The map must change when the model's weights are re-initialised layer by layer
from the output (:func:`cascading_randomization`) or when the model is
retrained on shuffled labels (:func:`label_randomization`); :func:`spearman`
measures how much it changed.
"""

import copy

import numpy as np
import pandas as pd
import torch
from mne.utils import _validate_type, check_random_state, logger, verbose
from scipy.stats import rankdata

from mne_freqmask._inputs import epochs_labels
from mne_freqmask.evaluation._common import (
    _check_model,
    _explain,
    _labels,
)
from mne_freqmask.evaluation._engine import _accuracy
from mne_freqmask.models import fit, parameter_layers, reinitialize, untrained_copy
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.utils._docs import fill_doc


def spearman(a, b):
    """Spearman rank correlation of two maps (flattened); 0 if one is flat.

    Parameters
    ----------
    a, b : array-like
        Two maps of the same shape.

    Returns
    -------
    rho : float
        The rank correlation. A constant map carries no ranking, so its
        correlation with anything is defined as 0 (where
        :func:`scipy.stats.spearmanr` returns NaN with a warning).
    """
    a, b = np.ravel(a), np.ravel(b)
    if a.shape != b.shape:
        raise ValueError(f"The maps differ in size: {a.size} and {b.size}.")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def _map_correlations(orig, other):
    """Spearman correlation of the group maps and mean over epochs."""
    a, b = orig.get_data(), other.get_data()
    group = spearman(a.mean(0), b.mean(0))
    inst = float(np.mean([spearman(ai, bi) for ai, bi in zip(a, b, strict=True)]))
    return group, inst


@verbose
@fill_doc
def cascading_randomization(
    epochs,
    model,
    *,
    method="freqmask",
    saliency=None,
    layers=None,
    y=None,
    explain_kw=None,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Sanity check: re-initialise the model from the output backwards.

    Adebayo et al. (2018): a map that explains the *model* must change when
    the model's learnt weights are destroyed. The layers holding parameters
    are re-initialised cumulatively, starting at the output, on a deep copy
    (the user's model is never touched), and the epochs are explained again
    after each step. The Spearman rank correlation with the original map
    should drop towards 0.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    %(eval_method)s
    saliency : SpectralSaliency | None
        The map of the trained model (per epoch) on ``epochs``; None computes
        it with ``method`` and ``explain_kw``.
    layers : None | int
        None (default): one step per layer with parameters (modules in
        registration order, which is the forward order of braindecode
        models). An int groups the layers into that many cumulative steps of
        about equal size (``1``: all layers at once, the fully random model).
    %(y)s
    %(explain_kw)s
    random_state : None | int
        Seed of the re-initialisation (and of the explanations).
    %(device)s
    %(verbose)s

    Returns
    -------
    result : pandas.DataFrame
        One row per step (step 0: the trained model), with columns
        ``layers`` (the modules re-initialised at this step),
        ``n_layers`` (re-initialised so far), ``accuracy`` (of the model on
        ``epochs``), ``spearman`` (rank correlation of the epoch-averaged map
        with the original one) and ``spearman_instance`` (mean over epochs of
        the per-epoch rank correlations). A constant map counts as
        correlation 0 (see :func:`spearman`).

    References
    ----------
    Adebayo, J. et al. (2018). Sanity checks for saliency maps. NeurIPS.
    """
    model = _check_model(model)
    labels = _labels(epochs, y, model, device)
    if saliency is None:
        saliency = _explain(epochs, model, method, explain_kw, random_state, device)
    _validate_type(saliency, SpectralSaliency, "saliency")
    if saliency.level != "instance" or len(saliency) != len(epochs):
        raise ValueError("saliency must hold one map per epoch of epochs.")
    rand_model = copy.deepcopy(model)
    named = parameter_layers(rand_model)[::-1]
    if not named:
        raise ValueError("The model has no parameters to randomise.")
    _validate_type(layers, ("int-like", None), "layers", "int or None")
    n_steps = len(named) if layers is None else int(layers)
    if not 1 <= n_steps <= len(named):
        raise ValueError(
            f"layers must be between 1 and the number of layers ({len(named)}), "
            f"got {layers}."
        )
    seed = check_random_state(random_state).randint(0, 2**31 - 1)
    rows = [
        dict(
            layers="",
            n_layers=0,
            accuracy=_accuracy(epochs, model, labels, device),
            spearman=1.0,
            spearman_instance=1.0,
        )
    ]
    done = 0
    for step, idx in enumerate(np.array_split(np.arange(len(named)), n_steps)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + step)
            for i in idx:
                reinitialize(named[i][1])
        done += len(idx)
        sal = _explain(epochs, rand_model, method, explain_kw, random_state, device)
        group, inst = _map_correlations(saliency, sal)
        rows.append(
            dict(
                layers=",".join(named[i][0] for i in idx),
                n_layers=done,
                accuracy=_accuracy(epochs, rand_model, labels, device),
                spearman=group,
                spearman_instance=inst,
            )
        )
        logger.info(
            f"Randomised {done}/{len(named)} layers: Spearman {group:.3f} (group), "
            f"{inst:.3f} (instance)"
        )
    out = pd.DataFrame(rows)
    out.index.name = "step"
    out.attrs.update(method=method)
    return out


@verbose
@fill_doc
def label_randomization(
    epochs,
    model,
    *,
    train_epochs=None,
    method="freqmask",
    saliency=None,
    y=None,
    fit_kw=None,
    explain_kw=None,
    random_state=0,
    device="auto",
    verbose=None,
):
    """Sanity check: retrain on shuffled labels; the map must change.

    Adebayo et al. (2018): a model trained on randomly permuted labels can
    only have learnt noise, so a map that explains the model (and not just
    the input) must differ from the map of the model trained on true labels.

    Parameters
    ----------
    %(epochs_explain)s
    model : str | torch.nn.Module
        The model trained on the true labels, or a name for
        :func:`mne_freqmask.models.fit` (then it is trained here on
        ``train_epochs`` with ``fit_kw``, like the shuffled one). A model built
        by :func:`~mne_freqmask.models.make_model` is rebuilt untrained from
        its ``init_args_``; any other module is deep-copied and
        re-initialised. Never modified.
    train_epochs : instance of mne.Epochs | None
        What the model was (and the shuffled one is) trained on; None means
        ``epochs``.
    %(eval_method)s
    saliency : SpectralSaliency | None
        The trained model's map on ``epochs`` (computed when None).
    %(y)s
    fit_kw : dict | None
        Keyword arguments of :func:`mne_freqmask.models.fit` for training on
        shuffled labels (``max_epochs``, ``lr``, ...); use those of the
        original model.
    %(explain_kw)s
    random_state : None | int
        Seed of the label permutation, the training and the explanations.
    %(device)s
    %(verbose)s

    Returns
    -------
    result : pandas.DataFrame
        Rows ``original`` and ``shuffled_labels``, columns ``accuracy`` (on
        ``epochs``), ``spearman`` (group-level rank correlation with the
        original map) and ``spearman_instance`` (mean per-epoch). The
        shuffled model is in ``result.attrs["model"]``.

    References
    ----------
    Adebayo, J. et al. (2018). Sanity checks for saliency maps. NeurIPS.
    """
    train_epochs = epochs if train_epochs is None else train_epochs
    labels = epochs_labels(epochs, y)
    train_labels = epochs_labels(train_epochs, y if train_epochs is epochs else None)
    fit_kw = dict(fit_kw or {})
    fit_kw.setdefault("random_state", random_state)
    fit_kw.setdefault("device", device)
    fit_kw.setdefault("verbose", False)
    if isinstance(model, str):
        name = model
        model, _ = fit(train_epochs, name, y=train_labels, **fit_kw)
        fresh = name
    else:
        model = _check_model(model)
        fresh = untrained_copy(model)
    if saliency is None:
        saliency = _explain(epochs, model, method, explain_kw, random_state, device)
    _validate_type(saliency, SpectralSaliency, "saliency")
    if saliency.level != "instance" or len(saliency) != len(epochs):
        raise ValueError("saliency must hold one map per epoch of epochs.")
    rng = check_random_state(random_state)
    shuffled = rng.permutation(train_labels)
    shuffled_model, _ = fit(train_epochs, fresh, y=shuffled, **fit_kw)
    sal = _explain(epochs, shuffled_model, method, explain_kw, random_state, device)
    group, inst = _map_correlations(saliency, sal)
    out = pd.DataFrame(
        dict(
            accuracy=[
                _accuracy(epochs, model, labels, device),
                _accuracy(epochs, shuffled_model, labels, device),
            ],
            spearman=[1.0, group],
            spearman_instance=[1.0, inst],
        ),
        index=pd.Index(["original", "shuffled_labels"], name="model"),
    )
    out.attrs.update(method=method, model=shuffled_model)
    logger.info(f"Shuffled labels: Spearman {group:.3f} (group), {inst:.3f} (instance)")
    return out
