"""A blocking client of a node's control endpoint (what the CLI uses).

>>> client = ControlClient.for_node("n1")          # doctest: +SKIP
>>> client.request("node.show")["status"]          # doctest: +SKIP
'running'
"""

from __future__ import annotations

import itertools
import os
import socket
from typing import Any

from trust.errors import NotFoundError, RemoteProtocolError, TrustError
from trust.node.control import MAX_LINE, decode_response, encode_request
from trust.node.files import NodePaths, read_json

__all__ = ["ControlClient", "NodeNotRunningError"]


class NodeNotRunningError(TrustError):
    """The node exists but is not running (or its control endpoint does not answer)."""


class ControlClient:
    """Sends control requests to one node (a new connection per request)."""

    def __init__(self, endpoint: dict[str, Any], token: str | None = None, *,
                 name: str = "node") -> None:
        self.endpoint = endpoint
        self.token = token
        self.name = name
        self._ids = itertools.count(1)

    @classmethod
    def for_node(cls, name: str, home: str | os.PathLike[str] | None = None) -> ControlClient:
        """The client of node ``name``; :class:`NodeNotRunningError` when it is not running."""
        paths = NodePaths(name, home)
        paths.require()
        if not paths.is_running():
            raise NodeNotRunningError(f"node {name} is not running")
        if paths.socket.exists() and paths.unix_socket_fits:
            return cls({"transport": "unix", "path": str(paths.socket)}, name=name)
        info = read_json(paths.control_tcp)
        if info is None:
            raise NodeNotRunningError(f"node {name} has no control endpoint")
        port, host, token = info.get("port"), info.get("host", "127.0.0.1"), info.get("token")
        if (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
                or not isinstance(host, str) or not isinstance(token, str) or not token.isascii()):
            raise NodeNotRunningError(f"node {name} has a malformed control endpoint file "
                                      f"({paths.control_tcp})")
        return cls({"transport": "tcp", "host": host, "port": port}, token=token, name=name)

    def _connect(self, timeout: float) -> socket.socket:
        ep = self.endpoint
        try:
            if ep["transport"] == "unix":
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(timeout)
                s.connect(ep["path"])
            else:
                s = socket.create_connection((ep["host"], ep["port"]), timeout=timeout)
        except FileNotFoundError:
            raise NodeNotRunningError(f"node {self.name} is not running") from None
        except OSError as e:
            raise NodeNotRunningError(
                f"cannot reach node {self.name}: {e.strerror or e}") from None
        return s

    def request(self, method: str, params: dict[str, Any] | None = None, *,
                timeout: float = 30.0) -> dict[str, Any]:
        """Send one request and return its result (or raise the error the node reported)."""
        req_id = next(self._ids)
        data = encode_request(req_id, method, params, self.token)
        s = self._connect(timeout)
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused at once (e.g. too many connections): its answer is read below
            buf = bytearray()
            while not buf.endswith(b"\n"):
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_LINE:
                    raise RemoteProtocolError("control response too long")
        except TimeoutError:
            raise NodeNotRunningError(
                f"node {self.name} did not answer {method} within {timeout:g}s") from None
        except OSError as e:
            raise NodeNotRunningError(
                f"lost the connection to node {self.name}: {e.strerror or e}") from None
        finally:
            s.close()
        if not buf:
            raise NodeNotRunningError(f"node {self.name} closed the control connection")
        return decode_response(bytes(buf), req_id)

    def ping(self, timeout: float = 2.0) -> bool:
        try:
            self.request("node.ping", timeout=timeout)
        except (NodeNotRunningError, NotFoundError):
            return False
        return True
