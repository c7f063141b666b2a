"""A background node (``truststack node create``, default limits) with 5,000 open connections:
each is accepted and answers an echo, memory follows the bytes received (not the connection
count) and goes back down once they close (issue 9, item 1)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TRUSTSTACK, Cli
from trust.node.files import pid_alive
from trust.routing import PREAMBLE, Route, encode_frame

CONNECTIONS = 5000
BATCH = 250


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _open_files_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < want:
        pytest.fail(f"need {want} open files; the hard limit is {hard}")


@pytest.fixture
def node_proc(cli: Cli, home: Path) -> Iterator[dict[str, object]]:
    """A background node with default limits, stopped at the end even on failure."""
    state: dict[str, object] = {}
    try:
        state = cli.json("node", "create", "many")
        yield state
    finally:
        with contextlib.suppress(Exception):
            subprocess.run([TRUSTSTACK, "node", "stop", "many"], env=cli.env(),
                           capture_output=True, timeout=20)
        pid = state.get("pid")
        if isinstance(pid, int) and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


class _Client(asyncio.Protocol):
    """Sends one echo request and counts the reply's bytes."""

    def __init__(self, request: bytes, expect: int, done: asyncio.Future[None]) -> None:
        self.request = request
        self.expect = expect
        self.got = 0
        self.done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= self.expect and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"closed after {self.got} bytes"))


def test_five_thousand_connections_each_echo_with_bounded_memory(node_proc: dict[str, object]
                                                                  ) -> None:
    _open_files_limit(CONNECTIONS + 500)
    pid = node_proc["pid"]
    assert isinstance(pid, int)
    port = int(str(node_proc["listeners"][0]).rsplit(":", 1)[1])  # type: ignore[index]
    request = PREAMBLE + encode_frame(Route(["echo"]), Route(["client"]), b"x" * 32)
    reply_size = 1 + len(encode_frame(Route(["client"]), Route(["echo"]), b"x" * 32))

    async def main() -> tuple[int, int, int, float]:
        loop = asyncio.get_running_loop()
        clients: list[_Client] = []

        async def one() -> None:
            done: asyncio.Future[None] = loop.create_future()
            client = _Client(request, reply_size, done)
            await loop.create_connection(lambda: client, "127.0.0.1", port)
            clients.append(client)
            await asyncio.wait_for(done, 20)

        await one()  # warm up, then measure
        clients[0].transport.close()  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        start = _rss_kib(pid)
        try:
            clients.clear()
            for _ in range(0, CONNECTIONS, BATCH):
                await asyncio.gather(*(one() for _ in range(BATCH)))
            assert len(clients) == CONNECTIONS
            assert all(c.got == reply_size for c in clients)  # each answered exactly once
            await asyncio.sleep(0.3)
            peak = _rss_kib(pid)
        finally:
            for c in clients:
                if c.transport is not None:
                    c.transport.close()
        closed_at = time.monotonic()
        after = _rss_kib(pid)
        while after - start > 20 * 1024 and time.monotonic() - closed_at < 5:
            await asyncio.sleep(0.1)
            after = _rss_kib(pid)
        return start, peak, after, time.monotonic() - closed_at

    start, peak, after, took = asyncio.run(main())
    print(f"node RSS: start {start // 1024} MiB, with {CONNECTIONS} connections "
          f"{peak // 1024} MiB, {took:.1f}s after closing {after // 1024} MiB")
    assert peak - start < 100 * 1024, (start, peak)
    assert after - start < 20 * 1024, (start, after)
