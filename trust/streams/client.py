"""The stream client: requests to a stream service over any route (a local address, a TCP
route, a secure channel), and a producer and a consumer built on it.

* :class:`StreamClient` sends one request and waits for its reply (``timeout`` each); error
  replies become typed errors (:class:`~trust.errors.NotFoundError`, ``ConflictError``,
  ``StorageError``, ``RemoteProtocolError``...).
* :class:`StreamProducer` pushes batches, retrying with exponential backoff across disconnects
  (delivery is at least once: a push whose reply was lost may be stored twice).
* :class:`StreamConsumer` resumes from its group's saved index, pulls with a long poll, and
  saves the index after each batch the application has handled; it holds at most one batch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from trust.errors import (
    ConflictError,
    DecodeError,
    NotFoundError,
    RemoteProtocolError,
    StorageError,
    TrustError,
    UntrustedError,
)
from trust.logsafe import safe_text, warn_limited
from trust.models.cbor import Reader
from trust.node.errors import ReceiveTimeoutError
from trust.routing import Route, RouteLike
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
    decode_response_head,
    encode_request,
)
from trust.streams.messages.common import MAX_BATCH_RECORDS
from trust.streams.messages.envelope import MAX_ID
from trust.streams.messages.index_get import decode_index_reply
from trust.streams.service import DEFAULT_MAX_IN_FLIGHT, DEFAULT_PEER_SHARE
from trust.transports import ConnectionFailedError

__all__ = ["IN_FLIGHT", "RETRYABLE", "Backoff", "StreamClient", "StreamConsumer", "StreamProducer",
           "retrying"]

log = logging.getLogger("trust.streams.client")

DEFAULT_TIMEOUT: Final = 10.0
IN_FLIGHT: Final = DEFAULT_MAX_IN_FLIGHT // DEFAULT_PEER_SHARE
"""Requests one client has in progress at most (more wait their turn here): a stream service's
default share per peer, beyond which it answers ``busy``."""
_ids = itertools.count(1)


def _error(reply: ErrorReply) -> TrustError:
    text = f"stream service: {safe_text(reply.message)}"
    kind = reply.kind
    if kind == "not_found":
        return NotFoundError(text)
    if kind == "conflict":
        return ConflictError(text)
    if kind in ("busy", "unavailable"):
        return StorageError(text)
    if kind == "denied":
        return UntrustedError(text)
    if kind == "malformed":
        return DecodeError(text, field="request")
    return RemoteProtocolError(text)


class StreamClient:
    """Requests to the stream service at ``route`` (e.g. ``"stream_service"`` on the same node,
    or ``channel.route / "stream_service"``), sent from ``node``."""

    def __init__(self, node: Any, route: RouteLike, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.node = node
        self.route = Route.of(route)
        self.timeout = timeout
        self._in_flight = asyncio.Semaphore(IN_FLIGHT)

    async def request(self, operation: Operation) -> Reader:
        """Send ``operation``; return a reader at the reply body (status 0), or raise. At most
        :data:`IN_FLIGHT` requests of this client are in progress (the others wait their turn,
        before their timeout starts), within the service's share per peer."""
        async with self._in_flight:
            return await self._request(operation)

    async def _request(self, operation: Operation) -> Reader:
        req_id = next(_ids) % (MAX_ID + 1)
        ctx = self.node.context(mailbox_size=4)
        try:
            await ctx.send(self.route, encode_request(req_id, operation))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise ReceiveTimeoutError(f"no reply from the stream service within "
                                              f"{self.timeout:g}s")
                msg = await ctx.receive(left)
                got_id, status, r = decode_response_head(msg.payload)
                if got_id != req_id:
                    continue  # a late reply to an earlier request: not ours
                if status != 0:
                    reply = ErrorReply.read(r)
                    r.end("response")
                    raise _error(reply)
                return r
        finally:
            ctx.close()

    async def create(self, name: str, partitions: int = 1) -> StreamInfo:
        r = await self.request(CreateStream(name, partitions))
        info = StreamInfo.read(r)
        r.end("response")
        return info

    async def push(self, name: str, records: Sequence[bytes], partition: int = 0) -> Pushed:
        r = await self.request(Push(name, tuple(records), partition))
        pushed = Pushed.read(r)
        r.end("response")
        return pushed

    async def pull(self, name: str, from_index: int = 0, *, limit: int = 100,
                   timeout: float = 0.0, partition: int = 0) -> Pulled:
        r = await self.request(Pull(name, from_index, limit, int(timeout * 1000), partition))
        pulled = Pulled.read(r)
        r.end("response")
        if pulled.records and pulled.records[0][0] < from_index:
            raise RemoteProtocolError("the stream service returned records before the index asked")
        return pulled

    async def get_index(self, name: str, group: str, partition: int = 0) -> int | None:
        r = await self.request(IndexGet(name, group, partition))
        index = decode_index_reply(r)
        r.end("response")
        return index

    async def save_index(self, name: str, group: str, index: int, partition: int = 0) -> None:
        r = await self.request(IndexSave(name, group, index, partition))
        r.array("reply", 0)
        r.end("response")

    async def streams(self) -> list[StreamInfo]:
        r = await self.request(ListStreams())
        n = r.array("streams", max_len=100_000)
        infos = [StreamInfo.read(r, f"streams[{i}]") for i in range(n)]
        r.end("response")
        return infos

    async def delete(self, name: str) -> None:
        r = await self.request(DeleteStream(name))
        r.array("reply", 0)
        r.end("response")


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``initial`` doubling up to ``maximum`` seconds."""

    initial: float = 0.05
    maximum: float = 2.0
    attempts: int | None = None
    """Give up after this many failed attempts (``None``: never)."""

    def delays(self) -> AsyncIterator[int]:
        return self._delays()

    async def _delays(self) -> AsyncIterator[int]:
        delay = self.initial
        n = 0
        while self.attempts is None or n < self.attempts:
            n += 1
            yield n
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(self.maximum, delay * 2)


RETRYABLE: Final = (ReceiveTimeoutError, StorageError, RemoteProtocolError, ConnectionFailedError,
                    ConnectionError, OSError)
"""Failures a producer or consumer waits out: no reply, a busy or unreachable backend, a
connection being re-made. A missing stream or a refusal is not waited out."""


async def retrying(what: str, backoff: Backoff, call: Any) -> Any:
    """``await call()``, again after each :data:`RETRYABLE` failure, waiting per ``backoff``."""
    last: BaseException | None = None
    async for attempt in backoff.delays():
        try:
            return await call()
        except RETRYABLE as e:
            last = e
            warn_limited(log, what, "stream %s failed (attempt %d), retrying: %s", what, attempt,
                         safe_text(str(e)))
    assert last is not None
    raise last


class StreamProducer:
    """Push records to one partition of a stream, retrying across disconnects."""

    def __init__(self, client: StreamClient, name: str, *, partition: int = 0,
                 backoff: Backoff | None = None) -> None:
        self.client = client
        self.name = name
        self.partition = partition
        self.backoff = backoff or Backoff()
        self.pushed = 0

    async def send(self, records: Sequence[bytes]) -> Pushed:
        """Push ``records`` (at most 1,000 at a time; larger lists are split, in order)."""
        last = Pushed(0, 0)
        for start in range(0, len(records), MAX_BATCH_RECORDS):
            chunk = tuple(records[start:start + MAX_BATCH_RECORDS])
            last = await retrying("push", self.backoff,
                                lambda c=chunk: self.client.push(self.name, c, self.partition))
            self.pushed += len(chunk)
        return last


class StreamConsumer:
    """Pull one partition of a stream as consumer group ``group``, from its saved index (or
    ``from_index`` when the group has none), saving the index after each batch is handled."""

    def __init__(self, client: StreamClient, name: str, group: str, *, partition: int = 0,
                 limit: int = 100, poll_timeout: float = 1.0, from_index: int = 0,
                 backoff: Backoff | None = None) -> None:
        self.client = client
        self.name = name
        self.group = group
        self.partition = partition
        self.limit = limit
        self.poll_timeout = poll_timeout
        self.default_index = from_index
        self.backoff = backoff or Backoff()
        self.index: int | None = None
        """The index of the next record wanted (``None`` until resumed)."""

    async def resume(self) -> int:
        saved = await retrying("index get", self.backoff, lambda: self.client.get_index(
            self.name, self.group, self.partition))
        self.index = self.default_index if saved is None else saved
        return self.index

    async def pull(self) -> list[tuple[int, bytes]]:
        """The next batch (possibly empty after ``poll_timeout``); not yet committed."""
        if self.index is None:
            await self.resume()
        assert self.index is not None
        index = self.index
        pulled: Pulled = await retrying("pull", self.backoff, lambda: self.client.pull(
            self.name, index, limit=self.limit, timeout=self.poll_timeout,
            partition=self.partition))
        return list(pulled.records)

    async def commit(self, next_index: int) -> None:
        """Save ``next_index`` as the group's position (after handling the records before it)."""
        await retrying("index save", self.backoff, lambda: self.client.save_index(
            self.name, self.group, next_index, self.partition))
        self.index = next_index

    async def batches(self) -> AsyncGenerator[list[tuple[int, bytes]], None]:
        """Yield non-empty batches forever; each is committed when the loop asks for the next
        one (so a batch is handled at least once, even if the process dies mid-batch)."""
        while True:
            batch = await self.pull()
            if not batch:
                continue
            yield batch
            await self.commit(batch[-1][0] + 1)
