"""explain(): validate, convert, dispatch to a method, wrap the result."""

import dataclasses

import numpy as np
from mne.utils import _check_option, _validate_type, logger, verbose, warn

from mne_freqmask._checkpoint import check_checkpoint_args, fingerprint, run_chunks
from mne_freqmask._inputs import _ready_epochs, check_layout, make_input
from mne_freqmask._provenance import make_provenance, provenance_json
from mne_freqmask._saliency_cells import saliency_on_grid
from mne_freqmask._saliency_utils import EXPLAINED
from mne_freqmask._torch_utils import (
    check_model,
    model_context,
    predict,
    resolve_device,
    resolve_n_jobs,
    torch_threads,
)
from mne_freqmask.methods import get_method, get_spec
from mne_freqmask.methods._base import MethodRun, chunk_size_for
from mne_freqmask.methods._registry import check_method_kw, check_short_time
from mne_freqmask.models import as_model, input_scale_of, model_metadata
from mne_freqmask.spectral import explain_grid
from mne_freqmask.utils._checks import _check_random_state, _picked_info
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
    n_jobs=None,
    random_state=None,
    checkpoint=None,
    time_windows=None,
    verbose=None,
    **method_kw,
):
    """Explain a model's decisions in the frequency domain.

    Parameters
    ----------
    %(epochs_explain)s
    %(model)s
    %(method_explain)s
    %(bands)s
    %(picks_explain)s
    %(target)s
    %(y)s
    %(reference)s
    %(groups)s
    %(chunk_size)s
    %(device)s
    %(n_jobs)s
    %(random_state)s
    checkpoint : path-like | None
        An HDF5 file (``.h5``) that makes a long run resumable. The epochs are
        explained ``chunk_size`` at a time and every finished chunk is written
        to the file atomically; a run killed at any point (even by SIGKILL)
        and started again with the same arguments resumes at the first
        unfinished chunk and returns the same saliency as an uninterrupted
        run. Arguments that differ from the checkpoint's (method, parameters,
        bands, picks, labels, data, reference, model weights, seed, chunk
        size, time windows) are refused. ``random_state`` must then be None
        or an int, and easyPEASI needs ``level="instance"``. Each chunk
        re-reads the reference. ``None`` (default): no checkpoint.
    time_windows : None | tuple of float | "auto"
        ``None`` (default): explain the whole epoch (a
        :class:`SpectralSaliency`). ``(length, step)`` in seconds (e.g.
        ``(0.5, 0.25)``) or ``"auto"`` (a quarter of the epoch, half a
        window apart): explain the epoch's short-time Fourier transform,
        cell by cell (channel x band x window), and return a
        :class:`SpectralSaliencyTFR` (see
        :class:`~mne_freqmask.spectral.ShortTimeGrid` for the windows: periodic
        Hann, centred every ``step``, ``step`` at most half the window so
        that the inverse STFT returns the epoch to float32 precision). The
        bands apply to the bins of one window (``length`` s: bins every
        ``1 / length`` Hz). A window at least as long as the epoch is the
        whole-epoch explanation as one window (the same numbers). Methods:
        :data:`mne_freqmask.methods.SHORT_TIME_METHODS`
        (%(short_time_methods)s); the others refuse it.
        FreqMask's mask is then one value per channel x band x window, the
        removed part of a cell is filled from the same cell of
        a reference epoch's STFT (or, with ``perturbation="generator"``,
        from a dense generator over all bins and windows of a channel), and
        the perturbed STFT goes back to time with the inverse STFT; amplitude
        and integrated gradients act on the STFT coefficients in the same
        way. With ``checkpoint``, the chunks of the time-resolved map are
        stored and resumed as those of a whole-epoch one; the checkpoint
        records the windows (in samples), and a run with other windows (or
        none) is refused.
    %(verbose)s
    %(method_kw_explain)s

    Returns
    -------
    saliency : SpectralSaliency | SpectralSaliencyTFR
        One map per epoch (epoch x channel x band, and x window with
        ``time_windows``); ``saliency.average()`` is the group-level map.
        ``saliency.provenance`` records what made it (versions, the model's
        class and hash, the method and its parameters, the epochs' file,
        the creation time) and is saved with it.
        ``saliency.diagnostics["explained_class"]`` records the class each
        epoch's map explains and ``method_params["target"]`` how it was
        chosen (``"prediction"``, ``"true"`` or ``"given"``): the
        evaluation scores it with ``y="explained"``.

    Notes
    -----
    The model sees all channels of ``epochs``, in order, at every step;
    only the picked channels are perturbed. Channels marked bad
    (``epochs.info["bads"]``) are fed to the model unchanged but, as in MNE,
    not explained unless picked by name; the log says which. Frequencies are
    those of ``np.fft.rfftfreq``: the real FFT holds each frequency once, so
    there is no mirrored half.

    Everything is validated before the model is touched (``device`` must hold
    data: ``"meta"`` is refused). The model's outputs on the first epochs and
    the saliency are checked for NaN and Inf, with an error naming the cause.
    Half-precision models (float16, bfloat16) receive their own dtype; the
    spectral arithmetic runs in float32.
    """
    model = as_model(model)
    _validate_type(method, str, "method")
    func = get_method(method)
    check_method_kw(method, method_kw)
    dev = resolve_device(device, model)
    resolve_n_jobs(n_jobs)
    _check_random_state(random_state)
    ckpt = check_checkpoint_args(checkpoint, method, method_kw, random_state)
    if time_windows is not None:
        check_short_time(method)
    epochs = _ready_epochs(epochs)
    if reference is not None:
        reference = _ready_epochs(reference, "reference")
    _check_model_metadata(epochs, model)
    inp = make_input(
        epochs, picks=picks, y=y, target=target, reference=reference, groups=groups
    )
    grid = explain_grid(inp.sfreq, inp.n_times, bands, time_windows, epochs.tmin)
    _validate_type(chunk_size, ("int-like", str), "chunk_size")
    if isinstance(chunk_size, str):
        _check_option("chunk_size", chunk_size, ("auto",))
    elif int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}.")
    # everything is validated; only now is the model touched
    with torch_threads(n_jobs), model_context(model, dev):
        n_classes = check_model(model, inp.x, dev)
        inp.check_classes(n_classes)
        # before the fit, which can take minutes: a model that cannot tell
        # the epochs apart is reported now, not after it
        # with target=None, every epoch's prediction: the class the map explains
        needs_labels = get_spec(method).needs_labels  # its map explains the labels
        units, pred = _warn_model(
            inp, model, dev, every=inp.target is None and not needs_labels
        )
        run = MethodRun(inp, grid, model, dev, chunk_size, random_state)
        if ckpt is not None:
            fp = fingerprint(
                method=method,
                method_kw=method_kw,
                bands=_bands_param(bands),
                inp=inp,
                epochs=epochs,
                reference=reference,
                model=model,
                random_state=random_state,
                windows=None if time_windows is None else (grid.win_length, grid.hop),
            )
            res = run_chunks(
                ckpt,
                fp,
                func,
                run,
                chunk_size=(
                    (lambda: chunk_size_for(func, run))
                    if isinstance(chunk_size, str)
                    else chunk_size_for(func, run)
                ),
                kw=method_kw,
                provenance=provenance_json(model, method, method_kw),
            )
        else:
            run = dataclasses.replace(run, chunk_size=chunk_size_for(func, run))
            logger.info(
                f"Method {method!r} on {dev}, chunks of {run.chunk_size} epochs."
            )
            res = func(run, **method_kw)
        _check_result(res.data, inp, model, dev, method)
        # the band edges of a short-time grid are those of its frequency grid
        _warn_map(res.data, units, getattr(grid, "frequency_grid", grid))
        _warn_outputs(n_classes, epochs.event_id)
    info = _picked_info(epochs.info, inp.picks)
    how, classes = _explained(needs_labels, inp, pred)
    params = dict(res.params, bands=_bands_param(bands), target=how)
    if time_windows is not None:
        params["time_windows"] = [grid.win_length / grid.sfreq, grid.hop / grid.sfreq]
    common = dict(
        method=method,
        method_params=params,
        events=epochs.events.copy(),
        event_id=dict(epochs.event_id),
        metadata=None if epochs.metadata is None else epochs.metadata.copy(),
        diagnostics=dict(res.diagnostics, **{EXPLAINED: classes}),
        provenance=make_provenance(
            model,
            method=method,
            method_params=params,
            source=getattr(epochs, "filename", None),
        ),
    )
    return saliency_on_grid(res.data, info, grid, **common)


def _explained(needs_labels, inp, pred):
    """How the class each epoch's map explains was chosen (``target`` of
    ``method_params``) and that class (issue #29): with ``target=None``
    ``pred``, the model's prediction on the unperturbed epoch (the argmax of
    the soft target FreqMask preserves), with ``"true"`` the labels, with an
    array that array. A method that needs labels (its spec's
    ``needs_labels``, as easyPEASI) scores them whatever ``target`` says."""
    if needs_labels:
        return "true", np.asarray(inp.y, int)
    if inp.target is None:
        return "prediction", pred
    return "true" if inp.target_is_y else "given", np.asarray(inp.target, int)


def _bands_param(bands):
    if isinstance(bands, dict):
        return {k: [float(v) for v in val] for k, val in bands.items()}
    return bands if isinstance(bands, str) else int(bands)


def _check_result(data, inp, model, device, method):
    """Raise, with the cause, if the saliency holds NaN or Inf."""
    finite = np.isfinite(data).reshape(len(data), -1).all(1)
    if finite.all():
        return
    idx = np.flatnonzero(~finite)
    logits = predict(model, inp.x[idx[:256]], device)
    if not np.isfinite(logits).all():
        bad = idx[: len(logits)][~np.isfinite(logits).all(1)]
        cause = (
            f"the model returns NaN or Inf on epoch(s) {bad[:10].tolist()} (its "
            "outputs on the first epochs were finite); check the model on those "
            "epochs (weights, dtype, input scale) or drop them"
        )
    else:
        cause = (
            "the model's outputs on those epochs are finite, so the method's "
            "own arithmetic overflowed (e.g. a too large lr or step count, or "
            "a half-precision model: try model.float())"
        )
    raise ValueError(
        f"method={method!r} gave NaN or Inf saliency for {len(idx)} of "
        f"{len(data)} epoch(s) (first: {idx[:10].tolist()}): {cause}."
    )


#: epochs whose predictions are checked for a model that tells them apart
_N_CHECK = 64


def _check_model_metadata(epochs, model):
    """The epochs against the channels and rate a braindecode model carries.

    A braindecode model built with ``chs_info`` / ``sfreq`` knows the channel
    order and sampling rate of its training data; epochs in another order or
    labelled with another rate would run silently (same shape). The check is
    the one the reference and the amortised explainer use.
    """
    meta = model_metadata(model)
    sfreq = meta["sfreq"]
    check_layout(
        epochs,
        meta["ch_names"],
        sfreq,
        None,  # the length: check_model's error, for every model
        head=(
            "The epochs do not match the model (a braindecode model built with "
            "chs_info / sfreq carries the channels and sampling rate of its "
            "training data): "
        ),
        other="the model's training data",
        order_fix="epochs.reorder_channels(names) with names = [ch['ch_name'] "
        "for ch in model.chs_info]",
        pick_fix=(
            "pick the model's channels, in its order (epochs.pick([ch['ch_name'] "
            "for ch in model.chs_info])), or rename them"
        ),
        sfreq_fix=(
            f"resample them (epochs.resample({sfreq})), or, if the epochs "
            f"really are sampled at {sfreq} Hz and only epochs.info['sfreq'] is "
            "wrong, correct it where the epochs are read"
        ),
    )


#: the start of the warning of a model that predicts one class (the command
#: line turns it into an error before the fit)
ONE_CLASS = "The model predicts class"
#: the start of the units hint in it
UNITS_HINT = " The data have a standard deviation of"


def _units_hint(scale, model=None):
    """The input-scale hint for data of standard deviation ``scale``.

    One sentence naming :class:`~mne_freqmask.models.InputScaler` when the
    data look like volts (a model trained on microvolts and given volts
    predicts one class) and the model does not already start with
    ``InputScaler``; "" otherwise. Used by :func:`explain` and the evaluation
    functions that answer "at chance".
    """
    if scale >= 1e-3 or (model is not None and input_scale_of(model) is not None):
        return ""
    return (
        f"{UNITS_HINT} {scale:.2g}: if the model was trained on microvolts "
        "(e.g. epochs.get_data() * 1e6), wrap it as "
        "torch.nn.Sequential(mne_freqmask.models.InputScaler(1e6), model)."
    )


def _warn_model(inp, model, device, every=False):
    """Warn, naming the fix, when a model is unlikely to explain anything.

    Seen in real use: a model that predicts one class for every epoch (often
    one trained on microvolts and given volts). Checked before the fit,
    which can take minutes. Returns the units hint that :func:`_warn_map`
    repeats ("" when the data are not in volts-like units) and, with
    ``every``, the predicted class of every epoch (else None): the check's
    passes then cover all epochs, not only the first :data:`_N_CHECK`.
    """
    scale = float(inp.scale) if np.ndim(inp.scale) == 0 else float(np.max(inp.scale))
    # only when it can apply: a model that starts with InputScaler is scaled
    units = _units_hint(scale, model)
    n = len(inp.x) if every else min(len(inp.x), _N_CHECK)
    pred = None
    if n >= 8 or every:
        # read in small batches: epochs not preloaded stay bounded in memory
        pred = np.concatenate(
            [
                predict(model, inp.x[i : min(i + 16, n)], device).argmax(1)
                for i in range(0, n, 16)
            ]
        )
        if n >= 8 and len(np.unique(pred)) == 1:
            warn(
                f"{ONE_CLASS} {int(pred[0])} for all {n} epochs "
                "checked, so it does not tell them apart and its explanation "
                "says little; check the model on these epochs (accuracy, input "
                f"scale, channels, filtering) before reading the map.{units}"
            )
    return units, pred


def _warn_outputs(n_classes, event_id):
    """Warn when the model's output count differs from the event types.

    After the fit: a method that uses the labels refuses such epochs itself,
    with an error that names the fix.
    """
    n_types = len(set(int(c) for c in (event_id or {}).values()))
    if n_types >= 2 and n_types != n_classes:
        warn(
            f"The model has {n_classes} outputs but the epochs hold {n_types} "
            "event types; check that this is the model trained on these "
            "classes (the k-th event code in ascending order is output k) or "
            "pass y with each epoch's output unit."
        )


#: an epoch's map whose values all lie within this share of its largest
#: magnitude is "nearly constant": its ranking rests on differences too small
#: to mean anything. Measured: FreqMask maps of EEGBCI with mu and beta only
#: (removing either band did not move the model), median 6e-5 per epoch; of
#: the simulation with gamma bands only, 5e-5 (30-60 Hz: 2e-4); the same
#: model with bands=10, 0.79.
_NEARLY_CONSTANT = 1e-3


def _warn_map(data, units, grid):
    """Warn, naming the fix, when a map is constant or nearly so."""
    if not data.size:
        return
    spread, top = float(np.ptp(data)), float(np.abs(data).max())
    # per epoch (the rows of an instance map; a group map is one row)
    rows = data.reshape(len(data), -1) if data.ndim == 3 else data.reshape(1, -1)
    rel = np.ptp(rows, axis=1) / np.maximum(np.abs(rows).max(axis=1), 1e-30)
    n_flat = int((rel <= _NEARLY_CONSTANT).sum())
    # constant up to float32 rounding (1e-6 of the largest value)
    if spread <= 1e-6 * top:
        warn(
            f"The saliency is constant ({float(data.flat[0]):.3g} everywhere): "
            "it ranks no cell. The model may ignore the perturbed cells or "
            f"predict one class whatever the input.{units}"
        )
    elif 2 * n_flat >= len(rows):
        lo, hi = float(grid.band_edges.min()), float(grid.band_edges.max())
        nyq = grid.sfreq / 2.0
        step = grid.freqs[1] - grid.freqs[0]
        outside = (
            f" The bands cover {lo:g}-{hi:g} Hz of 0-{nyq:g} Hz: the model's "
            "evidence may lie outside them (try bands=10)."
            if lo > step or hi < nyq - step
            else ""
        )
        what = (
            "map varies"
            if len(rows) == 1
            else f"maps of {n_flat} of {len(rows)} epochs vary"
        )
        warn(
            f"The saliency is nearly constant: the {what} by at most "
            f"{_NEARLY_CONSTANT:g} of their largest value (median "
            f"{float(np.median(rel)):.1g}), so their ranking of the cells rests "
            "on differences that small, as when removing any one cell barely "
            "changes the model's output. Check the model on these epochs "
            f"(mne_freqmask.check_explanation).{outside}{units}"
        )
