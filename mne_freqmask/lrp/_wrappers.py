"""Give models with extra forward arguments the plain ``model(x)`` call."""

import torch
from mne.utils import _validate_type


def _check_labram_names(ch_names):
    from mne_freqmask.utils._deps import import_optional

    LABRAM_CHANNEL_ORDER = import_optional(
        "braindecode.models.labram"
    ).LABRAM_CHANNEL_ORDER

    ch_names = [str(ch) for ch in ch_names]
    known = {name.upper() for name in LABRAM_CHANNEL_ORDER}
    missing = [ch for ch in ch_names if ch.upper() not in known]
    if missing:
        raise ValueError(
            f"Channels {missing} are not in Labram's LABRAM_CHANNEL_ORDER; "
            "pick or rename them (or use braindecode's InterpolatedLaBraM)."
        )
    return ch_names


class LabramWrapper(torch.nn.Module):
    """Call braindecode's :class:`~braindecode.models.Labram` as ``model(x)``.

    ``Labram.forward`` needs the channel names of ``x`` (``ch_names=...``) to
    pick its position embeddings unless ``x`` holds all 128 channels of
    ``braindecode.models.labram.LABRAM_CHANNEL_ORDER``. Attribution code (and
    :func:`mne_freqmask.explain`) calls ``model(x)`` only, so this wrapper
    stores the names.

    Parameters
    ----------
    labram : braindecode.models.Labram
        The model.
    ch_names : list of str
        Names of the channels of ``x``, in order; each must be in
        ``LABRAM_CHANNEL_ORDER`` (case-insensitive, e.g. ``epochs.ch_names``
        of a 10-20 montage).
    """

    def __init__(self, labram, ch_names):
        super().__init__()
        _validate_type(labram, torch.nn.Module, "labram", "torch.nn.Module")
        self.labram = labram
        self.ch_names = _check_labram_names(ch_names)

    @property
    def n_chans(self):
        """Number of input channels."""
        return len(self.ch_names)

    @property
    def n_times(self):
        """Number of input samples."""
        return self.labram.n_times

    def forward(self, x):
        """Class logits of ``x``.

        Parameters
        ----------
        x : torch.Tensor, shape (n_epochs, n_channels, n_times)
            The input, channels in the order of ``ch_names``.

        Returns
        -------
        logits : torch.Tensor, shape (n_epochs, n_classes)
            The output of the wrapped Labram.
        """
        return self.labram(x, ch_names=self.ch_names)

    def extra_repr(self):
        """Extra information in the module's ``repr``.

        Returns
        -------
        extra : str
            The number of input channels, ``"n_chans=..."``.
        """
        return f"n_chans={self.n_chans}"


def make_labram(ch_names, n_outputs, n_times, sfreq, *, input_scale=1e6, **kwargs):
    """Build a :class:`~braindecode.models.Labram` callable as ``model(x)``.

    Parameters
    ----------
    ch_names : list of str
        Channel names of the data (e.g. ``epochs.ch_names``).
    n_outputs, n_times : int
        Number of classes and of time samples.
    sfreq : float
        Sampling frequency in Hz.
    input_scale : float | None
        As in :func:`mne_freqmask.models.make_model`: the model is
        ``Sequential(InputScaler(input_scale), LabramWrapper(...))`` so that it
        takes volts.
    **kwargs
        Further arguments of ``Labram`` (e.g. ``patch_size``, ``num_layers``,
        ``num_heads``, ``conv_out_channels``).

    Returns
    -------
    model : torch.nn.Module
        The untrained model.
    """
    from mne_freqmask.models import InputScaler
    from mne_freqmask.utils._deps import import_optional

    Labram = import_optional("braindecode.models").Labram

    ch_names = _check_labram_names(ch_names)
    net = Labram(
        n_chans=len(ch_names),
        n_outputs=int(n_outputs),
        n_times=int(n_times),
        sfreq=float(sfreq),
        **kwargs,
    )
    model = LabramWrapper(net, ch_names)
    if input_scale is not None:
        model = torch.nn.Sequential(InputScaler(input_scale), model)
    return model
