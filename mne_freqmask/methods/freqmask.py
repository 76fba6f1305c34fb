"""Frequency-domain mask perturbation (Wang et al.), fitted in batches.

For each epoch ``x`` (channels x times) with spectrum ``X = rfft(x)``, a mask
``M`` in [0, 1] over channel x band cells (expanded to bins by repetition) and
a perturbation ``Xr = NN(X)`` from a two-branch dense generator (one linear
layer over the frequency axis for the real part, one for the imaginary part)
define the perturbed epoch ``irfft(X * M + (1 - M) * Xr)``. The mask and the
generator minimise (paper eq. 5)::

    CE(f(x_hat), f(x)) + a_M * mean(M) + a_r * mean|Xr| + lambda * L_align

where ``L_align`` pulls ``Xr`` towards the frequency-domain samples of the
nearest subject cluster of the reference set. With the squared distance,
``mean_i |Xr - X_i|^2 = |Xr - mean_i X_i|^2 + const``, so only the per-subject
mean spectrum is needed.

All epochs of a chunk are fitted in one optimisation. Each epoch has its own
mask and its own generator, the loss is a sum of per-epoch terms and Adam acts
element-wise, so the result equals fitting the epochs one at a time. Early
stopping is per epoch: after ``min_steps`` steps, an epoch whose ranking of
the cells has settled (``stopping="rank"``, see
``ranking_settled`` in ``methods/_stopping.py``) or whose loss has
not improved by ``tol`` (relative) for ``patience`` steps (``"loss"``, the
paper's) is frozen and removed from the active batch, so later steps only
pay for the epochs still moving.

Short-time (``explain(..., time_windows=...)``, a ``ShortTimeGrid``): ``rfft``
becomes the STFT (``ShortTimeGrid.spectrum``), flattened to bins x windows, so
the mask is one value per channel x band x window, the donors' (or the
generator's) fill replaces a cell's STFT coefficients and ``istft`` rebuilds
the epoch; the loss, stopping and scores are unchanged. The generator spans
every bin of every window of a channel; the alignment centres are the
subjects' mean STFTs (each window against the same window).
"""

import inspect

import numpy as np
from mne.utils import _check_option, logger

from mne_freqmask._torch_utils import (  # noqa: F401 (adam_update: benchmarks)
    _fused_adam_ok,
    adam_update,
    model_dtype,
    spectral_dtype,
)
from mne_freqmask.methods._base import (
    MethodResult,
    chunk_progress,
    chunking,
    method_spec,
)
from mne_freqmask.methods._freqmask_fit import (  # noqa: F401 (benchmarks)
    _ChunkFitter,
    _GradientFitter,
    _subject_centres,
)
from mne_freqmask.methods._stopping import stop_reasons, warn_stops
from mne_freqmask.utils._checks import _check_positive, _make_rng

#: Wang et al.'s configuration (``preset="paper"``): up to 300 Adam steps at
#: lr 0.01, lambda 0.05, early stopping after 10 steps without improvement
#: from the first step on, the final mask as the score, the generator's
#: perturbation.
PAPER = dict(
    n_steps=300,
    lr=0.01,
    lambda_align=0.05,
    l1_mask=1.0,
    l1_perturbation=1.0,
    alignment="complex",
    generator="two_branch",
    patience=10,
    tol=1e-3,
    min_steps=1,
    cell_score="mask",
    perturbation="generator",
    stopping="loss",
)


#: ``n_steps=None`` resolves per objective: Adam steps at most for the
#: preservation objective, draws (one forward and one backward pass each) for
#: expected gradients, the number every benchmark of it used (BENCHMARKS.md,
#: issue #29)
DEFAULT_STEPS = {"preserve": 300, "expected_gradients": 100}

#: the parameters of objective="expected_gradients" (the others tune the
#: preservation objective's optimisation, which it does not run)
EG_PARAMS = ("objective", "n_steps", "perturbation", "n_donors")

#: freqmask()'s arguments that are not FreqMask parameters (_check_params)
_NOT_PARAMS = ("run", "preset")


def _memory_per_epoch(inp, grid):
    """~4 copies (value, grad, two Adam moments) of the generator and mask,
    plus an allowance for the model's activations."""
    n_f = grid.n_freqs
    return 4 * (4 * (2 * n_f * n_f + 2 * n_f) + 64 * np.prod(inp.x.shape[1:]))


@method_spec(
    name="freqmask",
    summary="Wang et al.'s frequency-domain mask perturbation, in [0, 1] per cell",
    short_time=True,
    deterministic=False,
    fast_kwargs={"n_steps": 8, "min_steps": 1},
)
@chunking(memory_per_epoch=_memory_per_epoch)
def freqmask(
    run,
    *,
    n_steps=None,
    lr=0.01,
    lambda_align=0.05,
    l1_mask=1.0,
    l1_perturbation=1.0,
    alignment="complex",
    generator="two_branch",
    patience=10,
    tol=1e-3,
    min_steps=50,
    cell_score="path",
    perturbation="reference",
    n_donors=256,
    stopping="rank",
    rank_tol=0.02,
    objective="preserve",
    preset=None,
    return_perturbed=False,
):
    """Fit FreqMask masks for every epoch of ``run`` (see module docstring).

    Parameters (``explain(..., **method_kw)``; defaults from the paper but two,
    ``cell_score`` and ``perturbation``, found better by the faithfulness
    benchmark, BENCHMARKS.md; why: the user guide, "The method"): ``n_steps``
    (Adam steps at most; None: 300, see :data:`DEFAULT_STEPS`), ``lr``,
    ``lambda_align`` (weight of the target-alignment loss), ``l1_mask`` and
    ``l1_perturbation`` (weights of the L1 terms, means over cells / bins so
    that they do not swamp the cross-entropy),
    ``alignment="complex"`` (towards the subject's mean complex spectrum, the
    paper's) or ``"magnitude"`` (its mean magnitude spectrum),
    ``generator="two_branch"`` or ``"one_branch"`` (the paper's ablation).
    Stopping is per epoch, after ``min_steps`` warm-up steps (so that models whose
    loss stalls at first, e.g. Deep4Net, do not stop with masks near 0.5):
    ``stopping="rank"`` stops once, checked every ``patience`` steps, the Spearman
    correlation of the cell scores now and at half as many steps is at least ``1 -
    rank_tol``; ``"loss"`` (the paper's; late with reference donors, whose loss is
    redrawn at every step) after ``patience`` steps without a relative improvement
    of ``tol``. ``diagnostics["stop"]`` holds why each epoch stopped
    (``_stopping.STOP_REASONS``); a warning names the fix when many did not
    converge. ``cell_score="path"`` (the mask's mean over the optimisation: ranks
    the cells that the final mask ties at 0) or ``"mask"`` (the final mask, the
    paper's). ``perturbation="reference"``: the removed part of a cell is filled
    from a random reference epoch at each step (of ``n_donors``; pass the training
    epochs as ``reference``), so that evidence that is an absence of power counts;
    the donors are drawn with ``random_state`` (None: seed 0), each epoch's from
    its own stream, so the map depends on the seed but not on ``chunk_size``.
    ``"generator"``: the paper's learned perturbation (about no power),
    deterministic. ``preset="paper"`` sets every parameter to :data:`PAPER` (Wang
    et al.'s configuration) and refuses one that contradicts it. With
    ``return_perturbed=True``, ``diagnostics["perturbed"]`` holds the final
    perturbed epochs ``irfft(X * M + (1 - M) * Xr)`` (float32, all channels, in
    the epochs' units), e.g. for :func:`mne_freqmask.evaluation.ood_score`.

    ``objective="expected_gradients"`` optimises no mask: the score of a
    cell is the mean, over ``n_steps`` draws of a donor epoch and a point
    ``alpha`` (stratified: one in each of ``n_steps`` equal slices of (0,
    1)) on the straight line from the donor to the epoch (every cell at
    ``alpha``), of the gradient of the target's probability with respect to
    the cell's mask: integrated gradients of the mask from the donor to the
    epoch, averaged over donors (Erion et al.'s expected gradients in
    FreqMask's perturbation). By the completeness of integrated gradients
    the scores of an epoch sum to the drop of the probability when every
    cell is replaced by the donor's, so a score measures the finite effect of
    the replacement the distribution-preserving deletion curve applies, and
    is signed (negative: replacing the cell by other epochs' content *raises*
    the probability; BENCHMARKS.md, issue #29). Needs
    ``perturbation="reference"``; ``n_steps`` is the number of draws (one
    forward and one backward pass each), and the stopping, ``lr`` and L1
    parameters do not apply.
    """
    if preset is not None:
        _check_option("preset", preset, ("paper",))
        args = locals()  # the call's arguments, before anything is defined
        given = {k: args[k] for k in PAPER}
        clash = [k for k in _changed(given) if given[k] != PAPER[k]]
        if clash:
            raise ValueError(
                f'preset="paper" fixes {", ".join(clash)} to the paper\'s values '
                f"({', '.join(f'{k}={PAPER[k]!r}' for k in clash)}); drop "
                'preset="paper" to change them.'
            )
        return freqmask(
            run,
            n_donors=n_donors,
            rank_tol=rank_tol,
            objective=objective,
            return_perturbed=return_perturbed,
            **PAPER,
        )
    # every remaining argument is a FreqMask parameter (the preset returned)
    params = _check_params(
        **{k: v for k, v in locals().items() if k not in _NOT_PARAMS}
    )
    n_steps = params["n_steps"]
    n_donors = params.get("n_donors", n_donors)
    inp, grid, model, device = run.inp, run.grid, run.model, run.device
    # masks, generators and spectra in float32 at least; the model gets its
    # own dtype (half-precision models: rfft has no float16 kernel on CPU)
    net_dtype = model_dtype(model)
    dtype = spectral_dtype(net_dtype)
    eg = objective == "expected_gradients"
    if eg:  # no generator to align: no subject centres
        centres = cluster = None
    else:
        centres, cluster = _subject_centres(inp, grid, alignment, device, dtype)
    n_epochs = inp.n_epochs
    out = run.new_map()
    steps = np.empty(n_epochs, np.int32)
    loss_out = np.empty(n_epochs, np.float32)
    ce_out = np.empty(n_epochs, np.float32)
    perturbed = np.empty(inp.x.shape, np.float32) if return_perturbed else None
    kind = _ChunkFitter if objective == "preserve" else _GradientFitter
    fitter = kind(inp, grid, model, params, device, dtype, net_dtype)
    if perturbation == "reference":
        # None draws with seed 0: a map is reproducible by default, as
        # FreqMask was before the donors (an int or a RandomState varies them)
        seed = 0 if run.random_state is None else run.random_state
        fitter.donor_pool(n_donors, _make_rng(seed))
    for sl, progress in chunk_progress(n_epochs, run.chunk_size, "FreqMask epochs"):
        out_x = None if perturbed is None else perturbed[sl]
        cen = None if eg else centres[cluster[sl]]
        mask, n_done, loss, ce = fitter.fit(sl, cen, out_x, progress)
        out[sl], steps[sl], loss_out[sl], ce_out[sl] = mask, n_done, loss, ce
    if eg:  # n_steps draws: nothing to stop
        logger.info(
            f"FreqMask (expected gradients): {n_steps} draws per epoch (one "
            "forward and one backward pass each)."
        )
        return MethodResult(out, params, dict(n_draws=steps))
    min_steps, patience = params["min_steps"], params["patience"]
    stop = stop_reasons(steps, n_steps, min_steps, patience, stopping)
    logger.info(
        f"FreqMask: median {np.median(steps):.0f} steps (max {steps.max()}); "
        f"{int((stop == 0).sum())} of {n_epochs} epochs converged, "
        f"{int((stop == 1).sum())} reached n_steps={n_steps}, "
        f"{int((stop == 2).sum())} stopped at the first step allowed; median "
        f"final loss {np.median(loss_out):.3f}."
    )
    warn_stops(stop, steps, n_steps, min_steps, patience)  # stop 2: loss only
    diagnostics = dict(
        n_steps=steps,
        stop=stop,
        loss=loss_out,
        cross_entropy=ce_out,
        cluster=cluster,
    )
    if perturbed is not None:
        diagnostics["perturbed"] = perturbed
    return MethodResult(out, params, diagnostics)


def _resolve_defaults(params):
    """``params`` (freqmask()'s, defaults filled in) with ``n_steps=None``
    resolved for its objective: what a run's fingerprint records, so that
    giving the default explicitly changes nothing (explain_files)."""
    if params.get("n_steps") is None and params.get("objective") in DEFAULT_STEPS:
        params = dict(params, n_steps=DEFAULT_STEPS[params["objective"]])
    return params


# read by the fingerprint of a run (parallel._run_params)
freqmask.resolve_defaults = _resolve_defaults


def _check_params(
    *,
    n_steps,
    lr,
    lambda_align,
    l1_mask,
    l1_perturbation,
    alignment,
    generator,
    patience,
    tol,
    min_steps,
    cell_score,
    perturbation,
    stopping,
    n_donors,
    rank_tol,
    objective,
    return_perturbed,
):
    """FreqMask's parameters checked, as recorded in the map's ``method_params``
    (``n_steps`` resolved; for expected gradients only :data:`EG_PARAMS`)."""
    given = dict(locals())  # the parameters, before anything is defined
    _check_option("objective", objective, ("preserve", "expected_gradients"))
    if objective == "expected_gradients" and perturbation != "reference":
        raise ValueError(
            'objective="expected_gradients" integrates from donor epochs to the '
            f"epoch, but perturbation={perturbation!r} has no donors; use "
            'perturbation="reference" (the default) or objective="preserve".'
        )
    if objective == "expected_gradients" and return_perturbed:
        raise ValueError(
            'objective="expected_gradients" fits no mask, so there is no '
            "perturbed epoch to return; drop return_perturbed or use "
            'objective="preserve".'
        )
    if n_steps is None:
        n_steps = DEFAULT_STEPS[objective]
    n_steps = _check_positive(n_steps, "n_steps", integer=True)
    n_donors = _check_positive(n_donors, "n_donors", integer=True)
    if objective == "expected_gradients":
        moot = [k for k in _changed(given) if k not in EG_PARAMS]
        if moot:
            names = ", ".join(moot)
            raise ValueError(
                f'objective="expected_gradients" optimises no mask, so {names} '
                f"{'does' if len(moot) == 1 else 'do'} not apply to it; drop "
                f'{names} or use objective="preserve".'
            )
        return dict(
            objective=objective,
            n_steps=n_steps,
            perturbation=perturbation,
            n_donors=n_donors,
        )
    lr = _check_positive(lr, "lr")
    lambda_align = _check_positive(lambda_align, "lambda_align", strict=False)
    l1_mask = _check_positive(l1_mask, "l1_mask", strict=False)
    l1_perturbation = _check_positive(l1_perturbation, "l1_perturbation", strict=False)
    patience = _check_positive(patience, "patience", integer=True)
    tol = _check_positive(tol, "tol", strict=False)
    min_steps = _check_positive(min_steps, "min_steps", integer=True, strict=False)
    _check_option("alignment", alignment, ("complex", "magnitude"))
    _check_option("generator", generator, ("two_branch", "one_branch"))
    _check_option("cell_score", cell_score, ("mask", "path"))
    _check_option("perturbation", perturbation, ("generator", "reference"))
    _check_option("stopping", stopping, ("rank", "loss"))
    rank_tol = _check_positive(rank_tol, "rank_tol")
    if rank_tol >= 1:
        raise ValueError(f"rank_tol must be below 1, got {rank_tol}.")
    params = dict(
        n_steps=n_steps,
        lr=lr,
        lambda_align=lambda_align,
        l1_mask=l1_mask,
        l1_perturbation=l1_perturbation,
        alignment=alignment,
        generator=generator,
        patience=patience,
        tol=tol,
        min_steps=min_steps,
        cell_score=cell_score,
        perturbation=perturbation,
        stopping=stopping,
        objective=objective,
    )
    if perturbation == "reference":
        params["n_donors"] = n_donors
    if stopping == "rank":
        params["rank_tol"] = rank_tol
    return params


def _changed(given):
    """The names in ``given`` whose values differ from freqmask()'s defaults,
    sorted."""
    defaults = {k: v.default for k, v in inspect.signature(freqmask).parameters.items()}
    return sorted(k for k, v in given.items() if v != defaults[k])
