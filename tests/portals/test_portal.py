"""TCP portals between in-process nodes on 127.0.0.1: bytes through inlet -> channel ->
outlet, half-close, many connections checked by SHA-256, a stalled server with flat memory,
and policy denies on both ends."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
import tracemalloc
from collections.abc import Callable

import pytest

from tests.node.helpers import arun
from tests.portals.helpers import (
    digest_server,
    echo_server,
    parties,
    portal_pair,
    stream_bytes,
)
from trust.channels.access import NodeAccess
from trust.node import Node
from trust.portals import create_inlet, create_outlet
from trust.portals.policy import INLET_TYPE, OUTLET_TYPE, resource_authorizer
from trust.portals.portal import WRITE_HIGH
from trust.routing import Route
from trust.transports.stream import WRITE_BATCH_MAX


def _kernel_link_buffers() -> int:
    """The most the kernel buffers on one TCP connection (receive + send side)."""
    total = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        with open(f"/proc/sys/net/ipv4/{name}") as f:
            total += int(f.read().split()[2])
    return total


async def _until_steady(count: Callable[[], int]) -> int:
    """Wait (10 s at most) until ``count()`` stops growing over a quarter second; its value."""
    last = -1
    for _ in range(40):
        await asyncio.sleep(0.25)
        if count() == last:
            break
        last = count()
    return count()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the connection ends (EOF or reset, nothing read) within ``seconds``."""
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except ConnectionResetError:
        return True


async def _send_all(port: int, data: bytes) -> bytes:
    """Connect to ``port``, write ``data``, half-close, return everything read until EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        return await reader.read()
    finally:
        writer.close()


def test_bytes_go_through_inlet_channel_outlet_and_back_with_half_close() -> None:
    async def main() -> None:
        async with echo_server() as port, portal_pair(f"127.0.0.1:{port}") as pair:
            data = stream_bytes(1, 300_000) + b"end"
            # the client half-closes after writing: the echo server still answers everything
            assert await _send_all(pair.port, data) == data
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
            for word in (b"ping", b"a" * 70_000, b"pong"):  # > 48 KiB: split into chunks
                writer.write(word)
                assert await reader.readexactly(len(word)) == word
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.1)
            for side in (pair.inlet, pair.outlet):
                assert side.stats.connections == 2 and side.stats.denied == 0
            assert pair.inlet.stats.bytes_in == pair.outlet.stats.bytes_out == len(data) + 70_008
            assert pair.outlet.stats.bytes_in == pair.inlet.stats.bytes_out == len(data) + 70_008
            # the channel carried it: the outlet's connection saw the inlet's identity
            assert [c.peer.identifier for c in pair.b.secure_channels()] == [
                (await parties()).inlet_id]

    arun(main(), timeout=30)


def test_an_inlets_reads_are_encrypted_where_they_were_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A read reaches the channel's encryptor as a HeadroomMessage: the record is made in the
    inlet's read buffer (no copy of the payload), and the bytes arrive intact both ways."""
    from trust.channels.records import RecordSession

    made: list[int] = []
    at = RecordSession.encrypt_payload_at

    def counting(self: RecordSession, *args: object) -> bytearray | None:
        record = at(self, *args)  # type: ignore[arg-type]
        if record is not None:
            made.append(len(record))
        return record

    monkeypatch.setattr(RecordSession, "encrypt_payload_at", counting)

    async def main() -> None:
        async with echo_server() as port, portal_pair(f"127.0.0.1:{port}") as pair:
            data = stream_bytes(7, 3_000_000)
            assert await _send_all(pair.port, data) == data
        assert len(made) >= 20 and max(made) > 48 * 1024

    arun(main(), timeout=30)


def test_an_http_request_through_the_portal() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        body = b"hello " + request.split(b" ")[1]
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            async with portal_pair(f"127.0.0.1:{port}") as pair:
                reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
                writer.write(b"GET /portal HTTP/1.0\r\nHost: x\r\n\r\n")
                reply = await reader.read()
                writer.close()
                assert reply.startswith(b"HTTP/1.0 200 OK") and reply.endswith(b"hello /portal")
        finally:
            server.close()
            await server.wait_closed()

    arun(main(), timeout=30)


async def _hundred_connections(port: int, size: int) -> None:
    """100 connections at once, each sending ``size`` bytes (its own: the last 8 bytes are its
    number) and half-closing; the server answers the SHA-256 of what each delivered, the client
    compares it with the hash of what it sent."""
    patterns = [stream_bytes(seed, size - 8) for seed in range(4)]
    base = [hashlib.sha256(p) for p in patterns]

    async def one(i: int) -> None:
        tail = i.to_bytes(8, "big")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(patterns[i % 4])
            writer.write(tail)
            await writer.drain()
            writer.write_eof()
            digest = await reader.read()
        finally:
            writer.close()
        expected = base[i % 4].copy()
        expected.update(tail)
        assert digest == expected.digest(), f"connection {i}"

    await asyncio.gather(*(one(i) for i in range(100)))


def test_hundred_concurrent_connections_of_10_mb_each_arrive_whole_and_in_order() -> None:
    """100 x 10 MB at once through an inlet and an outlet of one node (the fastest path: the
    portal connections hand messages to each other directly, so an outlet must be ready before
    its Pong reaches the inlet, which may answer with data at once)."""
    size = 10 * 1024 * 1024

    async def main() -> None:
        async with digest_server() as srv, Node("n") as node:
            outlet = await create_outlet(node, f"127.0.0.1:{srv.port}", "out")
            inlet = await create_inlet(node, "127.0.0.1:0", Route(["out"]))
            try:
                await _hundred_connections(inlet.port, size)
            finally:
                await inlet.stop()
            assert len(srv.digests) == 100 and len(set(srv.digests)) == 100
            assert inlet.stats.bytes_in == outlet.stats.bytes_out == 100 * size
            assert outlet.stats.dropped == inlet.stats.dropped == 0
            assert node.stats.dropped_full == 0

    arun(main(), timeout=120, loop="uvloop")


def test_hundred_concurrent_connections_between_two_nodes_share_one_tcp_link() -> None:
    """100 connections at once over one TCP connection between two nodes: they contend for its
    write space, and every Disconnect still gets through (nothing lost or reordered)."""

    async def main() -> None:
        async with digest_server() as srv, portal_pair(f"127.0.0.1:{srv.port}",
                                                       channel=False) as pair:
            await _hundred_connections(pair.port, 1024 * 1024)
            assert len(srv.digests) == 100
            assert pair.inlet.stats.bytes_in == 100 * 1024 * 1024
            assert pair.a.stats.dropped_full == pair.b.stats.dropped_full == 0

    arun(main(), timeout=120, loop="uvloop")


def test_a_stalled_server_pauses_its_portal_with_bounded_memory_and_drops_nothing() -> None:
    """The server reads nothing: the clients' writes stop after a bounded amount (every
    buffer on the way is bounded), memory stays flat, and once the server reads again every
    byte arrives (the channel never dropped a record)."""
    n, size = 8, 8 * 1024 * 1024

    async def main() -> None:
        async with digest_server(stall=True) as srv, portal_pair(f"127.0.0.1:{srv.port}",
                                                                 mailbox_size=16) as pair:
            data = [stream_bytes(100 + i, size) for i in range(n)]
            tracemalloc.start()
            try:
                tasks = [asyncio.create_task(_send_all(pair.port, d)) for d in data]
                # wait until the portal stops taking bytes (every buffer on the way is full)
                first = await _until_steady(lambda: pair.inlet.stats.bytes_in)
                base, _ = tracemalloc.get_traced_memory()
                await asyncio.sleep(1.0)
                second = pair.inlet.stats.bytes_in
                now, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert second == first, "the portal kept reading from clients of a stalled server"
            # held between the two nodes: the mailboxes and write buffers of the nodes (a few
            # MB) and the kernel's buffers of the one TCP link (at most its rmem + wmem)
            in_nodes = first - pair.outlet.stats.bytes_out
            assert in_nodes < _kernel_link_buffers() + 4 * 1024 * 1024, in_nodes
            assert first < n * size, first  # it stopped before taking all it was sent
            # what reached the server's side waits in its 8 connections' kernel buffers (the
            # kernel sizes those, up to rmem + wmem each) and the outlet's write buffers
            in_server_links = pair.outlet.stats.bytes_out
            assert in_server_links <= n * (_kernel_link_buffers() + WRITE_HIGH
                                           + WRITE_BATCH_MAX), in_server_links
            # memory stays flat while stalled (what the clients' own streams buffer before
            # their writes block is theirs, allocated before this)
            assert now - base < 256 * 1024, (base, now, peak)
            assert not any(t.done() for t in tasks)
            assert srv.stall is not None
            srv.stall.set()
            digests = await asyncio.gather(*tasks)
            assert sorted(digests) == sorted(hashlib.sha256(d).digest() for d in data)
            assert pair.a.stats.dropped_full == pair.b.stats.dropped_full == 0
            assert pair.a.stats.channel_records_rejected == 0

    arun(main(), timeout=60)


def test_a_client_that_does_not_read_pauses_the_server_side_with_flat_memory() -> None:
    """Back-pressure the other way: the server sends 48 MB, the client reads nothing for a
    while: the outlet stops reading the server after a bounded amount, memory stays flat, and
    then every byte arrives in order."""
    size = 48 * 1024 * 1024
    data = stream_bytes(7, size)

    async def send_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(send_all, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            async with portal_pair(f"127.0.0.1:{port}", mailbox_size=16) as pair:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                sock.connect(("127.0.0.1", pair.port))
                reader, writer = await asyncio.open_connection(sock=sock, limit=64 * 1024)
                tracemalloc.start()
                try:
                    first = await _until_steady(lambda: pair.outlet.stats.bytes_in)
                    base, _ = tracemalloc.get_traced_memory()
                    await asyncio.sleep(1.0)
                    now, _ = tracemalloc.get_traced_memory()
                    second = pair.outlet.stats.bytes_in
                finally:
                    tracemalloc.stop()
                assert second == first and first < size, (first, size)
                assert now - base < 256 * 1024, (base, now)
                got = hashlib.sha256()
                n = 0
                while chunk := await reader.read(1 << 20):
                    got.update(chunk)
                    n += len(chunk)
                writer.close()
                assert n == size and got.digest() == hashlib.sha256(data).digest()
        finally:
            server.close()
            await server.wait_closed()

    arun(main(), timeout=60)


def test_the_outlet_denies_a_peer_without_a_credential_at_once_with_the_reason_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        p = await parties()
        access = NodeAccess("b", authorities=[p.authority.identifier])
        authorize = resource_authorizer(access, "db", OUTLET_TYPE)
        async with echo_server() as port, portal_pair(
                f"127.0.0.1:{port}", inlet_side="stranger", outlet_authorize=authorize) as pair:
            start = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
            writer.write(b"hello")
            assert await _closed_within(reader, 5)  # closed, nothing echoed
            writer.close()
            assert time.monotonic() - start < 2
            assert pair.outlet.stats.denied == 1 and pair.outlet.stats.active == 0
            assert access.denied == 1

    with caplog.at_level(logging.INFO, logger="trust.portals"):
        arun(main(), timeout=30)
    text = caplog.text
    assert "outlet outlet: connection for I" in text and "denied" in text
    assert "credential from its authority" in text  # the explain reason of the default policy


def test_the_inlet_denies_an_outlet_its_policy_refuses(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        from policies import Policy, PolicyEntry

        p = await parties()
        access = NodeAccess("a", authorities=[p.authority.identifier])
        access.snapshot.replace([PolicyEntry("a", "resource", "web", Policy.parse('role="web"'),
                                             0)])
        authorize = resource_authorizer(access, "web", INLET_TYPE)
        async with echo_server() as port, portal_pair(f"127.0.0.1:{port}",
                                                      inlet_authorize=authorize) as pair:
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
            assert await _closed_within(reader, 5)
            writer.close()
            assert pair.inlet.stats.denied == 1
            await asyncio.sleep(0.1)
            assert pair.outlet.stats.active == 0  # the outlet was told (Disconnect)

    with caplog.at_level(logging.INFO, logger="trust.portals"):
        arun(main(), timeout=30)
    assert "the peer is denied: the policy of resource web is false" in caplog.text


def test_an_unreachable_target_closes_the_client_promptly() -> None:
    async def main() -> None:
        async with echo_server() as port:
            pass  # the port is free again: nothing listens there
        async with portal_pair(f"127.0.0.1:{port}") as pair:
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
            assert await _closed_within(reader, 5)
            writer.close()
            assert pair.outlet.stats.failed == 1

    arun(main(), timeout=30)


def test_inlet_and_outlet_on_one_node_and_stop_closes_connections() -> None:
    async def main() -> None:
        async with echo_server() as port, Node("n") as node:
            await create_outlet(node, f"127.0.0.1:{port}", "out")
            inlet = await create_inlet(node, "127.0.0.1:0", Route(["out"]), name="in")
            assert inlet.name == "in" and inlet.info()["address"] == inlet.address
            reader, writer = await asyncio.open_connection("127.0.0.1", inlet.port)
            writer.write(b"x")
            assert await reader.readexactly(1) == b"x"
            await inlet.stop()
            assert await _closed_within(reader, 5)
            writer.close()
            assert inlet.stats.active == 0

    arun(main(), timeout=30)
