"""Datasets: simulated ground truth and readers for public EEG sets."""

from mne_freqmask.datasets import eegbci, eegmat, seed, simulated  # noqa: F401
