"""Datasets: simulated ground truth and readers for public EEG sets."""

from mne_freqmask.datasets import simulated  # noqa: F401
