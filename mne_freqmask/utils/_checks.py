"""Input checks with messages that name the fix."""

import numpy as np
from mne import pick_info
from mne._fiff.pick import _picks_to_idx


def _check_finite(x, name):
    if not np.isfinite(x).all():
        n_bad = int((~np.isfinite(x)).any(axis=(1, 2)).sum()) if x.ndim == 3 else 0
        raise ValueError(
            f"{name} contain NaN or Inf values ({n_bad} epoch(s) affected); "
            "interpolate bad channels or drop those epochs first (e.g. "
            "epochs.drop(...))."
        )


def _pick_indices(info, picks):
    """Channel indices for ``picks`` (data channels when None)."""
    return np.asarray(_picks_to_idx(info, picks, none="data", exclude=()), int)


def _picked_info(info, picks):
    return pick_info(info, picks, copy=True)


def _check_positive(value, name, *, strict=True, integer=False):
    kind = "integer" if integer else "number"
    ok = isinstance(value, int | np.integer | float | np.floating) and not isinstance(
        value, bool
    )
    if integer:
        ok = ok and float(value).is_integer()
    if ok:
        ok = value > 0 if strict else value >= 0
    if not ok:
        rel = "positive" if strict else "non-negative"
        raise ValueError(f"{name} must be a {rel} {kind}, got {value!r}.")
    return int(value) if integer else float(value)


def _channels_without_positions(info):
    """Boolean mask of the channels of ``info`` with no (finite, non-zero) position."""
    locs = np.array([ch["loc"][:3] for ch in info["chs"]], float).reshape(-1, 3)
    return ~np.isfinite(locs).all(axis=1) | ~np.any(locs, axis=1)


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
