"""A TCP control endpoint's connection slots against local users without the token.

Any local user can connect to a node's loopback TCP control endpoint; without the token they must
not be able to take the slots the operator needs, nor hold a connection open by not reading.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

import pytest

from tests.node.helpers import arun
from trust.errors import RemoteProtocolError
from trust.node.control import decode_response, encode_error, encode_request
from trust.node.control_client import ControlClient
from trust.node.control_server import MAX_CONNECTIONS, MAX_UNAUTHENTICATED, ControlServer


async def _tcp_server(**kwargs: Any) -> ControlServer:
    server = ControlServer(**kwargs)

    async def echo(params: dict[str, Any]) -> dict[str, Any]:
        return {"params": params}

    async def big(params: dict[str, Any]) -> dict[str, Any]:
        return {"blob": "x" * 65536}

    server.register("test.echo", echo)
    server.register("test.big", big)
    await server.start_tcp()
    return server


def _connect(server: ControlServer) -> socket.socket:
    s = socket.create_connection((server.endpoint["host"], server.endpoint["port"]), timeout=10)
    return s


def test_connections_without_the_token_do_not_lock_out_the_operator(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        server = await _tcp_server(auth_timeout=30.0)
        held: list[socket.socket] = []
        try:
            for _ in range(MAX_CONNECTIONS + 4):  # connected, never a request
                held.append(await asyncio.to_thread(_connect, server))
            await asyncio.sleep(0.2)
            assert server.token is not None
            client = ControlClient(server.endpoint, server.token)
            for _ in range(3):
                assert await asyncio.to_thread(client.request, "test.echo", {"n": 1}) == {
                    "params": {"n": 1}}
            # room was made by closing the oldest connections without the token
            def closed(s: socket.socket) -> bool:
                s.settimeout(5)
                try:
                    return s.recv(1) == b""
                except ConnectionResetError:
                    return True
            assert await asyncio.to_thread(closed, held[0])
        finally:
            for s in held:
                s.close()
            await server.close()

    with caplog.at_level(logging.WARNING):
        arun(main())
    # closing them logged nothing (a cancelled connection task is logged as an error by asyncio)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_connection_that_never_sends_the_token_is_closed_soon() -> None:
    async def main() -> None:
        server = await _tcp_server(auth_timeout=0.3, idle_timeout=60.0)
        try:
            reader, writer = await asyncio.open_connection(server.endpoint["host"],
                                                           server.endpoint["port"])
            writer.write(encode_request(1, "test.echo", token="0" * 64))  # a wrong token
            answer = json.loads(await reader.readline())
            assert answer["error"]["kind"] == "untrusted"
            async with asyncio.timeout(5):
                assert await reader.read() == b""  # closed by the node after auth_timeout
            writer.close()
        finally:
            await server.close()

    arun(main())


def test_a_client_that_does_not_read_its_answers_is_closed() -> None:
    async def main() -> None:
        server = await _tcp_server(idle_timeout=0.3)
        requests = 300
        try:
            assert server.token is not None
            line = encode_request(1, "test.big", token=server.token)

            def flood() -> socket.socket:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(10)
                s.connect((server.endpoint["host"], server.endpoint["port"]))
                s.sendall(line * requests)
                return s

            s = await asyncio.to_thread(flood)
            await asyncio.sleep(1.5)  # the node is stuck writing answers nobody reads

            def count_answers() -> int:
                data = bytearray()
                try:
                    while chunk := s.recv(1 << 20):
                        data += chunk
                except ConnectionResetError:
                    pass
                s.close()
                return data.count(b"\n")

            answered = await asyncio.to_thread(count_answers)
            assert answered < requests  # closed mid-way rather than waiting for the reader
            # the node still serves others
            client = ControlClient(server.endpoint, server.token)
            assert await asyncio.to_thread(client.request, "test.echo") == {"params": {}}
        finally:
            await server.close()

    arun(main())


def test_too_many_authenticated_connections_are_told_so_with_the_request_id() -> None:
    async def main() -> None:
        server = await _tcp_server(max_connections=2)
        held: list[socket.socket] = []
        try:
            assert server.token is not None
            for _ in range(2):
                s = await asyncio.to_thread(_connect, server)
                held.append(s)
                s.sendall(encode_request(1, "test.echo", token=server.token))
                assert json.loads(await asyncio.to_thread(s.makefile("rb").readline))["ok"]
            client = ControlClient(server.endpoint, server.token)
            with pytest.raises(RemoteProtocolError, match="too many control connections"):
                await asyncio.to_thread(client.request, "test.echo")
        finally:
            for s in held:
                s.close()
            await server.close()
        assert MAX_UNAUTHENTICATED < MAX_CONNECTIONS

    arun(main())


def test_a_connection_level_error_is_reported_with_its_text() -> None:
    line = encode_error(None, RemoteProtocolError("too many control connections (at most 64)"))
    with pytest.raises(RemoteProtocolError, match="too many control connections"):
        decode_response(line, 7)
    # a success for another request is still refused
    with pytest.raises(RemoteProtocolError, match="does not answer"):
        decode_response(b'{"id": null, "ok": true, "result": {}}\n', 7)


def test_the_unix_endpoint_keeps_its_limit(tmp_path: Any) -> None:
    async def main() -> None:
        server = ControlServer(max_connections=1)
        server.register("test.echo", lambda params: asyncio.sleep(0, {"params": params}))
        endpoint = await server.start_unix(tmp_path / "c.sock")
        holder = socket.socket(socket.AF_UNIX)
        try:
            await asyncio.to_thread(holder.connect, endpoint["path"])
            await asyncio.sleep(0.1)
            t0 = time.monotonic()
            with pytest.raises(RemoteProtocolError, match="too many control connections"):
                await asyncio.to_thread(ControlClient(endpoint).request, "test.echo")
            assert time.monotonic() - t0 < 5
        finally:
            holder.close()
            await server.close()

    arun(main())
