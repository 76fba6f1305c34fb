"""How much of the logit reaches the input under LRP, on real EEG (issue #31).

Usage (a few minutes on 2 cores)::

    nice python benchmarks/bench_lrp_share.py \
        --out benchmarks/results/lrp_share.json

Real EEG: EEGBCI subject 1 (``../shared/data/eegbci_S001``), runs 6, 10 and
14 (imagined both fists vs both feet), 4-s trials at 160 Hz, 64 channels, in
volts. An EEGNet (:func:`mne_freqmask.models.fit`, ``--max-epochs`` passes)
is trained per seed on 80 % of the trials; all 45 trials are explained
(the predicted class; the share is a property of the model and the data,
and 9 held-out trials are too few for fractions). For every epoch and
every LRP path the script records the **input share** (input relevance
summed over channels and times / the explained logit; for zennit's
``dft_lrp``, whose initial relevance is 1, the input relevance itself) and
the **absorbed** part (logit minus input relevance). For ``method="lrp"``
it also measures the absorbed relevance directly, per epoch, as the
relevance of every additive
constant (``lrp_batch(..., track_constants=True)`` on batches of one):
where the rules conserve, input + constants = logit, so the two measures
agree, and the absorbed part is where the logit went.

``--artifact A`` first plants a class-correlated frontal slow deflection
(:func:`mne_freqmask.datasets.simulated.plant_artifact`: 1-3 Hz on Fp1,
Fp2, AF7, AF8, amplitude ``A`` times the channels' median standard
deviation, in 90 % of the trials of class 1 and 10 % of class 0), as in
the artefact models of issue #31.

``--simulated`` runs the same on the test suite's simulated data instead
(:func:`~mne_freqmask.datasets.simulated.make_epochs`, 4 subjects, 25
epochs per class, alpha planted on C3/C4 in class "high"; the ``simulated``
fixture of ``tests/conftest.py``), explaining the held-out 20 %.

Printed and saved: per path, the median input share, the fraction of
epochs with a negative share, the fraction below
``mne_freqmask.lrp.MIN_SHARE`` (negative or tiny), the median absorbed
share, the largest gap between the two measures of what was absorbed (in
units of the logit), and the held-out accuracy of each model.
"""

import argparse
import json
import platform
import warnings
from pathlib import Path

import numpy as np
import torch

import mne_freqmask as mfm
from mne_freqmask.datasets.eegbci import load_epochs
from mne_freqmask.lrp import MIN_SHARE, lrp_batch, make_config
from mne_freqmask.models import fit

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eegbci_S001"

#: (label, explain kwargs)
PATHS = (
    ("lrp epsilon", dict(method="lrp", rule="epsilon")),
    ("lrp zplus", dict(method="lrp", rule="zplus")),
    ("lrp gamma", dict(method="lrp", rule="gamma")),
    ("dft_lrp epsilon_plus", dict(method="dft_lrp")),
)


def _summary(share, absorbed_share):
    return dict(
        n_epochs=int(len(share)),
        median_share=float(np.median(share)),
        q25_share=float(np.quantile(share, 0.25)),
        q75_share=float(np.quantile(share, 0.75)),
        frac_negative=float(np.mean(share < 0)),
        frac_below_min_share=float(np.mean(~(share >= MIN_SHARE))),
        median_absorbed=float(np.median(absorbed_share)),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--artifact", type=float, default=None)
    parser.add_argument("--simulated", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.simulated:
        from mne_freqmask.datasets.simulated import make_epochs

        epochs, _ = make_epochs(
            n_subjects=4, n_epochs_per_class=25, random_state=0, verbose=False
        )
    else:
        epochs = load_epochs(DATA, runs=(6, 10, 14), verbose=False)
    if args.artifact is not None:
        from mne_freqmask.datasets.simulated import plant_artifact

        epochs = plant_artifact(
            epochs,
            channels=("Fp1", "Fp2", "AF7", "AF8"),
            amplitude=args.artifact,
            verbose=False,
        )
    results = dict(
        data="simulated (make_epochs, 4 subjects, 25 per class)"
        if args.simulated
        else "EEGBCI S001 runs 6/10/14 (both fists vs both feet), 4 s, 160 Hz",
        artifact=args.artifact,
        n_epochs=len(epochs),
        torch=torch.__version__,
        machine=platform.machine(),
        models=[],
    )
    for seed in args.seeds:
        model, hist = fit(
            epochs,
            "eegnet",
            max_epochs=args.max_epochs,
            random_state=seed,
            verbose=False,
        )
        held = epochs[hist["val_idx"]] if args.simulated else epochs
        row = dict(seed=seed, accuracy=float(hist["val_accuracy"][-1]), paths={})
        print(
            f"seed {seed}: held-out accuracy {row['accuracy']:.3f} on "
            f"{len(hist['val_idx'])}; explaining {len(held)} trials"
        )
        for label, kw in PATHS:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sal = mfm.explain(held, model, bands="canonical", verbose=False, **kw)
            diag = sal.diagnostics
            share = np.asarray(diag["input_share"], float)
            if kw["method"] == "lrp":
                absorbed_share = np.asarray(diag["absorbed"]) / diag["logit"]
            else:
                absorbed_share = np.asarray(diag["absorbed"], float)
            res = _summary(share, absorbed_share)
            classes = held.events[:, 2]
            res["median_share_per_class"] = {
                str(c): float(np.median(share[classes == c]))
                for c in np.unique(classes)
            }
            res["warnings"] = sorted({type(w.message).__name__ for w in caught})
            if kw["method"] == "lrp":
                # the constants' relevance, measured per epoch (batches of one)
                x = torch.as_tensor(held.get_data(), dtype=torch.float32)
                cfg = make_config(kw["rule"])
                const = np.array(
                    [
                        lrp_batch(
                            model,
                            x[i : i + 1],
                            torch.as_tensor(diag["target"][i : i + 1]),
                            cfg,
                            track_constants=True,
                        ).absorbed
                        for i in range(len(x))
                    ]
                )
                gap = (const - np.asarray(diag["absorbed"])) / np.abs(diag["logit"])
                res["max_gap_constants_vs_absorbed"] = float(np.max(np.abs(gap)))
            row["paths"][label] = res
            print(
                f"  {label:22s} share median {res['median_share']:+.3f} "
                f"[{res['q25_share']:+.2f}, {res['q75_share']:+.2f}], "
                f"negative {res['frac_negative']:.0%}, below {MIN_SHARE:g} "
                f"{res['frac_below_min_share']:.0%}, absorbed median "
                f"{res['median_absorbed']:+.3f}"
                + (
                    f", |constants - absorbed| <= "
                    f"{res['max_gap_constants_vs_absorbed']:.1e} logit"
                    if "max_gap_constants_vs_absorbed" in res
                    else ""
                )
                + f"; per class {res['median_share_per_class']}"
                + f"; warnings {res['warnings']}"
            )
        results["models"].append(row)
    if args.out is not None:
        tmp = args.out.with_suffix(".part")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
