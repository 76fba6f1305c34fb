"""Turn user input (Epochs, labels, groups) into arrays the methods share."""

from dataclasses import dataclass

import numpy as np
from mne import BaseEpochs
from mne.utils import _validate_type, logger

from mne_freqmask.utils._checks import _check_finite, _pick_indices
from mne_freqmask.utils._moments import RunningMoments

#: epochs read at a time when a pass over all the data is needed
READ_CHUNK = 512


class EpochsSource:
    """Float32 data of ``mne.Epochs``, read chunk by chunk, never all at once.

    A read-only stand-in for the ``(n_epochs, n_channels, n_times)`` array the
    methods need: ``source[sl]`` (a slice, an index array or a tuple whose first
    element is one of those) returns a float32 array of just those epochs.
    Preloaded epochs are sliced in memory; epochs not preloaded are read from
    disk by MNE for each chunk, so explaining them keeps memory bounded by the
    chunk size, not by the number of epochs. ``np.asarray(source)`` still works
    (it reads everything) for code that needs it.

    The epochs must have had their bad epochs dropped (``len(epochs)`` known).
    """

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, epochs):
        self._epochs = epochs
        self.shape = (len(epochs), len(epochs.ch_names), len(epochs.times))
        self.preloaded = bool(epochs.preload)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, item):
        rest = ()
        if isinstance(item, tuple):
            item, rest = item[0], item[1:]
        if isinstance(item, int | np.integer):
            return self[int(item) : int(item) + 1][(0,) + rest]
        if isinstance(item, slice):
            start, stop, step = item.indices(self.shape[0])
            if step != 1:
                item = np.arange(start, stop, step)
            elif stop <= start:
                item = np.arange(0)
            else:
                item = slice(start, stop)
        if not isinstance(item, slice):
            item = np.asarray(item)
            if item.dtype == bool:
                item = np.flatnonzero(item)
            item = item.astype(int)
            if len(item) == 0:
                empty = np.empty((0,) + self.shape[1:], np.float32)
                return empty[(slice(None),) + rest]
        data = self._epochs.get_data(picks="all", item=item, copy=False, verbose=False)
        data = np.asarray(data, np.float32)
        return data[(slice(None),) + rest] if rest else data

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def chunks(self, size=READ_CHUNK):
        """Yield ``(slice, float32 data)`` over all epochs in order."""
        for start in range(0, self.shape[0], size):
            sl = slice(start, min(start + size, self.shape[0]))
            yield sl, self[sl]


def _ready_epochs(epochs, name="epochs"):
    """Epochs whose bad epochs are dropped, without touching the user's object.

    Preloaded epochs are returned as they are. Epochs that are not preloaded
    and whose bad epochs have not been dropped yet are copied (a copy of
    non-preloaded epochs shares the Raw and holds no data) and
    :meth:`mne.Epochs.drop_bad` is applied to the copy: this reads every epoch
    once, as MNE needs to know which epochs exist.
    """
    _validate_type(epochs, BaseEpochs, name, "mne.Epochs")
    if not epochs.preload and not epochs._bad_dropped:
        epochs = epochs.copy().drop_bad(verbose=False)
    return epochs


def _data_stats(source, name):
    """Check every epoch is finite and return the data's standard deviation.

    One pass over ``source``, chunk by chunk (see :class:`RunningMoments`).
    """
    moments = RunningMoments(axis=(0, 1, 2))
    for _, xb in source.chunks():
        _check_finite(xb, name)
        moments.update(xb)
    return float(moments.std.squeeze())


@dataclass
class ExplainInput:
    """Arrays shared by every explanation method.

    Attributes
    ----------
    x : EpochsSource, shape (n_epochs, n_channels, n_times)
        The epochs as fed to the model (all channels), read as float32 chunk by
        chunk (``x[sl]`` is an ndarray); see :class:`EpochsSource`.
    picks : ndarray of int
        Indices of the explained channels in ``x``.
    sfreq : float
        Sampling frequency.
    y : ndarray of int | None
        True class index per epoch, when known.
    target : ndarray of int | None
        Class to preserve per epoch, or None for the model's soft prediction.
    ref_x : EpochsSource, shape (n_ref, n_channels, n_times)
        Reference epochs (subject clusters, data scale); the same object as
        ``x`` when no reference is given.
    ref_groups : ndarray, shape (n_ref,)
        Subject of each reference epoch.
    scale : float
        Standard deviation of the reference data; methods that optimise in the
        frequency domain divide by it so values are of order 1.
    """

    x: EpochsSource
    picks: np.ndarray
    sfreq: float
    y: np.ndarray | None
    target: np.ndarray | None
    ref_x: EpochsSource
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
    """Validate everything and build an :class:`ExplainInput`.

    ``epochs`` (and ``reference``) must have passed :func:`_ready_epochs`. The
    data are not loaded: one pass checks them and measures their scale.
    """
    x = EpochsSource(epochs)
    if len(x) == 0:
        raise ValueError("epochs holds no epochs (all dropped?).")
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
        scale = _data_stats(x, "epochs")
    else:
        ref_x = EpochsSource(reference)
        if len(ref_x) == 0:
            raise ValueError("reference holds no epochs (all dropped?).")
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
        _data_stats(x, "epochs")
        scale = _data_stats(ref_x, "reference")
    if scale == 0:
        raise ValueError("The (reference) epochs are all zero; nothing to explain.")
    n_sub = len(np.unique(ref_groups))
    where = "in memory" if x.preloaded else "read from disk chunk by chunk"
    logger.info(
        f"Explaining {len(x)} epochs x {len(pick_idx)} channels x {x.shape[2]} "
        f"samples ({where}); {len(ref_x)} reference epochs from {n_sub} "
        "subject(s)."
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
