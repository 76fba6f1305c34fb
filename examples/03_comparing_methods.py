"""
=====================================
Comparing explanation methods
=====================================

Every method of ``explain(method=...)`` returns the same
:class:`~mne_freqmask.SpectralSaliency`, so they can be plotted and scored the
same way. On simulated epochs whose answer is known (alpha power on C3 and C4),
we explain one EEGNet with each method registered in
:data:`mne_freqmask.methods._registry.METHODS` and compare:

- how well each group-level map ranks the planted cells first (AUROC);
- the removal game: accuracy with the non-salient (RN) and with the salient
  (RS) half of the cells removed.

The loop runs over the registry, so a newly registered method appears here
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
from mne_freqmask.methods._registry import METHODS, get_method
from mne_freqmask.models import fit

mne.set_log_level("WARNING")

epochs, truth = make_epochs(n_subjects=3, n_epochs_per_class=30, random_state=0)
model, history = fit(epochs, "eegnet", max_epochs=15, random_state=0)
train, held = history["train_idx"], history["val_idx"]
print(f"Held-out accuracy: {history['val_accuracy'][-1]:.2f}")
print(f"Registered methods: {sorted(METHODS)}")

# %%
# Explain with every registered method
# ------------------------------------
# Each method runs with its default parameters on the held-out epochs, with the
# training epochs as reference (used by the methods that need one). A method
# whose optional dependencies are missing (e.g. zennit or captum, in the
# ``attribution`` extra) is skipped with a message.
saliencies, seconds = {}, {}
for name in METHODS:
    t0 = time.perf_counter()
    try:
        get_method(name)  # imports the method's module
        saliencies[name] = mfm.explain(
            epochs[held],
            model,
            method=name,
            bands="canonical",
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
# AUROC: the probability that a planted cell gets a higher group-level value
# than a cell that carries no class information (1 is perfect, 0.5 is chance).
# The removal game uses the group-level map of each method.
def auroc(values, planted):
    """Area under the ROC curve of ``values`` for the boolean ``planted``."""
    ranks = values.ravel().argsort().argsort() + 1.0
    n_pos, n_neg = planted.sum(), (~planted).sum()
    return (ranks[planted.ravel()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


rows = {}
for name, sal in saliencies.items():
    group = sal.average()
    planted = truth.cells(group.ch_names, group.band_edges)
    scores = mfm.evaluate_removal(epochs[held], model, sal, level="group")
    rows[name] = {
        "AUROC": auroc(group.get_data(), planted),
        "original": scores.loc["original", "accuracy"],
        "RN": scores.loc["RN", "accuracy"],
        "RS": scores.loc["RS", "accuracy"],
        "gap (RN - RS)": scores.attrs["gap"],
        "seconds": seconds[name],
    }
table = pd.DataFrame(rows).T.round(3)
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
    ax.set_title(name)
    if k:
        ax.set_ylabel("")

# %%
# Alpha band topomaps, one per method:
fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.6), layout="constrained")
for ax, (name, sal) in zip(np.atleast_1d(axes), saliencies.items(), strict=True):
    sal.average().plot_topomap(bands=["alpha"], axes=[ax], colorbar=False, show=False)
    ax.set_title(name)
