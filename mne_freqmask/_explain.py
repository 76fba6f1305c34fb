"""explain(): validate, convert, dispatch to a method, wrap the result."""

import inspect

import torch
from mne.utils import _validate_type, logger, verbose

from mne_freqmask._inputs import _ready_epochs, make_input
from mne_freqmask._torch_utils import check_model, model_context, resolve_device
from mne_freqmask.methods import METHODS, get_method
from mne_freqmask.methods._base import chunk_size_for
from mne_freqmask.saliency import SpectralSaliency
from mne_freqmask.spectral import FrequencyGrid
from mne_freqmask.utils._checks import _picked_info
from mne_freqmask.utils._docs import fill_doc


@verbose
@fill_doc
def explain(
    epochs,
    model,
    *,
    method="freqmask",
    bands=10,
    picks=None,
    target=None,
    y=None,
    reference=None,
    groups=None,
    chunk_size="auto",
    device="auto",
    random_state=None,
    verbose=None,
    **method_kw,
):
    """Explain a model's decisions in the frequency domain.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    method : str
        The explanation method, a key of :data:`mne_freqmask.methods.METHODS`
        (more can be added with :func:`mne_freqmask.methods.register_method`):

        - ``"freqmask"`` (default): the frequency-domain mask perturbation of
          Wang et al.; saliency in [0, 1] per channel x band cell.
        - ``"easypeasi"``: easyPEASI (Nahmias & Kontson, 2020), band-limited
          Gaussian noise per cell; drop in balanced accuracy (group) or in the
          true-class probability (instance). Needs class labels (``y``).
        - ``"amplitude_gradients"``: gradient of the target logit with respect
          to the spectral amplitudes (Schirrmeister et al., 2017).
        - ``"integrated_gradients"`` and ``"ablation"``: captum's
          IntegratedGradients and FeatureAblation on the (real, imaginary)
          spectrum, through an inverse FFT.
        - ``"dft_lrp"``: LRP in time (zennit, for CNNs) mapped onto the rfft
          bins with the DFT-LRP rule.
        - ``"lrp"``: attention-aware LRP (AttnLRP / CP-LRP) for transformers
          and CNNs (:mod:`mne_freqmask.lrp`), mapped with the DFT-LRP rule.
        - ``"flextime"``: FLEXtime (Brüsch et al., 2024), a mask over the
          channels x the filters of an FIR filterbank learned by SGD against a
          keep-ratio penalty; the filterbank's response is averaged over each
          band (:mod:`mne_freqmask.methods.flextime`).
        - ``"freqrise"``: FreqRISE (Brüsch et al., 2025), the saliency-weighted
          average of random 0/1 masks of the spectrum (RISE), drawn on the
          channel x band cells; min-max normalised per epoch
          (:mod:`mne_freqmask.methods.freqrise`).
    %(bands)s
    %(picks_explain)s
    %(target)s
    %(y)s
    %(reference)s
    %(groups)s
    %(chunk_size)s
    %(device)s
    %(random_state)s
    %(verbose)s
    **method_kw
        Parameters of the method.

        ``"freqmask"`` (defaults from the paper): ``n_steps=300`` (Adam steps
        at most), ``lr=0.01``, ``lambda_align=0.05`` (weight of the
        target-alignment loss), ``l1_mask=1.0`` and ``l1_perturbation=1.0``
        (weights of the L1 terms, taken as means over cells/bins so that they
        do not swamp the cross-entropy), ``alignment="complex"`` (pull the
        perturbation towards the subject's mean complex spectrum, as in the
        paper) or ``"magnitude"`` (towards its mean magnitude spectrum),
        ``generator="two_branch"`` (or ``"one_branch"``, the paper's ablation),
        ``patience=10``, ``tol=1e-3`` and ``min_steps=50`` (early stopping
        per epoch: after ``min_steps`` warm-up steps, stop after ``patience``
        steps without a relative loss improvement of ``tol``; the warm-up keeps
        models whose loss stalls at first, such as Deep4Net or EEGConformer,
        from stopping after ~11 steps with masks still near 0.5).
        FreqMask starts every mask at 0.5 and every generator at zero, so it is
        deterministic and ignores ``random_state``.

        ``"easypeasi"``: ``level="group"|"instance"``,
        ``mode="band_channel"|"band"|"channel"``,
        ``noise_parts="pooled"|"separate"``, ``noise_stats="epoch"|"dataset"``,
        ``n_repeats=1``, ``batch_size=512``; pass
        ``bands=mne_freqmask.methods.easypeasi.EASYPEASI_BANDS`` for its six
        bands. ``"amplitude_gradients"``: ``absolute=True``.
        ``"integrated_gradients"``: ``n_steps=50``,
        ``method="gausslegendre"``, ``batch_size=512``. ``"ablation"``:
        ``batch_size=512``. ``"dft_lrp"``: ``composite="epsilon_plus"``,
        ``epsilon=1e-6``. ``"lrp"``: ``rule="epsilon"|"gamma"|"zplus"``,
        ``attention="attnlrp"|"cplrp"``, ``eps=1e-6``, ``gamma=0.25``.
        ``"flextime"`` (defaults from the published code): ``n_filters=128``
        (equal-width FIR filters from 0 Hz to Nyquist, or ``"bands"``: one
        filter per band), ``numtaps=51``, ``keep_ratio=0.1``,
        ``regularization="l1"|"ratio"``, ``reg_strength=1.0``,
        ``reg_dilation=1.0``, ``time_reg_strength=1.0`` (smoothness over
        adjacent filters), ``n_steps=1000``, ``lr=1.0``, ``momentum=1.0``
        (SGD), ``stop_criterion=None`` (no early stopping), ``patience=10``;
        deterministic. ``"freqrise"``: ``n_masks=3000``, ``probability=0.5``
        (of keeping a cell), ``n_cells=None`` (masks on the grid's cells; an
        int runs the published smooth masks of that many cells per channel),
        ``use_softmax=False`` (score: the logit), ``normalize=True``
        (min-max per epoch), ``batch_size=500`` (masked copies per forward
        pass); ``random_state`` seeds the masks.
        For the gradient, LRP, FLEXtime and FreqRISE methods ``target=None``
        explains the predicted class.

    Returns
    -------
    saliency : SpectralSaliency
        One map per epoch (epoch x channel x band); ``saliency.average()`` is
        the group-level map.

    Notes
    -----
    The model sees all channels of ``epochs`` at every step; only the picked
    channels are perturbed. Frequencies are those of ``np.fft.rfftfreq``:
    the real FFT holds each frequency once, so there is no mirrored half.
    """
    _validate_type(model, torch.nn.Module, "model", "torch.nn.Module")
    _validate_type(method, str, "method")
    func = get_method(method)
    _check_method_kw(method, func, method_kw)
    epochs = _ready_epochs(epochs)
    if reference is not None:
        reference = _ready_epochs(reference, "reference")
    inp = make_input(
        epochs, picks=picks, y=y, target=target, reference=reference, groups=groups
    )
    grid = FrequencyGrid(inp.sfreq, inp.n_times, bands)
    dev = resolve_device(device, model)
    _validate_type(chunk_size, ("int-like", str), "chunk_size")
    with model_context(model, dev):
        n_classes = check_model(model, inp.x, dev)
        if inp.target is not None and (
            inp.target.min() < 0 or inp.target.max() >= n_classes
        ):
            raise ValueError(
                f"target holds class indices outside 0..{n_classes - 1} (the "
                "model's outputs); check y / target."
            )
        size = chunk_size_for(func, chunk_size, inp, grid, dev)
        logger.info(f"Method {method!r} on {dev}, chunks of {size} epochs.")
        res = func(
            inp,
            grid,
            model,
            device=dev,
            chunk_size=size,
            random_state=random_state,
            **method_kw,
        )
    return SpectralSaliency(
        res.data,
        _picked_info(epochs.info, inp.picks),
        grid,
        method=method,
        method_params=dict(res.params, bands=_bands_param(bands)),
        events=epochs.events.copy(),
        event_id=dict(epochs.event_id),
        metadata=None if epochs.metadata is None else epochs.metadata.copy(),
        diagnostics=res.diagnostics,
    )


def _bands_param(bands):
    if isinstance(bands, dict):
        return {k: [float(v) for v in val] for k, val in bands.items()}
    return bands if isinstance(bands, str) else int(bands)


def _check_method_kw(method, func, method_kw):
    sig = inspect.signature(func)
    fixed = {"inp", "grid", "model", "device", "chunk_size", "random_state"}
    allowed = sorted(set(sig.parameters) - fixed)
    unknown = sorted(set(method_kw) - set(allowed))
    if unknown:
        raise TypeError(
            f"Unknown parameter(s) {unknown} for method={method!r}; it accepts "
            f"{allowed}. Known methods: {sorted(METHODS)}."
        )
