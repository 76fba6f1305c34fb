"""
=====================================================
Motor imagery: which rhythms does EEGNet listen to?
=====================================================

Explain an EEGNet trained on imagined movements of subject 1 of the PhysioNet
EEG Motor Movement/Imagery dataset (EEGBCI). Imagining a movement lowers the
power of the mu (8-13 Hz) and beta (13-30 Hz) rhythms over the motor cortex
(event-related desynchronisation): over both hemispheres (C3, C4) for the hands,
near the midline (Cz) for the feet. Does the model use those rhythms, there?

The recordings are read from the project's ``shared/data/eegbci_S001`` folder
(or from ``$MNE_FREQMASK_SHARED_DATA/eegbci_S001``). Without them the example
falls back to simulated epochs with a planted mu-band effect on C3 and C4, so
that it always runs; on your own machine,
:func:`~mne_freqmask.datasets.eegbci.load_epochs` without ``path`` downloads
the files from PhysioNet with MNE.
"""

# Authors: mne_freqmask developers
# License: BSD-3-Clause

# %%
# Find the recordings
# -------------------
import warnings

import mne

import mne_freqmask as mfm
from mne_freqmask.datasets import eegbci, shared_data
from mne_freqmask.models import fit

mne.set_log_level("WARNING")


data_dir = shared_data("eegbci_S001")
print(f"EEGBCI recordings: {data_dir}")

# %%
# Load and prepare the epochs
# ---------------------------
# Runs 6, 10 and 14 alternate imagined movements of both fists and both feet,
# 15 cues per run. We keep 0.5-2.5 s after each cue (where the
# desynchronisation is strongest), resample to 100 Hz and band-pass 4-40 Hz.
# Resampling matters for the explanation too: the rfft bins are
# ``sfreq / n_times`` = 0.5 Hz apart and reach only up to 50 Hz, where nothing of
# interest is lost. The high-pass removes slow drifts: trained on 45 trials, an
# EEGNet otherwise happily uses them (try it, and look at the delta band).
if data_dir is not None:
    epochs = eegbci.load_epochs(
        path=data_dir, runs=(6, 10, 14), tmin=0.5, tmax=2.49, resample=100.0
    )
    epochs.filter(4.0, 40.0)
else:
    from mne_freqmask.datasets.simulated import make_epochs

    print("Recordings not found: using simulated epochs instead.")
    ch_names = [f"{row}{col}" for row in ("FC", "C", "CP") for col in "531z246"]
    epochs, _ = make_epochs(
        n_subjects=1,
        n_epochs_per_class=24,
        sfreq=100.0,
        n_times=200,
        ch_names=ch_names,
        channels=("C3", "C4"),
        band=(8.0, 13.0),
        random_state=0,
    )
    epochs.filter(4.0, 40.0)
print(epochs)

# %%
# Train EEGNet
# ------------
# 45 trials are few for a deep network: a higher learning rate and small
# batches let it converge; 20 % of the trials are held out.
model, history = fit(
    epochs, "eegnet", max_epochs=60, batch_size=8, lr=5e-3, random_state=1
)
print(
    f"Held-out accuracy: {history['val_accuracy'][-1]:.2f} "
    f"({len(history['val_idx'])} trials)"
)

# %%
# Explain it
# ----------
# The bands can be any named ranges in Hz. Bins outside them (below 4 Hz and
# above 40 Hz, removed by the filter) are never perturbed. With no
# ``reference``, the epochs are each other's donors: a removed cell is filled
# with the same cell of another epoch.
#
# Each epoch stops once its ranking of the cells has settled; when many
# reach ``n_steps=300`` first, ``explain`` warns. Any warning is caught and
# printed here so that it shows, and ``sal.diagnostics["stop"]`` says which
# epochs (1: step cap); ``sal`` itself shows the step counts.
bands = {"theta": (4, 8), "mu": (8, 13), "beta": (13, 30), "gamma": (30, 40)}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sal = mfm.explain(epochs, model, bands=bands, random_state=0)
for w in caught:
    print(f"{w.category.__name__}: {w.message}")
print(f"epochs at the step cap: {int((sal.diagnostics['stop'] == 1).sum())}")
sal

# %%
# Where are mu and beta used?
# ---------------------------
# The group-level map (all trials), one topomap per band.
group = sal.average()
fig = group.plot_topomap(bands=["mu", "beta"])

# %%
# Per class: the model's evidence for "both fists" and for "both feet".
if data_dir is not None:
    for cls in ("both_fists", "both_feet"):
        fig = sal[cls].average().plot_topomap(bands=["mu", "beta"])
        fig.suptitle(f"{cls}: {fig.get_suptitle()}")

# %%
# All channels and bands at once:
fig = group.plot_bands()

# %%
# The channels of the textbook story, C3, Cz and C4:
group.to_data_frame(picks=["C3", "Cz", "C4"], index=["channel", "band"])

# %%
# Check the explanation
# ---------------------
# The removal game on all trials: zeroing the non-salient half of the cells
# (RN) should keep the accuracy, zeroing the salient half (RS) should lower it.
# Most trials were seen in training, so "original" is optimistic; example
# :ref:`sphx_glr_auto_examples_02_unseen_subjects.py` plays the game on
# subjects the model never saw.
mfm.evaluate_removal(epochs, model, sal)
