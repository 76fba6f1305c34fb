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
