"""Simulated epochs with a planted, known answer.

Two classes differ only in the power of one frequency band on a few channels
(the *planted cells*); everything else is subject-specific 1/f background noise.
A model that classifies these epochs can only have learned the planted cells,
so an explanation can be scored against them. Optionally a class-correlated
ocular artefact (slow, large deflections on frontal-polar channels) is added, to
build a "Clever Hans" model.
"""

from dataclasses import dataclass

import numpy as np
from mne import EpochsArray, create_info
from mne.utils import _validate_type, check_random_state, logger, verbose

from mne_freqmask.utils._checks import _standard_montage
from mne_freqmask.utils._docs import fill_doc

#: The 19 channels of the 10-20 system used by default.
CH_NAMES_1020 = "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2".split()


@dataclass(frozen=True)
class PlantedTruth:
    """Where the class information was planted.

    Parameters
    ----------
    channels : tuple of str
        Channels that carry the class-dependent band power.
    band : tuple of float
        ``(fmin, fmax)`` of the planted band in Hz.
    """

    channels: tuple
    band: tuple

    @fill_doc
    def cells(self, ch_names, band_edges):
        """Boolean ``(n_channels, n_bands)`` mask of the planted cells.

        A cell is planted when its channel is a planted channel and its band
        overlaps the planted band by at least half of the smaller of the two.

        Parameters
        ----------
        %(planted_cells)s

        Returns
        -------
        cells : ndarray of bool, shape (n_channels, n_bands)
            True on planted cells.
        """
        band_hit = _half_overlap(band_edges, *self.band)
        chan_hit = np.isin(np.asarray(ch_names), self.channels)
        return chan_hit[:, None] & band_hit[None, :]


@dataclass(frozen=True)
class PlantedBurst(PlantedTruth):
    """Where a class-dependent burst was planted, in channels, band and time.

    Parameters
    ----------
    channels : tuple of str
        Channels that carry the burst.
    band : tuple of float
        ``(fmin, fmax)`` of the burst in Hz.
    times : tuple of float
        ``(tmin, tmax)`` of the burst in seconds (the epochs' times).
    """

    times: tuple = (0.5, 1.0)

    @fill_doc
    def cells(self, ch_names, band_edges, window_edges=None):
        """Boolean mask of the planted cells.

        A window is planted when it overlaps the burst by at least half of the
        shorter of the two (the rule of the bands, see
        :meth:`PlantedTruth.cells`).

        Parameters
        ----------
        %(planted_cells)s
        window_edges : array-like, shape (n_windows, 2) | None
            ``(start, stop)`` of each window in seconds (e.g.
            ``ShortTimeGrid.window_edges``); None gives the whole-epoch
            ``(n_channels, n_bands)`` mask.

        Returns
        -------
        cells : ndarray of bool, shape (n_channels, n_bands[, n_windows])
            True on planted cells.
        """
        cells = super().cells(ch_names, band_edges)
        if window_edges is None:
            return cells
        win_hit = _half_overlap(window_edges, *self.times)
        return cells[:, :, None] & win_hit[None, None, :]


@dataclass(frozen=True)
class PlantedInteraction(PlantedTruth):
    """Cells whose conjunction defines the class (``make_epochs(interaction=)``).

    Parameters
    ----------
    channels : tuple of str
        The channel of each interacting cell.
    band : tuple of float
        ``(fmin, fmax)`` of the first cell (as :class:`PlantedTruth`).
    bands : tuple of tuple of float
        ``(fmin, fmax)`` of each cell, in the order of ``channels``.
    """

    bands: tuple = ()

    def cells(self, ch_names, band_edges):
        """Boolean ``(n_channels, n_bands)`` mask of the interacting cells.

        Cell ``i`` is channel ``channels[i]`` in the bands that overlap
        ``bands[i]`` by at least half (the rule of :meth:`PlantedTruth.cells`).

        Parameters
        ----------
        ch_names : list of str
            Channel names (rows).
        band_edges : array-like, shape (n_bands, 2)
            Band edges in Hz (columns).

        Returns
        -------
        cells : ndarray of bool, shape (n_channels, n_bands)
            True on the interacting cells.
        """
        names = np.asarray(ch_names)
        out = np.zeros((len(names), len(np.reshape(band_edges, (-1, 2)))), bool)
        for ch, band in zip(self.channels, self.bands, strict=True):
            out |= (names == ch)[:, None] & _half_overlap(band_edges, *band)[None, :]
        return out


def _half_overlap(edges, lo, hi):
    """Whether each ``(start, stop)`` overlaps ``(lo, hi)`` by half the shorter."""
    edges = np.asarray(edges, float).reshape(-1, 2)
    overlap = np.clip(
        np.minimum(edges[:, 1], hi) - np.maximum(edges[:, 0], lo), 0, None
    )
    return overlap >= 0.5 * np.minimum(edges[:, 1] - edges[:, 0], hi - lo)


def _band_noise(rng, shape, sfreq, fmin, fmax):
    """Unit-variance Gaussian noise restricted to ``fmin <= f <= fmax``."""
    n_times = shape[-1]
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    spec[..., (freqs < fmin) | (freqs > fmax)] = 0
    out = np.fft.irfft(spec, n=n_times, axis=-1)
    return out / out.std(axis=-1, keepdims=True)


def _pink_noise(rng, shape, sfreq):
    """1/f (pink) noise with unit variance per row, DC removed."""
    n_times = shape[-1]
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    weight = np.zeros_like(freqs)
    weight[1:] = 1.0 / np.sqrt(np.maximum(freqs[1:], 1.0))
    out = np.fft.irfft(spec * weight, n=n_times, axis=-1)
    return out / out.std(axis=-1, keepdims=True)


def _options(given, defaults, name):
    """``defaults`` updated with ``given`` (a dict; None gives None), unknown
    keys refused."""
    _validate_type(given, (None, dict), name)
    if given is None:
        return None
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(
            f"Unknown {name} keys {sorted(unknown)}; use {sorted(defaults)}."
        )
    return {**defaults, **given}


def _check_channels(channels, ch_names, what, where="ch_names"):
    missing = sorted(set(channels) - set(ch_names))
    if missing:
        raise ValueError(f"{what} channels {missing} are not in {where}.")
    return [list(ch_names).index(ch) for ch in channels]


def _check_band(band, nyq, what):
    if not 0 <= band[0] < band[1] <= nyq:
        raise ValueError(
            f"{what} must satisfy 0 <= fmin < fmax <= {nyq}, got {tuple(band)}."
        )


def _add_blinks(rng, x, is_target, probability, idx, band, sfreq, amplitude):
    """Slow deflections (noise in ``band``) on channels ``idx`` of a share
    ``probability`` of the epochs where ``is_target``, ``1 - probability`` of
    the others; ``x`` is changed in place. Returns which epochs got one."""
    p = np.where(is_target, probability, 1 - probability)
    flag = rng.uniform(size=len(x)) < p
    blink = _band_noise(rng, (len(x), 1, x.shape[-1]), sfreq, *band)
    x[np.ix_(flag, idx)] += amplitude * blink[flag]
    return flag


@verbose
@fill_doc
def make_epochs(
    n_subjects=4,
    n_epochs_per_class=40,
    *,
    sfreq=128.0,
    n_times=256,
    ch_names=CH_NAMES_1020,
    channels=("C3", "C4"),
    band=(8.0, 12.0),
    effect=1.5,
    noise=10e-6,
    subject_variability=0.3,
    artifact=None,
    distractor=None,
    burst=None,
    interaction=None,
    random_state=0,
    verbose=None,
):
    """Simulate two-class epochs with class-dependent band power.

    Class ``"high"`` has ``effect`` times more power in ``band`` on ``channels``
    than class ``"low"``; both share subject-specific 1/f background noise.

    Parameters
    ----------
    n_subjects : int
        Number of simulated subjects (each with its own channel gains, noise
        level and planted peak frequency).
    n_epochs_per_class : int
        Epochs per class and subject.
    sfreq : float
        Sampling frequency in Hz.
    n_times : int
        Samples per epoch.
    ch_names : list of str
        Channel names; positions come from MNE's 10-05 template montage
        (names it does not know get no position).
    channels : tuple of str
        Channels that carry the class information (the planted channels).
    band : tuple of float
        ``(fmin, fmax)`` of the planted band in Hz.
    effect : float
        Amplitude (standard deviation, relative to the background) of the
        planted rhythm in class ``"high"``; class ``"low"`` gets a third of it.
    noise : float
        Standard deviation of the background in volts.
    subject_variability : float
        Relative spread of per-subject gains and planted peak frequency.
    artifact : None | dict
        If a dict, a class-correlated ocular artefact is added: keys
        ``channels`` (default ``("Fp1", "Fp2")``), ``band`` (default
        ``(0.5, 3.0)`` Hz), ``amplitude`` (default ``4.0``, relative to the
        background) and ``probability`` (default ``0.9``: the fraction of
        class-``"high"`` epochs that carry it; class ``"low"`` epochs get it with
        probability ``1 - probability``).
    distractor : None | dict
        If a dict, a class-independent rhythm stronger than the planted one is
        added, so that band power alone points to the wrong cells: keys
        ``channels`` (default ``("O1", "O2", "P3", "Pz", "P4")``), ``band``
        (default ``(8.0, 12.0)`` Hz) and ``amplitude`` (default ``3.0``,
        relative to the background). Each epoch draws its own amplitude,
        uniform between 0.5 and 1.5 times ``amplitude``, whatever its class.
    burst : None | dict
        If a dict, the class effect is a burst in time: the planted rhythm
        (``band`` on ``channels``, amplitude ``effect`` in class ``"high"``,
        a third of it in ``"low"``) is present only between ``tmin`` and
        ``tmax`` seconds after the epoch's onset (cosine ramps of a quarter
        of the burst at each end, its standard deviation within the burst
        as without ``burst``), under a class-independent rhythm on the same
        channels present all the time. Keys: ``tmin`` (default ``0.5``),
        ``tmax`` (default ``1.0``), ``alpha_band`` (default ``(8.0, 12.0)``
        Hz) and ``alpha`` (default ``3.0``: its amplitude relative to the
        background, stronger than the burst; each epoch draws its own,
        uniform between 0.5 and 1.5 times it). Pass ``band=(18.0, 22.0)``
        for a 20 Hz (beta) burst. The truth is then a :class:`PlantedBurst`.
        Default None: the effect lasts the whole epoch, as before.
    interaction : None | dict
        If a dict, the class is a conjunction of two cells instead of the
        power of one band: class ``"high"`` carries a rhythm of amplitude
        ``effect`` in both cells, class ``"low"`` in one of them only (each in
        half of the ``"low"`` epochs), the other at a third of it. A cell's
        power alone then says little (it is strong in three quarters of the
        epochs); only the two together decide. Keys ``channels`` (default
        ``("C3", "C4")``: the channel of each cell) and ``bands`` (default
        ``((20.0, 25.0), (7.0, 12.0))`` Hz: the band of each cell);
        ``channels`` and ``band`` of the function are then unused. The truth
        is a :class:`PlantedInteraction`. Combine with ``distractor`` for a
        strong class-independent rhythm.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    epochs : instance of mne.EpochsArray
        The epochs (EEG, volts), with ``event_id={"low": 1, "high": 2}`` and
        metadata columns ``subject``, ``label`` and ``artifact``.
    truth : PlantedTruth | PlantedBurst
        The planted channels and band (and times, for a burst);
        ``truth.cells(ch_names, band_edges)`` gives the boolean channel x band
        mask (``PlantedBurst.cells`` also takes the windows).
    """
    _validate_type(burst, (None, dict), "burst")
    bur = _check_burst(burst, n_times / sfreq, sfreq)
    inter = _check_interaction(interaction, ch_names, sfreq / 2)
    if inter is not None:
        if bur is not None:
            raise ValueError("interaction and burst cannot be combined; pick one.")
        channels, band = inter["channels"][:1], inter["bands"][0]
    ch_names = list(ch_names)
    plant_idx = _check_channels(channels, ch_names, "Planted")
    nyq = sfreq / 2
    _check_band(band, nyq, "band")
    rng = check_random_state(random_state)
    n_ch = len(ch_names)
    art = _options(
        artifact,
        dict(channels=("Fp1", "Fp2"), band=(0.5, 3.0), amplitude=4.0, probability=0.9),
        "artifact",
    )
    if art is not None:
        art_idx = [ch_names.index(ch) for ch in art["channels"]]
    dis = _options(
        distractor,
        dict(channels=("O1", "O2", "P3", "Pz", "P4"), band=(8.0, 12.0), amplitude=3.0),
        "distractor",
    )
    if dis is not None:
        dis_idx = _check_channels(dis["channels"], ch_names, "Distractor")
    data, labels, subjects, has_art = [], [], [], []
    width = band[1] - band[0]
    for subject in range(n_subjects):
        gains = 1 + subject_variability * rng.uniform(-1, 1, n_ch)
        shift = subject_variability * width * 0.25 * rng.uniform(-1, 1)
        lo = max(band[0] + shift, 0.0)
        hi = min(band[1] + shift, nyq)
        n = 2 * n_epochs_per_class
        y = np.repeat([0, 1], n_epochs_per_class)
        x = _pink_noise(rng, (n, n_ch, n_times), sfreq)
        amp = np.where(y == 1, effect, effect / 3.0)
        rhythm = _band_noise(rng, (n, len(plant_idx), n_times), sfreq, lo, hi)
        if inter is not None:  # the conjunction: both cells strong in "high"
            amp = np.full((n, 2), effect)
            weak = rng.permutation(np.arange(n_epochs_per_class) % 2)
            amp[np.flatnonzero(y == 0), weak] = effect / 3.0
            for i, (ch, (flo, fhi)) in enumerate(
                zip(inter["channels"], inter["bands"], strict=True)
            ):
                cell = _band_noise(
                    rng, (n, 1, n_times), sfreq, flo + shift, fhi + shift
                )
                x[:, [ch_names.index(ch)]] += amp[:, i, None, None] * cell
            amp, rhythm = np.zeros(n), np.zeros_like(rhythm)
        if bur is not None:
            rhythm = rhythm * bur["envelope"]
            a_amp = bur["alpha"] * rng.uniform(0.5, 1.5, n)
            a_rhythm = _band_noise(
                rng, (n, len(plant_idx), n_times), sfreq, *bur["alpha_band"]
            )
            x[:, plant_idx] += a_amp[:, None, None] * a_rhythm
        x[:, plant_idx] += amp[:, None, None] * rhythm
        flag = np.zeros(n, bool)
        if art is not None:
            flag = _add_blinks(
                rng, x, y == 1, art["probability"], art_idx, art["band"], sfreq,
                art["amplitude"],
            )  # fmt: skip
        if dis is not None:
            d_amp = dis["amplitude"] * rng.uniform(0.5, 1.5, n)
            d_rhythm = _band_noise(rng, (n, len(dis_idx), n_times), sfreq, *dis["band"])
            x[:, dis_idx] += d_amp[:, None, None] * d_rhythm
        x *= gains[None, :, None] * noise
        data.append(x)
        labels.append(y)
        subjects.append(np.full(n, subject))
        has_art.append(flag)
    data = np.concatenate(data)
    labels = np.concatenate(labels)
    info = create_info(ch_names, sfreq, "eeg")
    info.set_montage(_standard_montage(), on_missing="ignore")
    events = np.column_stack(
        [np.arange(len(data)) * n_times, np.zeros(len(data), int), labels + 1]
    )
    import pandas as pd

    metadata = pd.DataFrame(
        dict(
            subject=np.concatenate(subjects),
            label=labels,
            artifact=np.concatenate(has_art),
        )
    )
    epochs = EpochsArray(
        data,
        info,
        events=events,
        event_id=dict(low=1, high=2),
        metadata=metadata,
        verbose=False,
    )
    logger.info(
        f"Simulated {len(epochs)} epochs ({n_subjects} subjects), planted "
        f"{band[0]}-{band[1]} Hz on {', '.join(channels)}."
    )
    band = (float(band[0]), float(band[1]))
    if inter is not None:
        return epochs, PlantedInteraction(
            tuple(inter["channels"]), band, tuple(inter["bands"])
        )
    if bur is not None:
        times = (float(bur["tmin"]), float(bur["tmax"]))
        return epochs, PlantedBurst(tuple(channels), band, times)
    return epochs, PlantedTruth(tuple(channels), band)


def _check_interaction(interaction, ch_names, nyq):
    """The interacting cells' channels and bands, checked (None: no interaction)."""
    defaults = dict(channels=("C3", "C4"), bands=((20.0, 25.0), (7.0, 12.0)))
    out = _options(interaction, defaults, "interaction")
    if out is None:
        return None
    out["channels"] = tuple(out["channels"])
    out["bands"] = tuple((float(lo), float(hi)) for lo, hi in out["bands"])
    if len(out["channels"]) != 2 or len(out["bands"]) != 2:
        raise ValueError(
            "interaction needs two cells: two channels and two (fmin, fmax) "
            f"bands, got {out['channels']} and {out['bands']}."
        )
    _check_channels(out["channels"], ch_names, "Interaction")
    for band in out["bands"]:
        _check_band(band, nyq, "Interaction bands")
    return out


def _check_burst(burst, duration, sfreq):
    """The burst's parameters, with its envelope over the epoch's samples."""
    defaults = dict(tmin=0.5, tmax=1.0, alpha=3.0, alpha_band=(8.0, 12.0))
    out = _options(burst, defaults, "burst")
    if out is None:
        return None
    if not 0 <= out["tmin"] < out["tmax"] <= duration:
        raise ValueError(
            f"burst needs 0 <= tmin < tmax <= {duration} s (the epoch), got "
            f"tmin={out['tmin']}, tmax={out['tmax']}."
        )
    t = np.arange(int(round(duration * sfreq))) / sfreq
    ramp = (out["tmax"] - out["tmin"]) / 4
    rise = np.clip((t - out["tmin"]) / ramp, 0, 1)
    fall = np.clip((out["tmax"] - t) / ramp, 0, 1)
    env = np.sin(0.5 * np.pi * np.minimum(rise, fall)) ** 2
    # as strong within the burst as the whole-epoch rhythm is over the epoch
    out["envelope"] = env / np.sqrt(np.mean(env[env > 0] ** 2))
    return out


@verbose
@fill_doc
def plant_artifact(
    epochs,
    *,
    channels=("Fp1", "Fp2"),
    band=(1.0, 3.0),
    amplitude=2.0,
    probability=0.9,
    target=1,
    y=None,
    random_state=0,
    verbose=None,
):
    """Add a class-correlated ocular artefact to (real) epochs, on a copy.

    A slow deflection, Gaussian noise band-limited to ``band``, common to
    ``channels``, is added to a fraction ``probability`` of the epochs of
    class ``target`` and to a fraction ``1 - probability`` of the others, so
    that a model can learn the class from it: a "Clever Hans" made to order,
    on real data (the same artefact as ``make_epochs(artifact=...)``).

    Parameters
    ----------
    epochs : mne.Epochs
        The epochs; never modified.
    channels : list of str
        Channels that get the artefact (same waveform on all of them).
    band : tuple of float
        ``(fmin, fmax)`` of the artefact in Hz.
    amplitude : float
        Standard deviation of the artefact relative to the median standard
        deviation of ``channels`` over the epochs.
    probability : float
        Share of the epochs of class ``target`` that carry it (the others
        carry it with probability ``1 - probability``).
    target : int
        Class index (see :func:`mne_freqmask.explain`) the artefact marks.
    y : array-like of int | None
        Class of each epoch; ``None`` reads the events.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    epochs : mne.EpochsArray
        A copy with the artefact; ``metadata["artifact"]`` says which epochs
        carry it.
    """
    import pandas as pd

    from mne_freqmask._inputs import epochs_labels

    if not 0 <= probability <= 1:
        raise ValueError(f"probability must be in [0, 1], got {probability}.")
    labels = epochs_labels(epochs, y)
    idx = _check_channels(channels, epochs.ch_names, "Artefact", "the epochs")
    rng = check_random_state(random_state)
    x = epochs.get_data(copy=True)
    scale = float(np.median(x[:, idx].std(-1)))
    flag = _add_blinks(
        rng, x, labels == target, probability, idx, band, epochs.info["sfreq"],
        amplitude * scale,
    )  # fmt: skip
    metadata = (
        epochs.metadata.copy().reset_index(drop=True)
        if epochs.metadata is not None
        else pd.DataFrame(index=range(len(x)))
    )
    metadata["artifact"] = flag
    logger.info(
        f"Planted a {band[0]:g}-{band[1]:g} Hz artefact on {', '.join(channels)} "
        f"in {flag.sum()} of {len(x)} epochs."
    )
    return EpochsArray(
        x,
        epochs.info,
        events=epochs.events,
        tmin=epochs.tmin,
        event_id=epochs.event_id,
        metadata=metadata,
        verbose=False,
    )
