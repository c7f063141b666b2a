"""The stream service's share per peer: one peer's long polls cannot take the capacity every
peer shares (the attacker review's busy.py), and a client keeps to its share by itself."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from tests.streams.helpers import aio
from trust.channels.local_info import SecureChannelLocalInfo
from trust.node import Node
from trust.streams.client import IN_FLIGHT, StreamClient
from trust.streams.memory import MemoryStreams
from trust.streams.messages import ErrorReply, Pull, decode_response_head, encode_request
from trust.streams.service import StreamService


def _as_peer(identifier: str) -> tuple[Any, ...]:
    """The local info a secure channel from ``identifier`` puts on its messages."""
    peer: Any = SimpleNamespace(identifier=identifier)
    return (SecureChannelLocalInfo(channel=None, peer=peer),)  # type: ignore[arg-type]


@aio()
async def test_one_peer_cannot_take_every_slot() -> None:
    node = await Node.create("streams-peers")
    try:
        service = StreamService(MemoryStreams(), max_in_flight=16)
        assert service.max_per_peer == 2
        await node.start_worker("stream_service", service)
        honest = StreamClient(node, "stream_service", timeout=5)
        await honest.create("quiet")
        await honest.create("orders")
        await honest.push("orders", [b"hello"])
        hostile = node.context(mailbox_size=64)
        try:
            for i in range(16):  # 16 long polls on an empty stream, from one peer
                await hostile.send("stream_service",
                                   encode_request(i + 1, Pull("quiet", 0, 1, 60_000)),
                                   local_info=_as_peer("I" + "a" * 64))
            await asyncio.sleep(0.2)
            assert service.in_flight == 2
            busy = []
            for _ in range(14):  # refused at once, each with a busy reply
                _, status, r = decode_response_head((await hostile.receive(1)).payload)
                busy.append((status, ErrorReply.read(r).kind))
            assert busy == [(4, "busy")] * 14
            # another peer, and callers without a channel, are still served
            other = node.context(mailbox_size=4)
            try:
                await other.send("stream_service", encode_request(99, Pull("orders", 0, 1, 0)),
                                 local_info=_as_peer("I" + "b" * 64))
                assert decode_response_head((await other.receive(2)).payload)[1] == 0
            finally:
                other.close()
            assert (await honest.pull("orders")).records == ((0, b"hello"),)
        finally:
            hostile.close()
    finally:
        await node.stop()


@aio()
async def test_a_client_keeps_to_its_share() -> None:
    node = await Node.create("streams-share")
    try:
        service = StreamService(MemoryStreams())
        await node.start_worker("stream_service", service)
        c = StreamClient(node, "stream_service", timeout=5)
        await c.create("s")
        # twice the share of long polls at once: the client queues them, none is refused
        pulls = await asyncio.gather(*[c.pull("s", 0, timeout=0.2) for _ in range(2 * IN_FLIGHT)])
        assert all(p.records == () for p in pulls) and service.refused == 0
    finally:
        await node.stop()
