"""Datasets: simulated ground truth and readers for public EEG sets."""

import os
from pathlib import Path

from mne_freqmask.datasets import eegbci, eegmat, seed, simulated  # noqa: F401


def shared_data(name):
    """Return a local copy of a dataset folder, if there is one.

    Parameters
    ----------
    name : str
        The folder's name (e.g. ``"eegbci_S001"`` or ``"eegmat"``).

    Returns
    -------
    path : pathlib.Path | None
        ``$MNE_FREQMASK_SHARED_DATA/<name>`` or ``shared/data/<name>`` next
        to the source checkout of mne_freqmask, whichever exists first; None
        when neither does (the examples then fall back to simulated data).
    """
    roots = []
    if os.environ.get("MNE_FREQMASK_SHARED_DATA"):
        roots.append(Path(os.environ["MNE_FREQMASK_SHARED_DATA"]))
    roots.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    for root in roots:
        if (root / name).is_dir():
            return root / name
    return None
