"""
==========
Quickstart
==========

Simulate epochs whose answer is known, train a small EEGNet, explain it in the
frequency domain and check the explanation with the removal game. Runs on a CPU
in about a minute, without any download.
"""

# Authors: mne_freqmask developers
# License: BSD-3-Clause

# %%
# Simulated epochs with a planted answer
# --------------------------------------
# :func:`~mne_freqmask.datasets.simulated.make_epochs` makes two classes that
# differ *only* in the power of the alpha band (8-12 Hz) on C3 and C4; everything
# else is subject-specific 1/f background noise. A model that tells the classes
# apart can only have learnt those channel x band cells, so we know what a good
# explanation must show.
import tempfile
from pathlib import Path

import mne
import numpy as np

import mne_freqmask as mfm
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.models import fit

mne.set_log_level("WARNING")

epochs, truth = make_epochs(n_subjects=3, n_epochs_per_class=30, random_state=0)
print(epochs)
print(f"Planted: {truth.band[0]:g}-{truth.band[1]:g} Hz on {truth.channels}")

# %%
# Train a model
# -------------
# :func:`mne_freqmask.models.fit` trains a braindecode EEGNet on the epochs as
# MNE stores them (volts) and holds out 20 % of them. Any trained
# :class:`torch.nn.Module` that maps ``(n_epochs, n_channels, n_times)`` to class
# scores can be explained instead.
model, history = fit(epochs, "eegnet", max_epochs=30, random_state=0)
train, held = history["train_idx"], history["val_idx"]
print(f"Held-out accuracy: {history['val_accuracy'][-1]:.2f} ({len(held)} epochs)")

# %%
# Explain it
# ----------
# :func:`mne_freqmask.explain` learns one mask per held-out epoch over channel x
# band cells of its spectrum. ``bands="canonical"`` uses delta, theta, alpha,
# beta and gamma; the training epochs are the ``reference``: a removed cell is
# filled with the same cell of randomly drawn training epochs, so that
# "removed" means "typical power", not "no power" (``preset="paper"`` runs the
# paper's generator instead; see the user guide).
sal = mfm.explain(
    epochs[held], model, bands="canonical", reference=epochs[train], random_state=0
)
sal

# %%
# ``sal`` holds one map per epoch, and why each optimisation ended
# (``diagnostics["stop"]``: 0 converged, 1 reached ``n_steps``, 2 stopped at
# the first step early stopping allows):
steps, stop = sal.diagnostics["n_steps"], sal.diagnostics["stop"]
print(
    f"Steps: median {np.median(steps):.0f}, max {steps.max()}; "
    f"{np.sum(stop == 0)} of {len(stop)} epochs converged"
)

# %%
# Group level
# -----------
# Averaging the per-epoch maps gives what the model relies on for the whole
# held-out set. A topomap per band shows *where* each band is used:
group = sal.average()
fig = group.plot_topomap()

# %%
# The same values as a channel x band image, and as one line per channel over
# frequency:
fig = group.plot_bands()
fig = group.plot()

# %%
# Compare with the planted answer: the most salient cells should be alpha on C3
# and C4. ``to_data_frame`` gives a tidy table.
df = group.to_data_frame().sort_values("saliency", ascending=False)
df.head(6)

# %%
# The ground truth as a boolean channel x band mask, and how well the map ranks
# it (area under the ROC curve; 1.0 means the planted cells come first):
planted = truth.cells(group.ch_names, group.band_edges)
values = group.get_data()
ranks = values.ravel().argsort().argsort() + 1
n_pos, n_neg = planted.sum(), (~planted).sum()
auc = (ranks[planted.ravel()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
print(f"AUROC of the group map for the planted cells: {auc:.3f}")

# %%
# Is the explanation true? The removal game
# -----------------------------------------
# :func:`mne_freqmask.evaluate_removal` splits the cells at the median of the
# map, zeroes the non-salient (RN) or the salient (RS) half in the spectrum of
# every epoch and scores the model again. A good explanation keeps the accuracy
# when the non-salient half is removed and destroys it when the salient half is.
scores = mfm.evaluate_removal(epochs[held], model, sal, level="group")
scores

# %%
# The same with each epoch's own map (instance level):
mfm.evaluate_removal(epochs[held], model, sal, level="instance")

# %%
# Save and read back
# ------------------
# Saliency is saved to HDF5; reading, plotting and tabulating it needs no torch.
with tempfile.TemporaryDirectory() as tmp:
    fname = Path(tmp) / "quickstart_saliency.h5"
    sal.save(fname)
    sal_read = mfm.read_saliency(fname)
print(sal_read == sal)
