"""
=========================================================
SEED emotion recognition: the setting of the paper
=========================================================

Wang et al. validate FreqMask on SEED (15 subjects watching positive, neutral
and negative film clips, 62 channels at 200 Hz), classifying positive vs
negative from non-overlapping 2 s segments with EEGNet, TSception and
DeepConvNet. This example reproduces the pipeline on a few subjects with
EEGNet: train, explain at the group and the instance level, and play the
removal game.

.. note::

   SEED is shared under a licence agreement
   (https://bcmi.sjtu.edu.cn/home/seed/), so it cannot be downloaded here.
   This example is executed only when the documentation is built with the
   environment variable ``MNE_FREQMASK_SEED_PATH`` pointing at a local copy
   (the folder that contains ``Preprocessed_EEG/``); otherwise its code is
   shown without outputs. To fetch SEED with the link you received, see
   :func:`mne_freqmask.datasets.seed.data_path`.
"""

# Authors: mne_freqmask developers
# License: BSD-3-Clause

# %%
# Read a few subjects
# -------------------
# :func:`~mne_freqmask.datasets.seed.data_path` with ``download=False`` finds
# the local copy (``$MNE_FREQMASK_SEED_PATH``, else ``~/mne_data/MNE-seed-data``)
# or says how to get one. We read the first session of three subjects,
# positive and negative clips, cut into 2 s segments, and keep every fourth
# segment and 100 Hz to make the example quick.
import os

import mne
import numpy as np

import mne_freqmask as mfm
from mne_freqmask.datasets import seed
from mne_freqmask.models import fit

mne.set_log_level("WARNING")

path = seed.data_path(os.environ.get("MNE_FREQMASK_SEED_PATH") or None, download=False)
epochs = seed.load_epochs(path, subjects=[1, 2, 3], sessions=[1], segment=2.0)
epochs = epochs[::4]
epochs.resample(100.0)
print(epochs)

# %%
# A subject-independent EEGNet
# ----------------------------
# Trained on the segments of all three subjects, 20 % held out.
model, history = fit(epochs, "eegnet", max_epochs=15, lr=3e-3, random_state=0)
train, held = history["train_idx"], history["val_idx"]
print(f"Held-out accuracy: {history['val_accuracy'][-1]:.2f} ({len(held)} segments)")

# %%
# Explain the held-out segments
# -----------------------------
# The paper's setting: 10 equal bands from 0 Hz to Nyquist (here 5 Hz each),
# target alignment towards the nearest training subject (``reference`` and the
# ``subject`` column of the metadata).
sal = mfm.explain(
    epochs[held], model, bands=10, reference=epochs[train], random_state=0
)
sal

# %%
# Group level: one topomap per band
fig = sal.average().plot_topomap()

# %%
# ... and positive vs negative segments separately
for label in ("positive", "negative"):
    fig = sal[label].average().plot_topomap()
    fig.suptitle(f"{label}: {fig.get_suptitle()}")

# %%
# The removal game
# ----------------
# Group level (one threshold for all segments, paper §4.3) and instance level
# (each segment's own map, §4.4).
for level in ("group", "instance"):
    scores = mfm.evaluate_removal(epochs[held], model, sal, level=level)
    print(f"{level}: {scores['accuracy'].round(3).to_dict()}")

# %%
# Instance-level maps vary from segment to segment; the spread of the mask
# values per band, over segments and channels:
data = sal.get_data()
for name, values in zip(sal.band_names, np.moveaxis(data, -1, 0), strict=True):
    print(f"{name:>14}: mean {values.mean():.2f}, std {values.std():.2f}")
