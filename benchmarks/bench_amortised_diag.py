"""Why the amortised expected-gradients map trails the per-epoch one (issue #29).

On ``bench_gap.py``'s 40 epochs of a simulation (its model, cached maps and
limit, and its scoring), scores against the per-epoch expected-gradients map
(``freqmask_eg``, 100 draws) and the limit:

- ``eg_class_mean``: each epoch gets the mean ``freqmask_eg`` map of the
  explained epochs of its predicted class (what a map that is not
  epoch-specific can reach);
- ``am_<variant>``: ``FreqMaskExplainer(objective="expected_gradients")``
  with other settings (``VARIANTS``: a smaller network, a lower learning
  rate, larger batches, and more epochs to train on: the unlabelled
  held-out epochs not explained, or all held-out epochs, the explained ones
  included);
- ``exact_<features>``: the explainer's network regressed on the *exact*
  expected-gradients maps of the training epochs (``freqmask_eg``, 100 draws
  each, computed here once and cached) instead of single draws, from the
  explainer's features (``band``: z-scored channel x band log power) or
  from the log power of every rfft bin (``bin``): the best the network can
  do from these features when the targets carry no sampling noise;
- ``eg_<n>``: the per-epoch expected-gradients map from only ``n`` draws
  (``n_steps=n``: n model passes and backward passes per epoch);
- ``denoise_1``: the network from the band features *and one single-draw
  mask gradient of the epoch* (its input: both, concatenated) to the exact
  map, trained on 8 single draws per training epoch (one picked at random
  per pass); at inference one draw (``eg_1``'s), so one model pass and one
  backward pass per epoch: not an option of the package, a measured
  direction.

Usage (the run of BENCHMARKS.md)::

    nice python benchmarks/bench_amortised_diag.py --dataset interaction
"""

import argparse
import copy
import sys
from pathlib import Path

import mne
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gap as bg  # noqa: E402
import bench_limit as bl  # noqa: E402
import harness  # noqa: E402

import mne_freqmask as mfm  # noqa: E402
from mne_freqmask import read_saliency  # noqa: E402
from mne_freqmask._amortised_train import POWER_EPS, MaskNet, band_log_power  # noqa: E402
from mne_freqmask.evaluation.compare import _saliency  # noqa: E402

N_EXPLAIN = 40
#: label -> (FreqMaskExplainer kwargs, fit kwargs, training epochs)
VARIANTS = {
    "h64": (dict(hidden=64), dict(patience=20), "train"),
    "lr3e-4": ({}, dict(lr=3e-4, patience=20), "train"),
    "bs128": ({}, dict(batch_size=128, patience=20), "train"),
    "plus_unlabelled": ({}, dict(patience=20), "train+rest"),
    "transductive": ({}, dict(patience=20), "train+test"),
}


def _with_map(like, data):
    sal = like.copy()
    sal._data = np.asarray(data, np.float32)
    return sal


def class_mean(eg, held, model):
    """Each epoch's map: the mean map of its predicted class."""
    with torch.no_grad():
        x = torch.as_tensor(held.get_data(), dtype=torch.float32)
        pred = model(x).argmax(1).numpy()
    data = eg.get_data()
    return _with_map(eg, np.stack([data[pred == c].mean(0) for c in pred]))


def exact_regression(eg_train, z_train, z_held, like, seed=0, n_passes=300):
    """The explainer's network fitted by MSE to exact maps (20 % held out for
    the pass kept), then applied to the explained epochs. ``z_train`` may
    hold several inputs per epoch, ``(K, n, ...)``: one of them is drawn per
    epoch and pass (the first for the validation)."""
    n_cells = eg_train.get_data()[0].size
    if z_train.ndim == z_held.ndim:
        z_train = z_train[None]
    y = torch.as_tensor(eg_train.get_data() * n_cells, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    va, tr = perm[: len(perm) // 5], perm[len(perm) // 5 :]
    va_t = torch.as_tensor(va)
    torch.manual_seed(seed)
    n_in = z_held[0].numel()
    net = MaskNet(*y.shape[1:])
    if n_in != n_cells:  # per-bin features: a first layer of their width
        net.body[0] = torch.nn.Linear(n_in, net.body[0].out_features)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    best, state = np.inf, None
    for _ in range(n_passes):
        net.train()
        order = tr[rng.permutation(len(tr))]
        for s in range(0, len(order), 32):
            i = torch.as_tensor(order[s : s + 32])
            k = torch.as_tensor(rng.integers(0, len(z_train), len(i)))
            loss = ((net(z_train[k, i]) - y[i]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(((net(z_train[0, va_t]) - y[va_t]) ** 2).mean())
        if val < best:
            best, state = val, copy.deepcopy(net.state_dict())
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        out = net(z_held) / n_cells
    print(
        f"  exact regression: validation MSE {best:.2f}, target variance "
        f"{float(y[va].var()):.2f}",
        flush=True,
    )
    return _with_map(like, out.numpy())


def features(exp, train, held, per_bin):
    """z-scored log power (the explainer's band cells, or every rfft bin)."""
    dev = torch.device("cpu")

    def power(ep):
        if not per_bin:
            return band_log_power(ep.get_data(), exp.picks, exp.grid, exp.scale, dev)
        x = torch.as_tensor(ep.get_data()[:, exp.picks], dtype=torch.float32)
        return np.log(exp.grid.spectrum(x, exp.scale).abs().numpy() ** 2 + POWER_EPS)

    pt, ph = power(train), power(held)
    mu, sd = pt.mean(0), pt.std(0) + 1e-6
    return [torch.as_tensor((p - mu) / sd, dtype=torch.float32) for p in (pt, ph)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="interaction")
    p.add_argument("--n-boot", type=int, default=1000)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ds, out_dir = args.dataset, harness.CACHE / "gap"
    held, train, truth, model, lim, lim_passes = bg.setup(ds, N_EXPLAIN, out_dir)
    tag = f"{ds}-{N_EXPLAIN}"
    maps, cost = bg.maps_of(
        ["freqmask", "random", "freqmask_eg"], held, model, train, out_dir, tag
    )
    eg = maps["freqmask_eg"]
    maps["eg_class_mean"] = class_mean(eg, held, model)
    _, test, _, _ = bl.load(ds)
    rest = test[np.setdiff1d(np.arange(len(test)), harness.explained_subset(test, 40))]
    sets = {
        "train": train,
        "train+rest": mne.concatenate_epochs([train, rest], verbose=False),
        "train+test": mne.concatenate_epochs([train, test], verbose=False),
    }
    for label, (init_kw, fit_kw, on) in VARIANTS.items():
        exp = mfm.FreqMaskExplainer(objective="expected_gradients", **init_kw)
        exp.fit(
            sets[on],
            model,
            reference=train,
            bands=harness.BANDS,
            random_state=0,
            verbose=False,
            **fit_kw,
        )
        h = exp.history
        print(f"  am_{label}: {h['n_epochs']} passes (best {h['best_epoch'] + 1})")
        maps[f"am_{label}"] = exp.explain(held, verbose=False)
    fname = out_dir / f"{ds}-train-freqmask_eg.h5"
    if fname.is_file():
        eg_train = read_saliency(fname)
    else:
        eg_train = mfm.explain(
            train,
            model,
            reference=train,
            objective="expected_gradients",
            n_steps=100,
            bands=harness.BANDS,
            random_state=0,
            verbose=False,
        )
        eg_train.save(fname)
    for name, per_bin in (("band", False), ("bin", True)):
        zt, zh = features(exp, train, held, per_bin)
        maps[f"exact_{name}"] = exact_regression(eg_train, zt, zh, eg)
    ekw = dict(bands=harness.BANDS, reference=train)
    eg_kw = dict(method="freqmask", objective="expected_gradients")
    for n in (1, 2, 4, 8):
        entry = dict(eg_kw, n_steps=n)
        sal, sec, passes = _saliency("c", entry, held, model, ekw, 0, "cpu")
        maps[f"eg_{n}"], cost[f"eg_{n}"] = sal, (sec, passes)
    zt, zh = features(exp, train, held, False)
    n_cells = zh[0].numel()
    draws = [  # 8 single draws per training epoch (other seeds)
        _saliency("c", dict(eg_kw, n_steps=1), train, model, ekw, k, "cpu")[0]
        for k in range(8)
    ]
    gt = torch.as_tensor(np.stack([d.get_data() for d in draws]) * n_cells)
    gh = torch.as_tensor(maps["eg_1"].get_data() * n_cells)
    zt2 = torch.cat([zt[None].expand(len(gt), *zt.shape), gt.float()], -1)
    zh2 = torch.cat([zh, gh.float()], -1)
    maps["denoise_1"] = exact_regression(eg_train, zt2, zh2, eg)
    cost["denoise_1"] = cost["eg_1"]
    areas, auroc = bg.score(held, model, train, truth, maps, lim, args.n_boot)
    cost.update({k: (0.0, 0.0) for k in maps if k not in cost})
    print(f"\n{ds}, morf, reference removal, {len(held)} epochs")
    print(bg.table(areas, cost, lim_passes, "morf", auroc))


if __name__ == "__main__":
    main()
