"""The stream service: a node worker (default address ``stream_service``) that answers the
stream protocol (:mod:`trust.streams.messages`) from a :class:`~trust.streams.backend.StreamBackend`.

Each request runs in a task of its own, so a long poll never holds up other callers; at most
``max_in_flight`` requests run at once, and at most ``max_per_peer`` of one peer (by default
``max_in_flight // 8``; a peer is the identity at the other end of the secure channel the
request came through, or without one the transport connection; this node's own callers count as
one): more are answered ``busy`` at once, so no peer can hold the capacity every peer shares.
Replies are sent without waiting on a full peer (dropped and counted instead: the client retries). Malformed
requests get a ``malformed`` error reply and change nothing. Access to the service is a policy
resource like any other (type ``stream-service``): start it with the node's access control.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from trust.channels.local_info import channel_info
from trust.errors import (
    ConflictError,
    DecodeError,
    NotFoundError,
    StorageError,
    TrustError,
)
from trust.logsafe import safe_text, warn_limited
from trust.models.cbor import Reader, head
from trust.node.context import Context
from trust.node.peer_shares import DEFAULT_PEER_SHARE, PeerShares, default_share
from trust.node.worker import Worker
from trust.routing import LocalMessage
from trust.streams.backend import StreamBackend
from trust.streams.messages import (
    CreateStream,
    DeleteStream,
    ErrorReply,
    IndexGet,
    IndexSave,
    ListStreams,
    Operation,
    Pull,
    Pulled,
    Push,
    Pushed,
    StreamInfo,
    decode_request,
    encode_response,
)
from trust.streams.messages.common import MAX_BATCH_BYTES, MAX_MESSAGE
from trust.streams.messages.envelope import MAX_ID
from trust.streams.messages.index_get import encode_index_reply

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_MAX_IN_FLIGHT", "DEFAULT_PEER_SHARE", "RESOURCE_TYPE",
           "StreamService"]

log = logging.getLogger("trust.streams.service")

DEFAULT_ADDRESS: Final = "stream_service"
RESOURCE_TYPE: Final = "stream-service"
POLL_INTERVAL: Final = 0.05
"""How often a long poll looks again when another process may have appended."""
DEFAULT_MAX_IN_FLIGHT: Final = 256


class StreamService(Worker):
    """Serve ``backend`` to callers; see the module docstring."""

    def __init__(self, backend: StreamBackend, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 max_per_peer: int = 0, poll_interval: float = POLL_INTERVAL) -> None:
        self.backend = backend
        self.max_in_flight = max_in_flight
        self.max_per_peer = default_share(max_in_flight, max_per_peer)
        self._per_peer = PeerShares(self.max_per_peer)
        self.poll_interval = poll_interval
        self.in_flight = 0
        self.served = 0
        self.refused = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._appended: dict[tuple[str, int], asyncio.Event] = {}

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        try:
            request = decode_request(msg.payload)
        except DecodeError as e:
            self.refused += 1
            warn_limited(log, "malformed", "stream service: malformed request: %s", safe_text(str(e)))
            req_id = _id_of(msg.payload)
            await self._reply(ctx, msg, req_id, 1, ErrorReply(1, str(e)).encode())
            return
        peer = _peer_of(msg)
        if self._per_peer.full(peer):
            self.refused += 1
            warn_limited(log, "peer-busy", "stream service: %s has %d requests in flight, its "
                         "limit; refused", "this node's callers" if peer is None else
                         safe_text(peer), self.max_per_peer)
            await self._reply(ctx, msg, request.id, 4, ErrorReply(
                4, f"too many stream requests in flight from this peer (at most "
                   f"{self.max_per_peer})").encode())
            return
        if self.in_flight >= self.max_in_flight:
            self.refused += 1
            await self._reply(ctx, msg, request.id, 4,
                              ErrorReply(4, "too many stream requests in flight").encode())
            return
        self.in_flight += 1
        self._per_peer.take(peer)
        task = asyncio.create_task(self._serve(ctx, msg, request.id, request.operation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._per_peer.give(peer))

    async def shutdown(self, ctx: Context) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, ctx: Context, msg: LocalMessage, req_id: int, op: Operation) -> None:
        try:
            try:
                body = await self._run(op)
                status = 0
            except NotFoundError as e:
                status, body = 2, ErrorReply(2, str(e)).encode()
            except ConflictError as e:
                status, body = 3, ErrorReply(3, str(e)).encode()
            except StorageError as e:
                status, body = 5, ErrorReply(5, str(e)).encode()
            except TrustError as e:
                status, body = 1, ErrorReply(1, str(e)).encode()
            except Exception as e:  # a backend defect: answer, log, keep serving
                log.exception("stream service: %s failed", type(op).__name__)
                status, body = 7, ErrorReply(7, f"internal error ({type(e).__name__})").encode()
            self.served += 1
            await self._reply(ctx, msg, req_id, status, body)
        finally:
            self.in_flight -= 1

    async def _reply(self, ctx: Context, msg: LocalMessage, req_id: int, status: int,
                     body: bytes) -> None:
        if not msg.return_route:
            return
        try:
            await ctx.send(msg.return_route, encode_response(req_id, status, body),
                           drop_when_full=True)
        except TrustError as e:
            warn_limited(log, "reply", "stream service: cannot reply: %s", safe_text(str(e)))

    async def _run(self, op: Operation) -> bytes:
        b = self.backend
        if isinstance(op, Pull):
            return await self._pull(op)
        if isinstance(op, Push):
            first = await b.append(op.name, op.partition, op.records)
            event = self._appended.pop((op.name, op.partition), None)
            if event is not None:
                event.set()
            return Pushed(first, len(op.records)).encode()
        if isinstance(op, CreateStream):
            return (await b.create(op.name, op.partitions)).encode()
        if isinstance(op, IndexGet):
            return encode_index_reply(await b.get_index(op.name, op.group, op.partition))
        if isinstance(op, IndexSave):
            await b.save_index(op.name, op.group, op.partition, op.index)
            return b"\x80"
        if isinstance(op, ListStreams):
            return _list_reply(await b.streams())
        if isinstance(op, DeleteStream):
            await b.delete(op.name)
            return b"\x80"
        raise DecodeError(f"unsupported operation {type(op).__name__}", field="op")

    async def _pull(self, op: Pull) -> bytes:
        deadline = time.monotonic() + op.timeout_ms / 1000
        while True:
            records = await self.backend.read(op.name, op.partition, op.from_index, op.limit,
                                              MAX_BATCH_BYTES)
            left = deadline - time.monotonic()
            if records or left <= 0:
                break
            key = (op.name, op.partition)
            event = self._appended.get(key)
            if event is None:
                if len(self._appended) >= 4 * self.max_in_flight:
                    self._appended.clear()  # bounded: waiters fall back to polling
                event = self._appended[key] = asyncio.Event()
            try:
                await asyncio.wait_for(event.wait(), min(left, self.poll_interval))
            except TimeoutError:
                pass
        next_index = records[-1][0] + 1 if records else op.from_index
        return Pulled(next_index, tuple(records)).encode()


def _list_reply(infos: list[StreamInfo]) -> bytes:
    """The reply to a list: the streams in order, as many as fit in one reply (a backend with
    its limits fits; a catalog over large Kafka clusters may not: the rest is left out, logged)."""
    parts: list[bytes] = []
    room = MAX_MESSAGE - 1024  # (the response envelope and the array head)
    for info in infos:
        encoded = info.encode()
        if len(encoded) > room:
            warn_limited(log, "list", "stream service: a list of %d streams was cut to the %d "
                         "that fit in one reply", len(infos), len(parts))
            break
        room -= len(encoded)
        parts.append(encoded)
    return head(4, len(parts)) + b"".join(parts)


def _peer_of(msg: LocalMessage) -> str | None:
    """Whose share a request counts against: the identity at the other end of its secure
    channel; without a channel, the transport connection it came through (the first hop of a
    longer return route); ``None`` for this node's own callers."""
    info = channel_info(msg)
    if info is not None:
        return info.identifier
    if len(msg.return_route) > 1:
        return f"connection {msg.return_route.next()}"
    return None


def _id_of(payload: bytes) -> int:
    """The request id of a malformed request when it can be read, else 0."""
    try:
        r = Reader(payload)
        r.array("request", 3)
        return r.uint("id", max_value=MAX_ID)
    except DecodeError:
        return 0
