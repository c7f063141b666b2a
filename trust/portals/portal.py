"""TCP portals: an inlet turns the TCP connections it accepts into routed messages, an outlet
turns them back into TCP connections to its target (Ockam's inlet/outlet, wire spec §6).

Flow, per TCP connection (as Ockam's):

1. the inlet accepts a client and sends **Ping** from the connection's portal address to the
   outlet's route (e.g. ``[channel encryptor, "outlet"]``); it does not read the client yet;
2. the outlet (a worker, by default at ``outlet``) checks its policy, connects to its target,
   and answers **Pong** from the new connection's portal address;
3. the inlet checks *its* policy on the Pong, records the Pong's return route as the remote
   route and starts reading the client;
4. each read (at most 48 KiB, into a reused buffer) becomes one **Payload**; the other side
   writes the bytes to its socket;
5. EOF on a socket sends **Disconnect**. Between two truststack portals a Disconnect is a
   *half-close*: the receiver shuts down the writing side of its socket once what is buffered
   is written, and keeps reading the other way until that side ends too (then both sockets are
   closed). Each side says that it half-closes with a :data:`HELLO` (an empty Payload, which
   Ockam's portals write as nothing) right after the Pong. With a peer that sent none (Ockam's,
   for which Disconnect ends the whole connection and is never answered), a Disconnect
   received closes the socket at once (after what is buffered), and one sent is followed by
   closing the socket :data:`HALF_CLOSE_WAIT` later (unless a HELLO arrives meanwhile). A reset
   or error on a socket closes both ends at once.

**Back-pressure, both ways, with no unbounded buffer.** A portal connection is an
:class:`~trust.node.node.Endpoint`: when its socket's write buffer is over
:data:`WRITE_HIGH` it refuses messages, and the producer that delivers them (the secure
channel, a TCP connection) pauses until it drains. Its own reads pause when the next hop (the
channel's encryptor, a full TCP connection) is full (the stream-connection base,
:mod:`trust.transports.stream`). So a slow server slows its client, and a **stalled server
pauses every portal connection that shares its channel** (the channel delivers in order and
never drops a record): give connections that must not wait on each other separate channels
(inlets).

**Policies.** Each side decides with its ``authorize`` function (``(allowed, reason)`` for the
first message from the other side: the outlet on the Ping, the inlet on the Pong), built by
:func:`trust.portals.policy.resource_authorizer` from the node's policies. A deny closes the
TCP connection at once (the outlet answers Disconnect, so the inlet closes its client) and
logs the reason. Later messages must come from the same peer (the same channel identity):
others are dropped and counted.

**Liveness** (a truststack extension that Ockam's portals ignore harmlessly). An inlet sends a
:data:`~trust.portals.messages.KEEPALIVE` (an empty Payload, written as nothing) on a
connection that has sent nothing for :data:`KEEPALIVE_INTERVAL`. An outlet that has seen one
on a connection closes it (and its target connection) once it hears nothing from the inlet for
:data:`SILENCE_TIMEOUT`, not counting time when it refused messages itself (its target did not
read): so a target connection does not outlive an inlet node that died behind a relay, where
no TCP connection of the outlet's node breaks. Inlets that send no keepalives (Ockam's) are
never timed out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final

from trust.channels.local_info import SecureChannelLocalInfo, channel_info
from trust.errors import DecodeError, TrustError, UsageError
from trust.logsafe import safe_text, warn_limited
from trust.node.worker import Worker
from trust.portals.messages import (
    DISCONNECT,
    HELLO,
    KEEPALIVE,
    MAX_PAYLOAD_SIZE,
    PING,
    PONG,
    PacketCounter,
    payload_span,
)
from trust.routing import Address, HeadroomMessage, LocalMessage, Route
from trust.routing.bare import encode_uvarint
from trust.transports.stream import (
    WRITE_BUFFER_HIGH,
    WRITE_BUFFER_LOW,
    ReadBuffer,
    StreamConnection,
    host_port,
)
from trust.transports.tcp import split_host_port

if TYPE_CHECKING:
    from trust.node.context import Context
    from trust.node.node import Node

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "HALF_CLOSE_WAIT",
    "KEEPALIVE_INTERVAL",
    "PONG_TIMEOUT",
    "SILENCE_TIMEOUT",
    "WRITE_HIGH",
    "WRITE_LOW",
    "Authorize",
    "PortalConnection",
    "PortalStats",
    "TcpInlet",
    "TcpOutlet",
    "allow_all",
    "create_inlet",
    "create_outlet",
]

log = logging.getLogger("trust.portals")

WRITE_HIGH: Final = WRITE_BUFFER_HIGH
"""Bytes a portal socket's write buffer holds before the portal stops taking messages (1 MiB,
as a TCP connection's: a batched write of up to :data:`~trust.transports.stream.WRITE_BATCH_MAX`
never pauses the portal on its own, which sends the channel's records through its decryptor's
mailbox; measured A/B against 256 KiB: bulk a few % faster, within the noise, and 0-7% less CPU
per GB)."""
WRITE_LOW: Final = WRITE_BUFFER_LOW
CONNECT_TIMEOUT: Final = 10.0
"""Seconds an outlet may take to connect to its target."""
PONG_TIMEOUT: Final = 20.0
"""Seconds an inlet waits for the outlet's Pong before it closes the client's connection."""
KEEPALIVE_INTERVAL: Final = 10.0
"""Seconds an inlet's connection may send nothing before it sends a keepalive."""
HALF_CLOSE_WAIT: Final = 5.0
"""Seconds a connection that sent Disconnect (its socket's EOF) stays half-open while its peer
has not said it half-closes (its :data:`HELLO`): an Ockam portal ends the whole connection on
Disconnect and never answers, so the socket is then closed (the HELLO of a truststack peer
follows its Pong at once; this only covers an EOF read before it arrived)."""
SILENCE_TIMEOUT: Final = 90.0
"""Seconds an outlet's connection whose inlet sends keepalives may hear nothing from it before
the outlet closes it. Longer than a node's ``stall_timeout`` (60 s) with a margin: a channel
paused that long by another connection's stalled server has its TCP connection closed first."""
DEFAULT_MAX_CONNECTIONS: Final = 1000
"""Connections one inlet or outlet has open at most (more are closed at once)."""
_HEAD: Final = 4  # 03 + uvarint(<= 49152): the Payload header is written in front of a read
_ROOM: Final = 256
"""Bytes kept free in front of that header: a secure channel's encryptor writes its own header
there and encrypts the read where it is (see :class:`~trust.routing.HeadroomMessage`)."""
_START: Final = _ROOM + _HEAD
"""Where a read's bytes start in the read buffer."""
_ROOM_FROM: Final = 16 * 1024
"""Reads at least this large go out as a HeadroomMessage; smaller ones as plain messages."""
_READ_SIZE: Final = 2 * MAX_PAYLOAD_SIZE
"""One read takes up to two messages' worth (fewer reads and loop turns for bulk data)."""
_BATCH_FROM: Final = 4096
"""Payloads at least this large are written to the socket together at the end of the turn."""


def _payload_head(buf: bytearray, end: int, n: int) -> int:
    """Write a Payload's header (``03``, then ``n`` as a shortest uvarint: ``n`` is at most
    :data:`MAX_PAYLOAD_SIZE`) into ``buf`` to end at ``end``; return where it starts."""
    if n < 0x80:
        buf[end - 2] = 3
        buf[end - 1] = n
        return end - 2
    if n < 0x4000:
        buf[end - 3] = 3
        buf[end - 2] = (n & 0x7F) | 0x80
        buf[end - 1] = n >> 7
        return end - 3
    buf[end - 4] = 3
    buf[end - 3] = (n & 0x7F) | 0x80
    buf[end - 2] = ((n >> 7) & 0x7F) | 0x80
    buf[end - 1] = n >> 14
    return end - 4


Authorize = Callable[[LocalMessage], tuple[bool, str]]
"""Decides on the first message from the other side: ``(allowed, reason)``."""


def allow_all(msg: LocalMessage) -> tuple[bool, str]:
    """An ``authorize`` that allows every peer (in-process use, tests)."""
    return True, "allowed: no policy"


@dataclass(slots=True)
class PortalStats:
    """Counters of one inlet or outlet."""

    connections: int = 0
    """Connections opened (accepted by an inlet, made by an outlet)."""
    active: int = 0
    bytes_in: int = 0
    """Bytes read from this side's sockets and sent through the portal."""
    bytes_out: int = 0
    """Bytes that came through the portal and were written to this side's sockets."""
    denied: int = 0
    """Connections closed because the policy denied the peer."""
    failed: int = 0
    """Connections that could not be set up (outlet unreachable, target refused, timeout)."""
    dropped: int = 0
    """Messages dropped: from another peer than the connection's, or malformed."""
    keepalives: int = 0
    """Keepalives sent (inlet) or received (outlet)."""
    silent_closed: int = 0
    """(Outlet) connections closed because their inlet, which sends keepalives, went silent."""

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Portal:
    """What inlets and outlets share: the node, a name, policy, stats, open connections."""

    kind = "portal"
    silence_timeout: float | None = None
    """(An outlet's) see :class:`TcpOutlet`."""
    recheck: Callable[[LocalMessage], str | None] | None = None
    """(An outlet's) asked again about the Ping once the target is connected (that may take
    ``connect_timeout``; the node's revocation list may change meanwhile): a reason refuses the
    connection as a deny does, ``None`` lets it through."""

    def __init__(self, node: Node, name: str, authorize: Authorize | None,
                 max_connections: int) -> None:
        if max_connections < 1:
            raise UsageError("max_connections must be positive")
        self.node = node
        self.name = name
        self.authorize: Authorize = authorize or allow_all
        self.max_connections = max_connections
        self.stats = PortalStats()
        self.connections: set[PortalConnection] = set()
        self.lingering = 0
        """Closed inlet connections still registered to answer a late Pong."""
        self.stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def opened(self, conn: PortalConnection) -> bool:
        if self.stopping or len(self.connections) >= self.max_connections:
            if not self.stopping:
                warn_limited(log, f"portal_full:{self.name}", "%s %s: %d connections are open "
                             "(its maximum); one more closed", self.kind, self.name,
                             len(self.connections))
                self.stats.failed += 1
            return False
        self.connections.add(conn)
        self.stats.connections += 1
        self.stats.active += 1
        return True

    def closed(self, conn: PortalConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.stats.active -= 1

    def deny(self, conn: PortalConnection, reason: str) -> None:
        self.stats.denied += 1
        warn_limited(log, f"portal_denied:{self.name}", "%s %s: connection %s closed: the peer "
                     "is denied: %s", self.kind, self.name, safe_text(conn.peer),
                     safe_text(reason, 400))

    def _watch(self, period: float) -> None:
        """Every ``period`` seconds, :meth:`PortalConnection.tick` each connection (until the
        portal stops)."""
        async def watch() -> None:
            while not self.stopping:
                await asyncio.sleep(period)
                for conn in list(self.connections):
                    conn.tick(period)

        self._spawn(watch())

    async def _stop_connections(self) -> None:
        self.stopping = True
        for t in list(self._tasks):
            t.cancel()
        conns = list(self.connections)
        for c in conns:
            c.disconnect_and_abort()
        for c in conns:
            try:
                async with asyncio.timeout(2):
                    await c.wait_closed()
            except TimeoutError:
                pass
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, **self.stats.as_dict()}


class PortalConnection(StreamConnection, asyncio.BufferedProtocol):
    """One TCP connection of a portal (the client's at an inlet, the target's at an outlet),
    registered on the node as an endpoint at :attr:`address` (Ockam's ``sender_remote``)."""

    takes_views = True  # (a payload is only parsed and written to the socket)

    def __init__(self, portal: _Portal, *, inlet: bool) -> None:
        StreamConnection.__init__(self)
        node = portal.node
        self.portal = portal
        self.node = node
        self.inlet = inlet
        self.address = Address.random()
        self._ret = Route.from_tuple((self.address,))
        self.remote_route: Route | None = None
        self._send = node.endpoint_sender(self.address)
        self._buf = ReadBuffer(_READ_SIZE, head=_START, tail=1)
        self._held: LocalMessage | None = None
        self._early = b""
        """Bytes read before the exchange was done (an event loop may read once before it
        honours the pause), sent first."""
        self._backlog: list[LocalMessage] = []
        """Messages to send after the held one (bounded: the early bytes, a Disconnect)."""
        self.ready = False
        """The Ping/Pong exchange is done: data flows."""
        self._peer_info: Any = None
        self._peer_id: str | None = None
        self._counter = PacketCounter()
        self.local_eof = False
        self.remote_eof = False
        self._disconnect_sent = False
        self._registered = False
        self._pong_timer: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._ping_sent = False
        self.peer = "?"
        self.bytes_in = 0
        self.bytes_out = 0
        self.keepalives = 0
        """Keepalives received (outlet)."""
        self.peer_half_closes = False
        """The peer sent its :data:`HELLO`: a truststack portal, whose Disconnect is a
        half-close and which answers ours with its own (else: Ockam's semantics)."""
        self._eof_timer: asyncio.TimerHandle | None = None
        self._mark = 0
        self._silent = 0.0

    def __repr__(self) -> str:
        return f"PortalConnection({self.portal.kind} {self.portal.name}, {self.peer})"

    # -- asyncio ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = self.attach(transport, high=WRITE_HIGH, low=WRITE_LOW)
        t.pause_reading()  # until Ping/Pong are exchanged
        peer = t.get_extra_info("peername")
        self.peer = host_port(peer) if peer else "?"
        if not self.portal.opened(self):
            self.closing = True
            t.abort()
            return
        self.node.register_endpoint(self.address, self)
        self._registered = True
        if self.inlet:
            self.portal._spawn(self._ping())

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
        if self._eof_timer is not None:
            self._eof_timer.cancel()
            self._eof_timer = None
        self.closing = True
        if self.ready:
            self._send_disconnect()
        if self._registered:
            portal = self.portal
            if (self.inlet and not self.ready and self._ping_sent
                    and portal.lingering < portal.max_connections):
                # the Ping went out: stay registered a while (at most as many as may be open)
                # to answer a late Pong with Disconnect, so the outlet closes the connection it
                # made for this one
                portal.lingering += 1
                self._linger = asyncio.get_running_loop().call_later(
                    2 * getattr(portal, "pong_timeout", PONG_TIMEOUT), self._unregister)
            else:
                self._unregister()
        self._buf.release()
        self.portal.closed(self)
        self.detach()

    def _unregister(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
            self.portal.lingering -= 1
        if self._registered:
            self._registered = False
            self.node.unregister_endpoint(self.address)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buf.get()

    def buffer_updated(self, nbytes: int) -> None:
        if self.closing or not nbytes:
            return
        rbuf = self._buf
        buf = rbuf.buffer
        if not self.ready or self._early:
            self._early += bytes(buf[_START:_START + nbytes])
            if self._transport is not None:
                self._transport.pause_reading()
            if len(self._early) > 4 * MAX_PAYLOAD_SIZE:  # (a loop that ignores pausing)
                self._protocol_error("the client sent too much before the portal was ready")
            return
        # The Payload header goes right in front of the bytes read, and the message's payload
        # is a writable view of the read buffer, with room around it (a HeadroomMessage):
        # valid only during its delivery (a channel's encryptor encrypts it where it is; the
        # node copies it for anyone else, or to queue it).
        total = nbytes
        nbytes = min(total, MAX_PAYLOAD_SIZE)
        self.bytes_in += total
        self.portal.stats.bytes_in += total
        view = rbuf.view
        route: Any = self.remote_route
        end = _START + nbytes
        start = _payload_head(buf, _START, nbytes)
        if nbytes < _ROOM_FROM:  # (a small read: a plain message, cheap to copy)
            self._emit(LocalMessage(route, self._ret, view[start:end]))  # type: ignore[arg-type]
            return
        self._emit(HeadroomMessage(route, self._ret, view, start, end, start))
        if total > nbytes:  # the second message of the read (after the first, in order)
            rest = total - nbytes
            # its header over the first's last bytes: those were read (or copied) by now
            start = _payload_head(buf, end, rest)
            if self._held is None and not self._backlog and not self.closing:
                self._emit(HeadroomMessage(route, self._ret, view, start, end + rest, start))
            else:  # (held back behind others: a copy)
                self._queue(LocalMessage(route, self._ret, bytes(view[start:end + rest])))

    def eof_received(self) -> bool:
        self.local_eof = True
        if not self.ready:
            return False
        self._send_disconnect()
        if self.remote_eof:
            return False
        if not self.peer_half_closes:  # (an Ockam peer ends the connection: see _peer_gone)
            self._eof_timer = asyncio.get_running_loop().call_later(HALF_CLOSE_WAIT,
                                                                    self._peer_gone)
        return True  # keep the socket open for the other direction

    def _peer_gone(self) -> None:
        """:data:`HALF_CLOSE_WAIT` after this side's Disconnect, with no HELLO from the peer:
        it ended the whole connection (Ockam's semantics): close the socket."""
        self._eof_timer = None
        if not self.peer_half_closes and not self.closing:
            log.debug("%s %s: connection %s closed: the peer does not half-close",
                      self.portal.kind, self.portal.name, safe_text(self.peer))
            self.close()

    def wants_reading(self) -> bool:
        return self.ready and not self.local_eof

    # -- sending into the portal -----------------------------------------------------------------
    def _emit(self, msg: LocalMessage) -> None:
        try:
            full = self._send(msg)
        except TrustError as e:
            warn_limited(log, f"portal_route:{self.portal.name}", "%s %s: connection %s closed: "
                         "the portal's route is gone: %s", self.portal.kind, self.portal.name,
                         safe_text(self.peer), safe_text(e))
            self._report(f"the portal's route is gone: {e}")
            self._disconnect_sent = True
            self.abort()
            return
        if full is not None:
            if type(msg.payload) is memoryview:
                msg.payload = bytes(msg.payload)
            self._held = msg
            self.block_on(full)

    def unblocked(self) -> None:
        msg, self._held = self._held, None
        if msg is not None:
            self._emit(msg)
        backlog = self._backlog
        while backlog and self._held is None and not self.closing:
            self._emit(backlog.pop(0))

    def _queue(self, msg: LocalMessage) -> None:
        """Send ``msg`` after what is held back, in order."""
        if self._held is None and not self._backlog:
            self._emit(msg)
        else:
            self._backlog.append(msg)

    def _send_disconnect(self) -> None:
        if self._disconnect_sent or self.remote_route is None:
            return
        self._disconnect_sent = True
        msg = LocalMessage(self.remote_route, self._ret, DISCONNECT)
        if self._held is not None or self._backlog:
            if self._transport is not None and not self.closing:
                self._backlog.append(msg)
                return
            self._post_after_held(msg)
            return
        self._post(msg)

    def _post_after_held(self, msg: LocalMessage) -> None:
        """The socket is gone with messages still held back: send them and ``msg`` in order,
        in a task that waits for space."""
        pending = [m for m in (self._held, *self._backlog) if m is not None] + [msg]
        self._held = None
        self._backlog = []

        async def drain() -> None:
            for m in pending:
                full = self._send(m)
                while full is not None:
                    await full.wait_space()
                    full = self._send(m)

        self.portal._spawn(self._quietly(drain()))

    @staticmethod
    async def _quietly(coro: Awaitable[None]) -> None:
        try:
            await coro
        except Exception as e:  # (the route went away meanwhile: nothing more to tell)
            log.debug("a portal message could not be sent: %s", safe_text(e))

    def _post(self, msg: LocalMessage) -> None:
        """Send a control message; if the next hop is full, in a task that waits for space."""
        try:
            full = self._send(msg)
        except TrustError:
            return
        if full is not None:
            self.portal._spawn(self._post_later(msg, full))

    async def _post_later(self, msg: LocalMessage, full: Any) -> None:
        # (until sent: other connections may take the space first; one task per connection
        # at most, cancelled when the portal stops)
        while full is not None:
            try:
                await full.wait_space()
                full = self._send(msg)
            except Exception:
                return

    def disconnect_and_abort(self) -> None:
        """Tell the other side (if the exchange is done) and close the socket at once."""
        if self.ready:
            self._send_disconnect()
        self._disconnect_sent = True
        self.abort()

    # -- messages from the other side (the Endpoint interface) -------------------------------------
    def offer(self, msg: LocalMessage) -> bool:
        if self.closing:
            if self._linger is not None and msg.payload == PONG:  # too late: the client left
                self._post(LocalMessage(msg.return_route, self._ret, DISCONNECT))
                self._unregister()
            return True  # the socket is going: dropped
        if self._write_paused:
            return False
        if msg.local_info is not self._peer_info and not self._same_peer(msg):
            return True
        payload = msg.payload
        if len(msg.onward_route._addrs) != 1:
            self._dropped("a portal message must end at the portal connection")
            return True
        if not payload:
            self._protocol_error("an empty portal message")
            return True
        tag = payload[0]
        if tag == 3 and self.ready and not self.remote_eof:
            size = len(payload)
            # the common case inlined: a shortest 1- or 3-byte length, no counter
            b1 = payload[1] if size > 1 else 0
            if b1 < 0x80 and size == b1 + 2:
                start, n = 2, b1
            elif size >= 4 and b1 & 0x80 and payload[2] & 0x80 and payload[3] < 4 and (
                    n := (b1 & 0x7F) | (payload[2] & 0x7F) << 7 | payload[3] << 14) + 4 == size \
                    and payload[3] and n <= MAX_PAYLOAD_SIZE:
                start = 4
            else:
                try:
                    start, end, counter = payload_span(payload)
                    if counter is not None:
                        self._counter.check(counter)
                except DecodeError as e:
                    self._protocol_error(str(e))
                    return True
                n = end - start
                if n:
                    self._write(memoryview(payload)[start:end], n)
                    self.bytes_out += n
                    self.portal.stats.bytes_out += n
                else:
                    self._keepalive_received()
                return True
            if n:
                if n >= _BATCH_FROM:  # (the common case of _write, inlined)
                    self.write_batched(memoryview(payload)[start:], n)
                else:
                    self._write(payload[start:], n)
                self.bytes_out += n
                self.portal.stats.bytes_out += n
            else:
                self._keepalive_received()
            return True
        if len(payload) != 1:
            self._protocol_error("malformed portal message")
        elif payload == DISCONNECT:
            self._on_disconnect()
        elif payload == PONG and self.inlet and not self.ready:
            self._on_pong(msg)
        else:
            self._protocol_error(f"unexpected portal message {payload.hex()}")
        return True

    def _keepalive_received(self) -> None:
        if not self.peer_half_closes:  # the first empty Payload is the peer's HELLO
            self.peer_half_closes = True
            if self._eof_timer is not None:
                self._eof_timer.cancel()
                self._eof_timer = None
            return
        self.keepalives += 1
        self.portal.stats.keepalives += 1

    # -- liveness (see the module docstring) ------------------------------------------------------
    def tick(self, period: float) -> None:
        """Called every ``period`` seconds by the portal: an inlet's connection that sent
        nothing since the last tick sends a keepalive; an outlet's connection whose inlet sends
        keepalives is closed once it heard nothing for the outlet's ``silence_timeout``."""
        if not self.ready or self.closing:
            return
        if self.inlet:
            if (self.bytes_in == self._mark and not self._disconnect_sent and self._held is None
                    and not self._backlog):
                self.portal.stats.keepalives += 1
                self._emit(LocalMessage(self.remote_route, self._ret,  # type: ignore[arg-type]
                                        KEEPALIVE))
            self._mark = self.bytes_in
            return
        timeout = self.portal.silence_timeout
        heard = self.bytes_out + self.keepalives
        if timeout is None or not self.keepalives or self.remote_eof or self._write_paused \
                or heard != self._mark:
            self._mark = heard  # (silence is counted only while the inlet is known to speak
            self._silent = 0.0  # and this side takes what it says)
            return
        self._silent += period
        if self._silent >= timeout:
            self.portal.stats.silent_closed += 1
            warn_limited(log, f"portal_silent:{self.portal.name}", "%s %s: connection %s closed: "
                         "nothing from the inlet for %gs (its node is gone, or unreachable)",
                         self.portal.kind, self.portal.name, safe_text(self.peer), timeout)
            self.disconnect_and_abort()

    def _write(self, data: bytes | memoryview, n: int) -> None:
        """Write ``n`` bytes to the socket: large writes of one event-loop turn (the payloads of
        one read from the channel's connection) go out in one system call; a lone small one
        (an interactive exchange) at once. (A payload's bytes are its own, never a reused
        buffer, so holding them to the end of the turn is safe.)"""
        if n >= _BATCH_FROM or self._batch is not None:
            self.write_batched(data, n)
        else:
            self._transport.write(data)  # type: ignore[union-attr]

    def _same_peer(self, msg: LocalMessage) -> bool:
        """Did ``msg`` come from this connection's peer (the same channel identity)?"""
        if self._peer_info is None:  # the first message (a Pong) decides in _on_pong
            return True
        info = channel_info(msg) if msg.local_info else None
        ident = None if info is None else info.identifier
        if ident == self._peer_id and bool(msg.local_info) == bool(self._peer_info):
            self._peer_info = msg.local_info  # (e.g. a credential refresh made a new one)
            return True
        self._dropped("it came from another peer than the connection's")
        return False

    def _dropped(self, why: str) -> None:
        self.portal.stats.dropped += 1
        warn_limited(log, f"portal_dropped:{self.portal.name}", "%s %s: a message to connection "
                     "%s dropped: %s", self.portal.kind, self.portal.name, safe_text(self.peer),
                     why)

    def _protocol_error(self, why: str) -> None:
        self.portal.stats.dropped += 1
        warn_limited(log, f"portal_protocol:{self.portal.name}", "%s %s: connection %s closed: "
                     "%s", self.portal.kind, self.portal.name, safe_text(self.peer),
                     safe_text(why))
        self.disconnect_and_abort()

    def _on_disconnect(self) -> None:
        if not self.ready:  # the outlet refused (policy, target unreachable)
            self._disconnect_sent = True
            warn_limited(log, f"portal_refused:{self.portal.name}", "%s %s: connection %s "
                         "closed: the outlet refused it (see the outlet node's log)",
                         self.portal.kind, self.portal.name, safe_text(self.peer),
                         level=logging.INFO)
            self._report("the outlet refused the connection (see the outlet node's log)")
            self.abort()
            return
        self.remote_eof = True
        t = self._transport
        if t is None:
            return
        self.flush_writes()
        if not self.peer_half_closes:  # Ockam's Disconnect: the peer is gone, it takes nothing
            self._disconnect_sent = True
            t.close()  # (after what is buffered is written)
        elif self.local_eof or not t.can_write_eof():
            t.close()
        else:
            t.write_eof()

    def _report(self, error: str | None) -> None:
        """Tell the inlet's ``on_result`` why a connection failed (``None``: one was set up)."""
        callback = getattr(self.portal, "on_result", None)
        if callback is not None:
            callback(error)

    @property
    def peer_channel(self) -> SecureChannelLocalInfo | None:
        """The channel the peer's latest message came out of (its verified peer), once the
        exchange is done; ``None`` before, or for a peer without a secure channel."""
        for info in reversed(self._peer_info or ()):
            if isinstance(info, SecureChannelLocalInfo):
                return info
        return None

    def _remember_peer(self, msg: LocalMessage) -> None:
        self._peer_info = msg.local_info
        info = channel_info(msg) if msg.local_info else None
        self._peer_id = None if info is None else info.identifier

    # -- the inlet side: Ping, then wait for Pong ------------------------------------------------
    async def _ping(self) -> None:
        inlet = self.portal
        assert isinstance(inlet, TcpInlet)
        try:
            route = await inlet.outlet_route()
        except (TrustError, OSError) as e:
            inlet.stats.failed += 1
            warn_limited(log, f"portal_route:{inlet.name}", "inlet %s: connection %s closed: "
                         "cannot reach the outlet: %s", inlet.name, safe_text(self.peer),
                         safe_text(e))
            self._report(f"cannot reach the outlet: {e}")
            self.abort()
            return
        if self.closing:
            return
        self._pong_timer = asyncio.get_running_loop().call_later(inlet.pong_timeout,
                                                                 self._no_pong)
        self._ping_sent = True
        self._emit(LocalMessage(route, self._ret, PING))

    def _no_pong(self) -> None:
        self._pong_timer = None
        if not self.ready and not self.closing:
            self.portal.stats.failed += 1
            inlet = self.portal
            warn_limited(log, f"portal_pong:{inlet.name}", "inlet %s: connection %s closed: no "
                         "answer from the outlet within %gs", inlet.name, safe_text(self.peer),
                         getattr(inlet, "pong_timeout", PONG_TIMEOUT))
            self._report(f"no answer from the outlet within "
                         f"{getattr(inlet, 'pong_timeout', PONG_TIMEOUT):g}s")
            self.abort()
            callback = getattr(inlet, "on_no_answer", None)
            if callback is not None:
                callback()

    def _on_pong(self, msg: LocalMessage) -> None:
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
        self.remote_route = msg.return_route
        allowed, reason = _decide(self.portal, msg)
        if not allowed:
            self.portal.deny(self, reason)
            self._report(f"the outlet is denied: {reason}")
            self.ready = True  # (so the outlet hears Disconnect)
            self.disconnect_and_abort()
            return
        self._report(None)
        self._remember_peer(msg)
        self._queue(LocalMessage(self.remote_route, self._ret, HELLO))
        self._go()

    def _go(self) -> None:
        self.ready = True
        self._flush_early()
        if self._held is None and not self.closing and self._transport is not None:
            self._transport.resume_reading()

    def _flush_early(self) -> None:
        early, self._early = self._early, b""
        for i in range(0, len(early), MAX_PAYLOAD_SIZE):
            chunk = early[i:i + MAX_PAYLOAD_SIZE]
            self.bytes_in += len(chunk)
            self.portal.stats.bytes_in += len(chunk)
            msg = LocalMessage(self.remote_route, self._ret,  # type: ignore[arg-type]
                               b"\x03" + encode_uvarint(len(chunk)) + chunk)
            self._queue(msg)

    # -- the outlet side -------------------------------------------------------------------------
    def accept_ping(self, ping: LocalMessage) -> None:
        """(Outlet) answer Pong along the Ping's return route, then read the target."""
        self.remote_route = ping.return_route
        self._remember_peer(ping)
        self.ready = True  # (before the Pong: a local inlet may answer with data at once)
        self._emit(LocalMessage(ping.return_route, self._ret, PONG))
        self._queue(LocalMessage(ping.return_route, self._ret, HELLO))
        self._go()


def _decide(portal: _Portal, msg: LocalMessage) -> tuple[bool, str]:
    try:
        return portal.authorize(msg)
    except Exception:  # fail closed
        log.exception("%s %s: the access decision failed; denying", portal.kind, portal.name)
        return False, "the access decision failed"


class TcpInlet(_Portal):
    """Listens on a TCP address; each connection it accepts goes through the portal to the
    outlet at :meth:`outlet_route` (see the module docstring). Made by :func:`create_inlet`."""

    kind = "inlet"

    def __init__(self, node: Node, name: str, to: Route | Callable[[], Awaitable[Route]], *,
                 authorize: Authorize | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 pong_timeout: float = PONG_TIMEOUT,
                 keepalive: float | None = KEEPALIVE_INTERVAL) -> None:
        super().__init__(node, name, authorize, max_connections)
        self._to = to
        self.pong_timeout = pong_timeout
        if keepalive is not None and not keepalive > 0:
            raise UsageError("keepalive must be positive")
        self.keepalive = keepalive
        """Seconds between keepalives on an idle connection (``None``: none are sent)."""
        self.address = ""
        """The bound ``host:port``."""
        self.on_no_answer: Callable[[], None] | None = None
        """Called when the outlet did not answer a connection in time (e.g. to reopen the
        route's channels for the next one)."""
        self.on_result: Callable[[str | None], None] | None = None
        """Called with the reason each time a connection fails (no route to the outlet, no
        answer, refused by the outlet, the outlet denied, the route gone), and with ``None``
        each time one is set up (the outlet answered and is allowed)."""
        self._server: asyncio.AbstractServer | None = None

    async def outlet_route(self) -> Route:
        """The route to the outlet (a callable ``to`` is asked for each connection: it may
        open, or reopen, secure channels)."""
        to = self._to
        return to if isinstance(to, Route) else await to()

    async def listen(self, address: str, *, start: bool = True) -> None:
        """Bind ``address``; accept connections at once, or (``start=False``) once
        :meth:`start` is called."""
        host, port = split_host_port(address)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: PortalConnection(self, inlet=True),
                                                    host, port, start_serving=start)
        except OSError as e:
            from trust.errors import ConflictError
            from trust.transports.tcp import ConnectionFailedError

            if e.errno == 98:
                raise ConflictError(f"cannot listen on {safe_text(address)}: the address is "
                                    "already in use") from None
            raise ConnectionFailedError(f"cannot listen on {safe_text(address)}: "
                                        f"{e.strerror or e}") from None
        self.address = host_port(self._server.sockets[0].getsockname())
        if self.keepalive is not None:
            self._watch(self.keepalive)
        log.info("inlet %s listening on %s", self.name, self.address)

    async def start(self) -> None:
        """Accept connections (after ``listen(..., start=False)``)."""
        if self._server is None:
            raise UsageError(f"inlet {self.name} is not listening")
        await self._server.start_serving()

    @property
    def port(self) -> int:
        return split_host_port(self.address)[1]

    async def stop(self) -> None:
        """Stop listening and close every connection (the outlet is told)."""
        if self._server is not None:
            self._server.close()
        await self._stop_connections()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "address": self.address}


class TcpOutlet(_Portal, Worker):
    """A worker (Ockam's outlet listener) that connects to ``target`` for each Ping. Made by
    :func:`create_outlet`."""

    kind = "outlet"

    def __init__(self, node: Node, name: str, target: str, *, authorize: Authorize | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 silence_timeout: float | None = SILENCE_TIMEOUT) -> None:
        _Portal.__init__(self, node, name, authorize, max_connections)
        self.host, self.port = split_host_port(target)
        self.target = target
        self.connect_timeout = connect_timeout
        if silence_timeout is not None and not silence_timeout > 0:
            raise UsageError("silence_timeout must be positive")
        self.silence_timeout = silence_timeout
        """Seconds a connection whose inlet sends keepalives may hear nothing from it
        (``None``: never closed for silence)."""
        self._pending = 0

    async def initialize(self, ctx: Context) -> None:
        if self.silence_timeout is not None:
            self._watch(min(KEEPALIVE_INTERVAL, self.silence_timeout / 3))

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        if msg.payload != PING or len(msg.onward_route) != 1:
            self.stats.dropped += 1
            warn_limited(log, f"portal_protocol:{self.name}", "outlet %s: a message that is not "
                         "a Ping dropped", self.name)
            return
        if self.stopping:
            return
        if self._pending + len(self.connections) >= self.max_connections:
            self.stats.failed += 1
            warn_limited(log, f"portal_full:{self.name}", "outlet %s: %d connections are open "
                         "(its maximum); one more refused", self.name, len(self.connections))
            await self._refuse(ctx, msg)
            return
        allowed, reason = _decide(self, msg)
        if not allowed:
            info = channel_info(msg) if msg.local_info else None
            self.stats.denied += 1
            warn_limited(log, f"portal_denied:{self.name}", "outlet %s: connection for %s "
                         "refused: the peer is denied: %s", self.name,
                         "a peer without a secure channel" if info is None else info.identifier,
                         safe_text(reason, 400))
            await self._refuse(ctx, msg)
            return
        self._pending += 1
        self._spawn(self._connect(ctx, msg))

    async def _refuse(self, ctx: Context, msg: LocalMessage) -> None:
        try:
            await ctx.send(msg.return_route, DISCONNECT, drop_when_full=True)
        except TrustError:
            pass

    async def _connect(self, ctx: Context, ping: LocalMessage) -> None:
        loop = asyncio.get_running_loop()
        try:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    _, conn = await loop.create_connection(
                        lambda: PortalConnection(self, inlet=False), self.host, self.port)
            except (OSError, TimeoutError) as e:
                self.stats.failed += 1
                reason = (f"timed out after {self.connect_timeout:g}s"
                          if isinstance(e, TimeoutError) else e.strerror or str(e))
                warn_limited(log, f"portal_target:{self.name}", "outlet %s: cannot connect to "
                             "%s: %s", self.name, safe_text(self.target), safe_text(reason))
                await self._refuse(ctx, ping)
                return
        finally:
            self._pending -= 1
        if conn.closing:
            return
        why = None if self.recheck is None else self.recheck(ping)
        if why is not None:
            self.deny(conn, why)
            conn.abort()
            await self._refuse(ctx, ping)
            return
        conn.accept_ping(ping)

    async def shutdown(self, ctx: Context) -> None:
        await self._stop_connections()

    async def stop(self) -> None:
        """Stop the outlet worker and close its connections."""
        if self.node.has_address(self.name):
            await self.node.stop_worker(self.name)
        else:
            await self._stop_connections()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "target": self.target}


async def create_outlet(node: Node, target: str, address: str = "outlet", *,
                        authorize: Authorize | None = None,
                        max_connections: int = DEFAULT_MAX_CONNECTIONS,
                        connect_timeout: float = CONNECT_TIMEOUT,
                        silence_timeout: float | None = SILENCE_TIMEOUT) -> TcpOutlet:
    """Start an outlet at ``address`` that connects to ``target`` (``host:port``) for each
    inlet connection. It is admitted by the node's secure-channel listeners (messages out of
    their channels may reach it); ``authorize`` decides on each Ping (default: allow all);
    ``silence_timeout``: see :data:`SILENCE_TIMEOUT`."""
    outlet = TcpOutlet(node, address, target, authorize=authorize,
                       max_connections=max_connections, connect_timeout=connect_timeout,
                       silence_timeout=silence_timeout)
    await node.start_worker(address, outlet)
    for listener in node.secure_channel_listeners():
        node.flow_controls.add_consumer(address, listener.flow_control_id)
    return outlet


async def create_inlet(node: Node, address: str, to: Route | Callable[[], Awaitable[Route]], *,
                       name: str | None = None, authorize: Authorize | None = None,
                       max_connections: int = DEFAULT_MAX_CONNECTIONS,
                       pong_timeout: float = PONG_TIMEOUT,
                       keepalive: float | None = KEEPALIVE_INTERVAL) -> TcpInlet:
    """Listen on ``address`` (``host:port``; port 0: a free one) and carry each connection to
    the outlet at ``to`` (a route whose first hop is local, e.g. ``channel.route /
    "outlet"``, or an async function returning one); ``authorize`` decides on each Pong;
    ``keepalive``: see :data:`KEEPALIVE_INTERVAL` (``None``: send none)."""
    inlet = TcpInlet(node, name or address, to, authorize=authorize,
                     max_connections=max_connections, pong_timeout=pong_timeout,
                     keepalive=keepalive)
    await inlet.listen(address)
    if name is None:
        inlet.name = inlet.address
    return inlet
