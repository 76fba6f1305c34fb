"""
=====================================
Comparing explanation methods
=====================================

Every method of ``explain(method=...)`` returns the same
:class:`~mne_freqmask.SpectralSaliency`, so they can be plotted and scored the
same way. On simulated epochs whose answer is known (alpha power on C3 and C4),
we explain one EEGNet with each method registered in
:data:`mne_freqmask.methods.METHODS` and compare:

- how well each group-level map ranks the planted cells first
  (:func:`~mne_freqmask.evaluation.ground_truth_scores`);
- the removal game: accuracy with the non-salient (RN) and with the salient
  (RS) half of the cells removed (:func:`~mne_freqmask.evaluate_removal`);
- the deletion and insertion curves, its threshold-free version
  (:func:`~mne_freqmask.evaluation.deletion_curves`).

The scores describe this one simulated setting (one model, clean data, a
single planted band); they are a check that each method works, not a
general ranking of the methods.

The loop runs over the registry, so a method added with
:func:`mne_freqmask.methods.register_method` appears here
without changing the example.
"""

# Authors: mne_freqmask developers
# License: BSD-3-Clause

# %%
import time

import matplotlib.pyplot as plt
import mne
import numpy as np
import pandas as pd

import mne_freqmask as mfm
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.evaluation import deletion_curves, ground_truth_scores
from mne_freqmask.methods import METHODS, get_method
from mne_freqmask.models import fit

mne.set_log_level("WARNING")

epochs, truth = make_epochs(n_subjects=3, n_epochs_per_class=30, random_state=0)
model, history = fit(epochs, "eegnet", max_epochs=30, random_state=0)
train, held = history["train_idx"], history["val_idx"]
print(f"Held-out accuracy: {history['val_accuracy'][-1]:.2f}")
print(f"Registered methods: {sorted(METHODS)}")

# %%
# Explain with every registered method
# ------------------------------------
# Each method runs with its default parameters on the held-out epochs, with the
# training epochs as reference (used by the methods that need one), on the
# paper's grid of 10 equal bands from 0 Hz to Nyquist (6.4 Hz each here). A
# method whose optional dependencies are missing (e.g. zennit or captum, in
# the ``attribution`` extra) is skipped with a message.
saliencies, seconds = {}, {}
for name in METHODS:
    if name == "freqmask_amortised":
        # it needs a FreqMaskExplainer trained beforehand (explainer=...); see
        # the user guide's "Many epochs: the amortised explainer"
        print(f"{name}: skipped (needs a trained FreqMaskExplainer)")
        continue
    t0 = time.perf_counter()
    try:
        get_method(name)  # imports the method's module
        saliencies[name] = mfm.explain(
            epochs[held],
            model,
            method=name,
            bands=10,
            reference=epochs[train],
            random_state=0,
        )
    except ImportError as err:
        print(f"{name}: skipped ({err})")
        continue
    seconds[name] = time.perf_counter() - t0
    print(f"{name}: {seconds[name]:.1f} s")


# %%
# Scores
# ------
# ``auroc``: the probability that a planted cell gets a higher group-level
# value than a cell that carries no class information (1 is perfect, 0.5 is
# chance); ``precision_at_k``: the fraction of planted cells among the top
# ``k = 2`` cells. RN and RS: the removal game with the group-level map.
# ``deletion_auc`` (low is good) and ``insertion_auc`` (high is good): areas
# under the accuracy curves as the top-ranked cells are removed, or as only
# they are kept.
rows = {}
for name, sal in saliencies.items():
    truth_scores = ground_truth_scores(sal, truth)
    removal = mfm.evaluate_removal(epochs[held], model, sal, level="group")
    curves = deletion_curves(epochs[held], model, sal)
    rows[name] = {
        "auroc": truth_scores["auroc"],
        "precision_at_k": truth_scores["precision_at_k"],
        "RN": removal.loc["RN", "accuracy"],
        "RS": removal.loc["RS", "accuracy"],
        "deletion_auc": curves.attrs["deletion_auc"],
        "insertion_auc": curves.attrs["insertion_auc"],
        "seconds": seconds[name],
    }
table = pd.DataFrame(rows).T.astype(float).round(3)
table

# %%
# The group-level maps side by side
# ---------------------------------
# Channel x band images, one per method. Each method has its own scale (a mask
# between 0 and 1, a drop in accuracy, a gradient or a relevance), so each
# image has its own colour bar; the ranking of the cells is what compares.
n = len(saliencies)
fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 1, 5), layout="constrained")
axes = np.atleast_1d(axes)
for k, (ax, (name, sal)) in enumerate(zip(axes, saliencies.items(), strict=True)):
    sal.average().plot_bands(axes=ax, show=False)
    # label every other band by its lower edge, to keep the axis readable
    lows = sal.band_edges[::2, 0]
    ax.set_xticks(range(0, 2 * len(lows), 2), [f"{lo:.0f}" for lo in lows])
    ax.tick_params(axis="x", labelrotation=0)
    ax.set(title=name, xlabel="Band from (Hz)", ylabel="" if k else "Channel")

# %%
# Topomaps of the band that holds the planted alpha rhythm, one per method:
first = next(iter(saliencies.values()))
centre = np.mean(truth.band)
alpha = [b for b, (lo, hi) in first.bands.items() if lo <= centre < hi]
fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.6), layout="constrained")
for ax, (name, sal) in zip(np.atleast_1d(axes), saliencies.items(), strict=True):
    sal.average().plot_topomap(bands=alpha, axes=[ax], colorbar=False, show=False)
    ax.set_title(f"{name}\n{alpha[0]}")
