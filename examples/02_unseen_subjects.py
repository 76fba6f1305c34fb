"""
=====================================================
Unseen subjects: explaining a cross-subject model
=====================================================

A subject-independent model is trained on some subjects and used on others.
Following §4.5 of Wang et al., we train EEGNet with a leave-one-subject-out
split on the PhysioNet "EEG During Mental Arithmetic Tasks" recordings (rest vs
serial subtraction, 12 subjects, 8 channels), explain its decisions on the
subject it never saw, and check each explanation with the removal game. Known
physiology: alpha power (8-12 Hz) drops during the task, most over parietal and
occipital channels.

Only four folds are run, to keep the example fast. The recordings are read
from the project's ``shared/data/eegmat`` folder (or from
``$MNE_FREQMASK_SHARED_DATA/eegmat``); without them the example falls back to
simulated subjects with a planted alpha effect on P3, Pz and P4.
:func:`~mne_freqmask.datasets.eegmat.load_epochs` without ``path`` downloads
the dataset from PhysioNet.
"""

# Authors: mne_freqmask developers
# License: BSD-3-Clause

# %%
import matplotlib.pyplot as plt
import mne
import numpy as np

from mne_freqmask.datasets import eegmat, shared_data
from mne_freqmask.workflows import leave_one_subject_out

mne.set_log_level("WARNING")


data_dir = shared_data("eegmat")
print(f"EEGMAT recordings: {data_dir}")

# %%
# Load the epochs
# ---------------
# Each recording is cut into 2 s segments, as many rest as task segments per
# subject (31 of each). Resampling to 100 Hz gives rfft bins 0.5 Hz apart up to
# 50 Hz, so that each canonical band holds several bins (at 500 Hz, the default
# ``bands=10`` would put all of delta to beta into the first band).
if data_dir is not None:
    epochs = eegmat.load_epochs(path=data_dir, segment=2.0, resample=100.0)
else:
    from mne_freqmask.datasets.simulated import make_epochs

    print("Recordings not found: using simulated subjects instead.")
    epochs, _ = make_epochs(
        n_subjects=6,
        n_epochs_per_class=30,
        sfreq=100.0,
        n_times=200,
        ch_names=["F3", "Fz", "F4", "P3", "Pz", "P4", "O1", "O2"],
        channels=("P3", "Pz", "P4"),
        band=(8.0, 12.0),
        random_state=0,
    )
subjects = epochs.metadata["subject"].to_numpy()
print(epochs)
print(f"{len(np.unique(subjects))} subjects")

# %%
# Leave one subject out
# ---------------------
# :func:`mne_freqmask.workflows.leave_one_subject_out` runs the protocol: for
# each held-out subject, train EEGNet on all the others, explain the held-out
# subject's epochs with the training epochs as ``reference`` (the target
# alignment pulls each perturbation towards the nearest *training* subject, as
# in the paper), and play the removal game on the held-out subject. With
# ``seen=True`` it also trains one model on every subject and explains the same
# epochs with it, to compare the maps of unseen and seen subjects.
#
# To keep the example fast, only four subjects are held out (four folds), 30
# epochs of each are explained (the group-level game still scores all of
# them). FreqMask keeps its defaults: with at most 100 steps, half of the
# epochs hit the cap and ``explain`` warns that their masks were still moving.
result = leave_one_subject_out(
    epochs,
    "eegnet",
    subjects=np.unique(subjects)[:4],
    fit_kw=dict(max_epochs=20, lr=3e-3),
    explain_kw=dict(bands="canonical"),
    n_explain=30,
    seen=True,
    random_state=0,
)
result

# %%
# The removal game on unseen subjects
# -----------------------------------
# Accuracy on each held-out subject with the original epochs, with the
# non-salient cells removed (RN) and with the salient cells removed (RS), at
# the group level (the subject's averaged map) and at the instance level (each
# epoch's own map).
#
# Read the "original" column first. Telling rest from mental arithmetic in 2 s
# of 8-channel EEG of a *new* person is hard: subjects differ more from each
# other than rest differs from task (on this copy, a logistic regression on
# log band power reaches about 0.55 leave-one-subject-out). Where the model is
# near chance, there is no decision to explain and the removal game cannot
# confirm anything: RN and RS stay near chance too (the paper's subject 2,
# §4.5). A model can even be reliably *wrong* on a new person (accuracy well
# below 0.5: its rule is reversed for that subject). Where the model is above
# chance, a trustworthy map keeps RN near the original and brings RS down. The
# deletion and insertion areas (``deletion_auc``, ``insertion_auc``) are the
# threshold-free version of the game: accuracy as the most salient cells are
# removed (low is good) or added back (high is good).
result.scores.round(2)

# %%
table = result.scores[["original", "RN", "RS"]]
table.index = [f"subject {s}" for s in table.index]
fig, ax = plt.subplots(layout="constrained", figsize=(6, 3))
table.plot.bar(ax=ax, rot=0, color=["0.6", "tab:green", "tab:red"])
ax.axhline(0.5, color="k", lw=0.8, ls="--", label="chance")
ax.set(ylabel="Accuracy", ylim=(0, 1), title="Removal game on unseen subjects")
ax.legend(ncols=4, fontsize="small", loc="lower center")

# %%
# Unseen and seen subjects
# ------------------------
# ``result.unseen`` is the group-level map of all held-out subjects, each
# explained by the model that never saw them; ``result.seen`` the map of the
# same epochs explained by the model trained on every subject (paper Fig. 10).
# Given the accuracies above, read them as "what these models look at", not as
# physiology.
fig = result.unseen.plot_topomap()
fig.suptitle(f"Unseen subjects: {fig.get_suptitle()}")
fig = result.seen.plot_topomap()
fig.suptitle(f"Seen subjects: {fig.get_suptitle()}")

# %%
# How similar are the two maps? Spearman rank correlation over all channel x
# band cells (1: the same ranking):
print(f"Unseen vs seen: {result.correlation:.2f}")
