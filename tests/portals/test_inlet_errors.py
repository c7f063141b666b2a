"""Why an inlet's connections fail reaches its ``last_error`` (``tcp-inlet show``): every
failure reason (no route to the outlet, no answer, refused or denied by the outlet, the
route gone) is handed to ``TcpInlet.on_result``, and a connection set up clears it; and
``tcp-inlet create`` refuses a route that ends at a secure-channel listener, as ``message
send`` does."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.nodes import stop_all_nodes
from tests.node.helpers import arun
from tests.portals.helpers import echo_server, portal_pair
from trust.errors import NotFoundError, UsageError
from trust.node.resolve import require_destination
from trust.portals import create_inlet, create_outlet
from trust.routing import Route


async def _one_connection(port: int) -> None:
    """Connect, send a little, wait until the inlet closes it (or it is echoed: then close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"hello")
        try:
            await asyncio.wait_for(reader.read(100), 5)
        except ConnectionResetError:
            pass
    finally:
        writer.close()


def test_every_failure_reason_of_an_inlet_connection_reaches_on_result() -> None:
    async def main() -> None:
        async with echo_server() as port:
            pass  # the port is free again: nothing listens there
        async with echo_server() as echo, portal_pair(f"127.0.0.1:{port}") as pair:
            a, b = pair.a, pair.b
            [channel] = a.secure_channels()
            await create_outlet(b, f"127.0.0.1:{echo}", "web")
            results: list[str | None] = []

            async def through(to: Route | Callable[[], Awaitable[Route]], **kw: Any) -> None:
                inlet = await create_inlet(a, "127.0.0.1:0", to, **kw)
                inlet.on_result = results.append
                try:
                    await _one_connection(inlet.port)
                    await asyncio.sleep(0.05)
                finally:
                    await inlet.stop()

            # the outlet cannot connect to its target: it refuses the connection
            pair.inlet.on_result = results.append
            await _one_connection(pair.port)
            assert results == ["the outlet refused the connection (see the outlet node's log)"]

            # no route to the outlet (e.g. a misspelled node name)
            async def no_route() -> Route:
                raise NotFoundError("no node named pt-bnak")

            await through(no_route)
            assert results[-1] == "cannot reach the outlet: no node named pt-bnak"
            # a connection set up clears it
            await through(channel.route / "web")
            assert results[-1] is None
            # nothing answers at the end of the route
            await through(channel.route / "nothing", pong_timeout=0.3)
            assert results[-1] == "no answer from the outlet within 0.3s"
            # the inlet's policy denies the outlet
            await through(channel.route / "web", authorize=lambda m: (False, "not this one"))
            assert results[-1] == "the outlet is denied: not this one"
            # the route's first hop is gone
            await through(Route(["gone"]))
            assert results[-1] is not None
            assert results[-1].startswith("the portal's route is gone: ")

    arun(main(), timeout=30)


def test_last_error_is_escaped_and_bounded() -> None:
    from trust.node.portal_feature import MAX_ERROR_TEXT, _InletRoute

    route = _InletRoute(cast(Any, None), "/service/outlet", [], False)
    route.record("cannot reach the outlet: \x1b[2J" + "x" * 5000)
    assert route.error is not None and "\x1b" not in route.error and "\\x1b[2J" in route.error
    assert len(route.error) <= MAX_ERROR_TEXT + 20
    route.record(None)
    assert route.error is None


@pytest.fixture
def analysis(cli: Cli, home: Path) -> Iterator[str]:
    try:
        yield cli.json("node", "create", "analysis")["identifier"]
    finally:
        stop_all_nodes(home)


def test_tcp_inlet_show_says_why_connections_fail_and_a_route_ending_at_a_listener_is_refused(
        cli: Cli, analysis: str) -> None:
    # a route that ends at a secure-channel listener names no outlet: a usage error, as for
    # `message send`, and nothing is created
    r = cli("tcp-inlet", "create", "--at", "analysis", "--to", "/node/pt-bank/secure/api",
            "--name", "web", ok=False)
    assert_one_line_error(r, "cannot end with /secure/NAME", "/service/outlet")
    assert r.returncode == 2
    assert cli.json("tcp-inlet", "list", "--at", "analysis") == []
    with pytest.raises(UsageError, match=r"e\.g\. /service/echo"):
        require_destination("/node/n2/secure/api")
    assert require_destination("/node/n2/secure/api/service/echo").segments[-1].value == "echo"

    inlet = cli.json("tcp-inlet", "create", "--at", "analysis", "--to",
                     "/node/pt-bnak/secure/api/service/web")
    assert inlet["last_error"] is None
    host, _, port = inlet["address"].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.settimeout(5)
        try:
            assert s.recv(100) == b""  # closed: the outlet cannot be reached
        except ConnectionResetError:
            pass
    deadline = time.monotonic() + 5
    while (shown := cli.json("tcp-inlet", "show", "inlet", "--at", "analysis"))["failed"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert shown["last_error"] == "cannot reach the outlet: no node named pt-bnak"
    assert "Last error: cannot reach the outlet: no node named pt-bnak" in cli(
        "tcp-inlet", "show", "inlet", "--at", "analysis").out
