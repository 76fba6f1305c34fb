"""``mne-freqmask explain --time-windows``: the summary lines of a TFR map.

A time-resolved result (:class:`~mne_freqmask.SpectralSaliencyTFR`, channel x
band x window) gets its own summary lines (the windows, the top channel x
band x window cells with their times, the best window). Its report is
:func:`mne_freqmask.viz.add_saliency_to_report`'s, as for a whole-epoch map
(:func:`~._cli_report.write_report`).
"""

from mne_freqmask._provenance import provenance_summary
from mne_freqmask._report import _span, best_window, top_cells

#: title of the terminal summary and of the report
TFR_TITLE = "mne-freqmask explain: what does the model rely on, and when?"


def tfr_method_lines(sal, method):
    """(label, text) pairs of the method and the windows."""
    length, step = sal.time_windows
    n_win = len(sal.times)
    bins = sal.freqs[1] - sal.freqs[0] if len(sal.freqs) > 1 else 0.0
    return [
        (
            "Method",
            f"{method} on {len(sal.ch_names)} channels x {len(sal.band_names)} "
            f"bands ({', '.join(sal.band_names)}) x {n_win} windows",
        ),
        (
            "Windows",
            f"{n_win} Hann window{'' if n_win == 1 else 's'} of {length:g} s "
            f"every {step:g} s, centred at {sal.times[0]:.2f} to "
            f"{sal.times[-1]:.2f} s (the bands on the {bins:g} Hz bins of one "
            "window)",
        ),
        ("Provenance", provenance_summary(sal.provenance)),
    ]


def tfr_top_lines(sal):
    """(label, text) pairs of the group map: top cells and best window."""
    group = sal.average()
    top = top_cells(group, n=3)
    k, means = best_window(group)
    edges = group.window_edges
    return [
        (
            "Top cells",
            ", ".join(
                f"{c['channel']} {c['band']} at {_span(c['edges'])} {c['value']:.3g}"
                for c in top
            )
            + " (group map: channel, band, window)",
        ),
        (
            "Best window",
            f"{group.times[k]:.2f} s ({_span(edges[k])}): mean saliency "
            f"{means[k]:.3g} over channels and bands, against {means.mean():.3g} "
            "over all windows",
        ),
    ]
