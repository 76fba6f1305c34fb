"""
==============================================
LRP for EEG transformers: verify, catch a Hans
==============================================

Layer-wise relevance propagation (LRP) splits a model's output logit into
contributions of every input sample. For transformers it needs rules for
LayerNorm, softmax attention and the products inside attention (AttnLRP,
Achtibat et al., 2024; CP-LRP, Ali et al., 2022); with the usual CNN rules
alone the relevance of braindecode's transformers is meaningless (zennit's
sums are off by orders of magnitude on Labram and CTNet, and its hooks fail on
EEGConformer). :mod:`mne_freqmask.lrp` brings those rules to any torch model,
without patching torch.

Following Meyer zu Bexten et al. (2026), we use LRP to (a) verify that a
transformer found a signal we planted, (b) catch a "Clever Hans" model that
uses eye movements instead of brain activity, and (c) compare an explanation
with the patterns of CSP, the classical motor-imagery decoder. Runs on a CPU
in a few minutes, offline.
"""

# Authors: mne_freqmask developers
# License: BSD-3-Clause

# %%
# (a) A known signal
# ------------------
# :func:`~mne_freqmask.datasets.simulated.make_epochs` makes two classes that
# differ only in alpha power (8-12 Hz) on C3 and C4. We train a small
# EEGConformer (convolutional stem + self-attention) and a small Labram (the
# EEG foundation model architecture, here trained from scratch;
# :func:`~mne_freqmask.models.make_labram` wraps it so that it is called as
# ``model(x)``).
import mne
import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.evaluation import clever_hans_report, csp_comparison, score_planted
from mne_freqmask.lrp import compute_relevance, relevance_time
from mne_freqmask.models import fit, make_labram

mne.set_log_level("WARNING")

epochs, truth = make_epochs(n_subjects=2, n_epochs_per_class=40, random_state=0)
conformer, hist = fit(
    epochs,
    "eegconformer",
    max_epochs=12,
    lr=3e-3,
    n_filters_time=8,
    num_layers=1,
    num_heads=2,
    random_state=0,
)
torch.manual_seed(0)  # Labram's initial weights
labram = make_labram(
    epochs.ch_names,
    2,
    len(epochs.times),
    epochs.info["sfreq"],
    patch_size=64,
    conv_out_channels=4,
    num_layers=1,
    num_heads=4,
)
# a small learning rate: at 3e-3 this tiny Labram's accuracy swings from pass
# to pass between chance and 0.97
labram, hist_l = fit(epochs, labram, max_epochs=30, lr=3e-4, random_state=0)
held = hist["val_idx"]
print(
    f"Held-out accuracy: EEGConformer {hist['val_accuracy'][-1]:.2f}, "
    f"Labram {hist_l['val_accuracy'][-1]:.2f}"
)

# %%
# Relevance in time, per channel
# ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
# :func:`~mne_freqmask.lrp.compute_relevance` returns the relevance of every
# sample as an :class:`mne.EpochsArray` (the values are relevance, not volts,
# hence ``scalings=1``). Summed over time, the planted channels stand out.
rel = compute_relevance(epochs[held], conformer)
print(rel.metadata[["label", "lrp_target", "lrp_logit", "lrp_sum"]].head())
abs_rel = mne.EvokedArray(
    np.abs(rel.get_data()).mean(0), rel.info, tmin=rel.tmin, comment="|relevance|"
)
abs_rel.plot_topomap(times="peaks", scalings=1, units="|relevance|", cmap="Reds")

# %%
# How much of the logit is explained?
# ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
# With CP-LRP (attention weights held constant) the rules conserve relevance
# exactly: input relevance plus what biases and embeddings absorb equals the
# logit. AttnLRP also propagates through the attention weights; its softmax
# rule is not conservative. The input keeps a large share either way.
x = epochs[held].get_data()
for attention in ("attnlrp", "cplrp"):
    for name, model in (("EEGConformer", conformer), ("Labram", labram)):
        r, logit = relevance_time(model, x, attention=attention)
        print(
            f"{attention:8s} {name:12s} input relevance / logit = "
            f"{r.sum() / logit.sum():.2f}"
        )

# %%
# Relevance in frequency
# ^^^^^^^^^^^^^^^^^^^^^^
# ``explain(..., method="lrp")`` carries the time-domain relevance onto the
# rfft bins (DFT-LRP) and sums it over channel x band cells; the result is a
# :class:`~mne_freqmask.SpectralSaliency` like every other method's.
# :func:`~mne_freqmask.evaluation.score_planted` checks it against the planted
# answer.
for name, model in (("EEGConformer", conformer), ("Labram", labram)):
    sal = mfm.explain(epochs[held], model, method="lrp", bands="canonical")
    score = score_planted(sal, truth)
    print(
        f"{name}: top cell {score['top_cell']}, "
        f"{score['planted_fraction']:.0%} of |relevance| on the planted cells "
        f"({score['chance']:.0%} of the cells), AUC {score['auc']:.2f}"
    )
sal_conformer = mfm.explain(epochs[held], conformer, method="lrp", bands="canonical")
sal_conformer.plot_bands()

# %%
# (b) A Clever Hans
# -----------------
# Now every "high" epoch also carries a slow, large ocular artefact on Fp1 and
# Fp2. The model can be right for the wrong reason: LRP shows where it looks.
art_epochs, _ = make_epochs(
    n_subjects=2,
    n_epochs_per_class=40,
    artifact=dict(probability=1.0),
    random_state=0,
)
hans, hist_h = fit(
    art_epochs,
    "eegconformer",
    max_epochs=12,
    lr=3e-3,
    n_filters_time=8,
    num_layers=1,
    num_heads=2,
    random_state=0,
)
held_h = hist_h["val_idx"]
sal_hans = mfm.explain(art_epochs[held_h], hans, method="lrp", bands="canonical")
print(clever_hans_report(sal_hans, ("Fp1", "Fp2", "F7", "F8")))
print(clever_hans_report(sal_conformer, ("Fp1", "Fp2", "F7", "F8")))
sal_hans.pick(["Fp1", "Fp2", "F7", "F8", "C3", "Cz", "C4", "O1", "O2"]).plot_bands()

# %%
# (c) Real motor imagery: compare with CSP
# ----------------------------------------
# PhysioNet EEGBCI subject 1 imagines moving the left or the right fist (runs
# 4, 8 and 12). CSP on the mu and beta bands finds sensorimotor patterns; we
# compare the topography of a small EEGConformer's LRP relevance with them.
# (The data are read from ``$MNE_FREQMASK_SHARED_DATA/eegbci_S001`` or
# ``shared/data`` beside the repository when present, as in examples 01 and
# 02, else downloaded once by MNE.)
from mne_freqmask.datasets import eegbci, shared_data  # noqa: E402

mi = eegbci.load_epochs(shared_data("eegbci_S001"), runs=(4, 8, 12), resample=80.0)
mi_model, _ = fit(
    mi,
    "eegconformer",
    max_epochs=25,
    lr=1e-3,
    n_filters_time=8,
    num_layers=1,
    num_heads=2,
    val_size=0.0,
    random_state=0,
)
sal_mi = mfm.explain(mi, mi_model, method="lrp", bands="canonical")
res = csp_comparison(mi, sal_mi, model=mi_model)
print(res.scores[["relevance_share", "csp_lda_accuracy", "correlation", "csp_peak"]])
print(clever_hans_report(sal_mi))

# %%
# One row per band: how much of the relevance the band holds, what CSP-LDA
# finds there, and whether the relevance follows the CSP patterns. (The model
# was trained on these trials, so its accuracy here is a training accuracy.)
# The plot shows two CSP patterns and both channel profiles for the band where
# CSP-LDA is best and the band holding most relevance.
res.plot()

# %%
# With 45 trials, a transformer trained from scratch is a weak decoder, and
# its relevance need not follow CSP: that is the point of the check. A low
# correlation with CSP, or relevance on frontal channels at low frequencies,
# says the model's evidence is not the expected sensorimotor rhythm. Whether
# it *relies* on frontal delta is decided by the model, with
# :func:`~mne_freqmask.evaluation.clever_hans_test` on held-out epochs: see
# the user guide's :ref:`verify`.
