"""The files of :func:`mne_freqmask.explain_files`: one saliency file per
epochs file (``<name><suffix>``, or names given, such as BIDS names), and the
table of the files that failed."""

from pathlib import Path

from mne.utils import _validate_type

#: default ends of the output names: whole-epoch and time-resolved maps
SUFFIXES = {False: "-sal.h5", True: "-sal-tfr.h5"}


def _out_name(fname, out_dir, suffix):
    name = Path(fname).name
    ends = ("-epo.fif.gz", "-epo.fif", "_epo.fif.gz", "_epo.fif", ".fif.gz", ".fif")
    for end in ends:
        if name.endswith(end):
            name = name[: -len(end)]
            break
    return Path(out_dir) / f"{name}{suffix}"


#: with ``on_error="continue"``: the files that failed, beside the outputs
FAILURES_TSV = "explain_files_failures.tsv"


def output_names(fnames, out_dir, suffix, out_names):
    """The saliency file of each epochs file; two files may not share one."""
    if out_names is None:
        outs = [_out_name(f, out_dir, suffix) for f in fnames]
    else:
        outs = _named_outs(out_names, fnames, out_dir)
    seen = {}
    for f, out in zip(fnames, outs, strict=True):
        if out in seen:
            raise ValueError(
                f"{seen[out]} and {f} would both be written to {out.name}; rename "
                "one of the epochs files."
            )
        seen[out] = f
    return outs


def write_failures(fname, report):
    """``explain_files_failures.tsv``: one row per failure; removed if none."""
    from mne_freqmask.utils._checks import _write_new_file

    if not report:
        fname.unlink(missing_ok=True)
        return
    rows = ["fname\tout\terror"]
    for item in report:
        error = " ".join(item.error.split())  # one line, no tabs
        rows.append(f"{item.fname}\t{item.out}\t{error}")
    text = "\n".join(rows) + "\n"
    _write_new_file(fname, lambda p: Path(p).write_text(text), overwrite=True)


def _named_outs(out_names, fnames, out_dir):
    """The files ``out_dir / name``, one per epochs file, in existing folders."""
    _validate_type(out_names, (list, tuple), "out_names", "list of str")
    if len(out_names) != len(fnames):
        raise ValueError(
            f"out_names must hold one name per epochs file ({len(fnames)}), got "
            f"{len(out_names)}."
        )
    outs = []
    for k, name in enumerate(out_names):
        _validate_type(name, "path-like", f"out_names[{k}]")
        out = (out_dir / name).absolute()
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"out_names[{k}] must be inside out_dir, got {name}.")
        if not out.name.lower().endswith((".h5", ".hdf5")):
            raise ValueError(f"out_names[{k}] must end with .h5 or .hdf5: {name}")
        if not out.parent.is_dir():
            raise FileNotFoundError(
                f"The output folder {out.parent} does not exist; create it first."
            )
        outs.append(out)
    return outs
