"""Build and fit small braindecode models on Epochs, and model surgery.

This is a convenience for examples, tests and the demo, not a model zoo: a
plain, seeded training loop (Adam, cross-entropy, mini-batches) over a
stratified train / held-out split. Models come from braindecode (the
``models`` extra); any ``torch.nn.Module`` with the braindecode input
convention ``(n_epochs, n_channels, n_times)`` works too.
"""

import copy

import numpy as np
import torch
from mne.utils import ProgressBar, _validate_type, check_random_state, logger, verbose

from mne_freqmask._inputs import epochs_data, epochs_groups, epochs_labels
from mne_freqmask._torch_utils import resolve_device
from mne_freqmask.utils._checks import _check_positive
from mne_freqmask.utils._deps import import_optional
from mne_freqmask.utils._docs import fill_doc

#: Names accepted by :func:`make_model` -> braindecode class name.
MODEL_NAMES = {
    "eegnet": "EEGNet",
    "deep4net": "Deep4Net",
    "shallowfbcspnet": "ShallowFBCSPNet",
    "tsception": "TSception",
    "eegconformer": "EEGConformer",
}


def _braindecode_models():
    # one import path for braindecode: its known import-time warning filtered,
    # a one-line error naming the pins when it cannot be imported
    return import_optional("braindecode.models")


class InputScaler(torch.nn.Module):
    """Multiply the input by a constant (e.g. volts -> microvolts).

    braindecode models normalise with BatchNorm, whose ``eps`` (1e-3 to 1e-5)
    swamps the variance of EEG in volts (~1e-10); scaling to microvolts inside
    the model lets it take ``epochs.get_data()`` as is.

    Parameters
    ----------
    factor : float
        The constant (``1e6``: volts to microvolts).
    """

    def __init__(self, factor):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x):
        """Scale the input.

        Parameters
        ----------
        x : Tensor
            The input.

        Returns
        -------
        out : Tensor
            ``x * factor``.
        """
        return x * self.factor

    def extra_repr(self):
        """Return the factor for the module's repr.

        Returns
        -------
        text : str
            ``"factor=<value>"``.
        """
        return f"factor={self.factor:g}"


def input_scale_of(model):
    """The factor of the :class:`InputScaler` the model starts with, or None.

    Parameters
    ----------
    model : torch.nn.Module
        The model (``Sequential(InputScaler(f), net)``, nested or not).

    Returns
    -------
    factor : float | None
        ``f``, or None when the model's first layer is no input scaler.
    """
    mod = model
    while isinstance(mod, torch.nn.Sequential) and len(mod):
        if isinstance(mod[0], InputScaler):
            return mod[0].factor
        mod = mod[0]
    return mod.factor if isinstance(mod, InputScaler) else None


def braindecode_module(model):
    """The braindecode model inside ``model`` (the model itself, or wrapped).

    Parameters
    ----------
    model : torch.nn.Module
        The model, e.g. ``Sequential(InputScaler(1e6), EEGNet(...))``.

    Returns
    -------
    net : braindecode.models.base.EEGModuleMixin | None
        The first module that carries braindecode's metadata (``chs_info``,
        ``sfreq``, ``get_config``), or None. braindecode is not imported: a
        model built without it has none.
    """
    for mod in model.modules():
        if hasattr(mod, "_chs_info") and callable(getattr(mod, "get_config", None)):
            return mod
    return None


def model_metadata(model):
    """Channel names, sampling rate and length a braindecode model was built for.

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    meta : dict
        ``ch_names`` (from ``chs_info``), ``sfreq`` and ``n_times``; each
        None when the model does not carry it.
    """
    net = braindecode_module(model)
    meta = dict(ch_names=None, sfreq=None, n_times=None)
    if net is None:
        return meta
    chs = getattr(net, "_chs_info", None)
    if chs:
        meta["ch_names"] = [str(ch["ch_name"]) for ch in chs]
    for key in ("sfreq", "n_times"):
        try:  # braindecode raises ValueError for a value it cannot infer
            meta[key] = getattr(net, key)
        except ValueError:
            pass
    return meta


def make_model(name, n_chans, n_outputs, n_times, sfreq, *, input_scale=1e6, **kwargs):
    """Build a braindecode model by name.

    Parameters
    ----------
    name : str
        One of ``"eegnet"``, ``"deep4net"``, ``"shallowfbcspnet"``,
        ``"tsception"``, ``"eegconformer"`` (case-insensitive).
    n_chans, n_outputs, n_times : int
        Input channels, classes and time samples.
    sfreq : float
        Sampling frequency (used by the models that need it).
    input_scale : float | None
        If not None, the model is ``Sequential(InputScaler(input_scale),
        net)``, so that it takes data in the units of ``epochs.get_data()``
        (volts) while the network sees microvolts (default ``1e6``).
    **kwargs
        Further constructor arguments of the braindecode class.

    Returns
    -------
    model : torch.nn.Module
        The untrained model; ``model.init_args_`` holds what is needed to
        rebuild it (see :func:`save_model`).
    """
    from mne.utils import _check_option

    _validate_type(name, str, "name")
    key = name.lower()
    _check_option("name", key, sorted(MODEL_NAMES))
    cls = getattr(_braindecode_models(), MODEL_NAMES[key])
    args = dict(n_chans=int(n_chans), n_outputs=int(n_outputs), n_times=int(n_times))
    if key in ("tsception", "eegconformer"):
        args["sfreq"] = float(sfreq)
    if key == "eegnet":
        # the original EEGNet's max-norm constraint on the classifier; braindecode
        # 1.8 warns (DeprecationWarning) whenever it is off
        args["final_layer_with_constraint"] = True
    args.update(kwargs)
    net = cls(**args)
    model = (
        net
        if input_scale is None
        else torch.nn.Sequential(InputScaler(input_scale), net)
    )
    model.init_args_ = dict(name=key, input_scale=input_scale, kwargs=args)
    return model


@verbose
@fill_doc
def fit(
    epochs,
    model="eegnet",
    *,
    y=None,
    groups=None,
    val_size=0.2,
    max_epochs=30,
    batch_size=32,
    lr=1e-3,
    weight_decay=0.0,
    device="auto",
    random_state=0,
    verbose=None,
    **model_kw,
):
    """Train a classifier on epochs with a held-out split.

    Parameters
    ----------
    epochs : instance of mne.Epochs
        Training data, in the units stored by MNE (volts for EEG); the model
        sees them exactly as :func:`mne_freqmask.explain` will.
    model : str | torch.nn.Module
        A name for :func:`make_model` or a model to train (trained in place).
    %(y)s
    groups : array-like | None
        If given, the held-out split keeps whole groups (e.g. subjects) out of
        training; otherwise the split is stratified by class.
    val_size : float
        Fraction of epochs (or of groups) held out, in [0, 1).
    max_epochs : int
        Passes over the training data.
    batch_size : int
        Mini-batch size.
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam weight decay.
    %(device)s
    %(random_state)s
    %(verbose)s
    **model_kw
        Constructor arguments when ``model`` is a name.

    Returns
    -------
    model : torch.nn.Module
        The trained model, in eval mode on the CPU.
    history : dict
        ``train_loss`` and ``val_accuracy`` per pass (empty when ``val_size``
        is 0), ``train_idx`` and ``val_idx`` (epoch indices of the split).
    """
    x = epochs_data(epochs)
    labels = epochs_labels(epochs, y)
    n_classes = int(labels.max()) + 1
    if n_classes < 2:
        raise ValueError("fit needs at least two classes in the epochs.")
    _validate_type(model, (str, torch.nn.Module), "model", "str or torch.nn.Module")
    max_epochs = _check_positive(max_epochs, "max_epochs", integer=True)
    batch_size = _check_positive(batch_size, "batch_size", integer=True)
    lr = _check_positive(lr, "lr")
    if not 0 <= val_size < 1:
        raise ValueError(f"val_size must be in [0, 1), got {val_size}.")
    rng = check_random_state(random_state)
    train_idx, val_idx = _split(labels, groups, epochs, val_size, rng)
    seed = int(rng.randint(0, 2**31 - 1))
    history = dict(train_loss=[], val_accuracy=[], train_idx=train_idx, val_idx=val_idx)
    xt = torch.as_tensor(x)
    yt = torch.as_tensor(labels)
    dev = resolve_device(device, None if isinstance(model, str) else model)
    # the seed covers the initial weights too, without touching the global RNG
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        if isinstance(model, str):
            model = make_model(
                model,
                x.shape[1],
                n_classes,
                x.shape[2],
                epochs.info["sfreq"],
                **model_kw,
            )
        model.to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        for _ in ProgressBar(range(max_epochs), mesg="Training"):
            model.train()
            order = train_idx[torch.randperm(len(train_idx)).numpy()]
            losses = []
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                if len(idx) < 2:  # BatchNorm cannot train on one sample
                    continue
                opt.zero_grad()
                loss = loss_fn(model(xt[idx].to(dev)), yt[idx].to(dev))
                loss.backward()
                opt.step()
                losses.append(loss.item())
            history["train_loss"].append(float(np.mean(losses)))
            if len(val_idx):
                history["val_accuracy"].append(_accuracy(model, xt, yt, val_idx, dev))
    model.eval().cpu()
    if history["val_accuracy"]:
        net = model[-1] if isinstance(model, torch.nn.Sequential) else model
        logger.info(
            f"Trained {type(net).__name__}: held-out accuracy "
            f"{history['val_accuracy'][-1]:.3f} on {len(val_idx)} epochs."
        )
    return model, history


def _accuracy(model, xt, yt, idx, dev):
    model.eval()
    with torch.no_grad():
        pred = torch.cat(
            [
                model(xt[idx[s : s + 256]].to(dev)).argmax(1).cpu()
                for s in range(0, len(idx), 256)
            ]
        )
    return float((pred == yt[idx]).float().mean())


def _split(labels, groups, epochs, val_size, rng):
    n = len(labels)
    if val_size == 0:
        return np.arange(n), np.arange(0)
    if groups is not None:
        groups = epochs_groups(epochs, groups)
        uniq = np.unique(groups)
        n_val = max(1, int(round(val_size * len(uniq))))
        if n_val >= len(uniq):
            raise ValueError(
                f"val_size={val_size} holds out all {len(uniq)} groups; lower it."
            )
        val_groups = rng.choice(uniq, n_val, replace=False)
        val = np.isin(groups, val_groups)
        return np.flatnonzero(~val), np.flatnonzero(val)
    train, val = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_val = int(round(val_size * len(idx)))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# ----------------------------------------------------------------------------
# Labram (forward needs the channel names)


def _check_labram_names(ch_names):
    LABRAM_CHANNEL_ORDER = import_optional(
        "braindecode.models.labram"
    ).LABRAM_CHANNEL_ORDER

    ch_names = [str(ch) for ch in ch_names]
    known = {name.upper() for name in LABRAM_CHANNEL_ORDER}
    missing = [ch for ch in ch_names if ch.upper() not in known]
    if missing:
        raise ValueError(
            f"Channels {missing} are not in Labram's LABRAM_CHANNEL_ORDER; "
            "pick or rename them (or use braindecode's InterpolatedLaBraM)."
        )
    return ch_names


class LabramWrapper(torch.nn.Module):
    """Call braindecode's :class:`~braindecode.models.Labram` as ``model(x)``.

    ``Labram.forward`` needs the channel names of ``x`` (``ch_names=...``) to
    pick its position embeddings unless ``x`` holds all 128 channels of
    ``braindecode.models.labram.LABRAM_CHANNEL_ORDER``. Attribution code (and
    :func:`mne_freqmask.explain`) calls ``model(x)`` only, so this wrapper
    stores the names.

    Parameters
    ----------
    labram : braindecode.models.Labram
        The model.
    ch_names : list of str
        Names of the channels of ``x``, in order; each must be in
        ``LABRAM_CHANNEL_ORDER`` (case-insensitive, e.g. ``epochs.ch_names``
        of a 10-20 montage).
    """

    def __init__(self, labram, ch_names):
        super().__init__()
        _validate_type(labram, torch.nn.Module, "labram", "torch.nn.Module")
        self.labram = labram
        self.ch_names = _check_labram_names(ch_names)

    @property
    def n_chans(self):
        """Number of input channels."""
        return len(self.ch_names)

    @property
    def n_times(self):
        """Number of input samples."""
        return self.labram.n_times

    def forward(self, x):
        """Class logits of ``x``.

        Parameters
        ----------
        x : torch.Tensor, shape (n_epochs, n_channels, n_times)
            The input, channels in the order of ``ch_names``.

        Returns
        -------
        logits : torch.Tensor, shape (n_epochs, n_classes)
            The output of the wrapped Labram.
        """
        return self.labram(x, ch_names=self.ch_names)

    def extra_repr(self):
        """Extra information in the module's ``repr``.

        Returns
        -------
        extra : str
            The number of input channels, ``"n_chans=..."``.
        """
        return f"n_chans={self.n_chans}"


def make_labram(ch_names, n_outputs, n_times, sfreq, *, input_scale=1e6, **kwargs):
    """Build a :class:`~braindecode.models.Labram` callable as ``model(x)``.

    Parameters
    ----------
    ch_names : list of str
        Channel names of the data (e.g. ``epochs.ch_names``).
    n_outputs, n_times : int
        Number of classes and of time samples.
    sfreq : float
        Sampling frequency in Hz.
    input_scale : float | None
        As in :func:`mne_freqmask.models.make_model`: the model is
        ``Sequential(InputScaler(input_scale), LabramWrapper(...))`` so that it
        takes volts.
    **kwargs
        Further arguments of ``Labram`` (e.g. ``patch_size``, ``num_layers``,
        ``num_heads``, ``conv_out_channels``).

    Returns
    -------
    model : torch.nn.Module
        The untrained model.
    """
    Labram = import_optional("braindecode.models").Labram

    ch_names = _check_labram_names(ch_names)
    net = Labram(
        n_chans=len(ch_names),
        n_outputs=int(n_outputs),
        n_times=int(n_times),
        sfreq=float(sfreq),
        **kwargs,
    )
    model = LabramWrapper(net, ch_names)
    if input_scale is not None:
        model = torch.nn.Sequential(InputScaler(input_scale), model)
    return model


# ----------------------------------------------------------------------------
# model surgery (used by the sanity checks and the workflows)


def parameter_layers(model):
    """Return the modules holding parameters of their own, in registration order.

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    layers : list of (str, torch.nn.Module)
        ``(name, module)`` of every module with parameters of its own (not
        counting its children's), in the order of ``model.named_modules()``
        (the forward order of braindecode models).
    """
    return [
        (name, mod)
        for name, mod in model.named_modules()
        if any(True for _ in mod.parameters(recurse=False))
    ]


def reinitialize(module):
    """Re-initialise a module's own parameters, in place.

    Parameters
    ----------
    module : torch.nn.Module
        The module. Its own ``reset_parameters()`` is used when it has one;
        otherwise every parameter of its own is drawn from a normal
        distribution with the parameter's current standard deviation (0.02
        when that is 0).
    """
    if callable(getattr(module, "reset_parameters", None)):
        module.reset_parameters()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            std = float(p.std()) if p.numel() > 1 else 0.0
            p.normal_(0.0, std if std > 0 else 0.02)


def untrained_copy(model):
    """An untrained model of the same architecture.

    Parameters
    ----------
    model : torch.nn.Module
        The model; never modified.

    Returns
    -------
    fresh : torch.nn.Module
        A model built by :func:`make_model` is rebuilt from its
        ``init_args_``; any other module is deep-copied and every layer is
        re-initialised (:func:`reinitialize`).
    """
    init_args = getattr(model, "init_args_", None)
    if init_args is not None:
        args = dict(init_args["kwargs"])
        return make_model(
            init_args["name"],
            args.pop("n_chans"),
            args.pop("n_outputs"),
            args.pop("n_times"),
            args.pop("sfreq", 1.0),
            input_scale=init_args.get("input_scale"),
            **args,
        )
    fresh = copy.deepcopy(model)
    for _, mod in parameter_layers(fresh):
        reinitialize(mod)
    return fresh
