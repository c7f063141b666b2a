"""A background node's files in ``$TRUSTSTACK_HOME/nodes/<name>/``.

* ``node.json``  the node's configuration (name, identity, requested TCP listener, created_at,
  and the identifier once the node has started); written by ``node create``.
* ``state.json`` what the running node reports (pid, listeners, identifier, control endpoint,
  started_at); written by the node when it is ready, removed when it stops.
* ``pid``        the node's process id.
* ``lock``       held (``flock``) by the running node: the reliable "is it running" test.
* ``node.log``   the node's log (and anything it prints).
* ``control.sock`` the control endpoint (a Unix socket) when its path fits the 107-byte limit,
  else ``control.json``: ``{"host": "127.0.0.1", "port": N, "token": "<hex>"}`` (mode 0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from trust.errors import NotFoundError, StorageError, UsageError
from trust.home import ensure_dir, ensure_home, home_dir

__all__ = [
    "UNIX_PATH_LIMIT",
    "NodePaths",
    "list_node_names",
    "nodes_dir",
    "pid_alive",
    "read_json",
    "validate_node_name",
    "write_json",
]

UNIX_PATH_LIMIT = 107
"""Longest Unix socket path (bytes) that fits ``sockaddr_un.sun_path`` with its NUL."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def validate_node_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UsageError(f"invalid node name {name!r}: use 1-63 letters, digits, '.', '_' or "
                         "'-', starting with a letter or digit")
    return name


def nodes_dir(home: str | os.PathLike[str] | None = None) -> Path:
    return home_dir(home) / "nodes"


def list_node_names(home: str | os.PathLike[str] | None = None) -> list[str]:
    d = nodes_dir(home)
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.is_dir() and _NAME.match(p.name))


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


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` when it does not exist (or is half written)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically (temp file + rename), mode 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(f"cannot write {path}: {e.strerror or e}") from None


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
        """The node's configuration; :class:`NotFoundError` when there is no such node."""
        config = read_json(self.config)
        if config is None:
            raise NotFoundError(f"no node named {self.name}")
        return config

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
        try:
            text = self.pid.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def is_running(self) -> bool:
        """True while a node process holds the lock."""
        try:
            fd = os.open(self.lock, os.O_RDONLY)
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
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd
