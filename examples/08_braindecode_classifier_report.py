"""
=============================================
From a braindecode EEGClassifier to a report
=============================================

Train a model the way braindecode's tutorials do (``EEGClassifier(...).fit(
epochs, y)``), hand the fitted classifier to :func:`mne_freqmask.explain` as it
is, test which cells are reliably salient, and add the map to your own
:class:`mne.Report`. Runs on a CPU in about a minute, without any download.
"""

# Authors: mne_freqmask developers
# License: BSD-3-Clause

# %%
# Epochs with a planted answer, and a braindecode classifier
# ----------------------------------------------------------
# The two simulated classes differ only in alpha (8-12 Hz) power on C3 and C4.
# braindecode's :class:`~braindecode.EEGClassifier` (a skorch net) takes
# :class:`mne.Epochs` directly: it reads the number of channels, the sampling
# rate and the channel info from them, and the data in microvolts.
import tempfile
from pathlib import Path

import mne
import numpy as np
import torch
from braindecode import EEGClassifier
from braindecode.models import EEGNet

import mne_freqmask as mfm
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.evaluation import cell_permutation_test
from mne_freqmask.viz import add_saliency_to_report

mne.set_log_level("WARNING")

epochs, truth = make_epochs(n_subjects=3, n_epochs_per_class=30, random_state=0)
y = epochs.events[:, 2] - epochs.events[:, 2].min()
rng = np.random.default_rng(0)
held = np.sort(rng.choice(len(epochs), size=len(epochs) // 5, replace=False))
train = np.setdiff1d(np.arange(len(epochs)), held)

torch.manual_seed(0)
clf = EEGClassifier(
    EEGNet,
    # the constrained final layer: braindecode 1.8.1 deprecates the default
    module__final_layer_with_constraint=True,
    optimizer=torch.optim.Adam,
    optimizer__lr=1e-2,
    max_epochs=30,
    batch_size=16,
    train_split=None,
    verbose=0,
)
clf.fit(epochs[train], y=y[train])
accuracy = float(np.mean(clf.predict(epochs[held]) == y[held]))
print(f"Held-out accuracy: {accuracy:.2f} ({len(held)} epochs)")

# %%
# Explain the fitted classifier
# -----------------------------
# ``explain`` takes the fitted net itself: it explains the function that
# ``clf.predict`` applies to epochs in volts (braindecode's network after a
# scaling to microvolts), and leaves the net untouched.
sal = mfm.explain(
    epochs[held], clf, bands="canonical", reference=epochs[train], random_state=0
)
sal

# %%
# Which cells are reliably salient across the held-out epochs? A sign-flip
# permutation test over channel x band clusters
# (:func:`~mne_freqmask.evaluation.cell_permutation_test`). Its default
# baseline is each map's median, so a cell passes when it is reliably above
# the median of its map: on a model this sure of itself that is a broad set
# around the planted cells, not only them. Its significant cells can be
# marked on the topomaps:
cells = cell_permutation_test(sal)
print(cells)
fig = sal.average().plot_topomap(mask=cells)
print(f"Planted: {truth.band[0]:g}-{truth.band[1]:g} Hz on {truth.channels}")

# %%
# The removal game: the non-salient half of the cells removed (RN) should
# keep the accuracy, the salient half (RS) should destroy it.
removal = mfm.evaluate_removal(epochs[held], clf, sal, level="group")
removal

# %%
# Your own report
# ---------------
# :func:`~mne_freqmask.viz.add_saliency_to_report` adds one section to any
# :class:`mne.Report` (yours, or mne-bids-pipeline's): what the map is and
# where it came from (method, bands, model and versions), the topomaps with
# the significant cells marked, the channel x band image and the removal game.
report = mne.Report(title="EEGNet on simulated alpha")
report.add_epochs(epochs[held], title="Held-out epochs", psd=False)
add_saliency_to_report(report, sal, removal=removal, cell_test=cells)
with tempfile.TemporaryDirectory() as tmp:
    fname = Path(tmp) / "braindecode_report.html"
    report.save(fname, open_browser=False)
    print(f"{fname.name}: {fname.stat().st_size / 1e6:.1f} MB")
