"""Shared HDF5 helpers: atomic deterministic writing and safe reading.

Files use the latest HDF5 file format (``libver='latest'``, HDF5 >= 1.10 reads
them). Deterministic bytes: files are created with ``track_order=True`` (groups
and attributes keep their creation order) and every dataset is created with
``track_times=False`` (no modification times in the object headers), so the
same inputs give the same bytes.
"""

import contextlib
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from .atomic import atomic_path


@contextlib.contextmanager
def write_h5(path):
    """Yield a new h5py.File that is renamed onto ``path`` only if the block succeeds."""
    # libver="latest": compact object headers (a per-bin fit file is mostly headers)
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True, libver="latest") as f:
        yield f


def create_group(parent, name):
    """Sub-group ``name`` of ``parent`` that keeps creation order."""
    return parent.create_group(name, track_order=True)


def create_dataset(parent, name, data, **kwargs):
    """Dataset ``name`` holding ``data``, without timestamps (deterministic bytes)."""
    return parent.create_dataset(name, data=data, track_times=False, **kwargs)


def string_array(strings):
    """A 1-D array of UTF-8 strings ready for :func:`create_dataset`: fixed length
    (variable-length strings cost a 4 kB global heap per dataset)."""
    data = [str(s).encode("utf-8") for s in strings]
    size = max([len(b) for b in data] + [1])
    return np.array(data, dtype=h5py.string_dtype("utf-8", length=size))


@contextlib.contextmanager
def open_h5(path):
    """Open ``path`` read-only; InputError if it is missing or not an HDF5 file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found.", path,
                         "check the path, or run the pipeline stage that makes it.")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"not a readable HDF5 file, corrupt or truncated ({exc}).", path,
                         "delete it and run the stage that makes it again.") from None
    with f:
        yield f


def require(group, name, path):
    """``group[name]``; InputError if it is missing."""
    if name not in group:
        where = group.name.rstrip("/") + "/" + name
        raise InputError(f"missing HDF5 object {where}.", path,
                         "rewrite the product with sedmap (see docs/products.md).")
    return group[name]


def require_attr(obj, name, path):
    """``obj.attrs[name]``; InputError if it is missing."""
    if name not in obj.attrs:
        raise InputError(f"missing attribute {name!r} on {obj.name}.", path,
                         "rewrite the product with sedmap (see docs/products.md).")
    value = obj.attrs[name]
    return value.decode() if isinstance(value, bytes) else value


def read_strings(dataset):
    """A string dataset as a list of str."""
    return [s.decode() if isinstance(s, bytes) else str(s) for s in dataset[()]]
