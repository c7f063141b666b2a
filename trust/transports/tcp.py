"""The TCP transport, wire-compatible with Ockam's (wire spec §2.1).

Each connection is an ``asyncio.Protocol``: complete frames are decoded straight from the bytes
each read returns, and only a frame split across reads is kept in the decoder's reused buffer
(measured faster than ``BufferedProtocol`` for request/response traffic on both uvloop and
asyncio, and still well ahead of a plain echo for 64 KiB messages). It plays both of Ockam's
workers:

* **sender**: a local address (random, registered in the node). A message routed to it has
  that address popped off its onward route and is written as one frame.
* **receiver**: each decoded message gets the sender's address pushed onto its return route and
  is delivered only to workers that consume the connection's flow (or its listener's flow).
  When the target mailbox is full the connection stops reading until there is space, so a fast
  peer's writes block instead of growing this node's memory.

``1#host:port`` addresses in routes are resolved by :meth:`TcpTransport.resolve`: one outgoing
connection per peer text, reused, opened within ``connect_timeout``; on behalf of a remote peer
only to destinations ``hop_allow`` lists. A peer that sends garbage or an oversize frame is
disconnected; other connections are unaffected.

Connections are built on the stream-connection base shared with TCP portals
(:class:`~trust.transports.stream.StreamConnection`: socket options, pausing reads while the
consumer is full, waiting for write space), and the transport implements the node's
:class:`~trust.transports.base.Transport` protocol (registered for type 1).

Limits (each a :class:`TcpTransport` option, ``Node(...)`` option and ``node create`` flag):
at most ``max_connections`` open connections (more are closed at once), a connection with no
byte in either direction for ``idle_timeout`` is closed, and one whose full write buffer
drains nothing for ``stall_timeout`` is closed. Memory follows the bytes received: an idle
connection holds no read buffer.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, cast

from trust.errors import ConflictError, DecodeError, TrustError, UntrustedError, UsageError
from trust.logsafe import safe_text, warn_limited
from trust.node.flow_control import FLOW_CONTROL_LOCAL_INFO, FlowControlId, FlowControls
from trust.routing import TCP, Address, LocalInfo, LocalMessage, Route
from trust.routing.tcp_frame import (
    PREAMBLE,
    SMALL_PAYLOAD_HEADS,
    FrameDecoder,
    encode_frame_addrs,
    frame_header,
    pack_u32,
    routes_prefix,
)
from trust.transports.addresses import check_hop_allow, split_host_port
from trust.transports.stream import (
    KEEPALIVE,
    WRITE_BUFFER_HIGH,
    WRITE_BUFFER_LOW,
    StreamConnection,
    host_port,
)

if TYPE_CHECKING:
    from trust.node.access_control import AccessControl
    from trust.node.node import Endpoint, Node

__all__ = [
    "KEEPALIVE",
    "TCP_LOCAL_INFO",
    "WRITE_BUFFER_HIGH",
    "WRITE_BUFFER_LOW",
    "ConnectionFailedError",
    "TcpConnection",
    "TcpListener",
    "TcpTransport",
    "check_hop_allow",
    "split_host_port",
]

log = logging.getLogger("trust.transports.tcp")

TCP_LOCAL_INFO: Final = "tcp_peer"
"""Local-info type of messages that arrived over TCP; its data is the peer's ``host:port``."""

_ZERO_COPY_SIZE: Final = 8 * 1024
"""Payloads this large are written next to their frame header (``writelines``), not copied."""


class ConnectionFailedError(TrustError):
    """A TCP connection could not be opened (refused, unreachable, name not resolved)."""


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``; nothing
    elsewhere): after many connections close, the memory they held is returned."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError, ImportError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None
_TRIM_AFTER: Final = 256
"""Connections closed before the free heap is given back (see :func:`release_free_memory`)."""


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


_host_port = host_port


class TcpListener:
    """A listening socket; every connection it accepts produces messages of its flow."""

    __slots__ = ("_server", "address", "flow_control_id")

    def __init__(self, address: str, flow_control_id: FlowControlId,
                 server: asyncio.AbstractServer) -> None:
        self.address = address
        """The bound ``host:port`` (the real port when 0 was asked)."""
        self.flow_control_id = flow_control_id
        self._server = server

    @property
    def port(self) -> int:
        return split_host_port(self.address)[1]

    def __repr__(self) -> str:
        return f"TcpListener({self.address})"


def _nothing(msg: LocalMessage) -> None:
    return None


class TcpConnection(StreamConnection, asyncio.Protocol):
    """One TCP connection: a sender endpoint at :attr:`sender_address` and a receiver."""

    incoming: AccessControl | None = None  # a sender accepts messages from any local worker
    takes_views = True  # (a payload is only written: a large one without a copy)

    def __init__(self, transport: TcpTransport, *, outgoing: bool,
                 spawner: FlowControlId | None = None) -> None:
        StreamConnection.__init__(self)
        self._tcp = transport
        self._node = transport.node
        self.outgoing = outgoing
        self.sender_address = Address.random()
        self.flow_control_id: FlowControlId = FlowControls.new_id()
        self.producer_flow: FlowControlId | None = self.flow_control_id
        self._spawner = spawner
        self.peer = ""
        self.key: str | None = None
        self._decoder = FrameDecoder()
        self._local_info: tuple[LocalInfo, ...] = ()
        self._pending: tuple[LocalMessage, Endpoint] | None = None
        self._deliver: Callable[[LocalMessage], Endpoint | None] = lambda msg: None
        self._redeliver: Callable[[LocalMessage], Endpoint | None] = lambda msg: None
        self._registered = False
        self.active = True
        """Set by every read and write; the transport's sweep clears it (idle detection)."""
        self.idle_since = 0.0
        self.stall_since = 0.0
        self.stall_size = 0
        self._last_onward: Route | None = None
        self._last_return: Route | None = None
        self._last_routes: bytes | None = None
        self._last_header: tuple[Route | None, Route | None, int, bytes] = (None, None, -1, b"")
        """The last large frame's routes, payload size and header."""

    def __repr__(self) -> str:
        kind = "to" if self.outgoing else "from"
        return f"TcpConnection({kind} {self.peer}, sender {self.sender_address})"

    @property
    def route(self) -> Route:
        """A route whose first hop is this connection: ``conn.route / "echo"``."""
        return Route.from_tuple((self.sender_address,))

    @property
    def reading_paused(self) -> bool:
        return self._pending is not None

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)
        self._transport = transport
        tcp = self._tcp
        if tcp.stopping:
            transport.abort()
            return
        if len(tcp._connections) >= tcp.max_connections:
            self.closing = True
            self._node.stats.refused_connections += 1
            warn_limited(log, "max_connections", "connection from %s closed: %d connections are "
                         "open (max_connections)", safe_text(transport.get_extra_info("peername")),
                         len(tcp._connections))
            transport.abort()
            return
        self.attach(transport, high=WRITE_BUFFER_HIGH, low=WRITE_BUFFER_LOW)
        peer = transport.get_extra_info("peername")
        self.peer = _host_port(peer) if peer else "?"
        self._local_info = (LocalInfo(TCP_LOCAL_INFO, self.peer.encode()),
                            LocalInfo(FLOW_CONTROL_LOCAL_INFO, self.flow_control_id.encode()))
        node = self._node
        self._deliver, self._redeliver = node.producer(
            self.flow_control_id, self.sender_address, spawner=self._spawner,
            local_info=self._local_info)
        node.register_endpoint(self.sender_address, self)
        node.flow_controls.add_producer(self.sender_address, self.flow_control_id,
                                        spawner=self._spawner)
        self._registered = True
        tcp._connections.add(self)
        self.idle_since = tcp.now()
        tcp._schedule_sweep()
        transport.write(PREAMBLE)
        log.debug("%s connected", self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._decoder.release()
        if self._registered:
            self._registered = False
            node = self._node
            node.unregister_endpoint(self.sender_address)
            node.flow_controls.remove_flow(self.flow_control_id)
        self._tcp._forget(self)
        self._pending = None
        self._deliver = self._redeliver = _nothing
        log.debug("%s closed%s", self, f": {safe_text(exc)}" if exc else "")
        self.detach()  # (drops the transport: no cycle with it, freed at once, not by the gc)

    def eof_received(self) -> bool:
        return False

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.active = True
        if self._pending is not None:  # (reading is paused; a last chunk is kept, not lost)
            self._decoder.feed(data)
            return
        try:
            blocked = self._decoder.receive(data, self._deliver, views=True)
        except DecodeError as e:
            self._protocol_error(e)
            return
        if blocked is not None:
            self._pending = blocked
            self.block_on(blocked[1])

    def pause_writing(self) -> None:
        self._write_paused = True
        tcp = self._tcp
        self.stall_since = tcp.now()
        self.stall_size = self._transport.get_write_buffer_size()  # type: ignore[union-attr]
        tcp._paused.add(self)
        tcp._schedule_sweep()

    def resume_writing(self) -> None:
        self._tcp._paused.discard(self)
        StreamConnection.resume_writing(self)

    # -- receiver --------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Deliver every buffered complete message; stop reading when a mailbox is full."""
        decoder = self._decoder
        if self._pending is not None or self.closing:
            return
        try:
            blocked = decoder.drain(self._deliver, views=True)
        except DecodeError as e:
            self._protocol_error(e)
            return
        if blocked is not None:
            self._pending = blocked
            self.block_on(blocked[1])

    def unblocked(self) -> None:
        """The consumer has space: deliver the message held back, then what is buffered."""
        pending = self._pending
        if pending is None or self.closing:
            return
        msg, _ = pending
        ep = self._redeliver(msg)
        if ep is not None:
            self._pending = (msg, ep)
            self.block_on(ep)
            return
        self._pending = None
        self._pump()

    def _protocol_error(self, e: DecodeError) -> None:
        self._node.stats.disconnected_peers += 1
        warn_limited(log, "malformed", "disconnecting %s: malformed data: %s",
                     safe_text(self.peer), safe_text(e))
        self.abort()

    # -- sender (the Endpoint interface) ---------------------------------------------------------
    def offer(self, msg: LocalMessage) -> bool:
        """Write ``msg`` (minus this sender's own address) unless the write buffer is full."""
        if self._write_paused or self.closing:
            return False
        self.active = True
        payload = msg.payload
        n = len(payload)
        if n < 256 and msg.tracing_context is None:
            # small message (the common case): encode_frame_addrs, inlined. A conversation
            # keeps sending the same Route objects, so their encoding is remembered by identity.
            onward_route = msg.onward_route
            return_route = msg.return_route
            if onward_route is self._last_onward and return_route is self._last_return:
                routes = self._last_routes
            else:
                ret = return_route._addrs
                onward = onward_route._addrs[1:]
                routes = routes_prefix(onward, ret)  # type: ignore[assignment]
                self._last_onward = onward_route
                self._last_return = return_route
                self._last_routes = routes
            if routes is not None:
                frame = b"".join((pack_u32(len(routes) + n + (1 if n < 24 else 2)), routes,
                                  SMALL_PAYLOAD_HEADS[n], payload))
                if self._batch is None:
                    self._transport.write(frame)  # type: ignore[union-attr]
                else:  # (after the large frames of this turn, in order)
                    self.write_batched(frame, len(frame))
                return True
        if n >= _ZERO_COPY_SIZE and msg.tracing_context is None:
            # large frames of one turn go out in one system call (a portal read makes two);
            # a stream of records keeps its routes and (mostly) its size: the header is kept
            head = self._last_header
            if msg.onward_route is not head[0] or msg.return_route is not head[1] or \
                    n != head[2]:
                head = self._last_header = (
                    msg.onward_route, msg.return_route, n,
                    frame_header(msg.onward_route._addrs[1:], msg.return_route._addrs, n))
            self.write_batched(payload, n, head[3])
            return True
        frame = encode_frame_addrs(msg.onward_route._addrs[1:], msg.return_route._addrs,
                                   payload, msg.tracing_context)
        if self._batch is None:
            self._transport.write(frame)  # type: ignore[union-attr]
        else:
            self.write_batched(frame, len(frame))
        return True


class TcpTransport:
    """The TCP transport (a :class:`~trust.transports.base.Transport`).

    TCP listeners and connections of one node (``node.tcp``; its options come from
    ``Node(...)``): ``max_connections`` open at once, ``idle_timeout`` and ``stall_timeout``
    (seconds) before a silent or a stalled connection is closed, ``connect_timeout`` for
    outgoing connections, and ``hop_allow``: where a connection may be opened on behalf of a
    remote peer (``host:port`` entries matched against the resolved IP and port, or ``*``)."""

    def __init__(self, node: Node, *, hop_allow: list[str] | None = None,
                 max_connections: int = 10_000, idle_timeout: float = 300.0,
                 stall_timeout: float = 60.0, connect_timeout: float = 10.0) -> None:
        for name, value in (("max_connections", max_connections),
                            ("idle_timeout", idle_timeout), ("stall_timeout", stall_timeout),
                            ("connect_timeout", connect_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise UsageError(f"{name} must be a positive number, not {value!r}")
        self.node = node
        self.stopping = False
        if hop_allow is None:
            hop_allow = []
        check_hop_allow(hop_allow)
        self.hop_allow = hop_allow
        """Checked at each connect on behalf of a remote peer (the node's own list: changes
        to ``node.hop_allow`` apply)."""
        self.max_connections = int(max_connections)
        self.idle_timeout = float(idle_timeout)
        self.stall_timeout = float(stall_timeout)
        self.connect_timeout = float(connect_timeout)
        self._listeners: list[TcpListener] = []
        self._connections: set[TcpConnection] = set()
        self._paused: set[TcpConnection] = set()
        self._outgoing: dict[str, TcpConnection | asyncio.Future[TcpConnection]] = {}
        self._loop = asyncio.get_running_loop()
        self.now = self._loop.time
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._closed_since_trim = 0
        self._last_trim = -1e9
        self._trim_handle: asyncio.TimerHandle | None = None
        node.register_transport(TCP, self)

    transport_type: Final = TCP
    """The address type this transport resolves (``1#host:port``)."""

    # -- idle and stalled connections ------------------------------------------------------------
    def _schedule_sweep(self) -> None:
        if self._sweep_handle is None and not self.stopping:
            interval = min(self.idle_timeout, self.stall_timeout, 60.0) / 4
            self._sweep_handle = self._loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for ``idle_timeout`` or stalled for ``stall_timeout``."""
        self._sweep_handle = None
        now = self.now()
        stats = self.node.stats
        for c in list(self._paused):
            t = c._transport
            if c.closing or t is None:
                self._paused.discard(c)
                continue
            size = t.get_write_buffer_size()
            if size < c.stall_size:  # something drained
                c.stall_size = size
                c.stall_since = now
            elif now - c.stall_since >= self.stall_timeout:
                stats.stalled_closed += 1
                warn_limited(log, "stalled", "closing %s: it read nothing for %gs",
                             safe_text(c.peer), self.stall_timeout)
                self._paused.discard(c)
                c.abort()
        idle = self.idle_timeout
        for c in list(self._connections):
            if c.active:
                c.active = False
                c.idle_since = now
            elif now - c.idle_since >= idle and not c.closing:
                stats.idle_closed += 1
                warn_limited(log, "idle", "closing %s: no bytes either way for %gs",
                             safe_text(c.peer), idle, level=logging.INFO)
                c.abort()
        if self._connections or self._paused:
            self._schedule_sweep()

    @property
    def listeners(self) -> list[TcpListener]:
        return list(self._listeners)

    @property
    def connections(self) -> list[TcpConnection]:
        return [c for c in self._connections if not c.closing]

    # -- listening -------------------------------------------------------------------------------
    async def listen(self, address: str = "127.0.0.1:0", *,
                     consumers: Iterable[Address | str] | None = None) -> TcpListener:
        """Listen on ``host:port`` (port 0: a free one). Connections' messages may reach
        ``consumers`` (default: the node's :attr:`~trust.node.Node.listener_consumers`)."""
        if self.stopping:
            raise UsageError("the TCP transport is stopped")
        host, port = split_host_port(address)
        flow = FlowControls.new_id()
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: TcpConnection(self, outgoing=False, spawner=flow), host, port)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConflictError(f"cannot listen on {address}: the address is already "
                                    "in use") from None
            raise ConnectionFailedError(
                f"cannot listen on {address}: {e.strerror or e}") from None
        bound = _host_port(server.sockets[0].getsockname())
        listener = TcpListener(bound, flow, server)
        fc = self.node.flow_controls
        for c in self.node.listener_consumers if consumers is None else consumers:
            fc.add_consumer(c, flow)
        self._listeners.append(listener)
        log.info("listening on %s", bound)
        return listener

    async def stop_listener(self, listener: TcpListener) -> None:
        """Stop accepting connections on ``listener`` (open ones stay open)."""
        if listener in self._listeners:
            self._listeners.remove(listener)
        listener._server.close()
        await listener._server.wait_closed()
        self.node.flow_controls.remove_flow(listener.flow_control_id)

    # -- connecting ------------------------------------------------------------------------------
    async def connect(self, address: str, *, remote: bool = False) -> TcpConnection:
        """The open connection to ``host:port``, or a new one (within ``connect_timeout``).

        ``remote``: on behalf of a remote peer (e.g. ``hop``): a new connection only to a
        destination :attr:`hop_allow` allows (an :class:`~trust.errors.UntrustedError` else).
        """
        existing = self._outgoing.get(address)
        if isinstance(existing, TcpConnection) and not existing.closing:
            return existing
        if self.stopping:
            raise UsageError("the TCP transport is stopped")
        host, port = split_host_port(address)
        if remote:
            await self.check_allowed(host, port)
        if isinstance(existing, asyncio.Future):
            return await asyncio.shield(existing)
        if len(self._connections) >= self.max_connections:
            raise ConnectionFailedError(f"cannot connect to {safe_text(address)}: "
                                        f"{len(self._connections)} connections are open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[TcpConnection] = loop.create_future()
        self._outgoing[address] = fut
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, proto = await loop.create_connection(
                    lambda: TcpConnection(self, outgoing=True), host, port)
        except (OSError, UnicodeError, ValueError, asyncio.CancelledError) as e:
            if self._outgoing.get(address) is fut:
                del self._outgoing[address]
            if isinstance(e, asyncio.CancelledError):
                fut.cancel()
                raise
            reason = (f"timed out after {self.connect_timeout:g}s" if isinstance(e, TimeoutError)
                      else safe_text(getattr(e, "strerror", None) or e))
            err = ConnectionFailedError(f"cannot connect to {safe_text(address)}: {reason}")
            fut.set_exception(err)
            fut.exception()  # retrieved: waiters (if any) get it too
            raise err from None
        if proto.closing:
            self._outgoing.pop(address, None)
            err = ConnectionFailedError(f"cannot connect to {address}: transport stopped")
            fut.set_exception(err)
            fut.exception()
            raise err
        proto.key = address
        self._outgoing[address] = proto
        fut.set_result(proto)
        return proto

    async def resolve(self, address: Address, *, remote: bool = False) -> Address:
        """The sender address of the connection to a ``1#host:port`` address."""
        conn = await self.connect(address.name, remote=remote)
        return conn.sender_address

    async def check_allowed(self, host: str, port: int) -> None:
        """May a connection to ``host:port`` be opened on behalf of a remote peer?

        Yes when :attr:`hop_allow` has ``*``, lists ``host:port`` itself, or ``host`` is an IP
        address that a listed entry (an IP, or a listed name once resolved) has with ``port``.
        A name that is not listed is refused without being resolved.
        """
        allow = self.hop_allow
        if "*" in allow:
            return
        ip = _ip(host)
        names: list[tuple[str, int]] = []
        for entry in allow:
            try:
                ehost, eport = split_host_port(entry)
            except UsageError:
                continue
            if eport != port:
                continue
            eip = _ip(ehost)
            if eip is None:
                if ehost.lower() == host.lower():
                    return
                names.append((ehost, eport))
            elif ip is not None and eip == ip:
                return
        if ip is not None and names:  # an IP address: listed names may resolve to it
            loop = asyncio.get_running_loop()
            for name, eport in names:
                try:
                    async with asyncio.timeout(self.connect_timeout):
                        infos = await loop.getaddrinfo(name, eport, type=socket.SOCK_STREAM)
                except (OSError, UnicodeError):
                    continue
                if any(_ip(str(i[4][0])) == ip for i in infos):
                    return
        self.node.stats.hop_denied += 1
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise UntrustedError(f"a remote peer asked for a connection to {safe_text(shown)}, "
                             "which this node's hop-allow list does not allow")

    def resolve_nowait(self, address: Address) -> Address | None:
        """The sender address of an open connection to ``address``, or ``None``."""
        conn = self._outgoing.get(address.name)
        if isinstance(conn, TcpConnection) and not conn.closing:
            return conn.sender_address
        return None

    def _forget(self, conn: TcpConnection) -> None:
        self._connections.discard(conn)
        self._paused.discard(conn)
        if conn.key is not None and self._outgoing.get(conn.key) is conn:
            del self._outgoing[conn.key]
        self._closed_since_trim += 1
        if (self._closed_since_trim >= max(_TRIM_AFTER, len(self._connections))
                and self._trim_handle is None):
            # many closed (more than are open): give their memory back, soon and at most
            # every few seconds
            delay = max(0.2, self._last_trim + 5.0 - self._loop.time())
            self._trim_handle = self._loop.call_later(delay, self._trim)

    def _trim(self) -> None:
        self._trim_handle = None
        self._closed_since_trim = 0
        self._last_trim = self._loop.time()
        gc.collect()  # (also empties the interpreter's free lists: their arenas can go)
        release_free_memory()

    # -- stopping --------------------------------------------------------------------------------
    async def stop(self, timeout: float = 2.0) -> None:
        """Close listeners and connections and wait until every socket is closed."""
        self.stopping = True
        for handle in (self._sweep_handle, self._trim_handle):
            if handle is not None:
                handle.cancel()
        self._sweep_handle = self._trim_handle = None
        for listener in list(self._listeners):
            await self.stop_listener(listener)
        conns = list(self._connections)
        for c in conns:
            c.close()
        if conns:
            _, pending = await asyncio.wait([asyncio.ensure_future(c.wait_closed())
                                             for c in conns], timeout=timeout)
            for c in conns:
                if not c.closed.done():
                    c.abort()
            for p in pending:
                p.cancel()
            await asyncio.gather(*(c.wait_closed() for c in conns), return_exceptions=True)
