"""Expected gradients on short-time maps: the sign, the draws, or a real miss?

Issue #29. With ``objective="expected_gradients"`` (EG) as the default
(branch ``egswitch``), two short-time tests fell below their planted-window
AUROC of 0.95: tests/test_tfr.py::test_planted_window_found (0.82) and
tests/test_evaluation_tfr.py::test_compare_methods_time_windows (0.64).
This script copies both tests' set-ups (the burst simulation and EEGNet of
tests/conftest.py::burst_simulated, the same seeds, ``bands="canonical"``,
``time_windows=(0.5, 0.25)``):

- ``tfr``: test_tfr's, the first 16 held-out epochs explained with the
  training epochs as ``reference``;
- ``evaltfr``: test_evaluation_tfr's, the 32 held-out and the first 64
  training epochs explained with the other training epochs as ``reference``;

and scores, with ``evaluation.ground_truth_scores`` (``level="group"``,
signed: the tests' score, ``planted_window_auroc`` and ``compare_methods``
both call it so) and by magnitude (``absolute=True``), the maps of

- ``preserve``: the default (``objective="preserve"``);
- ``eg``: ``objective="expected_gradients"`` (100 draws, its default);
- ``eg300``: the same with ``n_steps=300``;
- ``eg_self``: EG with the explained epochs as donors (no ``reference``);

For the signed EG map it also reports how much of the planted cells'
mass is negative (per epoch, by class), which cells outrank the planted
ones in the group map, and what removing the planted cells only does to the
probability of each epoch's predicted class (``remove_cells``, zeroing and
the reference removal with 8 donors drawn from the reference epochs).

Seeds: ``--sim-seeds`` (the simulation's ``make_epochs(random_state=...)``;
the model is trained with ``random_state=0`` as the fixture does) and
``--explain-seeds`` (``explain(random_state=...)``: the donors and alphas;
None is the tests' call, seed 0 inside).

Usage (BENCHMARKS.md, "Expected gradients on short-time maps")::

    nice python benchmarks/bench_eg_shorttime.py --sim-seeds 0 1 2
    python benchmarks/bench_eg_shorttime.py --report \
        benchmarks/results/eg_shorttime.json
    nice python benchmarks/bench_eg_shorttime.py --cells --sim-seeds 0 2 \
        --out eg_shorttime_cells.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask._torch_utils import predict
from mne_freqmask.datasets.simulated import make_epochs
from mne_freqmask.evaluation import ground_truth_scores, remove_cells
from mne_freqmask.evaluation.truth import _auroc
from mne_freqmask.models import fit
from mne_freqmask.utils._metrics import softmax

CHS = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "P4"]  # tests/conftest.py
TW = (0.5, 0.25)
#: the level each test scores at (planted_window_auroc's default; compare_methods
#: scores per-epoch maps per epoch)
TEST_LEVEL = {"tfr": "group", "evaltfr": "instance"}
RESULTS = Path(__file__).parent / "results"
VARIANTS = {
    "preserve": dict(),
    "eg": dict(objective="expected_gradients"),
    "eg300": dict(objective="expected_gradients", n_steps=300),
    "eg_self": dict(objective="expected_gradients"),  # no reference
}


def simulate(seed):
    """The conftest burst fixture with ``make_epochs(random_state=seed)``."""
    epochs, truth = make_epochs(
        n_subjects=2,
        n_epochs_per_class=40,
        ch_names=CHS,
        band=(18.0, 22.0),
        burst=dict(),
        random_state=seed,
    )
    model, history = fit(epochs, "eegnet", max_epochs=30, random_state=0)
    return epochs, truth, model, history


def setups(epochs, history):
    """The two tests' (explained, reference) epochs."""
    train = history["train_idx"]
    held = np.sort(np.concatenate([history["val_idx"], train[:64]]))
    return {
        "tfr": (epochs[history["val_idx"][:16]], epochs[train]),
        "evaltfr": (epochs[held], epochs[train[64:]]),
    }


def _labels(ep):
    codes = sorted(ep.event_id.values())
    return np.searchsorted(codes, ep.events[:, 2])


def per_epoch_auroc(sal, cells, y, model, x):
    """Each epoch map's signed AUROC, by class and by the model's confidence."""
    v = sal.get_data()
    a = np.array([_auroc(m, cells) for m in v])
    q = softmax(predict(model, x, torch.device("cpu")))
    conf = np.abs(q[:, 1] - q[:, 0])
    hi = conf >= np.median(conf)
    return dict(
        mean=float(a.mean()),
        class0=float(a[y == 0].mean()),
        class1=float(a[y == 1].mean()),
        confident_half=float(a[hi].mean()),
        unsure_half=float(a[~hi].mean()),
        below_half_share=float((a < 0.5).mean()),
    )


def sign_report(sal, cells, y):
    """Negative mass of the planted cells, per epoch map, overall and by class."""
    v = sal.get_data()  # (n_epochs, n_ch, n_bands, n_windows)
    planted = v[:, cells]  # (n_epochs, n_planted)
    out = {}
    for name, sel in (("all", slice(None)), ("class0", y == 0), ("class1", y == 1)):
        p = planted[sel]
        total = np.abs(p).sum()
        out[name] = dict(
            negative_mass_share=float(-p[p < 0].sum() / total) if total else None,
            negative_cell_share=float((p < 0).mean()),
            planted_mean=float(p.mean()),
            others_mean=float(v[sel][:, ~cells].mean()),
        )
    group = v.mean(0)
    order = np.argsort(-group, axis=None)
    ranked = np.unravel_index(order, group.shape)
    n_above = int(np.argmax(cells[ranked] == 0))
    lowest_planted = float(group[cells].min())
    outrank = int((group[~cells] > lowest_planted).sum())
    top = [
        dict(
            ch=sal.ch_names[c],
            band=sal.band_names[b],
            window=float(sal.times[w]),
            value=float(group[c, b, w]),
            planted=bool(cells[c, b, w]),
        )
        for c, b, w in zip(*(r[:8] for r in ranked), strict=True)
    ]
    out["group"] = dict(
        planted_negative=int((group[cells] < 0).sum()),
        n_planted=int(cells.sum()),
        planted_in_top_before_first_other=n_above,
        others_above_lowest_planted=outrank,
        top8=top,
    )
    return out


def planted_removal(ep, ref, model, sal, cells, seed=0, n_donors=8):
    """Probability of the predicted class with the planted cells removed."""
    x = ep.get_data().astype(np.float32)
    xr = ref.get_data().astype(np.float32)
    dev = torch.device("cpu")
    p0 = softmax(predict(model, x, dev))
    pred = p0.argmax(1)
    idx = np.arange(len(x))
    keep = np.broadcast_to(~cells, (len(x),) + cells.shape)
    picks = np.arange(len(CHS))
    grid = sal.grid
    pz = softmax(predict(model, remove_cells(x, keep, grid, picks), dev))
    rng = np.random.default_rng(seed)
    pr = []
    for _ in range(n_donors):
        fill = xr[rng.integers(0, len(xr), len(x))]
        xd = remove_cells(x, keep, grid, picks, fill=fill)
        pr.append(softmax(predict(model, xd, dev))[idx, pred])
    pr = np.mean(pr, 0)
    base = p0[idx, pred]
    out = dict(p_pred_mean=float(base.mean()))
    for name, pnew in (("zero", pz[idx, pred]), ("reference", pr)):
        drop = base - pnew
        out[name] = dict(
            drop_mean=float(drop.mean()),
            raised_share=float((drop < 0).mean()),
            drop_by_pred={int(k): float(drop[pred == k].mean()) for k in (0, 1)},
        )
    # EG's planted mass against the actual reference drop, per epoch
    v = sal.get_data()[:, cells].sum(1)
    out["eg_planted_sum_vs_reference_drop_r"] = float(np.corrcoef(v, base - pr)[0, 1])
    return out


def cell_removals(sim_seeds, n_donors=8):
    """Each planted cell alone: its signed EG group value and its removal.

    ``--cells``: the EG map (100 draws, the tests' seed) of each set-up, and
    for each planted cell the mean drop of the predicted class's probability
    when that cell only is removed (zeroed, or replaced from ``n_donors``
    reference epochs), and the share of epochs whose probability it raises.
    """
    torch.set_num_threads(1)
    dev = torch.device("cpu")
    rows = []
    for s in sim_seeds:
        epochs, truth, model, history = simulate(s)
        for setup, (ep, ref) in setups(epochs, history).items():
            sal = mfm.explain(
                ep,
                model,
                bands="canonical",
                time_windows=TW,
                reference=ref,
                objective="expected_gradients",
                verbose=False,
            )
            cells = truth.cells(sal.ch_names, sal.band_edges, sal.window_edges)
            x = ep.get_data().astype(np.float32)
            xr = ref.get_data().astype(np.float32)
            p0 = softmax(predict(model, x, dev))
            idx, pred = np.arange(len(x)), p0.argmax(1)
            base = p0[idx, pred]
            picks = np.arange(len(CHS))
            group = sal.get_data().mean(0)
            for c, b, w in zip(*np.nonzero(cells), strict=True):
                one = np.zeros_like(cells)
                one[c, b, w] = True
                keep = np.broadcast_to(~one, (len(x),) + one.shape)
                pz = softmax(
                    predict(model, remove_cells(x, keep, sal.grid, picks), dev)
                )
                rng = np.random.default_rng(0)
                pr = np.mean(
                    [
                        softmax(
                            predict(
                                model,
                                remove_cells(
                                    x,
                                    keep,
                                    sal.grid,
                                    picks,
                                    fill=xr[rng.integers(0, len(xr), len(x))],
                                ),
                                dev,
                            )
                        )[idx, pred]
                        for _ in range(n_donors)
                    ],
                    0,
                )
                eg_cell = sal.get_data()[:, c, b, w]
                row = dict(
                    sim_seed=s,
                    setup=setup,
                    ch=sal.ch_names[c],
                    band=sal.band_names[b],
                    window=float(sal.times[w]),
                    eg_group=float(group[c, b, w]),
                    eg_rank=int((group > group[c, b, w]).sum()) + 1,
                    drop_zero=float((base - pz[idx, pred]).mean()),
                    drop_reference=float((base - pr).mean()),
                    raised_reference=float((base - pr < 0).mean()),
                    eg_negative=float((eg_cell < 0).mean()),
                    # per epoch: does EG's sign match the cell's removal?
                    sign_agreement=float(
                        (np.sign(eg_cell) == np.sign(base - pr)).mean()
                    ),
                    r_epochs=float(np.corrcoef(eg_cell, base - pr)[0, 1]),
                )
                rows.append(row)
                print(
                    f"{s} {setup:8s} {row['ch']} {row['band']} {row['window']:.2f}"
                    f" s: EG {row['eg_group']:+.5f} (rank {row['eg_rank']}) drop "
                    f"zero {row['drop_zero']:+.4f} reference "
                    f"{row['drop_reference']:+.4f} (raised in "
                    f"{row['raised_reference']:.2f}); EG < 0 in "
                    f"{row['eg_negative']:.2f}, sign agrees in "
                    f"{row['sign_agreement']:.2f}, r {row['r_epochs']:+.2f}",
                    flush=True,
                )
    return rows


def run(sim_seeds, explain_seeds, variants):
    torch.set_num_threads(1)
    rows = []
    for s in sim_seeds:
        t0 = time.time()
        epochs, truth, model, history = simulate(s)
        acc = float(history["val_accuracy"][-1])
        print(f"sim seed {s}: val accuracy {acc:.3f} ({time.time() - t0:.0f} s)")
        for setup, (ep, ref) in setups(epochs, history).items():
            y = _labels(ep)
            for var in variants:
                seeds = explain_seeds if var in ("preserve", "eg") else [None]
                for es in seeds:
                    kw = dict(VARIANTS[var])
                    if var != "eg_self":
                        kw["reference"] = ref
                    t1 = time.time()
                    sal = mfm.explain(
                        ep,
                        model,
                        bands="canonical",
                        time_windows=TW,
                        random_state=es,
                        verbose=False,
                        **kw,
                    )
                    sec = time.time() - t1
                    cells = truth.cells(sal.ch_names, sal.band_edges, sal.window_edges)
                    row = dict(
                        sim_seed=s,
                        val_accuracy=acc,
                        setup=setup,
                        n_epochs=len(ep),
                        variant=var,
                        explain_seed=es,
                        seconds=round(sec, 1),
                    )
                    for level in ("group", "instance"):
                        for absolute in (False, True):
                            gts = ground_truth_scores(
                                sal, truth, level=level, absolute=absolute
                            )
                            key = f"auroc_{level}" + ("_abs" if absolute else "")
                            row[key] = float(gts["auroc"])
                    # the test's own score: test_tfr the group map's,
                    # compare_methods each epoch's map's (instance)
                    row["auroc_test"] = row[f"auroc_{TEST_LEVEL[setup]}"]
                    row["auroc_test_abs"] = row[f"auroc_{TEST_LEVEL[setup]}_abs"]
                    row["per_epoch"] = per_epoch_auroc(
                        sal, cells, y, model, ep.get_data().astype(np.float32)
                    )
                    if var != "preserve":
                        row["sign"] = sign_report(sal, cells, y)
                    if var == "eg" and es is None:
                        row["removal"] = planted_removal(ep, ref, model, sal, cells)
                    rows.append(row)
                    print(
                        f"  {setup:8s} {var:8s} seed {es}: test AUROC "
                        f"{row['auroc_test']:.3f} |.| {row['auroc_test_abs']:.3f}; "
                        f"group {row['auroc_group']:.3f} instance "
                        f"{row['auroc_instance']:.3f}"
                        f" ({sec:.0f} s)",
                        flush=True,
                    )
    return rows


def _spread(values):
    values = np.asarray(values, float)
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} [{values.min():.3f}, {values.max():.3f}]"


def report(fname):
    """Markdown tables of a results file (BENCHMARKS.md)."""
    rows = json.loads(Path(fname).read_text())["rows"]
    keys = ("auroc_test", "auroc_test_abs", "auroc_group", "auroc_instance")
    print(
        "| sim seed (val acc) | set-up (test's level) | map | explain seeds | "
        "test's AUROC, signed | magnitude | group, signed | instance, signed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    seen = {}
    for r in rows:
        seen.setdefault((r["sim_seed"], r["setup"], r["variant"]), []).append(r)
    for (s, setup, var), rs in seen.items():
        cols = [_spread([r[k] for r in rs]) for k in keys]
        print(
            f"| {s} ({rs[0]['val_accuracy']:.2f}) | {setup} ({TEST_LEVEL[setup]}) | "
            f"{var} | {len(rs)} | " + " | ".join(cols) + " |"
        )
    print()
    print(
        "| sim seed | set-up | per-epoch signed AUROC (true class low / "
        "high) | planted cells < 0 (true low / high) | negative share of the "
        "planted cells' absolute mass (true low / high) | "
        "group map: planted < 0 | p(pred) drop, planted cells removed: zero "
        "(pred low / high) | reference (pred low / high) | epochs raised, "
        "reference | r(EG planted sum, reference drop) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["variant"] != "eg" or r["explain_seed"] is not None:
            continue
        pe, sg, rm = r["per_epoch"], r["sign"], r["removal"]
        z, ref = rm["zero"], rm["reference"]
        print(
            f"| {r['sim_seed']} | {r['setup']} | {pe['class0']:.2f} / "
            f"{pe['class1']:.2f} | {sg['class0']['negative_cell_share']:.2f} / "
            f"{sg['class1']['negative_cell_share']:.2f} | "
            f"{sg['class0']['negative_mass_share']:.2f} / "
            f"{sg['class1']['negative_mass_share']:.2f} | "
            f"{sg['group']['planted_negative']} of {sg['group']['n_planted']} | "
            f"{z['drop_by_pred']['0']:+.3f} / {z['drop_by_pred']['1']:+.3f} | "
            f"{ref['drop_by_pred']['0']:+.3f} / {ref['drop_by_pred']['1']:+.3f} | "
            f"{ref['raised_share']:.2f} | "
            f"{rm['eg_planted_sum_vs_reference_drop_r']:.2f} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--explain-seeds",
        type=lambda v: None if v == "none" else int(v),
        nargs="+",
        default=[None, 1, 2],
        help='"none" is the tests\' call',
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--out", default="eg_shorttime.json")
    parser.add_argument(
        "--cells", action="store_true", help="each planted cell's removal alone"
    )
    parser.add_argument("--report", help="print the tables of a results file")
    args = parser.parse_args(argv)
    if args.report:
        return report(args.report)
    if args.cells:
        rows = cell_removals(args.sim_seeds)
    else:
        rows = run(args.sim_seeds, args.explain_seeds, args.variants)
    RESULTS.mkdir(exist_ok=True)
    fname = RESULTS / args.out
    tmp = fname.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(argv=sys.argv[1:], rows=rows), indent=1))
    tmp.replace(fname)
    print(f"wrote {fname}")


if __name__ == "__main__":
    main()
