"""Explanation methods; see :mod:`mne_freqmask.methods._registry`."""
