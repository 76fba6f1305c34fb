"""Input checks with messages that name the fix."""

import numpy as np
from mne import pick_info
from mne._fiff.pick import _picks_to_idx
from mne.utils import _validate_type

#: largest magnitude the float32 tensors fed to the model can hold
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_finite(x, name):
    """Raise if ``x`` holds NaN or Inf, or values float32 cannot hold.

    ``x`` is checked in its own dtype (MNE's float64), so a finite value too
    large for float32 (e.g. 1e39) is reported as such, not as "Inf".
    """
    if np.iscomplexobj(x):
        raise ValueError(
            f"{name} hold complex values (e.g. epochs.apply_hilbert() without "
            "envelope=True); the model takes real signals: use envelope=True, or "
            "take the real part or magnitude explicitly "
            "(epochs.apply_function(np.real) / np.abs) first."
        )
    finite = np.isfinite(x)
    if not finite.all():
        n_bad = int((~finite).any(axis=(1, 2)).sum()) if x.ndim == 3 else 0
        raise ValueError(
            f"{name} contain NaN or Inf values ({n_bad} epoch(s) affected); "
            "interpolate bad channels or drop those epochs first (e.g. "
            "epochs.drop(...))."
        )
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > _FLOAT32_MAX:
        raise ValueError(
            f"{name} hold finite values up to {peak:.3g}, beyond the range of "
            f"float32 ({_FLOAT32_MAX:.3g}) in which the model receives them; "
            "check the units (MNE stores volts) or rescale the data."
        )


def _check_random_state(random_state, name="random_state"):
    """Validate a seed: None, a non-negative int or a numpy generator."""
    _validate_type(
        random_state,
        (None, "int-like", np.random.RandomState, np.random.Generator),
        name,
        "None, a non-negative int, np.random.RandomState or np.random.Generator",
    )
    if isinstance(random_state, int | np.integer) and not isinstance(
        random_state, bool
    ):
        if random_state < 0 or random_state >= 2**32:
            raise ValueError(
                f"{name} must be a non-negative int below 2**32 (a seed), got "
                f"{random_state}; pass e.g. random_state=0."
            )
    return random_state


def _pick_indices(info, picks):
    """Channel indices for ``picks``, with MNE's convention for bad channels.

    ``None`` means the data channels not marked bad; generic picks (``"eeg"``,
    ``"data"``, ...) also leave out ``info["bads"]``; channels given by name or
    index are used as given, bad or not (as in MNE).
    """
    try:
        idx = _picks_to_idx(info, picks, none="data", exclude="bads")
    except ValueError as exp:
        bads = list(info["bads"])
        if not bads or "yielded no channels" not in str(exp):
            raise
        raise ValueError(
            f"picks={picks!r} selects no channel once the bad channels {bads} "
            "are left out (MNE's convention); pick channels by name to explain "
            "bad ones (picks=[...]) or clear epochs.info['bads']."
        ) from None
    return np.asarray(idx, int)


def _picked_info(info, picks):
    return pick_info(info, picks, copy=True)


def _check_positive(value, name, *, strict=True, integer=False):
    kind = "integer" if integer else "number"
    ok = isinstance(value, int | np.integer | float | np.floating) and not isinstance(
        value, bool
    )
    rel = "positive" if strict else "non-negative"
    if ok and not np.isfinite(value):
        raise ValueError(
            f"{name} must be finite (a {rel} {kind}), got {value!r}; NaN or Inf "
            "would turn the whole result into NaN."
        )
    if integer:
        ok = ok and float(value).is_integer()
    if ok:
        ok = value > 0 if strict else value >= 0
    if not ok:
        raise ValueError(f"{name} must be a {rel} {kind}, got {value!r}.")
    return int(value) if integer else float(value)


def _channels_without_positions(info):
    """Boolean mask of the channels of ``info`` with no (finite, non-zero) position."""
    locs = np.array([ch["loc"][:3] for ch in info["chs"]], float).reshape(-1, 3)
    return ~np.isfinite(locs).all(axis=1) | ~np.any(locs, axis=1)


def _has_positions(info):
    """Whether every channel of ``info`` has a position (topomaps need them)."""
    return not _channels_without_positions(info).any()


def _standard_montage():
    """MNE's 10-05 template montage under its current name.

    MNE 1.13 renamed ``standard_1005`` to ``colin27_1005`` (the old name warns);
    older MNE only knows the old name.
    """
    from mne.channels import get_builtin_montages, make_standard_montage

    name = (
        "colin27_1005" if "colin27_1005" in get_builtin_montages() else "standard_1005"
    )
    return make_standard_montage(name)


def _make_rng(random_state):
    """A :class:`numpy.random.Generator` from None, an int or a generator.

    A legacy :class:`numpy.random.RandomState` (MNE's convention) seeds a new
    Generator with one draw from it.
    """
    if isinstance(random_state, np.random.RandomState):
        random_state = int(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)


def _atomic_write(fname, write, *, fsync=False):
    """Write ``fname`` with ``write(tmp)`` under a temporary name in its folder
    (``fsync``: flushed to disk), then rename it over ``fname``: an interrupted
    or failed write leaves no partial file and an existing one untouched."""
    import os
    import uuid

    tmp = fname.with_name(f".{fname.name}.{uuid.uuid4().hex[:12]}.part{fname.suffix}")
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as fid:
                os.fsync(fid.fileno())
        os.replace(tmp, fname)
    finally:
        tmp.unlink(missing_ok=True)


def _write_new_file(fname, write, overwrite):
    """Check that ``fname`` may be written (``overwrite``, an existing folder),
    then :func:`_atomic_write` it. Used by every ``save`` of the package."""
    from mne.utils import logger

    _validate_type(overwrite, bool, "overwrite")
    if fname.exists():
        if fname.is_dir():
            raise IsADirectoryError(f"{fname} is a folder, not a file name.")
        if not overwrite:
            raise FileExistsError(
                f"{fname} already exists; pass overwrite=True to replace it."
            )
        logger.info(f"Overwriting existing file {fname}")
    if not fname.parent.is_dir():
        raise FileNotFoundError(
            f"The folder {fname.parent} does not exist; create it first."
        )
    logger.info(f"Writing {fname}")
    _atomic_write(fname, write)
