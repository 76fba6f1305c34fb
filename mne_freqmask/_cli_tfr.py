"""``mne-freqmask explain --time-windows``: summary and report of a TFR map.

A time-resolved result (:class:`~mne_freqmask.SpectralSaliencyTFR`, channel x
band x window) gets its own summary lines (the windows, the top channel x
band x window cells with their times, the best window) and its own HTML
report (the band x time image, the topomaps and the channel x band map at
the best window, the removal game over the channel x band x window cells,
the parameters). The whole-epoch summary and report stay in
:mod:`mne_freqmask._cli_report`, whose :func:`~._cli_report.run_check` runs the
checks on both kinds of map.
"""

import numpy as np

from mne_freqmask.viz import scale_caption

#: title of the terminal summary and of the report
TFR_TITLE = "mne-freqmask explain: what does the model rely on, and when?"


def _span(edges):
    return f"{edges[0]:.2f}-{edges[1]:.2f} s"


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
    ]


def top_tfr_cells(group, n=3):
    """The ``n`` highest channel x band x window cells of a group map."""
    values = group.get_data()
    edges = group.window_edges
    order = np.argsort(values, axis=None, kind="stable")[::-1][:n]
    cells = []
    for flat in order:
        ch, band, win = np.unravel_index(flat, values.shape)
        cells.append(
            dict(
                channel=group.ch_names[ch],
                band=group.band_names[band],
                time=float(group.times[win]),
                edges=edges[win],
                value=float(values[ch, band, win]),
            )
        )
    return cells


def best_window(group):
    """Index of the window with the highest mean saliency, and the means."""
    means = group.get_data().mean(axis=(0, 1))
    return int(np.argmax(means)), means


def tfr_top_lines(sal):
    """(label, text) pairs of the group map: top cells and best window."""
    group = sal.average()
    top = top_tfr_cells(group)
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


def _check_html(check):
    return (
        check.to_html()
        + "<p>Verdicts of mne_freqmask.check_explanation over the channel x band "
        "x window cells: pass, fail, or tie (the interval includes the "
        "reference). Not run here: the model randomisation check (it explains "
        "every epoch again).</p>"
    )


def write_tfr_report(out, sal, summary_html, removal, check):
    """Summary, checks, band x time images, best-window maps, removal game."""
    import mne
    import pandas as pd

    from mne_freqmask._cli_report import has_positions, save_report

    group = sal.average()
    scale = scale_caption(group.get_data())  # signed: diverging, symmetric
    k, _ = best_window(group)
    t, span = float(group.times[k]), _span(group.window_edges[k])
    report = mne.Report(
        title=f"mne-freqmask: what does the model rely on, and when? ({sal.method})",
        verbose=False,
    )
    report.add_html(summary_html, "Summary")
    report.add_html(_check_html(check), "Is the map true? (check_explanation)")
    report.add_figure(
        group.plot(combine="mean", show=False)[0],
        "Saliency over time and band",
        caption="Group saliency per band (rows) and window (columns, at the "
        "window centres), averaged over channels." + scale,
    )
    chs = list(dict.fromkeys(c["channel"] for c in top_tfr_cells(group, n=9)))[:3]
    report.add_figure(
        group.plot(chs, show=False),
        "Saliency over time and band: channels of the top cells",
        caption=[
            f"{ch} alone (one of the channels of the top cells).{scale}" for ch in chs
        ],
    )
    if has_positions(group.info):
        report.add_figure(
            group.plot_topomap(tmin=t, tmax=t, show=False),
            f"Topomaps at the best window ({t:.2f} s)",
            caption=f"Group saliency per band in the window {span}, the window "
            "with the highest mean saliency." + scale,
        )
    report.add_figure(
        group.average(dim="times", tmin=t, tmax=t).plot_bands(show=False),
        f"Channel x band saliency at the best window ({t:.2f} s)",
        caption=f"Rows: channels; columns: bands; the window {span}.{scale}",
    )
    table = pd.concat(removal, names=["level"]).round(3)
    report.add_html(
        table.to_html() + "<p>Cells: channel x band x window. RN: non-salient "
        "half of the cells zeroed in the short-time spectrum; RS: salient half "
        "zeroed.</p>",
        "Removal game",
    )
    params = pd.Series({key: str(v) for key, v in sal.method_params.items()})
    report.add_html(params.to_frame("value").to_html(), "Parameters")
    save_report(report, out)
