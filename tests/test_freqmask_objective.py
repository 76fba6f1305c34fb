"""FreqMask's two objectives: the preservation mask (default) and expected
gradients (``objective="expected_gradients"``), on a hand-built model.

The model (:class:`Conjunction`) reads the amplitude of three channel x band
cells of its input's spectrum: class 1's logit is a *saturating conjunction*
of the amplitudes of two cells (A and B: both strong), plus a high gain on a
third cell (C) whose amplitude is tiny in every epoch. At an epoch of class 1
the conjunction is saturated, so an infinitesimal change of A or B moves the
output little while C's gain is large: amplitude gradients rank C first. Yet
replacing C by another epoch's (equally tiny) content changes nothing, and
replacing A or B by the content of an epoch where it is weak removes the
class: the finite effect that expected gradients integrate, and that the
distribution-preserving deletion curve scores.
"""

import inspect
import warnings

import mne
import numpy as np
import pytest

import mne_freqmask as mfm
from mne_freqmask import evaluation as ev

torch = pytest.importorskip("torch")

SFREQ, N_TIMES, BANDS = 100.0, 200, 4
CHS = ["C3", "C4", "Pz", "Oz"]
#: (channel, band) of the interacting cells and of the high-gain tiny cell
CELL_A, CELL_B, CELL_C = (0, 1), (1, 2), (2, 3)
STRONG, WEAK, TINY = 4.0, 0.25, 1e-3


class Conjunction(torch.nn.Module):
    """Logits ``[-l / 2, l / 2]``, ``l = 8 (s(A) s(B) - 0.5) + gain * C``,
    ``s(a) = sigmoid(6 log a)``: A, B and C are the mean amplitudes of the
    rfft bins of the three cells (threshold 1, between WEAK and STRONG)."""

    def __init__(self, gain=5.0):
        super().__init__()
        band = mfm.FrequencyGrid(SFREQ, N_TIMES, BANDS).bin_band
        for name, (_, b) in zip("abc", (CELL_A, CELL_B, CELL_C), strict=True):
            self.register_buffer(name, torch.as_tensor(np.asarray(band) == b))
        self.gain = gain

    def forward(self, x):
        amp = torch.fft.rfft(x, dim=-1).abs()

        def cell(cell, bins):
            return amp[:, cell[0]][:, bins].mean(-1)

        s = [
            torch.sigmoid(6 * torch.log(cell(c, m)))
            for c, m in ((CELL_A, self.a), (CELL_B, self.b))
        ]
        logit = 8 * (s[0] * s[1] - 0.5) + self.gain * cell(CELL_C, self.c)
        return torch.stack([-logit / 2, logit / 2], -1)


def _epochs(n_per_class, seed):
    """Class 1: A and B strong; class 0: one of them strong, the other weak
    (A in half the epochs, B in the others); C tiny everywhere; every other
    cell amplitude about 1, random phases."""
    rng = np.random.default_rng(seed)
    band = np.asarray(mfm.FrequencyGrid(SFREQ, N_TIMES, BANDS).bin_band)
    n = 2 * n_per_class
    y = np.repeat([0, 1], n_per_class)
    amp = rng.uniform(0.8, 1.2, (n, len(CHS), BANDS))
    weak = np.arange(n) % 2  # half the low epochs lack A, half B
    for i, (ch, b) in enumerate((CELL_A, CELL_B)):
        low = (y == 0) & (weak == i)
        amp[:, ch, b] = np.where(low, WEAK, STRONG) * rng.uniform(0.9, 1.1, n)
    amp[:, CELL_C[0], CELL_C[1]] = TINY * rng.uniform(0.5, 1.5, n)
    spec = amp[..., band] * np.exp(2j * np.pi * rng.random((n, len(CHS), len(band))))
    spec[..., 0] = spec[..., 0].real  # DC and Nyquist bins are real
    spec[..., -1] = spec[..., -1].real
    x = np.fft.irfft(spec, n=N_TIMES, axis=-1)
    info = mne.create_info(CHS, SFREQ, "eeg")
    events = np.column_stack([np.arange(n) * N_TIMES, np.zeros(n, int), y])
    return mne.EpochsArray(x, info, events, event_id=dict(low=0, high=1), verbose=False)


@pytest.fixture(scope="module")
def conj():
    """A test set (8 epochs a class), a reference (20 a class) and the
    hand-built model, which classifies them all."""
    torch.manual_seed(0)
    model = Conjunction().eval()
    test, ref = _epochs(8, 0), _epochs(20, 1)
    for ep in (test, ref):
        with torch.no_grad():
            pred = model(torch.as_tensor(ep.get_data(), dtype=torch.float32))
        assert (pred.argmax(1).numpy() == ep.events[:, 2]).all()
    return test, ref, model


def _cell_index(cell):
    return cell[0] * BANDS + cell[1]


def _top(sal, k):
    """Each epoch's ``k`` highest cells (flat channel x band indices)."""
    values = sal.get_data().reshape(len(sal), -1)
    return np.argsort(-values, axis=1, kind="stable")[:, :k]


def test_expected_gradients_rank_the_interaction_first(conj):
    test, ref, model = conj
    eg = mfm.explain(
        test,
        model,
        bands=BANDS,
        reference=ref,
        objective="expected_gradients",
        n_steps=32,
        verbose=False,
    )
    grads = mfm.explain(
        test, model, method="amplitude_gradients", bands=BANDS, verbose=False
    )
    pair = {_cell_index(CELL_A), _cell_index(CELL_B)}
    high = test.events[:, 2] == 1  # the class whose evidence is the conjunction
    # expected gradients: the two interacting cells first, in every epoch
    assert all(set(row) == pair for row in _top(eg, 2)[high])
    # amplitude gradients: the high-gain tiny cell first, in every epoch
    assert (_top(grads, 1)[:, 0] == _cell_index(CELL_C)).all()
    assert not any(set(row) == pair for row in _top(grads, 2))
    # and the deletion curve agrees with expected gradients: under the
    # distribution-preserving removal (donors from the reference) their map
    # removes more of the probability than amplitude gradients'; under
    # zeroing, the limit's ranking (each cell once) removes at least as much
    # as either
    fractions = (0.0, 0.0625, 0.125, 0.25, 0.5)

    def area(sal, operator):
        curves = ev.deletion_curves(
            test,
            model,
            sal,
            level="instance",
            fractions=fractions,
            curves=("deletion",),
            operator=operator,
            reference=ref if operator == "reference" else None,
            n_boot=0,
            random_state=0,
            verbose=False,
        )
        return curves.attrs["deletion_auc_probability"]

    a_eg, a_grads = area(eg, "reference"), area(grads, "reference")
    assert a_eg < a_grads - 0.05, (a_eg, a_grads)
    lim = ev.deletion_limit(test, model, BANDS, fractions=fractions)
    for row in lim.get_data().reshape(len(test), -1):
        assert np.array_equal(np.sort(row), np.arange(1, len(CHS) * BANDS + 1))
    a_lim, a_eg, a_grads = (area(s, "zero") for s in (lim, eg, grads))
    assert a_lim <= min(a_eg, a_grads) + 1e-6, (a_lim, a_eg, a_grads)


def test_expected_gradients_parameters_and_summary(conj):
    """Its own default of draws, recorded resolved; only the parameters that
    apply; the diagnostics and the repr say draws; a moot parameter is
    refused, naming the fix. The preservation objective keeps its 300."""
    from mne_freqmask.methods.freqmask import DEFAULT_STEPS, EG_PARAMS, _check_params

    test, ref, model = conj
    sal = mfm.explain(
        test[:2],
        model,
        bands=BANDS,
        reference=ref,
        objective="expected_gradients",
        verbose=False,
    )
    assert DEFAULT_STEPS == {"preserve": 300, "expected_gradients": 100}
    assert sal.method_params["target"] == "prediction"  # explain's, as bands
    params = {
        k: v for k, v in sal.method_params.items() if k not in ("bands", "target")
    }
    assert params == dict(
        objective="expected_gradients",
        n_steps=100,
        perturbation="reference",
        n_donors=256,
    )
    assert set(params) == set(EG_PARAMS)
    assert sal.provenance["method_params"]["n_steps"] == 100
    assert set(sal.diagnostics) == {"n_draws", "explained_class"}
    assert (sal.diagnostics["n_draws"] == 100).all()
    assert "draws: median 100 (max 100)" in repr(sal)
    assert "steps" not in repr(sal)
    # the preservation objective: n_steps=None is its 300 steps, and its
    # parameters say which objective made the map (a map re-explained from
    # its method_params keeps it, whatever the default)
    keys = inspect.signature(_check_params).parameters
    from mne_freqmask.methods.freqmask import freqmask

    defaults = {k: p.default for k, p in inspect.signature(freqmask).parameters.items()}
    pres = _check_params(**{k: defaults[k] for k in keys})
    assert pres["n_steps"] == 300 and pres["objective"] == "preserve"
    assert {"lr", "min_steps", "patience", "stopping"} <= set(pres)
    for bad, name in (
        (dict(lr=0.1), "lr"),
        (dict(min_steps=3, tol=0.1), "min_steps, tol"),
    ):
        with pytest.raises(ValueError, match=f"so {name} do(es)? not apply"):
            mfm.explain(
                test[:2],
                model,
                bands=BANDS,
                objective="expected_gradients",
                verbose=False,
                **bad,
            )


def test_explain_files_never_reuses_another_objectives_map(conj, tmp_path):
    """explain_files skips a map only when its fingerprint is this run's:
    the objective and the resolved number of draws are part of it."""
    import os

    test, _, model = conj
    fname = tmp_path / "sub-1-epo.fif"
    test.save(fname, verbose=False)
    out_dir = tmp_path / "sal"
    out_dir.mkdir()
    kw = dict(bands=BANDS, threads=1, verbose=False)
    (out,) = mfm.explain_files([fname], model, out_dir, n_steps=4, **kw)
    assert mfm.read_saliency(out).method_params["objective"] == "preserve"
    eg = dict(kw, objective="expected_gradients")
    with pytest.raises(ValueError, match="parameter objective"):
        mfm.explain_files([fname], model, out_dir, **eg)
    mfm.explain_files([fname], model, out_dir, overwrite=True, **eg)
    sal = mfm.read_saliency(out)
    assert sal.method_params["objective"] == "expected_gradients"
    assert sal.method_params["n_steps"] == 100
    direct = mfm.explain(test, model, bands=BANDS, objective="expected_gradients")
    np.testing.assert_allclose(sal.get_data(), direct.get_data(), atol=1e-6)
    # the default given explicitly is the same run: skipped, left as it was
    mtime = os.stat(out).st_mtime_ns
    mfm.explain_files([fname], model, out_dir, n_steps=100, **eg)
    assert os.stat(out).st_mtime_ns == mtime
    # other draws are another run
    with pytest.raises(ValueError, match=r"parameter n_steps \(100 -> 50\)"):
        mfm.explain_files([fname], model, out_dir, n_steps=50, **eg)


def test_cli_objective_option(conj, tmp_path, capsys):
    """--objective is a method option like --n-steps (one translation of the
    options), and the summary says draws."""
    from mne_freqmask.cli import main

    test, _, model = conj
    epo, pt, h5 = tmp_path / "x-epo.fif", tmp_path / "m.pt", tmp_path / "s.h5"
    test.save(epo, verbose=False)
    x = torch.as_tensor(test.get_data()[:2], dtype=torch.float32)
    with warnings.catch_warnings():  # torch 2.14 deprecates TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(model, x), pt)
    argv = ["explain", str(epo), str(pt), "--bands", str(BANDS), "--out", str(h5)]
    argv += ["--objective", "expected_gradients", "--n-steps", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "draws: median 8 (max 8)" in out
    sal = mfm.read_saliency(h5)
    assert sal.method_params["objective"] == "expected_gradients"
    assert sal.method_params["n_steps"] == 8
    direct = mfm.explain(
        test,
        model,
        bands=BANDS,
        objective="expected_gradients",
        n_steps=8,
        verbose=False,
    )
    np.testing.assert_allclose(sal.get_data(), direct.get_data(), atol=1e-6)
    clash = ["--param", "objective=preserve", "--overwrite"]
    assert main([*argv, *clash]) == 2
    assert "--objective and --param objective= differ" in capsys.readouterr().err


def test_report_shows_evidence_for_and_against(conj, tmp_path):
    """A signed map's report ranks the cells of evidence for the explained
    class and against it. Low epochs that lack A: A's absence is the
    evidence for "low" (filled from other epochs, mostly with A strong, it
    raises "high"); B, strong, is half the conjunction, evidence against
    "low" (filled with a weak B from other epochs, "low" grows)."""
    from mne_freqmask._report import top_cells
    from mne_freqmask.viz import add_saliency_to_report

    test, ref, model = conj
    lacks_a = test[np.flatnonzero(test.events[:, 2] == 0)[::2]]
    sal = mfm.explain(
        lacks_a,
        model,
        bands=BANDS,
        reference=ref,
        objective="expected_gradients",
        n_steps=32,
        y=np.zeros(len(lacks_a), int),
        verbose=False,
    )
    group = sal.average()
    (a,) = top_cells(group, n=1)
    (b,) = top_cells(group, n=1, against=True)
    assert (a["channel"], a["band"]) == (CHS[CELL_A[0]], group.band_names[CELL_A[1]])
    assert (b["channel"], b["band"]) == (CHS[CELL_B[0]], group.band_names[CELL_B[1]])
    assert a["value"] > 0 > b["value"]
    # every cell ranked against the class is below 0, and once
    against = top_cells(group, n=group.get_data().size, against=True)
    assert all(c["value"] < 0 for c in against)
    assert len({(c["channel"], c["band"]) for c in against}) == len(against)

    def report_html(saliency, name):
        report = add_saliency_to_report(mne.Report(verbose=False), saliency)
        report.save(tmp_path / name, open_browser=False, verbose=False)
        return (tmp_path / name).read_text()

    html = report_html(sal, "eg.html")
    assert "For the class" in html
    for_part, against_part = html.split("Against the class")
    assert f"<td>1</td><td>{a['channel']} {a['band']}</td>" in for_part
    assert f"<td>1</td><td>{b['channel']} {b['band']}</td>" in against_part
    # an unsigned map has no such section
    grads = mfm.explain(
        lacks_a, model, method="amplitude_gradients", bands=BANDS, verbose=False
    )
    assert "Against the class" not in report_html(grads, "grads.html")
