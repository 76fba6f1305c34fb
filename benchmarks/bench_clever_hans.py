"""clever_hans_test on real EEG with a planted ocular Clever Hans.

EEGBCI subject 1 (``../shared/data/eegbci_S001``), imagined both fists vs
both feet (runs 6, 10, 14) at 80 Hz, each 4 s trial cut into two 2 s
windows; 40 % of the trials held out (both windows together). The artefact
model is trained on a copy where a 1-3 Hz deflection
(:func:`mne_freqmask.datasets.simulated.plant_artifact`, ``amplitude`` times
the channels' median standard deviation) was added to Fp1/Fpz/Fp2/AF7/AF8
in 90 % of the feet windows and 10 % of the fists windows; the clean model
on the original windows.

The truth of each artefact model: how much its mean true-class probability
on the held-out windows drops when the planted deflection is removed exactly
(the same windows without it). A clean model has no planted artefact.

Each model is tested three ways, as the docs show them, all with
``groups="trial"``: the default call (all frontal channels, 0-4 Hz), the
named channels (the five planted ones) and the named channels with
``removal="reference"``.

Run (about 1-2 minutes per model on one busy core)::

    PYTHONPATH=. nice python benchmarks/bench_clever_hans.py \
        --model shallowfbcspnet --seeds 0 1 2

``--previous FILE`` also runs the ``clever_hans_test`` of another version of
``mne_freqmask/evaluation/counterfactual.py`` on the same models (e.g.
``git show b98169b:mne_freqmask/evaluation/counterfactual.py > old.py``,
the version before issue #31; called as it was, without ``groups``).
"""

import argparse
import time
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import torch

from mne_freqmask.datasets import eegbci
from mne_freqmask.datasets.simulated import plant_artifact
from mne_freqmask.evaluation import clever_hans_test
from mne_freqmask.models import fit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eegbci_S001"
EYE = ["Fp1", "Fpz", "Fp2", "AF7", "AF8"]


def windows():
    ep = eegbci.load_epochs(DATA, runs=(6, 10, 14), resample=80.0, verbose=False)
    x, n = ep.get_data(), len(ep.times) // 2
    trial = np.tile(np.arange(len(ep)), 2)
    events = np.tile(ep.events, (2, 1))
    events[:, 0] = np.arange(len(events)) * n
    return mne.EpochsArray(
        np.concatenate([x[..., :n], x[..., n : 2 * n]]),
        ep.info,
        events=events,
        event_id=ep.event_id,
        metadata=pd.DataFrame(dict(trial=trial)),
        verbose=False,
    )


def true_class_prob(model, epochs):
    from mne_freqmask._inputs import epochs_labels

    y = epochs_labels(epochs)
    x = torch.as_tensor(epochs.get_data(), dtype=torch.float32)
    with torch.no_grad():
        p = torch.softmax(model.eval()(x), 1).numpy()
    return p[np.arange(len(y)), y], p.argmax(1) == y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="shallowfbcspnet")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--amplitude", type=float, default=2.0)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--kinds", nargs="+", default=["clean", "artefact"])
    parser.add_argument("--previous", default=None)
    args = parser.parse_args()
    previous = None
    if args.previous:
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "mne_freqmask.evaluation._previous", args.previous
        )
        previous = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(previous)
    torch.set_num_threads(1)
    mne.set_log_level("ERROR")
    wins = windows()
    trial = wins.metadata["trial"].to_numpy()
    art = plant_artifact(
        wins,
        channels=EYE,
        band=(1.0, 3.0),
        amplitude=args.amplitude,
        probability=0.9,
        target=1,
        verbose=False,
    )
    calls = {
        "default": dict(),
        "named": dict(channels=EYE),
        "named+reference": dict(channels=EYE, removal="reference"),
    }
    rows = []
    for seed in args.seeds:
        for kind, data in (("clean", wins), ("artefact", art)):
            if kind not in args.kinds:
                continue
            t0 = time.time()
            model, hist = fit(
                data,
                args.model,
                groups=trial,
                val_size=0.4,
                max_epochs=args.max_epochs,
                lr=args.lr,
                random_state=seed,
                verbose=False,
            )
            held = data[hist["val_idx"]]
            p_orig, ok = true_class_prob(model, held)
            truth = np.nan
            if kind == "artefact":
                p_clean, _ = true_class_prob(model, wins[hist["val_idx"]])
                truth = float((p_orig - p_clean).mean())
            row = dict(
                model=args.model,
                seed=seed,
                kind=kind,
                accuracy=float(ok.mean()),
                truth_drop=truth,
                fit_s=time.time() - t0,
            )
            for name, kw in calls.items():
                res = clever_hans_test(
                    held, model, groups="trial", random_state=seed, verbose=False, **kw
                )
                pc = res.per_class
                row[name] = (
                    "at chance"
                    if res.at_chance
                    else res.verdict.split(" (")[0].split(":")[0]
                )
                row[f"{name}_classes"] = ",".join(res.relies_classes)
                row[f"{name}_suspect"] = float(pc.loc["all", "suspect_drop"])
                row[f"{name}_control"] = float(pc.loc["all", "control_drop"])
                row[f"{name}_excess"] = float(pc.loc["all", "excess_drop"])
                if previous is not None:
                    old = previous.clever_hans_test(
                        held, model, random_state=seed, verbose=False, **kw
                    )
                    row[f"{name}_previous"] = old.verdict.split(" (")[0]
                    row[f"{name}_previous_controls"] = ",".join(
                        old.control_channels["delta"]
                    )
            rows.append(row)
            print(pd.Series(row).to_string(), flush=True)
    table = pd.DataFrame(rows)
    cols = ["model", "seed", "kind", "accuracy", "truth_drop"] + list(calls)
    if previous is not None:
        cols += [f"{name}_previous" for name in calls]
    print(table[cols].to_string(index=False, float_format="%.2f"))


if __name__ == "__main__":
    main()
