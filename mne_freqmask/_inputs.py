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
        data = np.asarray(self._read(item), np.float32)
        return data[(slice(None),) + rest] if rest else data

    def _read(self, item):
        """Epochs ``item`` (a slice or an int array), every channel, MNE's dtype.

        The channels are given as indices: MNE leaves ``info["bads"]`` out of
        string picks (even ``"all"``), and the model must see every channel of
        the epochs, in order, bad ones included.
        """
        return self._epochs.get_data(
            picks=np.arange(self.shape[1]), item=item, copy=False, verbose=False
        )

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def chunks(self, size=READ_CHUNK, *, native=False):
        """Yield ``(slice, float32 data)`` over all epochs in order.

        With ``native=True`` the data keep MNE's dtype (float64, or complex),
        for checks that must see the values before the cast to float32.
        """
        for start in range(0, self.shape[0], size):
            sl = slice(start, min(start + size, self.shape[0]))
            yield sl, (self._read(sl) if native else self[sl])


def _ready_epochs(epochs, name="epochs"):
    """Epochs whose bad epochs are dropped, without touching the user's object.

    Preloaded epochs are returned as they are. Epochs that are not preloaded
    and whose bad epochs have not been dropped yet are copied (a copy of
    non-preloaded epochs shares the Raw and holds no data) and
    :meth:`mne.Epochs.drop_bad` is applied to the copy: this reads every epoch
    once, as MNE needs to know which epochs exist.
    """
    if isinstance(epochs, np.ndarray):
        raise TypeError(
            f"{name} must be an instance of mne.Epochs, got a numpy array of "
            f"shape {epochs.shape}; wrap it as mne.EpochsArray(data, info, "
            "events=..., event_id=...) with info = mne.create_info(ch_names, "
            "sfreq, 'eeg') (data in volts, n_epochs x n_channels x n_times), so "
            "that channels, sampling rate and classes are known."
        )
    _validate_type(epochs, BaseEpochs, name, "mne.Epochs")
    if not epochs.preload and not epochs._bad_dropped:
        epochs = epochs.copy().drop_bad(verbose=False)
    return epochs


def _data_stats(source, name):
    """Check every epoch is finite and return the data's standard deviation.

    One pass over ``source``, chunk by chunk (see :class:`RunningMoments`).
    """
    moments = RunningMoments(axis=(0, 1, 2))
    for _, xb in source.chunks(native=True):
        _check_finite(xb, name)
        moments.update(np.asarray(xb, np.float32))
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
    event_id : dict | None
        The epochs' event names -> codes, when ``y`` comes from them.
    labels_problem : str | None
        Why ``y`` is None although epochs have events (set by
        :meth:`check_classes`); :meth:`require_labels` raises it.
    """

    x: EpochsSource
    picks: np.ndarray
    sfreq: float
    y: np.ndarray | None
    target: np.ndarray | None
    ref_x: EpochsSource
    ref_groups: np.ndarray
    scale: float
    event_id: dict | None = None
    labels_problem: str | None = None
    target_is_y: bool = False

    def check_classes(self, n_classes):
        """Check ``y`` and ``target`` against the model's number of outputs.

        A ``y`` or ``target`` given by the user must hold output units of the
        model. Labels derived from event codes are kept only when the mapping
        is unambiguous (as many event types as outputs, see
        :func:`event_classes`); otherwise ``y`` becomes None and
        :meth:`require_labels` says why, so that methods which do not use the
        labels still run. ``target="true"`` needs valid labels.
        """
        if self.event_id is not None and self.y is not None:
            try:
                event_classes(self.event_id, n_classes)
            except ValueError as exp:
                self.labels_problem = str(exp)
                self.y = None
                if self.target_is_y:
                    raise ValueError(f'target="true" needs labels: {exp}') from None
                logger.debug(f"Labels from event codes not used: {exp}")
        _check_class_range(self.y, n_classes, "y")
        _check_class_range(self.target, n_classes, "target")

    def require_labels(self, why):
        """Return ``y``, or raise a ValueError that says how to give it."""
        if self.y is not None:
            return self.y
        if self.labels_problem is not None:
            raise ValueError(f"{why}: {self.labels_problem}")
        raise ValueError(f"{why}; pass y.")

    @property
    def n_epochs(self):
        return self.x.shape[0]

    @property
    def n_times(self):
        return self.x.shape[2]


def event_classes(event_id, n_classes=None):
    """Event code -> class index: the ``k``-th code of ``event_id`` (names to
    codes) in ascending order is ``k``.

    The one place where event codes become model output units. With
    ``n_classes`` (the model's number of outputs; None: not checked) the
    mapping must be unambiguous: as many event types as outputs.
    """
    codes = sorted(set(int(c) for c in event_id.values()))
    if n_classes is not None and len(codes) != n_classes:
        names = dict(sorted(event_id.items(), key=lambda kv: kv[1]))
        if len(codes) > n_classes:
            raise ValueError(
                f"The epochs hold {len(codes)} event types {names} but the model "
                f"has {n_classes} outputs, so some event types match no class; "
                "select the epochs of the classes the model was trained on (e.g. "
                f"epochs[{list(names)[:n_classes]}]) or pass y with the class "
                "index of each epoch."
            )
        raise ValueError(
            f"The epochs hold {len(codes)} event type(s) {names} but the model "
            f"has {n_classes} outputs, so which output each event code stands "
            "for is ambiguous (MNE drops from event_id the types a selection "
            "such as epochs['name'] does not contain); pass y with the class "
            "index (model output unit) of each epoch."
        )
    return {code: k for k, code in enumerate(codes)}


def epochs_labels(epochs, y=None, n_classes=None):
    """Class index per epoch: ``y`` if given, else from the event codes.

    Event codes become class indices through :func:`event_classes` (the
    ``k``-th code of ``epochs.event_id`` in ascending order is class ``k``).
    With ``n_classes`` (the model's number of outputs), the indices are
    checked to lie in ``0 .. n_classes - 1``.
    """
    if y is not None:
        y = _one_per_epoch(
            y, epochs, f"y must have one class index per epoch ({len(epochs)})"
        )
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold integer class indices, got {y.dtype}.")
        y = y.astype(int)
        _check_class_range(y, n_classes, "y")
        return y
    classes = event_classes(epochs.event_id, n_classes)
    codes = epochs.events[:, 2]
    unknown = sorted(set(codes.tolist()) - set(classes))
    if unknown:
        raise ValueError(
            f"Event code(s) {unknown} of epochs.events are not in epochs.event_id "
            f"{epochs.event_id}; fix event_id or pass y."
        )
    return np.array([classes[c] for c in codes.tolist()], int)


def _check_class_range(labels, n_classes, name):
    """Raise unless every class index is an output unit of the model."""
    if n_classes is None or labels is None or len(labels) == 0:
        return
    bad = np.unique(labels[(labels < 0) | (labels >= n_classes)])
    if len(bad):
        raise ValueError(
            f"{name} holds class indices {bad.tolist()} outside 0..{n_classes - 1} "
            f"(the model has {n_classes} outputs); give the index of the model "
            "output unit of each epoch's class (negative indices are not "
            "allowed)."
        )


def _one_per_epoch(values, epochs, head, tail=""):
    """``values`` as an array, one entry per epoch (else ``head``, the shape
    got, ``tail``)."""
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != len(epochs):
        raise ValueError(f"{head}, got shape {values.shape}{tail}.")
    return values


def epochs_groups(epochs, groups, name="groups", of="epochs"):
    """Subject of each epoch: ``groups`` or ``metadata["subject"]`` or one."""
    if groups is not None:
        return _one_per_epoch(
            groups,
            epochs,
            f"{name} must have one entry per epoch ({len(epochs)} epochs of {of})",
            f"; give the subject of each epoch of {of}",
        )
    md = epochs.metadata
    if md is not None and "subject" in md.columns:
        return md["subject"].to_numpy()
    return np.zeros(len(epochs), int)


def epochs_data(epochs, name="epochs"):
    """Epoch data as float32 (every channel, bad ones included), checked."""
    _validate_type(epochs, BaseEpochs, name, "mne.Epochs")
    # integer picks: MNE leaves info["bads"] out of string picks, even "all"
    x = epochs.get_data(picks=np.arange(len(epochs.ch_names)), copy=True)
    if len(x) == 0:
        raise ValueError(f"{name} holds no epochs (all dropped?).")
    _check_finite(x, name)
    return x.astype(np.float32, copy=False)


def make_input(epochs, *, picks, y, target, reference, groups):
    """Validate everything and build an :class:`ExplainInput`.

    ``epochs`` (and ``reference``) must have passed :func:`_ready_epochs`. The
    data are not loaded: one pass checks them and measures their scale. The
    labels are checked against the model later, by
    :meth:`ExplainInput.check_classes`.
    """
    x = EpochsSource(epochs)
    if len(x) == 0:
        raise ValueError("epochs holds no epochs (all dropped?).")
    pick_idx = _pick_indices(epochs.info, picks)
    _log_bads(epochs.info, pick_idx)
    if y is not None:
        labels = epochs_labels(epochs, y)
        event_id = None
    else:
        try:
            labels = epochs_labels(epochs)
            event_id = dict(epochs.event_id)
        except ValueError as exp:
            logger.debug(f"No labels from the event codes: {exp}")
            labels, event_id = None, None
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
        _check_reference(reference, epochs)
        ref_groups = epochs_groups(reference, groups, of="reference")
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
        event_id=event_id,
        target_is_y=isinstance(target, str),
    )


def _log_bads(info, pick_idx):
    """Say what happens to the channels marked bad (MNE's convention)."""
    bads = [ch for ch in info["ch_names"] if ch in info["bads"]]
    if not bads:
        return
    picked = {info["ch_names"][i] for i in pick_idx}
    explained = [ch for ch in bads if ch in picked]
    left = [ch for ch in bads if ch not in picked]
    if left:
        logger.info(
            f"Bad channel(s) {left} are fed to the model unchanged but not "
            "explained (MNE's convention: bads are left out unless picked by "
            "name)."
        )
    if explained:
        logger.info(f"Bad channel(s) {explained} are explained, as picked.")


def check_layout(
    epochs,
    ch_names=None,
    sfreq=None,
    n_times=None,
    *,
    head,
    other,
    order_fix,
    pick_fix,
    sfreq_fix,
    subject=("they", "lack", "have", "are"),
):
    """Raise unless ``epochs`` have these channels (in order), rate and length.

    The one check that two things see the same epoch layout (the reference
    and the epochs, the amortised explainer's training epochs, a braindecode
    model's ``chs_info`` / ``sfreq``); a value of None is not checked.
    ``head`` starts every message, ``other`` names what the epochs are
    compared with, the ``*_fix`` texts name the fix; ``subject`` conjugates
    the sentence for "they" or "it".
    """
    they, lack, have, are = subject
    names = list(epochs.ch_names)
    if ch_names is not None and names != list(ch_names):
        if sorted(names) == sorted(ch_names):
            raise ValueError(
                head + f"same channels in another order, and the model reads "
                f"channels by position; use {order_fix}."
            )
        missing = [ch for ch in ch_names if ch not in names]
        extra = [ch for ch in names if ch not in ch_names]
        raise ValueError(
            head + f"{they} {lack} {missing} and {have} {extra} in addition; "
            f"{pick_fix}."
        )
    # a rate braindecode derives (n_times / input_window_seconds) may differ
    # from the stored one by rounding only
    if sfreq is not None and not np.isclose(
        float(epochs.info["sfreq"]), float(sfreq), rtol=1e-6, atol=0
    ):
        raise ValueError(
            head + f"{they} {are} sampled at {epochs.info['sfreq']} Hz, {other} "
            f"at {sfreq} Hz; {sfreq_fix}."
        )
    if n_times is not None and len(epochs.times) != int(n_times):
        raise ValueError(
            head + f"{they} {have} {len(epochs.times)} samples, {other} "
            f"{n_times}; crop them to the same length."
        )


def _check_reference(reference, epochs):
    """Same channels, order, sampling frequency and length as ``epochs``."""
    check_layout(
        reference,
        epochs.ch_names,
        epochs.info["sfreq"],
        len(epochs.times),
        head=(
            "reference must have the same channels, sampling frequency and "
            "number of samples as epochs: "
        ),
        other="epochs",
        order_fix="reference.reorder_channels(epochs.ch_names)",
        pick_fix="pick the same channels in both",
        sfreq_fix="resample one of them",
        subject=("it", "lacks", "has", "is"),
    )
