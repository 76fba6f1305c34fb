"""Faithfulness with power: every method's MoRF / LeRF curves with intervals.

For each powered dataset (:func:`load_powered`: a hard simulation with a
known answer, mental arithmetic split within each recording, EEGBCI trials
cut into crops and split by trial) and model, 160 held-out epochs are
explained by each method of :func:`plan` and scored by
``evaluation.compare_methods``: MoRF and LeRF deletion curves at 0, 5, 10,
20, 30 and 50 % of the cells, ranked by the group map and by each epoch's
own map, under zero removal and reference-epoch removal (the training epochs
as the reference), with bootstrap intervals over the independent units
(epochs; trials for the EEGBCI crops) and the planted-cell AUROC where the
truth is known. Each (dataset, model, method) is cached as a CSV (with the
per-unit areas for paired comparisons), so an interrupted run resumes; the
tables are rebuilt from the cache with ``--report``.

Usage (the run of BENCHMARKS.md, two processes on a 2-core machine)::

    python benchmarks/bench_faithfulness.py --datasets simulated_hard eegmat_within
    python benchmarks/bench_faithfulness.py --datasets eegbci_crops \
        --models eegnet shallowfbcspnet
    python benchmarks/bench_faithfulness.py --report

Models come from the harness's cache (trained on first use, ``harness.TRAIN``).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from mne_freqmask.evaluation import compare_methods  # noqa: E402

#: the powered datasets (``--datasets``); the harness's own names also work
POWERED = ("simulated_hard", "eegmat_within", "eegbci_crops")


def load_powered(name):
    """``(train, test, truth, groups of test or None, description)``.

    - ``simulated_hard``: 19 channels, 2 s at 128 Hz, 4 subjects x 100 epochs
      per class; the class effect is beta (18-26 Hz) power on C3/C4 (class
      ``high`` 1.0, ``low`` a third of it, so half the classes' evidence is an
      absence of power) under a class-independent alpha rhythm three times as
      strong on O1/O2/P3/Pz/P4 whose amplitude varies from epoch to epoch:
      band power alone points to the wrong cells. 40 % of each subject's
      epochs (stratified) are held out.
    - ``eegmat_within``: mental arithmetic, every subject (0-11), 2-s
      segments at 128 Hz (1-40 Hz), balanced rest / task; the last third of
      each recording's segments in time is held out (within-subject split, no
      segment in both sets).
    - ``eegbci_crops``: EEGBCI subject 1, imagined left vs right fist (runs 4,
      8, 12), 64 channels at 80 Hz; 40 % of the trials (stratified) held out,
      then every trial cut into 3-s crops every 0.125 s (9 per trial; 2-s
      crops left Deep4Net at 0.52 crop accuracy, 3-s crops at 0.70). Crops of
      a trial are not independent: ``groups`` is the trial, and the intervals
      resample trials.
    """
    from mne_freqmask.datasets.simulated import make_epochs

    rng = np.random.default_rng(0)
    if name == "simulated_hard":
        epochs, truth = make_epochs(
            n_subjects=4,
            n_epochs_per_class=100,
            band=(18.0, 26.0),
            effect=1.0,
            distractor=dict(amplitude=3.0),
            random_state=0,
            verbose=False,
        )
        md = epochs.metadata
        test = np.zeros(len(epochs), bool)
        for _, idx in md.groupby(["subject", "label"]).indices.items():
            test[rng.permutation(idx)[: int(0.4 * len(idx))]] = True
        desc = (
            "simulated, hard: beta (18-26 Hz) on C3/C4 under a 3x stronger "
            "class-independent alpha on O1/O2/P3/Pz/P4; 40 % of each subject's "
            "epochs held out"
        )
        return epochs[~test], epochs[test], truth, None, desc
    if name == "eegmat_within":
        from mne_freqmask.datasets import eegmat

        epochs = eegmat.load_epochs(
            harness.SHARED / "eegmat", resample=128.0, l_freq=1.0, h_freq=40.0
        )
        md = epochs.metadata
        test = np.zeros(len(epochs), bool)
        for _, idx in md.groupby(["subject", "condition"]).indices.items():
            order = idx[np.argsort(md["segment"].to_numpy()[idx])]
            test[order[len(order) - len(order) // 3 :]] = True
        desc = (
            "PhysioNet mental arithmetic (rest vs task), subjects 0-11, 8 channels, "
            "2 s at 128 Hz (1-40 Hz); the last third of each recording held out"
        )
        return epochs[~test], epochs[test], None, None, desc
    if name == "eegbci_crops":
        return _eegbci_crops(rng)
    train, test, truth, desc = harness.load_dataset(name)
    return train, test, truth, None, desc


def _eegbci_crops(rng, length=3.0, step=0.125):
    import mne

    from mne_freqmask.datasets import eegbci

    trials = eegbci.load_epochs(
        harness.SHARED / "eegbci_S001", runs=(4, 8, 12), resample=80.0
    )
    trials.load_data()
    y = trials.events[:, 2]
    test = np.zeros(len(y), bool)
    for c in np.unique(y):  # stratified 40 % of the trials held out
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(0.4 * len(idx)))]] = True
    sf = trials.info["sfreq"]
    n_len, n_step = int(round(length * sf)), int(round(step * sf))
    data = trials.get_data()
    starts = np.arange(0, data.shape[-1] - n_len + 1, n_step)

    def crops(sel):
        idx = np.flatnonzero(sel)
        x = np.concatenate([data[idx, :, s : s + n_len] for s in starts])
        trial = np.concatenate([idx for _ in starts])
        x = x - x.mean(-1, keepdims=True)  # DC per crop
        order = np.argsort(trial, kind="stable")
        events = np.column_stack(
            [np.arange(len(x)) * n_len, np.zeros(len(x), int), y[trial][order]]
        )
        import pandas as pd

        md = pd.DataFrame(dict(trial=trial[order], subject=0))
        return mne.EpochsArray(
            x[order],
            trials.info,
            events,
            event_id=trials.event_id,
            metadata=md,
            verbose=False,
        )

    desc = (
        "EEGBCI subject 1, imagined left vs right fist (runs 4, 8, 12), 64 "
        f"channels at 80 Hz; 40 % of the trials held out, each trial cut into "
        f"{len(starts)} crops of {length:g} s every {step:g} s; intervals resample "
        "trials"
    )
    return crops(~test), crops(test), None, "trial", desc


#: method label -> explain parameters. The two FreqMask rows separate what the
#: issue #18 changes buy: the paper's configuration, the path score alone,
#: and the path score with the reference perturbation.
METHODS = {
    # the package's default at the time of the run (since issue #16: path
    # score, reference perturbation, rank stopping, one donor stream per epoch)
    "freqmask": "freqmask",
    "freqmask_paper": dict(method="freqmask", preset="paper"),
    "freqmask_path": dict(method="freqmask", cell_score="path"),
    # the default before the rank stopping rule (the loss rule then)
    "freqmask_path_ref": dict(
        method="freqmask",
        cell_score="path",
        perturbation="reference",
        stopping="loss",
    ),
    "amplitude_gradients": "amplitude_gradients",
    "integrated_gradients": "integrated_gradients",
    "ablation": "ablation",
    "easypeasi": dict(method="easypeasi", level="instance"),
    "dft_lrp": "dft_lrp",
    "lrp": "lrp",
    # budgets below the published defaults (1,000 steps, 3,000 masks) so that
    # the run fits a 2-core machine; FLEXtime gets FreqMask's step budget
    "flextime": dict(method="flextime", n_steps=300),
    "freqrise": dict(method="freqrise", n_masks=1000),
}
#: what runs where, to fit a 2-core machine (every method's cost is in its
#: row of the tables): the peers that cost hundreds of passes per epoch
#: (FLEXtime, FreqRISE, ablation, easyPEASI) and the path-only FreqMask run
#: on EEGNet only, and on the 64-channel EEGBCI crops only FLEXtime and
#: FreqRISE of them
BASE = (
    "freqmask",
    "freqmask_paper",
    "freqmask_path_ref",
    "amplitude_gradients",
    "integrated_gradients",
    "dft_lrp",
    "lrp",
)


def plan(ds, model):
    """Method labels run on ``(ds, model)`` (see the comment above)."""
    extra = ()
    if model == "eegnet":
        extra = ("freqmask_path", "ablation", "easypeasi", "flextime", "freqrise")
        if ds == "eegbci_crops":
            extra = ("flextime", "freqrise")
    return BASE + extra


MAIN = "freqmask"


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(POWERED))
    p.add_argument(
        "--models",
        nargs="+",
        default=["eegnet", "shallowfbcspnet", "tsception", "eegconformer"],
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--n-explain", type=int, default=160)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", default=str(harness.CACHE / "faithfulness"))
    p.add_argument(
        "--report", action="store_true", help="only write the tables from the cache"
    )
    p.add_argument(
        "--write",
        default=None,
        help="also write the tables into this file (BENCHMARKS.md), between "
        "its faithfulness:begin / faithfulness:end markers",
    )
    return p


def _run_pair(ds, name, methods, args, out_dir):
    """Score every method on one (dataset, model); one CSV per method (cache)."""
    train, test, truth, groups, desc = load_powered(ds)
    held = test[harness.explained_subset(test, args.n_explain)]
    g = None if groups is None else held.metadata[groups].to_numpy()
    model, info, _ = harness.get_model(ds, name, train)
    print(f"{ds} / {name}: {len(held)} explained epochs; {desc}", flush=True)
    for label in methods:
        if label not in plan(ds, name):
            continue
        fname = out_dir / f"{ds}-{name}-{label}.csv"
        if fname.is_file():
            continue
        t0 = time.perf_counter()
        try:
            scores, units = compare_methods(
                held,
                model,
                {label: METHODS[label], "random": "random"},
                rankings=("group", "instance"),
                operators=("zero", "reference"),
                reference=train,
                truth=truth,
                groups=g,
                explain_kw=dict(bands=harness.BANDS),
                n_boot=args.n_boot,
                return_epoch_scores=True,
                random_state=0,
                verbose=False,
            )
        except Exception as err:  # recorded, the run goes on
            msg = f"{type(err).__name__}: {err}".replace("\n", " ")
            pd.DataFrame([dict(method=label, failed=msg[:300])]).to_csv(fname)
            print(f"  {label}: failed: {msg[:120]}", flush=True)
            continue
        scores = scores.assign(dataset=ds, model=name, n_train=len(train))
        units = units.assign(dataset=ds, model=name)
        units.to_csv(fname.with_suffix(".units.csv"), index=False)
        scores.to_csv(fname, index=False)
        print(f"  {label}: {time.perf_counter() - t0:.0f} s", flush=True)


def main(argv=None):
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.report:
        t0 = time.perf_counter()
        for ds in args.datasets:
            for name in args.models:
                _run_pair(ds, name, args.methods, args, out_dir)
        print(f"run: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    text = report(out_dir)
    print(text)
    if args.write:
        _write_between(Path(args.write), text)


BEGIN, END = "<!-- faithfulness:begin -->", "<!-- faithfulness:end -->"


def _write_between(fname, text):
    """Replace the block between the markers of ``fname`` (atomically)."""
    old = fname.read_text()
    if BEGIN not in old or END not in old:
        raise SystemExit(f"{fname} lacks the markers {BEGIN} / {END}.")
    head, rest = old.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    tmp = fname.with_suffix(".tmp")
    tmp.write_text(head + BEGIN + "\n" + text.strip() + "\n" + END + tail)
    tmp.replace(fname)


def _load(out_dir):
    scores, units, failed = [], [], []
    for f in sorted(Path(out_dir).glob("*.csv")):
        if f.name.endswith(".units.csv"):
            units.append(pd.read_csv(f))
            continue
        df = pd.read_csv(f)
        if "failed" in df.columns:
            ds, name, label = f.stem.split("-", 2)
            failed.append((ds, name, label, df["failed"].iloc[0]))
        else:
            scores.append(df)
    if not scores:
        return None, None, failed
    return pd.concat(scores), pd.concat(units), failed


def _ci(r):
    return f"{r['score']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def _pick(df, **kw):
    for k, v in kw.items():
        df = df[df[k] == v]
    return df


def _accuracy(scores, ds, name):
    r = _pick(
        scores,
        dataset=ds,
        model=name,
        method="random",
        ranking="instance",
        operator="zero",
        order="MoRF",
        metric="accuracy",
        statistic="curve",
        fraction=0.0,
    ).iloc[0]
    return r


def _paired(units, ds, name, a, b, ranking, operator, order, n_boot):
    """Paired bootstrap of a - b on the same units, or None."""
    from mne_freqmask.evaluation import paired_comparison

    sel = _pick(
        units,
        dataset=ds,
        model=name,
        ranking=ranking,
        operator=operator,
        order=order,
        metric="probability",
    )
    sa = sel[sel["method"] == a].drop_duplicates("unit").set_index("unit")["area"]
    sb = sel[sel["method"] == b].drop_duplicates("unit").set_index("unit")["area"]
    if len(sa) < 2 or len(sb) < 2:
        return None
    sa, sb = sa.align(sb, join="inner")
    return paired_comparison(sa.to_numpy(), sb.to_numpy(), n_boot=n_boot)


def report(out_dir, n_boot=2000):
    """Markdown tables of every cached result (see BENCHMARKS.md)."""
    scores, units, failed = _load(out_dir)
    if scores is None:
        return "no results yet"
    area = scores[(scores["statistic"] == "area") & (scores["metric"] == "probability")]
    out = []
    verdicts = []
    for ds in [d for d in POWERED if d in set(scores["dataset"])]:
        _, _, truth, _, desc = load_powered(ds)
        sub = area[area["dataset"] == ds]
        n_units = int(sub["n_groups"].iloc[0])
        n_ep = int(sub["n_epochs"].iloc[0])
        out.append(f"\n#### {ds}: {desc}\n")
        out.append(
            f"{n_ep} explained held-out epochs ({n_units} independent units "
            f"resampled), {int(sub['n_train'].iloc[0])} training epochs (the "
            "reference of the removal and of FreqMask's donors).\n"
        )
        head = (
            "| model (accuracy [CI]) | method | MoRF zero ↓ | LeRF zero ↑ "
            "| MoRF reference ↓ | LeRF reference ↑ | group MoRF ref. ↓ "
            "| group LeRF ref. ↑ |"
            + (" GT AUROC |" if truth is not None else "")
            + " time (s) | passes/epoch |"
        )
        out += [head, "|" + "---|" * (head.count("|") - 1)]
        for name in [
            m for m in harness.MODELS + ("shallowfbcspnet",) if m in set(sub["model"])
        ]:
            acc = _accuracy(scores, ds, name)
            chance = acc["ci_low"] <= 0.5
            mlabel = (
                f"{harness.MODEL_LABELS[name]} ({acc['score']:.2f} "
                f"[{acc['ci_low']:.2f}, {acc['ci_high']:.2f}]"
                + (", at chance" if chance else "")
                + ")"
            )
            methods = [
                m
                for m in list(METHODS) + ["random"]
                if m in set(sub[sub["model"] == name]["method"])
            ]
            for label in methods:
                rows = _pick(sub, model=name, method=label, ranking="instance")
                cells = []
                for op in ("zero", "reference"):
                    for order in ("MoRF", "LeRF"):
                        r = _pick(rows, operator=op, order=order).iloc[0]
                        cells.append(_ci(r))
                grp = _pick(sub, model=name, method=label, ranking="group")
                for order in ("MoRF", "LeRF"):
                    r = _pick(grp, operator="reference", order=order).iloc[0]
                    cells.append(f"{r['score']:.3f}")
                r0 = rows.iloc[0]
                gt = f" {r0['auroc']:.3f} |" if truth is not None else ""
                t = "—" if label == "random" else f"{r0['time_s']:.0f}"
                pp = "—" if label == "random" else f"{r0['passes_per_epoch']:.0f}"
                out.append(
                    f"| {mlabel} | {label} | "
                    + " | ".join(cells)
                    + f" |{gt} {t} | {pp} |"
                )
                mlabel = ""
            for f_ds, f_name, f_label, msg in failed:
                if f_ds == ds and f_name == name:
                    out.append(f"| | {f_label} | failed: {msg[:90]} |" + " |" * 7)
            if chance:
                continue
            for op in ("zero", "reference"):
                for order, sign in (("MoRF", 1), ("LeRF", -1)):
                    rows = _pick(
                        sub, model=name, ranking="instance", operator=op, order=order
                    )
                    others = rows[~rows["method"].str.startswith("freqmask")]
                    others = others[others["method"] != "random"]
                    if MAIN not in set(rows["method"]) or others.empty:
                        continue
                    best = others.sort_values("score", ascending=sign > 0).iloc[0]
                    res = _paired(
                        units,
                        ds,
                        name,
                        MAIN,
                        best["method"],
                        "instance",
                        op,
                        order,
                        n_boot,
                    )
                    paper = _paired(
                        units,
                        ds,
                        name,
                        MAIN,
                        "freqmask_paper",
                        "instance",
                        op,
                        order,
                        n_boot,
                    )
                    verdicts.append(
                        (ds, name, op, order, best["method"], res, paper, sign)
                    )
    out.append(
        "\n#### FreqMask (the default: path score, reference perturbation, rank "
        "stopping) against the best other method\n"
    )
    out.append(
        "Instance ranking, true-class probability; difference = FreqMask minus "
        "the best non-FreqMask method on that row (MoRF: lower is better, so a "
        "negative difference favours FreqMask; LeRF: higher is better), paired "
        "bootstrap over the same units, 95 % CI. `win` / `loss`: the CI "
        "excludes 0; `tie` otherwise. Last column: FreqMask minus its paper "
        "configuration (same sign convention). Models at chance are left out.\n"
    )
    head = (
        "| dataset | model | operator | curve | best other | difference [CI] "
        "| verdict | vs paper [CI] | verdict |"
    )
    out += [head, "|" + "---|" * 9]
    for ds, name, op, order, best, res, paper, sign in verdicts:
        cells = []
        for r in (res, paper):
            if r is None:
                cells += ["—", "—"]
                continue
            good = sign * r["ci_high"] < 0 if sign > 0 else r["ci_low"] > 0
            bad = r["ci_low"] > 0 if sign > 0 else r["ci_high"] < 0
            v = "win" if good else ("loss" if bad else "tie")
            cells += [
                f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
                v,
            ]
        out.append(
            f"| {ds} | {harness.MODEL_LABELS[name]} | {op} | {order} | {best} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
