"""Shared docstring entries, in the style of MNE's ``docdict``.

MNE's :func:`mne.utils.verbose` runs MNE's own ``fill_doc``, which does not know
our keys; apply :func:`fill_doc` *inside* ``@verbose``::

    @verbose
    @fill_doc
    def func(..., verbose=None):
"""

from mne.utils.docs import docdict as _mne_docdict

from mne_freqmask.methods._registry import method_docs

docdict = {}

# copied from MNE so that our docstrings read like MNE's
for _key in (
    "verbose",
    "picks_all",
    "random_state",
    "border_topomap",
    "sphere_topomap_auto",
    "cmap_topomap_simple",
    "show",
):
    if _key in _mne_docdict:
        docdict[_key] = _mne_docdict[_key]

# explain()'s method, its parameters and the short-time methods: built from
# the built-in methods' specs (each in its method's file)
docdict.update(method_docs())

docdict["epochs_explain"] = """
epochs : instance of mne.Epochs
    The epochs to explain. They are passed to the model as an array of shape
    ``(n_epochs, n_channels, n_times)`` in the units stored by MNE (volts for
    EEG), which must be the units the model was trained on. Epochs that are not
    preloaded (``preload=False``) are read from disk chunk by chunk and never
    held in memory at once, so datasets larger than the memory can be
    explained; each pass over them re-reads the file."""

docdict["model"] = """
model : instance of torch.nn.Module | skorch net | path-like
    A trained classifier mapping ``(n_epochs, n_channels, n_times)`` to
    ``(n_epochs, n_classes)`` scores (logits); a fitted skorch classifier
    (braindecode's ``EEGClassifier``), whose network is explained as its
    ``predict(epochs)`` sees the epochs (braindecode reads them in
    microvolts: ``Sequential(InputScaler(1e6), net.module_)``); or a model
    file or braindecode model folder (``config.json`` + weights), read with
    :func:`mne_freqmask.models.load_any_model` (see
    :func:`mne_freqmask.models.as_model`). It is put in eval mode and its
    parameters are frozen during the call; its ``training`` flags,
    ``requires_grad`` flags, weights and device are restored afterwards, also
    when an error occurs. Regression models (one output, a skorch
    ``NeuralNetRegressor`` / ``EEGRegressor``) are refused: every method
    explains a class score against the others (``target`` is a class
    index). A braindecode model built with ``chs_info`` / ``sfreq`` must get
    epochs with those channels, in that order, at that rate."""

docdict["bands"] = """
bands : int | dict | str
    The frequency grid of the explanation (the channel x band cells). An int
    splits the rfft bins from 0 Hz to Nyquist into that many contiguous,
    equal-size segments (the paper's "scalable mask"). A dict maps band names to
    ``(fmin, fmax)`` in Hz; a bin at frequency ``f`` belongs to a band when
    ``fmin <= f < fmax`` (``f <= fmax`` for a band that reaches Nyquist); bins in
    no band are never perturbed or removed. ``"canonical"`` is delta (0-4 Hz),
    theta (4-8), alpha (8-12), beta (12-30) and gamma (30-45), clipped at
    Nyquist."""

docdict["picks_explain"] = """
picks : str | array-like | slice | None
    Channels to explain. The model is always fed every channel of ``epochs``,
    in order, bad ones included (it was trained on them); channels not picked
    are left untouched. ``None`` (default) picks the data channels not marked
    bad. As in MNE, channels in ``epochs.info["bads"]`` are left out of
    generic picks (``None``, ``"eeg"``, ``"data"``) and explained only when
    picked by name or index; the log says which bad channels were left out."""

docdict["target"] = """
target : None | "true" | array-like of int
    What the explanation preserves. ``None`` (default, as in the paper) uses the
    model's own prediction on the unperturbed epochs (soft probabilities;
    the methods that explain one class, such as the gradient, LRP, FLEXtime
    and FreqRISE methods, explain the predicted class). ``"true"`` uses the
    class labels of the epochs (see ``y``) and an array gives one class index
    per epoch."""

docdict["y"] = """
y : array-like of int | None
    Class index of each epoch, i.e. the model output unit of the true class.
    ``None`` derives them from ``epochs.events[:, 2]``: class ``k`` is the
    ``k``-th event code of ``epochs.event_id`` in ascending order (the order
    used by :func:`mne_freqmask.models.fit` and by scikit-learn's
    ``LabelEncoder``)."""

docdict["y_scored"] = """
y : array-like of int | "explained" | None
    The class whose probability is scored, per epoch. ``None`` (default):
    the true class, from ``epochs.events[:, 2]`` as in ``y`` of
    :func:`mne_freqmask.explain`; an array: the class index of each epoch.
    ``"explained"``: the class each epoch's map explains, as
    :func:`mne_freqmask.explain` records it
    (``saliency.diagnostics["explained_class"]``; with the default
    ``target=None`` the model's prediction, with ``target="true"`` the
    label). A map of the prediction is then scored on the prediction: with
    ``y=None`` it is scored on the true class, which on a misclassified
    epoch is another class than the map explains. A map without the
    record (built by hand, read from a file written before the record
    existed, or averaged over epochs) raises an error naming the fix."""

docdict["reference"] = """
reference : instance of mne.Epochs | None
    Epochs that define the subject clusters of the target-alignment loss
    (typically the training set) and the data scale. ``None`` (default) uses the
    explained epochs themselves. Must have the same channels and sampling
    frequency as ``epochs``."""

docdict["groups"] = """
groups : array-like | None
    Subject of each epoch of ``reference`` (or of ``epochs`` when
    ``reference`` is None). ``None`` reads ``metadata["subject"]`` when present
    and otherwise treats all epochs as one subject."""

docdict["device"] = """
device : str | torch.device
    Where to compute: ``"auto"`` (default) uses the model's device when it is
    already on a GPU, else CUDA when available, else the CPU. The device must
    hold data (``"meta"`` is refused); it is checked before the model is
    touched."""

docdict["n_jobs"] = """
n_jobs : int | None
    Torch intra-op threads (:func:`torch.set_num_threads`) used during the
    call; the previous setting is restored afterwards, also on error, so
    torch's global state is left as it was. ``None`` (default) keeps torch's
    current setting, capped at the number of cores this process may use
    (``len(os.sched_getaffinity(0))``): torch's own default can be the
    machine's core count where a container or ``taskset`` allows fewer, and
    more threads than cores make every step wait for the others. ``-1`` uses
    all available cores, ``-k`` all but ``k - 1``. On a machine whose cores
    are shared with other jobs, fewer threads are often faster (see the
    user guide's performance page). Results are reproducible at a fixed
    thread count; another count changes the floating-point summation order,
    and so the per-epoch maps slightly."""

docdict["lrp_eps_gamma"] = """
eps : float
    Stabiliser of the epsilon rule.
gamma : float
    Parameter of the gamma rule."""

docdict["lrp_strict"] = """
strict : bool
    If True, raise :class:`~mne_freqmask.lrp.LRPCoverageError`, naming the
    operations, when the model uses an operation without an LRP rule (an LSTM
    or GRU, ``torch.baddbmm``, an in-place non-linearity such as ``tanh_``;
    see the table of supported operations in the user guide). If False
    (default), an :class:`~mne_freqmask.lrp.LRPCoverageWarning` names them and
    the relevance crosses them as a plain gradient."""

docdict["grid_sfreq_n_times"] = """
sfreq : float
    Sampling frequency in Hz.
n_times : int
    Number of time samples of an epoch."""

docdict["chunk_size"] = """
chunk_size : int | "auto"
    Number of epochs fitted together in one batched optimisation (each with
    its own parameters); bounds memory. ``"auto"`` (default) picks a size from
    the input shape."""

docdict["level"] = """
level : "group" | "instance"
    ``"group"`` thresholds the epoch-averaged map (one set of salient cells for
    all epochs); ``"instance"`` thresholds each epoch's own map."""

docdict["saliency"] = """
saliency : instance of SpectralSaliency | instance of SpectralSaliencyTFR
    The explanation. For ``level="instance"`` it must hold one map per epoch of
    ``epochs``; for ``level="group"`` it may also be an averaged map (e.g. one
    computed on other epochs, such as the training set). A
    :class:`~mne_freqmask.SpectralSaliencyTFR` (from
    ``explain(..., time_windows=...)``) is scored over its channel x band x
    window cells, removed in the epochs' short-time Fourier transform on the
    map's :attr:`~mne_freqmask.SpectralSaliencyTFR.grid`."""


# SpectralSaliency and its plots (prefixed "sal_"), datasets, evaluation
docdict["sal_saliency_plot"] = """
saliency : instance of SpectralSaliency
    The saliency to plot. Per-epoch (instance-level) saliency is averaged over
    epochs first (mean); group-level saliency (from
    :meth:`~mne_freqmask.SpectralSaliency.average`) is plotted as it is."""

docdict["sal_bands_select"] = """
bands : None | str | list of str
    The bands to use, by name (see ``saliency.band_names``), in the order
    given. ``None`` (default) uses all bands."""

docdict["sal_picks"] = """
picks : str | array-like | slice | None
    Channels to include, as in MNE: channel names, channel type strings
    (e.g. ``"eeg"``), indices or a slice. ``None`` (default) picks all
    channels of the saliency (the explained ones)."""

docdict["sal_cmap"] = """
cmap : None | str | instance of matplotlib.colors.Colormap
    The colormap. None (default): ``"RdBu_r"`` for a signed map (one holding
    a negative value: LRP, gradients), with 0 at its centre, else ``"Reds"``
    (see :func:`~mne_freqmask.viz.color_scale`)."""

docdict["sal_axes_single"] = """
axes : instance of matplotlib.axes.Axes | None
    The axes to draw into. ``None`` (default) creates a new figure."""

docdict["sal_show"] = """
show : bool
    Show the figure (default ``True``)."""

docdict["sal_fname_h5"] = """
fname : path-like
    The file name; it must end with ``.h5`` or ``.hdf5``."""

# the parameters both saliency containers take (their base holds them once)
docdict["sal_container_info"] = """
info : instance of mne.Info
    Measurement info of exactly the explained channels (a copy is stored;
    topomaps read channel positions from it)."""

docdict["sal_container_method"] = """
method : str
    The explanation method (e.g. ``"freqmask"``).
method_params : dict | None
    The method's parameters. They are stored as JSON, so they must be
    JSON-like (tuples become lists, numpy scalars Python scalars)."""

docdict["sal_container_epochs"] = """
nave : int | None
    Number of epochs averaged into group-level data; must be ``None`` for
    per-epoch data.
events : ndarray of int, shape (n_epochs, 3) | None
    The events of the epochs, as :attr:`mne.Epochs.events`.
event_id : dict | None
    Event names to codes, as :attr:`mne.Epochs.event_id`. ``None`` with
    ``events`` given makes one name per code (``{"1": 1, ...}``).
metadata : pandas.DataFrame | None
    One row per epoch, as :attr:`mne.Epochs.metadata`. The index is reset to
    ``0, ..., n_epochs - 1``. Metadata are stored as JSON: columns of
    types JSON cannot hold (categories, datetimes) come back from a file
    or a pickle as plain values (text for datetimes).
diagnostics : dict | None
    Per-epoch diagnostics of the fit, name -> array whose first axis has
    one entry per epoch (e.g. ``{"n_steps": ..., "loss": ...}``)."""

docdict["sal_container_provenance"] = """
provenance : dict | None
    What made the map (JSON-like; see :attr:`provenance`):
    :func:`~mne_freqmask.explain` fills it. None: an empty dict."""

docdict["eegmat_subjects"] = """
subjects : int | list of int | None
    Subject numbers, 0-35 (``SubjectNN``). ``None`` (default) means all the
    subjects found in ``path`` (:func:`load_epochs` with a ``path``) or all 36
    (when downloading)."""

docdict["planted_cells"] = """
ch_names : list of str
    Channel names (rows).
band_edges : array-like, shape (n_bands, 2)
    Band edges in Hz (columns), e.g. ``saliency.band_edges``."""

docdict["seed_path"] = """
path : path-like | None
    The SEED folder: the folder that contains ``Preprocessed_EEG/`` (or a
    folder with it at most two levels down, e.g. the folder an archive was
    extracted into). If it already holds SEED, it is used as it is and nothing
    is downloaded. ``None`` (default) uses ``<MNE_DATA>/MNE-seed-data``, where
    ``<MNE_DATA>`` is the ``MNE_DATA`` config value or ``~/mne_data``."""

docdict["explain_kw"] = """
explain_kw : dict | None
    Keyword arguments of :func:`mne_freqmask.explain` (``bands``,
    ``reference``, ``target``, method parameters such as ``n_steps`` ...) used
    for every map this function computes; give the ones used for
    ``saliency``. ``method``, ``device`` and ``verbose`` are refused: the
    function sets them itself."""

docdict["eval_method"] = """
method : str
    The explanation method (see :func:`mne_freqmask.explain`), used for every
    map this function computes."""

docdict["boot_random_state"] = """
random_state : None | int | instance of ~numpy.random.RandomState
    Seed of the resampling: 0 (default) or any int makes the interval
    reproducible; ``None`` uses NumPy's global random state."""

# deletion curves and compare_methods
docdict["eval_fractions"] = """
fractions : array-like of float | None
    Fractions of the cells (channel x band, or channel x band x window for a
    time-resolved map) removed (deletion, LeRF) or kept
    (insertion) at each point of the curves, in [0, 1]; each is rounded to a
    whole number of cells and duplicates are dropped."""

docdict["eval_operator"] = """
operator : "zero" | "reference"
    How a cell is removed. ``"zero"`` sets its rfft coefficients (STFT
    coefficients for a time-resolved map) to 0 (the paper's removal).
    ``"reference"`` replaces them with the coefficients of the same channel
    and band (and window) of another epoch, drawn at random (seeded, one
    draw per epoch, the same for every point of a curve) from ``reference``
    (or, when ``reference`` is None, from the other evaluated epochs): the
    removed cells keep a power seen in the data, so a map is not rewarded for
    what an out-of-distribution zero does to the model."""

docdict["eval_reference"] = """
reference : instance of mne.Epochs | None
    The epochs whose cells replace the removed ones with
    ``operator="reference"`` (e.g. the training set); same channels,
    sampling rate and duration as ``epochs``. ``None``: the evaluated epochs,
    an epoch never receiving its own cells. Ignored with ``operator="zero"``."""

docdict["eval_boot"] = """
n_boot : int
    Bootstrap resamples of the epochs for the confidence intervals (see
    :func:`~mne_freqmask.evaluation.bootstrap_ci`); 0 skips them.
ci : float
    Coverage of the intervals (default 0.95)."""


def fill_doc(f):
    """Fill a docstring with entries of :data:`docdict` (``%(key)s``)."""
    doc = f.__doc__
    if not doc:
        return f
    lines = doc.splitlines()
    indent = 0
    for line in lines[1:]:
        stripped = line.lstrip()
        if stripped:
            indent = len(line) - len(stripped)
            break
    indented = {}
    for key, value in docdict.items():
        value = value.lstrip("\n")
        pad = " " * indent
        indented[key] = "\n".join(
            (pad + ln if ln else ln) if i else ln
            for i, ln in enumerate(value.splitlines())
        )
    try:
        f.__doc__ = doc % indented
    except (KeyError, TypeError, ValueError) as exp:
        raise RuntimeError(f"Error documenting {f.__name__}:\n{exp}") from exp
    return f
