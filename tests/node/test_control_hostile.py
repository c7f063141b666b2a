"""A background node's control endpoint against hostile local peers (raw sockets, real nodes).

Every bad request gets a typed error line (never ``internal``), nothing reaches the node's log as
a traceback, and the node keeps answering good requests afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TRUSTSTACK, Cli
from tests.node.helpers import arun
from trust.errors import RemoteProtocolError
from trust.node.control import MAX_DEPTH, MAX_LINE, decode_request, encode_request, too_deep
from trust.node.control_server import MAX_CONNECTIONS, ControlServer, token_matches
from trust.node.files import UNIX_PATH_LIMIT, pid_alive


def _stop(home: Path, name: str) -> None:
    """Stop node ``name`` politely, then by pid (called even when the test failed)."""
    with contextlib.suppress(Exception):
        subprocess.run([TRUSTSTACK, "node", "stop", name],
                       env={**os.environ, "TRUSTSTACK_HOME": str(home)},
                       capture_output=True, timeout=15)
    with contextlib.suppress(OSError, ValueError):
        pid = int((home / "nodes" / name / "pid").read_text())
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


class Endpoint:
    """A running node's control endpoint, spoken to with raw sockets."""

    def __init__(self, home: Path, name: str) -> None:
        self.dir = home / "nodes" / name
        control = self.dir / "control.json"
        self.address: tuple[str, int] | str
        if control.exists():
            info = json.loads(control.read_text())
            self.family, self.address = socket.AF_INET, (info["host"], info["port"])
            self.token: str | None = info["token"]
        else:
            self.family, self.address = socket.AF_UNIX, str(self.dir / "control.sock")
            self.token = None

    def connect(self) -> socket.socket:
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.address)
        return s

    def exchange(self, line: bytes) -> dict[str, Any]:
        """Send one raw line, return the node's parsed answer. A node that refuses the
        connection answers at once and closes it, possibly before the line is sent: its answer
        is read all the same."""
        with self.connect() as s:
            try:
                s.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return json.loads(s.makefile("rb").readline())

    def show(self) -> dict[str, Any]:
        answer = self.exchange(encode_request(1, "node.show", token=self.token))
        assert answer["ok"] is True, answer
        return answer["result"]

    def log(self) -> str:
        return (self.dir / "node.log").read_text(errors="replace")


def _node(tmp_path: Path, home: Path) -> Iterator[Endpoint]:
    try:
        Cli(home).json("node", "create", "n1")
        yield Endpoint(home, "n1")
    finally:
        _stop(home, "n1")


@pytest.fixture
def tcp_node(tmp_path: Path) -> Iterator[Endpoint]:
    """A background node whose home is too long for a Unix socket: loopback TCP with a token."""
    home = tmp_path / ("h" * max(1, UNIX_PATH_LIMIT - len(str(tmp_path)))) / "home"
    yield from _node(tmp_path, home)


@pytest.fixture
def unix_node(tmp_path: Path) -> Iterator[Endpoint]:
    yield from _node(tmp_path, tmp_path / "home")


def _error(answer: dict[str, Any]) -> tuple[str, str]:
    assert answer["ok"] is False, answer
    return answer["error"]["kind"], answer["error"]["message"]


def test_tcp_endpoint_refuses_bad_tokens_with_a_typed_error(tcp_node: Endpoint) -> None:
    assert tcp_node.family == socket.AF_INET and tcp_node.token
    bad_tokens = ["é" * 64, "\ud800", "ｆ" * 64, tcp_node.token[:-1], tcp_node.token + "0", "", 5]
    for token in bad_tokens:
        line = json.dumps({"id": 1, "method": "node.show", "params": {}, "token": token}).encode()
        kind, _ = _error(tcp_node.exchange(line + b"\n"))
        assert kind in ("untrusted", "remote_protocol"), (token, kind)
    # a non-ASCII token written raw as UTF-8 too
    kind, _ = _error(tcp_node.exchange(
        b'{"id":1,"method":"node.show","params":{},"token":"\xc3\xa9"}\n'))
    assert kind == "untrusted"
    assert tcp_node.show()["status"] == "running"
    assert "Traceback" not in tcp_node.log()


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_deep_and_malformed_lines_get_typed_errors(transport: str, request: pytest.FixtureRequest
                                                   ) -> None:
    node: Endpoint = request.getfixturevalue(f"{transport}_node")
    deep = b"[" * 100_000 + b"\n"
    objects = b'{"id":1,"params":' * 50_000 + b"\n"
    lines = [deep, objects, b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"\n",
             b'{"id": NaN, "method": "node.show"}\n', b'{"id": 1e999, "method": "node.show"}\n',
             b'{"id": ' + b"9" * 4000 + b', "method": "node.show"}\n',
             b'{"id": ' + b"9" * 5000 + b', "method": "node.show"}\n',
             b'{"id": -1, "method": "node.show"}\n', b"\xff\xfe\n", b'"\\ud800"\n']
    for line in lines:
        kind, message = _error(node.exchange(line))
        assert kind == "remote_protocol", (line[:40], kind, message)
    # one connection: a bad line, then a good request on the same connection
    with node.connect() as s:
        f = s.makefile("rb")
        s.sendall(deep)
        assert json.loads(f.readline())["error"]["kind"] == "remote_protocol"
        s.sendall(encode_request(2, "node.show", token=node.token))
        assert json.loads(f.readline())["result"]["status"] == "running"
    # an over-long line
    with node.connect() as s:
        s.sendall(b"[" * (MAX_LINE + 10) + b"\n")
        assert json.loads(s.makefile("rb").readline())["error"]["kind"] == "remote_protocol"
    assert node.show()["status"] == "running"
    log = node.log()
    assert "Traceback" not in log and "internal" not in log


def test_connection_limit_then_recovery(unix_node: Endpoint) -> None:
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):
            held.append(unix_node.connect())
        # the node has taken every held connection once each of them has been answered
        for s in held:
            s.sendall(encode_request(1, "node.ping"))
        for s in held:
            with s.makefile("rb") as f:
                assert json.loads(f.readline())["ok"] is True
        kind, message = _error(unix_node.exchange(encode_request(1, "node.show")))
        assert kind == "remote_protocol" and "too many" in message
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 5
    while True:
        answer = unix_node.exchange(encode_request(1, "node.show"))
        if answer["ok"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert answer["ok"] is True


def test_idle_connections_are_closed() -> None:
    async def main() -> None:
        server = ControlServer(idle_timeout=0.2)
        endpoint = await server.start_tcp()
        reader, writer = await asyncio.open_connection(endpoint["host"], endpoint["port"])
        writer.write(b'{"id": 1, "meth')  # never finished
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed by the node
        writer.close()
        await server.close()

    arun(main())


def test_token_comparison_is_typed() -> None:
    assert token_matches("ab" * 32, "ab" * 32)
    assert not token_matches(None, "ab") and not token_matches("é", "ab")
    assert not token_matches("\ud800", "ab") and not token_matches("ab0", "ab")


def test_depth_scan_ignores_brackets_inside_strings() -> None:
    assert not too_deep(json.dumps({"s": "[" * 1000, "t": "\"{" * 500}).encode())
    assert too_deep(b"[" * (MAX_DEPTH + 1))
    assert not too_deep(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    # a request nested to the limit is still parsed
    params: Any = 0
    for _ in range(MAX_DEPTH - 2):
        params = [params]
    assert decode_request(encode_request(1, "x", {"p": params}))[2] == {"p": params}
    with pytest.raises(RemoteProtocolError, match="deeper"):
        decode_request(encode_request(1, "x", {"p": [params]}))
