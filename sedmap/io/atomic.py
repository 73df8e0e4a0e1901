"""Atomic writes: every product is written to a temporary file in the
destination directory and renamed into place, so a crash or an error never
leaves a half-written product behind.

The temporary file of ``dir/name.ext`` is ``dir/.name.ext.HOST.PID.RAND.tmp.ext``
(hidden; HOST and PID those of the writing process, RAND 8 random characters). A writer killed with
``kill -9`` (or a node that dies) cannot remove it; the next write of the same
product removes the ones whose writer is gone (:func:`remove_stale_temps`), so a
killed 3 GB grid write does not stay on disk for ever.
"""

import contextlib
import errno
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from ..errors import InputError

log = logging.getLogger(__name__)

#: A temporary file whose writer cannot be checked (another host, or the former
#: name without host and PID) is stale once unmodified for this long, s.
STALE_AGE_S = 24 * 3600.0

#: directory -> the hidden temporary-looking names in it when this process first
#: wrote there: one listing per directory and process, not one per product (a
#: folder of 10^4 bin files takes ~6 ms to list)
_SEEN = {}


def _host():
    """This host's name as it appears in temporary file names."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _temp_pattern(path):
    """Regex of the temporary files of ``path``: groups host and pid (None in the
    former name, ``.name.ext.RAND.tmp.ext``)."""
    name, suffix = re.escape(path.name), re.escape(path.suffix)
    return re.compile(rf"^\.{name}\.(?:(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.)?"
                      rf"[a-z0-9_]{{8}}\.tmp{suffix}$")


def _alive(pid):
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's
        return True
    return True


def _hidden_temps(directory):
    """Names in ``directory`` that look like temporary files, listed once per process."""
    key = os.path.abspath(directory)
    if key not in _SEEN:
        try:
            names = os.listdir(directory)
        except OSError:
            names = []
        _SEEN[key] = [n for n in names if n.startswith(".") and ".tmp" in n]
    return _SEEN[key]


def remove_stale_temps(path, names=None):
    """Remove the temporary files that killed writers of ``path`` left behind.

    A temporary file of ``path`` (and of no other product) is removed when its
    writer was a process of this host that no longer exists (``os.kill(pid, 0)``),
    or, when its writer cannot be checked (another host, e.g. an MPI or cluster job
    on another node, or a name without host and PID), when it has not been
    modified for ``STALE_AGE_S``. Temporary files of live writers, this
    process's own, and those of other products are never touched.

    Parameters
    ----------
    path : str or os.PathLike
        The product about to be written.
    names : list of str, optional
        The candidate names in its directory (default: list the directory now).

    Returns
    -------
    list of pathlib.Path
        The files removed (each logged with its size).
    """
    path = Path(path)
    pattern = _temp_pattern(path)
    host, me, now = _host(), os.getpid(), time.time()
    removed = []
    if names is None:
        try:
            names = os.listdir(path.parent)
        except OSError:
            return removed
    for name in list(names):
        m = pattern.match(name)
        if not m:
            continue
        tmp = path.parent / name
        try:
            st = tmp.stat()
            if m["pid"] is not None and m["host"] == host:
                pid = int(m["pid"])
                stale = pid != me and not _alive(pid)
            else:
                stale = now - st.st_mtime > STALE_AGE_S
            if not stale:
                continue
            tmp.unlink()
        except FileNotFoundError:  # its writer finished or another run removed it
            continue
        with contextlib.suppress(ValueError, AttributeError):
            names.remove(name)
        removed.append(tmp)
        log.warning("removed %s (%.1f MB), left by a killed write of %s", tmp,
                    st.st_size / 1e6, path.name)
    return removed


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same directory (so the rename is atomic
    on POSIX), carries the same suffix (so writers that dispatch on the
    extension still work) and this host's name and process id (module
    docstring). On any exception the temporary file is removed and ``path``
    is left untouched. Before writing, the temporary files that killed
    writers of ``path`` left are removed (:func:`remove_stale_temps`).

    Parameters
    ----------
    path : str or os.PathLike
        Final destination.

    Yields
    ------
    tmp : pathlib.Path
        Where to write.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path, _hidden_temps(path.parent))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}.{os.getpid()}.",
                                   suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path) from exc
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        written = tmp.stat().st_size if tmp.exists() else 0
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError):
            err = write_error(exc, path, written)
            if err is not None:
                raise err from exc
        raise


#: errno values that mean "the disk (or quota) is full"
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
#: errno values that mean "not allowed to write there"
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def _mb(nbytes):
    return f"{nbytes / 1e6:.0f} MB" if nbytes >= 1e6 else f"{nbytes / 1e3:.0f} kB"


def existing_dir(path):
    """The nearest folder of ``path`` that exists (its disk is where it will go)."""
    where = Path(path).parent
    while not where.exists() and where != where.parent:
        where = where.parent
    return where


def write_error(exc, path, written=0):
    """The :class:`~sedmap.errors.InputError` for an ``OSError`` met while writing
    ``path``: a full disk (or quota) names the path, what was written before it
    failed and what is free; a refused write names the path and the permission.
    ``None`` for other errors (they propagate unchanged).

    Libraries such as h5py raise ``OSError`` without an ``errno`` when the disk
    fills; the disk is then taken as full when less than the bytes written (at
    least 1 MB) remain free.
    """
    path = Path(path)
    code = getattr(exc, "errno", None)
    where = existing_dir(path)
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        free = None
    full = code in _FULL or (code is None and free is not None and free < max(written, 1e6))
    if full:
        need = f"; it needs more than {_mb(written)}" if written else ""
        return InputError(f"no space left to write it ({_mb(free or 0)} free on the disk "
                          f"of {where}{need})", path=str(path),
                          fix="free disk space, or set results_dir to a larger disk, "
                              "then rerun (finished products are kept)")
    if code in _DENIED:
        return InputError(f"cannot write there ({os.strerror(code)})", path=str(path),
                          fix="set results_dir to a folder you can write, or fix its "
                              "permissions")
    return None


def write_text(text, path):
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def copy_file(src, path):
    """Copy the file ``src`` to ``path`` atomically (its folder made if missing), as a
    bin that its method does not refit keeps its RDSPS fit file; return the path."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        shutil.copyfile(src, tmp)
    return Path(path)
