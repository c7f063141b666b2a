"""Secure channels over streams: two single-partition streams (this side → peer, peer → this
side) carry an Ockam secure channel (the same Noise XX handshake, identities, trust policies
and records as over TCP), so the stream service and the broker store only ciphertext.

Each stream record is ``kind (1 byte) || channel id (16 bytes) || body``: kinds 1-3 are the
three handshake messages, 4 a channel record (``nonce || AES-256-GCM``, wire spec §4.1) whose
plaintext is a ``SecureChannelMessage`` (a ``Payload`` with empty routes, or ``Close``). Records
of other channels sharing the streams are skipped.

Delivery is at least once at the stream level (a producer's retried push may store a batch
twice; a consumer killed before it saved its index pulls records again) and exactly once at the
application level: duplicates fail the channel's replay window and are dropped, and the
receiving side persists its channel state (decryption keys, replay window) in one transaction
with its position in the stream and, through :meth:`StreamChannel.commit`'s ``effect``, with
what the application did with the messages. A process killed with SIGKILL resumes the same
channel (:meth:`StreamChannel.resume`): the receiver from its last commit, the sender after the
last record the stream holds from it (found by reading the stream, so no nonce is ever used
twice). The persisted state holds keys: it lives in the node's database (file mode 0600).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from trust.channels import (
    ChannelIdentity,
    Close,
    Decryptor,
    Encryptor,
    HandshakeComplete,
    Initiator,
    Payload,
    PeerAuthenticator,
    Responder,
    SendMessage,
)
from trust.channels.errors import DecryptionError, ReplayError
from trust.channels.messages.padded import decode_message
from trust.channels.messages.payload import encode_payload
from trust.errors import DecodeError, NotFoundError, RemoteProtocolError, TrustError, UsageError
from trust.logsafe import safe_text, warn_limited
from trust.models.cbor import dumps, loads
from trust.routing import Route
from trust.streams.client import Backoff, StreamClient, StreamProducer, retrying
from trust.streams.messages.common import MAX_BATCH_RECORDS, check_name

__all__ = ["ChannelStates", "Received", "StreamChannel", "StreamChannelClosed"]

log = logging.getLogger("trust.streams.channel")

HANDSHAKE_1: Final = 1
HANDSHAKE_2: Final = 2
HANDSHAKE_3: Final = 3
RECORD: Final = 4
ID_SIZE: Final = 16
HEADER: Final = 1 + ID_SIZE
STATE_VERSION: Final = 1
_EMPTY = Route()


class StreamChannelClosed(TrustError):
    """The peer closed the channel (or this side did)."""


class ChannelStates(Protocol):
    """Where stream channels keep their state (implemented in :mod:`trust.storage.stream_channels`)."""

    async def load(self, name: str) -> bytes | None: ...

    async def save(self, name: str, state: bytes,
                   effect: Callable[[Any], Awaitable[None]] | None = None) -> None:
        """Store ``state`` and run ``effect(transaction)`` in one transaction."""
        ...

    async def delete(self, name: str) -> None: ...


@dataclass(frozen=True)
class Received:
    """Messages a :meth:`StreamChannel.receive` returned, not yet committed."""

    messages: list[bytes]
    next_index: int
    duplicates: int
    state: bytes
    """The channel state after these messages (what :meth:`StreamChannel.commit` saves)."""
    decryptor: Decryptor = field(repr=False, compare=False)
    """The decryptor in that state (a copy of the channel's: it takes over on commit)."""


def _frame(kind: int, channel_id: bytes, body: bytes) -> bytes:
    return bytes((kind,)) + channel_id + body


def _parse(record: bytes) -> tuple[int, bytes, bytes] | None:
    if len(record) < HEADER or not 1 <= record[0] <= RECORD:
        return None
    return record[0], record[1:HEADER], record[HEADER:]


class StreamChannel:
    """One side of a channel over two streams; build it with :meth:`initiate`, :meth:`accept`
    or :meth:`resume`."""

    def __init__(self, client: StreamClient, states: ChannelStates, name: str, *,
                 channel_id: bytes, out_stream: str, in_stream: str, peer_identifier: str,
                 peer_attributes: dict[str, str], encrypt_key: bytes, encrypt_nonce: int,
                 out_index: int, decryptor: Decryptor, in_index: int, initiator: bool,
                 backoff: Backoff | None = None) -> None:
        self.client = client
        self.states = states
        self.name = name
        self.channel_id = channel_id
        self.out_stream = out_stream
        self.in_stream = in_stream
        self.peer_identifier = peer_identifier
        self.peer_attributes = peer_attributes
        self.initiator = initiator
        self._key0 = encrypt_key
        self._encryptor = Encryptor(encrypt_key, nonce=encrypt_nonce)
        self.out_index = out_index
        self._decryptor = decryptor
        self.in_index = in_index
        self.closed = False
        self.duplicates = 0
        self.rejected = 0
        self.backoff = backoff or Backoff()
        self._producer = StreamProducer(client, out_stream, backoff=self.backoff)
        self._send_lock = asyncio.Lock()

    # -- state -----------------------------------------------------------------------------------
    def _state(self, decryptor: Decryptor, in_index: int) -> bytes:
        key, prev, start, current, bitmap = decryptor.snapshot()
        return dumps([STATE_VERSION, self.initiator, self.channel_id, self.out_stream,
                      self.in_stream, self.peer_identifier, dict(sorted(self.peer_attributes.items())),
                      self._key0, self._encryptor.nonce, self.out_index,
                      [key, prev, start, current, bitmap], in_index, self.closed])

    @classmethod
    def _from_state(cls, client: StreamClient, states: ChannelStates, name: str,
                    data: bytes) -> StreamChannel:
        try:
            v = loads(data, "stream_channel_state")
            (version, initiator, channel_id, out_stream, in_stream, peer, attrs, key0, nonce,
             out_index, dec, in_index, closed) = v
            if version != STATE_VERSION or not isinstance(initiator, bool) or \
                    not isinstance(channel_id, bytes) or len(channel_id) != ID_SIZE:
                raise ValueError("version")
            decryptor = Decryptor.restore(*dec)
            channel = cls(client, states, name, channel_id=channel_id, out_stream=check_name(out_stream),
                          in_stream=check_name(in_stream), peer_identifier=str(peer),
                          peer_attributes={str(k): str(x) for k, x in dict(attrs).items()},
                          encrypt_key=key0, encrypt_nonce=int(nonce), out_index=int(out_index),
                          decryptor=decryptor, in_index=int(in_index), initiator=initiator)
            channel.closed = bool(closed)
            return channel
        except (ValueError, TypeError, UsageError, DecodeError) as e:
            raise DecodeError(f"the saved state of stream channel {name} is not valid ({e})",
                              field="stream_channel_state") from None

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    async def initiate(cls, client: StreamClient, identity: ChannelIdentity,
                       authenticator: PeerAuthenticator, states: ChannelStates, name: str, *,
                       out_stream: str, in_stream: str, timeout: float = 30.0,
                       from_index: int = 0) -> StreamChannel:
        """Open a channel: handshake message 1 on ``out_stream``, message 2 read from
        ``in_stream`` (from ``from_index``), message 3 back; the peer must pass
        ``authenticator`` (its trust policy, authorities, credentials)."""
        channel_id = os.urandom(ID_SIZE)
        machine = Initiator(identity, authenticator)
        await client.push(out_stream, [_frame(HANDSHAKE_1, channel_id, machine.start())])
        body, index = await _await_record(client, in_stream, from_index, channel_id,
                                          HANDSHAKE_2, timeout)
        events = machine.receive(body)
        m3 = next(e.data for e in events if isinstance(e, SendMessage))
        done = next(e for e in events if isinstance(e, HandshakeComplete))
        pushed = await client.push(out_stream, [_frame(HANDSHAKE_3, channel_id, m3)])
        return await cls._opened(client, states, name, done, channel_id, out_stream, in_stream,
                                 pushed.first_index + 1, index, initiator=True)

    @classmethod
    async def _opened(cls, client: StreamClient, states: ChannelStates, name: str,
                      done: HandshakeComplete, channel_id: bytes, out_stream: str, in_stream: str,
                      out_index: int, in_index: int, *, initiator: bool) -> StreamChannel:
        """The channel of a completed handshake, saved before it is used."""
        channel = cls(client, states, name, channel_id=channel_id, out_stream=out_stream,
                      in_stream=in_stream, peer_identifier=done.peer.identifier,
                      peer_attributes=dict(done.peer.attributes),
                      encrypt_key=done.keys.encrypt_key, encrypt_nonce=0, out_index=out_index,
                      decryptor=Decryptor(done.keys.decrypt_key), in_index=in_index,
                      initiator=initiator)
        await states.save(name, channel._state(channel._decryptor, in_index))
        return channel

    @classmethod
    async def accept(cls, client: StreamClient, identity: ChannelIdentity,
                     authenticator: PeerAuthenticator, states: ChannelStates, name: str, *,
                     in_stream: str, out_stream: str, timeout: float = 30.0,
                     from_index: int = 0) -> StreamChannel:
        """Accept the next channel opened on ``in_stream`` (from ``from_index``)."""
        body, index, channel_id = await _await_any_opening(client, in_stream, from_index, timeout)
        machine = Responder(identity, authenticator)
        [m2] = [e.data for e in machine.receive(body) if isinstance(e, SendMessage)]
        pushed = await client.push(out_stream, [_frame(HANDSHAKE_2, channel_id, m2)])
        body, index = await _await_record(client, in_stream, index, channel_id, HANDSHAKE_3,
                                          timeout)
        try:
            done = next(e for e in machine.receive(body) if isinstance(e, HandshakeComplete))
        except TrustError:
            if machine.refusal is not None:  # tell the initiator: a Close under the keys
                await client.push(out_stream, [_frame(RECORD, channel_id, machine.refusal)])
            raise
        return await cls._opened(client, states, name, done, channel_id, out_stream, in_stream,
                                 pushed.first_index + 1, index, initiator=False)

    @classmethod
    async def resume(cls, client: StreamClient, states: ChannelStates,
                     name: str) -> StreamChannel:
        """The channel saved as ``name``, continuing exactly where its last commit left it."""
        data = await states.load(name)
        if data is None:
            raise NotFoundError(f"no saved stream channel named {name}")
        channel = cls._from_state(client, states, name, data)
        await channel._skip_sent()
        return channel

    async def _skip_sent(self) -> None:
        """Move the encryptor past every record this side pushed after its last save (a push
        whose save was lost), so a nonce is never used twice."""
        index = self.out_index
        nonce = self._encryptor.nonce
        while True:
            pulled = await self.client.pull(self.out_stream, index, limit=MAX_BATCH_RECORDS)
            for _, rec in pulled.records:
                parsed = _parse(rec)
                if parsed and parsed[0] == RECORD and parsed[1] == self.channel_id and \
                        len(parsed[2]) >= 8:
                    nonce = max(nonce, int.from_bytes(parsed[2][:8], "big") + 1)
            if not pulled.records:
                break
            index = pulled.next_index
        if nonce != self._encryptor.nonce or index != self.out_index:
            self._encryptor = Encryptor(self._key0, nonce=nonce)
            self.out_index = index
            await self.states.save(self.name, self._state(self._decryptor, self.in_index))

    # -- sending ---------------------------------------------------------------------------------
    async def send(self, payloads: Sequence[bytes]) -> None:
        """Encrypt and push ``payloads`` in order (as few pushes as the limits allow)."""
        if self.closed:
            raise StreamChannelClosed(f"stream channel {self.name} is closed")
        async with self._send_lock:
            records = [_frame(RECORD, self.channel_id,
                              self._encryptor.encrypt(encode_payload(_EMPTY, _EMPTY, p)))
                       for p in payloads]
            if records:
                pushed = await self._producer.send(records)
                self.out_index = max(self.out_index, pushed.first_index + pushed.count)

    async def close(self) -> None:
        """Send Close; the peer's channel closes when it reads it."""
        if self.closed:
            return
        async with self._send_lock:
            record = _frame(RECORD, self.channel_id, self._encryptor.encrypt(Close().encode()))
            await self._producer.send([record])
            self.closed = True
        await self.states.save(self.name, self._state(self._decryptor, self.in_index))

    # -- receiving -------------------------------------------------------------------------------
    async def receive(self, *, limit: int = 100, timeout: float = 1.0) -> Received:
        """The next messages (possibly none after ``timeout``); nothing is saved until
        :meth:`commit`. Duplicates and records that fail to decrypt are dropped (counted)."""
        if self.closed:
            raise StreamChannelClosed(f"stream channel {self.name} is closed")
        index = self.in_index
        pulled = await retrying("pull", self.backoff, lambda: self.client.pull(
            self.in_stream, index, limit=limit, timeout=timeout))  # (a pull is idempotent)
        dec = Decryptor.restore(*self._decryptor.snapshot())
        out: list[bytes] = []
        dups = 0
        closed = False
        for _, rec in pulled.records:
            parsed = _parse(rec)
            if parsed is None or parsed[0] != RECORD or parsed[1] != self.channel_id:
                continue
            try:
                message = decode_message(dec.decrypt(parsed[2]))
            except ReplayError:
                dups += 1
                continue
            except (DecryptionError, DecodeError) as e:
                self.rejected += 1
                warn_limited(log, "reject", "stream channel %s: a record was rejected: %s",
                             safe_text(self.name), safe_text(str(e)))
                continue
            if isinstance(message, Payload):
                out.append(message.payload)
            elif isinstance(message, Close):
                closed = True
                break
        self.duplicates += dups
        next_index = pulled.next_index
        if closed:
            self.closed = True
        return Received(out, next_index, dups, self._state(dec, next_index), dec)

    async def commit(self, received: Received,
                     effect: Callable[[Any], Awaitable[None]] | None = None) -> None:
        """Save the channel after ``received`` was handled, and run ``effect(transaction)`` in
        the same transaction (the application's own writes: then each message takes effect
        exactly once, whatever is killed when)."""
        await self.states.save(self.name, received.state, effect)
        self._decryptor = received.decryptor
        self.in_index = received.next_index


async def _framed(client: StreamClient, stream: str, index: int, timeout: float,
                  waiting_for: str) -> AsyncIterator[tuple[int, int, bytes, bytes]]:
    """``(index, kind, channel id, body)`` of each framed record of ``stream`` from ``index`` on,
    waiting for more until ``timeout``; then :class:`RemoteProtocolError` naming
    ``waiting_for``. Records that are not framed are skipped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise RemoteProtocolError(f"no {waiting_for} on stream {stream} within {timeout:g}s")
        pulled = await client.pull(stream, index, limit=MAX_BATCH_RECORDS, timeout=min(left, 5))
        for i, rec in pulled.records:
            parsed = _parse(rec)
            if parsed is not None:
                yield (i, *parsed)
        index = pulled.next_index


async def _await_record(client: StreamClient, stream: str, index: int, channel_id: bytes,
                        kind: int, timeout: float) -> tuple[bytes, int]:
    """The body of the first ``kind`` record of ``channel_id`` at or after ``index``, and the
    index after it."""
    async for i, got, cid, body in _framed(client, stream, index, timeout,
                                           f"handshake message {kind}"):
        if cid == channel_id:
            if got == kind:
                return body, i + 1
            if got == RECORD and kind == HANDSHAKE_2:
                raise RemoteProtocolError("the peer refused the channel")
    raise AssertionError("unreachable: _framed ends by raising")


async def _await_any_opening(client: StreamClient, stream: str, index: int,
                             timeout: float) -> tuple[bytes, int, bytes]:
    """The first handshake message 1 at or after ``index``: its body, the index after it, and
    its channel id."""
    async for i, got, cid, body in _framed(client, stream, index, timeout, "channel opened"):
        if got == HANDSHAKE_1:
            return body, i + 1, cid
    raise AssertionError("unreachable: _framed ends by raising")
