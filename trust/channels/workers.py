"""Secure-channel workers: thin asyncio adapters over the sans-IO handshake and record layer.

* :class:`SecureChannelListener` (a worker at a well-known address, ``api`` by default) starts a
  responder per incoming handshake with six fresh addresses, replaces the first onward hop of
  message 1 with the responder's ``decryptor_remote`` and forwards it there (wire spec §3.6).
  At most ``max_handshakes`` handshakes are in progress per listener (more are dropped and
  counted); a handshake that does not complete within ``handshake_timeout`` is abandoned.
* :func:`create_secure_channel` runs the initiator's side (``timeout`` for the whole handshake).
* Once open, each side has an *encryptor* worker (local messages addressed
  ``[encryptor, rest...]`` become Payload records sent to the peer's ``decryptor_remote`` with an
  empty return route) and a *decryptor* worker (records in; each Payload's inner message is
  delivered with the channel's ``encryptor`` pushed onto its return route, so replies re-enter
  the channel). The decryptor is a flow-control producer, delivering through the node's one
  delivery path (:meth:`~trust.node.Node.producer`): a decrypted message reaches only the
  consumers of the channel's flow (or of the listener's, for a responder), and a full consumer
  pauses the channel instead of dropping records.
* Close is sent when a channel is closed or its node stops, and honoured when received.
  RefreshCredentials re-authenticates the peer (:meth:`PeerAuthenticator.refresh`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trust.channels.authentication import PeerAuthenticator
from trust.channels.handshake import ChannelIdentity, HandshakeComplete, Initiator, Responder, SendMessage
from trust.channels.local_info import SecureChannelLocalInfo
from trust.channels.messages import (
    ChannelMessage,
    Close,
    IdentityAndCredentials,
    Payload,
    RefreshCredentials,
)
from trust.channels.peer import VerifiedPeer
from trust.channels.records import RecordSession
from trust.channels.trust_policies import Trust
from trust.errors import RemoteProtocolError, TrustError, UsageError
from trust.identities.identity import Identity
from trust.identities.known_histories import KnownHistories
from trust.logsafe import safe_text, warn_limited
from trust.models.credential import CredentialAndPurposeKey
from trust.node.errors import NodeStoppedError
from trust.node.flow_control import FLOW_CONTROL_LOCAL_INFO
from trust.node.mailbox import MailboxClosedError
from trust.node.worker import InlineWorker, Worker
from trust.routing import Address, HeadroomMessage, LocalInfo, LocalMessage, Route, RouteLike

if TYPE_CHECKING:
    from trust.node.context import Context
    from trust.node.node import Node

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_HANDSHAKES",
    "ChannelAddresses",
    "ChannelClosedError",
    "ChannelTimeoutError",
    "ListenerStats",
    "SecureChannel",
    "SecureChannelListener",
    "channel_identity",
    "create_secure_channel",
    "create_secure_channel_listener",
    "known_histories",
]

log = logging.getLogger("trust.channels")

DEFAULT_HANDSHAKE_TIMEOUT = 30.0
"""Seconds a handshake may take, on both sides."""
DEFAULT_MAX_HANDSHAKES = 1_000
"""Handshakes a listener has in progress at most; message 1 of more is dropped and counted."""

_EMPTY = Route(())
ENCRYPTOR_MAILBOX = 32
"""Messages a channel's encryptor holds while its next hop is full. Small on purpose: a
producer (a portal socket) then pauses early and resumes into the inline path, instead of
queueing megabytes that are encrypted later from a cold cache (measured: bulk through a
portal +8% against 128)."""
_TASKS: set[asyncio.Task[None]] = set()


class ChannelTimeoutError(TrustError, TimeoutError):
    """The handshake did not complete in time."""


class ChannelClosedError(TrustError):
    """The channel was closed (by this side, or by its peer: e.g. a responder that refused
    this side after message 3 closes the channel this side had just opened)."""


@dataclass(frozen=True, slots=True)
class ChannelAddresses:
    """The six addresses of one side of a channel (Ockam's ``addresses.rs``)."""

    decryptor_remote: Address
    decryptor_internal: Address
    decryptor_api: Address
    encryptor: Address
    encryptor_api: Address
    encryptor_internal: Address

    @classmethod
    def random(cls) -> ChannelAddresses:
        return cls(*(Address.random() for _ in range(6)))

    @property
    def decryptor(self) -> tuple[Address, Address, Address]:
        return (self.decryptor_remote, self.decryptor_internal, self.decryptor_api)

    @property
    def encryptors(self) -> tuple[Address, Address, Address]:
        return (self.encryptor, self.encryptor_api, self.encryptor_internal)


async def channel_identity(identity: ChannelIdentity | Identity, *, identities: Any = None,
                           credentials: Iterable[CredentialAndPurposeKey] = ()) -> ChannelIdentity:
    """The handshake identity of ``identity``: a :class:`ChannelIdentity` as it is (with
    ``credentials`` added), or a local identity (``NamedIdentity``, or an ``Identity`` that
    ``identities``, an :class:`~trust.identities.manager.IdentityManager`, holds) with its
    secure-channel static key from its vault (created and attested on first use)."""
    creds = tuple(credentials)
    if isinstance(identity, ChannelIdentity):
        if not creds:
            return identity
        p = identity.payload
        return ChannelIdentity(identity.static, IdentityAndCredentials.of(
            p.change_history_raw, p.purpose_key_attestation, creds))
    if not isinstance(identity, Identity):
        raise UsageError("identity must be a ChannelIdentity or a local Identity")
    if identities is None:
        raise UsageError("a local identity needs identities= (its IdentityManager) to find its "
                         "secure-channel key")
    from trust.channels.keys import VaultX25519Key

    name = getattr(identity, "name", None) or identity.identifier
    vault, handle, attestation = await identities.secure_channel_key(name)
    return ChannelIdentity(VaultX25519Key(vault, handle), IdentityAndCredentials.of(
        identity.export(), attestation, creds))


_HISTORIES: weakref.WeakKeyDictionary[Node, KnownHistories] = weakref.WeakKeyDictionary()


def known_histories(node: Node) -> KnownHistories:
    """The newest change history seen of each peer of ``node``'s channels (its channels'
    default authenticators share it: an older or conflicting history is refused)."""
    histories = _HISTORIES.get(node)
    if histories is None:
        histories = _HISTORIES[node] = KnownHistories()
    return histories


def _authenticator(node: Node, trust: Trust | None, authorities: Iterable[Identity],
                   require_credential: bool, authenticator: PeerAuthenticator | None
                   ) -> PeerAuthenticator:
    if authenticator is not None:
        return authenticator
    return PeerAuthenticator(trust, authorities=authorities, require_credential=require_credential,
                             histories=known_histories(node))


# -- one open channel ------------------------------------------------------------------------------
class SecureChannel:
    """One side of an open channel. ``route`` addresses the far side (``channel.route / "echo"``);
    ``peer`` is the verified peer (updated by credential refreshes); ``address`` is the channel's
    encryptor address (its name on this node)."""

    def __init__(self, node: Node, addresses: ChannelAddresses, session: RecordSession,
                 peer: VerifiedPeer, authenticator: PeerAuthenticator, identity: ChannelIdentity,
                 remote_route: Route, *, initiator: bool, spawner: str | None) -> None:
        self.node = node
        self.addresses = addresses
        self.session = session
        self.peer = peer
        self.authenticator = authenticator
        self.identity = identity
        self.remote_route = remote_route
        self.is_initiator = initiator
        self.flow_control_id = node.flow_controls.new_id()
        self.spawner = spawner
        self.closed = False
        self.created_at = int(time.time())
        self.bytes_sent = 0
        """Bytes of the records this side sent (ciphertext, as they go on the wire)."""
        self.bytes_received = 0
        self.records_received = 0
        """The records from the peer that decrypted (and their bytes)."""
        self._peer_remote = remote_route.addresses[-1]
        self._tracked_nonce = -1
        self._tracked_return: Route | None = None
        """The return route the remote route was last derived from."""
        self._encryptor_ctx: Context | None = None
        self._decryptor_ctx: Context | None = None
        self._produce: Any = None
        self._redeliver: Any = None
        self._opened: deque[tuple[LocalMessage, Any, Any]] = deque()
        """Records decrypted on arrival whose messages wait in the decryptor's mailbox (in
        its order): ``(record, message, full consumer or None)``; at most its capacity."""
        self._make_producer()

    @property
    def address(self) -> Address:
        return self.addresses.encryptor

    @property
    def route(self) -> Route:
        return Route([self.addresses.encryptor])

    def __repr__(self) -> str:
        return f"SecureChannel({self.address} ↔ {self.peer.identifier}, remote=[{self.remote_route}])"

    def _make_producer(self) -> None:
        info = (LocalInfo(FLOW_CONTROL_LOCAL_INFO, self.flow_control_id.encode()),
                SecureChannelLocalInfo(self.addresses.decryptor_api, self.peer))
        self._produce, self._redeliver = self.node.producer(
            self.flow_control_id, self.addresses.encryptor, spawner=self.spawner,
            local_info=info)

    async def _start(self, decryptor_ctx: Context) -> None:
        node = self.node
        node.flow_controls.add_producer(self.addresses.encryptor, self.flow_control_id,
                                        spawner=self.spawner)
        self._decryptor_ctx = decryptor_ctx
        self._encryptor_ctx = await node.start_worker(
            self.addresses.encryptors, _EncryptorWorker(self), producer_flow=self.flow_control_id,
            mailbox_size=ENCRYPTOR_MAILBOX)
        node.register_secure_channel(self)

    # -- sending ---------------------------------------------------------------------------------
    async def _send_record(self, record: bytes | bytearray, ret: Route = _EMPTY) -> None:
        ctx = self._encryptor_ctx
        assert ctx is not None
        self.bytes_sent += len(record)
        await ctx.forward(LocalMessage(self.remote_route, ret, bytes(record)))

    async def refresh_credentials(self, credentials: Iterable[CredentialAndPurposeKey],
                                  change_history: bytes | None = None) -> None:
        """Present new credentials (and, optionally, a newer change history) to the peer."""
        if self.closed:
            raise ChannelClosedError(f"the channel {self.address} is closed")
        history = change_history or self.identity.payload.change_history_raw
        record = self.session.encrypt(RefreshCredentials(history, tuple(credentials)))
        await self._send_record(record, Route([self.addresses.encryptor]))

    async def close(self) -> None:
        """Send Close to the peer and stop both workers (idempotent)."""
        await self._teardown(send_close=True)

    async def _teardown(self, *, send_close: bool) -> None:
        if self.closed:
            return
        self.closed = True
        node = self.node
        if send_close and self._encryptor_ctx is not None and not node.stopped:
            try:
                record = self.session.encrypt(Close())
                await asyncio.wait_for(self._send_record(record, Route([self.addresses.encryptor])), 2)
            except NodeStoppedError as e:  # the node is stopping and the link is gone already
                log.debug("channel %s could not send Close: %s", self.address, safe_text(e))
            except (TrustError, TimeoutError) as e:
                warn_limited(log, "close", "channel %s could not send Close: %s", self.address,
                             safe_text(e))
        try:  # (the workers go first: a channel not listed has no workers left)
            for addr in (self.addresses.encryptor, self.addresses.decryptor_remote):
                await _stop_quietly(node, addr)
        finally:
            node.unregister_secure_channel(self)
            node.flow_controls.remove_flow(self.flow_control_id)

    # -- receiving -------------------------------------------------------------------------------
    def _open(self, msg: LocalMessage) -> ChannelMessage | None:
        """The message in the record ``msg`` carries (``None``: rejected, counted and logged)."""
        session = self.session
        try:
            message = session.decrypt(msg.payload, view=True)
        except TrustError as e:
            self.node.stats.channel_records_rejected += 1
            warn_limited(log, "record", "channel %s dropped a record: %s", self.address,
                         safe_text(e))
            return None
        self.records_received += 1
        self.bytes_received += len(msg.payload)
        if type(message) is Payload and not self.is_initiator:
            n = session.decryptor.highest_nonce
            if n > self._tracked_nonce:
                self._tracked_nonce = n
                rr = msg.return_route
                if rr is not self._tracked_return:  # (a connection delivers the same Route)
                    self._tracked_return = rr
                    ret = rr.addresses
                    if ret[-1:] != (self._peer_remote,):
                        ret = (*ret, self._peer_remote)
                    if ret != self.remote_route.addresses:
                        self.remote_route = Route(ret)
        return message

    def _record_now(self, msg: LocalMessage) -> bool:
        """A record, handled inside its delivery (the decryptor's ``handle_now``): ``True`` when
        done; ``False`` when the decrypted message must wait (its consumer is full) or needs
        the decryptor's task (Close, RefreshCredentials): it is kept, and :meth:`_on_record`
        finishes it when ``msg`` comes out of the mailbox (the record is decrypted once)."""
        message = self._open(msg)
        if message is None:
            return True
        if type(message) is Payload:
            if not message.onward_route.addresses:
                return True
            inner = LocalMessage(message.onward_route, message.return_route, message.payload)
            full = self._produce(inner)
            if full is None:
                return True
            self._keep(msg, inner, full)
            return False
        self._keep(msg, message, None)
        return False

    def _record_queued(self, msg: LocalMessage) -> LocalMessage | None:
        """A record about to wait in the decryptor's mailbox (the decryptor's
        ``before_queue``): decrypted now, in arrival order, so the mailbox holds no copy of
        the record (it may be a view of the connection's read); ``None`` when it is rejected
        or carries nothing to deliver."""
        message = self._open(msg)
        if message is None:
            return None
        if type(message) is Payload and not message.onward_route.addresses:
            return None
        self._keep(msg, message, None)
        return msg

    def _keep(self, msg: LocalMessage, message: Any, full: Any) -> None:
        """Keep the decrypted ``message`` of record ``msg`` for :meth:`_on_record`; the record's
        bytes are not needed again (so the node does not copy them when it queues ``msg``)."""
        self._opened.append((msg, message, full))
        msg.payload = b""

    async def _on_record(self, msg: LocalMessage) -> None:
        opened = self._opened
        if opened and opened[0][0] is msg:
            _, message, full = opened.popleft()
            if full is not None:
                await self._deliver_waiting(message, full)
                return
        else:
            message = self._open(msg)
            if message is None:
                return
        if type(message) is Payload:
            if not message.onward_route.addresses:
                return
            inner = LocalMessage(message.onward_route, message.return_route, message.payload)
            full = self._produce(inner)
            if full is not None:  # (usually delivered at once: no wait, no coroutine)
                await self._deliver_waiting(inner, full)
        elif isinstance(message, Close):
            await self._teardown(send_close=False)
        elif isinstance(message, RefreshCredentials):
            try:
                self.peer = self.authenticator.refresh(self.peer, message)
            except TrustError as e:
                warn_limited(log, "refresh", "channel %s: the peer's credential refresh failed, "
                             "closing: %s", self.address, safe_text(e))
                await self._teardown(send_close=True)
                return
            self._make_producer()

    async def _deliver_waiting(self, inner: LocalMessage, full: Any) -> None:
        """Deliver ``inner`` (produced once already: ``full`` is its full consumer, or
        ``None`` when it was delivered), waiting for space: channel traffic is never dropped."""
        while full is not None:
            try:
                await full.wait_space()
            except MailboxClosedError:
                return
            full = self._redeliver(inner)


class _EncryptorWorker(InlineWorker):
    """Encrypts inside the sender's delivery (no task switch) while the next hop takes the
    record at once; when it is full (or must be connected first), the record already made is
    kept and the worker's task sends it, waiting (its message stays first in the mailbox, so
    order is kept). A message that must wait behind others is encrypted as it arrives all
    the same (:meth:`before_queue`)."""

    takes_views = True  # (a payload is only read, encrypted at once: a portal inlet's read
    takes_transient_views = True  # reaches it without a copy, and is encrypted in place)

    def __init__(self, channel: SecureChannel) -> None:
        self.channel = channel
        self._sealed: deque[tuple[LocalMessage, LocalMessage]] = deque()
        """Records made of messages that wait in the mailbox (in its order): a message that
        cannot be sent at once, or that arrives behind others, is encrypted as it arrives
        (nonces follow arrival order), so the mailbox holds no copy of its payload."""
        self._route_in: Route | None = None
        self._route_out: Route = _EMPTY
        """The last onward route and the same without this encryptor: a conversation sends
        the same Route object each time, and the session recognises its routes by identity."""

    def _seal(self, msg: LocalMessage, now: bool = False) -> LocalMessage | None:
        ch = self.channel
        route = msg.onward_route
        if route is self._route_in:
            onward = self._route_out
        elif route.addresses[0] != ch.addresses.encryptor:
            return None
        else:
            onward = self._route_out = route.pop_front()
            self._route_in = route
        if ch.closed:
            return None
        payload: Any = msg.payload
        record: Any = None
        if now and type(msg) is HeadroomMessage and type(payload) is memoryview and \
                not payload.readonly:  # (still the sender's buffer: the plaintext is built there)
            record = ch.session.encrypt_payload_at(onward, msg.return_route, msg.buffer,
                                                   msg.start, len(payload), msg.headroom)
        if record is None:
            record = ch.session.encrypt_payload(onward, msg.return_route, payload)
        ch.bytes_sent += len(record)
        return LocalMessage(ch.remote_route, _EMPTY, record)

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        out = self._seal(msg, True)
        if out is None or ctx.forward_nowait(out):
            return True
        self._keep(msg, out)
        return False

    def before_queue(self, ctx: Context, msg: LocalMessage) -> LocalMessage | None:
        out = self._seal(msg, True)
        if out is None:
            return None
        self._keep(msg, out)
        return msg

    def _keep(self, msg: LocalMessage, out: LocalMessage) -> None:
        """Keep the record ``out`` made of ``msg`` for :meth:`handle_message`; ``msg``'s
        payload is not needed again (so the node does not copy it when it queues ``msg``)."""
        self._sealed.append((msg, out))
        msg.payload = b""

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        sealed = self._sealed
        if sealed and sealed[0][0] is msg:
            out: LocalMessage | None = sealed.popleft()[1]
        else:
            out = self._seal(msg)
        if out is not None and not ctx.forward_nowait(out):  # (no coroutine unless it waits)
            await ctx.forward(out)

    async def shutdown(self, ctx: Context) -> None:
        await self.channel._teardown(send_close=True)


# -- the decryptor: handshake first, then records ----------------------------------------------------
class _DecryptorWorker(InlineWorker):
    """The handshake runs in the worker's task; once the channel is open, records are
    decrypted and delivered inside their delivery (:meth:`SecureChannel._record_now`), and
    in the task only when the consumer is full or the message needs waiting for. A record
    that must wait behind others is decrypted as it arrives all the same
    (:meth:`before_queue`): the mailbox holds messages, never copies of records."""

    takes_views = True  # (a record is only read; a handshake message is copied first):
    takes_transient_views = True  # decrypted at once, in handle_now or before_queue

    def __init__(self, node: Node, addresses: ChannelAddresses, machine: Initiator | Responder,
                 identity: ChannelIdentity, authenticator: PeerAuthenticator, *,
                 spawner: str | None = None, listener: SecureChannelListener | None = None
                 ) -> None:
        self.node = node
        self.addresses = addresses
        self.machine = machine
        self.identity = identity
        self.authenticator = authenticator
        self.spawner = spawner
        self.listener = listener
        self.done: asyncio.Future[SecureChannel] = asyncio.get_running_loop().create_future()
        self.channel: SecureChannel | None = None
        self._timer: asyncio.TimerHandle | None = None

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        ch = self.channel
        if ch is None:
            return False
        if msg.onward_route.addresses[0] != self.addresses.decryptor_remote:
            return True
        return ch._record_now(msg)

    def before_queue(self, ctx: Context, msg: LocalMessage) -> LocalMessage | None:
        ch = self.channel
        if ch is None:  # (a handshake message: the task reads it)
            return msg
        if msg.onward_route.addresses[0] != self.addresses.decryptor_remote:
            return None
        return ch._record_queued(msg)

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        if msg.onward_route.addresses[0] != self.addresses.decryptor_remote:
            return
        ch = self.channel
        if ch is not None:
            await ch._on_record(msg)
            return
        if self.done.done():
            return
        if not msg.return_route.addresses:
            self._fail(RemoteProtocolError("a handshake message came without a return route"))
            await ctx.stop()
            return
        try:
            events = self.machine.receive(bytes(msg.payload))
        except TrustError as e:
            self._fail(e)
            refusal = getattr(self.machine, "refusal", None)
            if refusal is not None:  # the initiator holds an open channel: close it
                await self._send_refusal(ctx, msg.return_route, refusal)
            await ctx.stop()
            return
        for ev in events:
            if isinstance(ev, SendMessage):
                await ctx.send(msg.return_route, ev.data)
            elif isinstance(ev, HandshakeComplete):
                await self._complete(ctx, ev, msg.return_route)

    async def _send_refusal(self, ctx: Context, route: Route, record: bytes) -> None:
        """Send the refused initiator its Close record, along message 3's return route (where
        its records would have gone); never waits long, never raises."""
        try:
            await asyncio.wait_for(ctx.forward(LocalMessage(route, _EMPTY, record)), 2)
        except (TrustError, TimeoutError) as e:
            warn_limited(log, "refusal", "listener %s: could not tell a refused initiator: %s",
                         self.listener.address if self.listener else "-", safe_text(e))
        else:
            if self.listener is not None:
                self.listener.stats.refusals_sent += 1

    async def _complete(self, ctx: Context, ev: HandshakeComplete, remote_route: Route) -> None:
        ch = SecureChannel(self.node, self.addresses, RecordSession(ev.keys), ev.peer,
                           self.authenticator, self.identity, remote_route,
                           initiator=isinstance(self.machine, Initiator), spawner=self.spawner)
        self.channel = ch
        await ch._start(ctx)
        self._settle()
        if not self.done.done():
            self.done.set_result(ch)

    def _fail(self, e: BaseException, *, count: bool = True) -> None:
        self._settle()
        if self.listener is not None and count:
            self.listener.stats.failed_handshakes += 1
            warn_limited(log, "handshake", "listener %s: a handshake failed: %s",
                         self.listener.address, safe_text(e))
        if not self.done.done():
            self.done.set_exception(e)
            self.done.exception()  # (retrieved: a responder's failure has no awaiter)

    def _settle(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.listener is not None and self in self.listener._pending:
            self.listener._pending.discard(self)

    def start_timer(self, ctx: Context, timeout: float) -> None:
        def expire() -> None:
            self._timer = None
            if self.channel is None:
                if self.listener is not None:
                    self.listener.stats.timed_out += 1
                self._fail(ChannelTimeoutError(f"the handshake did not complete within {timeout:g}s"),
                           count=False)  # (counted as timed out, not as failed)
                task = asyncio.get_running_loop().create_task(
                    _stop_quietly(self.node, self.addresses.decryptor_remote))
                _TASKS.add(task)
                task.add_done_callback(_TASKS.discard)

        self._timer = asyncio.get_running_loop().call_later(timeout, expire)

    async def shutdown(self, ctx: Context) -> None:
        if self.channel is None:
            self._fail(NodeStoppedError("the handshake was abandoned"), count=False)
        else:
            await self.channel._teardown(send_close=True)


async def _stop_quietly(node: Node, address: Address) -> None:
    if node.has_address(address):
        try:
            await node.stop_worker(address)
        except TrustError:
            pass


# -- initiator -------------------------------------------------------------------------------------
async def create_secure_channel(node: Node, identity: ChannelIdentity, route: RouteLike, *,
                                trust: Trust | None = None, authorities: Iterable[Identity] = (),
                                require_credential: bool = False,
                                authenticator: PeerAuthenticator | None = None,
                                timeout: float = DEFAULT_HANDSHAKE_TIMEOUT) -> SecureChannel:
    """Open a channel to the listener at the end of ``route`` (see :meth:`Node.create_secure_channel`)."""
    auth = _authenticator(node, trust, authorities, require_credential, authenticator)
    addrs = ChannelAddresses.random()
    worker = _DecryptorWorker(node, addrs, Initiator(identity, auth), identity, auth)
    ctx = await node.start_worker(addrs.decryptor, worker)
    try:
        async with asyncio.timeout(timeout):
            await ctx.send(Route.of(route), worker.machine.start())  # type: ignore[union-attr]
            return await asyncio.shield(worker.done)
    except TimeoutError:
        raise ChannelTimeoutError(f"no secure channel to {Route.of(route)} within {timeout:g}s") \
            from None
    except BaseException:
        if worker.channel is not None:
            await worker.channel._teardown(send_close=True)
        raise
    finally:
        if worker.channel is None:
            if not worker.done.done():
                worker.done.cancel()
            await _stop_quietly(node, addrs.decryptor_remote)


# -- listener --------------------------------------------------------------------------------------
@dataclass(slots=True)
class ListenerStats:
    handshakes: int = 0
    """Handshakes started."""
    dropped_over_limit: int = 0
    """Message 1s dropped because ``max_handshakes`` were in progress."""
    failed_handshakes: int = 0
    """Handshakes that failed (message 1 or 3 malformed, changed or replayed; the initiator
    refused by authentication or trust)."""
    timed_out: int = 0
    """Handshakes abandoned after ``handshake_timeout`` (e.g. the initiator refused us)."""
    refusals_sent: int = 0
    """Close records sent to initiators refused after message 3 (their channel closes)."""


@dataclass(eq=False)
class SecureChannelListener(Worker):
    """Accepts channels at ``address`` (see :meth:`Node.create_secure_channel_listener`)."""

    node: Node
    address: Address
    identity: ChannelIdentity
    authenticator: PeerAuthenticator
    flow_control_id: str
    max_handshakes: int = DEFAULT_MAX_HANDSHAKES
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    stats: ListenerStats = field(default_factory=ListenerStats)
    _pending: set[_DecryptorWorker] = field(default_factory=set)

    @property
    def in_progress(self) -> int:
        return len(self._pending)

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        if len(self._pending) >= self.max_handshakes:
            self.stats.dropped_over_limit += 1
            warn_limited(log, "handshakes", "listener %s: %d handshakes in progress, one more "
                         "dropped", self.address, self.max_handshakes)
            return
        node = self.node
        addrs = ChannelAddresses.random()
        worker = _DecryptorWorker(node, addrs, Responder(self.identity, self.authenticator),
                                  self.identity, self.authenticator,
                                  spawner=self.flow_control_id, listener=self)
        dctx = await node.start_worker(addrs.decryptor, worker)
        self._pending.add(worker)
        self.stats.handshakes += 1
        worker.start_timer(dctx, self.handshake_timeout)
        flow = msg.find_local_info(FLOW_CONTROL_LOCAL_INFO) if msg.local_info else None
        if flow is not None:  # the records will come the way message 1 came
            node.flow_controls.add_consumer(addrs.decryptor_remote, flow.decode("utf-8", "replace"))
        await ctx.forward(msg.replace_front_onward(addrs.decryptor_remote))

    def accepted_channels(self) -> list[SecureChannel]:
        """The open channels this listener accepted."""
        return [c for c in self.node.secure_channels() if c.spawner == self.flow_control_id]

    async def shutdown(self, ctx: Context) -> None:
        """Stopping the listener closes the channels it accepted (Close is sent to each peer)
        and abandons its handshakes in progress."""
        node = self.node
        node.unregister_secure_channel_listener(self)
        await asyncio.gather(*(c.close() for c in self.accepted_channels()))  # (each waits 2 s at most)
        for pending in list(self._pending):
            await _stop_quietly(node, pending.addresses.decryptor_remote)
        node.flow_controls.remove_flow(self.flow_control_id)

    def __repr__(self) -> str:
        return f"SecureChannelListener({self.address})"


async def create_secure_channel_listener(
        node: Node, identity: ChannelIdentity, address: Address | str = "api", *,
        trust: Trust | None = None, authorities: Iterable[Identity] = (),
        require_credential: bool = False, authenticator: PeerAuthenticator | None = None,
        consumers: Iterable[Address | str] | None = None,
        max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT) -> SecureChannelListener:
    """Start a listener (see :meth:`Node.create_secure_channel_listener`)."""
    if max_handshakes < 1 or handshake_timeout <= 0:
        raise UsageError("max_handshakes and handshake_timeout must be positive")
    auth = _authenticator(node, trust, authorities, require_credential, authenticator)
    addr = Address.parse(address)
    flow = node.flow_controls.new_id()
    listener = SecureChannelListener(node, addr, identity, auth, flow, max_handshakes,
                                     handshake_timeout)
    await node.start_worker(addr, listener)
    # The listener itself consumes its channels' traffic: a channel inside one of its channels
    # (a second handshake to the same listener, through the first channel) reaches it.
    for c in {*(node.listener_consumers if consumers is None else consumers), addr}:
        node.flow_controls.add_consumer(c, flow)
    node.register_secure_channel_listener(listener)
    return listener
