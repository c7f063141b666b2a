"""The control protocol: line codec, typed errors, Unix and token-protected TCP endpoints."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.node.helpers import arun
from trust.errors import (
    ConflictError,
    NotFoundError,
    RemoteProtocolError,
    TrustError,
    UntrustedError,
    UsageError,
)
from trust.node.control import (
    MAX_LINE,
    ControlError,
    decode_request,
    decode_response,
    encode_error,
    encode_request,
    encode_result,
)
from trust.node.control_client import ControlClient
from trust.node.control_server import ControlServer
from trust.node.errors import ReceiveTimeoutError


def test_line_codec_round_trip() -> None:
    line = encode_request(7, "node.show", {"a": 1}, token="t")
    assert line.endswith(b"\n") and json.loads(line) == {
        "id": 7, "method": "node.show", "params": {"a": 1}, "token": "t"}
    assert decode_request(line) == (7, "node.show", {"a": 1}, "t")
    assert decode_response(encode_result(7, {"ok": 1}), 7) == {"ok": 1}


@pytest.mark.parametrize(("error", "cls"), [
    (UsageError("bad"), UsageError), (NotFoundError("nope"), NotFoundError),
    (ConflictError("taken"), ConflictError), (ReceiveTimeoutError("slow"), ReceiveTimeoutError),
    (TrustError("plain"), TrustError), (ValueError("oops"), ControlError),
])
def test_errors_keep_their_type(error: Exception, cls: type[Exception]) -> None:
    with pytest.raises(cls) as e:
        decode_response(encode_error(3, error), 3)
    assert str(error) in str(e.value)


@pytest.mark.parametrize("line", [
    b"not json\n", b"[]\n", b'{"method": "x"}\n', b'{"id": 1}\n', b'{"id": true, "method": "x"}\n',
    b'{"id": 1, "method": "x", "params": []}\n', b'{"id": 1, "method": "x", "token": 5}\n',
])
def test_malformed_requests(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_request(line)


def test_response_for_another_request_is_rejected() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_response(encode_result(1, {}), 2)


@given(st.binary(max_size=200))
def test_any_line_is_a_request_or_remote_protocol_error(data: bytes) -> None:
    try:
        decode_request(data)
    except RemoteProtocolError:
        pass


async def _serve(server: ControlServer) -> None:
    async def echo(params: dict[str, Any]) -> dict[str, Any]:
        return {"params": params}

    async def fail(params: dict[str, Any]) -> dict[str, Any]:
        raise UsageError("you did it wrong")

    async def crash(params: dict[str, Any]) -> dict[str, Any]:
        raise ZeroDivisionError("division by zero")

    server.register("test.echo", echo)
    server.register("test.fail", fail)
    server.register("test.crash", crash)


def test_unix_endpoint(tmp_path: Path) -> None:
    async def main() -> None:
        server = ControlServer()
        await _serve(server)
        path = tmp_path / "control.sock"
        endpoint = await server.start_unix(path)
        assert path.stat().st_mode & 0o777 == 0o600
        client = ControlClient(endpoint)
        assert await asyncio.to_thread(client.request, "test.echo", {"x": [1]}) == {
            "params": {"x": [1]}}
        with pytest.raises(UsageError, match="wrong"):
            await asyncio.to_thread(client.request, "test.fail")
        with pytest.raises(ControlError, match="ZeroDivisionError"):
            await asyncio.to_thread(client.request, "test.crash")
        with pytest.raises(NotFoundError, match=r"test\.echo"):
            await asyncio.to_thread(client.request, "no.such")
        # several requests on one connection, and an oversize line
        def raw() -> list[bytes]:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                s.sendall(encode_request(1, "test.echo") + encode_request(2, "test.echo"))
                f = s.makefile("rb")
                out = [f.readline(), f.readline()]
                s.sendall(b"x" * (MAX_LINE + 10) + b"\n")
                out.append(f.readline())
                return out

        first, second, too_long = await asyncio.to_thread(raw)
        assert json.loads(first)["id"] == 1 and json.loads(second)["id"] == 2
        assert json.loads(too_long)["error"]["kind"] == "remote_protocol"
        await server.close()
        assert not path.exists()

    arun(main())


def test_tcp_endpoint_needs_the_token() -> None:
    async def main() -> None:
        server = ControlServer()
        await _serve(server)
        endpoint = await server.start_tcp()
        assert endpoint["host"] == "127.0.0.1" and server.token
        good = ControlClient(endpoint, server.token)
        assert await asyncio.to_thread(good.request, "test.echo") == {"params": {}}
        for token in (None, "0" * 64):
            with pytest.raises(UntrustedError):
                await asyncio.to_thread(ControlClient(endpoint, token).request, "test.echo")
        await server.close()

    arun(main())
