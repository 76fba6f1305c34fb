"""The contract between :func:`mne_freqmask.explain` and a method.

A method is one function and one :class:`MethodSpec` declared on it, in its
own file. The function is called as ``func(run, **method_kw)`` with one
:class:`MethodRun` (the epochs, grid, model, device, chunk size and seed of
the run) and returns a :class:`MethodResult`; it declares how many epochs it
can take at once with :func:`chunking` (its memory per epoch, an upper bound,
or that it reads the epochs in batches of its own), and walks over the epochs
with :meth:`MethodRun.chunks` (:func:`iter_chunks`; or, to report progress
within a chunk, ``chunk_progress``, the loop under it): the one chunk loop of
every method and of LRP's batches.
"""

import os
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from mne.utils import ProgressBar

# torch is imported where it is used, so that the registry (and the CLI's
# argument parser) can be read without it


#: The arguments every method function takes (the rest are method parameters).
FIXED_ARGS = ("run",)


@dataclass(frozen=True)
class MethodRun:
    """What :func:`mne_freqmask.explain` hands a method: one run's context.

    Built once where ``explain`` dispatches to the method, which is called as
    ``func(run, **method_kw)``.

    Parameters
    ----------
    inp : ExplainInput
        The epochs (``inp.x[sl]`` reads them), ``inp.picks`` the explained
        channels, ``inp.target`` the class to explain or None
        (``mne_freqmask._inputs.ExplainInput``, private).
    grid : FrequencyGrid | ShortTimeGrid
        The cells to explain.
    model : torch.nn.Module
        The model, already in eval mode, frozen and on ``device``.
    device : torch.device
        Where the method computes.
    chunk_size : int | "auto"
        Epochs per chunk: what ``explain`` was asked for; the method receives
        an int, fitted to its :func:`chunking`.
    random_state : None | int | instance of ~numpy.random.RandomState
        The seed of a method that draws (a deterministic one ignores it).
    """

    inp: object
    grid: object
    model: object
    device: object
    chunk_size: object = "auto"
    random_state: object = None

    @property
    def seed(self):
        """``random_state`` if it is an int, else None (what a map records)."""
        return self.random_state if isinstance(self.random_state, int) else None

    def new_map(self):
        """An (uninitialised) map, one float32 per epoch x picked channel x band.

        Returns
        -------
        out : ndarray, shape (n_epochs, n_picked_channels, n_bands)
            Empty, to be filled chunk by chunk.
        """
        shape = (self.inp.n_epochs, len(self.inp.picks), self.grid.n_bands)
        return np.empty(shape, np.float32)

    def chunks(self, mesg="Chunks"):
        """The epochs chunk by chunk (:func:`iter_chunks` of this run).

        Parameters
        ----------
        mesg : str
            Label of the progress bar.

        Yields
        ------
        sl : slice
            The epochs of the chunk.
        x : torch.Tensor, shape (n_chunk, n_channels, n_times)
            Their data, all channels, in the model's dtype on the device.
        """
        yield from iter_chunks(self.inp, self.chunk_size, self.model, self.device, mesg)


@dataclass(frozen=True)
class MethodSpec:
    """Everything the package knows about a method, in one place.

    A method's file declares its spec on the function with
    :func:`method_spec`, whose arguments are literals: the registry reads
    the built-in specs from the source without importing the method (and
    torch), so that ``import mne_freqmask``, the command line's parser and
    ``explain``'s docstring, which is built from the specs, stay light. A
    method added at run time passes its spec (``func.spec``) to
    :func:`~mne_freqmask.methods.register_method`.

    Parameters
    ----------
    name : str
        The name of ``explain(method=name)``.
    func : callable | str
        The function, called as ``func(run, **method_kw)`` with a
        :class:`MethodRun`, or ``"module:function"``
        (imported on first use). Its docstring documents its parameters
        (``explain``'s documentation links to it).
    summary : str
        One sentence for ``explain``'s documentation.
    short_time : bool
        Whether it explains short-time grids too (``explain(...,
        time_windows=...)``): it reaches the spectrum only through the grid's
        transforms (``grid.spectrum`` / ``grid.inverse``) and its cells only through the
        grid's flat view.
    needs_labels : bool
        Whether it needs each epoch's class (``y`` or the event codes).
    deterministic : bool
        With its default parameters, True: the map does not depend on
        ``random_state``; False: it draws from ``random_state``, and the same
        seed gives the same map.
    fast_kwargs : dict
        Method parameters that make it fast on tiny data (a few epochs,
        a small model): what the tests pass, e.g. ``{"n_steps": 5}``.
    """

    name: str
    func: object
    summary: str = ""
    short_time: bool = False
    needs_labels: bool = False
    deterministic: bool = True
    fast_kwargs: dict = field(default_factory=dict)

    def function(self):
        """The method's function (imported now if given as a string).

        Returns
        -------
        func : callable
            The method's function.
        """
        if callable(self.func):
            return self.func
        import importlib

        module, name = self.func.split(":")
        return getattr(importlib.import_module(module), name)

    def path(self):
        """Where the function lives (for documentation).

        Returns
        -------
        path : str
            ``"module.function"``.
        """
        if callable(self.func):
            return f"{self.func.__module__}.{self.func.__qualname__}"
        return self.func.replace(":", ".")


def method_spec(**fields):
    """Declare a method function's :class:`MethodSpec` (a decorator).

    Parameters
    ----------
    **fields
        The spec's fields but ``func`` (literals: the registry reads them from
        the source), e.g. ``name="lrp", summary="...", short_time=True``.

    Returns
    -------
    decorator : callable
        Sets ``func.spec = MethodSpec(func=func, **fields)`` and returns
        ``func``.
    """

    def decorator(func):
        func.spec = MethodSpec(func=func, **fields)
        return func

    return decorator


@dataclass
class MethodResult:
    """What a method returns to :func:`mne_freqmask.explain`.

    Parameters
    ----------
    data : ndarray, shape (n_epochs, n_picked_channels, n_bands)
        Saliency of each channel x band cell of each epoch.
    params : dict
        The parameters used (JSON-like scalars, lists and strings).
    diagnostics : dict
        Per-epoch arrays (e.g. steps to convergence, final loss).
    """

    data: np.ndarray
    params: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)


def activation_memory(inp, grid):
    """Default bytes per epoch: a generous allowance for the model's activations.

    64 float32 copies of the epoch (all channels x samples): a forward and a
    backward pass of a small EEG network.
    """
    return 4 * 64 * int(np.prod(inp.x.shape[1:]))


@dataclass(frozen=True)
class Chunking:
    """How a method takes the epochs (see :func:`chunking`)."""

    memory_per_epoch: object = activation_memory
    max_size: int | None = None
    by_epochs: bool = True


def chunking(*, memory_per_epoch=activation_memory, max_size=None, by_epochs=True):
    """Declare how a method function takes the epochs (a decorator).

    Parameters
    ----------
    memory_per_epoch : callable
        ``memory_per_epoch(inp, grid)`` -> bytes one epoch of a chunk needs on
        the device; ``chunk_size="auto"`` fits the chunk in a quarter of the
        free memory (at most 2 GB on the CPU). Default:
        ``activation_memory``.
    max_size : int | None
        Largest chunk the method accepts (also caps an explicit
        ``chunk_size``).
    by_epochs : bool
        False for a method that reads all epochs in batches of its own (e.g.
        easyPEASI, which perturbs every epoch once per cell); it then gets
        ``chunk_size=n_epochs``, which it may ignore.

    Returns
    -------
    decorator : callable
        Sets ``func.chunking`` and returns ``func``.
    """

    def decorator(func):
        func.chunking = Chunking(memory_per_epoch, max_size, by_epochs)
        return func

    return decorator


def chunk_size_for(func, run):
    """Epochs per chunk for ``func`` (its :func:`chunking` or the default),
    from the size ``run.chunk_size`` asks for (an int or ``"auto"``)."""
    chunk_size, inp, grid, device = run.chunk_size, run.inp, run.grid, run.device
    spec = getattr(func, "chunking", None) or Chunking()
    if not spec.by_epochs:
        return inp.n_epochs
    if isinstance(chunk_size, str):
        if chunk_size != "auto":
            raise ValueError(
                f'chunk_size must be an int or "auto", got {chunk_size!r}.'
            )
        per_epoch = max(float(spec.memory_per_epoch(inp, grid)), 1.0)
        budget = 0.25 * _available_memory(device)
        if device.type == "cpu":
            budget = min(budget, 2e9)
        size = int(np.clip(budget // per_epoch, 1, min(512, inp.n_epochs)))
    else:
        size = int(chunk_size)
        if size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size}.")
    return size if spec.max_size is None else min(size, int(spec.max_size))


def _available_memory(device):
    """Bytes of memory free now on ``device`` (a safe guess if unknown)."""
    if device.type == "cuda":
        import torch

        return float(torch.cuda.mem_get_info(device)[0])
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 4e9


def chunk_progress(n_epochs, chunk_size, mesg="Chunks"):
    """Yield ``(sl, done)`` per chunk, with a progress bar counting epochs.

    ``done(k, note=None)`` reports that ``k`` epochs of the current chunk are
    finished (a method with per-epoch early stopping calls it as epochs
    stop); ``note`` (e.g. ``"step 40 (max 300)"``) is shown at the end of the
    bar, so that it moves while a chunk's epochs are still being fitted. The
    bar reaches the chunk's end when the next chunk is asked for. The bar is
    MNE's :class:`~mne.utils.ProgressBar` (shown at log level info, hidden by
    ``verbose=False``).
    """
    bar = ProgressBar(range(n_epochs), mesg=mesg, max_value=n_epochs)

    def done(k, note=None, *, start):
        if note is not None:
            _bar_note(bar, note)
        bar.update(start + int(k))

    for start in range(0, n_epochs, chunk_size):
        sl = slice(start, min(start + chunk_size, n_epochs))
        yield sl, partial(done, start=start)
        bar.update(sl.stop)
    # tqdm closes the bar (its final line) when the generator is freed


def _bar_note(bar, note):
    """Show ``note`` in the postfix of an MNE ProgressBar's tqdm bar.

    MNE's :class:`~mne.utils.ProgressBar` has no public way to change the
    text it shows after it is created; its bar format ends with tqdm's
    ``{postfix}``, and the tqdm bar is its ``_tqdm`` attribute (checked with
    MNE 1.13). Without that attribute the note is not shown, nothing fails.
    """
    tq = getattr(bar, "_tqdm", None)
    if tq is not None and hasattr(tq, "set_postfix_str"):
        tq.set_postfix_str(note)  # refreshes the line (no-op when disabled)


def iter_chunks(inp, chunk_size, model, device, mesg="Chunks"):
    """Walk over the epochs of a method's input, one chunk at a time.

    The one chunk iterator of the methods (and of LRP's batches,
    :func:`mne_freqmask.lrp.iter_relevance`): a progress bar over chunks of
    ``chunk_size`` consecutive epochs (``chunk_progress``), each read
    (from disk for epochs not preloaded) only when its turn comes.

    Parameters
    ----------
    inp : ExplainInput | array-like
        The method's input (``inp.x`` holds the epochs), or the epochs
        themselves (anything with ``len`` whose ``x[sl]`` reads an array, such
        as an ``EpochsSource``).
    chunk_size : int
        Epochs per chunk (the ``chunk_size`` a method receives).
    model : torch.nn.Module
        The model; the chunks are cast to its dtype.
    device : torch.device
        Where the chunks go.
    mesg : str
        Label of the progress bar.

    Yields
    ------
    sl : slice
        The epochs of the chunk (``out[sl] = ...`` stores its result).
    x : torch.Tensor, shape (n_chunk, n_channels, n_times)
        Their data, all channels, in the model's dtype on ``device``.
    """
    import torch

    from mne_freqmask._torch_utils import model_dtype

    dtype = model_dtype(model)
    x = getattr(inp, "x", inp)
    for sl, _ in chunk_progress(len(x), chunk_size, mesg):
        yield sl, torch.as_tensor(x[sl], device=device).to(dtype)
