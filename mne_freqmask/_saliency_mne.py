"""What the maps share with MNE's tools: the Spectrum and the topomap mask.

:func:`spectrum_of` is :meth:`SpectralSaliency.to_spectrum
<mne_freqmask.SpectralSaliency.to_spectrum>`; :func:`cell_mask` turns the
``mask`` of both maps' ``plot_topomap`` (an array or a
:class:`~mne_freqmask.evaluation.CellTestResult`) into the cells to mark.
No torch.
"""

import numpy as np
from mne.utils import _check_option, use_log_level


def spectrum_of(sal, freqs="bands"):
    """The MNE spectrum container of a whole-epoch map (see ``to_spectrum``)."""
    from mne.time_frequency import EpochsSpectrumArray, SpectrumArray

    _check_option("freqs", freqs, ("bands", "bins"))
    data = sal.get_data()  # a copy
    if freqs == "bands":
        spec_freqs = sal.band_edges.mean(axis=1)
    else:
        grid = sal.grid
        keep = grid.bin_band >= 0
        spec_freqs = grid.freqs[keep]
        data = grid.expand(data)[..., keep]
    spec_freqs = np.asarray(spec_freqs, float)
    if sal.level == "group":
        return SpectrumArray(data, sal.info.copy(), spec_freqs)
    spectrum = EpochsSpectrumArray(
        data,
        sal.info.copy(),
        spec_freqs,
        events=None if sal.events is None else sal.events.copy(),
        event_id=None if sal.event_id is None else dict(sal.event_id),
    )
    if sal.metadata is not None:
        with use_log_level(False):  # no "Adding metadata with ..." line
            spectrum.metadata = sal.metadata.copy()
    return spectrum


def cell_mask(mask, ch_names, band_names, times=None, time_idx=None):
    """A topomap ``mask`` as bool cells, shape (n_channels, n_bands).

    ``mask`` is None, a :class:`~mne_freqmask.evaluation.CellTestResult`
    (its ``significant`` cells, matched to the map's channels and bands by
    name), or an array of shape (n_channels,) (the same channels in every
    band), (n_channels, n_bands) or, for a time-resolved map (``times``
    given), (n_channels, n_bands, n_windows); cells of several windows are
    combined with "any" over the windows ``time_idx``.
    """
    if mask is None:
        return None
    n_ch, n_b = len(ch_names), len(band_names)
    if all(hasattr(mask, a) for a in ("significant", "ch_names", "band_names")):
        # a CellTestResult (duck-typed: this module imports no torch)
        cells = np.asarray(mask.significant, bool)
        missing = [c for c in ch_names if c not in mask.ch_names]
        missing += [b for b in band_names if b not in mask.band_names]
        if missing:
            raise ValueError(
                f"The cell test's result has no {missing}: it was run on other "
                "channels or bands than this map. Run cell_permutation_test on "
                "this map (or pick the same channels) first."
            )
        cells = cells[[list(mask.ch_names).index(c) for c in ch_names]]
        cells = cells[:, [list(mask.band_names).index(b) for b in band_names]]
        if cells.ndim == 3:
            test_times = getattr(mask, "times", None)
            if times is None or test_times is None:
                raise ValueError(
                    "The cell test was run on a time-resolved map (channel x "
                    "band x window cells); draw it with that map's "
                    "SpectralSaliencyTFR.plot_topomap(mask=...)."
                )
            if len(test_times) != len(times) or not np.allclose(test_times, times):
                raise ValueError(
                    "The cell test's windows differ from this map's; run "
                    "cell_permutation_test on this map first."
                )
    else:
        cells = np.asarray(mask)
        shapes = [(n_ch,), (n_ch, n_b)] + (
            [] if times is None else [(n_ch, n_b, len(times))]
        )
        if cells.shape not in shapes:
            raise ValueError(
                f"mask must have shape {' or '.join(map(str, shapes))} (the "
                "map's channels, bands"
                f"{'' if times is None else ', windows'}), or be the result of "
                f"cell_permutation_test on the map; got shape {cells.shape}."
            )
        if cells.dtype != bool:
            if not np.isin(cells, (0, 1)).all():
                raise ValueError("mask must hold booleans (or 0 / 1).")
            cells = cells.astype(bool)
        if cells.ndim == 1:
            cells = np.repeat(cells[:, np.newaxis], n_b, axis=1)
    if cells.ndim == 3:
        cells = cells[..., np.arange(len(times)) if time_idx is None else time_idx]
        cells = cells.any(axis=-1)
    return cells
