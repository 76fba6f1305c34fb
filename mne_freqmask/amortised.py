"""An amortised FreqMask (:class:`FreqMaskExplainer`).

One network, trained once over a training set with FreqMask's objective,
explains any epoch in one forward pass and no pass of the model, where
FreqMask fits a mask per epoch (a median of 60-80 Adam steps); in the spirit
of amortised explainers for images and time series (real-time saliency,
FastSHAP, TimeX).
"""

import json
from pathlib import Path

import numpy as np
import torch
from mne.utils import _check_option, _validate_type, logger, verbose

from mne_freqmask._amortised_train import MaskNet, Trainer, band_log_power
from mne_freqmask._checkpoint import _model_sha
from mne_freqmask._inputs import _ready_epochs, check_layout, make_input
from mne_freqmask._provenance import make_provenance
from mne_freqmask._saliency_utils import _params_to_json
from mne_freqmask._torch_utils import (
    check_model,
    model_context,
    model_dtype,
    resolve_device,
    spectral_dtype,
)
from mne_freqmask.models import as_model
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._checks import (
    _check_positive,
    _check_random_state,
    _make_rng,
    _picked_info,
    _write_new_file,
)
from mne_freqmask.utils._docs import fill_doc

#: version of the files written by :meth:`FreqMaskExplainer.save`: 1 for
#: ``objective="preserve"``, 2 (unreadable by earlier versions) for EG maps
_FORMAT_VERSION = 2
#: the objectives (FreqMask's ``objective``)
OBJECTIVES = ("preserve", "expected_gradients")
#: the method name of the saliencies it returns
METHOD = "freqmask_amortised"
#: the explainer's settings (stored with its saliencies), then what fit adds;
#: saved to and read from the JSON configuration as they are
_SETTINGS = ("hidden", "n_layers", "l1_mask", "n_donors", "objective")
_FITTED = ("ch_names", "sfreq", "n_times", "scale", "model_fingerprint")
_FITTED += ("fit_params", "history", "provenance")


class FreqMaskExplainer:
    """An amortised FreqMask explainer: a network trained to predict masks.

    Parameters
    ----------
    hidden : int
        Units of each hidden layer of the network.
    n_layers : int
        Number of hidden layers.
    l1_mask : float
        Weight of the mean of the mask in the loss (FreqMask's ``l1_mask``).
    n_donors : int
        Reference epochs kept to fill the removed part of the spectrum
        (FreqMask's ``n_donors``).
    objective : ``"preserve"`` | ``"expected_gradients"``
        What the network learns (FreqMask's ``objective``). ``"preserve"``
        (default): the mask in [0, 1] that keeps the prediction with the
        fewest cells. ``"expected_gradients"``: FreqMask's expected-gradients
        map, a signed score per cell (see Notes); ``l1_mask`` is unused.

    Attributes
    ----------
    ch_names : list of str
        All channels of the training epochs (the model's input), in order.
    picks : ndarray of int
        Indices of the explained channels in ``ch_names``.
    grid : FrequencyGrid
        The frequency grid (bands) of the masks.
    history : dict
        ``train_loss``, ``val_loss`` and (``objective="preserve"``)
        ``val_cross_entropy`` per pass over
        the training epochs, ``best_epoch`` (whose weights are kept),
        ``n_epochs`` (passes run) and ``train_time`` (seconds).
    provenance : dict
        What made the explainer (as :attr:`SpectralSaliency.provenance
        <mne_freqmask.SpectralSaliency.provenance>`: versions, the model's
        class and hash, the training parameters, the epochs' file, the
        creation time); saved with it (empty when read from a file of an
        earlier version). The maps it explains carry the model's class and
        hash from here.

    See Also
    --------
    read_freqmask_explainer
    mne_freqmask.explain

    Notes
    -----
    The network is a multilayer perceptron from the z-scored log band power
    of every explained channel x band cell (its mean and standard deviation
    over the reference epochs) to one mask logit per cell; the mask is the
    sigmoid of the logit. It is trained by Adam on minibatches of the
    training epochs with FreqMask's loss: the cross-entropy between the
    model's prediction on ``irfft(X * M + (1 - M) * R)`` and its prediction
    on the epoch (``X``: the epoch's spectrum, ``R``: the same channels of a
    random reference epoch, drawn anew at each step) plus ``l1_mask`` times
    the mean of the mask. A share ``val_size`` of the training epochs is held
    out, with fixed donors, and the weights of the pass with the lowest
    validation loss are kept (early stopping). The explanation preserves the
    model's own (soft) prediction; ``target`` is not supported.

    With ``objective="expected_gradients"`` the (unsquashed) output is
    regressed, by squared error, on one draw per epoch and step of the
    gradient of the probability of the model's prediction with respect to
    ``M`` at ``M = alpha`` (a random donor, ``alpha ~ U(0, 1)``): an unbiased
    estimate of the epoch's expected-gradients map, so the expectation, the
    map itself, minimises the loss; no map is computed beforehand.

    The explainer is tied to the model it was trained on: it never calls the
    model when explaining, so a map is only as good as the match between the
    model and the one used in :meth:`fit`. ``explain(epochs, model,
    method="freqmask_amortised", explainer=...)`` warns when the model's
    weights differ from those the explainer was trained against.
    """

    def __init__(
        self,
        *,
        hidden=256,
        n_layers=2,
        l1_mask=1.0,
        n_donors=256,
        objective="preserve",
    ):
        _check_option("objective", objective, OBJECTIVES)
        self.objective = objective
        self.hidden = _check_positive(hidden, "hidden", integer=True)
        self.n_layers = _check_positive(n_layers, "n_layers", integer=True)
        self.l1_mask = _check_positive(l1_mask, "l1_mask", strict=False)
        self.n_donors = _check_positive(n_donors, "n_donors", integer=True)
        self.net = None
        self.provenance = {}

    def __repr__(self):
        if self.net is None:
            return "<FreqMaskExplainer | not fitted>"
        return (
            f"<FreqMaskExplainer | {len(self.picks)} channels x "
            f"{self.grid.n_bands} bands, {self.sfreq:g} Hz, {self.n_times} "
            f"samples; {self.objective}, trained for "
            f"{self.history['n_epochs']} passes>"
        )

    @verbose
    @fill_doc
    def fit(
        self,
        epochs,
        model,
        *,
        reference=None,
        bands=10,
        picks=None,
        n_epochs=100,
        batch_size=32,
        lr=1e-3,
        val_size=0.2,
        patience=10,
        random_state=None,
        device="auto",
        verbose=None,
    ):
        """Train the explainer on epochs and a model.

        Parameters
        ----------
        epochs : instance of mne.Epochs
            The training epochs (e.g. the model's own training set): the
            explainer learns to predict FreqMask's masks for epochs like
            these.
        %(model)s
        reference : instance of mne.Epochs | None
            The epochs whose spectra fill the removed part of the spectrum,
            and whose log band power standardises the features. ``None``
            (default) uses ``epochs`` (an epoch is never its own donor).
        %(bands)s
        %(picks_explain)s
        n_epochs : int
            Passes over the training epochs at most.
        batch_size : int
            Epochs per minibatch (and per Adam step).
        lr : float
            Adam's learning rate.
        val_size : float
            Share of ``epochs`` held out for early stopping, in (0, 1).
        patience : int
            Passes without a lower validation loss before training stops.
        random_state : None | int | instance of numpy.random.Generator
            Seed of the network's initial weights, the split, the minibatch
            order and the donors. The same seed gives the same explainer
            (on the same device and number of threads).
        %(device)s
        %(verbose)s

        Returns
        -------
        self : instance of FreqMaskExplainer
            The fitted explainer.
        """
        import time

        model = as_model(model)
        n_epochs = _check_positive(n_epochs, "n_epochs", integer=True)
        batch_size = _check_positive(batch_size, "batch_size", integer=True)
        lr = _check_positive(lr, "lr")
        patience = _check_positive(patience, "patience", integer=True)
        _validate_type(val_size, "numeric", "val_size")
        if not 0 < val_size < 1:
            raise ValueError(f"val_size must be in (0, 1), got {val_size}.")
        _check_random_state(random_state)
        dev = resolve_device(device, model)
        epochs = _ready_epochs(epochs)
        if reference is not None:
            reference = _ready_epochs(reference, "reference")
        inp = make_input(
            epochs, picks=picks, y=None, target=None, reference=reference, groups=None
        )
        grid = FrequencyGrid(inp.sfreq, inp.n_times, bands)
        n_val = int(round(val_size * inp.n_epochs))
        if n_val < 1 or inp.n_epochs - n_val < 2:
            raise ValueError(
                f"val_size={val_size} of {inp.n_epochs} epochs leaves "
                f"{inp.n_epochs - n_val} for training and {n_val} for "
                "validation; fit needs at least 2 and 1: give more epochs."
            )
        rng = _make_rng(random_state)
        perm = rng.permutation(inp.n_epochs)
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        seed = int(rng.integers(0, 2**31 - 1))
        params = dict(
            n_epochs=n_epochs,
            batch_size=batch_size,
            lr=lr,
            val_size=float(val_size),
            patience=patience,
            tol=1e-3,
            l1_mask=self.l1_mask,
        )
        t0 = time.perf_counter()
        with model_context(model, dev):
            check_model(model, inp.x, dev)
            net_dtype = model_dtype(model)
            dtype = spectral_dtype(net_dtype)
            ref_power = band_log_power(inp.ref_x, inp.picks, grid, inp.scale, dev)
            mean, std = ref_power.mean(0), ref_power.std(0) + 1e-6
            if inp.ref_x is inp.x:
                power = ref_power
            else:
                power = band_log_power(inp.x, inp.picks, grid, inp.scale, dev)
            z = ((power - mean) / std).astype(np.float32)
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(seed)
                net = MaskNet(len(inp.picks), grid.n_bands, self.hidden, self.n_layers)
            net.to(dev, dtype)
            tp = dict(params, objective=self.objective)
            trainer = Trainer(net, model, inp.x, inp.picks, grid, inp.scale, dev, tp)
            pool, pool_idx = trainer.donor_pool(inp.ref_x, self.n_donors, rng, dtype)
            history = trainer.fit(
                z,
                train_idx,
                val_idx,
                pool,
                pool_idx,
                inp.ref_x is inp.x,
                rng,
                (net_dtype, dtype),
            )
            fp = _model_sha(model)
        history["train_time"] = time.perf_counter() - t0
        self.net = net.cpu().float()
        self.ch_names = list(epochs.ch_names)
        self.picks = np.asarray(inp.picks, int)
        self.sfreq, self.n_times = float(inp.sfreq), int(inp.n_times)
        self.grid = grid
        self.feature_mean, self.feature_std = mean, std
        self.scale = float(inp.scale)
        self.model_fingerprint = fp
        self.fit_params = dict(params, random_state=_seed_param(random_state))
        self.history = history
        prov = make_provenance(
            model,
            method=METHOD,
            method_params=self.method_params(),
            source=getattr(epochs, "filename", None),
        )
        self.provenance = json.loads(_params_to_json(prov))  # as read back
        return self

    def _check_fitted(self):
        if self.net is None:
            raise RuntimeError(
                "This FreqMaskExplainer is not fitted yet; call "
                "explainer.fit(epochs, model) first (or read a saved one with "
                "mne_freqmask.read_freqmask_explainer)."
            )

    def check_epochs(self, epochs):
        """Raise unless ``epochs`` have the channels, rate and length of the fit.

        Parameters
        ----------
        epochs : instance of mne.Epochs
            The epochs to explain.
        """
        self._check_fitted()
        check_layout(
            epochs,
            self.ch_names,
            self.sfreq,
            self.n_times,
            head="The epochs do not match those the explainer was trained on: ",
            other="the training epochs",
            order_fix="epochs.reorder_channels(explainer.ch_names)",
            pick_fix=(
                "pick the channels of the training epochs (explainer.ch_names), "
                "in order"
            ),
            sfreq_fix="resample them",
        )

    def predict_masks(self, data, *, device="cpu"):
        """Compute the masks of epochs given as an array (one network pass).

        Parameters
        ----------
        data : array-like, shape (n_epochs, n_channels, n_times)
            The epochs, all channels of ``ch_names`` in order, in the units
            of the training epochs (e.g. ``epochs.get_data()``); an
            ``EpochsSource`` is read in chunks.
        device : str | torch.device
            Where the network runs (default: the CPU).

        Returns
        -------
        masks : ndarray, shape (n_epochs, n_picks, n_bands)
            The mask of each explained channel x band cell, in [0, 1]; with
            ``objective="expected_gradients"`` the signed expected-gradients
            score of each cell.
        """
        self._check_fitted()
        shape = tuple(np.shape(data)[1:]) if np.ndim(data) == 3 else None
        if shape != (len(self.ch_names), self.n_times):
            raise ValueError(
                "data must have shape (n_epochs, n_channels, n_times) = (n, "
                f"{len(self.ch_names)}, {self.n_times}), got {np.shape(data)}."
            )
        dev = resolve_device(device)
        power = band_log_power(data, self.picks, self.grid, self.scale, dev)
        z = torch.as_tensor((power - self.feature_mean) / self.feature_std)
        net = self.net if dev.type == "cpu" else _copy_to(self.net, dev)
        with torch.no_grad():
            out = net(z.to(dev, torch.float32))
        if self.objective == "expected_gradients":  # see _amortised_train
            return (out / out[0].numel()).cpu().numpy()
        return torch.sigmoid(out).cpu().numpy()

    @verbose
    def explain(self, epochs, *, verbose=None):
        """Explain epochs with one forward pass of the network (no model).

        Parameters
        ----------
        epochs : instance of mne.Epochs
            Epochs with the channels, sampling rate and length of the
            training epochs.
        %(verbose)s

        Returns
        -------
        saliency : SpectralSaliency
            One mask (or, ``objective="expected_gradients"``, one signed
            map) per epoch, ``method="freqmask_amortised"``.
        """
        self._check_fitted()
        epochs = _ready_epochs(epochs)
        self.check_epochs(epochs)
        inp = make_input(
            epochs, picks=self.picks, y=None, target=None, reference=None, groups=None
        )
        data = self.predict_masks(inp.x)
        params = self.method_params()
        return SpectralSaliency(
            data,
            _picked_info(epochs.info, self.picks),
            self.grid,
            method=METHOD,
            method_params=params,
            events=epochs.events.copy(),
            event_id=dict(epochs.event_id),
            metadata=None if epochs.metadata is None else epochs.metadata.copy(),
            # the model is not called: its hash and class are those of fit
            provenance=make_provenance(
                method=METHOD,
                method_params=params,
                source=getattr(epochs, "filename", None),
                model_hash=self.model_fingerprint,
                model_cls=self.provenance.get("model_class"),
            ),
        )

    def method_params(self):
        """Return the parameters stored with its saliencies.

        Returns
        -------
        params : dict
            JSON-like settings of the explainer and of its training.
        """
        self._check_fitted()
        return dict(
            {k: getattr(self, k) for k in _SETTINGS},
            bands=self.grid.bands,
            **{f"fit_{k}": v for k, v in self.fit_params.items()},
        )

    def _config(self):
        return dict(
            {k: getattr(self, k) for k in _SETTINGS + _FITTED},
            format_version=1 if self.objective == "preserve" else _FORMAT_VERSION,
            picks=self.picks.tolist(),
            band_names=list(self.grid.band_names),
            band_edges=np.asarray(self.grid.band_edges).tolist(),
        )

    @verbose
    def save(self, fname, *, overwrite=False, verbose=None):
        """Save the explainer (weights and configuration) to a ``.pt`` file.

        The file holds the network's state dict, the features' reference
        statistics, a JSON configuration (with the ``provenance``) and
        the SHA-256 of all of them, which
        :func:`read_freqmask_explainer` checks; it is written under a temporary
        name in the same folder and renamed, so an interrupted save leaves no
        partial file.

        Parameters
        ----------
        fname : path-like
            The file name; it must end with ``.pt``.
        overwrite : bool
            Replace ``fname`` if it exists. Default ``False``.
        %(verbose)s

        See Also
        --------
        read_freqmask_explainer
        """
        self._check_fitted()
        fname = _check_pt_fname(fname)
        state = dict(
            config=json.dumps(self._config()),
            state_dict=self.net.state_dict(),
            feature_mean=torch.as_tensor(self.feature_mean),
            feature_std=torch.as_tensor(self.feature_std),
        )
        # torch.load reads zeroed tensor bytes without a word (measured):
        # the SHA-256 of the content is stored with it and checked on reading
        state["checksum"] = _state_digest(state)
        _write_new_file(fname, lambda tmp: torch.save(state, tmp), overwrite)


@verbose
def read_freqmask_explainer(fname, verbose=None):
    """Read a :class:`FreqMaskExplainer` saved with :meth:`~FreqMaskExplainer.save`.

    Parameters
    ----------
    fname : path-like
        The ``.pt`` file.
    %(verbose)s

    Returns
    -------
    explainer : FreqMaskExplainer
        The fitted explainer; its masks equal those of the saved one.
    """
    fname = _check_pt_fname(fname)
    if not fname.is_file():
        raise FileNotFoundError(f"{fname} does not exist.")
    try:
        state = torch.load(fname, map_location="cpu", weights_only=True)
        cfg = json.loads(state["config"])
    except Exception as exp:
        raise ValueError(
            f"{fname} is not a FreqMaskExplainer file ({type(exp).__name__}: "
            f"{exp}); write one with FreqMaskExplainer.save."
        ) from None
    if "checksum" not in state:  # a file of an earlier version
        logger.info(f"{fname} holds no checksum (older file); not verified.")
    elif state["checksum"] != _state_digest(state):
        raise ValueError(
            f"{fname} is damaged: its content does not match the SHA-256 "
            "checksum written with it (the file was corrupted or changed after "
            "saving); save the explainer again or fit it again."
        )
    if cfg.get("format_version", 0) > _FORMAT_VERSION:
        raise ValueError(
            f"{fname} was written by a newer mne_freqmask (format "
            f"{cfg['format_version']}); upgrade to read it."
        )
    cfg.setdefault("objective", "preserve")  # none in version 1 files
    exp = FreqMaskExplainer(**{k: cfg[k] for k in _SETTINGS})
    for key in _FITTED:
        setattr(exp, key, cfg.get(key))
    exp.provenance = exp.provenance or {}  # none in earlier files
    exp.picks = np.asarray(cfg["picks"], int)
    exp.grid = FrequencyGrid.from_edges(
        exp.sfreq, exp.n_times, cfg["band_names"], cfg["band_edges"]
    )
    exp.feature_mean = state["feature_mean"].numpy()
    exp.feature_std = state["feature_std"].numpy()
    net = MaskNet(len(exp.picks), exp.grid.n_bands, exp.hidden, exp.n_layers)
    net.load_state_dict(state["state_dict"])
    exp.net = net.eval()
    return exp


def _state_digest(state):
    """SHA-256 of a saved explainer's content (config text and tensors)."""
    from mne_freqmask._saliency_io import _digest

    def arrays(value):
        if isinstance(value, dict):
            return {k: arrays(v) for k, v in value.items() if k != "checksum"}
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
        return value

    return _digest(arrays(state))


def _check_pt_fname(fname):
    _validate_type(fname, "path-like", "fname")
    fname = Path(fname).expanduser().absolute()
    if fname.suffix.lower() != ".pt":
        raise ValueError(f"fname must end with .pt, got {fname.name!r}.")
    return fname


def _copy_to(net, device):
    import copy

    return copy.deepcopy(net).to(device)


def _seed_param(random_state):
    if random_state is None or isinstance(random_state, int | np.integer):
        return None if random_state is None else int(random_state)
    return type(random_state).__name__
