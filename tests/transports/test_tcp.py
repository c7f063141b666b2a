"""The TCP transport over real sockets on 127.0.0.1: wire bytes, multi-hop, flow control,
misbehaving peers, connection reuse and disconnects."""

from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.node.helpers import LOOPS, arun, open_sockets, other_tasks
from trust.errors import ConflictError, TrustError
from trust.node import Context, Echo, Node
from trust.routing import (
    PREAMBLE,
    Address,
    FrameDecoder,
    FrameTooLargeError,
    LocalMessage,
    Route,
    encode_frame,
    encode_heartbeat,
    encode_string,
    parse_multiaddr,
)
from trust.transports import ConnectionFailedError
from trust.transports.tcp import TCP_LOCAL_INFO


async def _raw_connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(4)
    return head + await reader.readexactly(int.from_bytes(head, "big"))


def test_wire_bytes_with_a_raw_ockam_peer() -> None:
    """A peer speaking the spec's bytes gets the spec's bytes back."""

    async def main() -> None:
        async with Node("b") as b:
            await b.start_services()
            await b.start_worker("echoer", Echo())
            listener = await b.create_tcp_listener(consumers=["echo", "echoer"])
            reader, writer = await _raw_connect(listener.port)
            writer.write(PREAMBLE + bytes.fromhex(  # the spec's worked example (§2.1)
                "0000001983818200466563686f657281820043617070460548656c6c6f"))
            assert await reader.readexactly(1) == PREAMBLE
            reply = await _read_frame(reader)
            # echoer answers to the return route [app] from its own address
            assert reply.hex() == "0000001983818200436170708182004665636" \
                                  "86f6572460548656c6c6f"
            assert reply == encode_frame(Route(["app"]), Route(["echoer"]), encode_string("Hello"))
            writer.write(encode_heartbeat())  # ignored
            writer.write(encode_frame(Route(["echo"]), Route(["app"]), b"again"))
            assert FrameDecoder(preamble=False).decode(await _read_frame(reader))[0].payload \
                == b"again"
            writer.close()

    arun(main(), timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_multi_hop_through_hop_and_refused_without_it(loop: str) -> None:
    async def main() -> None:
        a, b, c = Node("a"), Node("b"), Node("c")
        try:
            for n in (a, b, c):
                await n.start_services()
            seen: list[LocalMessage] = []

            async def worker(ctx: Context, msg: LocalMessage) -> None:
                seen.append(msg)
                await ctx.send(msg.return_route, b"from C: " + msg.payload)

            await c.start_worker("app", worker)
            lb = await b.create_tcp_listener()
            lc = await c.create_tcp_listener(consumers=["echo", "hop", "app"])
            b.hop_allow.append(lc.address)  # B's hop may connect to C on A's behalf
            via_hop = parse_multiaddr(f"/ip4/127.0.0.1/tcp/{lb.port}/service/hop"
                                      f"/ip4/127.0.0.1/tcp/{lc.port}/service/app").to_route()
            assert await a.send_and_receive(via_hop, b"hi", timeout=5) == b"from C: hi"
            # what C's worker saw: it came through B's hop; the reply went back the same way
            ret = seen[0].return_route
            # [C's sender to B, hop, B's sender to A, A's temporary context]
            assert len(ret) == 4 and ret[1] == Address.local("hop")
            assert seen[0].find_local_info(TCP_LOCAL_INFO) is not None
            # again, reusing the connections
            assert await a.send_and_receive(via_hop, b"2", timeout=5) == b"from C: 2"
            assert len(a.tcp.connections) == 1 and len(b.tcp.connections) == 2

            direct = parse_multiaddr(f"/ip4/127.0.0.1/tcp/{lb.port}"
                                     f"/ip4/127.0.0.1/tcp/{lc.port}/service/app").to_route()
            with pytest.raises(TrustError):
                await a.send_and_receive(direct, b"no", timeout=0.5)
            assert b.stats.refused_by_flow_control == 1
            assert len(seen) == 2
            # naming B's connection to C by its worker address is refused too
            sender_bc = next(conn for conn in b.tcp.connections if conn.outgoing)
            sneaky = Route([Address.tcp(f"127.0.0.1:{lb.port}"), sender_bc.sender_address, "app"])
            with pytest.raises(TrustError):
                await a.send_and_receive(sneaky, b"no", timeout=0.5)
            assert b.stats.refused_by_flow_control == 2 and len(seen) == 2
        finally:
            for n in (a, b, c):
                await n.stop()

    arun(main(), loop=loop, timeout=20)


def test_worker_not_admitted_never_receives() -> None:
    async def main() -> None:
        async with Node("a") as a, Node("b") as b:
            await b.start_services()
            got: list[bytes] = []

            async def secret(ctx: Context, msg: LocalMessage) -> None:
                got.append(msg.payload)
                await ctx.send(msg.return_route, b"leak")

            await b.start_worker("secret", secret)
            listener = await b.create_tcp_listener()
            conn = await a.connect_tcp(listener.address)
            for i in range(20):
                await a.send(conn.route / "secret", bytes([i]))
            assert await a.send_and_receive(conn.route / "echo", b"sync", timeout=5) == b"sync"
            assert got == [] and b.stats.refused_by_flow_control == 20
            # locally the worker is reachable, and admitting it to the listener's flow opens it
            b.flow_controls.add_consumer("secret", listener.flow_control_id)
            assert await a.send_and_receive(conn.route / "secret", b"now", timeout=5) == b"leak"
            assert got == [b"now"]

    arun(main(), timeout=20)


@pytest.mark.parametrize("bad", [
    b"\x02",                                                  # wrong protocol version
    PREAMBLE + (16 * 1024 * 1024 + 1).to_bytes(4, "big"),     # oversize frame header
    PREAMBLE + bytes.fromhex("00000003ffffff"),              # garbage body
    PREAMBLE + bytes.fromhex("0000000483808040") + b"\x00",   # trailing byte, then more
])
def test_misbehaving_peer_is_disconnected_others_unaffected(bad: bytes) -> None:
    async def main() -> None:
        async with Node("a") as a, Node("b") as b:
            await b.start_services()
            listener = await b.create_tcp_listener()
            good = await a.connect_tcp(listener.address)
            assert await a.send_and_receive(good.route / "echo", b"1", timeout=5) == b"1"
            reader, writer = await _raw_connect(listener.port)
            writer.write(bad)
            if bad == PREAMBLE + bytes.fromhex("0000000483808040") + b"\x00":
                writer.write(b"\x00\x00\x00\x01\x83")
            assert await reader.read(1) == PREAMBLE
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the node
            assert b.stats.disconnected_peers == 1
            assert await a.send_and_receive(good.route / "echo", b"2", timeout=5) == b"2"
            writer.close()

    arun(main(), timeout=20)


def test_disconnect_then_reconnect() -> None:
    async def main() -> None:
        async with Node("a") as a, Node("b") as b:
            await b.start_services()
            listener = await b.create_tcp_listener()
            route = Route([Address.tcp(listener.address), "echo"])
            assert await a.send_and_receive(route, b"1", timeout=5) == b"1"
            [first] = a.tcp.connections
            for conn in b.tcp.connections:
                conn.abort()
            await asyncio.wait_for(first.wait_closed(), 5)
            assert not a.has_address(first.sender_address)
            with pytest.raises(TrustError):
                await a.send(first.route / "echo", b"x")
            assert await a.send_and_receive(route, b"2", timeout=5) == b"2"
            [second] = a.tcp.connections
            assert second is not first

    arun(main(), timeout=20)


def test_listener_and_connect_errors() -> None:
    async def main() -> None:
        async with Node("a") as a:
            listener = await a.create_tcp_listener()
            with pytest.raises(ConflictError, match="in use"):
                await a.create_tcp_listener(listener.address)
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            free_port = s.getsockname()[1]
            s.close()
            with pytest.raises(ConnectionFailedError):
                await a.connect_tcp(f"127.0.0.1:{free_port}")
            with pytest.raises(ConnectionFailedError):
                await a.send_and_receive(Route([Address.tcp(f"127.0.0.1:{free_port}"), "echo"]),
                                         b"x", timeout=1)
            with pytest.raises(TrustError):
                await a.connect_tcp("127.0.0.1")

    arun(main(), timeout=20)


def test_frame_too_large_is_refused_by_the_sender() -> None:
    async def main() -> None:
        async with Node("a") as a, Node("b") as b:
            await b.start_services()
            listener = await b.create_tcp_listener()
            conn = await a.connect_tcp(listener.address)
            with pytest.raises(FrameTooLargeError):
                await a.send(conn.route / "echo", bytes(16 * 1024 * 1024))
            big = bytes(4 * 1024 * 1024)
            assert await a.send_and_receive(conn.route / "echo", big, timeout=10) == big

    arun(main(), timeout=20)


def test_sockets_are_tuned() -> None:
    async def main() -> None:
        async with Node("a") as a, Node("b") as b:
            listener = await b.create_tcp_listener()
            conn = await a.connect_tcp(listener.address)
            sock = conn._transport.get_extra_info("socket")  # type: ignore[union-attr]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 300
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 75
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 2
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1

    arun(main(), timeout=20)


def test_stop_closes_every_socket_and_task() -> None:
    async def main() -> None:
        before = open_sockets()
        a, b = Node("a"), Node("b")
        await b.start_services()
        listener = await b.create_tcp_listener()
        await a.create_tcp_listener()
        raw = []
        for _ in range(3):
            _, writer = await _raw_connect(listener.port)  # idle raw peers
            writer.write(PREAMBLE)
            raw.append(writer)
        assert await a.send_and_receive(Route([Address.tcp(listener.address), "echo"]), b"x",
                                        timeout=5) == b"x"
        assert open_sockets() - before
        await a.stop()
        await b.stop()
        assert other_tasks() == set()
        for writer in raw:  # the nodes closed their ends; close ours
            writer.close()
            await writer.wait_closed()
        assert open_sockets() <= before

    arun(main(), timeout=20)


@given(st.binary(max_size=120))
@settings(max_examples=25, deadline=None)
def test_random_bytes_from_a_peer_never_raise_anything_but_decode_errors(garbage: bytes) -> None:
    """Whatever a peer sends, the node either decodes it or disconnects that peer, and keeps
    serving others; nothing else goes wrong (no unhandled exception in the event loop)."""

    async def main() -> None:
        errors: list[dict[str, object]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        async with Node("b") as b:
            await b.start_services()
            listener = await b.create_tcp_listener()
            reader, writer = await _raw_connect(listener.port)
            writer.write(PREAMBLE + garbage)
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 5)  # the node closes its side either way
            writer.close()
            good = await _raw_connect(listener.port)
            good[1].write(PREAMBLE + encode_frame(Route(["echo"]), Route(["me"]), b"ok"))
            assert await good[0].readexactly(1) == PREAMBLE
            frame = await _read_frame(good[0])
            assert FrameDecoder(preamble=False).decode(frame)[0].payload == b"ok"
            good[1].close()
            assert b.stats.disconnected_peers <= 1
        assert errors == []

    arun(main(), timeout=20)


def test_hop_does_not_open_a_way_around_flow_control() -> None:
    async def main() -> None:
        async with Node("a") as a, Node("b") as b, Node("c") as c:
            for n in (b, c):
                await n.start_services()
            got: list[bytes] = []

            async def secret(ctx: Context, msg: LocalMessage) -> None:
                got.append(msg.payload)
                await ctx.send(msg.return_route, b"leak")

            await b.start_worker("secret", secret)
            lb = await b.create_tcp_listener()
            lc = await c.create_tcp_listener()
            b.hop_allow.append(lc.address)
            to_b, to_c = Address.tcp(lb.address), Address.tcp(lc.address)
            for route in (Route([to_b, "hop", "secret"]), Route([to_b, "hop", "hop", "secret"])):
                with pytest.raises(TrustError):
                    await a.send_and_receive(route, b"x", timeout=0.3)
            assert got == [] and b.stats.refused_by_flow_control == 2
            # hop still relays to admitted workers and to other nodes
            assert await a.send_and_receive(Route([to_b, "hop", "echo"]), b"1", timeout=5) == b"1"
            assert await a.send_and_receive(Route([to_b, "hop", to_c, "echo"]), b"2",
                                            timeout=5) == b"2"
            # C answers through its connection from B, asking B's hop for B's secret: refused
            [from_b] = c.tcp.connections
            await c.send(from_b.route / "hop" / "secret", b"from C")
            await asyncio.sleep(0.2)
            assert got == [] and b.stats.refused_by_flow_control == 3
            # local messages are not restricted
            assert await b.send_and_receive(Route(["hop", "secret"]), b"local", timeout=5) \
                == b"leak"

    arun(main(), timeout=20)


def test_host_names_and_ipv6_routes() -> None:
    async def main() -> None:
        async with Node("a") as a, Node("b") as b:
            await b.start_services()
            listener = await b.create_tcp_listener("127.0.0.1:0")
            route = parse_multiaddr(
                f"/dnsaddr/localhost/tcp/{listener.port}/service/echo").to_route()
            assert await a.send_and_receive(route, b"by name", timeout=5) == b"by name"
            v6 = await b.create_tcp_listener("[::1]:0")
            assert v6.address.startswith("[::1]:")
            route = parse_multiaddr(f"/ip6/::1/tcp/{v6.port}/service/echo").to_route()
            assert await a.send_and_receive(route, b"v6", timeout=5) == b"v6"

    arun(main(), timeout=20)
