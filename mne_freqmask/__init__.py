"""Explain end-to-end EEG deep-learning models in the frequency domain."""

__version__ = "0.1.0.dev0"
