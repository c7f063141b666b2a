"""Back-pressure: a stalled worker stops its TCP receiver, so a fast peer's writes block and the
node's memory stays flat."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import tracemalloc

from tests.node.helpers import arun
from trust.node import Context, Node
from trust.routing import PREAMBLE, LocalMessage, Route, encode_frame

PAYLOAD = 64 * 1024


class FloodingPeer(threading.Thread):
    """A raw TCP peer that writes frames to ``stalled`` as fast as the socket lets it."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.frame = encode_frame(Route(["stalled"]), Route(["peer"]), bytes(PAYLOAD))
        self.sent = 0
        self.last_progress = time.monotonic()
        self.stop = threading.Event()

    def run(self) -> None:
        data = memoryview(PREAMBLE + self.frame * 8)
        pending = data
        while not self.stop.is_set():
            try:
                n = self.sock.send(pending)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                return
            self.sent += n
            self.last_progress = time.monotonic()
            pending = pending[n:]
            if not pending:
                pending = memoryview(self.frame * 8)

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.sock.close()


def test_stalled_worker_blocks_a_flooding_peer_with_flat_memory() -> None:
    async def main() -> None:
        async with Node("b", mailbox_size=4) as b:
            release = asyncio.Event()
            handled = 0

            async def stalled(ctx: Context, msg: LocalMessage) -> None:
                nonlocal handled
                await release.wait()
                handled += 1

            await b.start_worker("stalled", stalled)
            listener = await b.create_tcp_listener(consumers=["stalled"])
            tracemalloc.start()
            peer = FloodingPeer(listener.port)
            peer.start()
            try:
                # wait until the peer is blocked: no progress for half a second
                deadline = time.monotonic() + 20
                while time.monotonic() - peer.last_progress < 0.5:
                    assert time.monotonic() < deadline, "the peer never blocked"
                    await asyncio.sleep(0.05)
                blocked_at = peer.sent
                mem_at_block, _ = tracemalloc.get_traced_memory()
                [conn] = b.tcp.connections
                assert conn.reading_paused
                await asyncio.sleep(1.0)  # the peer keeps trying for a second
                mem_later, _ = tracemalloc.get_traced_memory()
                assert peer.sent == blocked_at, "the peer's writes did not block"
                assert mem_later - mem_at_block < 512 * 1024, (mem_at_block, mem_later)
                # what the node holds: a few messages and its read buffer, not the flood
                assert mem_later < 8 * 1024 * 1024
                assert blocked_at < 64 * 1024 * 1024
                # the worker resumes: the receiver reads again and the peer makes progress
                release.set()
                deadline = time.monotonic() + 20
                while peer.sent < blocked_at + 4 * PAYLOAD:
                    assert time.monotonic() < deadline, "reading never resumed"
                    await asyncio.sleep(0.05)
                assert handled > 0
            finally:
                tracemalloc.stop()
                peer.close()

    arun(main(), timeout=60)


def test_a_node_sender_blocks_when_the_peer_stops_reading() -> None:
    async def main() -> None:
        async with Node("a") as a, Node("b", mailbox_size=2) as b:
            release = asyncio.Event()
            got = 0

            async def stalled(ctx: Context, msg: LocalMessage) -> None:
                nonlocal got
                await release.wait()
                got += 1

            await b.start_worker("stalled", stalled)
            listener = await b.create_tcp_listener(consumers=["stalled"])
            conn = await a.connect_tcp(listener.address)
            ctx = a.context()
            payload = bytes(PAYLOAD)
            sent = 0
            blocked = False
            for _ in range(5000):
                try:
                    await asyncio.wait_for(ctx.send(conn.route / "stalled", payload), 0.5)
                except TimeoutError:
                    blocked = True
                    break
                sent += 1
            assert blocked, "ctx.send never blocked"
            # bounded: kernel buffers + the sender's write buffer + a few messages
            assert sent * PAYLOAD < 64 * 1024 * 1024
            transport = conn._transport
            assert transport is not None and transport.get_write_buffer_size() <= 2 * 1024 * 1024
            release.set()
            await asyncio.wait_for(ctx.send(conn.route / "stalled", payload), 10)
            deadline = time.monotonic() + 20
            while got < sent + 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)

    arun(main(), timeout=60)
