"""A node survives hostile TCP peers (issue 9, items 0-6): peers that never read, stay silent,
open too many connections, make ``hop`` connect to slow or forbidden destinations, or try to
forge and flood the log."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from tests.node.helpers import arun
from trust.errors import TrustError, UsageError
from trust.node import Context, Echo, Node
from trust.node.flow_control import FlowControls
from trust.routing import PREAMBLE, Address, FrameDecoder, LocalMessage, Route, encode_frame


async def _raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _echo_once(port: int, payload: bytes = b"ping", timeout: float = 1.0) -> bytes:
    """A raw client: connect, send one echo request, read the reply (within ``timeout``)."""
    reader, writer = await _raw(port)
    try:
        writer.write(PREAMBLE + encode_frame(Route(["echo"]), Route(["me"]), payload))
        async with asyncio.timeout(timeout):
            assert await reader.readexactly(1) == PREAMBLE
            head = await reader.readexactly(4)
            body = await reader.readexactly(int.from_bytes(head, "big"))
        return FrameDecoder(preamble=False).decode(head + body)[0].payload
    finally:
        writer.close()


async def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


class NonReadingPeer:
    """Sends echo requests as fast as its socket lets it and never reads a byte."""

    def __init__(self, port: int, payload: int = 16 * 1024) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.sendall(PREAMBLE)
        self.sock.setblocking(False)
        self.data = encode_frame(Route(["echo"]), Route(["peer"]), bytes(payload)) * 64
        self.sent = 0

    def pump(self, limit: int = 64 * 1024 * 1024) -> None:
        """Write what the socket takes now (at most ``limit`` bytes in all)."""
        view = memoryview(self.data)
        while self.sent < limit:
            try:
                n = self.sock.send(view[self.sent % len(self.data):])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.sent += n

    def close(self) -> None:
        self.sock.close()


# -- item 0: one delivery path, for any producer ---------------------------------------------------


def test_any_producer_delivers_through_the_one_path() -> None:
    """A producer that is not TCP (as a secure channel will be) gets the same delivery: flow
    control, access control, unknown addresses counted, and a full mailbox pauses it."""

    async def main() -> None:
        async with Node("n", mailbox_size=1) as node:
            got: list[LocalMessage] = []
            gate = asyncio.Event()

            async def slow(ctx: Context, msg: LocalMessage) -> None:
                await gate.wait()
                got.append(msg)

            await node.start_worker("slow", slow)
            await node.start_worker("other", slow)
            flow = FlowControls.new_id()
            node.flow_controls.add_consumer("slow", flow)
            source = Address.random()
            produce, redeliver = node.producer(flow, source, local_info=())

            def msg(to: str) -> LocalMessage:
                return LocalMessage(Route([to]), Route(["peer"]), b"x")

            assert produce(msg("other")) is None  # not a consumer of the flow: refused
            assert node.stats.refused_by_flow_control == 1
            assert produce(msg("nowhere")) is None
            assert node.stats.refused_by_flow_control == 2
            node.flow_controls.add_consumer("nowhere", flow)
            assert produce(msg("nowhere")) is None  # a consumer that does not exist: counted
            assert node.stats.unknown_address == 1
            # the worker takes one message (and waits), one more fills the mailbox
            assert produce(msg("slow")) is None
            await asyncio.sleep(0.05)
            assert produce(msg("slow")) is None
            pending = msg("slow")
            full = produce(pending)
            assert full is not None  # the producer must pause: nothing is dropped
            assert list(pending.return_route) == [source, Address.local("peer")]
            woken = asyncio.Event()
            full.on_space(woken.set)
            gate.set()
            await asyncio.wait_for(woken.wait(), 5)
            assert redeliver(pending) is None
            await _wait_for(lambda: len(got) == 3, 5, "messages lost")
            assert node.stats.dropped_full == 0

    arun(main(), timeout=20)


# -- item 2: no peer can stall a shared worker -----------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_non_reading_peer_does_not_stall_echo_for_others(loop: str) -> None:
    async def main() -> None:
        async with Node("b") as b:
            await b.start_services()
            listener = await b.create_tcp_listener()
            peer = NonReadingPeer(listener.port)
            try:
                # flood until the node's write buffer to the peer is full and replies drop
                deadline = time.monotonic() + 20
                while b.stats.dropped_full == 0:
                    assert time.monotonic() < deadline, "the peer's replies never filled up"
                    peer.pump()
                    await asyncio.sleep(0.005)
                for i in range(5):
                    peer.pump()
                    t = time.monotonic()
                    assert await _echo_once(listener.port, b"other %d" % i, timeout=1.0) \
                        == b"other %d" % i
                    assert time.monotonic() - t < 1.0
                # the peer is still connected (nothing drained, but not for stall_timeout yet)
                me = f"127.0.0.1:{peer.sock.getsockname()[1]}"
                assert [c.peer for c in b.tcp.connections if c.peer == me] == [me]
                assert b.stats.stalled_closed == 0
            finally:
                peer.close()

    arun(main(), timeout=60, loop=loop)


def test_a_sender_chooses_to_wait_or_to_drop_when_full() -> None:
    async def main() -> None:
        async with Node("n", mailbox_size=1) as node:
            gate = asyncio.Event()

            async def stuck(ctx: Context, msg: LocalMessage) -> None:
                await gate.wait()

            await node.start_worker("stuck", stuck)
            ctx = node.context()
            assert await ctx.send("stuck", b"1")  # taken by the worker
            await asyncio.sleep(0.02)
            assert await ctx.send("stuck", b"2")  # fills the mailbox
            assert await ctx.send("stuck", b"3", drop_when_full=True) is False
            assert node.stats.dropped_full == 1
            with pytest.raises(TimeoutError):  # the default waits
                await asyncio.wait_for(ctx.send("stuck", b"4"), 0.2)
            gate.set()
            assert await asyncio.wait_for(ctx.send("stuck", b"5"), 5)

    arun(main(), timeout=20)


def test_a_connection_that_drains_nothing_closes_after_the_stall_timeout() -> None:
    async def main() -> None:
        async with Node("b", stall_timeout=0.5) as b:
            await b.start_services()
            listener = await b.create_tcp_listener()
            peer = NonReadingPeer(listener.port)
            try:
                deadline = time.monotonic() + 20
                while b.stats.dropped_full == 0:
                    assert time.monotonic() < deadline
                    peer.pump()
                    await asyncio.sleep(0.005)
                stalled_at = time.monotonic()
                await _wait_for(lambda: b.stats.stalled_closed == 1, 5, "never closed")
                assert time.monotonic() - stalled_at >= 0.3
                await _wait_for(lambda: not b.tcp.connections, 5, "still open")
                assert await _echo_once(listener.port) == b"ping"
            finally:
                peer.close()

    arun(main(), timeout=30)


# -- item 1: connection limit and idle timeout -----------------------------------------------------


def test_idle_connections_close_and_busy_ones_stay() -> None:
    async def main() -> None:
        async with Node("b", idle_timeout=0.4) as b:
            await b.start_services()
            listener = await b.create_tcp_listener()
            silent_r, silent_w = await _raw(listener.port)
            _, busy_w = await _raw(listener.port)
            busy_w.write(PREAMBLE)
            t = time.monotonic()
            while time.monotonic() - t < 1.2:  # the busy one sends a heartbeat-like echo
                busy_w.write(encode_frame(Route(["echo"]), Route(["me"]), b"x"))
                await asyncio.sleep(0.05)
            assert await asyncio.wait_for(silent_r.read(), 2) == PREAMBLE  # then EOF: closed
            assert b.stats.idle_closed == 1 and len(b.tcp.connections) == 1
            busy_w.close()
            silent_w.close()

    arun(main(), timeout=20)


def test_connections_over_the_limit_are_closed_at_once() -> None:
    async def main() -> None:
        async with Node("b", max_connections=3) as b:
            await b.start_services()
            listener = await b.create_tcp_listener()
            conns = [await _raw(listener.port) for _ in range(3)]
            await _wait_for(lambda: len(b.tcp.connections) == 3, 5, "not accepted")
            extra = [await _raw(listener.port) for _ in range(2)]
            for r, _ in extra:
                assert await asyncio.wait_for(r.read(), 5) == b""  # closed without a byte
            assert b.stats.refused_connections == 2
            for r, w in conns:
                w.write(PREAMBLE + encode_frame(Route(["echo"]), Route(["me"]), b"ok"))
                assert await asyncio.wait_for(r.readexactly(1), 5) == PREAMBLE
            for _, w in conns + extra:
                w.close()
            with pytest.raises(UsageError):
                Node("x", max_connections=0).tcp  # noqa: B018

    arun(main(), timeout=20)


# -- item 3: hop never blocks on one destination ---------------------------------------------------


def _black_hole() -> tuple[socket.socket, list[socket.socket], int]:
    """A listener whose accept queue is full: connecting to it hangs (SYNs are dropped)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    time.sleep(0.1)
    return srv, fillers, port


def test_hop_to_a_hanging_destination_times_out_and_blocks_no_one(
        caplog: pytest.LogCaptureFixture) -> None:
    srv, fillers, hole = _black_hole()

    async def main() -> None:
        async with Node("a") as a, Node("b", connect_timeout=1.0, hop_allow=["*"]) as b, \
                Node("c") as c:
            for n in (b, c):
                await n.start_services()
            lb = await b.create_tcp_listener()
            lc = await c.create_tcp_listener()
            to_b = Address.tcp(lb.address)
            ctx = a.context()
            stuck = Route([to_b, "hop", Address.tcp(f"127.0.0.1:{hole}"), "echo"])
            for _ in range(70):  # at most 64 wait for the connection; the others are dropped
                await ctx.send(stuck, b"into the hole")
            t = time.monotonic()
            for i in range(3):  # others through the same hop are not held up
                reply = await a.send_and_receive(Route([to_b, "hop", Address.tcp(lc.address),
                                                        "echo"]), b"%d" % i, timeout=1.0)
                assert reply == b"%d" % i
                assert await a.send_and_receive(Route([to_b, "echo"]), b"e", timeout=1) == b"e"
            assert time.monotonic() - t < 1.0
            await _wait_for(lambda: b.stats.unreachable == 64, 5, "the connect never timed out")
            assert b.stats.dropped_full == 6
            with pytest.raises(TrustError):
                await ctx.receive(timeout=0.1)
            # destinations no connection can reach: counted, one line each, the node goes on
            for bad in ("bad\x00host:80", "a" * 300 + ":80", "[::1:80", "x:99999"):
                await ctx.send(Route([to_b, "hop", Address(1, bad.encode()), "echo"]), b"?")
            await _wait_for(lambda: b.stats.unreachable == 68, 5, "not all counted")
            assert await a.send_and_receive(Route([to_b, "echo"]), b"ok", timeout=1) == b"ok"

    try:
        with caplog.at_level(logging.INFO):
            arun(main(), timeout=30)
    finally:
        for s in fillers:
            s.close()
        srv.close()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_hop_drops_for_a_full_destination_and_serves_others() -> None:
    """A destination that reads nothing fills its connection; hop drops what does not fit
    (counted) and keeps forwarding to other destinations at once."""
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(4)
    sink_port = sink.getsockname()[1]
    accepted: list[socket.socket] = []

    async def main() -> None:
        async with Node("a") as a, Node("b", hop_allow=["*"]) as b, Node("c") as c:
            for n in (b, c):
                await n.start_services()
            lb = await b.create_tcp_listener()
            lc = await c.create_tcp_listener()
            to_b = Address.tcp(lb.address)
            to_sink = Route([to_b, "hop", Address.tcp(f"127.0.0.1:{sink_port}"), "x"])
            ctx = a.context()
            payload = bytes(64 * 1024)
            deadline = time.monotonic() + 20
            while b.stats.dropped_full == 0:
                assert time.monotonic() < deadline, "the destination never filled up"
                await ctx.send(to_sink, payload)
                await asyncio.sleep(0)
            conn, _ = sink.accept()
            accepted.append(conn)
            t = time.monotonic()
            for i in range(3):
                reply = await a.send_and_receive(Route([to_b, "hop", Address.tcp(lc.address),
                                                        "echo"]), b"%d" % i, timeout=1.0)
                assert reply == b"%d" % i
            assert time.monotonic() - t < 1.0

    try:
        arun(main(), timeout=60)
    finally:
        for x in accepted:
            x.close()
        sink.close()


# -- item 4: hop connects only where the operator allowed ------------------------------------------


def test_hop_opens_connections_for_peers_only_where_allowed(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    looked_up: list[object] = []
    real_getaddrinfo = socket.getaddrinfo

    def recording(host: object, *args: object, **kw: object) -> object:
        looked_up.append(host)
        return real_getaddrinfo(host, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", recording)

    async def main() -> None:
        async with Node("a") as a, Node("b") as b, Node("c") as c:
            for n in (b, c):
                await n.start_services()
            lb = await b.create_tcp_listener()
            lc = await c.create_tcp_listener()
            to_b, to_c = Address.tcp(lb.address), Address.tcp(lc.address)
            via = Route([to_b, "hop", to_c, "echo"])
            assert b.hop_allow == []  # the default: nowhere
            with pytest.raises(TrustError):
                await a.send_and_receive(via, b"x", timeout=0.5)
            assert b.stats.hop_denied == 1 and not c.tcp.connections
            # a name that is not listed is not even resolved
            looked_up.clear()
            named = Route([to_b, "hop", Address.tcp(f"c.example.invalid:{lc.port}"), "echo"])
            with pytest.raises(TrustError):
                await a.send_and_receive(named, b"x", timeout=0.5)
            assert b.stats.hop_denied == 2 and not any("invalid" in str(h) for h in looked_up)
            # another port of an allowed host is not allowed
            b.hop_allow.append(f"127.0.0.1:{lc.port + 1 if lc.port < 65535 else 1}")
            with pytest.raises(TrustError):
                await a.send_and_receive(via, b"x", timeout=0.5)
            # a listed name matches the IP it resolves to
            b.hop_allow[:] = [f"localhost:{lc.port}"]
            assert await a.send_and_receive(via, b"by name", timeout=5) == b"by name"
            # once connected, the connection is usable (existing connections aside)
            b.hop_allow.clear()
            assert await a.send_and_receive(via, b"again", timeout=5) == b"again"
            [conn] = [x for x in b.tcp.connections if x.outgoing]
            conn.close()
            await conn.wait_closed()
            with pytest.raises(TrustError):
                await a.send_and_receive(via, b"x", timeout=0.5)
            # '*': anywhere
            b.hop_allow.append("*")
            assert await a.send_and_receive(via, b"star", timeout=5) == b"star"
            # the node's own (local) messages through its hop are not restricted
            b.hop_allow.clear()
            for x in b.tcp.connections:
                if x.outgoing:
                    x.close()
                    await x.wait_closed()
            await _wait_for(lambda: not c.tcp.connections, 5, "C kept the connection")
            denied = b.stats.hop_denied
            await b.send(Route(["hop", to_c, "echo"]), b"local")
            await _wait_for(lambda: len(c.tcp.connections) == 1, 5, "no local connection")
            assert b.stats.hop_denied == denied

    arun(main(), timeout=30)


def test_hop_allow_entries_are_validated() -> None:
    async def main() -> None:
        for bad in (["10.0.0.1"], ["10.0.0.1:99999"], ["host:٤٠"], [""]):
            with pytest.raises(UsageError):
                Node("x", hop_allow=bad)
        assert Node("x", hop_allow=["*", "[::1]:5000", "db.internal:5432"]).hop_allow

    arun(main(), timeout=10)


# -- item 6: logs cannot be forged or flooded ------------------------------------------------------


def test_untrusted_bytes_are_escaped_and_repeated_warnings_limited(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with Node("b") as b:
            await b.start_services()
            listener = await b.create_tcp_listener(consumers=["echo", "hop",
                                                              "x\nCRITICAL forged\x1b[2J"])
            _, writer = await _raw(listener.port)
            forged = Route([Address(0, b"x\nCRITICAL forged\x1b[2J")])
            frame = encode_frame(forged, Route(["me\r\n"]), b"")
            writer.write(PREAMBLE + frame * 2000)
            await writer.drain()
            await _wait_for(lambda: b.stats.unknown_address == 2000, 10, "frames not handled")
            writer.close()

    with caplog.at_level(logging.INFO):
        arun(main(), timeout=30)
    lines = [r.getMessage() for r in caplog.records]
    unknown = [m for m in lines if "unknown address" in m]
    assert 1 <= len(unknown) <= 20, len(unknown)
    for m in lines:
        assert "\n" not in m and "\r" not in m and "\x1b" not in m, repr(m)
    assert any("x\\nCRITICAL forged\\x1b[2J" in m for m in unknown)


def test_a_peer_that_leaves_before_its_reply_logs_one_line(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with Node("b") as b:
            async def slow_echo(ctx: Context, msg: LocalMessage) -> None:
                await asyncio.sleep(0.2)
                await ctx.send(msg.return_route, msg.payload)

            await b.start_worker("slow", slow_echo)
            listener = await b.create_tcp_listener(consumers=["slow"])
            _, writer = await _raw(listener.port)
            writer.write(PREAMBLE + encode_frame(Route(["slow"]), Route(["me"]), b"bye"))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            await _wait_for(lambda: b.stats.worker_errors == 1, 5, "no error counted")

    with caplog.at_level(logging.INFO):
        arun(main(), timeout=20)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert not errors[0].exc_info and "could not handle" in errors[0].getMessage()


def test_echo_in_its_own_task_drops_rather_than_waits() -> None:
    """The queued (task) path of a shared worker never waits either."""

    async def main() -> None:
        async with Node("n", mailbox_size=1) as node:
            gate = asyncio.Event()

            async def stuck(ctx: Context, msg: LocalMessage) -> None:
                await gate.wait()

            await node.start_worker("stuck", stuck, mailbox_size=1)
            echo_ctx = await node.start_worker("echo2", Echo())
            ctx = node.context(address="stuck-client")
            await ctx.send("stuck", b"1")
            await asyncio.sleep(0.02)
            await ctx.send("stuck", b"2")  # stuck's mailbox is full
            m = LocalMessage(Route(["x"]), Route(["stuck"]), b"reply")
            assert await echo_ctx.send(m.return_route, b"r") is False
            assert node.stats.dropped_full == 1
            gate.set()

    arun(main(), timeout=10)
