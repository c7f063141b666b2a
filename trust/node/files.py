"""A background node's files in ``$TRUSTSTACK_HOME/nodes/<name>/``.

* ``node.json``  the node's configuration (name, identity, requested TCP listener, the
  authorities it trusts and the credential it presents, created_at, and the identifier once
  the node has started; with ``--ticket`` or ``--authority-route``: the authority's route,
  the revocation refresh interval and whether the credential is refreshed from the authority);
  written by ``node create``.
* ``revocation.bin`` the last revocation list the node accepted from its authority (signed;
  verified again when the node starts).
* ``state.json`` what the running node reports (pid, listeners, identifier, control endpoint,
  started_at); written by the node when it is ready, removed when it stops.
* ``pid``        the node's process id.
* ``lock``       held (``flock``) by the running node: the reliable "is it running" test.
* ``node.log``   the node's log (and anything it prints).
* ``control.sock`` the control endpoint (a Unix socket) when its path fits the 107-byte limit,
  else ``control.json``: ``{"host": "127.0.0.1", "port": N, "token": "<hex>"}`` (mode 0600).

These files are read as hostile input (anyone who can write them could also have planted them):
each is opened without following a symbolic link and without blocking on a FIFO, must be a
regular file of at most :data:`MAX_RECORD_BYTES`, and its JSON must be an object whose known
fields have their types (:data:`RECORD_FIELDS`); ``control.json`` (it holds a token) must also be
private to this user. Anything else is a :class:`~trust.errors.StorageError` naming the file.
Unknown fields are kept, so newer records can add some.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trust.errors import NotFoundError, StorageError, UsageError
from trust.home import ensure_dir, ensure_home, home_dir
from vaults.safe_files import FileRefused, open_regular_file, read_bounded_file, write_private_file

__all__ = [
    "MAX_RECORD_BYTES",
    "RECORD_FIELDS",
    "UNIX_PATH_LIMIT",
    "NodePaths",
    "list_node_names",
    "nodes_dir",
    "open_append",
    "pid_alive",
    "read_json",
    "read_record",
    "read_tail",
    "validate_node_name",
    "write_json",
    "write_private",
]

UNIX_PATH_LIMIT = 107
"""Longest Unix socket path (bytes) that fits ``sockaddr_un.sun_path`` with its NUL."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def validate_node_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise UsageError(f"invalid node name {name!r}: use 1-63 letters, digits, '.', '_' or "
                         "'-', starting with a letter or digit")
    return name


def nodes_dir(home: str | os.PathLike[str] | None = None) -> Path:
    return home_dir(home) / "nodes"


def list_node_names(home: str | os.PathLike[str] | None = None) -> list[str]:
    d = nodes_dir(home)
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir()
                  if _NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink())


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


MAX_RECORD_BYTES = 65536
"""Largest node record read (ours are a few hundred bytes)."""

MAX_PID = 1 << 22  # Linux's highest pid_max
_PID_TEXT = re.compile(rb"^[0-9]{1,7}\n?$")
_TOKEN = re.compile(r"^[0-9a-f]{32,128}$")


def _optional_str(limit: int = 1024) -> Callable[[Any], bool]:
    return lambda v: v is None or (isinstance(v, str) and len(v) <= limit)


def _str(limit: int = 1024) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and len(v) <= limit


def _int_in(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and lo <= v <= hi


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 1024 and all(isinstance(x, str) and len(x) <= 1024
                                                          for x in v)


def _object(v: Any) -> bool:
    return isinstance(v, dict)


_TIME = _int_in(0, 1 << 40)


def _seconds(v: Any) -> bool:
    return type(v) in (int, float) and 0 < v <= 10 * 365 * 86400


def _optional_str_list(v: Any) -> bool:
    return v is None or _str_list(v)


_HEX = re.compile(r"^[0-9a-f]{2,16384}$")


def _hex_list(v: Any) -> bool:
    return v is None or (isinstance(v, list) and len(v) <= 8
                         and all(isinstance(x, str) and _HEX.fullmatch(x) is not None for x in v))


def _optional_hex(v: Any) -> bool:
    return v is None or (isinstance(v, str) and _HEX.fullmatch(v) is not None)


def _optional_bool(v: Any) -> bool:
    return v is None or type(v) is bool


def _optional_refresh(v: Any) -> bool:
    return v is None or (type(v) in (int, float) and 0.1 <= v <= 86400)

RECORD_FIELDS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "node.json": {"name": _str(63), "identity": _optional_str(), "identifier": _optional_str(),
                  "tcp_listener_address": _optional_str(), "created_at": _TIME,
                  "hop_allow": _optional_str_list, "max_connections": _int_in(1, 1_000_000),
                  "idle_timeout": _seconds, "stall_timeout": _seconds,
                  "authorities": _hex_list, "credential": _optional_hex,
                  "authority_route": _optional_str(4096),
                  "revocation_refresh": _optional_refresh,
                  "credential_refresh": _optional_bool},
    "state.json": {"name": _str(63), "pid": _int_in(1, MAX_PID), "status": _str(32),
                   "listeners": _str_list, "identity": _optional_str(),
                   "identifier": _optional_str(), "control": _object, "started_at": _TIME,
                   "authorities": _str_list},
    "control.json": {"transport": lambda v: v == "tcp", "host": _str(255),
                     "port": _int_in(1, 65535),
                     "token": lambda v: isinstance(v, str) and _TOKEN.fullmatch(v) is not None},
}
"""Per record file: the known fields and the test each value must pass when present (a record
owner adding a field adds its test here)."""

_REQUIRED = {"node.json": ("name",), "control.json": ("port", "token")}
_PRIVATE = {"control.json"}


def read_record(path: Path, *, limit: int = MAX_RECORD_BYTES, private: bool = False) -> bytes | None:
    """The bytes of node record ``path`` (``None`` when it does not exist). A symbolic link, a
    FIFO or other non-regular file, a file over ``limit`` bytes or (``private``) one that another
    user owns or others can access is a :class:`StorageError` naming it."""
    try:
        return read_bounded_file(path, limit=limit, private=private)
    except FileRefused as e:
        if e.reason == "missing":
            return None
        raise StorageError(e.message) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in record ``path``, or ``None`` when it does not exist. Records are written
    atomically, so anything else (not a regular file, too large, not a JSON object, a known field
    of the wrong type: see :data:`RECORD_FIELDS`) is a :class:`StorageError` naming the file."""
    data = read_record(path, private=path.name in _PRIVATE)
    if data is None:
        return None
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise StorageError(f"{path} is not valid JSON (tampered with? remove the node and create "
                           "it again)") from None
    if not isinstance(doc, dict):
        raise StorageError(f"{path} does not hold a JSON object")
    fields = RECORD_FIELDS.get(path.name, {})
    for key in _REQUIRED.get(path.name, ()):
        if key not in doc:
            raise StorageError(f"{path} has no {key!r}")
    for key, valid in fields.items():
        if key in doc and not valid(doc[key]):
            raise StorageError(f"{path}: {key!r} has a wrong type or value")
    return doc


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600, never through a symbolic link or a file
    planted in the temp file's place (:func:`vaults.safe_files.write_private_file`; a node's
    records are rewritten at run time, so not fsynced); :class:`StorageError` naming the file
    when that fails."""
    try:
        write_private_file(path, data, durable=False)
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror or e}") from None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically, mode 0600 (see :func:`write_private`)."""
    write_private(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def open_append(path: Path) -> int:
    """A descriptor appending to regular file ``path`` (created with mode 0600 when absent),
    opened without following a symbolic link or blocking on a FIFO
    (:func:`vaults.safe_files.open_regular_file`); :class:`StorageError` naming the file
    otherwise."""
    try:
        fd = open_regular_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except FileRefused as e:
        if e.reason == "unreadable":
            raise StorageError(f"cannot write {path}: {e.detail}") from None
        raise StorageError(e.message) from None
    os.set_blocking(fd, True)
    return fd


def read_tail(path: Path, limit: int) -> tuple[bytes, bool]:
    """At most the last ``limit`` bytes of regular file ``path`` (opened without following a
    symbolic link or blocking on a FIFO: :func:`vaults.safe_files.open_regular_file`) and
    whether earlier bytes were left out; ``(b"", False)`` when it does not exist,
    :class:`StorageError` naming the file otherwise."""
    try:
        fd = open_regular_file(path)
    except FileRefused as e:
        if e.reason == "missing":
            return b"", False
        raise StorageError(e.message) from None
    try:
        start = max(0, os.fstat(fd).st_size - limit)
        chunks: list[bytes] = []
        got = 0
        while got < limit:
            chunk = os.pread(fd, min(1 << 20, limit - got), start + got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks), start > 0
    except OSError as e:
        raise StorageError(f"cannot read {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


class NodePaths:
    """The files of node ``name`` in ``home``."""

    def __init__(self, name: str, home: str | os.PathLike[str] | None = None) -> None:
        self.name = validate_node_name(name)
        self.home = home_dir(home)
        self.dir = nodes_dir(self.home) / name
        self.config = self.dir / "node.json"
        self.state = self.dir / "state.json"
        self.pid = self.dir / "pid"
        self.lock = self.dir / "lock"
        self.log = self.dir / "node.log"
        self.socket = self.dir / "control.sock"
        self.control_tcp = self.dir / "control.json"

    @property
    def unix_socket_fits(self) -> bool:
        return len(os.fsencode(self.socket)) <= UNIX_PATH_LIMIT

    def exists(self) -> bool:
        return self.config.is_file()

    def require(self) -> dict[str, Any]:
        """The node's configuration; :class:`NotFoundError` when there is no such node,
        :class:`StorageError` when its ``node.json`` is malformed."""
        config = read_json(self.config)
        if config is None:
            raise NotFoundError(f"no node named {self.name}")
        if config["name"] != self.name:
            raise StorageError(f"{self.config} names another node")
        return config

    def read_state(self) -> dict[str, Any] | None:
        """What the running node wrote to ``state.json`` (``None`` when absent)."""
        return read_json(self.state)

    def read_control(self) -> dict[str, Any] | None:
        """The TCP control endpoint and token from ``control.json`` (``None`` when absent)."""
        return read_json(self.control_tcp)

    def create_dir(self) -> None:
        ensure_home(self.home)
        ensure_dir(nodes_dir(self.home))
        try:
            self.dir.mkdir(mode=0o700)
        except FileExistsError:
            raise FileExistsError(str(self.dir)) from None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def read_pid(self) -> int | None:
        """The pid in ``pid`` (``None`` when absent or still being written); a file that is not
        a regular file or does not hold a pid is a :class:`StorageError`."""
        data = read_record(self.pid, limit=16)
        if data is None or not data:
            return None
        if not _PID_TEXT.fullmatch(data):
            raise StorageError(f"{self.pid} does not hold a process id")
        pid = int(data)
        if not 0 < pid <= MAX_PID:
            raise StorageError(f"{self.pid} does not hold a process id")
        return pid

    def write_pid(self, pid: int) -> None:
        """Record ``pid`` in ``pid`` (atomically, mode 0600, never through a symbolic link)."""
        write_private(self.pid, f"{pid}\n".encode("ascii"))

    def is_running(self) -> bool:
        """True while a node process holds the lock."""
        try:
            fd = os.open(self.lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def acquire_lock(self) -> int | None:
        """Take the node's lock for this process (``None`` when another process has it)."""
        try:
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StorageError(f"cannot open {self.lock}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd
