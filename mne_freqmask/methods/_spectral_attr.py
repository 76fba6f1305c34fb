"""Helpers shared by the attribution methods (gradients, captum, LRP, easyPEASI).

Kept apart from :mod:`._torch_utils` because they know about the method
contract (:class:`~mne_freqmask._inputs.ExplainInput`,
:class:`~mne_freqmask.spectral.FrequencyGrid`).
"""

import numpy as np
import torch

from mne_freqmask._cells import put_back
from mne_freqmask._torch_utils import predict
from mne_freqmask.spectral import as_grid
from mne_freqmask.utils._checks import _check_positive


def target_classes(inp, model, device, batch_size=256):
    """Class explained for each epoch: ``inp.target`` or the predicted class."""
    if inp.target is not None:
        return np.asarray(inp.target, int)
    logits = predict(model, inp.x, device, batch_size=batch_size)
    return logits.argmax(1).astype(int)


def check_batch_size(batch_size):
    """Validate the number of (perturbed) epochs per forward pass."""
    return _check_positive(batch_size, "batch_size", integer=True)


def in_band_bins(grid):
    """Indices of the rfft bins that belong to a band, and each one's band."""
    idx = np.flatnonzero(grid.bin_band >= 0)
    return idx, grid.bin_band[idx]


class InBandSpectrumModel(torch.nn.Module):
    """``model`` as a function of the in-band spectrum of the picked channels.

    The input has shape ``(n_epochs, n_picks, n_in_band_bins, 2)``: the real
    and imaginary parts of the bins that belong to a band, in the scaled,
    orthonormal convention of :func:`mne_freqmask._torch_utils.spectrum` (for
    a :class:`~mne_freqmask.spectral.ShortTimeGrid` ``grid``: of its STFT,
    flattened, see :meth:`~mne_freqmask.spectral.ShortTimeGrid.spectrum`). The
    other bins of the picked channels and all other channels are held at the
    values passed as ``x`` (extra forward argument), so zeroing an input cell
    removes exactly one channel x band cell of the epoch.
    """

    def __init__(self, model, picks, bins, n_times, scale, device, grid=None):
        super().__init__()
        self.model = model
        self.grid = as_grid(grid, n_times)
        self.picks = torch.as_tensor(picks, device=device)
        self.bins = torch.as_tensor(bins, device=device)
        self.n_times = int(n_times)
        self.scale = float(scale)

    def split(self, x):
        """Spectrum of ``x``'s picked channels and its in-band part."""
        full = torch.view_as_real(
            self.grid.spectrum(x.index_select(1, self.picks), self.scale)
        ).contiguous()
        return full, full.index_select(2, self.bins)

    def forward(self, inband, x):
        full, _ = self.split(x)
        full = full.to(inband.dtype).index_copy(2, self.bins, inband)
        xt = self.grid.inverse(torch.view_as_complex(full), self.n_times, self.scale)
        return self.model(put_back(x, self.picks, xt))


def in_band_to_grid(values, bins, grid, func):
    """Aggregate ``(..., n_in_band_bins)`` values to ``(..., n_bands)``."""
    full = np.zeros(values.shape[:-1] + (grid.n_freqs,), values.dtype)
    full[..., bins] = values
    return grid.collapse(full, func)
