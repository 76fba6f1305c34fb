"""What the dataset readers share: their folder, their integer options, and
cutting recordings into fixed-length epochs."""

from pathlib import Path

import numpy as np
from mne import EpochsArray, get_config
from mne.utils import _validate_type


def mne_data_folder(name):
    """``<MNE_DATA>/<name>``, ``<MNE_DATA>`` being MNE's config value or
    ``~/mne_data``."""
    root = get_config("MNE_DATA")
    root = Path(root).expanduser() if root else Path("~/mne_data").expanduser()
    return root / name


def int_list(value, name, *, empty):
    """``value`` as a list of int: an int, or a list of them (None stays
    None); ``empty`` is the end of the message of an empty list."""
    if value is None:
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = [value]
    _validate_type(
        value, (list, tuple, range, np.ndarray), name, "int, list of int or None"
    )
    out = []
    for v in value:
        _validate_type(v, "int", f"each entry of {name}")
        out.append(int(v))
    if not out:
        raise ValueError(f"{name} must not be empty; {empty}.")
    return out


def segment_samples(segment, sfreq, fix=""):
    """The samples of ``segment`` seconds at ``sfreq``, a positive whole
    number (``fix``: an example that is one)."""
    n_seg = int(round(segment * sfreq))
    if n_seg < 1 or abs(n_seg - segment * sfreq) > 1e-6:
        raise ValueError(
            f"segment * sfreq ({sfreq:g} Hz) must be a positive whole number of "
            f"samples, got segment={segment}{fix}."
        )
    return n_seg


def cut_segments(x, n_seg, offset, code):
    """Non-overlapping segments of ``n_seg`` samples of a recording ``x``
    (channels x times) from its first sample, the remainder dropped.

    Returns the segments ``(n_segments, n_channels, n_seg)`` and their
    events (sample ``offset`` + start, event ``code``).
    """
    n_out = x.shape[1] // n_seg
    segs = x[:, : n_out * n_seg].reshape(x.shape[0], n_out, n_seg)
    starts = offset + np.arange(n_out) * n_seg
    events = np.column_stack(
        [starts, np.zeros(n_out, int), np.full(n_out, code)]
    ).astype(int)
    return segs.transpose(1, 0, 2), events


def segments_epochs(data, info, events, event_id, metadata):
    """One :class:`mne.EpochsArray` of the segments cut from the recordings."""
    return EpochsArray(
        np.concatenate(data),
        info,
        events=np.concatenate(events).astype(int),
        tmin=0.0,
        event_id=event_id,
        metadata=metadata,
        baseline=None,
    )
