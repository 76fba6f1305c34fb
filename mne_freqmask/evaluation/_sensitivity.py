"""Max-Sensitivity of a method's maps through Quantus (``compare_methods``).

A private module of its own: :func:`~mne_freqmask.evaluation.compare_methods`
calls it, and it uses only the public bridge
(:func:`~mne_freqmask.evaluation.quantus_inputs`,
:func:`~mne_freqmask.evaluation.quantus_explain_func`).
"""

import numpy as np
from mne.utils import check_random_state

from mne_freqmask.evaluation.quantus_bridge import (
    quantus_explain_func,
    quantus_inputs,
)
from mne_freqmask.utils._deps import import_optional

#: FLEXtime's perturbation in ``compute_relative_sensitivity``
#: (``src/evaluation/evaluation.py`` of theabrusch/FLEXtime): Gaussian noise
#: of 5 % of the data's standard deviation, 10 draws per epoch
SENSITIVITY_NOISE = 0.05
SENSITIVITY_DRAWS = 10


def _check_sensitivity_kw(explain_kw):
    if "time_windows" in explain_kw or "picks" in explain_kw:
        raise ValueError(
            "The sensitivity score is computed on whole-epoch maps of every "
            "channel (Quantus perturbs every band component of every channel); "
            "remove time_windows and picks from explain_kw, or pass "
            "sensitivity=False."
        )


def _max_sensitivity(
    epochs,
    model,
    method,
    *,
    explain_kw=None,
    n_draws=SENSITIVITY_DRAWS,
    noise=SENSITIVITY_NOISE,
    random_state=0,
    device="auto",
):
    """Quantus' Max-Sensitivity of a method's channel x band maps, per epoch.

    Each epoch gets ``n_draws`` draws of Gaussian noise of ``noise`` times
    the data's standard deviation (added to its band components, so that the
    epoch receives noise of that size); the score is the largest relative
    change of the map, ``||e(x + d) - e(x)|| / ||e(x)||`` (Frobenius norms;
    Yeh et al., 2019; lower: more robust), computed by
    :class:`quantus.MaxSensitivity` on :func:`quantus_inputs` with
    :func:`quantus_explain_func`. The class explained is the one the model
    predicts on the unperturbed epoch. Needs Quantus (the ``evaluation``
    extra).

    Returns
    -------
    scores : ndarray, shape (n_epochs,)
    """
    quantus = import_optional("quantus")
    kw = dict(explain_kw or {})
    _check_sensitivity_kw(kw)
    bands = kw.pop("bands", 10)
    kw.pop("target", None)  # the predicted class, as Quantus' y_batch
    kw.pop("y", None)
    kw.setdefault("random_state", random_state)
    x, y, wrapped = quantus_inputs(epochs, model, bands=bands, device=device)
    metric = quantus.MaxSensitivity(
        nr_samples=int(n_draws),
        perturb_func=quantus.batch_gaussian_noise,
        # noise on each of the B components: B times the variance in the epoch
        perturb_func_kwargs=dict(perturb_std=float(noise) / np.sqrt(x.shape[2])),
        disable_warnings=True,
        display_progressbar=False,
    )
    # Quantus draws its noise from numpy's global generator: seed it for this
    # call only and give the caller's state back
    state = np.random.get_state()  # noqa: NPY002 (Quantus' global generator)
    np.random.seed(check_random_state(random_state).randint(0, 2**31 - 1))  # noqa: NPY002
    try:
        scores = metric(
            model=wrapped,
            x_batch=x,
            y_batch=y,
            a_batch=None,
            channel_first=True,
            explain_func=quantus_explain_func,
            explain_func_kwargs=dict(method=method, device=device, **kw),
        )
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return np.asarray(scores, float)
