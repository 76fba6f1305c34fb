"""Quantus both ways: channel x band maps scored by any Quantus metric.

Quantus (Hedström et al., 2023) needs an attribution whose axes are
consecutive sub-dimensions of the input (``infer_attribution_axes`` in
``quantus/helpers/utils.py``, quantus 0.6.0): a ``(N, C, B)`` channel x band
map cannot be scored against ``(N, C, T)`` epochs. In the *band-component*
representation the bands are an axis of the input:

- :func:`quantus_inputs` splits each epoch into its per-band components
  ``x'`` of shape ``(N, C, B, T)`` (component ``b`` holds the rfft bins of
  band ``b``, back in time), whose sum over ``B`` is the epoch, and returns
  them with the classes to explain and a :class:`BandComponentModel` that
  sums the components back and calls the user's model;
- :func:`quantus_explain_func` is Quantus' ``explain_func``: it sums the
  (perturbed) components back into epochs, runs
  :func:`mne_freqmask.explain` on them and returns the ``(N, C, B, 1)`` map,
  whose axes are those of ``x'``.

Removing a cell (zeroing channel ``c``'s band ``b``) is then zeroing the
component ``x'[:, c, b]``: the same operation as
:func:`~mne_freqmask.evaluation.remove_cells`, which builds the components.
"""

import numpy as np
import torch
from mne import EpochsArray
from mne.utils import _validate_type, logger, verbose

from mne_freqmask._inputs import _data_stats, _ready_epochs
from mne_freqmask._torch_utils import _model_device, model_context, model_dtype
from mne_freqmask.evaluation._common import (
    _check_model,
    _labels,
    _n_classes,
    _source,
)
from mne_freqmask.evaluation._engine import _predictions, remove_cells
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._docs import fill_doc

#: explain() arguments fixed by the representation (not explain_func_kwargs)
_FIXED = ("bands", "picks", "time_windows", "target", "y", "checkpoint")


class BandComponentModel(torch.nn.Module):
    """A model of band components: sums them over bands and calls the model.

    Returned by :func:`quantus_inputs`; its input is ``(N, C, B, T)`` band
    components in units of ``scale`` and it returns the user's model's output
    on ``scale * x.sum(2)``, the epochs. The user's model is called, never
    changed: each call puts it in eval mode with frozen parameters on its own
    device and restores its flags afterwards; the input is moved to the
    model's device and dtype and the output back to the input's device.
    The wrapper is in eval mode (Quantus refuses a model in training mode)
    and :meth:`train` only sets its own flag.

    Parameters
    ----------
    model : torch.nn.Module
        The user's model, taking ``(N, C, T)`` epochs.
    info : mne.Info
        The epochs' measurement info (all channels, in the model's order).
    tmin : float
        Start time of the epochs in seconds.
    n_times : int
        Number of time samples of an epoch.
    bands : int | dict | str
        The ``bands`` argument the components were built with (as for
        :func:`mne_freqmask.explain`).
    scale : float
        The components are the epochs' components divided by ``scale``.
    n_outputs : int
        The model's number of outputs.

    Attributes
    ----------
    grid : FrequencyGrid
        The channel x band grid of the components.
    """

    def __init__(self, model, info, tmin, n_times, bands, scale, n_outputs):
        super().__init__()
        self.model = model
        self.info = info
        self.tmin = float(tmin)
        self.n_times = int(n_times)
        self.bands = bands
        self.scale = float(scale)
        self.n_outputs = int(n_outputs)
        self.grid = FrequencyGrid(info["sfreq"], self.n_times, bands)
        self.training = False  # this module only; the user's model is untouched

    @property
    def shape(self):
        """``(C, B, T)``: the shape of one input."""
        return (len(self.info["ch_names"]), self.grid.n_bands, self.n_times)

    def train(self, mode=True):
        """Set this wrapper's flag only (the user's model is not changed).

        Parameters
        ----------
        mode : bool
            The wrapper's ``training`` flag.

        Returns
        -------
        self : BandComponentModel
            The wrapper.
        """
        self.training = bool(mode)
        return self

    def _check_input(self, shape):
        if tuple(shape[1:]) != self.shape:
            raise ValueError(
                "BandComponentModel takes band components of shape (n_epochs, "
                "n_channels, n_bands, n_times) = (N, "
                f"{', '.join(map(str, self.shape))}) (those of quantus_inputs), "
                f"got {tuple(shape)}."
            )

    def forward(self, x):
        """The model's output on the epochs ``scale * x.sum(2)``.

        Parameters
        ----------
        x : Tensor, shape (n_epochs, n_channels, n_bands, n_times)
            Band components.

        Returns
        -------
        out : Tensor, shape (n_epochs, n_classes)
            The user's model's output, on the device of ``x``.
        """
        self._check_input(x.shape)
        dev = _model_device(self.model) or x.device
        with model_context(self.model, dev):
            epochs = (x.sum(2) * self.scale).to(dev, model_dtype(self.model))
            out = self.model(epochs)
        return out.to(x.device)

    def to_epochs(self, x, y=None):
        """The epochs ``scale * x.sum(2)`` of components ``x``, as EpochsArray.

        Parameters
        ----------
        x : ndarray, shape (n_epochs, n_channels, n_bands, n_times)
            Band components (e.g. perturbed by a Quantus metric).
        y : None | array-like of int, shape (n_epochs,)
            Class index of each epoch (event ``k + 1`` for class ``k``).

        Returns
        -------
        epochs : mne.EpochsArray
            The epochs, with the wrapper's ``info`` and ``tmin``; the event codes
            ``1 .. n_outputs`` are named ``"output 0"`` ... .
        """
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        self._check_input(x.shape)
        n = len(x)
        y = np.zeros(n, int) if y is None else np.asarray(y).astype(int)
        events = np.column_stack([np.arange(n), np.zeros(n, int), y + 1])
        return EpochsArray(
            x.astype(np.float64).sum(2) * self.scale,
            self.info,
            events=events,
            tmin=self.tmin,
            event_id={f"output {k}": k + 1 for k in range(self.n_outputs)},
            on_missing="ignore",  # a batch need not hold every class
            verbose=False,
        )

    def extra_repr(self):
        """Return the grid and scale for the module's repr.

        Returns
        -------
        text : str
            Channels, bands, samples and scale.
        """
        return (
            f"channels={self.shape[0]}, bands={self.grid.band_names}, "
            f"n_times={self.n_times}, scale={self.scale:.3g}"
        )


def _band_components(grid, src):
    """``(N, C, B, T)`` float64 per-band components of ``src`` (sum: the data).

    Component ``b`` keeps the rfft bins of band ``b`` and zeroes the others:
    :func:`~mne_freqmask.evaluation.remove_cells` with the one-hot keep of
    that band, the package's one cell perturbation.
    """
    n_ch, n_b = src.shape[1], grid.n_bands
    picks = np.arange(n_ch)
    out = np.empty(src.shape[:2] + (n_b,) + src.shape[2:], np.float64)
    for sl, xb in src.chunks(native=True):
        xb = np.asarray(xb, np.float64)
        for b in range(n_b):
            keep = np.zeros((n_ch, n_b), bool)
            keep[:, b] = True
            out[sl, :, b] = remove_cells(xb, keep, grid, picks)
    return out


@verbose
@fill_doc
def quantus_inputs(
    epochs,
    model,
    *,
    bands=10,
    target=None,
    y=None,
    scale="auto",
    device="auto",
    verbose=None,
):
    """Epochs, classes and model in the band-component form Quantus can score.

    Each epoch is split into per-band components: component ``b`` of channel
    ``c`` holds the rfft bins of band ``b`` of that channel, back in time
    (:func:`~mne_freqmask.evaluation.remove_cells` keeping that band only),
    so that the components sum to the epoch over the band axis. A Quantus
    metric then perturbs channel x band cells by perturbing components, and a
    ``(N, C, B, 1)`` map (:func:`quantus_explain_func`) has the axes of the
    input, as Quantus requires.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    %(bands)s
        The bands must cover every rfft bin (0 Hz to Nyquist): the components
        must sum to the epoch. An int always does.
    target : None | "true" | array-like of int
        The classes to explain (``y_batch``): ``None`` (default) the model's
        predicted class on each epoch (the class :func:`mne_freqmask.explain`
        explains by default for the gradient, LRP, FLEXtime and FreqRISE
        methods), ``"true"`` the class labels (see ``y``), or one class index
        per epoch.
    %(y)s
    scale : "auto" | float
        The components are returned divided by ``scale`` (the wrapped model
        multiplies them back). ``"auto"`` (default): the standard deviation
        of the epochs' data (as :func:`mne_freqmask.explain` measures it), so
        that Quantus' noise and baseline values, which are absolute (e.g.
        ``MaxSensitivity``'s uniform noise of ``lower_bound=0.2``), are in
        units of the data's spread rather than volts. ``1.0``: volts, the
        components sum exactly to the epoch.
    %(device)s
        Where the model runs to find the predicted classes.
    %(verbose)s

    Returns
    -------
    x_batch : ndarray, shape (n_epochs, n_channels, n_bands, n_times)
        The band components (float32) of every channel of every epoch (the model sees
        all channels, bad ones included), divided by ``scale``:
        ``x_batch.sum(2) * scale`` is the epochs' data.
    y_batch : ndarray of int, shape (n_epochs,)
        The class of each epoch to explain (Quantus' ``y_batch``).
    wrapped_model : BandComponentModel
        A :class:`torch.nn.Module` taking ``x_batch``-shaped input, summing it
        over bands and returning the user's model's output; it holds the
        epochs' info and grid for :func:`quantus_explain_func`. The user's
        model is called, never changed.

    See Also
    --------
    quantus_explain_func

    Notes
    -----
    ``x_batch`` holds ``n_bands`` copies of the data: all epochs are read
    into memory (Quantus works on arrays). Quantus' metrics then perturb
    ``x_batch``: a perturbation of all its features (noise in
    ``MaxSensitivity``) adds the noise of ``n_bands`` components to the
    epoch. Quantus broadcasts a ``(N, C, B, 1)`` map over the time axis, so
    the ``n_times`` samples of a cell share its value: with
    ``features_in_step=n_times``, ``PixelFlipping`` removes one whole cell per
    step. Quantus' own explanation functions (captum, saliency in time) do
    not know the representation; use :func:`quantus_explain_func`.

    Examples
    --------
    >>> import quantus  # doctest: +SKIP
    >>> from mne_freqmask.evaluation import quantus_inputs, quantus_explain_func
    >>> x, y, wrapped = quantus_inputs(epochs, model, bands=5)  # doctest: +SKIP
    >>> metric = quantus.MaxSensitivity(nr_samples=10)  # doctest: +SKIP
    >>> scores = metric(
    ...     model=wrapped, x_batch=x, y_batch=y, explain_func=quantus_explain_func,
    ...     explain_func_kwargs=dict(method="amplitude_gradients"),
    ... )  # doctest: +SKIP
    """
    _check_model(model)
    epochs = _ready_epochs(epochs)
    src = _source(epochs)
    n_times = src.shape[-1]
    grid = FrequencyGrid(epochs.info["sfreq"], n_times, bands)
    outside = grid.bin_band < 0
    if outside.any():
        freqs = grid.freqs[outside]
        raise ValueError(
            f"The bands leave {outside.sum()} rfft bin(s) in no band "
            f"({freqs.min():g}-{freqs.max():g} Hz), so the band components "
            "would not sum to the epoch. Give bands that cover 0 Hz to Nyquist "
            f"({grid.sfreq / 2:g} Hz): an int, or a dict with a band for the "
            "rest (e.g. add 'high': (45, nyquist) to the canonical bands)."
        )
    _validate_type(scale, ("numeric", str), "scale", '"auto" or float')
    if isinstance(scale, str):
        if scale != "auto":
            raise ValueError(f'scale must be "auto" or a float, got {scale!r}.')
        scale = _data_stats(src, "epochs")
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(
            f"scale must be a positive finite number, got {scale} (constant "
            "epochs have a standard deviation of 0: pass scale=1.0)."
        )
    n_outputs = _n_classes(model, src, device)
    if isinstance(target, str):
        if target != "true":
            raise ValueError(
                f'target must be None, "true" or class indices, got {target!r}.'
            )
        y_batch = _labels(epochs, y, model, device, src)
    elif target is None:
        y_batch = _predictions(model, src, device)
    else:
        y_batch = _labels(epochs, target, model, device, src)  # checks them
    components = _band_components(grid, src)
    components /= scale
    logger.info(
        f"Band components: {components.shape} (epochs, channels, bands, times), "
        f"scale {scale:.3g}."
    )
    wrapped = BandComponentModel(
        model, epochs.info.copy(), epochs.tmin, n_times, bands, scale, n_outputs
    )
    return components.astype(np.float32), np.asarray(y_batch, np.int64), wrapped


def quantus_explain_func(
    model, inputs, targets, *, method="freqmask", device="auto", **explain_kw
):
    """Quantus' ``explain_func``: :func:`mne_freqmask.explain` on components.

    Sums the band components back into epochs
    (:meth:`BandComponentModel.to_epochs`), explains every channel of them
    with :func:`mne_freqmask.explain` on the user's model, on the grid of
    :func:`quantus_inputs`, for the classes ``targets``, and returns the map
    with a trailing time axis of length 1.

    Parameters
    ----------
    model : BandComponentModel
        The wrapped model of :func:`quantus_inputs` (Quantus passes the model
        it was given, or its randomised copy in a randomisation metric).
    inputs : ndarray, shape (n_epochs, n_channels, n_bands, n_times)
        Band components (Quantus' ``x_batch``, possibly perturbed).
    targets : array-like of int, shape (n_epochs,)
        The class explained for each epoch (``target`` of
        :func:`mne_freqmask.explain`; also its ``y`` for methods that need
        labels).
    method : str
        The method of :func:`mne_freqmask.explain` (give it, and the
        method's parameters, in Quantus' ``explain_func_kwargs``).
    device : str | torch.device | None
        Where the method runs (Quantus adds its ``device``; None: ``"auto"``).
    **explain_kw
        Other arguments of :func:`mne_freqmask.explain` (``random_state``,
        ``reference``, ``chunk_size``, ``verbose`` (default False), the
        method's parameters). ``bands``, ``picks``, ``time_windows``,
        ``target``, ``y`` and ``checkpoint`` are fixed by the representation.

    Returns
    -------
    a_batch : ndarray, shape (n_epochs, n_channels, n_bands, 1)
        One value (float32) per channel x band cell of each epoch.

    Notes
    -----
    Quantus calls ``explain_func`` many times (e.g. ``nr_samples`` times in
    a robustness metric), each a full :func:`mne_freqmask.explain`: prefer a
    cheap method (``"amplitude_gradients"``, ``"integrated_gradients"``) or
    few samples for the optimised ones.
    """
    from mne_freqmask._explain import explain

    _validate_type(
        model,
        BandComponentModel,
        "model",
        "the wrapped model returned by mne_freqmask.evaluation.quantus_inputs",
    )
    fixed = sorted(set(explain_kw) & set(_FIXED))
    if fixed:
        raise TypeError(
            f"quantus_explain_func does not take {fixed}: the bands, channels "
            "and classes are fixed by quantus_inputs (bands) and Quantus "
            "(targets); give them to quantus_inputs instead."
        )
    explain_kw.setdefault("verbose", False)
    if isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().cpu().numpy()
    inputs = np.asarray(inputs)
    if isinstance(targets, torch.Tensor):
        targets = targets.detach().cpu().numpy()
    targets = np.asarray(targets).reshape(-1)
    if len(targets) != len(inputs) or not np.all(np.mod(targets, 1) == 0):
        raise ValueError(
            f"targets must hold one integer class per input ({len(inputs)}), "
            f"got {targets!r}."
        )
    targets = targets.astype(int)
    epochs = model.to_epochs(inputs, targets)
    sal = explain(
        epochs,
        model.model,
        method=method,
        bands=model.bands,
        picks=list(model.info["ch_names"]),
        target=targets,
        y=targets,
        device="auto" if device is None else device,
        **explain_kw,
    )
    return np.asarray(sal.get_data(), np.float32)[..., None]
