"""Side-by-side evaluation of every explanation method on every model.

One command runs methods (FreqMask, every peer in the method registry and a
random map as the chance reference) x models (EEGNet, Deep4Net, TSception,
EEGConformer) x datasets (mental arithmetic with held-out subjects, EEGBCI
subject 1, simulated data with a planted answer), then FreqMask's lambda
sweep and ablations (paper Tables 2-3), and writes markdown tables into the
``## Evaluation harness`` section of ``BENCHMARKS.md`` (between the
``harness:begin`` / ``harness:end`` markers; the rest of the file is kept).

Per (dataset, model, method), on the held-out epochs of the dataset:

- ``orig`` / ``RN`` / ``RS``: accuracy on the original epochs, with the
  non-salient / salient half of the channel x band cells zeroed (group map,
  median split, all held-out epochs); ``gap`` = RN - RS (large is good);
  ``inst. gap``: the same game with each explained epoch's own map;
- ``del`` / ``ins``: area under the deletion / insertion accuracy curves
  (group map, 11 points, all held-out epochs; small / large is good);
- ``OOD``: mean KDE log-likelihood of FreqMask's perturbed epochs under the
  training epochs (``evaluation.ood_score``, default settings); the held-out
  original epochs score is the in-distribution reference given per dataset;
- ``sanity``: Spearman correlation of the group map with the map of the same
  model with all layers re-initialised (``cascading_randomization``,
  ``layers=1``) on the first ``--n-sanity`` explained epochs (near 0 is
  good, 1 means the map ignores the model);
- ``random``: the chance reference, the mean +- sd of the gap of 10 uniform
  random maps;
- ``GT AUROC`` (simulated only): rank of the planted cells in the group map;
- ``time``: wall time of the explanation of the ``--n-explain`` epochs.

Models are trained once (``models.fit``, seeded) and cached with
``models.save_model`` under ``benchmarks/_cache/models`` (retrained when their
training configuration in ``TRAIN`` changes); results of each run
go to ``benchmarks/_cache/results.json``. Usage::

    python benchmarks/harness.py                  # everything (default config)
    python benchmarks/harness.py --datasets simulated --models eegnet \
        --methods freqmask random               # a subset
    python benchmarks/harness.py --write-only     # tables from the cached results
"""

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import mne
import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev
from mne_freqmask._inputs import epochs_labels
from mne_freqmask.methods import METHODS
from mne_freqmask.models import fit, load_model, save_model
from mne_freqmask.saliency import SpectralSaliency

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / "_cache"
MODELS = ("eegnet", "deep4net", "tsception", "eegconformer")
DATASETS = ("eegmat", "eegbci", "simulated")
MODEL_LABELS = dict(
    eegnet="EEGNet",
    deep4net="Deep4Net",
    tsception="TSception",
    eegconformer="EEGConformer",
    shallowfbcspnet="ShallowFBCSPNet",
)
#: Training passes and learning rate per model (Adam, batches of 32).
TRAIN = dict(
    eegnet=dict(max_epochs=40, lr=3e-3),
    # dropout 0.5 before every conv + batch-norm block shifts the variance
    # between training and eval mode: the eval-mode model predicted one class
    deep4net=dict(max_epochs=20, lr=1e-3, drop_prob=0.1),
    tsception=dict(max_epochs=30, lr=1e-3),
    eegconformer=dict(max_epochs=30, lr=5e-4),
    shallowfbcspnet=dict(max_epochs=40, lr=1e-3),
)
BANDS = 10
LAMBDAS = (0.0, 0.0005, 0.005, 0.05, 0.5)
#: Datasets of the lambda sweep: those with several subjects (the alignment
#: pulls towards the nearest training subject's centre).
SWEEP_DATASETS = ("eegmat", "simulated")
#: Random maps whose mean gap is the chance reference.
N_RANDOM = 10
BEGIN, END = "<!-- harness:begin -->", "<!-- harness:end -->"


# ----------------------------------------------------------------------------
# data


def load_dataset(name):
    """(train epochs, held-out epochs, truth or None, description)."""
    if name == "eegmat":
        from mne_freqmask.datasets import eegmat

        epochs = eegmat.load_epochs(
            SHARED / "eegmat", resample=128.0, l_freq=1.0, h_freq=40.0
        )
        subj = epochs.metadata["subject"].to_numpy()
        test = subj >= 9
        desc = (
            "PhysioNet mental arithmetic (rest vs task), 8 channels, 2 s at 128 Hz "
            "(1-40 Hz); trained on subjects 0-8, scored on held-out subjects 9-11"
        )
        return epochs[~test], epochs[test], None, desc
    if name == "eegbci":
        from mne_freqmask.datasets import eegbci

        epochs = eegbci.load_epochs(
            SHARED / "eegbci_S001", runs=(4, 8, 12), resample=80.0
        )
        epochs.load_data().apply_baseline((None, None), verbose=False)  # DC per epoch
        y = epochs_labels(epochs)
        rng = np.random.default_rng(0)
        test = np.zeros(len(y), bool)
        for c in np.unique(y):  # stratified third held out
            idx = rng.permutation(np.flatnonzero(y == c))
            test[idx[: len(idx) // 3]] = True
        desc = (
            "EEGBCI subject 1, imagined left vs right fist (runs 4, 8, 12), 64 "
            "channels, 4 s at 80 Hz (DC removed per epoch); a stratified third "
            "of the trials held out"
        )
        return epochs[~test], epochs[test], None, desc
    if name == "simulated":
        from mne_freqmask.datasets.simulated import make_epochs

        epochs, truth = make_epochs(n_subjects=4, n_epochs_per_class=25, random_state=0)
        test = epochs.metadata["subject"].to_numpy() == 3
        desc = (
            "simulated, 19 channels, 2 s at 128 Hz, alpha (8-12 Hz) power planted "
            "on C3/C4; trained on subjects 0-2, scored on held-out subject 3"
        )
        return epochs[~test], epochs[test], truth, desc
    raise ValueError(f"Unknown dataset {name!r}; use one of {DATASETS}.")


def explained_subset(test, n_explain, seed=0):
    """Sorted indices of the (at most) ``n_explain`` explained held-out epochs."""
    rng = np.random.default_rng(seed)
    n_exp = min(n_explain, len(test))
    return np.sort(rng.choice(len(test), n_exp, replace=False))


def get_model(dataset, name, train, retrain=False):
    """Train once, then load from the cache; returns (model, info, trained now)."""
    fname = CACHE / "models" / f"{dataset}-{name}.pt"
    meta = fname.with_suffix(".json")
    if fname.is_file() and meta.is_file() and not retrain:
        info = json.loads(meta.read_text())
        if all(info.get(k) == v for k, v in TRAIN[name].items()):
            return load_model(fname), info, False  # trained with today's config
    fname.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model, history = fit(
        train, name, val_size=0.0, random_state=0, verbose=False, **TRAIN[name]
    )
    info = dict(
        train_s=time.perf_counter() - t0,
        final_loss=history["train_loss"][-1],
        **TRAIN[name],
    )
    save_model(fname, model, overwrite=True)
    meta.write_text(json.dumps(info))
    return model, info, True


# ----------------------------------------------------------------------------
# one method on one model


def random_saliency(epochs, seed=0):
    """A uniform random map per epoch on the harness's grid (chance level)."""
    grid = mfm.FrequencyGrid(epochs.info["sfreq"], len(epochs.times), BANDS)
    picks = mne.pick_types(epochs.info, eeg=True)
    rng = np.random.default_rng(seed)
    return SpectralSaliency(
        rng.random((len(epochs), len(picks), grid.n_bands)),
        mne.pick_info(epochs.info, picks),
        grid,
        method="random",
    )


def run_method(method, model, train, test, explain_idx, truth, args):
    """All scores of one method on one trained model."""
    ep = test[explain_idx]
    row = dict(method=method)
    kw = dict(bands=BANDS, reference=train, random_state=0)
    t0 = time.perf_counter()
    if method == "random":
        sal = random_saliency(ep)
    else:
        extra = dict(return_perturbed=True) if method == "freqmask" else {}
        sal = mfm.explain(ep, model, method=method, verbose=False, **kw, **extra)
    row["time_s"] = time.perf_counter() - t0
    group = mfm.evaluate_removal(test, model, sal, verbose=False)
    inst = mfm.evaluate_removal(ep, model, sal, level="instance", verbose=False)
    cur = ev.deletion_curves(test, model, sal, n_points=11, verbose=False)
    row.update(
        original=group.loc["original", "accuracy"],
        RN=group.loc["RN", "accuracy"],
        RS=group.loc["RS", "accuracy"],
        gap=group.attrs["gap"],
        gap_instance=inst.attrs["gap"],
        deletion_auc=cur.attrs["deletion_auc"],
        insertion_auc=cur.attrs["insertion_auc"],
    )
    if method == "random":  # the gap of N_RANDOM random maps: mean and sd
        gaps = [
            mfm.evaluate_removal(
                test, model, random_saliency(ep, seed), verbose=False
            ).attrs["gap"]
            for seed in range(N_RANDOM)
        ]
        row.update(gap=float(np.mean(gaps)), gap_sd=float(np.std(gaps)))
    if "perturbed" in sal.diagnostics:
        xhat = sal.diagnostics["perturbed"]
        row["ood"] = ev.ood_score(train, xhat, sfreq=train.info["sfreq"], verbose=False)
        row["median_steps"] = float(np.median(sal.diagnostics["n_steps"]))
        row["mask_mean"] = float(sal.get_data().mean())
    if truth is not None:
        row["gt_auroc"] = ev.ground_truth_scores(sal, truth)["auroc"]
    if method != "random" and args.n_sanity > 0:
        n = min(args.n_sanity, len(ep))
        casc = ev.cascading_randomization(
            ep[:n],
            model,
            method=method,
            saliency=sal[:n],
            layers=1,
            explain_kw=kw,
            verbose=False,
        )
        row["sanity"] = float(casc["spearman"].iloc[-1])
    return row, sal


# ----------------------------------------------------------------------------
# lambda sweep and ablations (EEGNet, paper Tables 2-3)


def run_sweep(model, train, test, explain_idx):
    ep = test[explain_idx]
    configs = [(f"lambda={lam:g}", dict(lambda_align=lam)) for lam in LAMBDAS]
    configs += [
        ("lambda=0.05, magnitude alignment", dict(alignment="magnitude")),
        ("no L1 terms", dict(l1_mask=0.0, l1_perturbation=0.0)),
        ("one-branch generator", dict(generator="one_branch")),
    ]
    rows, sfreq = [], train.info["sfreq"]
    for name, cfg in configs:
        t0 = time.perf_counter()
        sal = mfm.explain(
            ep,
            model,
            bands=BANDS,
            reference=train,
            return_perturbed=True,
            verbose=False,
            **cfg,
        )
        group = mfm.evaluate_removal(test, model, sal, verbose=False)
        inst = mfm.evaluate_removal(ep, model, sal, level="instance", verbose=False)
        xhat = sal.diagnostics["perturbed"]
        rows.append(
            dict(
                config=name,
                ood=ev.ood_score(train, xhat, sfreq=sfreq, verbose=False),
                drop=group.loc["original", "accuracy"] - group.loc["RS", "accuracy"],
                gap=group.attrs["gap"],
                RN=group.loc["RN", "accuracy"],
                RS=group.loc["RS", "accuracy"],
                RN_instance=inst.loc["RN", "accuracy"],
                RS_instance=inst.loc["RS", "accuracy"],
                mask_mean=float(sal.get_data().mean()),
                time_s=time.perf_counter() - t0,
            )
        )
        r = rows[-1]
        print(f"  sweep {name}: OOD {r['ood']:.1f} drop {r['drop']:.3f}", flush=True)
    return rows


# ----------------------------------------------------------------------------
# markdown


def _f(value, fmt="{:.2f}"):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return fmt.format(value)


def _row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


HEAD = ["model", "method", "orig", "RN", "RS", "gap", "inst. gap", "del ↓", "ins ↑"]
HEAD += ["OOD ↑", "sanity ρ ↓"]


def _dataset_table(d):
    out = []
    has_gt = any("gt_auroc" in r for r in d["rows"])
    head = HEAD + (["GT AUROC"] if has_gt else []) + ["time (s)"]
    out.append(_row(head))
    out.append("|" + "|".join(["---"] * 2 + ["--:"] * (len(head) - 2)) + "|")
    for model in d["models"]:
        rows = [r for r in d["rows"] if r["model"] == model]
        ok = [r for r in rows if "error" not in r and r["method"] != "random"]
        best = max((round(r["gap"], 6) for r in ok), default=None)
        for r in rows:
            label = MODEL_LABELS[model]
            if "error" in r:
                cells = [label, r["method"], f"failed: {r['error']}"]
                out.append(_row(cells + [""] * (len(head) - 3)))
                continue
            gap = _f(r["gap"])
            if "gap_sd" in r:
                gap = f"{gap} ± {r['gap_sd']:.2f}"
            elif best is not None and round(r["gap"], 6) == best:
                gap = f"**{gap}**"
            cells = [label, r["method"]]
            cells += [_f(r[k]) for k in ("original", "RN", "RS")]
            cells += [gap, _f(r["gap_instance"])]
            cells += [_f(r["deletion_auc"]), _f(r["insertion_auc"])]
            cells += [_f(r.get("ood"), "{:.1f}"), _f(r.get("sanity"))]
            if has_gt:
                cells.append(_f(r.get("gt_auroc")))
            cells.append(_f(r["time_s"], "{:.1f}"))
            out.append(_row(cells))
    return out


def _versus_table(results):
    out = [
        _row(["dataset", "model", "orig", "FreqMask gap", "best peer", "peer gap"])[:-1]
        + "| FreqMask - peer | rank | random gap (mean ± sd) |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|",
    ]
    for ds, d in results["datasets"].items():
        for model in d["models"]:
            rows = [r for r in d["rows"] if r["model"] == model and "error" not in r]
            fm = [r for r in rows if r["method"] == "freqmask"]
            peers = [r for r in rows if r["method"] not in ("freqmask", "random")]
            rnd = [r for r in rows if r["method"] == "random"]
            if not fm or not peers:
                continue
            fm = fm[0]
            top = max(r["gap"] for r in peers)
            best = [r["method"] for r in peers if np.isclose(r["gap"], top)]
            rank = 1 + sum(r["gap"] > fm["gap"] + 1e-9 for r in peers)
            chance = f"{rnd[0]['gap']:.2f} ± {rnd[0]['gap_sd']:.2f}" if rnd else "—"
            out.append(
                _row(
                    [
                        ds,
                        MODEL_LABELS[model],
                        _f(fm["original"]),
                        _f(fm["gap"]),
                        ", ".join(best),
                        _f(top),
                        f"{fm['gap'] - top:+.2f}",
                        f"{rank}/{len(peers) + 1}",
                        chance,
                    ]
                )
            )
    return out


def _sweep_table(rows):
    head = ["configuration", "OOD ↑", "drop", "gap", "RN", "RS", "RN inst."]
    head += ["RS inst.", "mask mean", "time (s)"]
    out = [_row(head), "|---|" + "--:|" * (len(head) - 1)]
    for r in rows:
        cells = [r["config"], _f(r["ood"], "{:.1f}")]
        cells += [_f(r[k]) for k in ("drop", "gap", "RN", "RS")]
        cells += [_f(r[k]) for k in ("RN_instance", "RS_instance", "mask_mean")]
        cells.append(_f(r["time_s"], "{:.1f}"))
        out.append(_row(cells))
    return out


def tables(results):
    meta = results["meta"]
    out = [
        f"Run {meta['date']} on {meta['machine']}, torch {meta['torch']}, "
        f"{meta['threads']} torch thread(s). Wall time **{meta['wall_min']:.1f} "
        f"min**, of which {meta['train_s']:.0f} s trained the models that were not "
        "cached yet. Command:\n",
        f"```\n{meta['command']}\n```\n",
        f"Explained: {meta['n_explain']} held-out epochs per dataset (all of them "
        "when there are fewer), 10 equal bands, every method with its defaults "
        "(FreqMask: at most 300 steps, lambda 0.05, lr 0.01, early stopping with "
        "patience 10 after a 50-step warm-up). The "
        "group-level game and the curves score all held-out epochs; `inst. gap` "
        "the explained ones; the sanity check re-explains the first "
        f"{meta['n_sanity']} explained epochs with a fully re-initialised model. "
        "`random` is the chance reference: the mean ± sd of the gap of "
        f"{N_RANDOM} uniform random maps (its other columns: the first map). Best "
        "gap per model (random excluded) in bold.\n",
    ]
    for ds, d in results["datasets"].items():
        out.append(f"### {ds}: {d['desc']}\n")
        fm = [r for r in d["rows"] if r["method"] == "freqmask" and "error" not in r]
        steps = ", ".join(
            f"{MODEL_LABELS[r['model']]} {r['median_steps']:.0f} steps / mask mean "
            f"{r['mask_mean']:.2f}"
            for r in fm
        )
        out.append(
            f"{d['n_train']} training / {d['n_test']} held-out epochs. OOD "
            f"references: held-out original epochs {_f(d['ood_original'], '{:.1f}')}; "
            "the held-out epochs with the salient half of the FreqMask EEGNet group "
            f"map zeroed (the RS input) {_f(d.get('ood_zeroed'), '{:.1f}')}. "
            f"FreqMask median steps to convergence and mean mask value: {steps}.\n"
        )
        out += _dataset_table(d) + [""]
    out.append("### FreqMask's group gap against the peers\n")
    out.append(
        "Gap = RN - RS accuracy (group map, all held-out epochs). `best peer`: the "
        "peer(s) with the largest gap; `rank`: FreqMask's place among the methods "
        "that ran (ties share the better place; random excluded).\n"
    )
    out += _versus_table(results) + [""]
    for where, rows in (results.get("sweeps") or {}).items():
        out.append(f"### FreqMask lambda sweep and ablations (EEGNet, {where})\n")
        out.append(
            "OOD: mean KDE log-likelihood of the perturbed epochs under the "
            "training epochs (higher = closer to the data; the paper's Table 2 "
            "'KDE score', on another scale: compare within this table and with "
            "the references above). Drop: original minus RS accuracy; gap: RN "
            "minus RS (group); RN / RS inst.: instance level (paper Table 3).\n"
        )
        out += _sweep_table(rows) + [""]
    return "\n".join(out)


def write_markdown(results, fname):
    """Put the tables between the markers of the ``## Evaluation harness``."""
    block = f"{BEGIN}\n{tables(results)}\n{END}"
    text = fname.read_text() if fname.is_file() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        text = pre + block + rest.split(END, 1)[1]
    elif "## Evaluation harness" in text:
        head = "## Evaluation harness"
        text = text.replace(head, f"{head}\n\n{block}", 1)
    else:
        text = text.rstrip() + "\n\n## Evaluation harness\n\n" + block + "\n"
    fname.write_text(text)


# ----------------------------------------------------------------------------


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    add("--models", nargs="+", default=list(MODELS), choices=MODELS)
    add("--methods", nargs="+", help="default: every registered method + random")
    add("--n-explain", type=int, default=24, help="held-out epochs explained")
    add("--n-sanity", type=int, default=6, help="epochs of the sanity check (0: off)")
    add("--no-sweep", action="store_true", help="skip the lambda sweep")
    add("--retrain", action="store_true", help="ignore the cached models")
    add("--threads", type=int, default=1, help="torch threads (default 1)")
    add("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    add("--write-only", action="store_true", help="tables from the cached results")
    return parser


def _print_row(ds, name, row, t0, t_start):
    now = time.perf_counter()
    what = row.get("error", "")
    if "gap" in row:
        what = f"gap {row['gap']:+.3f} del {row['deletion_auc']:.3f}"
    print(
        f"{ds:9s} {name:12s} {row['method']:22s} {what}  [{now - t0:.0f} s, total "
        f"{(now - t_start) / 60:.1f} min]",
        flush=True,
    )


def main(argv=None):
    args = _parser().parse_args(argv)
    results_file = CACHE / "results.json"
    if args.write_only:
        write_markdown(json.loads(results_file.read_text()), args.out)
        return
    torch.set_num_threads(args.threads)
    mne.set_log_level("ERROR")
    methods = args.methods or list(METHODS) + ["random"]
    t_start = time.perf_counter()
    train_s = 0.0
    results = dict(datasets={}, sweeps={})
    for ds in args.datasets:
        train, test, truth, desc = load_dataset(ds)
        explain_idx = explained_subset(test, args.n_explain)
        d = dict(desc=desc, n_train=len(train), n_test=len(test), models=[], rows=[])
        d["ood_original"] = ev.ood_score(train, test[explain_idx], verbose=False)
        results["datasets"][ds] = d
        for name in args.models:
            model, info, trained = get_model(ds, name, train, args.retrain)
            train_s += info["train_s"] if trained else 0.0
            d["models"].append(name)
            for method in methods:
                t0 = time.perf_counter()
                try:
                    row, sal = run_method(
                        method, model, train, test, explain_idx, truth, args
                    )
                    if method == "freqmask" and name == "eegnet":
                        _zeroed_ood(d, train, test, explain_idx, sal)
                except Exception as exp:  # a method that cannot run on a model
                    msg = f"{type(exp).__name__}: {str(exp).splitlines()[0][:80]}"
                    row = dict(method=method, error=msg)
                    traceback.print_exc()
                row.update(model=name)
                d["rows"].append(row)
                _print_row(ds, name, row, t0, t_start)
        if not args.no_sweep and ds in SWEEP_DATASETS and "eegnet" in args.models:
            model, _, _ = get_model(ds, "eegnet", train)
            results["sweeps"][ds] = run_sweep(model, train, test, explain_idx)
    wall = time.perf_counter() - t_start
    load = os.getloadavg()[0]
    given = sys.argv[1:] if argv is None else list(argv)
    results["meta"] = dict(
        date=time.strftime("%Y-%m-%d %H:%M"),
        machine=f"{platform.machine()}, {os.cpu_count()} CPU cores, load {load:.1f}",
        torch=torch.__version__,
        threads=args.threads,
        wall_min=wall / 60,
        train_s=train_s,
        n_explain=args.n_explain,
        n_sanity=args.n_sanity,
        command=" ".join(["python benchmarks/harness.py"] + given),
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(results, indent=1, default=float))
    write_markdown(results, args.out)
    print(f"Done in {wall / 60:.1f} min; tables written to {args.out}")


def _zeroed_ood(d, train, test, explain_idx, sal):
    """OOD score of the removal game's RS epochs (salient half zeroed)."""
    ep = test[explain_idx]
    x = ep.get_data(picks="all").astype(np.float32)
    picks = np.array([ep.ch_names.index(ch) for ch in sal.ch_names])
    grid = sal.grid
    keep = ~ev.salient_cells(sal.get_data().mean(0), random_state=0)
    xr = ev.remove_cells(x, keep, grid, picks)
    d["ood_zeroed"] = ev.ood_score(train, xr, sfreq=train.info["sfreq"], verbose=False)


if __name__ == "__main__":
    main()
