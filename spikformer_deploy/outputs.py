"""Writing outputs so that a run leaves either its complete result or nothing.

- ``check_file_target`` / ``check_dir_target``: an output path is checked before the long work starts (not after a
  simulation of minutes): the nearest existing ancestor must be a writable directory, no ancestor a regular file.
- ``partial_dir``: a temporary directory beside the destination, named ``.<name>.partial-<pid>-<random>`` and holding
  an ``INCOMPLETE`` marker until it is complete: ``verify`` refuses it (the marker is not in its manifest), and the
  next run removes partial directories whose process is gone (a SIGKILLed run cannot clean up after itself).
- ``move_into_place``: without ``force`` a plain rename, which fails if another run created the destination
  meanwhile; with ``force`` an atomic exchange (Linux ``renameat2(RENAME_EXCHANGE)``), so there is never a moment
  with neither the old nor the new result.
- ``partial_directory``: ``partial_dir`` as a context: removed on every way out but a completed move, and created
  with termination signals held, so that no signal falls between its creation and its clean-up being armed.
- ``write_files_atomically``: a set of files moved into place together, signals held back meanwhile.
- ``handle_termination``: SIGTERM and SIGHUP become ``Terminated`` (SIGINT stays KeyboardInterrupt), so every
  clean-up path runs; ``signals_held`` defers them to the end of a critical section.

Signals are held in the handler, not with ``pthread_sigmask``: a mask covers only the calling thread, and a signal
delivered to any other thread (torch's, numba's, Lava's) still runs the Python handler in the main thread at its next
bytecode, wherever that is.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import ArtifactError, DeployError, Terminated

INCOMPLETE = "INCOMPLETE"
PARTIAL = ".partial-"


class _Held:
    depth = 0  # nesting of signals_held
    pending: int | None = None  # the first termination signal that arrived while held


def _terminate(signum: int):
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


def _stop(signum, frame):
    if _Held.depth:
        _Held.pending = _Held.pending or signum
        return
    _terminate(signum)


def handle_termination() -> None:
    """Install the handlers (only the main thread may; elsewhere the embedding program owns its signals)."""
    import threading

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _stop)


def _hold() -> None:
    _Held.depth += 1


def _release() -> None:
    """End one hold; at the outermost, raise the signal that arrived meanwhile."""
    _Held.depth -= 1
    if not _Held.depth and _Held.pending is not None:
        signum, _Held.pending = _Held.pending, None
        _terminate(signum)


@contextmanager
def signals_held():
    """A termination signal arriving inside is raised when the block ends, not in its middle."""
    _hold()
    try:
        yield
    finally:
        _release()


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path("/")


def _check_parent(path: Path, what: str) -> None:
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise DeployError(f"cannot write {what} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DeployError(f"cannot write {what} {path}: {existing} is not writable")


def check_file_target(path: Path, what: str = "output") -> None:
    """``path`` can be written as a file (now, before any long work)."""
    path = Path(path)
    if path.is_dir():
        raise DeployError(f"cannot write {what} {path}: it is a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise DeployError(f"cannot write {what} {path}: it is not writable")
    _check_parent(path, what)


def check_dir_target(path: Path, what: str = "output directory") -> None:
    """``path`` can be a directory to write files into (created if missing)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DeployError(f"cannot write {what} {path}: it is a file, not a directory")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise DeployError(f"cannot write {what} {path}: it is not writable")
        return
    _check_parent(path, what)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(directory: Path, name: str = "") -> None:
    """Remove ``.<name>.partial-<pid>-*`` directories in ``directory`` whose process has ended."""
    prefix = f".{name}{PARTIAL}" if name else PARTIAL
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if not entry.name.startswith(prefix) or not entry.is_dir() or entry.is_symlink():
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def partial_dir(parent: Path, name: str = "") -> Path:
    """A new partial directory in ``parent`` (created), marked incomplete; stale ones are removed first."""
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(parent, name)
    prefix = f".{name}{PARTIAL}" if name else PARTIAL
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f"{prefix}{os.getpid()}-"))
    try:
        (tmp / INCOMPLETE).write_text("written by a spikformer-deploy run that has not finished\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


@contextmanager
def partial_directory(parent: Path, name: str = ""):
    """A new partial directory (``partial_dir``), removed when the block ends unless it was moved into place."""
    _hold()  # signals_held, unrolled: the release must fall inside the clean-up's try
    try:
        tmp = partial_dir(parent, name)
    except BaseException:
        _release()
        raise
    try:
        _release()  # a signal held meanwhile is raised here, with the clean-up armed
        yield tmp
    finally:
        with signals_held():  # a second signal does not cut the clean-up short
            shutil.rmtree(tmp, ignore_errors=True)


def mark_complete(tmp: Path) -> None:
    (tmp / INCOMPLETE).unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def move_into_place(tmp: Path, dest: Path, force: bool) -> None:
    """Put the complete ``tmp`` directory at ``dest``. Without ``force`` refuse a destination that exists by now;
    with it replace the old result in one atomic step, then remove the old one."""
    if not force or not dest.exists():
        try:
            os.rename(tmp, dest)  # fails on an existing non-empty directory (and on a file): nothing is replaced
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise ArtifactError(f"output {dest} was created by someone else meanwhile (use --force to "
                                    f"replace it)") from None
            raise
        return
    if _exchange(tmp, dest):
        shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")  # no atomic exchange here: the short gap is unavoidable
    os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


def write_files_atomically(directory: Path, writers: dict) -> list[str]:
    """Write every file into a partial directory inside ``directory``, then move them in with termination signals
    held back: never half a set."""
    try:
        with partial_directory(directory) as tmp:
            for name, write in writers.items():
                write(tmp / name)
            with signals_held():
                for name in writers:
                    os.replace(tmp / name, directory / name)
    except OSError as exc:  # the checks up front cannot foresee everything (a full disk, /proc)
        raise DeployError(f"writing into {directory} failed: {exc.strerror or exc}") from None
    return [str(directory / name) for name in writers]
