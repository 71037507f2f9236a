"""Writing files so that neither a crash nor a full disk leaves a half-written file in place.

A file is written to a temporary sibling ``<name>.tmp``, flushed to the disk (``fsync``) and renamed
over the target (``os.replace``, atomic on POSIX); the folder is fsynced too, so that the rename
survives a power cut. A process killed mid-write leaves the target as it was (and at worst a stale
``.tmp``, overwritten by the next write); a failed write removes its temporary file and raises
``WriteError``, an ``OSError`` whose one-line message names the file and the reason (``no space
left on device``, ``file too large``).

The shared base: used by training (checkpoints, ONNX export) and by the replay (its outputs).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"


class WriteError(OSError):
    """Writing ``filename`` failed (``errno``: ENOSPC, EFBIG, EIO, ...); ``str()`` is one line."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def temp_path(path: str | Path) -> Path:
    """The temporary sibling a file is written to before it replaces ``path``."""
    path = Path(path)
    return path.with_name(path.name + TEMP_SUFFIX)


def _os_error_behind(exc: BaseException) -> OSError | None:
    # torch.save reports a failed write as a RuntimeError whose context is the OSError. An error
    # raised ``from None`` has put its context aside (a bag reader's OSError behind a ReplayError).
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return None


def _write_error(exc: BaseException, path: str | Path) -> WriteError | None:
    """``exc`` as a WriteError naming ``path``, or None when it is no write failure."""
    if isinstance(exc, WriteError):
        return exc
    if isinstance(exc, sqlite3.Error):  # rosbag2 sqlite3 storage; SQLite hides the errno
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_FULL":
            return WriteError(errno.ENOSPC, f"no space left on device ({exc})", str(path))
        if name.startswith("SQLITE_IOERR"):
            return WriteError(errno.EIO, f"{exc} ({name}: disk full or file too large?)", str(path))
        return None
    err = _os_error_behind(exc)
    if err is None:
        return None
    code = err.errno if err.errno is not None else errno.EIO
    reason = os.strerror(code) if err.errno is not None else str(err)
    return WriteError(code, reason[:1].lower() + reason[1:], str(path))


@contextlib.contextmanager
def named_write_errors(path: str | Path) -> Iterator[None]:
    """Inside the block, a failed write (an ``OSError``, also one wrapped by a library, or a SQLite
    I/O error) becomes a ``WriteError`` naming ``path``; other errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        err = _write_error(exc, path)
        if err is None or err is exc:
            raise
        raise err from exc


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield the temporary path to write; when the block succeeds it is fsynced and replaces ``path``.

    On any failure (an exception, KeyboardInterrupt included) the temporary file is removed and
    ``path`` is left as it was; write failures are raised as ``WriteError``.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with named_write_errors(path):
            yield tmp
            _fsync(tmp)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    # The rename is done; a folder that cannot be fsynced (some network filesystems) changes nothing.
    with contextlib.suppress(OSError):
        _fsync(path.parent, directory=True)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing, atomically (see ``atomic_path``)."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as f:
        yield f


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` by ``data`` atomically; ``WriteError`` leaves the previous file intact."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Replace ``path`` by ``text`` atomically; ``WriteError`` leaves the previous file intact."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def keep_copy(src: str | Path, dst: str | Path) -> Path:
    """Keep ``src`` as it is now under the name ``dst``, atomically: a hard link where the filesystem
    has them (no second copy on disk until ``src`` is next replaced, as every write here replaces a
    file rather than changing it), else a copy."""
    with atomic_path(dst) as tmp:
        tmp.unlink(missing_ok=True)  # a stale one from a killed run
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
    return Path(dst)
