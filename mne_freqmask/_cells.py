"""What a grid does to data: its transform and the one cell perturbation.

Mixed into :class:`~mne_freqmask.FrequencyGrid` and
:class:`~mne_freqmask.spectral.ShortTimeGrid`, which define the transform
(``_forward`` / ``_backward``: the rfft, or the STFT flattened bin-major);
everything else is written once here, so the whole-epoch / short-time
difference lives in the two grid classes only. Every method, the amortised
trainer and every removal score perturb cells through :meth:`~CellOps.blend`:
``X * keep + (1 - keep) * fill`` on the spectrum, with ``fill`` zero, a
donor's spectrum or a generator's output.

torch is imported when a tensor is first transformed, so that the saliency
containers (which use the grids' bands) import no torch.
"""

import sys

import numpy as np


class CellOps:
    """Transform, cells <-> bins, band power and the cell perturbation.

    Tensors are computed in torch; ``spectrum``, ``expand``, ``band_power``
    and ``blend`` take numpy arrays too (the rfft of numpy).
    """

    def spectrum(self, x, scale=1.0, norm="ortho"):
        """Spectrum of ``x`` on the grid.

        Parameters
        ----------
        x : torch.Tensor | ndarray, shape (..., n_times)
            The data (numpy in, numpy out).
        scale : float
            With ``norm="ortho"``, the spectrum of ``x / scale`` (the
            package's scaled convention).
        norm : ``"ortho"`` | ``"backward"``
            Orthonormal (half-precision input is computed in float32), or
            unnormalised as :func:`torch.fft.rfft` (``scale`` unused).

        Returns
        -------
        xf : torch.Tensor | ndarray, shape (..., n_freqs)
            The rfft bins, or the STFT coefficients flattened bin-major (see
            :class:`~mne_freqmask.spectral.ShortTimeGrid`).
        """
        if not isinstance(x, np.ndarray):
            return self._forward(x, scale, norm)
        if self.short_time:  # numpy in, numpy out
            return self._forward(_torch().as_tensor(x), scale, norm).numpy()
        return np.fft.rfft(x / scale if norm == "ortho" else x, axis=-1, norm=norm)

    def inverse(self, xf, n_times=None, scale=1.0, norm="ortho"):
        """Inverse of :meth:`spectrum`.

        Parameters
        ----------
        xf : torch.Tensor, shape (..., n_freqs)
            A spectrum on this grid.
        n_times : int | None
            Length of the signal (None: the grid's).
        scale : float
            As in :meth:`spectrum`.
        norm : ``"ortho"`` | ``"backward"``
            As in :meth:`spectrum`.

        Returns
        -------
        x : torch.Tensor, shape (..., n_times)
            The signal.
        """
        n_times = self.n_times if n_times is None else int(n_times)
        return self._backward(xf, n_times, scale, norm)

    def expand(self, values, fill=1.0):
        """Expand ``(..., n_bands)`` band values to ``(..., n_freqs)`` bins.

        Parameters
        ----------
        values : torch.Tensor | ndarray, shape (..., n_bands)
            One value per band (per cell of a short-time grid).
        fill : float
            The value of bins that belong to no band.

        Returns
        -------
        expanded : torch.Tensor | ndarray, shape (..., n_freqs)
            Each band's value repeated over its bins.
        """
        if _is_tensor(values):
            pad = values.new_full(values.shape[:-1] + (1,), fill)
            index = self._expand_index(values.device)
            return _torch().cat([values, pad], -1).index_select(-1, index)
        values = np.asarray(values)
        padded = np.concatenate(
            [values, np.full(values.shape[:-1] + (1,), fill, values.dtype)], axis=-1
        )
        return padded[..., self.bin_band]  # -1 picks the fill column

    def collapse(self, values, func=np.sum):
        """Aggregate ``(..., n_freqs)`` bin values to ``(..., n_bands)``.

        Parameters
        ----------
        values : array-like, shape (..., n_freqs)
            One value per rfft bin.
        func : callable
            Reduction applied to the bins of each band, called as
            ``func(values, axis=-1)`` (default :func:`numpy.sum`).

        Returns
        -------
        collapsed : ndarray, shape (..., n_bands)
            One value per band; bins in no band are left out.
        """
        values = np.asarray(values)
        out = np.empty(values.shape[:-1] + (self.n_bands,), values.dtype)
        for bi in range(self.n_bands):
            out[..., bi] = func(values[..., self.bin_band == bi], axis=-1)
        return out

    def band_power(self, x, scale=1.0, norm="ortho", func=np.mean):
        """Power ``|X|^2`` of each cell of ``x``.

        Parameters
        ----------
        x : torch.Tensor | ndarray, shape (..., n_times)
            The data.
        scale : float
            As in :meth:`spectrum`.
        norm : ``"ortho"`` | ``"backward"``
            As in :meth:`spectrum`.
        func : callable
            Reduces a band's bins (:meth:`collapse`): the mean (default) or
            :func:`numpy.sum`.

        Returns
        -------
        power : ndarray, shape (..., n_bands)
            One value per cell.
        """
        xf = self.spectrum(x, scale, norm)
        if isinstance(xf, np.ndarray):
            power = np.abs(xf) ** 2
        else:
            power = xf.abs().square().cpu().numpy()
        return self.collapse(power, func)

    def blend(self, xf, keep, fill=None, *, bins=False):
        """The cell perturbation ``xf * keep + (1 - keep) * fill``.

        Parameters
        ----------
        xf : torch.Tensor | ndarray
            A spectrum (:meth:`spectrum`: complex, or real and imaginary
            parts on a leading axis that ``keep`` broadcasts over).
        keep : torch.Tensor | ndarray
            One value per cell (``(..., n_bands)``, expanded to the bins;
            bins in no band are kept), or per bin with ``bins=True``: 1
            keeps, 0 replaces by ``fill``, values between mix.
        fill : torch.Tensor | ndarray | None
            None zeroes the removed part; else a donor's spectrum or a
            generator's output, broadcastable to ``xf``.
        bins : bool
            Whether ``keep`` is given per bin rather than per cell.

        Returns
        -------
        blended : torch.Tensor | ndarray
            The perturbed spectrum (:meth:`inverse` goes back to time).
        """
        k = keep if bins else self.expand(keep)
        if fill is None:
            return xf * k
        return xf * k + (1 - k) * fill

    def perturb(self, x, keep, fill=None, *, picks=None, scale=1.0, norm="ortho"):
        """``x`` with cells of its channels ``picks`` perturbed.

        Parameters
        ----------
        x : torch.Tensor, shape (n_epochs, n_channels, n_times)
            The data.
        keep : torch.Tensor, shape (n_epochs, n_picks, n_bands)
            As in :meth:`blend`.
        fill : torch.Tensor | None
            As in :meth:`blend`: a spectrum with the same ``scale`` and
            ``norm``, or None.
        picks : torch.Tensor | None
            The channels perturbed (None: all, see
            ``mne_freqmask._cells.channel_index``).
        scale : float
            As in :meth:`spectrum`.
        norm : ``"ortho"`` | ``"backward"``
            As in :meth:`spectrum`.

        Returns
        -------
        perturbed : torch.Tensor, shape (n_epochs, n_channels, n_times)
            The spectrum blended, back to time and into a copy of ``x``
            (its dtype).
        """
        sub = x if picks is None else x.index_select(1, picks)
        h = self.blend(self.spectrum(sub, scale, norm), keep, fill)
        return put_back(x, picks, self.inverse(h, x.shape[-1], scale, norm))

    def donor_pool(self, source, n_donors, rng, picks, *, scale, device, dtype):
        """Spectra of random epochs of ``source``, the donors of a removal.

        Parameters
        ----------
        source : array-like, shape (n_epochs, n_channels, n_times)
            Epochs that can be indexed (read 32 at a time, so that epochs
            not preloaded stay bounded).
        n_donors : int
            At most this many epochs (all when ``source`` has fewer).
        rng : numpy.random.Generator | numpy.random.RandomState
            Draws the epochs (one ``rng.choice``).
        picks : array-like of int
            The channels.
        scale : float
            As in :meth:`spectrum`.
        device : torch.device
            Where the spectra are computed.
        dtype : torch.dtype
            Their real dtype.

        Returns
        -------
        spectra : torch.Tensor, shape (n_epochs, n_picks, n_freqs)
            The donors' spectra (at most ``n_donors`` epochs).
        idx : ndarray of int
            The donors' indices in ``source``, sorted.
        """
        torch = _torch()
        n_ref = len(source)
        idx = np.sort(rng.choice(n_ref, min(n_donors, n_ref), replace=False))
        parts = []
        for i in range(0, len(idx), 32):
            xb = torch.as_tensor(np.asarray(source[idx[i : i + 32]])[:, picks])
            parts.append(self.spectrum(xb.to(device, dtype), scale))
        return torch.cat(parts), idx

    def _expand_index(self, device):
        """Index that expands ``(..., n_bands + 1)`` to bins, cached per device."""
        cache = self.__dict__.setdefault("_index_cache", {})
        key = str(device)
        if key not in cache:
            cache[key] = _torch().as_tensor(
                np.where(self.bin_band < 0, self.n_bands, self.bin_band), device=device
            )
        return cache[key]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_index_cache", None)  # tensors: rebuilt on first use
        return state


def channel_index(picks, n_channels, device):
    """``picks`` as a tensor, or None when they are all channels in order.

    The one "are all channels picked?" test: :func:`put_back` then returns
    the perturbed channels as they are.
    """
    picks = np.asarray(picks)
    if len(picks) == n_channels and np.array_equal(picks, np.arange(n_channels)):
        return None
    return _torch().as_tensor(picks, device=device)


def put_back(x, picks, sub):
    """``x`` with its channels ``picks`` replaced by ``sub`` (``x``'s dtype).

    ``picks`` is a tensor of channel indices, or None (:func:`channel_index`):
    ``sub`` holds every channel.
    """
    sub = sub.to(x.dtype)
    return sub if picks is None else x.index_copy(1, picks, sub)


def _torch():
    import torch

    return torch


def _is_tensor(values):
    torch = sys.modules.get("torch")  # not imported yet: not a tensor
    return torch is not None and isinstance(values, torch.Tensor)
