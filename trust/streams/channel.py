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
from struct import Struct
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
from trust.channels.keys import X25519KeyPair
from trust.channels.messages.padded import decode_message
from trust.channels.messages.payload import encode_payload
from trust.channels.records import KEY_RENEWAL_INTERVAL, MAX_NONCE, rekey
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
STATE_VERSION: Final = 2
"""Version 2 saves the encryptor's current key (after its rekeys) with its next nonce, so a
channel resumes at any nonce; version 1 saved the first key (resumable up to nonce 2^20)."""
SKIP_SLACK: Final = 1 << 16
"""On resume, how far past its saved nonce (plus one per record read) a record of this side may
lie: records lost by failed pushes leave gaps, an attacker's record with a huge nonce costs no
rekeys beyond this."""
MAX_PENDING: Final = 64
"""Handshakes :meth:`StreamChannel.accept` keeps waiting for their message 3 at once."""
_NONCE: Final = Struct(">Q")
_ZERO4: Final = bytes(4)
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


class _OwnKeys:
    """This side's own record keys from its saved encryptor state on (``key`` is the key of
    ``nonce - 1``, or the first key when ``nonce`` is 0), to recognise its own records."""

    def __init__(self, key: bytes, nonce: int) -> None:
        self.nonce = nonce
        self._first_epoch = (nonce - 1) // KEY_RENEWAL_INTERVAL if nonce else 0
        self._keys = [key]  # the keys of epochs _first_epoch, _first_epoch + 1, ...

    def key_for(self, n: int) -> bytes:
        """The key of nonce ``n`` (``n`` at least ``nonce - 1``)."""
        i = n // KEY_RENEWAL_INTERVAL - self._first_epoch
        while len(self._keys) <= i:
            self._keys.append(rekey(self._keys[-1]))
        return self._keys[i]

    def authentic_nonce(self, record: bytes, *, limit: int) -> int | None:
        """The nonce of ``record`` when it is a record of nonce ``nonce`` .. ``limit`` that
        authenticates under this side's key; else None."""
        if len(record) < 8 + 16:
            return None
        n = _NONCE.unpack_from(record)[0]
        if not self.nonce <= n <= min(limit, MAX_NONCE):
            return None
        try:
            AESGCM(self.key_for(n)).decrypt(_ZERO4 + record[:8], record[8:], None)
        except InvalidTag:
            return None
        return n


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
                 peer_attributes: dict[str, str], encryptor: Encryptor,
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
        self._encryptor = encryptor
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
        enc_key, enc_nonce = self._encryptor.state
        return dumps([STATE_VERSION, self.initiator, self.channel_id, self.out_stream,
                      self.in_stream, self.peer_identifier, dict(sorted(self.peer_attributes.items())),
                      enc_key, enc_nonce, self.out_index,
                      [key, prev, start, current, bitmap], in_index, self.closed])

    @classmethod
    def _from_state(cls, client: StreamClient, states: ChannelStates, name: str,
                    data: bytes) -> StreamChannel:
        try:
            v = loads(data, "stream_channel_state")
            if not isinstance(v, list) or len(v) != 13:
                raise ValueError("not a list of 13 fields")
            (version, initiator, channel_id, out_stream, in_stream, peer, attrs, enc_key, nonce,
             out_index, dec, in_index, closed) = v
            if version not in (1, STATE_VERSION) or type(version) is not int:
                raise ValueError(f"unknown version {safe_text(repr(version))[:40]}")
            if not isinstance(initiator, bool) or not isinstance(closed, bool) or \
                    not isinstance(channel_id, bytes) or len(channel_id) != ID_SIZE:
                raise ValueError("bad header fields")
            if not isinstance(enc_key, bytes) or len(enc_key) != 32 or type(nonce) is not int or \
                    not 0 <= nonce <= MAX_NONCE + 1:
                raise ValueError("bad encryptor state")
            for i in (out_index, in_index):
                if type(i) is not int or not 0 <= i < 1 << 63:
                    raise ValueError("bad stream index")
            if not isinstance(peer, str) or not isinstance(attrs, dict) or \
                    not all(isinstance(k, str) and isinstance(x, str) for k, x in attrs.items()):
                raise ValueError("bad peer")
            if not isinstance(dec, list) or len(dec) != 5:
                raise ValueError("bad decryptor state")
            if not isinstance(dec[0], bytes) or not all(type(x) is int for x in dec[2:]):
                raise ValueError("bad decryptor state")
            decryptor = Decryptor.restore(*dec)
            if version == 1:  # the first key: rebuilt by rekeys (refused past nonce 2^20)
                encryptor = Encryptor(enc_key, nonce=nonce)
            else:  # the current key (the key of nonce - 1)
                encryptor = Encryptor.resume(enc_key, nonce) if nonce else Encryptor(enc_key)
            channel = cls(client, states, name, channel_id=channel_id, out_stream=check_name(out_stream),
                          in_stream=check_name(in_stream), peer_identifier=peer,
                          peer_attributes=dict(attrs), encryptor=encryptor, out_index=out_index,
                          decryptor=decryptor, in_index=in_index, initiator=initiator)
            channel.closed = closed
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
        # Anyone who can push to in_stream can answer message 1 first (its channel id is in
        # clear): a message 2 that fails (malformed, or a peer the authenticator refuses) is
        # skipped, and the next one is tried on a new handshake from the same message 1 (the
        # same ephemeral key); only the one that passes gets message 3.
        ephemeral = X25519KeyPair.generate()
        first = Initiator(identity, authenticator, ephemeral=ephemeral)
        await client.push(out_stream, [_frame(HANDSHAKE_1, channel_id, first.start())])
        machine: Initiator | None = first
        skipped = _Skipped(name, "message 2")
        async for i, got, cid, body in _framed(client, in_stream, from_index, timeout,
                                               "handshake message 2", skipped):
            if cid != channel_id:
                continue
            if got != HANDSHAKE_2:
                skipped.add(f"a record of kind {got} before message 2")
                continue
            if machine is None:
                fresh = Initiator(identity, authenticator, ephemeral=ephemeral)
                fresh.start()
                machine = fresh
            try:
                events = machine.receive(body)
            except (TrustError, ValueError) as e:
                machine = None
                skipped.add(str(e))
                continue
            m3 = next(e.data for e in events if isinstance(e, SendMessage))
            done = next(e for e in events if isinstance(e, HandshakeComplete))
            pushed = await client.push(out_stream, [_frame(HANDSHAKE_3, channel_id, m3)])
            return await cls._opened(client, states, name, done, channel_id, out_stream,
                                     in_stream, pushed.first_index + 1, i + 1, initiator=True)
        raise AssertionError("unreachable: _framed ends by raising")

    @classmethod
    async def _opened(cls, client: StreamClient, states: ChannelStates, name: str,
                      done: HandshakeComplete, channel_id: bytes, out_stream: str, in_stream: str,
                      out_index: int, in_index: int, *, initiator: bool) -> StreamChannel:
        """The channel of a completed handshake, saved before it is used."""
        channel = cls(client, states, name, channel_id=channel_id, out_stream=out_stream,
                      in_stream=in_stream, peer_identifier=done.peer.identifier,
                      peer_attributes=dict(done.peer.attributes),
                      encryptor=Encryptor(done.keys.encrypt_key), out_index=out_index,
                      decryptor=Decryptor(done.keys.decrypt_key), in_index=in_index,
                      initiator=initiator)
        await states.save(name, channel._state(channel._decryptor, in_index))
        return channel

    @classmethod
    async def accept(cls, client: StreamClient, identity: ChannelIdentity,
                     authenticator: PeerAuthenticator, states: ChannelStates, name: str, *,
                     in_stream: str, out_stream: str, timeout: float = 30.0,
                     from_index: int = 0) -> StreamChannel:
        """Accept the next channel opened on ``in_stream`` (from ``from_index``): the first
        whose handshake completes and whose initiator passes ``authenticator``. Openings that
        fail (a malformed message 1 or 3, a refused initiator: it gets a Close) or never finish
        are skipped (logged), so anyone who can push to ``in_stream`` cannot block the next
        channel; at most :data:`MAX_PENDING` handshakes wait for their message 3 at once."""
        pending: dict[bytes, tuple[Responder, int]] = {}  # channel id -> (machine, out index)
        skipped = _Skipped(name, "opening")
        async for i, got, cid, body in _framed(client, in_stream, from_index, timeout,
                                               "channel opened", skipped):
            if got == HANDSHAKE_1:
                if cid in pending:
                    continue  # a duplicate (a producer's retried push)
                machine = Responder(identity, authenticator)
                try:
                    [m2] = [e.data for e in machine.receive(body) if isinstance(e, SendMessage)]
                except (TrustError, ValueError) as e:
                    skipped.add(str(e))
                    continue
                pushed = await client.push(out_stream, [_frame(HANDSHAKE_2, cid, m2)])
                if len(pending) >= MAX_PENDING:
                    del pending[next(iter(pending))]  # the oldest gives up
                    skipped.add("an opening without message 3")
                pending[cid] = (machine, pushed.first_index + 1)
            elif got == HANDSHAKE_3 and cid in pending:
                machine, out_index = pending.pop(cid)
                try:
                    done = next(e for e in machine.receive(body) if isinstance(e, HandshakeComplete))
                except (TrustError, ValueError) as e:
                    if machine.refusal is not None:  # tell the initiator: a Close under the keys
                        await client.push(out_stream, [_frame(RECORD, cid, machine.refusal)])
                    skipped.add(str(e))
                    continue
                return await cls._opened(client, states, name, done, cid, out_stream, in_stream,
                                         out_index, i + 1, initiator=False)
        raise AssertionError("unreachable: _framed ends by raising")

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
        whose save was lost), so a nonce is never used twice. Only records that authenticate
        under this side's own key count: anyone who can push to the stream can write a record
        with this channel's id (it is in clear) and any nonce, and such a record is skipped
        (counted in :attr:`rejected`), never moving the nonce."""
        index = self.out_index
        keys = _OwnKeys(*self._encryptor.state)
        nonce = keys.nonce
        seen = 0
        while True:
            pulled = await self.client.pull(self.out_stream, index, limit=MAX_BATCH_RECORDS)
            for _, rec in pulled.records:
                seen += 1
                parsed = _parse(rec)
                if not parsed or parsed[0] != RECORD or parsed[1] != self.channel_id:
                    continue
                n = keys.authentic_nonce(parsed[2], limit=keys.nonce + seen + SKIP_SLACK)
                if n is None:
                    self.rejected += 1
                    warn_limited(log, "skip-foreign", "stream channel %s: a record on %s with its "
                                 "id is not its own (skipped)", safe_text(self.name),
                                 safe_text(self.out_stream))
                elif n >= nonce:
                    nonce = n + 1
            if not pulled.records:
                break
            index = pulled.next_index
        if nonce != self._encryptor.nonce or index != self.out_index:
            if nonce != self._encryptor.nonce:
                self._encryptor = Encryptor.resume(keys.key_for(nonce - 1), nonce)
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


class _Skipped:
    """Bad handshake records an opening skipped: counted, logged (rate-limited, escaped)."""

    def __init__(self, name: str, what: str) -> None:
        self.name = name
        self.what = what
        self.count = 0

    def add(self, reason: str) -> None:
        self.count += 1
        warn_limited(log, "skip-opening", "stream channel %s: a bad %s was skipped: %s",
                     safe_text(self.name), self.what, safe_text(reason[:200]))


async def _framed(client: StreamClient, stream: str, index: int, timeout: float,
                  waiting_for: str, skipped: _Skipped) -> AsyncIterator[tuple[int, int, bytes, bytes]]:
    """``(index, kind, channel id, body)`` of each framed record of ``stream`` from ``index`` on,
    waiting for more until ``timeout``; then :class:`RemoteProtocolError` naming
    ``waiting_for`` (and how many bad records were skipped). Records that are not framed are
    skipped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            extra = f" ({skipped.count} bad records skipped)" if skipped.count else ""
            raise RemoteProtocolError(f"no {waiting_for} on stream {stream} within "
                                      f"{timeout:g}s{extra}")
        pulled = await client.pull(stream, index, limit=MAX_BATCH_RECORDS, timeout=min(left, 5))
        for i, rec in pulled.records:
            parsed = _parse(rec)
            if parsed is not None:
                yield (i, *parsed)
        index = pulled.next_index
