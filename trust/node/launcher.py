"""Create, start, inspect, stop and delete background nodes (what ``truststack node`` does).

A node is started as ``python -m trust.node run NAME`` in a new session, with its output in
``nodes/NAME/node.log``; it reports readiness (or the reason it failed) on a pipe, so
:func:`create_node` returns only once the node listens and answers on its control endpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from trust.errors import ConflictError, NotFoundError, TrustError, UsageError
from trust.node.control import error_from_wire
from trust.node.control_client import ControlClient, NodeNotRunningError
from trust.node.files import (
    NodePaths,
    list_node_names,
    open_append,
    pid_alive,
    read_json,
    write_json,
)
from trust.node.limits import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_STALL_TIMEOUT
from trust.transports.addresses import check_hop_allow, split_host_port

__all__ = [
    "START_TIMEOUT",
    "create_node",
    "delete_node",
    "list_nodes",
    "node_config",
    "node_status",
    "start_node",
    "stop_node",
]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def _check_listener(address: str | None) -> None:
    if address is not None:
        split_host_port(address)


MAX_AUTHORITIES = 8
"""Authorities a node may trust (``node create --authority``)."""
MAX_AUTHORITY_HEX = 16384
"""Longest recorded authority change history or credential (hex characters)."""


def check_authorities(authorities: Iterable[str], credential: str | None = None, *,
                      now: int | None = None) -> tuple[list[str], str | None]:
    """Validate ``node create --authority`` change histories (hex; each must verify) and the
    ``--credential`` the node presents (hex; it must verify against one of them); return them
    normalized (lowercase hex, duplicates left out)."""
    authorities = list(authorities)
    if not authorities and credential is None:
        return [], None  # (the common case: without importing the verifiers, ~70 ms)
    from trust.credentials.verification import verify_credential
    from trust.errors import DecodeError, VerificationError
    from trust.identities.identity import verify_change_history
    from trust.models.credential import CredentialAndPurposeKey

    histories: list[str] = []
    identities = []
    for history in authorities:
        text = history.strip().lower()
        if len(text) > MAX_AUTHORITY_HEX:
            raise UsageError(f"an authority's change history is longer than {MAX_AUTHORITY_HEX} "
                             "hex digits")
        try:
            identity = verify_change_history(bytes.fromhex(text))
        except ValueError:
            raise UsageError("an authority must be a change history in hex") from None
        if text not in histories:
            histories.append(text)
            identities.append(identity)
    if len(histories) > MAX_AUTHORITIES:
        raise UsageError(f"at most {MAX_AUTHORITIES} authorities")
    if credential is None:
        return histories, None
    text = credential.strip().lower()
    if not identities:
        raise UsageError("--credential needs the --authority that issued it")
    if len(text) > MAX_AUTHORITY_HEX:
        raise UsageError(f"the credential is longer than {MAX_AUTHORITY_HEX} hex digits")
    try:
        cpk = CredentialAndPurposeKey.decode(bytes.fromhex(text))
    except ValueError:
        raise UsageError("the credential must be hex") from None
    except DecodeError as e:
        raise DecodeError(f"the credential does not decode: {e}") from None
    try:
        verify_credential(cpk, identities, now=now)
    except VerificationError as e:
        raise VerificationError(f"the node's credential does not verify: {e}") from None
    return histories, text


def node_config(name: str, *, identity: str | None = None,
                tcp_listener_address: str | None = None, hop_allow: Iterable[str] = (),
                max_connections: int = DEFAULT_MAX_CONNECTIONS,
                idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                stall_timeout: float = DEFAULT_STALL_TIMEOUT,
                authorities: Iterable[str] = (), credential: str | None = None,
                now: Callable[[], float] = time.time,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The configuration ``node create`` records (validated; ``node start`` reuses it).

    ``authorities`` are the change histories (hex) of the authorities the node trusts, and
    ``credential`` (hex) the credential it presents, issued by one of them. ``extra``: more
    recorded fields (each must be a known ``node.json`` field and pass its test in
    :data:`~trust.node.files.RECORD_FIELDS`, e.g. ``authority_route``)."""
    _check_listener(tcp_listener_address)
    histories, credential = check_authorities(authorities, credential, now=int(now()))
    hop_allow = check_hop_allow(hop_allow)
    if isinstance(max_connections, bool) or not isinstance(max_connections, int) \
            or not 1 <= max_connections <= 1_000_000:
        raise UsageError(f"invalid max connections {max_connections!r} (1-1000000)")
    for flag, value in (("idle timeout", idle_timeout), ("stall timeout", stall_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or value > 10 * 365 * 86400:
            raise UsageError(f"invalid {flag} {value!r}: must be positive")
    config = {"name": name, "identity": identity, "tcp_listener_address": tcp_listener_address,
              "hop_allow": hop_allow, "max_connections": max_connections,
              "idle_timeout": float(idle_timeout), "stall_timeout": float(stall_timeout),
              "authorities": histories, "credential": credential, "created_at": int(now())}
    if extra:
        from trust.node.files import RECORD_FIELDS

        fields = RECORD_FIELDS["node.json"]
        for key, value in extra.items():
            if key in config or key not in fields or not fields[key](value):
                raise UsageError(f"node setting {key!r} is unknown or invalid")
            config[key] = value
    return config


def create_node(name: str, *, home: str | os.PathLike[str] | None = None,
                tcp_listener_address: str | None = None, identity: str | None = None,
                hop_allow: Iterable[str] = (),
                max_connections: int = DEFAULT_MAX_CONNECTIONS,
                idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                stall_timeout: float = DEFAULT_STALL_TIMEOUT,
                authorities: Iterable[str] = (), credential: str | None = None,
                now: Callable[[], float] = time.time,
                timeout: float = START_TIMEOUT,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record node ``name`` and start it in the background; return its state when ready.

    ``hop_allow`` (``HOST:PORT`` or ``*``), ``max_connections``, ``idle_timeout`` and
    ``stall_timeout`` (seconds) are recorded for ``node start`` too (see ``Node(...)``), and so
    are ``authorities`` (change histories, hex), the node's ``credential`` (hex) and
    ``extra`` fields (see :func:`node_config`).
    A :class:`ConflictError` when the name is taken; if the node cannot start (e.g. its port
    is in use) its record is removed again and the node's own error is raised (the node
    opens its listener before it creates its identity: nothing is left behind).
    """
    paths = NodePaths(name, home)
    config = node_config(name, identity=identity, tcp_listener_address=tcp_listener_address,
                         hop_allow=hop_allow, max_connections=max_connections,
                         idle_timeout=idle_timeout, stall_timeout=stall_timeout,
                         authorities=authorities, credential=credential, now=now,
                         extra=extra)
    try:
        paths.create_dir()
    except FileExistsError:
        raise ConflictError(f"a node named {name} already exists") from None
    try:
        write_json(paths.config, config)
        return _spawn(paths, timeout)
    except BaseException:
        paths.remove()
        raise


def start_node(name: str, *, home: str | os.PathLike[str] | None = None,
               timeout: float = START_TIMEOUT) -> dict[str, Any]:
    """Start a stopped node again with its recorded configuration."""
    paths = NodePaths(name, home)
    paths.require()
    if paths.is_running():
        raise ConflictError(f"node {name} is already running")
    return _spawn(paths, timeout)


def _spawn(paths: NodePaths, timeout: float) -> dict[str, Any]:
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "trust.node", "run", paths.name, "--home", str(paths.home),
           "--ready-fd", str(write_fd)]
    try:
        log = open_append(paths.log)
    except TrustError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, pass_fds=(write_fd,),
                                start_new_session=True, close_fds=True)
    finally:
        os.close(log)
        os.close(write_fd)
    try:
        paths.write_pid(proc.pid)
    except TrustError:
        _kill(proc.pid)
        proc.wait(timeout=5)
        os.close(read_fd)
        raise
    try:
        message = _read_ready(read_fd, proc, timeout)
    finally:
        os.close(read_fd)
    if message is None:
        _kill(proc.pid)
        proc.wait(timeout=5)
        raise TrustError(f"node {paths.name} did not start within {timeout:g}s "
                         f"(see truststack node logs {paths.name})")
    if not message.get("ok"):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
        raise error_from_wire(message.get("error"))
    state = message.get("state")
    if not isinstance(state, dict):
        raise TrustError(f"node {paths.name} sent a malformed readiness message")
    return state


def _read_ready(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        exited = proc.poll() is not None
        ready, _, _ = select.select([fd], [], [], 0 if exited else min(left, 0.5))
        if not ready:
            if exited:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    if b"\n" not in buf:
        code = proc.wait(timeout=STOP_TIMEOUT)
        return {"ok": False, "error": {"kind": "error",
                                       "message": f"the node process exited ({code}) before it "
                                       "was ready; see its log"}}
    try:
        message = json.loads(buf.split(b"\n", 1)[0])
    except ValueError:
        return {"ok": False, "error": {"kind": "error", "message": "malformed readiness message"}}
    return message if isinstance(message, dict) else None


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def node_status(name: str, home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What ``node show`` prints: the live state of a running node, or its record."""
    paths = NodePaths(name, home)
    config = paths.require()
    if paths.is_running():
        try:
            state = ControlClient.for_node(name, home).request("node.show", timeout=5)
            state.pop("control", None)
            return {**state, "status": "running"}
        except NodeNotRunningError:
            state = read_json(paths.state) or {}
            return {"name": name, "pid": paths.read_pid(), "status": "unresponsive",
                    "listeners": state.get("listeners", []),
                    "identity": state.get("identity") or config.get("identity") or name,
                    "identifier": state.get("identifier") or config.get("identifier")}
    return {"name": name, "pid": None, "status": "stopped", "listeners": [],
            "identity": config.get("identity") or name,
            "identifier": config.get("identifier")}


def list_nodes(home: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every node's name, status, pid, listeners and identifier. A node whose files cannot be
    read (e.g. a ``pid`` that is a symbolic link) is listed with status ``error`` and the reason
    in ``error``; the others are listed as usual."""
    out = []
    for name in list_node_names(home):
        paths = NodePaths(name, home)
        try:
            config = read_json(paths.config)
            if config is None:
                continue
            running = paths.is_running()
            state = read_json(paths.state) if running else None
            out.append({"name": name, "status": "running" if running else "stopped",
                        "pid": paths.read_pid() if running else None,
                        "listeners": (state or {}).get("listeners", []),
                        "identifier": (state or {}).get("identifier") or config.get("identifier")})
        except TrustError as e:
            out.append({"name": name, "status": "error", "pid": None, "listeners": [],
                        "identifier": None, "error": str(e)})
    return out


def stop_node(name: str, home: str | os.PathLike[str] | None = None, *,
              timeout: float = STOP_TIMEOUT) -> dict[str, Any]:
    """Ask node ``name`` to stop and wait until its process has released its files.

    If it does not answer or stop in time it gets SIGTERM, then SIGKILL.
    """
    paths = NodePaths(name, home)
    paths.require()
    if not paths.is_running():
        raise ConflictError(f"node {name} is not running")
    pid = paths.read_pid()
    with contextlib.suppress(TrustError):
        ControlClient.for_node(name, home).request("node.stop", timeout=5)
    if _wait_stopped(paths, pid, timeout):
        return {"name": name, "status": "stopped"}
    if pid is not None:
        _kill(pid, signal.SIGTERM)
        if _wait_stopped(paths, pid, 5):
            return {"name": name, "status": "stopped"}
        _kill(pid, signal.SIGKILL)
        if _wait_stopped(paths, pid, 5):
            return {"name": name, "status": "stopped"}
    raise TrustError(f"node {name} (pid {pid}) did not stop")


def _wait_stopped(paths: NodePaths, pid: int | None, timeout: float) -> bool:
    """True once the node released its lock and its process ``pid`` (read before it was asked to
    stop: a stopping node removes its pid file before its interpreter has exited) is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not paths.is_running():
            if pid is None:
                pid = paths.read_pid()
            if pid is None or not pid_alive(pid) or _is_zombie(pid):
                return True
        time.sleep(0.02)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def delete_node(name: str, home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Stop node ``name`` if it runs, then remove its directory."""
    paths = NodePaths(name, home)
    if not paths.dir.is_dir():
        raise NotFoundError(f"no node named {name}")
    if paths.exists() and paths.is_running():
        stop_node(name, home)
    paths.remove()
    return {"name": name, "status": "deleted"}


def resolve_listener_flag(value: str | None) -> str | None:
    """Validate ``--tcp-listener-address`` (HOST:PORT)."""
    if value is None:
        return None
    try:
        split_host_port(value)
    except UsageError:
        raise UsageError(f"invalid --tcp-listener-address {value!r} (expected HOST:PORT, "
                         "e.g. 127.0.0.1:4000)") from None
    return value
