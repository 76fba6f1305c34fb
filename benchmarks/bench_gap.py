"""What the deletion limit sees and the maps miss, and candidate defaults.

On a small subset (``--n-explain``) of a simulation of ``bench_limit`` the
block-greedy limit (:func:`mne_freqmask.evaluation.deletion_limit`, MoRF,
reference removal, 4 donor draws of its own) is computed once and cached
(``--out-dir``); every candidate map (``CANDIDATES``) is then computed, its
forward passes counted, and all are scored together by
:func:`mne_freqmask.evaluation.compare_methods` (instance ranking, MoRF,
reference removal, the training epochs as the reference, one seed: every
map sees the same donors, so the scores are paired). Reported per map: the
MoRF area, the share of the gap ``(random - map) / (random - limit)`` with a
bootstrap CI over the epochs, the paired difference ``map - default`` and
passes per epoch. ``--diagnose`` prints what the limit removes first (its
channel x band cells) against the maps' top cells.

``--orders lerf`` searches and scores the LeRF side instead (higher is
better), ``--operator zero`` the zeroing removal (the limit then searched
for it, 826 passes per epoch). Results: BENCHMARKS.md, "What the limit sees
and the maps miss" (issue #29).

Usage::

    nice python benchmarks/bench_gap.py --dataset interaction --n-explain 40
    nice python benchmarks/bench_gap.py --dataset simulated_hard --n-explain 40
    nice python benchmarks/bench_gap.py --dataset interaction --orders lerf \
        --candidates freqmask amplitude_gradients random freqmask_eg
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_limit as bl  # noqa: E402
import harness  # noqa: E402

import mne_freqmask.methods.freqmask as fm  # noqa: E402
from mne_freqmask import read_saliency  # noqa: E402
from mne_freqmask.evaluation import deletion_limit  # noqa: E402
from mne_freqmask.evaluation.compare import _saliency  # noqa: E402
from mne_freqmask.evaluation.stats import paired_comparison  # noqa: E402

DEFAULT = "freqmask"


# ----------------------------------------------------------------------------
# candidates: FreqMask's fitter (inputs, donor pool, chunks) with another
# objective or another fit, patched in for one explain call


def _p_true(logits, target):
    """Probability of the target (soft: the model's own prediction)."""
    prob = torch.softmax(logits.float(), -1)
    if target.ndim == 2:
        return (target * prob).sum(-1)
    return prob.gather(1, target[:, None])[:, 0]


def _area_loss(removed, area):
    """Fong et al.'s area term: sorted removal against exactly ``area``."""
    flat = removed.reshape(len(removed), -1)
    k = int(round(area * flat.shape[1]))
    ref = torch.zeros_like(flat)
    ref[:, :k] = 1
    return ((flat.sort(1, descending=True)[0] - ref) ** 2).mean(1)


class _Game(fm._ChunkFitter):
    """The mask ``M`` marks the cells *removed* (relevance: high = removed).

    ``game="delete"``: minimise the target's probability with the ``M``
    cells removed, at an area of exactly ``area`` (Fong et al.'s deletion
    game). ``"both"``: the ``M`` cells alone keep the prediction
    (cross-entropy with the rest removed) and their removal destroys it
    (probability with them removed), with the L1 term on ``M`` (Dabkowski
    and Gal's objective; two passes a step).
    """

    game, area, area_weight = "delete", 0.1, 1.0

    def _loss(self, state, mask, w=None, b=None):
        fill = self._donors(state)
        state["t"] += 1
        x, x2 = state["x"], state["x2"]
        xdel = self._xhat(x, x2, 1 - mask, fill=fill)[0]
        p_del = _p_true(self.model(xdel.to(self.net_dtype)), state["target"])
        if self.game == "delete":
            loss = p_del + self.area_weight * _area_loss(mask, self.area)
            return loss, p_del
        xkeep = self._xhat(x, x2, mask, fill=fill)[0]
        logits = self.model(xkeep.to(self.net_dtype)).float()
        t = state["target"]
        if t.ndim == 2:
            ce = -(t * torch.log_softmax(logits, -1)).sum(-1)
        else:
            ce = torch.nn.functional.cross_entropy(logits, t, reduction="none")
        loss = ce + p_del + self.p["l1_mask"] * mask.mean((1, 2))
        return loss, ce


class _CondGrad(fm._ChunkFitter):
    """Greedy deletion by the conditional mask gradient.

    At each step the gradient of the target's probability with respect to
    the keep-mask, at the cells removed so far (keep 0, donors' fill) and the
    rest kept (1), averaged over ``n_draws`` donors, estimates each
    remaining cell's removal effect; the ``block`` cells whose removal lowers
    the probability most join the removed set. Relevance: order of choice,
    the rest by the last gradient. ``n_steps * n_draws`` passes.
    """

    n_draws, blocks = 4, (2, 2, 2, 2, 2, 5, 5, 5, 5, 10, 10, 10, 19, 19, 19, 19)

    def fit(self, sl, centres, out_perturbed=None, progress=None):
        state = self._init_state(sl, centres)
        state["orders"] = self._orders(state["epoch"])
        x, x2, target = state["x"], state["x2"], state["target"]
        n_b, n_p, n_bands = state["params"][0].shape
        n = n_p * n_bands
        removed = torch.zeros(n_b, n, dtype=torch.bool)
        score = torch.zeros(n_b, n)
        rank = n
        for block in self.blocks:
            keep = (~removed).float().reshape(n_b, n_p, n_bands).requires_grad_(True)
            g = torch.zeros(n_b, n)
            for _ in range(self.n_draws):
                fill = self._donors(state)
                state["t"] += 1
                xh = self._xhat(x, x2, keep, fill=fill)[0]
                p = _p_true(self.model(xh.to(self.net_dtype)), target)
                g += torch.autograd.grad(p.sum(), keep)[0].reshape(n_b, n)
            g = g.masked_fill(removed, -np.inf)
            top = g.topk(block, 1).indices
            for i in range(n_b):
                score[i, top[i]] = torch.arange(rank, rank - block, -1).float()
                removed[i, top[i]] = True
            rank -= block
        # the rest: by the last gradient, below every chosen cell
        g = g.masked_fill(removed, np.inf)
        rest = torch.argsort(torch.argsort(-g, 1), 1).float()  # 0: largest g
        score = torch.where(removed, score, rank - rest)
        out = score.reshape(n_b, n_p, n_bands).numpy().astype(np.float32)
        steps = np.full(n_b, len(self.blocks), np.int32)
        nan = np.full(n_b, np.nan, np.float32)
        return out, steps, nan, nan


class _ExpGrad(fm._ChunkFitter):
    """Expected gradients in the keep-mask towards donor epochs.

    Mean over ``n_steps`` samples (a donor, a random ``alpha`` in (0, 1)) of
    the gradient of the target's probability with respect to the keep-mask
    at ``keep = alpha``: integrated gradients from a donor (the removal the
    curve applies) to the epoch, averaged over donors (Erion et al.).
    """

    stratified = False

    def fit(self, sl, centres, out_perturbed=None, progress=None):
        state = self._init_state(sl, centres)
        state["orders"] = self._orders(state["epoch"])
        x, x2, target = state["x"], state["x2"], state["target"]
        mask = state["params"][0]
        gen = torch.Generator().manual_seed(int(sl.start))
        g = torch.zeros_like(mask)
        n = self.p["n_steps"]
        # stratified: one alpha in each of n equal slices, in random order
        strata = torch.stack([torch.randperm(n, generator=gen) for _ in mask], 1)
        for t in range(n):
            alpha = torch.rand(len(mask), 1, 1, generator=gen)
            if self.stratified:
                alpha = (strata[t][:, None, None] + alpha) / n
            keep = (alpha * torch.ones_like(mask)).requires_grad_(True)
            fill = self._donors(state)
            state["t"] += 1
            xh = self._xhat(x, x2, keep, fill=fill)[0]
            p = _p_true(self.model(xh.to(self.net_dtype)), target)
            g += torch.autograd.grad(p.sum(), keep)[0]
        out = (g / self.p["n_steps"]).numpy().astype(np.float32)
        n_b = len(mask)
        nan = np.full(n_b, np.nan, np.float32)
        return out, np.full(n_b, self.p["n_steps"], np.int32), nan, nan


def _patched(fitter, use_reference=True, **attrs):
    """explain() with FreqMask's fitter replaced by ``fitter`` (``attrs`` set);
    the donors from ``train`` (or, ``use_reference=False``, the explained
    epochs themselves)."""

    def run(held, model, train, **kw):
        ekw = dict(bands=harness.BANDS)
        if use_reference:
            ekw["reference"] = train
        cls = type("Patched", (fitter,), attrs)
        orig = fm._ChunkFitter
        fm._ChunkFitter = cls
        try:
            return _saliency(
                "c",
                dict(method="freqmask", **kw),
                held,
                model,
                ekw,
                0,
                "cpu",
            )
        finally:
            fm._ChunkFitter = orig

    return run


def _plain(entry, reference=True):
    def run(held, model, train, **kw):
        ekw = dict(bands=harness.BANDS)
        if reference:
            ekw["reference"] = train
        return _saliency("c", entry, held, model, ekw, 0, "cpu")

    return run


def _magnitude(run):
    """The magnitude of a signed map (the sign dropped)."""

    def mag(held, model, train, **kw):
        sal, sec, passes = run(held, model, train, **kw)
        out = sal.copy()
        out._data = np.abs(out._data)
        return out, sec, passes

    return mag


#: label -> (function computing the map, keyword arguments)
CANDIDATES = {
    # the default as bench_limit runs it: donors from the explained epochs
    "freqmask": (_plain("freqmask", reference=False), {}),
    "freqmask_ref": (_plain("freqmask"), {}),
    "amplitude_gradients": (_plain("amplitude_gradients"), {}),
    "random": (_plain("random"), {}),
    "delete_a05": (
        _patched(_Game, game="delete", area=0.05),
        dict(n_steps=100, min_steps=100, lr=0.05),
    ),
    "delete_a10": (
        _patched(_Game, game="delete", area=0.10),
        dict(n_steps=100, min_steps=100, lr=0.05),
    ),
    "delete_a20": (
        _patched(_Game, game="delete", area=0.20),
        dict(n_steps=100, min_steps=100, lr=0.05),
    ),
    "preserve+delete": (
        _patched(_Game, game="both"),
        dict(n_steps=50, min_steps=50, lr=0.05),
    ),
    "cond_grad": (_patched(_CondGrad), {}),
    "expected_grad": (_patched(_ExpGrad), dict(n_steps=100)),
    "expected_grad_50": (_patched(_ExpGrad), dict(n_steps=50)),
    "expected_grad_25": (_patched(_ExpGrad), dict(n_steps=25)),
    "expected_grad_strat": (_patched(_ExpGrad, stratified=True), dict(n_steps=100)),
    "expected_grad_strat_25": (
        _patched(_ExpGrad, stratified=True),
        dict(n_steps=25),
    ),
    # the integrated option: explain(..., objective="expected_gradients")
    "freqmask_eg": (
        _plain(dict(method="freqmask", objective="expected_gradients", n_steps=100)),
        {},
    ),
    "freqmask_eg_50": (
        _plain(dict(method="freqmask", objective="expected_gradients", n_steps=50)),
        {},
    ),
    "freqmask_eg_noref": (
        _plain(
            dict(method="freqmask", objective="expected_gradients", n_steps=100),
            reference=False,
        ),
        {},
    ),
    "freqmask_eg_abs": (
        _magnitude(
            _plain(dict(method="freqmask", objective="expected_gradients", n_steps=100))
        ),
        {},
    ),
    "expected_grad_noref": (_patched(_ExpGrad, use_reference=False), dict(n_steps=100)),
}


def cached_limit(fname, held, model, train, order="morf", operator="reference"):
    """The limit of ``held`` (4 donor draws of its own, seed 0), read from
    ``fname`` (and its ``.json``: passes per epoch, seconds) or computed and
    written there: ``(limit, info)``."""
    meta = fname.with_suffix(".json")
    if fname.is_file() and meta.is_file():
        return read_saliency(fname), json.loads(meta.read_text())
    t0 = time.perf_counter()
    rnd = _saliency("random", "random", held, model, dict(bands=10), 0, "cpu")[0]
    lim = deletion_limit(
        held,
        model,
        rnd,
        order=order,
        operator=operator,
        reference=train,
        n_draws=4,
        random_state=0,
        verbose=False,
    )
    info = dict(
        passes=float(lim.diagnostics["passes"].mean()),
        seconds=time.perf_counter() - t0,
        probability=lim.diagnostics["probability"].mean(0).tolist(),
    )
    lim.save(fname, overwrite=True)
    meta.write_text(json.dumps(info))
    return lim, info


def setup(ds, n_explain, out_dir, order="morf", operator="reference"):
    """``(held, train, truth, model, limit, limit passes per epoch)``."""
    train, test, truth, _ = bl.load(ds)
    held = test[harness.explained_subset(test, n_explain)]
    model, _, trained = harness.get_model(ds, "eegnet", train)
    suffix = "" if order == "morf" else f"-{order}"
    suffix += "" if operator == "reference" else f"-{operator}"
    fname = out_dir / f"{ds}-{n_explain}-limit{suffix}.h5"
    lim, info = cached_limit(fname, held, model, train, order, operator)
    print(
        f"{ds}: {len(held)} of {len(test)} held-out epochs; model trained now: "
        f"{trained}; limit ({order}, {operator}) {info['passes']:.0f} passes/epoch "
        f"({info['seconds']:.0f} s when computed)",
        flush=True,
    )
    return held, train, truth, model, lim, info["passes"]


def maps_of(labels, held, model, train, out_dir, tag):
    """Every candidate's map (cached per label) and its cost."""
    maps, cost = {}, {}
    for label in labels:
        fname = out_dir / f"{tag}-{label}.h5"
        meta = fname.with_suffix(".json")
        if fname.is_file() and meta.is_file():
            maps[label] = read_saliency(fname)
            cost[label] = tuple(json.loads(meta.read_text()))
        else:
            fun, kw = CANDIDATES[label]
            sal, sec, passes = fun(held, model, train, **kw)
            maps[label], cost[label] = sal, (sec, passes)
            sal.save(fname, overwrite=True)
            meta.write_text(json.dumps([sec, passes]))
        print(
            f"  {label}: {cost[label][0]:.1f} s, {cost[label][1]:.0f} passes/epoch",
            flush=True,
        )
    return maps, cost


def score(held, model, train, truth, maps, lim, n_boot, order="morf", op="reference"):
    """Per-epoch areas (reference removal) of every map and the limit."""
    scores, units = bl.score_curves(
        held,
        model,
        dict(maps, limit=lim),
        op,
        order,
        train,
        truth,
        n_boot,
        bl.DEFAULT_FRACTIONS,
    )
    units = units[units["metric"] == "probability"]
    areas = {
        m: g.sort_values("unit")["area"].to_numpy() for m, g in units.groupby("method")
    }
    auroc = {}
    if "auroc" in scores:
        auroc = scores.groupby("method")["auroc"].max().to_dict()
    return areas, auroc


def table(areas, cost, lim_passes, order="morf", auroc=None, n_boot=2000):
    """Area, share of the gap, paired differences and passes of every map."""
    name, sign = ("MoRF area ↓", 1) if order == "morf" else ("LeRF area ↑", -1)
    rows = [
        f"| map | {name} | share of gap [CI] | map − {DEFAULT} [CI] | map − "
        "amplitude_gradients [CI] | GT AUROC | passes/epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    r, lim = areas["random"], areas["limit"]
    for label, a in areas.items():
        share, lo, hi = bl._ratio_ci(sign * (r - a), sign * (r - lim), n_boot)
        diffs = []
        for other in (DEFAULT, "amplitude_gradients"):
            if label == other or other not in areas:
                diffs.append("—")
                continue
            res = paired_comparison(a, areas[other], n_boot=n_boot, random_state=0)
            diffs.append(
                f"{res['difference']:+.3f} [{res['ci_low']:+.3f}, "
                f"{res['ci_high']:+.3f}]"
            )
        pp = lim_passes if label == "limit" else cost[label][1]
        rows.append(
            f"| {label} | {a.mean():.3f} | {100 * share:.0f} % [{100 * lo:.0f}, "
            f"{100 * hi:.0f}] | {' | '.join(diffs)} | "
            f"{(auroc or {}).get(label, np.nan):.3f} | {pp:.0f} |"
        )
    return "\n".join(rows)


def diagnose(held, lim, maps, truth, n_first=10):
    """What the limit removes first, against each map's top cells."""
    ch = lim.ch_names
    names = np.array(
        [f"{c}:{lo:.0f}-{hi:.0f}" for c in ch for lo, hi in lim.grid.band_edges]
    )
    planted = truth.cells(ch, lim.grid.band_edges).ravel()
    y = held.events[:, 2]
    for label, sal in dict(limit=lim, **maps).items():
        v = sal.get_data().reshape(len(held), -1)
        top = np.argsort(-v, 1)[:, :n_first]
        pl_rank = [
            np.median((-v).argsort(1).argsort(1)[:, c]) + 1
            for c in np.flatnonzero(planted)
        ]
        cnt = pd.Series(names[top[:, :5]].ravel()).value_counts().head(8)
        print(
            f"{label}: planted cells' median rank {pl_rank}; most frequent of "
            f"the first 5: " + ", ".join(f"{k} {v}" for k, v in cnt.items())
        )
    for cls in np.unique(y):
        v = lim.get_data().reshape(len(held), -1)[y == cls]
        cnt = pd.Series(names[np.argsort(-v, 1)[:, :3]].ravel()).value_counts()
        print(
            f"  limit, class {cls}: first 3: "
            + ", ".join(f"{k} {v}" for k, v in cnt.head(8).items())
        )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="interaction")
    p.add_argument("--n-explain", type=int, default=20)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--out-dir", default=str(harness.CACHE / "gap"))
    p.add_argument("--stage", choices=("limit", "all"), default="all")
    p.add_argument("--orders", nargs="+", default=["morf"])
    p.add_argument("--operator", default="reference", choices=("reference", "zero"))
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    p.add_argument("--diagnose", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for order in args.orders:
        held, train, truth, model, lim, lim_passes = setup(
            args.dataset, args.n_explain, out_dir, order, args.operator
        )
        if args.stage == "limit":
            continue
        labels = [DEFAULT, "random"] + [
            c for c in args.candidates if c not in (DEFAULT, "random")
        ]
        tag = f"{args.dataset}-{args.n_explain}"
        maps, cost = maps_of(labels, held, model, train, out_dir, tag)
        if args.diagnose:
            diagnose(held, lim, maps, truth)
        areas, auroc = score(
            held, model, train, truth, maps, lim, args.n_boot, order, args.operator
        )
        print(f"\n{args.dataset}, {order}, {args.operator} removal, {len(held)} epochs")
        print(table(areas, cost, lim_passes, order, auroc))


if __name__ == "__main__":
    main()
