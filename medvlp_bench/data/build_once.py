"""Cache entries that many processes share: built once under a file lock, published by an atomic rename.

Protocol (used by the prepared-image, array, feature and split caches and the synthetic store): a reader that finds
the finished entry uses it without locking. Otherwise it takes an exclusive ``flock`` on a lock file beside the
entry, checks again (another process may have finished it meanwhile), and only then builds it into a temporary name
unique to the host, process and call (:func:`temporary_path`) and renames it into place (:func:`os.replace`, atomic
on POSIX). So any number of processes on one ``MEDVLP_HOME`` (on one machine, or on several sharing a file system
with working ``flock``, as NFSv4 and Lustre provide) build each entry once, wait for it instead of duplicating the
work, and never see a half-written entry; a killed builder leaves at most a temporary file and releases its lock.
"""

from __future__ import annotations

import fcntl
import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the duration of the block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_path(entry: Path) -> Path:
    """The lock file of a cache entry: ``.<name>.lock`` beside it."""
    entry = Path(entry)
    return entry.parent / f".{entry.name}.lock"


def temporary_path(entry: Path, suffix: str = "") -> Path:
    """A hidden temporary name beside ``entry``, unique to this host, process and call (ends in ``suffix``)."""
    entry = Path(entry)
    return entry.parent / f".{entry.name}.{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{suffix}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` durably and atomically: a temporary file beside it (:func:`temporary_path`),
    flushed and fsynced, renamed over ``path`` (:func:`os.replace`), then the folder fsynced. Readers see the old
    file or the new one, never a part; a killed writer leaves at most a hidden temporary file."""
    path = Path(path)
    temporary = temporary_path(path)
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_folder(folder: Path) -> None:
    """Persist the folder entry of a rename (POSIX); Windows cannot open folders and needs no such step."""
    if os.name == "nt":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
