"""Turn user input (Epochs, labels, groups) into arrays the methods share."""

from dataclasses import dataclass

import numpy as np
from mne import BaseEpochs
from mne.utils import _validate_type, logger

from mne_freqmask.utils._checks import _check_finite, _pick_indices


@dataclass
class ExplainInput:
    """Arrays shared by every explanation method.

    Attributes
    ----------
    x : ndarray, shape (n_epochs, n_channels, n_times)
        The epochs as fed to the model (all channels), float32.
    picks : ndarray of int
        Indices of the explained channels in ``x``.
    sfreq : float
        Sampling frequency.
    y : ndarray of int | None
        True class index per epoch, when known.
    target : ndarray of int | None
        Class to preserve per epoch, or None for the model's soft prediction.
    ref_x : ndarray, shape (n_ref, n_channels, n_times)
        Reference epochs (subject clusters, data scale).
    ref_groups : ndarray, shape (n_ref,)
        Subject of each reference epoch.
    scale : float
        Standard deviation of the reference data; methods that optimise in the
        frequency domain divide by it so values are of order 1.
    """

    x: np.ndarray
    picks: np.ndarray
    sfreq: float
    y: np.ndarray | None
    target: np.ndarray | None
    ref_x: np.ndarray
    ref_groups: np.ndarray
    scale: float

    @property
    def n_epochs(self):
        return self.x.shape[0]

    @property
    def n_times(self):
        return self.x.shape[2]


def epochs_labels(epochs, y=None):
    """Class index per epoch: ``y`` if given, else from the event codes."""
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(epochs):
            raise ValueError(
                f"y must have one class index per epoch ({len(epochs)}), got "
                f"shape {y.shape}."
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold integer class indices, got {y.dtype}.")
        return y.astype(int)
    codes = np.array(sorted(set(epochs.event_id.values())))
    return np.searchsorted(codes, epochs.events[:, 2]).astype(int)


def epochs_groups(epochs, groups, name="groups"):
    """Subject of each epoch: ``groups`` or ``metadata["subject"]`` or one."""
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or len(groups) != len(epochs):
            raise ValueError(
                f"{name} must have one entry per epoch ({len(epochs)} epochs), got "
                f"shape {groups.shape}; give the subject of each epoch."
            )
        return groups
    md = epochs.metadata
    if md is not None and "subject" in md.columns:
        return md["subject"].to_numpy()
    return np.zeros(len(epochs), int)


def epochs_data(epochs, name="epochs"):
    """Epoch data as float32, checked for NaN/Inf."""
    _validate_type(epochs, BaseEpochs, name, "mne.Epochs")
    x = epochs.get_data(picks="all", copy=True).astype(np.float32, copy=False)
    if len(x) == 0:
        raise ValueError(f"{name} holds no epochs (all dropped?).")
    _check_finite(x, name)
    return x


def make_input(epochs, *, picks, y, target, reference, groups):
    """Validate everything and build an :class:`ExplainInput`."""
    x = epochs_data(epochs)
    pick_idx = _pick_indices(epochs.info, picks)
    try:
        labels = epochs_labels(epochs, y)
    except ValueError:
        if y is not None:
            raise
        labels = None
    if target is None:
        tgt = None
    elif isinstance(target, str):
        if target != "true":
            raise ValueError(
                f'target must be None, "true" or an array of class indices, got '
                f"{target!r}."
            )
        if labels is None:
            raise ValueError('target="true" needs labels; pass y.')
        tgt = labels
    else:
        tgt = np.asarray(target)
        if tgt.shape != (len(x),) or not np.issubdtype(tgt.dtype, np.integer):
            raise ValueError(
                f"target must hold one integer class index per epoch ({len(x)}), "
                f"got shape {tgt.shape} and dtype {tgt.dtype}."
            )
    if reference is None:
        ref_x = x
        ref_groups = epochs_groups(epochs, groups)
    else:
        ref_x = epochs_data(reference, "reference")
        if (
            ref_x.shape[1:] != x.shape[1:]
            or reference.info["sfreq"] != epochs.info["sfreq"]
            or reference.ch_names != epochs.ch_names
        ):
            raise ValueError(
                "reference must have the same channels, sampling frequency and "
                f"number of samples as epochs; got {ref_x.shape[1:]} at "
                f"{reference.info['sfreq']} Hz vs {x.shape[1:]} at "
                f"{epochs.info['sfreq']} Hz."
            )
        ref_groups = epochs_groups(reference, groups)
    scale = float(ref_x.std())
    if scale == 0:
        raise ValueError("The (reference) epochs are all zero; nothing to explain.")
    n_sub = len(np.unique(ref_groups))
    logger.info(
        f"Explaining {len(x)} epochs x {len(pick_idx)} channels x {x.shape[2]} "
        f"samples; {len(ref_x)} reference epochs from {n_sub} subject(s)."
    )
    return ExplainInput(
        x=x,
        picks=pick_idx,
        sfreq=float(epochs.info["sfreq"]),
        y=labels,
        target=tgt,
        ref_x=ref_x,
        ref_groups=ref_groups,
        scale=scale,
    )
