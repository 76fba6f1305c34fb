"""The command line's summary lines and HTML report (demo and explain), of
whole-epoch and time-resolved (``--time-windows``) maps."""

import re

from mne_freqmask._provenance import model_class, provenance_summary
from mne_freqmask._report import _cell_text, _span, best_window, rows_html, top_cells
from mne_freqmask._saliency_utils import explained_repr, steps_summary

#: title of the terminal summary of a whole-epoch map
EXPLAIN_TITLE = "mne-freqmask explain: what does the model rely on?"


def model_name(net):
    """Class name of the model (the network behind an input scaler; the class
    a TorchScript module was made from): the last part of the provenance's
    ``model_class``, one unwrapping for both."""
    return model_class(net).rsplit(".", 1)[-1]


def method_lines(sal, method):
    """(label, text) pairs of the method of a whole-epoch map: what it ran
    on, which class it explains (when the map records it) and its provenance."""
    lines = [
        (
            "Method",
            f"{method} on {len(sal.ch_names)} channels x {len(sal.band_names)} "
            f"bands ({', '.join(sal.band_names)})",
        )
    ]
    explains = explained_repr(sal)
    if explains is not None:
        lines.append(("Target", explains))
    return lines + [("Provenance", provenance_summary(sal.provenance))]


def _cells_text(cells):
    """Cells of :func:`~._report.top_cells` and their values, in a line."""
    return ", ".join(f"{_cell_text(c)} {c['value']:.3g}" for c in cells)


def top_lines(sal):
    """(label, text) pairs of the top cells of a whole-epoch map's group map,
    and of a signed map's cells of evidence against the class."""
    group = sal.average()
    lines = [("Top cells", f"{_cells_text(top_cells(group, n=3))} (group map)")]
    against = top_cells(group, n=3, against=True)
    if against:  # a signed map
        lines.append(
            ("Against", f"{_cells_text(against)} (group map: removing them raises it)")
        )
    return lines


#: title of the terminal summary of a time-resolved map
TFR_TITLE = "mne-freqmask explain: what does the model rely on, and when?"


def tfr_method_lines(sal, method):
    """(label, text) pairs of the method and the windows."""
    length, step = sal.time_windows
    n_win = len(sal.times)
    bins = sal.freqs[1] - sal.freqs[0] if len(sal.freqs) > 1 else 0.0
    (label, text), *rest = method_lines(sal, method)
    return [
        (label, f"{text} x {n_win} windows"),
        (
            "Windows",
            f"{n_win} Hann window{'' if n_win == 1 else 's'} of {length:g} s "
            f"every {step:g} s, centred at {sal.times[0]:.2f} to "
            f"{sal.times[-1]:.2f} s (the bands on the {bins:g} Hz bins of one "
            "window)",
        ),
        *rest,
    ]


def tfr_top_lines(sal):
    """(label, text) pairs of the group map: top cells and best window."""
    group = sal.average()
    top = _cells_text(top_cells(group, n=3))
    k, means = best_window(group)
    edges = group.window_edges
    return [
        ("Top cells", f"{top} (group map: channel, band, window)"),
        (
            "Best window",
            f"{group.times[k]:.2f} s ({_span(edges[k])}): mean saliency "
            f"{means[k]:.3g} over channels and bands, against {means.mean():.3g} "
            "over all windows",
        ),
    ]


def format_lines(title, lines):
    """Terminal summary: a title, then one aligned ``label  text`` row each."""
    width = max(len(label) for label, _ in lines)
    body = "\n".join(f"  {label:<{width}}  {text}" for label, text in lines)
    return f"\n{title}\n{body}"


def lines_html(lines):
    """The same ``(label, text)`` rows as an HTML table, the Truth score in
    bold (read by users and tests)."""
    truth = r"(<th>Truth</th><td>[^<]*?)= ([0-9.]+)"
    return re.sub(truth, r"\1= <b>\2</b>", rows_html(lines), count=1)


#: the checks of check_explanation that the demo and the CLI's report run
#: (the randomisation check explains every epoch a second time)
REPORT_CHECKS = ("accuracy", "deletion", "cells")


def score_for_report(epochs, model, sal, seed, verbose=None):
    """The removal game at both levels and
    :func:`~mne_freqmask.evaluation.check_explanation`'s :data:`REPORT_CHECKS`
    (whole-epoch and time-resolved maps): what the demo and ``explain
    --report`` show. Returns ``(removal, check)``."""
    from mne_freqmask.evaluation import check_explanation, evaluate_removal

    removal = {
        level: evaluate_removal(epochs, model, sal, level=level, verbose=verbose)
        for level in ("group", "instance")
    }
    check = check_explanation(
        epochs,
        model,
        sal,
        checks=REPORT_CHECKS,
        n_boot=500,
        random_state=seed,
        verbose=False,
    )
    return removal, check


def summary_title(sal):
    """Title of ``explain``'s terminal summary."""
    return TFR_TITLE if "time" in sal.dims else EXPLAIN_TITLE


def summary_lines(fname, epochs, model_text, sal):
    """``explain``'s (label, text) pairs: data, model, method, fit, top cells
    (whole-epoch or time-resolved map)."""
    tfr = "time" in sal.dims
    lines = [
        (
            "Data",
            f"{fname}: {len(epochs)} epochs, {len(epochs.ch_names)} channels at "
            f"{epochs.info['sfreq']:g} Hz, classes {', '.join(epochs.event_id)}",
        ),
        ("Model", model_text),
    ]
    lines += (tfr_method_lines if tfr else method_lines)(sal, sal.method)
    steps = steps_summary(sal.diagnostics)
    if steps is not None:
        lines.append(("Fit", steps))
    return lines + (tfr_top_lines if tfr else top_lines)(sal)


def check_lines(check):
    """(label, text) pairs of a check's verdicts, for the summaries."""
    return [
        (f"Check {name}", f"{row['verdict'].upper()}: {row['line']}")
        for name, row in check.checks.iterrows()
    ]


def write_report(out, sal, summary_html, removal, check=None):
    """The command's report: the summary, then the map's section of
    :func:`mne_freqmask.viz.add_saliency_to_report` (whole-epoch and
    time-resolved maps), saved atomically to ``out``."""
    import mne

    from mne_freqmask._report import save_report
    from mne_freqmask.viz import add_saliency_to_report

    when = ", and when?" if "time" in sal.dims else "?"
    # verbose=False: no "Embedding : jquery..." lines from MNE's renderer
    report = mne.Report(
        title=f"mne-freqmask: what does the model rely on{when} ({sal.method})",
        verbose=False,
    )
    report.add_html(summary_html, "Summary")
    add_saliency_to_report(report, sal, checks=check, removal=removal, verbose=False)
    save_report(report, out)


def n_subjects(epochs):
    meta = epochs.metadata
    if meta is not None and "subject" in meta:
        return int(meta["subject"].nunique())
    return None


def demo_summary_lines(s):
    """(label, text) pairs shared by the terminal summary and the report."""
    subj = f", {s['n_subjects']} subjects" if s["n_subjects"] else ""
    lines = [
        (
            "Data",
            f"{s['data']}: {s['n_epochs']} epochs{subj}, {s['n_channels']} channels "
            f"at {s['sfreq']:g} Hz, classes {', '.join(s['classes'])}",
        )
    ]
    truth = s["truth"]
    if truth is not None:
        lines.append(
            (
                "Planted",
                f"class 'high' has more {truth.band[0]:g}-{truth.band[1]:g} Hz "
                f"power than 'low' on {', '.join(truth.channels)}; nothing else "
                "differs",
            )
        )
    lines.append(
        (
            "Model",
            f"{s['model']}, held-out accuracy {s['accuracy']:.3f} on "
            f"{s['n_held']} epochs",
        )
    )
    lines.append(("Method", f"{s['method']} on the {s['n_held']} held-out epochs"))
    if "steps" in s:
        lines.append(("Fit", s["steps"]))
    top = ", ".join(
        f"{c['channel']} {c['band']} {c['value']:.2f}"
        + ("" if c["planted"] is None else (" (planted)" if c["planted"] else ""))
        for c in s["top"]
    )
    lines.append(("Top cells", f"{top} (group map)"))
    if "auroc" in s:
        lines.append(
            (
                "Truth",
                f"AUROC of the group map for the planted cells = {s['auroc']:.3f} "
                "(1: every planted cell ranked above every other; 0.5: chance)",
            )
        )
    for level, table in s["removal"].items():
        acc = table["accuracy"]
        lines.append(
            (
                f"Removal ({level})",
                f"accuracy original {acc['original']:.2f} / RN {acc['RN']:.2f} / "
                f"RS {acc['RS']:.2f} (RN: non-salient half of the cells zeroed, "
                "should stay; RS: salient half zeroed, should fall)",
            )
        )
    lines += check_lines(s["check"])
    lines.append(("Time", f"{s['time']:.0f} s"))
    return lines


def format_demo_summary(s):
    # main() prints the report path last
    return format_lines(
        "mne-freqmask demo: what does the model rely on?", demo_summary_lines(s)
    )


def demo_summary_html(s):
    return lines_html(demo_summary_lines(s))
