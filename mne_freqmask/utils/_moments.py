"""Mean and standard deviation accumulated chunk by chunk."""

import numpy as np


class RunningMoments:
    """Mean and variance over ``axis``, merged one chunk at a time.

    Each chunk's mean and sum of squared deviations are combined with the
    running ones by Chan, Golub & LeVeque's pairwise update, in float64, so
    the result equals ``x.mean(axis)`` / ``x.std(axis)`` of the concatenated
    chunks (to rounding) without holding them all. numpy has no streaming
    moments, hence this class.

    Parameters
    ----------
    axis : int | tuple of int
        Axes reduced (kept with size 1, as ``keepdims=True``). Chunks are
        concatenated along axis 0, which must be among them.
    """

    def __init__(self, axis):
        self.axis = tuple(np.atleast_1d(axis))
        self.n = 0
        self.mean = None
        self._m2 = None

    def update(self, x):
        """Add a chunk of values."""
        x = np.asarray(x, np.float64)
        n_b = int(np.prod([x.shape[ax] for ax in self.axis]))
        if n_b == 0:
            return self
        mean_b = x.mean(self.axis, keepdims=True)
        m2_b = ((x - mean_b) ** 2).sum(self.axis, keepdims=True)
        if self.mean is None:
            self.n, self.mean, self._m2 = n_b, mean_b, m2_b
            return self
        tot = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / tot)
        self._m2 = self._m2 + m2_b + delta**2 * (self.n * n_b / tot)
        self.n = tot
        return self

    @property
    def std(self):
        """Population standard deviation (``ddof=0``, as ``np.std``)."""
        return np.sqrt(self._m2 / self.n)
