"""``explain(method="freqmask_amortised", explainer=...)``: a fitted explainer.

The masks come from a :class:`~mne_freqmask.FreqMaskExplainer` trained
beforehand (:meth:`~mne_freqmask.FreqMaskExplainer.fit`): one forward pass of
its network per chunk of epochs, and no pass of the model (which
:func:`mne_freqmask.explain` still runs on a few epochs for its checks).
"""

import numpy as np
from mne.utils import warn

from mne_freqmask._checkpoint import _model_sha
from mne_freqmask.methods._base import MethodResult, chunking, method_spec


def _memory_per_epoch(inp, grid):
    """The epoch, its spectrum and the features (a few float32 copies)."""
    return 4 * 8 * int(np.prod(inp.x.shape[1:]))


@method_spec(
    name="freqmask_amortised",
    summary="FreqMask masks predicted by a fitted "
    "mne_freqmask.FreqMaskExplainer (explainer=...), one forward pass of its "
    "network per chunk",
)
@chunking(memory_per_epoch=_memory_per_epoch)
def freqmask_amortised(run, *, explainer=None):
    """Masks of every epoch of ``run`` from a fitted ``explainer``.

    (Signed expected-gradients maps for an explainer fitted with
    ``objective="expected_gradients"``.)

    ``random_state`` is ignored: the explainer is deterministic. The grid
    (``bands``) and the explained channels (``picks``) must be those of the
    explainer's fit.
    """
    from mne_freqmask.amortised import FreqMaskExplainer

    inp, grid = run.inp, run.grid

    if not isinstance(explainer, FreqMaskExplainer):
        raise TypeError(
            'method="freqmask_amortised" needs explainer=, a fitted '
            "mne_freqmask.FreqMaskExplainer (FreqMaskExplainer().fit(train, "
            f"model)), got {type(explainer).__name__}."
        )
    if explainer.net is None:
        raise RuntimeError(
            "The explainer is not fitted yet; call explainer.fit(epochs, model) first."
        )
    if inp.target is not None:
        raise ValueError(
            "The amortised explainer preserves the model's own prediction; "
            "target must be None."
        )
    if inp.x.shape[1:] != (len(explainer.ch_names), explainer.n_times) or (
        inp.sfreq != explainer.sfreq
    ):
        raise ValueError(
            f"The epochs ({inp.x.shape[1]} channels x {inp.x.shape[2]} samples "
            f"at {inp.sfreq:g} Hz) do not match those the explainer was trained "
            f"on ({len(explainer.ch_names)} x {explainer.n_times} at "
            f"{explainer.sfreq:g} Hz)."
        )
    if not np.array_equal(inp.picks, explainer.picks):
        raise ValueError(
            f"picks select channels {inp.picks.tolist()}, the explainer explains "
            f"{explainer.picks.tolist()}; pass picks=explainer.picks (or the "
            "same picks as in fit)."
        )
    if list(grid.band_names) != list(explainer.grid.band_names) or not np.allclose(
        grid.band_edges, explainer.grid.band_edges
    ):
        raise ValueError(
            f"bands give {grid.band_names}, the explainer was trained on "
            f"{explainer.grid.band_names}; pass bands=explainer.grid.bands."
        )
    if _model_sha(run.model) != explainer.model_fingerprint:
        warn(
            "The model's weights differ from those of the model the explainer "
            "was trained on, and the explainer never calls the model: its map "
            "explains the other model. Fit the explainer on this model."
        )
    out = run.new_map()
    for sl, x in run.chunks("Amortised chunks"):
        out[sl] = explainer.predict_masks(x.float().cpu().numpy(), device=run.device)
    return MethodResult(out, explainer.method_params())
