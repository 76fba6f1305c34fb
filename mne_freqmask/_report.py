"""A saliency map in an HTML report, and in a notebook.

:func:`add_saliency_to_report` (public as
``mne_freqmask.viz.add_saliency_to_report``) adds a map of either container
(:class:`~mne_freqmask.SpectralSaliency`,
:class:`~mne_freqmask.SpectralSaliencyTFR`), and when given its checks, its
removal game and its cell test, to a user's :class:`mne.Report`: the one
implementation of the report, which the command line calls too.
:func:`saliency_html` is the small table of what a map is, shown by the
containers' ``_repr_html_`` in notebooks and at the head of the report's
section. No torch is imported here.
"""

from html import escape

import numpy as np
from mne.utils import _validate_type, verbose

from mne_freqmask._color_scale import is_signed, scale_caption
from mne_freqmask.utils._checks import _atomic_write, _has_positions
from mne_freqmask.utils._docs import fill_doc


def _cells(sal):
    """What a map's cells are: ``"channel x band"`` (``" x window"`` added
    for a time-resolved map)."""
    dims = [{"time": "window"}.get(d, d) for d in sal.dims if d != "epoch"]
    return " x ".join(dims)


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _names(names, n_max=8):
    names = list(names)
    shown = ", ".join(names[:n_max])
    return shown + (f", ... ({len(names)})" if len(names) > n_max else "")


def saliency_rows(sal):
    """``(label, text)`` rows that say what a map is (both containers)."""
    sizes = " × ".join(sal.dims) + ": " + " × ".join(map(str, sal.shape))
    if sal.level == "instance":
        level = f"per epoch ({_plural(len(sal), 'epoch')})"
    else:
        level = "group" + ("" if sal.nave is None else f" of {sal.nave} epochs")
    rows = [
        ("Method", sal.method),
        ("Level", level),
        ("Dims", sizes),
        ("Channels", _names(sal.ch_names)),
        (
            "Bands",
            ", ".join(
                f"{n} {lo:g}-{hi:g} Hz"
                for n, (lo, hi) in zip(sal.band_names, sal.band_edges, strict=True)
            ),
        ),
    ]
    rows += _AXIS_ROWS[sal.dims[-1]](sal)
    norm = sal.method_params.get("normalization")
    rows.append(("Values", "saliency" if norm is None else f"normalized ({norm})"))
    provenance = getattr(sal, "provenance", None)
    if provenance:
        from mne_freqmask._provenance import provenance_summary

        rows.append(("Provenance", provenance_summary(provenance)))
    return rows


def _window_rows(sal):
    """The row on the windows of a time-resolved map."""
    win = sal.time_windows
    span = f"centres {sal.times[0]:.3g} to {sal.times[-1]:.3g} s"
    if win is not None:
        span += f" ({win[0]:g} s every {win[1]:g} s)"
    return [("Windows", f"{_plural(len(sal.times), 'window')}, {span}")]


#: the rows on the axes after "band", by the map's last dimension
_AXIS_ROWS = {"band": lambda sal: [], "time": _window_rows}


def rows_html(rows):
    """``(label, text)`` rows as an HTML table."""
    body = "".join(
        f"<tr><th>{escape(str(label))}</th><td>{escape(str(text))}</td></tr>"
        for label, text in rows
    )
    return f'<table class="table">{body}</table>'


def saliency_html(sal):
    """The HTML table of :func:`saliency_rows`, headed by the class name."""
    return f"<p><b>{type(sal).__name__}</b></p>" + rows_html(saliency_rows(sal))


def top_cells(group, n=5, *, truth=None, against=False):
    """The ``n`` highest cells of a group map (channel x band, or channel x
    band x window), or with ``against=True`` its ``n`` lowest cells below 0
    (evidence against the class in a signed map: removing them raises the
    prediction), :func:`negligible` values left out.

    Returns a list of dicts: ``channel``, ``band``, ``value`` and
    ``planted`` (whether the cell's channel x band is one of ``truth``'s
    planted cells; None without ``truth``), plus ``time`` (the window's
    centre) and ``edges`` (its start and end) for a time-resolved map.
    """
    values = group.get_data()
    planted = None if truth is None else truth.cells(group.ch_names, group.band_edges)
    order = np.argsort(values, axis=None, kind="stable")
    if against:
        order = order[values.ravel()[order] < -negligible(values)]
    else:
        order = order[::-1]
    cells = []
    for flat in order[:n]:
        idx = np.unravel_index(flat, values.shape)
        ch, band = idx[:2]
        cell = dict(
            channel=group.ch_names[ch],
            band=group.band_names[band],
            value=float(values[idx]),
            planted=None if planted is None else bool(planted[ch, band]),
        )
        if values.ndim == 3:
            cell.update(
                time=float(group.times[idx[2]]), edges=group.window_edges[idx[2]]
            )
        cells.append(cell)
    return cells


def negligible(values):
    """The largest ``|value|`` of a map that counts as 0 in its lists of
    evidence: 0.1 % of its largest ``|value|`` (a cell the model ignores
    gets a gradient of float rounding, not exactly 0)."""
    values = np.abs(np.asarray(values, float))
    finite = values[np.isfinite(values)]
    return 1e-3 * finite.max() if finite.size else 0.0


def _cell_text(cell):
    """A cell of :func:`top_cells` in words: ``C3 alpha`` (``at 0.50-1.00 s``)."""
    text = f"{cell['channel']} {cell['band']}"
    return text + (f" at {_span(cell['edges'])}" if "edges" in cell else "")


def evidence_html(group, n=5):
    """Two ranked lists of a signed group map: the cells of evidence for the
    explained class (highest, above 0) and against it (lowest, below 0)."""
    lists = {
        "For the class (removing them lowers the prediction)": [
            c for c in top_cells(group, n) if c["value"] > negligible(group.get_data())
        ],
        "Against the class (removing them raises the prediction)": top_cells(
            group, n, against=True
        ),
    }
    parts = []
    for head, cells in lists.items():
        rows = "".join(
            f"<tr><td>{k}</td><td>{escape(_cell_text(c))}</td>"
            f"<td>{c['value']:+.3g}</td></tr>"
            for k, c in enumerate(cells, 1)
        )
        rows = rows or '<tr><td colspan="3">none</td></tr>'
        parts.append(
            f'<p><b>{escape(head)}</b></p><table class="table"><tr><th>rank'
            f"</th><th>cell</th><th>value</th></tr>{rows}</table>"
        )
    return "".join(parts) + (
        "<p>The map is signed: a cell's value is the evidence it carries for "
        "the explained class (positive) or against it (negative), averaged "
        "over the explained epochs; values within 0.1 % of the largest are "
        "left out as 0. The topomaps and images show both on a diverging "
        "scale (red for, blue against).</p>"
    )


def best_window(group):
    """Index of the window with the highest mean saliency, and the means."""
    means = group.get_data().mean(axis=(0, 1))
    return int(np.argmax(means)), means


def _span(edges):
    return f"{edges[0]:.2f}-{edges[1]:.2f} s"


def _check_args(saliency, checks, removal, cell_test):
    # duck-typed: this module is imported by the containers (``_repr_html_``)
    # and by viz, so it imports neither them nor the evaluation
    import pandas as pd

    if not all(hasattr(saliency, a) for a in ("dims", "average", "plot_topomap")):
        raise TypeError(
            "saliency must be an instance of SpectralSaliency or "
            f"SpectralSaliencyTFR, got {type(saliency)} instead."
        )
    if checks is not None and not all(
        hasattr(checks, a) for a in ("to_html", "checks", "details")
    ):
        raise TypeError(
            "checks must be the result of mne_freqmask.check_explanation (an "
            f"ExplanationCheck), got {type(checks)} instead."
        )
    if isinstance(removal, pd.DataFrame):
        removal = {removal.attrs.get("level", "map"): removal}
    _validate_type(removal, (dict, None), "removal", "DataFrame, dict or None")
    for key, table in (removal or {}).items():
        _validate_type(table, pd.DataFrame, f"removal[{key!r}]", "DataFrame")
    if cell_test is None and checks is not None:
        cell_test = checks.details.get("cells")
    if cell_test is not None and not hasattr(cell_test, "significant"):
        raise TypeError(
            "cell_test must be the result of "
            "mne_freqmask.evaluation.cell_permutation_test, got "
            f"{type(cell_test).__name__}."
        )
    return removal, cell_test


def _mask_caption(cell_test):
    if cell_test is None:
        return ""
    sig = np.asarray(cell_test.significant)
    return (
        " Marked: the channels of the cells significant in "
        f"cell_permutation_test ({int(sig.sum())} of {sig.size} cells; "
        f"{cell_test.correction} correction, alpha={cell_test.alpha:g}, "
        f"{cell_test.n_observations} observations)."
    )


def _add_figures(group, cell_test, add):
    """The figures of a whole-epoch map."""
    # signed maps (LRP, gradients) are drawn on a diverging scale symmetric
    # about 0 by the plot methods (viz.color_scale); the captions say so
    scale = scale_caption(group.get_data())
    if _has_positions(group.info):
        add(
            group.plot_topomap(mask=cell_test, show=False),
            "Group saliency per band (topomaps)",
            "Saliency averaged over the explained epochs, one map per band."
            + _mask_caption(cell_test)
            + scale,
        )
    add(
        group.plot_bands(show=False),
        "Channel x band saliency",
        "Rows: channels; columns: bands." + scale,
    )
    add(
        group.plot(show=False),
        "Saliency over frequency",
        "Group saliency per channel over frequency.",
    )


def _add_tfr_figures(group, cell_test, add):
    """The figures of a time-resolved map."""
    k, _ = best_window(group)
    t, span = float(group.times[k]), _span(group.window_edges[k])
    scale = scale_caption(group.get_data())  # signed: diverging, symmetric
    add(
        group.plot(combine="mean", show=False)[0],
        "Saliency over time and band",
        "Group saliency per band (rows) and window (columns, at the window "
        "centres), averaged over channels." + scale,
    )
    chs = list(dict.fromkeys(c["channel"] for c in top_cells(group, n=9)))[:3]
    add(
        group.plot(chs, show=False),
        "Saliency over time and band: channels of the top cells",
        [f"{ch} alone (one of the channels of the top cells).{scale}" for ch in chs],
    )
    if _has_positions(group.info):
        add(
            group.plot_topomap(tmin=t, tmax=t, mask=cell_test, show=False),
            f"Topomaps at the best window ({t:.2f} s)",
            f"Group saliency per band in the window {span}, the window with "
            "the highest mean saliency." + _mask_caption(cell_test) + scale,
        )
    add(
        group.average(dim="times", tmin=t, tmax=t).plot_bands(show=False),
        f"Channel x band saliency at the best window ({t:.2f} s)",
        f"Rows: channels; columns: bands; the window {span}.{scale}",
    )


#: the figures of a group map, by its last dimension
_FIGURES = {"band": _add_figures, "time": _add_tfr_figures}


@verbose
@fill_doc
def add_saliency_to_report(
    report,
    saliency,
    *,
    checks=None,
    removal=None,
    cell_test=None,
    title=None,
    tags=("saliency",),
    replace=False,
    verbose=None,
):
    """Add a saliency map (and its checks) to an :class:`mne.Report`.

    Adds, in one section of the report: a table of what the map is (method,
    level, dims, channels, bands, windows), the verdicts of its checks,
    figures of its group map, the removal game and the method's parameters.
    For a :class:`~mne_freqmask.SpectralSaliency` the figures are the
    topomaps per band, the channel x band image and the saliency over
    frequency; for a :class:`~mne_freqmask.SpectralSaliencyTFR`, the band x
    time image (mean over channels, and the channels of the top cells), the
    topomaps and the channel x band image at the window with the highest
    mean saliency. The command line's reports (``mne-freqmask demo``,
    ``mne-freqmask explain --report``) are made by this function.

    Parameters
    ----------
    report : instance of mne.Report
        The report to add to (yours, or mne-bids-pipeline's); modified in
        place.
    saliency : SpectralSaliency | SpectralSaliencyTFR
        The map, per epoch (its epochs are averaged for the figures) or
        group level.
    checks : ExplanationCheck | None
        The result of :func:`~mne_freqmask.evaluation.check_explanation` on
        this map: its verdicts are added as a table.
    removal : pandas.DataFrame | dict | None
        The removal game: a table of :func:`~mne_freqmask.evaluate_removal`,
        or a dict of them (e.g. ``{"group": ..., "instance": ...}``, one per
        ``level``).
    cell_test : CellTestResult | None
        The result of :func:`~mne_freqmask.evaluation.cell_permutation_test`
        on this map: its significant cells are marked on the topomaps. None
        (default) takes the one of ``checks`` when it ran the ``"cells"``
        check.
    title : str | None
        Title of the section that holds the items (None:
        ``"<method> saliency"``). Give each map its own title to add several
        maps to one report.
    tags : str | tuple of str
        Tags of the items (MNE's report filters by tag); the method's name is
        added.
    replace : bool
        Replace items of the same title in the same section (as
        :meth:`mne.Report.add_figure`); ``False`` (default) appends.
    %(verbose)s

    Returns
    -------
    report : instance of mne.Report
        The report (the same object).

    Notes
    -----
    The figures are closed once they are in the report. Save with
    :meth:`mne.Report.save`.
    """
    import matplotlib.pyplot as plt
    import mne
    import pandas as pd

    _validate_type(report, mne.Report, "report", "mne.Report")
    removal, cell_test = _check_args(saliency, checks, removal, cell_test)
    _validate_type(title, (str, None), "title", "str or None")
    section = f"{saliency.method} saliency" if title is None else title
    tags = ((tags,) if isinstance(tags, str) else tuple(tags)) + (saliency.method,)
    tags = tuple(dict.fromkeys(tags))
    kw = dict(tags=tags, section=section, replace=replace)
    cells_name = _cells(saliency)

    report.add_html(saliency_html(saliency), "The map", **kw)
    if checks is not None:
        report.add_html(
            checks.to_html()
            + "<p>Verdicts of mne_freqmask.check_explanation over the "
            + f"{cells_name} cells: pass, fail, or tie (the interval includes "
            + "the reference). "
            + f"Checks run: {', '.join(map(str, checks.checks.index))}.</p>",
            "Is the map true? (check_explanation)",
            **kw,
        )

    def add(fig, fig_title, caption):
        report.add_figure(fig, fig_title, caption=caption, **kw)
        for f in fig if isinstance(fig, list) else [fig]:
            plt.close(f)

    group = saliency.average() if saliency.level == "instance" else saliency
    if is_signed(group.get_data()):
        report.add_html(evidence_html(group), "Evidence for and against", **kw)
    _FIGURES[group.dims[-1]](group, cell_test, add)
    if removal:
        table = pd.concat(removal, names=["level"]).round(3)
        report.add_html(
            table.to_html() + f"<p>Cells: {cells_name}. RN: non-salient half of "
            "the cells removed from the spectrum; RS: salient half removed "
            "(a faithful map keeps RN near the original and RS well below).</p>",
            "Removal game",
            **kw,
        )
    params = pd.Series({k: str(v) for k, v in saliency.method_params.items()})
    report.add_html(params.to_frame("value").to_html(), "Parameters", **kw)
    return report


def save_report(report, out):
    """Save an :class:`mne.Report` to ``out`` atomically; close the figures."""
    import matplotlib.pyplot as plt

    try:
        _atomic_write(
            out, lambda tmp: report.save(tmp, open_browser=False, verbose=False)
        )
    finally:
        plt.close("all")
