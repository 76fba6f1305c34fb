"""Shared test configuration: non-interactive plots, no figure leaks, fixtures."""

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

#: Real EEG shared beside the repository (never copied into it).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="session")
def torch_threads():
    """Pin torch to the machine's cores (CI has 2)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    return torch


#: channels of the burst simulation (C3 / C4 carry the burst)
BURST_CHS = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "P4"]


@pytest.fixture(scope="session")
def burst_simulated(torch_threads):
    """Epochs whose class is a 20 Hz burst at 0.5-1.0 s on C3/C4 under a
    stronger alpha present all the time, and a small EEGNet trained on them
    (about 10 s, on one thread: the data are tiny, and two threads on a
    loaded 2-core machine ran it 10 times slower). Shared by the short-time
    test modules. Returns (epochs, truth, model, history)."""
    from mne_freqmask.datasets.simulated import make_epochs
    from mne_freqmask.models import fit

    n_threads = torch_threads.get_num_threads()
    torch_threads.set_num_threads(1)
    try:
        epochs, truth = make_epochs(
            n_subjects=2,
            n_epochs_per_class=40,
            ch_names=BURST_CHS,
            band=(18.0, 22.0),
            burst=dict(),
            random_state=0,
        )
        model, history = fit(epochs, "eegnet", max_epochs=30, random_state=0)
    finally:
        torch_threads.set_num_threads(n_threads)
    assert history["val_accuracy"][-1] >= 0.75, "the burst model did not learn"
    return epochs, truth, model, history


@pytest.fixture(scope="session")
def simulated(torch_threads):
    """Simulated epochs with alpha planted on C3/C4, and a trained EEGNet.

    Returns (epochs, truth, model, history); ``history["val_idx"]`` are the
    held-out epochs.
    """
    from mne_freqmask.datasets.simulated import make_epochs
    from mne_freqmask.models import fit

    epochs, truth = make_epochs(n_subjects=4, n_epochs_per_class=25, random_state=0)
    model, history = fit(epochs, "eegnet", max_epochs=40, random_state=0)
    assert history["val_accuracy"][-1] > 0.9, "the simulated model did not learn"
    return epochs, truth, model, history


@pytest.fixture(scope="session")
def eegmat_epochs():
    """Mental arithmetic (rest vs task), 12 subjects, 1-40 Hz, 128 Hz."""
    folder = SHARED_DATA / "eegmat"
    if not folder.is_dir():
        pytest.skip(f"Real data folder {folder} is absent (see shared/data/README.md)")
    from mne_freqmask.datasets import eegmat

    return eegmat.load_epochs(folder, resample=128.0, l_freq=1.0, h_freq=40.0)
