"""File-system safety for everything snncosim writes (docs/cli.md, "What snncosim writes").

Rules, applied by every writer of user-visible outputs:

* **Nothing partial.** A file is written to a unique temporary sibling and renamed into place
  (:func:`write_bytes_atomic`, :func:`write_text_atomic`); a directory output is built in a fresh hidden sibling
  ``.NAME.part-XXXX`` and renamed into place when it is whole (:func:`staged_output`).
* **No user file is ever removed.** An output path may be replaced only when it does not exist, is an empty
  directory, or is an earlier snncosim output **of the same kind** (a network directory, a run directory, a
  Verilog directory); an earlier output of another kind needs ``force``; a plain file or a non-empty directory
  that snncosim did not write is refused, ``force`` or not (:func:`check_output_path`).
* **One writer at a time.** A directory output is locked (``flock`` on a sibling ``.NAME.lock``, removed
  afterwards) for the whole time it is written: a second writer is refused at once with a clear message.
* **Complete or marked.** Every directory output carries ``.snncosim-output.json`` (its kind, and ``complete``);
  an output that failed part-way is either removed (interrupted) or published with ``complete: false`` and the
  error (so its logs can be read), and readers refuse it (:func:`require_complete`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from golden.core.errors import SnnCosimError

__all__ = ["OUTPUT_MARKER", "OutputPathError", "check_output_path", "make_public", "output_kind",
           "output_lock", "require_complete", "staged_output", "write_bytes_atomic", "write_text_atomic"]

OUTPUT_MARKER = ".snncosim-output.json"
NETWORK_FORMAT_NAME = "snncosim-integer-network"  # golden.core.network_file.FORMAT_NAME (kept here: network_file imports this module)


class OutputPathError(SnnCosimError):
    """An output path that snncosim must not write (a user's file or directory), or one in use."""


def make_public(path: str | os.PathLike) -> None:
    """Give a file or directory made by ``tempfile.mkstemp``/``mkdtemp`` (private 0600/0700) the permissions a
    plain ``open``/``mkdir`` would have under the current umask, before it is moved to its final name."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)


# ----------------------------------------------------------------------------------------------- single files
def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a unique temporary sibling renamed into place (never a half file, and
    two concurrent writers never share a temporary name). ``path``'s parent is created when missing."""
    path = Path(path)
    _make_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        make_public(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def temporary_sibling(path: str | os.PathLike, suffix: str = "") -> Path:
    """A unique, not yet existing name beside ``path`` (for writers that need a file name, e.g. numpy's savez)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    return Path(tmp)


def check_writable_file(path: str | os.PathLike, option: str) -> Path:
    """Before any work: ``path`` (e.g. ``--json F``) can be written later — not a directory, and its folder exists
    (or can be made) and is writable. Raises :class:`OutputPathError` naming ``option``."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a directory; give a file name")
    parent = _existing_ancestor(path.parent)
    if not parent.is_dir():
        raise OutputPathError(f"{option} {path}: {parent} is not a directory")
    if not _can_create_in(parent):
        raise OutputPathError(f"{option} {path}: {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{option} {path}: the file is not writable")
    return path


# ----------------------------------------------------------------------------------------------- directory outputs
def output_kind(path: str | os.PathLike) -> str | None:
    """The kind of snncosim output at ``path`` (``"network"``, ``"run"``, ``"verilog"``, …), or None when ``path``
    is not a directory written by snncosim."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return None
    marker = _read_marker(path)
    if marker is not None:
        return str(marker.get("kind") or "") or None
    manifest = path / "network.yaml"  # network directories of every format version (markers came later)
    if manifest.is_file() and (path / "arrays.npz").is_file():
        try:
            with open(manifest, encoding="utf-8", errors="replace") as handle:
                head = handle.read(4096)
        except OSError:
            return None
        if f"format: {NETWORK_FORMAT_NAME}" in head:
            return "network"
    return None


def check_output_path(path: str | os.PathLike, kind: str, *, force: bool = False, option: str = "output") -> Path:
    """Raise :class:`OutputPathError` unless ``path`` may receive a ``kind`` output: it does not exist, is an
    empty directory, or is an earlier snncosim output of ``kind`` (of another kind only with ``force``)."""
    path = Path(path)
    if path.is_symlink():
        raise OutputPathError(f"{option} {path}: is a symbolic link; snncosim does not write through links "
                              f"(give the real path)")
    if not path.exists():
        parent = _existing_ancestor(path.parent)
        if not parent.is_dir():
            raise OutputPathError(f"{option} {path}: {parent} is a file, not a directory")
        if not _can_create_in(parent):
            raise OutputPathError(f"{option} {path}: cannot create it, {parent} is not writable")
        return path
    if not path.is_dir():
        raise OutputPathError(f"{option} {path}: a file of that name exists and is not a snncosim output; "
                              f"snncosim never replaces it (choose another path)")
    if not _can_create_in(path.parent):
        raise OutputPathError(f"{option} {path}: cannot replace it, {path.parent} is not writable")
    if not any(path.iterdir()):
        return path
    found = output_kind(path)
    if found is None:
        raise OutputPathError(f"{option} {path}: the directory exists, is not empty and was not written by "
                              f"snncosim; snncosim never removes it (choose a new or empty directory)")
    if found != kind and not force:
        raise OutputPathError(f"{option} {path}: holds an earlier snncosim {found} output, not a {kind}; "
                              f"use --force to replace it")
    return path


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, what: str = "output"):
    """Hold an exclusive, non-blocking lock on the output ``path`` (a sibling ``.NAME.lock``, removed on
    release). A second holder is refused at once with :class:`OutputPathError`."""
    path = Path(path)
    _make_parent(path)
    lock_path = path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            owner = _lock_owner(lock_path)
            raise OutputPathError(f"{path}: another snncosim process{owner} is writing this {what}; wait for it "
                                  f"to finish or choose another path") from None
        try:  # the file we locked may have been removed by the previous holder: lock the current one
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock_path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)


@contextlib.contextmanager
def staged_output(path: str | os.PathLike, kind: str, *, force: bool = False, option: str = "output",
                  publish_failures=False, info: dict | None = None):
    """Build a ``kind`` directory output for ``path`` in a fresh hidden sibling, yielded as a :class:`Path`;
    rename it into place when the block ends normally.

    ``path`` is checked (:func:`check_output_path`) and locked (:func:`output_lock`) first. When the block
    raises, the staging directory is removed — except for an ordinary exception (not an interruption:
    KeyboardInterrupt, SystemExit) for which ``publish_failures`` (a bool, or a predicate of the exception) is
    true: then it is published marked incomplete with the error, so that its logs stay readable (``snncosim
    report``/``compare`` refuse it). ``info`` goes into the marker."""
    path = Path(path)
    check_output_path(path, kind, force=force, option=option)
    with output_lock(path, what=f"{kind} directory"):
        check_output_path(path, kind, force=force, option=option)  # again, now that nobody else writes it
        _remove_stale_parts(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.part-", dir=path.parent))
        marker = {"kind": kind, "complete": False, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "pid": os.getpid(), **(info or {})}
        try:
            _write_marker(staging, marker)
            yield staging
        except BaseException as exc:
            publish = publish_failures(exc) if callable(publish_failures) else publish_failures
            if publish and isinstance(exc, Exception):
                marker["error"] = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:500]
                with contextlib.suppress(Exception):
                    _write_marker(staging, marker)
                    _publish(staging, path)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        marker["complete"] = True
        marker["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        _write_marker(staging, marker)
        _publish(staging, path)


def mark_output(path: str | os.PathLike, kind: str) -> None:
    """Write a complete marker of ``kind`` into a directory output written in place (not through
    :func:`staged_output`)."""
    _write_marker(Path(path), {"kind": kind, "complete": True, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})


def require_complete(path: str | os.PathLike, kind: str, what: str) -> dict:
    """The marker of a complete ``kind`` output at directory ``path``; :class:`OutputPathError` for a missing,
    foreign, still-running or failed one. ``what`` names the argument in the message."""
    path = Path(path)
    if not path.is_dir():
        raise OutputPathError(f"{what} {path}: no such directory")
    marker = _read_marker(path)
    if marker is None or marker.get("kind") != kind:
        found = "" if marker is None else f" (it is a snncosim {marker.get('kind')} output)"
        raise OutputPathError(f"{what} {path}: not a snncosim {kind} directory{found}")
    if not marker.get("complete"):
        error = marker.get("error")
        raise OutputPathError(f"{what} {path}: the {kind} is incomplete"
                              + (f" (it failed: {error})" if error else " (it was interrupted or is still running)"))
    return marker


def incomplete_output_of(path: str | os.PathLike) -> dict | None:
    """For a file inside a snncosim directory output (e.g. a trace of a run): the marker of that directory when
    the output is incomplete, else None."""
    for folder in list(Path(path).resolve().parents)[:3]:
        marker = _read_marker(folder)
        if marker is not None:
            return None if marker.get("complete") else {**marker, "path": str(folder)}
    return None


# ----------------------------------------------------------------------------------------------- internals
def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder``, by trying (permission bits say nothing to root, nor about a
    read-only file system)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".snncosim-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputPathError(f"{path}: a parent of it is a file, not a directory") from None
    except PermissionError:
        raise OutputPathError(f"{path}: cannot create {path.parent} (permission denied)") from None


def _read_marker(folder: Path) -> dict | None:
    try:
        marker = json.loads((folder / OUTPUT_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _write_marker(folder: Path, marker: dict) -> None:
    write_text_atomic(folder / OUTPUT_MARKER, json.dumps(marker, indent=1) + "\n")


def _lock_owner(lock_path: Path) -> str:
    try:
        pid = int(lock_path.read_text().strip() or 0)
    except (OSError, ValueError):
        return ""
    return f" (pid {pid})" if pid else ""


def _remove_stale_parts(path: Path) -> None:
    """Staging siblings of ``path`` left by a process that was killed outright (we hold the lock: none is live)."""
    for stale in path.parent.glob(f".{path.name}.part-*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _publish(staging: Path, path: Path) -> None:
    """Rename ``staging`` to ``path``; an existing ``path`` (checked replaceable) is moved aside first and removed
    only once the new output is in place."""
    make_public(staging)
    if not path.exists():
        os.replace(staging, path)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    aside.rmdir()
    os.replace(path, aside)
    try:
        os.replace(staging, path)
    except BaseException:
        os.replace(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)
