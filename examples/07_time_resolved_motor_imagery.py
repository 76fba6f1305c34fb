"""
==============================================================
Motor imagery in time: when does EEGNet listen to mu and beta?
==============================================================

Example :ref:`sphx_glr_auto_examples_01_motor_imagery.py` asks *which*
rhythms an EEGNet uses to tell imagined movements of both fists from both feet
(subject 1 of the PhysioNet EEG Motor Movement/Imagery dataset, EEGBCI). Here
we ask *when*: explained on short windows
(``explain(..., time_windows=(0.5, 0.25))``), the saliency becomes a channel x
band x time map, a :class:`~mne_freqmask.SpectralSaliencyTFR`. Imagining a
movement lowers the mu (8-13 Hz) and beta (13-30 Hz) power over the motor
cortex from a few hundred milliseconds after the cue (event-related
desynchronisation, ERD; Pfurtscheller & Lopes da Silva, 1999). We put the
saliency's time course on C3, Cz and C4 next to MNE's own ERD map of the same
trials, computed with Morlet wavelets and a pre-cue baseline.

The recordings are read from the project's ``shared/data/eegbci_S001`` folder
(or from ``$MNE_FREQMASK_SHARED_DATA/eegbci_S001``). Without them the example
falls back to simulated epochs with a planted beta burst on C3 and C4 1-2 s
after the "cue", so that it always runs (the numbers quoted in the text are
those of the recordings); on your own machine,
:func:`~mne_freqmask.datasets.eegbci.load_epochs` without ``path`` downloads
the files from PhysioNet with MNE.

References
----------
Pfurtscheller, G. & Lopes da Silva, F. H. (1999). Event-related EEG/MEG
synchronization and desynchronization: basic principles. Clinical
Neurophysiology 110(11), 1842-1857.

Schalk, G. et al. (2004). BCI2000: a general-purpose brain-computer interface
(BCI) system. IEEE TBME 51(6), 1034-1043.
"""

# Authors: mne_freqmask developers
# License: BSD-3-Clause

# %%
# Load the epochs, with half a second before the cue
# --------------------------------------------------
# Runs 6, 10 and 14 alternate imagined movements of both fists and both feet,
# 15 cues per run, each preceded by about 4 s of rest. We keep -0.5 to 3.5 s
# around each cue, resample to 100 Hz and band-pass 4-40 Hz, as in example
# :ref:`sphx_glr_auto_examples_01_motor_imagery.py`. The model sees the
# pre-cue half second too: a model that relied on it would be using something
# other than the imagery.
import warnings

import matplotlib.pyplot as plt
import mne
import numpy as np
from scipy.stats import pearsonr, spearmanr

import mne_freqmask as mfm
from mne_freqmask.datasets import eegbci, shared_data
from mne_freqmask.models import fit

mne.set_log_level("WARNING")

data_dir = shared_data("eegbci_S001")
print(f"EEGBCI recordings: {data_dir}")
TMIN, TMAX = -0.5, 3.49


def _load(tmin, tmax):
    """The epochs from ``tmin`` to ``tmax`` s around the cue, 4-40 Hz."""
    if data_dir is not None:
        ep = eegbci.load_epochs(
            path=data_dir, runs=(6, 10, 14), tmin=tmin, tmax=tmax, resample=100.0
        )
    else:
        from mne_freqmask.datasets.simulated import make_epochs

        ch_names = [f"{row}{col}" for row in ("FC", "C", "CP") for col in "531z246"]
        n_times = int(round((tmax - tmin) * 100)) + 1
        ep, _ = make_epochs(
            n_subjects=1,
            n_epochs_per_class=24,
            sfreq=100.0,
            n_times=n_times,
            ch_names=ch_names,
            channels=("C3", "C4"),
            band=(18.0, 22.0),
            burst=dict(tmin=1.0 - tmin, tmax=2.0 - tmin),
            random_state=0,
        )
        ep.shift_time(tmin, relative=False)
    return ep.filter(4.0, 40.0)


if data_dir is None:
    print("Recordings not found: using simulated epochs instead.")
epochs = _load(TMIN, TMAX)
print(epochs)

# %%
# Train EEGNet
# ------------
# The settings of example :ref:`sphx_glr_auto_examples_01_motor_imagery.py`;
# 20 % of the 45 trials (9) are held out. With so few held-out trials the
# accuracy is coarse (one trial is 11 points): it says that the model is
# above chance, not how far.
model, history = fit(
    epochs, "eegnet", max_epochs=60, batch_size=8, lr=5e-3, random_state=1
)
val_acc = history["val_accuracy"][-1]
print(f"Held-out accuracy: {val_acc:.2f} ({len(history['val_idx'])} trials)")

# %%
# Explain it on short windows
# ---------------------------
# Half-second Hann windows every quarter second: 17 windows, centred from
# -0.5 s to 3.5 s (the first and the last reach past the epoch; its edges are
# reflected, as in :func:`torch.stft`). The bins of one window are 2 Hz apart.
# A removed cell (channel x band x window) is filled with the same cell of
# another epoch. Warnings (such as epochs that reach the step cap) are caught
# and printed so that they show.
bands = {"theta": (4, 8), "mu": (8, 13), "beta": (13, 30), "gamma": (30, 40)}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sal = mfm.explain(
        epochs, model, bands=bands, time_windows=(0.5, 0.25), random_state=0
    )
for w in caught:
    print(f"{w.category.__name__}: {w.message}")
print(f"model passes per epoch: median {np.median(sal.diagnostics['n_steps']):.0f}")
sal

# %%
# MNE's ERD map of the same trials
# --------------------------------
# Morlet wavelets of half a second (``n_cycles = freqs / 2``), so that the
# two maps have about the same time resolution. The wavelets are computed on
# epochs one second longer at each end and then cropped, so that the edges of
# the epochs do not leak into the baseline; the power is expressed in percent
# of its mean over -0.5 to 0 s (the cue is at 0; MNE's ``mode="percent"``
# gives the fraction, shown here times 100).
freqs = np.arange(6.0, 36.0, 2.0)
long_epochs = _load(TMIN - 1.0, TMAX + 1.0)
power = long_epochs.compute_tfr(
    "morlet", freqs, n_cycles=freqs / 2.0, average=True, decim=5
)
power.crop(TMIN, TMAX).apply_baseline((TMIN, 0.0), mode="percent")
power.data *= 100.0


def erd(band, picks, times):
    """Mean ERD (%) in ``band`` at ``picks``, in the saliency's windows."""
    fi = (power.freqs >= bands[band][0]) & (power.freqs < bands[band][1])
    data = power.copy().pick(picks).data[:, fi].mean(1)  # channels x times
    out = []
    for t in times:
        ti = np.abs(power.times - t) <= 0.25
        out.append(data[:, ti].mean(1))
    return np.array(out).T  # channels x windows, in %


# %%
# When does the model rely on mu and beta?
# ----------------------------------------
# Top: the saliency (mean over trials) of mu and beta on C3, Cz and C4, one
# point per window, at the window's centre. Bottom: MNE's ERD in the same
# band and channels, averaged over the same half-second spans. Both use all
# 45 trials (fists and feet together).
picks = ["C3", "Cz", "C4"]
group = sal.average()
times = group.times
fig, axes = plt.subplots(2, 2, sharex=True, figsize=(9, 5.5), layout="constrained")
for col, band in enumerate(("mu", "beta")):
    s = group.get_data(picks=picks, bands=[band])[:, 0]  # channels x windows
    e = erd(band, picks, times)
    for ch, s_ch, e_ch in zip(picks, s, e, strict=True):
        axes[0, col].plot(times, s_ch, "o-", label=ch)
        axes[1, col].plot(times, e_ch, "o-", label=ch)
    axes[0, col].set(title=f"{band} {bands[band]} Hz: saliency", ylabel="saliency")
    axes[1, col].set(title="ERD (Morlet)", ylabel="power change (%)", xlabel="time (s)")
    axes[1, col].axhline(0, color="k", lw=0.5)
    for ax in axes[:, col]:
        ax.axvline(0, color="k", ls="--", lw=0.8)
axes[0, 0].legend()
fig.suptitle("Saliency (top) and ERD (bottom) after the cue (dashed)")

# %%
# The same numbers, printed: the saliency and the ERD of each band and
# channel, window by window.
rows = []
for band in ("mu", "beta"):
    s = group.get_data(picks=picks, bands=[band])[:, 0]
    e = erd(band, picks, times)
    for i, ch in enumerate(picks):
        rows.append((band, ch, s[i], e[i]))
print("time (s)     " + " ".join(f"{t:6.2f}" for t in times))
for band, ch, s, e in rows:
    print(f"{band:4s} {ch:3s} sal " + " ".join(f"{v:6.3f}" for v in s))
    print(f"{band:4s} {ch:3s} ERD " + " ".join(f"{v:6.0f}" for v in e))

# %%
# Where, over the span of the ERD?
# --------------------------------
# The saliency averaged over the windows centred in 0.5-2.5 s (top), next to
# MNE's ERD over the same span (bottom; blue is a power drop).
fig, axes = plt.subplots(2, 2, figsize=(7, 6), layout="constrained")
group.plot_topomap(tmin=0.5, tmax=2.5, bands=["mu", "beta"], axes=axes[0], show=False)
for ax, band in zip(axes[1], ("mu", "beta"), strict=True):
    fmin, fmax = bands[band]
    power.plot_topomap(
        tmin=0.5,
        tmax=2.5,
        fmin=fmin,
        fmax=fmax,
        cmap="RdBu_r",
        units="%",
        cbar_fmt="%d",
        axes=ax,
        show=False,
    )
    ax.set_title(f"ERD, {band} {fmin}-{fmax} Hz")
fig.suptitle("0.5-2.5 s after the cue: saliency (top) and ERD (bottom)")

# %%
# The band x time image of the saliency at C3, Cz and C4 (mean of the three),
# one row per band (:meth:`~mne_freqmask.SpectralSaliencyTFR.plot`; MNE's own
# TFR plots work on :meth:`~mne_freqmask.SpectralSaliencyTFR.to_tfr`, with
# each band as one "frequency" at its centre).
fig = group.plot(picks=picks, combine="mean", show=False)[0]

# %%
# How much do they agree?
# -----------------------
# Three numbers per band. In time: the correlation, over the 17 windows, of
# the saliency on C3/Cz/C4 (mean) with the desynchronisation there (minus
# the ERD, so that a deeper power drop counts as more). In space: the rank
# correlation, over the 64 channels, of the two topomaps of 0.5-2.5 s. And
# the saliency after the cue (windows centred in 0.5-2.5 s) relative to the
# windows centred before it (-0.5 to -0.25 s). (On the simulated fallback
# the planted burst is a power *increase*, so there the signs flip.)
post = (times >= 0.5) & (times <= 2.5)
pre = times < 0
ch_all = epochs.ch_names
for band in ("mu", "beta"):
    s = group.get_data(picks=picks, bands=[band])[:, 0].mean(0)
    e = erd(band, picks, times).mean(0)
    r_t = pearsonr(s, -e).statistic
    s_map = group.get_data(bands=[band], tmin=0.5, tmax=2.5)[:, 0].mean(-1)
    e_map = erd(band, ch_all, times[post]).mean(-1)
    r_s = spearmanr(s_map, -e_map).statistic
    print(
        f"{band}: time r = {r_t:+.2f}; space rho = {r_s:+.2f}; saliency "
        f"post/pre cue = {s[post].mean() / s[pre].mean():.2f}; ERD on C3/Cz/C4 "
        f"{e[post].mean():.0f} %; most salient channels "
        f"{[ch_all[i] for i in np.argsort(s_map)[::-1][:5]]}"
    )

# %%
# The same span per class: mean saliency of the trials of each class (the
# model's evidence for that class) and the ERD of those trials, on C3, Cz and
# C4: the windows centred in 0.5-2.5 s, the ERD over the span they cover
# (0.25-2.75 s).
for cls in epochs.event_id:
    p_cls = long_epochs[cls].compute_tfr(
        "morlet", freqs, n_cycles=freqs / 2.0, average=True, decim=5
    )
    p_cls.crop(TMIN, TMAX).apply_baseline((TMIN, 0.0), mode="percent")
    s_cls = sal[cls].average().get_data(picks=picks, tmin=0.5, tmax=2.5)
    for band in ("mu", "beta"):
        bi = list(bands).index(band)
        fi = (p_cls.freqs >= bands[band][0]) & (p_cls.freqs < bands[band][1])
        ti = (p_cls.times >= 0.25) & (p_cls.times <= 2.75)
        e_cls = 100.0 * p_cls.copy().pick(picks).data[:, fi][..., ti].mean((1, 2))
        s_band = s_cls[:, bi].mean(-1)
        print(
            f"{cls:10s} {band:4s} saliency "
            + " ".join(f"{ch} {v:.2f}" for ch, v in zip(picks, s_band, strict=True))
            + " | ERD "
            + " ".join(f"{ch} {v:+.0f} %" for ch, v in zip(picks, e_cls, strict=True))
        )

# %%
# What agrees, and what does not
# ------------------------------
# On the recordings (the numbers printed above, from one run of this example
# on one CPU thread):
#
# - **The model.** 7 of the 9 held-out trials are right (0.78; the larger
#   class is 24 of 45 = 0.53). On 9 trials that is weak evidence: a coin
#   gets 7 or more of 9 right with probability 0.09. The model is probably,
#   not certainly, above chance, and the maps below are read with that in
#   mind; most of the 45 explained trials were seen in training.
# - **When: agrees.** Both maps say that what matters comes after the cue.
#   The saliency of mu and beta on C3 and C4 is lowest in the windows centred
#   before it (C3 mu 0.47 at -0.5 s, C4 beta 0.25) and climbs to a plateau
#   from about 0.5-0.75 s on (C3 mu 0.545-0.58 from 0.75 to 3.25 s, C4 mu
#   0.47-0.51 at 0.5-1.25 s); averaged over C3/Cz/C4 it is 1.12 (mu) and
#   1.24 (beta) times higher in the windows centred in 0.5-2.5 s than in those
#   before 0 s. MNE's mu ERD starts at the same time: -11 to -24 % on the
#   three channels at 0.75-1.25 s, after a rise of up to +24 % at 0-0.25 s
#   (the evoked response to the cue), and -2 to -26 % from 2 s on.
# - **When: does not agree.** The saliency does not follow the ERD's shape
#   within the trial: the ERD recovers at about 1.5 s and deepens again
#   towards 3.5 s, the saliency stays near its plateau; over the 17 windows
#   the two time courses correlate weakly (r = +0.24 for mu, -0.16 for
#   beta). In beta the ERD is small on C3/C4 (-12 to +8 %) and Cz gains power
#   (+4 to +13 % from 0 to 2.5 s), yet beta is as salient as mu. Windows at
#   the ends of the epoch (-0.5 s and 3.5 s) are half reflection (see
#   above), which alone may lower their saliency: the pre-cue contrast rests
#   mostly on the window at -0.25 s.
# - **Where.** The saliency is highest over the left motor and premotor
#   cortex (FC3, C3, FC1, C5, FC5) in both bands, C3 above C4 and both above
#   Cz. The ERD is a broad drop over the fronto-central channels with strong
#   power *increases* at right temporal and parieto-occipital edge channels;
#   across the 64 channels the two topomaps of 0.5-2.5 s hardly rank alike
#   (Spearman rho = -0.01 for mu, +0.26 for beta). Cz, where the feet's ERD
#   is expected, carries the least saliency of the three.
# - **Per class: agrees.** The mu ERD is the fists' (C3 -19 %, Cz -13 %, C4
#   -28 % over 0.25-2.75 s); the feet's trials show none on C3 (-1 %) and a
#   rise on Cz and C4 (+9 %, +11 %). So the class difference in mu lies on C3
#   and C4, which is where the model looks; the saliency is nearly the same
#   for both classes (C3 mu 0.57 for the fists, 0.55 for the feet; Cz 0.45
#   for both): the model reads the same cells and decides on their power.
#   This is why the grand-average ERD map, which mixes a drop and a rise,
#   ranks the channels unlike the saliency. In beta the per-class ERD is
#   small (-2 to +11 %) and yet beta is as salient as mu: the model uses beta
#   beyond what the average power change shows.
#
# Two differences are by design. The ERD averages the power of both classes
# and has a sign; the saliency is unsigned and says how much the model's
# evidence for each trial's own class depends on a cell, wherever the
# class difference is, so a power change common to both classes (such as the
# cue's evoked response) need not be salient, and a class difference without
# a large mean ERD can be. On this subject and this model (itself only
# probably above chance): the model uses mu and beta over the sensorimotor
# cortex, left more than right, from about half a second after the cue,
# where and when the fists' ERD sets the classes apart; it does not follow
# the ERD's time course within the trial, and its left-right asymmetry
# (C3 above C4, where the fists' ERD is deeper on C4) is not in the ERD.
