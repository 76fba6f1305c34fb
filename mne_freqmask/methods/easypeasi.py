"""easyPEASI: band-limited noise perturbation (Nahmias & Kontson, KDD 2020).

Saliency of a channel x band cell is how much the model's performance drops
when the spectrum of that cell is replaced by Gaussian noise. Per epoch and
channel (published code: ``loadNEDC.addDataNoise`` and ``testModel.py`` of
github.com/dbp-osel/easyPEASI):

1. ``X = rfft(x)`` (unnormalised, float64; the published code uses
   :func:`scipy.fftpack.rfft`, whose real "packed" layout is
   ``[Re X_0, Re X_1, Im X_1, Re X_2, Im X_2, ...]``);
2. the band's coefficients, from the first bin with ``f > fmin`` up to and
   including the last bin with ``f <= fmax`` (the published rule; it can
   differ from the grid's ``fmin <= f < fmax`` by the edge bins, and leaves
   DC out of a band starting at 0 Hz), are replaced by draws of a Gaussian
   with a mean and standard deviation taken from coefficients of the same
   band: ``noise_parts="pooled"`` (published: the packed array mixes real and
   imaginary parts) one mean/std over the real and imaginary parts,
   ``"separate"`` one for the real and one for the imaginary parts;
   ``noise_stats="epoch"`` (published) from this epoch and channel,
   ``"dataset"`` from this channel in all explained epochs. The imaginary
   parts of DC and Nyquist are zero and absent from the packed layout; they
   are neither counted nor drawn;
3. ``irfft`` back to time.

Saliency: ``level="group"`` (the paper) is the drop in balanced accuracy
(mean of the per-class recalls, as ``testModel.runModel``) over all explained
epochs, the same value for every epoch (``saliency.average()`` is the
paper's number); ``level="instance"`` is the drop in the probability (softmax
of the model's output) of each epoch's true class. Both are averaged over
``n_repeats`` noise draws. The true classes are ``y`` (required).

With ``noise_stats="epoch"`` the noise has, in expectation, the band power of
the epoch it replaces, so a model that reads band power barely notices it:
on data where the classes differ in band power only (the simulated set of
:mod:`mne_freqmask.datasets.simulated`), the published method's map is close
to chance. ``noise_stats="dataset"`` replaces the epoch's band power by the
average one and finds the planted cells.

Bands: the grid's bands (``bands`` of :func:`mne_freqmask.explain`); the
paper's six are :data:`EASYPEASI_BANDS` (pass ``bands=EASYPEASI_BANDS``).

Random numbers are consumed in the published loop order, with one generator
(:func:`numpy.random.default_rng` of ``random_state``) for the whole run
instead of re-seeding before every perturbation::

    for repeat in range(n_repeats):
        for cell in cells:               # band-major, then channel
            for epoch in epochs:
                for channel in cell_channels:
                    rng.standard_normal(n_packed)   # noise = mean + std * draw

``cells`` are ``(band, channel)`` pairs for ``mode="band_channel"``, bands
(all picked channels at once) for ``mode="band"`` and channels for
``mode="channel"``. ``n_packed`` is the number of packed coefficients of the
band (``mode="channel"``: ``n_times`` time-domain draws, see below).

Deviations from the published code, both deliberate:

- Channels that a perturbation does not touch keep their data. The published
  ``addDataNoise`` starts from an all-zero array, so a channel-specific
  perturbation silently zeroed every other channel.
- One generator for the whole run (above), not a fixed seed per call: the
  published code re-seeds before every perturbation, so all cells got the
  same standard-normal draws.

``mode="channel"`` follows the published channel test: the whole channel is
replaced by time-domain Gaussian noise with the channel's own mean and
standard deviation; the value is repeated over all bands of the grid.
"""

import numpy as np
from mne.utils import ProgressBar, _check_option, logger

from mne_freqmask._torch_utils import model_dtype
from mne_freqmask.methods._base import MethodResult, chunking, method_spec
from mne_freqmask.methods._spectral_attr import check_batch_size
from mne_freqmask.utils._checks import _check_positive, _make_rng
from mne_freqmask.utils._metrics import balanced_accuracy, softmax
from mne_freqmask.utils._moments import RunningMoments

#: The six bands of the easyPEASI paper (Hz). Pass them as
#: ``explain(..., method="easypeasi", bands=EASYPEASI_BANDS)`` to reproduce it.
EASYPEASI_BANDS = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "mu": (12.0, 16.0),
    "beta": (16.0, 25.0),
    "gamma": (25.0, 40.0),
}


@method_spec(
    name="easypeasi",
    summary="easyPEASI (Nahmias & Kontson, 2020), band-limited Gaussian noise "
    "per cell; drop in balanced accuracy (group) or in the true-class "
    "probability (instance)",
    needs_labels=True,
    deterministic=False,
    fast_kwargs={"level": "instance", "batch_size": 64},
)
@chunking(by_epochs=False)
def easypeasi(
    run,
    *,
    level="group",
    mode="band_channel",
    noise_parts="pooled",
    noise_stats="epoch",
    n_repeats=1,
    batch_size=512,
):
    """easyPEASI saliency of every channel x band cell (see module docstring).

    ``chunk_size`` is not used (the method is declared ``by_epochs=False``):
    all perturbed copies are evaluated in forward passes of ``batch_size``
    epochs.

    Parameters (``explain(..., **method_kw)``): ``level="group"|"instance"``,
    ``mode="band_channel"|"band"|"channel"``,
    ``noise_parts="pooled"|"separate"``, ``noise_stats="epoch"|"dataset"``,
    ``n_repeats=1``, ``batch_size=512``; pass
    ``bands=mne_freqmask.methods.easypeasi.EASYPEASI_BANDS`` for its six
    bands.
    """
    _check_option("level", level, ("group", "instance"))
    _check_option("mode", mode, ("band_channel", "band", "channel"))
    _check_option("noise_parts", noise_parts, ("pooled", "separate"))
    _check_option("noise_stats", noise_stats, ("epoch", "dataset"))
    n_repeats = _check_positive(n_repeats, "n_repeats", integer=True)
    batch_size = check_batch_size(batch_size)
    inp, grid = run.inp, run.grid
    y = inp.require_labels(
        "easyPEASI measures the drop in accuracy / true-class probability and "
        "needs the true class of every epoch"
    )
    params = dict(
        level=level,
        mode=mode,
        noise_parts=noise_parts,
        noise_stats=noise_stats,
        n_repeats=n_repeats,
        batch_size=batch_size,
        random_state=run.seed,
    )
    rng = _make_rng(run.random_state)
    y = np.asarray(y, int)
    n_picks, n_bands, n_epochs = len(inp.picks), grid.n_bands, inp.n_epochs
    packed = [
        _packed_index(grid.freqs, lo, hi, inp.n_times) for lo, hi in grid.band_edges
    ]
    for (lo, hi), name, (bins, _) in zip(
        grid.band_edges, grid.band_names, packed, strict=True
    ):
        if len(bins) == 0:
            raise ValueError(
                f"Band {name!r} ({lo}-{hi} Hz) holds no rfft bin with "
                f"{lo} < f <= {hi} (easyPEASI's rule); widen it."
            )
    if mode == "band_channel":
        cells = [(b, [c]) for b in range(n_bands) for c in range(n_picks)]
    elif mode == "band":
        cells = [(b, list(range(n_picks))) for b in range(n_bands)]
    else:
        cells = [(None, [c]) for c in range(n_picks)]
    stats = None
    if noise_stats == "dataset":
        stats = _dataset_stats(inp, packed, noise_parts, mode, batch_size)
    evaluator = _Evaluator(run.model, run.device, y, n_repeats, len(cells), batch_size)
    logits = evaluator.forward(inp.x)
    p_orig = softmax(logits)[np.arange(n_epochs), y]
    logger.info(
        f"easyPEASI: {n_repeats * len(cells)} perturbations x {n_epochs} epochs "
        f"in batches of {batch_size}."
    )
    jobs = [(r, c) for r in range(n_repeats) for c in enumerate(cells)]
    for rep, (ci, (band, chans)) in ProgressBar(jobs, mesg="easyPEASI"):
        # epochs in order, channels within epochs: the published draw order
        for start in range(0, n_epochs, batch_size):
            sl = slice(start, min(start + batch_size, n_epochs))
            xp = inp.x[sl].copy()
            idx = inp.picks[chans]
            signal = xp[:, idx].astype(np.float64)
            if band is None:
                if stats is None:
                    mean = signal.mean(-1, keepdims=True)
                    std = signal.std(-1, keepdims=True)
                else:
                    mean, std = (t[:, chans] for t in stats["time"])
                new = mean + std * rng.standard_normal(signal.shape)
            else:
                bins, parts = packed[band]
                spec = np.fft.rfft(signal, axis=-1)
                vals = _packed_values(spec, bins, parts)
                if stats is None:
                    mean, std = _stats(vals, parts, noise_parts, axis=-1)
                else:
                    mean, std = (t[:, chans] for t in stats[band])
                new = mean + std * rng.standard_normal(vals.shape)
                new = _replace_packed(spec, bins, parts, new, inp.n_times)
            xp[:, idx] = new.astype(np.float32)
            evaluator.add(xp, rep, ci, sl)
    evaluator.flush()
    pred, p_true = evaluator.pred, evaluator.p_true
    cell_vals = np.empty((n_epochs, len(cells)), np.float64)
    bacc_orig = balanced_accuracy(y, logits.argmax(1))
    if level == "group":
        bacc = np.array(
            [
                [balanced_accuracy(y, pred[r, c]) for c in range(len(cells))]
                for r in range(n_repeats)
            ]
        )
        cell_vals[:] = bacc_orig - bacc.mean(0)
    else:
        cell_vals[:] = (p_orig[None, None] - p_true).mean(0).T
    out = np.zeros((n_epochs, n_picks, n_bands), np.float32)
    for ci, (band, chans) in enumerate(cells):
        if band is None:
            out[:, list(chans), :] = cell_vals[:, ci, None, None]
        else:
            out[:, list(chans), band] = cell_vals[:, ci, None]
    diagnostics = dict(
        true_class_probability=p_orig.astype(np.float32),
        correct=logits.argmax(1) == y,
        balanced_accuracy=np.full(n_epochs, bacc_orig, np.float32),
    )
    return MethodResult(out, params, diagnostics)


def _packed_index(freqs, lo, hi, n_times):
    """Bins and parts (0 real, 1 imaginary) of a band in packed order.

    The band holds the bins from the first with ``f > lo`` up to, not
    including, the first with ``f > hi`` (the published rule, on bin
    frequencies). The imaginary parts of DC and (even ``n_times``) Nyquist
    are left out, as in :func:`scipy.fftpack.rfft`'s layout.
    """
    above_lo = np.flatnonzero(freqs > lo)
    above_hi = np.flatnonzero(freqs > hi)
    start = above_lo[0] if len(above_lo) else len(freqs)
    stop = above_hi[0] if len(above_hi) else len(freqs)
    bins, parts = [], []
    for k in range(start, stop):
        bins.append(k)
        parts.append(0)
        if k != 0 and not (n_times % 2 == 0 and k == n_times // 2):
            bins.append(k)
            parts.append(1)
    return np.array(bins, int), np.array(parts, int)


def _dataset_stats(inp, packed, noise_parts, mode, batch_size):
    """Mean and std of each picked channel (x band) over all epochs.

    ``noise_stats="dataset"``: the noise then carries the average band power
    of the explained epochs, not each epoch's own.
    """
    # chunk by chunk, as the epochs may be read from disk (EpochsSource)
    if mode == "channel":
        time = RunningMoments(axis=(0, 2))
        for start in range(0, inp.n_epochs, batch_size):
            time.update(inp.x[start : start + batch_size][:, inp.picks])
        return {"time": (time.mean, time.std)}
    moments = {}
    for start in range(0, inp.n_epochs, batch_size):
        xb = inp.x[start : start + batch_size][:, inp.picks].astype(np.float64)
        spec = np.fft.rfft(xb, axis=-1)
        for band, (bins, parts) in enumerate(packed):
            vals = _packed_values(spec, bins, parts)
            if noise_parts == "pooled":
                groups = [slice(None)]
            else:
                groups = [parts == part for part in (0, 1) if (parts == part).any()]
            for gi, sel in enumerate(groups):
                key = (band, gi)
                moments.setdefault(key, RunningMoments(axis=(0, 2)))
                moments[key].update(vals[..., sel])
    out = {}
    for band, (_, parts) in enumerate(packed):
        if noise_parts == "pooled":
            mom = moments[(band, 0)]
            out[band] = mom.mean, mom.std
            continue
        # real parts get the real parts' statistics, imaginary the imaginary's
        mean = np.zeros((1, len(inp.picks), len(parts)))
        std = np.zeros_like(mean)
        present = [part for part in (0, 1) if (parts == part).any()]
        for gi, part in enumerate(present):
            sel = parts == part
            mean[..., sel] = moments[(band, gi)].mean
            std[..., sel] = moments[(band, gi)].std
        out[band] = mean, std
    return out


def _packed_values(spec, bins, parts):
    """Packed band coefficients ``(..., n_packed)`` of a complex spectrum."""
    return np.where(parts == 0, spec[..., bins].real, spec[..., bins].imag)


def _stats(vals, parts, noise_parts, axis):
    """Mean and std of packed values, broadcastable to ``vals``.

    ``noise_parts="pooled"``: one mean/std over real and imaginary parts;
    ``"separate"``: real parts get the real parts' mean/std, imaginary parts
    the imaginary parts'.
    """
    if noise_parts == "pooled":
        return vals.mean(axis, keepdims=True), vals.std(axis, keepdims=True)
    shape = list(vals.shape)
    for ax in np.atleast_1d(axis):
        shape[ax] = 1
    shape[-1] = vals.shape[-1]
    mean, std = np.zeros(shape), np.zeros(shape)
    for part in (0, 1):
        sel = parts == part
        if sel.any():
            v = vals[..., sel]
            mean[..., sel] = v.mean(axis, keepdims=True)
            std[..., sel] = v.std(axis, keepdims=True)
    return mean, std


def _replace_packed(spec, bins, parts, new, n_times):
    """``irfft`` of ``spec`` with its packed band coefficients set to ``new``."""
    ri = np.stack([spec.real, spec.imag], -1)
    ri[..., bins, parts] = new
    return np.fft.irfft(ri[..., 0] + 1j * ri[..., 1], n=n_times, axis=-1)


class _Evaluator:
    """Collect perturbed epochs and run the model on full batches."""

    def __init__(self, model, device, y, n_repeats, n_cells, batch_size):
        self.model, self.device, self.y = model, device, y
        self.batch_size = batch_size
        self.dtype = model_dtype(model)
        self.pred = np.empty((n_repeats, n_cells, len(y)), np.int64)
        self.p_true = np.empty((n_repeats, n_cells, len(y)), np.float64)
        self._xs, self._where, self._n = [], [], 0

    def forward(self, x):
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(x), self.batch_size):
                xb = torch.as_tensor(x[start : start + self.batch_size])
                out.append(
                    self.model(xb.to(self.device, self.dtype)).double().cpu().numpy()
                )
        return np.concatenate(out)

    def add(self, x, rep, cell, sl):
        self._xs.append(x)
        self._where.append((rep, cell, sl))
        self._n += len(x)
        if self._n >= self.batch_size:
            self.flush()

    def flush(self):
        if not self._xs:
            return
        logits = self.forward(np.concatenate(self._xs))
        prob = softmax(logits)
        pos = 0
        for rep, cell, sl in self._where:
            n = sl.stop - sl.start
            lo, yb = slice(pos, pos + n), self.y[sl]
            self.pred[rep, cell, sl] = logits[lo].argmax(1)
            self.p_true[rep, cell, sl] = prob[lo][np.arange(n), yb]
            pos += n
        self._xs, self._where, self._n = [], [], 0
