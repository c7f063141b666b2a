"""Files that may be hostile: one bounded, non-blocking, optionally private read; a regular
file opened without following a link or blocking on a FIFO; an atomic private write.

:func:`read_bounded_file` is used for key files and ``vault.json`` (here), PIN and passphrase
files, node records and files named on the command line. The file is opened with
``O_NONBLOCK`` (a FIFO cannot block the read) and, unless ``follow_symlinks``, ``O_NOFOLLOW``;
it must be a regular file (:func:`open_regular_file`), at most ``limit`` bytes (checked before
and while reading), and with ``private`` owned by this user and inaccessible to group and
others. Anything else raises :class:`FileRefused`, whose ``reason`` lets each caller raise its
own typed error and whose ``message`` is one line.

:func:`write_private_file` writes key files, ``vault.json`` and a node's records.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["REASONS", "FileRefused", "open_regular_file", "read_bounded_file",
           "write_private_file"]

REASONS: Final = frozenset({"missing", "link", "directory", "not_regular", "not_private",
                            "too_large", "unreadable"})


class FileRefused(Exception):
    """A file was not read. ``reason`` is one of :data:`REASONS`; ``detail`` is the OS's words
    (``unreadable``, ``missing``) or the size found (``too_large``)."""

    def __init__(self, reason: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail


def open_regular_file(path: str | Path, flags: int = os.O_RDONLY, mode: int = 0o600, *,
                      follow_symlinks: bool = False, what: str = "") -> int:
    """A descriptor of regular file ``path`` opened with ``flags`` (``O_CREAT`` creates it with
    ``mode``), plus ``O_NONBLOCK`` (a FIFO cannot block the open or a read: the descriptor
    stays non-blocking) and, unless ``follow_symlinks``, ``O_NOFOLLOW``; :class:`FileRefused`
    (``missing``, ``link``, ``directory``, ``not_regular``, ``unreadable``) otherwise."""
    name = f"{what} {path}" if what else str(path)
    flags |= os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, mode)
    except FileNotFoundError as e:
        raise FileRefused("missing", f"{name} does not exist", e.strerror or str(e)) from None
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_symlinks:
            raise FileRefused("link", f"{name} is a symbolic link; refusing it") from None
        if e.errno == errno.ENXIO:  # opened for writing: a FIFO without a reader, or a device
            raise FileRefused("not_regular", f"{name} is not a regular file") from None
        if e.errno == errno.EISDIR:
            raise FileRefused("directory", f"{name} is a directory, not a regular file") from None
        raise FileRefused("unreadable", f"cannot read {name}: {e.strerror or e}",
                          e.strerror or str(e)) from None
    try:
        st_mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(st_mode):
            raise FileRefused("directory", f"{name} is a directory, not a regular file")
        if not stat.S_ISREG(st_mode):
            raise FileRefused("not_regular", f"{name} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded_file(path: str | Path, *, limit: int, follow_symlinks: bool = False,
                      private: bool = False, what: str = "") -> bytes:
    """The bytes of ``path`` (see the module docstring); ``what`` names it in messages."""
    name = f"{what} {path}" if what else str(path)
    fd = open_regular_file(path, follow_symlinks=follow_symlinks, what=what)
    try:
        st = os.fstat(fd)
        if private:
            if st.st_uid != os.geteuid():
                raise FileRefused("not_private",
                                  f"{path} is owned by another user (uid {st.st_uid})")
            if st.st_mode & 0o077:
                raise FileRefused("not_private", f"{path} is accessible by others (mode "
                                  f"{st.st_mode & 0o777:04o}); run: chmod 0600 {path}")
        if st.st_size > limit:
            raise FileRefused("too_large", f"{name} is too large ({st.st_size} bytes, at most "
                              f"{limit})", str(st.st_size))
        chunks = []
        left = limit + 1
        while left > 0:
            try:
                chunk = os.read(fd, left)
            except OSError as e:
                raise FileRefused("unreadable", f"cannot read {name}: {e.strerror or e}",
                                  e.strerror or str(e)) from None
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise FileRefused("too_large", f"{name} is too large (more than {limit} bytes)",
                              str(len(data)))
        return data
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600: a temp file of an unpredictable
    name in the same directory (created ``O_EXCL | O_NOFOLLOW``: nothing planted there is
    written through), renamed over the target (a symbolic link there is replaced, not
    followed). ``durable``: the file and the directory are fsynced too. The temp file is removed
    on error; the ``OSError`` is raised."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
