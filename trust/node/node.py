"""The node: a registry of addresses, the router between them, and the owner of transports.

>>> import asyncio
>>> from trust.node import Node, Echo
>>> async def main() -> bytes:
...     async with Node("demo") as node:
...         await node.start_worker("echo", Echo())
...         return await node.send_and_receive("echo", b"hi")
>>> asyncio.run(main())
b'hi'
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from trust.errors import ConflictError, NotFoundError, TrustError, UsageError
from trust.logsafe import safe_text, warn_limited
from trust.node.access_control import AccessControl, RelayMessage
from trust.node.context import DEFAULT_TIMEOUT, Context
from trust.node.errors import NodeStoppedError, UnknownAddressError
from trust.node.flow_control import FLOW_CONTROL_LOCAL_INFO, FlowControlId, FlowControls
from trust.node.limits import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_STALL_TIMEOUT,
)
from trust.node.mailbox import DEFAULT_MAILBOX_SIZE, Mailbox, MailboxClosedError
from trust.node.worker import FunctionWorker, InlineWorker, Processor, Worker
from trust.routing import LOCAL, TCP, Address, LocalInfoItem, LocalMessage, Route, RouteLike

if TYPE_CHECKING:
    from trust.channels.workers import SecureChannel, SecureChannelListener
    from trust.transports.tcp import TcpConnection, TcpListener, TcpTransport

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_STALL_TIMEOUT",
    "Endpoint",
    "Node",
    "NodeStats",
    "Producer",
    "Slot",
    "TransportRouter",
    "from_peer",
]

log = logging.getLogger("trust.node")

_YIELD_EVERY = 64
"""A worker yields to the event loop after this many messages handled without waiting."""

_INLINE_DEPTH = 8
"""How many inline workers may run nested (e.g. hop → hop → echo) before messages queue."""


PENDING_PER_DESTINATION = 64
"""Messages a shared worker (``hop``) queues for one destination while it is being connected."""
MAX_CONNECTING = 256
"""Destinations shared workers may be connecting to at once; messages to more are dropped."""
PENDING_BYTES_MAX = 32 * 1024 * 1024
"""Payload bytes all those queues may hold together; more are dropped."""


MAX_PENDING_CHECKS = 1024
"""Asynchronous incoming access checks a node has in progress at most; beyond, senders wait."""


class _CheckBacklog:
    """The :class:`Endpoint` a sender waits on while :data:`MAX_PENDING_CHECKS` asynchronous
    access checks are pending (a producer pauses on it as on a full mailbox)."""

    incoming = None
    producer_flow = None

    def __init__(self) -> None:
        self._waiters: list[Any] = []

    def offer(self, msg: LocalMessage) -> bool:
        return False

    def on_space(self, callback: Any) -> None:
        self._waiters.append(callback)

    async def wait_space(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        self._waiters.append(wake)
        await fut

    def release(self) -> None:
        waiters, self._waiters = self._waiters, []
        loop = asyncio.get_running_loop()
        for callback in waiters:
            loop.call_soon(callback)


class Endpoint(Protocol):
    """Something registered at an address: a worker's mailbox or a connection's sender.

    An endpoint with a true ``takes_views`` attribute may be offered a message whose payload
    is a read-only ``memoryview`` (of immutable bytes: a large record sliced from a connection's
    read, or a large decrypted payload); one with a true ``takes_transient_views`` too also a
    writable one, valid during the offer only; any other endpoint is offered ``bytes`` (see
    :attr:`Worker.takes_views` and :attr:`Worker.takes_transient_views`)."""

    incoming: AccessControl | None
    producer_flow: FlowControlId | None

    def offer(self, msg: LocalMessage) -> bool: ...
    def on_space(self, callback: Any) -> None: ...
    async def wait_space(self) -> None: ...


class TransportRouter(Protocol):
    """A transport that turns its addresses (e.g. ``1#host:port``) into a local sender address.

    ``remote``: the message came from a remote peer (see :func:`from_peer`): a new connection
    may be opened only where the node's operator allowed (``Node(hop_allow=...)``).
    """

    async def resolve(self, address: Address, *, remote: bool = False) -> Address: ...
    async def stop(self) -> None: ...


Deliver = Callable[[LocalMessage, Address, "AccessControl | None", "FlowControlId | None",
                    "FlowControlId | None"], Any]


class Producer(NamedTuple):
    """How a producer (a TCP connection's receiver, later a secure channel's decryptor)
    delivers the messages it produces, through the node's one delivery path.

    ``deliver(msg)`` pushes the producer's address onto the return route, attaches its local
    info and delivers to a consumer of its flow; ``redeliver(msg)`` delivers a message already
    prepared (a retry). Both return ``None`` when the message was delivered or dropped (and
    counted), or the :class:`Endpoint` whose queue is full: the producer must stop producing
    (pause reading) and retry after :meth:`Endpoint.on_space`. Nothing is ever dropped for
    lack of space: a producer's traffic pauses it instead.
    """

    deliver: Callable[[LocalMessage], Endpoint | None]
    redeliver: Callable[[LocalMessage], Endpoint | None]


def from_peer(msg: LocalMessage) -> bool:
    """Did ``msg`` come from a remote peer (through a producer, e.g. a TCP connection)?"""
    return any(info.type_identifier == FLOW_CONTROL_LOCAL_INFO for info in msg.local_info)


@dataclass(slots=True)
class NodeStats:
    """Counters of dropped messages and closed connections (each is also logged, rate-limited)."""

    refused_by_flow_control: int = 0
    denied_incoming: int = 0
    denied_outgoing: int = 0
    unknown_address: int = 0
    worker_errors: int = 0
    disconnected_peers: int = 0
    dropped_full: int = 0
    """Messages a shared worker (``echo``, ``hop``) dropped because the next hop was full."""
    unreachable: int = 0
    """Messages dropped because their destination could not be connected (or not allowed)."""
    hop_denied: int = 0
    """Connections a remote peer asked for that ``hop_allow`` does not allow."""
    refused_connections: int = 0
    """Connections closed at once because the node had ``max_connections`` open."""
    idle_closed: int = 0
    """Connections closed after ``idle_timeout`` without a byte either way."""
    stalled_closed: int = 0
    """Connections closed after ``stall_timeout`` with a full write buffer draining nothing."""
    channel_records_rejected: int = 0
    """Secure-channel records dropped: replayed, forged or malformed."""

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _log_worker_error(slot: Slot, e: Exception) -> None:
    """One line for an expected failure (a typed error: e.g. the peer that should get the
    reply has gone), a traceback for a bug; both rate-limited."""
    if isinstance(e, TrustError):
        warn_limited(log, "worker_error", "worker at %s could not handle a message: %s",
                     slot.addresses[0], safe_text(e))
    else:
        warn_limited(log, "worker_bug", "worker at %s failed to handle a message",
                     slot.addresses[0], level=logging.ERROR, exc_info=True)


class Slot:
    """A registered worker, processor or detached context (an :class:`Endpoint`): its
    addresses, mailbox and access controls. Made by the node; its :class:`Context` sends and
    receives through it."""

    __slots__ = ("addresses", "busy", "ctx", "incoming", "kind", "mailbox", "offer", "on_space",
                 "outgoing", "producer_flow", "runner", "shut_down", "takes_transient_views",
                 "takes_views", "task", "wait_space")

    def __init__(self, addresses: tuple[Address, ...], kind: str, mailbox: Mailbox[LocalMessage],
                 incoming: AccessControl | None, outgoing: AccessControl | None,
                 runner: Any) -> None:
        self.addresses = addresses
        self.kind = kind
        self.mailbox = mailbox
        self.incoming = incoming
        self.outgoing = outgoing
        self.runner = runner
        self.producer_flow: FlowControlId | None = None
        self.task: asyncio.Task[None] | None = None
        self.shut_down = False
        self.busy = False
        self.takes_views = False
        self.takes_transient_views = False
        self.ctx: Context
        # the Endpoint interface, bound straight to the mailbox (saves a call per message)
        self.offer: Callable[[LocalMessage], bool] = mailbox.offer
        self.on_space = mailbox.on_space
        self.wait_space = mailbox.wait_space


def _own_bytes(msg: LocalMessage) -> None:
    """Before ``msg`` is queued: a payload that is a writable view (of its sender's reused
    buffer: valid during the delivery only) or a view of a larger buffer (a large record in a
    whole read from a connection) becomes a copy of its own bytes, so a queue holds what its
    messages weigh, not the reads they came in (a handled-at-once view costs no copy)."""
    if type(msg.payload) is not memoryview:
        return
    view: Any = msg.payload
    if not view.readonly or len(view.obj) > 2 * len(view):
        msg.payload = bytes(view)


def _owning_offer(mailbox: Mailbox[LocalMessage]) -> Callable[[LocalMessage], bool]:
    """The ``offer`` of a worker that takes views and queues them (see :func:`_own_bytes`)."""
    put = mailbox.offer

    def offer(msg: LocalMessage) -> bool:
        _own_bytes(msg)
        return put(msg)

    return offer


def _access(ac: AccessControl | None) -> AccessControl | None:
    from trust.node.access_control import AllowAll

    return None if ac is None or ac is AllowAll else ac


class Node:
    """An asyncio messaging node (workers, processors, transports, flow control).

    Create one with ``Node(name)`` inside a running event loop (or ``await Node.create(name)``)
    and stop it with :meth:`stop` or ``async with``.
    """

    def __init__(self, name: str = "node", *, mailbox_size: int = DEFAULT_MAILBOX_SIZE,
                 hop_allow: Iterable[str] = (),
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 stall_timeout: float = DEFAULT_STALL_TIMEOUT,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        self.name = name
        self.mailbox_size = mailbox_size
        self.hop_allow: list[str] = list(hop_allow)
        if self.hop_allow:
            from trust.transports.tcp import check_hop_allow

            check_hop_allow(self.hop_allow)
        """``host:port`` entries (or ``*``) where new connections may be opened on behalf of a
        remote peer (``hop``); default none. Read by the TCP transport at each such connect."""
        self.tcp_options: dict[str, Any] = {
            "max_connections": max_connections, "idle_timeout": idle_timeout,
            "stall_timeout": stall_timeout, "connect_timeout": connect_timeout}
        """Options of the TCP transport (see :class:`~trust.transports.tcp.TcpTransport`)."""
        self.flow_controls = FlowControls()
        self._fc_consumers = self.flow_controls.consumer_sets
        self.stats = NodeStats()
        self.listener_consumers: set[str] = {"echo", "hop", "api"}
        """Local addresses every new TCP listener (and secure-channel listener) admits by
        default (``api``: the secure-channel listener)."""
        self._channels: dict[Address, Any] = {}
        self._channel_listeners: dict[Address, Any] = {}
        self.identity: Any = None
        """The identity this node carries (set by whoever starts it; unused by routing)."""
        self._endpoints: dict[Address, Any] = {}
        self._slots: dict[Address, Slot] = {}
        self._transports: dict[int, TransportRouter] = {}
        self._tcp: TcpTransport | None = None
        self._main: Context | None = None
        self._stopping = False
        self._inline_depth = 0
        self._connecting: dict[tuple[Address, bool], deque[Any]] = {}
        self._pending_bytes = 0
        self._connect_tasks: set[asyncio.Task[None]] = set()
        self._checks_pending = 0
        self._check_tail: dict[Address, asyncio.Task[None]] = {}
        self._check_backlog = _CheckBacklog()
        self._deliver: Deliver = self._make_deliver()
        self.stopped = False

    @classmethod
    async def create(cls, name: str = "node", **options: Any) -> Node:
        """A node bound to the running event loop."""
        return cls(name, **options)

    async def __aenter__(self) -> Node:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {len(self._slots)} workers)"

    # -- registration ----------------------------------------------------------------------------
    def _register(self, addresses: Iterable[Address | str], kind: str, runner: Any, *,
                  incoming: AccessControl | None, outgoing: AccessControl | None,
                  mailbox_size: int | None) -> Slot:
        if self._stopping:
            raise NodeStoppedError(f"node {self.name} is stopping")
        addrs = tuple(dict.fromkeys(Address.parse(a) for a in addresses))
        if not addrs:
            raise UsageError("a worker needs at least one address")
        for a in addrs:
            if a.tt != LOCAL:
                raise UsageError(f"a worker address must be local (type 0), not {a}")
            if a in self._endpoints:
                raise ConflictError(f"address {a} is already in use on node {self.name}")
        slot = Slot(addrs, kind, Mailbox(mailbox_size or self.mailbox_size), _access(incoming),
                     _access(outgoing), runner)
        slot.ctx = Context(self, slot)
        for a in addrs:
            self._endpoints[a] = slot
        self._slots[addrs[0]] = slot
        return slot

    def unregister(self, slot: Slot) -> None:
        """Remove ``slot`` from the node at once (no shutdown hook; its mailbox closes)."""
        if self._slots.get(slot.addresses[0]) is not slot:
            return
        del self._slots[slot.addresses[0]]
        for a in slot.addresses:
            if self._endpoints.get(a) is slot:
                del self._endpoints[a]
            self.flow_controls.remove_consumer(a)
        slot.mailbox.close()

    @property
    def deliver(self) -> Deliver:
        """The node's one delivery function, ``deliver(msg, source, outgoing, flow, spawner)``
        (see :meth:`_make_deliver`): what a :class:`Context` sends through. It never waits; use
        :meth:`finish_send` with its result when it could not deliver at once."""
        return self._deliver

    def register_endpoint(self, address: Address, endpoint: Endpoint) -> None:
        """Register a transport's endpoint (e.g. a TCP connection's sender) at ``address``."""
        if address in self._endpoints:
            raise ConflictError(f"address {address} is already in use on node {self.name}")
        self._endpoints[address] = endpoint

    def unregister_endpoint(self, address: Address) -> None:
        self._endpoints.pop(address, None)
        self.flow_controls.remove_consumer(address)

    def register_transport(self, tt: int, router: TransportRouter) -> None:
        """Let ``router`` resolve addresses of transport type ``tt`` (e.g. 1 = TCP)."""
        self._transports[tt] = router

    def transport(self, tt: int) -> TransportRouter:
        """The node's transport for address type ``tt``: the registered one, else one built by
        the factory registered for the type (:mod:`trust.transports.base`; TCP is built on
        first use). A :class:`~trust.errors.NotFoundError` when no transport has the type."""
        router = self._transports.get(tt)
        if router is None:
            from trust.transports.base import transport_factory

            factory = transport_factory(tt)
            if factory is None:
                raise NotFoundError(f"no transport for address type {tt} on node {self.name}")
            router = factory(self)
            self._transports.setdefault(tt, router)
        return router

    @property
    def transports(self) -> dict[int, TransportRouter]:
        """The node's transports by address type."""
        return dict(self._transports)

    def endpoint_sender(self, source: Address) -> Callable[[LocalMessage], Endpoint | None]:
        """The send function of the endpoint registered at ``source`` (e.g. a portal's
        socket, :mod:`trust.portals`): ``send(msg)`` delivers without waiting and returns
        ``None`` (delivered, or dropped and counted) or the full :class:`Endpoint`: stop
        producing until its ``on_space`` callback, then send the same message again. The next
        hop must be local or an open connection (else an
        :class:`~trust.node.errors.UnknownAddressError`). A sender to a producer (a channel's
        encryptor) becomes a consumer of its flow, so the replies reach it."""
        deliver = self._deliver

        def send(msg: LocalMessage) -> Endpoint | None:
            result = deliver(msg, source, None, None, None)
            if result is True or result is False:
                return None
            if result is None:
                raise UnknownAddressError(f"{safe_text(msg.onward_route.addresses[0])} is not "
                                          f"connected on node {self.name}")
            return result  # type: ignore[no-any-return]

        return send

    # -- workers ---------------------------------------------------------------------------------
    async def start_worker(self, address: Address | str | Iterable[Address | str],
                           worker: Worker | Any, *,
                           incoming: AccessControl | None = None,
                           outgoing: AccessControl | None = None,
                           mailbox_size: int | None = None,
                           producer_flow: FlowControlId | None = None) -> Context:
        """Start ``worker`` at ``address`` (or several addresses; the first is primary).

        ``worker`` is a :class:`Worker` or an ``async def handler(ctx, msg)``. ``incoming`` and
        ``outgoing`` are access controls (default: allow all). ``producer_flow``: the worker
        is the sending end of a producer of that flow (as a secure channel's encryptor is):
        a local worker that sends to it becomes a consumer of the flow, so replies reach it.
        Returns the worker's context.
        """
        if not isinstance(worker, Worker):
            if not callable(worker):
                raise UsageError("a worker is a Worker or an async function (ctx, msg)")
            worker = FunctionWorker(worker)
        addrs = [address] if isinstance(address, (Address, str)) else list(address)
        slot = self._register(addrs, "worker", worker, incoming=incoming, outgoing=outgoing,
                              mailbox_size=mailbox_size)
        slot.ctx.drop_when_full = bool(getattr(worker, "drop_when_full", False))
        slot.producer_flow = producer_flow
        slot.takes_views = worker.takes_views
        slot.takes_transient_views = worker.takes_views and worker.takes_transient_views
        if isinstance(worker, InlineWorker):
            slot.offer = self._inline_offer(slot, worker)
        elif worker.takes_views:
            slot.offer = _owning_offer(slot.mailbox)
        slot.task = asyncio.get_running_loop().create_task(
            self._run_worker(slot), name=f"worker {slot.addresses[0]}")
        return slot.ctx

    def _inline_offer(self, slot: Slot, worker: InlineWorker) -> Any:
        """The ``offer`` of an inline worker: handle at once when idle, else queue."""
        mailbox = slot.mailbox
        items = mailbox._items
        ctx = slot.ctx
        handle_now = worker.handle_now
        stats = self.stats
        before_queue = (worker.before_queue
                        if type(worker).before_queue is not InlineWorker.before_queue else None)
        capacity = mailbox.capacity

        def offer(msg: LocalMessage) -> bool:
            if items or slot.busy or self._inline_depth >= _INLINE_DEPTH or mailbox.closed:
                if before_queue is not None and len(items) < capacity and not mailbox.closed:
                    try:
                        kept = before_queue(ctx, msg)
                    except Exception as e:
                        stats.worker_errors += 1
                        _log_worker_error(slot, e)
                        return True
                    if kept is None:
                        return True
                    msg = kept
                _own_bytes(msg)
                return mailbox.offer(msg)
            self._inline_depth += 1
            try:
                if handle_now(ctx, msg):
                    return True
            except Exception as e:
                stats.worker_errors += 1
                _log_worker_error(slot, e)
                return True
            finally:
                self._inline_depth -= 1
            _own_bytes(msg)
            return mailbox.offer(msg)

        return offer

    async def start_processor(self, address: Address | str, processor: Processor, *,
                              incoming: AccessControl | None = None,
                              outgoing: AccessControl | None = None,
                              mailbox_size: int | None = None) -> Context:
        """Start a background loop: ``processor.process(ctx)`` until it returns ``False``."""
        slot = self._register([address], "processor", processor, incoming=incoming,
                              outgoing=outgoing, mailbox_size=mailbox_size)
        slot.task = asyncio.get_running_loop().create_task(
            self._run_processor(slot), name=f"processor {slot.addresses[0]}")
        return slot.ctx

    def context(self, address: Address | str | None = None, *,
                incoming: AccessControl | None = None,
                outgoing: AccessControl | None = None,
                mailbox_size: int | None = None) -> Context:
        """A detached context (no worker): send from it and :meth:`Context.receive` replies.

        Close it with :meth:`Context.close` (or ``async with``) when done.
        """
        slot = self._register([address if address is not None else Address.random()],
                              "context", None, incoming=incoming, outgoing=outgoing,
                              mailbox_size=mailbox_size)
        return slot.ctx

    @property
    def ctx(self) -> Context:
        """The node's own detached context (created on first use)."""
        if self._main is None:
            self._main = self.context()
        return self._main

    async def stop_worker(self, address: Address | str) -> None:
        """Stop the worker, processor or context at ``address`` and run its shutdown hook."""
        addr = Address.parse(address)
        slot = self._endpoints.get(addr)
        if not isinstance(slot, Slot) or self._slots.get(slot.addresses[0]) is not slot:
            raise UnknownAddressError(f"no worker at address {addr} on node {self.name}")
        await self._stop_slot(slot)

    async def _stop_slot(self, slot: Slot) -> None:
        self.unregister(slot)
        task = slot.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
        await self._shutdown_hook(slot)

    async def _shutdown_hook(self, slot: Slot) -> None:
        """Run the worker's or processor's ``shutdown`` once."""
        if slot.shut_down or slot.runner is None:
            return
        slot.shut_down = True
        try:
            await slot.runner.shutdown(slot.ctx)
        except Exception:
            log.exception("%s at %s failed to shut down", slot.kind, slot.addresses[0])

    async def _run_worker(self, slot: Slot) -> None:
        ctx = slot.ctx
        worker = slot.runner
        try:
            await worker.initialize(ctx)
        except Exception:
            log.exception("worker at %s failed to initialize; stopping it", slot.addresses[0])
            self.unregister(slot)
            return
        handle = worker.handle_message
        mailbox = slot.mailbox
        items = mailbox._items
        stats = self.stats
        handled = 0
        while True:
            if items:
                msg = items.popleft()
                if mailbox._waiters:
                    mailbox._wake_one()
            else:
                handled = 0
                try:
                    msg = await mailbox.get()
                except MailboxClosedError:
                    return
            slot.busy = True
            try:
                await handle(ctx, msg)
            except Exception as e:
                stats.worker_errors += 1
                _log_worker_error(slot, e)
            finally:
                slot.busy = False
            handled += 1
            if handled >= _YIELD_EVERY:
                handled = 0
                await asyncio.sleep(0)

    async def _run_processor(self, slot: Slot) -> None:
        ctx = slot.ctx
        proc = slot.runner
        try:
            await proc.initialize(ctx)
            while not slot.mailbox.closed and await proc.process(ctx):
                await asyncio.sleep(0)
        except NodeStoppedError:
            pass
        except Exception:
            self.stats.worker_errors += 1
            log.exception("processor at %s failed; stopping it", slot.addresses[0])
        self.unregister(slot)
        await self._shutdown_hook(slot)

    # -- delivery: the one path every message takes ---------------------------------------------
    def _make_deliver(self) -> Deliver:
        """Build :attr:`_deliver` (a closure over bound locals: this is every message's path)."""
        endpoints = self._endpoints
        fc = self._fc_consumers
        stats = self.stats
        transports = self._transports
        add_consumer = self.flow_controls.add_consumer
        node = self

        def deliver(msg: LocalMessage, source: Address, outgoing: AccessControl | None,
                    flow: FlowControlId | None, spawner: FlowControlId | None) -> Any:
            """Route ``msg`` from ``source`` to the first hop of its onward route.

            ``outgoing`` is the sender's access control; ``flow`` (and ``spawner``) the flow
            control id of the producer the message came out of (``None`` for local senders).
            Returns ``True`` (delivered), ``False`` (dropped, counted and logged), ``None``
            (the next hop is a transport address without an open connection: connect first;
            local senders only) or the :class:`Endpoint` whose queue is full (the caller waits,
            pauses its producer or drops). Never waits.
            """
            onward = msg.onward_route.addresses
            if not onward:
                raise UsageError("cannot send a message with an empty onward route")
            dst = onward[0]
            if flow is not None:
                consumers = fc.get(flow)
                if (consumers is None or dst not in consumers) and (
                        spawner is None or (consumers := fc.get(spawner)) is None
                        or dst not in consumers):
                    node._refused(msg, flow, source)
                    return False
            ep = endpoints.get(dst)
            if ep is None:
                if flow is not None:
                    stats.unknown_address += 1
                    warn_limited(log, "unknown", "message from %s to unknown address %s dropped",
                                 safe_text(source), safe_text(dst))
                    return False
                if dst.tt != LOCAL:
                    router = transports.get(dst.tt)
                    resolve_nowait = getattr(router, "resolve_nowait", None)
                    local = resolve_nowait(dst) if resolve_nowait is not None else None
                    if local is None:
                        return None
                    dst = local
                    msg = msg.replace_front_onward(dst)
                    ep = endpoints.get(dst)
                if ep is None:
                    if node._stopping:
                        raise NodeStoppedError(f"node {node.name} is stopping")
                    raise UnknownAddressError(
                        f"no worker at address {safe_text(dst)} on node {node.name}")
            payload = msg.payload
            if type(payload) is memoryview and not (
                    getattr(ep, "takes_views", False)
                    and (payload.readonly or getattr(ep, "takes_transient_views", False))):
                msg.payload = bytes(payload)  # (only a few endpoints take views)
            if outgoing is not None and not outgoing(RelayMessage(source, dst, msg)):
                stats.denied_outgoing += 1
                warn_limited(log, "denied_out", "message from %s to %s denied by outgoing access "
                             "control", safe_text(source), safe_text(dst))
                return False
            incoming = ep.incoming
            if incoming is not None:
                ok = incoming(RelayMessage(source, dst, msg))
                if ok is not True:
                    if hasattr(ok, "__await__"):  # an asynchronous check: finish in a task
                        return node._check_later(ok, msg, source, dst, ep, flow)
                    if not ok:
                        node._denied_incoming(source, dst)
                        return False
            if flow is None:
                pflow = ep.producer_flow
                if pflow is not None:  # a local sender to a producer: it may get the replies
                    consumers = fc.get(pflow)
                    if consumers is None or source not in consumers:
                        add_consumer(source, pflow)
            if ep.offer(msg):
                return True
            return ep

        return deliver

    async def finish_send(self, msg: LocalMessage, source: Address,
                         outgoing: AccessControl | None, result: Any, drop: bool) -> bool:
        """The rest of a local send that :attr:`_deliver` could not finish at once (``result``
        is ``None``: connect first, or the full :class:`Endpoint`). ``drop``: a shared sender,
        which never waits on one destination: a full one drops the message (counted), a new
        connection is opened in a task of its own with the message queued (bounded)."""
        deliver = self._deliver
        while True:
            if result is None:
                if drop:
                    return self._send_later(msg, source, outgoing)
                dst = msg.onward_route.addresses[0]
                local = await self._router(dst).resolve(dst, remote=from_peer(msg))
                msg = msg.replace_front_onward(local)
            elif drop:
                self._dropped_full(msg, source)
                return False
            else:
                try:
                    await result.wait_space()
                except MailboxClosedError:
                    raise UnknownAddressError(f"{safe_text(msg.onward_route.addresses[0])} stopped "
                                              "before the message could be delivered") from None
            result = deliver(msg, source, outgoing, None, None)
            if result is True or result is False:
                return result  # type: ignore[no-any-return]

    def deliver_nowait(self, msg: LocalMessage, source: Address, outgoing: AccessControl | None,
                     drop: bool) -> bool:
        """Deliver without waiting. ``False`` (nothing done) when it would have to wait; a
        shared sender (``drop``) never has to: see :meth:`finish_send`."""
        result = self._deliver(msg, source, outgoing, None, None)
        if result is True or result is False:
            return True
        if not drop:
            return False
        return self.queue_or_drop(msg, source, outgoing, result)

    def queue_or_drop(self, msg: LocalMessage, source: Address, outgoing: AccessControl | None,
                     result: Endpoint | None) -> bool:
        """A shared sender's message that :attr:`_deliver` could not deliver at once: queued
        for a destination being connected (``result`` is ``None``), else dropped (full)."""
        if result is None:
            self._send_later(msg, source, outgoing)
        else:
            self._dropped_full(msg, source)
        return True

    def _denied_incoming(self, source: Address, dst: Address) -> None:
        self.stats.denied_incoming += 1
        warn_limited(log, "denied_in", "message from %s to %s denied by incoming access control",
                     safe_text(source), safe_text(dst))

    def _check_later(self, check: Any, msg: LocalMessage, source: Address, dst: Address,
                     ep: Endpoint, flow: FlowControlId | None) -> Any:
        """An incoming access control returned an awaitable: await it in a task, then deliver
        (waiting for space: nothing is dropped for lack of it). Messages to one destination
        keep their order. With :data:`MAX_PENDING_CHECKS` checks pending, the message is not
        taken: the sender waits (a producer pauses) on a backlog endpoint instead."""
        if self._checks_pending >= MAX_PENDING_CHECKS:
            close = getattr(check, "close", None)
            if close is not None:
                close()
            return self._check_backlog
        _own_bytes(msg)  # (kept while the check runs)
        self._checks_pending += 1
        prev = self._check_tail.get(dst)
        task = asyncio.get_running_loop().create_task(
            self._checked(check, msg, source, dst, ep, flow, prev))
        self._check_tail[dst] = task
        self._connect_tasks.add(task)
        task.add_done_callback(self._connect_tasks.discard)
        return True

    async def _checked(self, check: Any, msg: LocalMessage, source: Address, dst: Address,
                       ep: Endpoint, flow: FlowControlId | None,
                       prev: asyncio.Task[None] | None) -> None:
        try:
            try:
                allowed = bool(await check)
            except Exception as e:
                allowed = False
                warn_limited(log, "check_failed", "incoming access control of %s failed: %s",
                             safe_text(dst), safe_text(e))
            if prev is not None and not prev.done():
                await asyncio.wait([prev])
            if not allowed:
                self._denied_incoming(source, dst)
                return
            if flow is None:
                pflow = ep.producer_flow
                if pflow is not None and not self.flow_controls.is_consumer(source, pflow):
                    self.flow_controls.add_consumer(source, pflow)
            while not ep.offer(msg):
                try:
                    await ep.wait_space()
                except MailboxClosedError:
                    return
        finally:
            self._checks_pending -= 1
            if self._check_tail.get(dst) is asyncio.current_task():
                del self._check_tail[dst]
            if self._checks_pending <= MAX_PENDING_CHECKS // 2:
                self._check_backlog.release()

    def _router(self, dst: Address) -> TransportRouter:
        router = self._transports.get(dst.tt)
        if router is None:
            if self._stopping:
                raise NodeStoppedError(f"node {self.name} is stopping")
            try:
                router = self.transport(dst.tt)
            except NotFoundError:
                raise NotFoundError(f"no transport can reach {safe_text(dst)} on node "
                                    f"{self.name}") from None
        return router

    def _dropped_full(self, msg: LocalMessage, source: Address) -> None:
        self.stats.dropped_full += 1
        warn_limited(log, "full", "message from %s to %s dropped: its queue is full",
                     safe_text(source), safe_text(msg.onward_route.addresses[0]))

    def _send_later(self, msg: LocalMessage, source: Address,
                    outgoing: AccessControl | None) -> bool:
        """Queue ``msg`` for a destination being connected (at most
        :data:`PENDING_PER_DESTINATION` messages each), connecting in a task of its own."""
        dst = msg.onward_route.addresses[0]
        size = len(msg.payload)
        if self._pending_bytes + size > PENDING_BYTES_MAX:
            self._dropped_full(msg, source)
            return False
        key = (dst, from_peer(msg))
        pending = self._connecting.get(key)
        if pending is None:
            if self._stopping:
                return False
            if len(self._connecting) >= MAX_CONNECTING:
                self.stats.unreachable += 1
                warn_limited(log, "connecting", "message to %s dropped: %d destinations are "
                             "being connected", safe_text(dst), MAX_CONNECTING)
                return False
            pending = self._connecting[key] = deque()
            task = asyncio.get_running_loop().create_task(self._connect_then_send(key, pending))
            self._connect_tasks.add(task)
            task.add_done_callback(self._connect_tasks.discard)
        if len(pending) >= PENDING_PER_DESTINATION:
            self._dropped_full(msg, source)
            return False
        self._pending_bytes += size
        pending.append((msg, source, outgoing))
        return True

    async def _connect_then_send(self, key: tuple[Address, bool], pending: deque[Any]) -> None:
        dst, remote = key
        try:
            try:
                local = await self._router(dst).resolve(dst, remote=remote)
            except Exception as e:  # (typed errors; anything else must not kill the node)
                self.stats.unreachable += len(pending)
                warn_limited(log, "unreachable", "%d message(s) to %s dropped: %s", len(pending),
                             safe_text(dst), safe_text(e))
                return
            deliver = self._deliver
            while pending:
                msg, source, outgoing = pending.popleft()
                self._pending_bytes -= len(msg.payload)
                try:
                    result = deliver(msg.replace_front_onward(local), source, outgoing, None,
                                     None)
                except TrustError as e:
                    self.stats.unreachable += 1
                    warn_limited(log, "unreachable", "message to %s dropped: %s", safe_text(dst),
                                 safe_text(e))
                    continue
                if result is not True and result is not False:
                    self._dropped_full(msg, source)
        finally:
            for msg, _, _ in pending:
                self._pending_bytes -= len(msg.payload)
            pending.clear()
            if self._connecting.get(key) is pending:
                del self._connecting[key]

    def producer(self, flow_id: FlowControlId, source: Address, *,
                 spawner: FlowControlId | None = None,
                 local_info: tuple[LocalInfoItem, ...] = ()) -> Producer:
        """The delivery functions of a producer of ``flow_id`` at ``source`` (a TCP
        connection's receiver; later a secure channel's decryptor), which ``spawner`` (e.g.
        a TCP listener's flow) may have spawned. See :class:`Producer`."""
        deliver = self._deliver
        prefix = (source,)
        new_route = Route.from_tuple
        last_ret: Route | None = None
        last_pushed: Route | None = None

        def produce(msg: LocalMessage) -> Endpoint | None:
            nonlocal last_ret, last_pushed
            ret = msg.return_route
            if ret is last_ret:
                msg.return_route = last_pushed  # type: ignore[assignment]
            else:
                last_ret = ret
                last_pushed = msg.return_route = new_route(prefix + ret.addresses)
            msg.local_info = local_info
            result = deliver(msg, source, None, flow_id, spawner)
            return None if result is True or result is False else result  # type: ignore[no-any-return]

        def redeliver(msg: LocalMessage) -> Endpoint | None:
            result = deliver(msg, source, None, flow_id, spawner)
            return None if result is True or result is False else result  # type: ignore[no-any-return]

        return Producer(produce, redeliver)

    def refuse(self, msg: LocalMessage, flow_id: FlowControlId, source: Address) -> None:
        """Drop ``msg`` (of ``flow_id``, passed on by ``source``) as refused by flow control:
        counted in ``stats.refused_by_flow_control`` and logged (rate-limited). For relaying
        workers (``hop``) that check :meth:`FlowControls.may_relay` themselves."""
        self._refused(msg, flow_id, source)

    def _refused(self, msg: LocalMessage, flow_id: FlowControlId, source: Address) -> None:
        dst = safe_text(msg.onward_route.addresses[0])
        self.stats.refused_by_flow_control += 1
        warn_limited(log, "refused", "message from %s to %s refused: %s does not accept messages "
                     "of flow %s", safe_text(source), dst, dst, safe_text(flow_id))

    # -- messaging shortcuts ---------------------------------------------------------------------
    async def send(self, route: RouteLike, payload: bytes) -> bool:
        """Send from the node's own context."""
        return await self.ctx.send(route, payload)

    async def send_and_receive(self, route: RouteLike, payload: bytes, *,
                               timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
        """Send from a temporary address and return the first reply's payload."""
        return await self.ctx.send_and_receive(route, payload, timeout=timeout)

    async def start_services(self) -> None:
        """Start the standard services: ``echo`` and ``hop``."""
        from trust.node.services import Echo, Hop

        await self.start_worker("echo", Echo())
        await self.start_worker("hop", Hop())

    # -- TCP -------------------------------------------------------------------------------------
    @property
    def tcp(self) -> TcpTransport:
        """The node's TCP transport (created on first use)."""
        if self._tcp is None:
            from trust.transports.tcp import TcpTransport

            tcp = self.transport(TCP)
            if not isinstance(tcp, TcpTransport):
                raise UsageError(f"the TCP transport of node {self.name} is not a TcpTransport")
            self._tcp = tcp
        return self._tcp

    async def create_tcp_listener(self, address: str = "127.0.0.1:0", *,
                                  consumers: Iterable[Address | str] | None = None
                                  ) -> TcpListener:
        """Listen for TCP connections; ``consumers`` (default: :attr:`listener_consumers`)."""
        return await self.tcp.listen(address, consumers=consumers)

    async def connect_tcp(self, address: str) -> TcpConnection:
        """Connect (or reuse the connection) to a TCP peer ``host:port``."""
        return await self.tcp.connect(address)

    # -- secure channels -------------------------------------------------------------------------
    async def create_secure_channel_listener(
            self, identity: Any, address: Address | str = "api", *, trust: Any = None,
            authorities: Iterable[Any] = (), credentials: Iterable[Any] = (),
            require_credential: bool = False, identities: Any = None,
            consumers: Iterable[Address | str] | None = None,
            max_handshakes: int | None = None,
            handshake_timeout: float | None = None) -> SecureChannelListener:
        """Accept secure channels at ``address`` as ``identity`` (a ``ChannelIdentity``, or a
        local identity with ``identities``, its ``IdentityManager``), presenting
        ``credentials``; peers are authenticated against ``authorities`` and accepted by
        ``trust`` (default ``TrustEveryone()``). Messages coming out of its channels reach only
        ``consumers`` (default :attr:`listener_consumers`). At most ``max_handshakes`` (1,000)
        handshakes are in progress; each must complete within ``handshake_timeout`` (30 s)."""
        from trust.channels import workers

        ident = await workers.channel_identity(identity, identities=identities,
                                               credentials=credentials)
        return await workers.create_secure_channel_listener(
            self, ident, address, trust=trust, authorities=authorities,
            require_credential=require_credential, consumers=consumers,
            max_handshakes=workers.DEFAULT_MAX_HANDSHAKES if max_handshakes is None
            else max_handshakes,
            handshake_timeout=workers.DEFAULT_HANDSHAKE_TIMEOUT if handshake_timeout is None
            else handshake_timeout)

    async def create_secure_channel(
            self, identity: Any, route: RouteLike, *, trust: Any = None,
            authorities: Iterable[Any] = (), credentials: Iterable[Any] = (),
            require_credential: bool = False, identities: Any = None,
            timeout: float | None = None) -> SecureChannel:
        """Open a secure channel to the listener at the end of ``route`` (e.g.
        ``"1#127.0.0.1:4000/api"``) as ``identity``; the peer must satisfy ``trust``. Returns
        the open :class:`~trust.channels.workers.SecureChannel` (``channel.route / "echo"``
        reaches the peer's ``echo``). A failed handshake raises its typed error and leaves
        nothing registered; one not done within ``timeout`` (30 s) raises
        :class:`~trust.channels.workers.ChannelTimeoutError`.

        It returns as soon as this side has verified the peer and sent message 3 (Noise XX):
        a responder that then refuses this side answers with Close, and the channel closes
        one round trip later (it leaves :meth:`secure_channels`; ``channel.closed``; sending
        to its route raises :class:`~trust.errors.NotFoundError`). Messages sent in between
        are dropped by the responder, never delivered."""
        from trust.channels import workers

        ident = await workers.channel_identity(identity, identities=identities,
                                               credentials=credentials)
        return await workers.create_secure_channel(
            self, ident, route, trust=trust, authorities=authorities,
            require_credential=require_credential,
            timeout=workers.DEFAULT_HANDSHAKE_TIMEOUT if timeout is None else timeout)

    def secure_channels(self) -> list[SecureChannel]:
        """The open secure channels of this node (both initiated and accepted)."""
        return list(self._channels.values())

    def secure_channel_listeners(self) -> list[SecureChannelListener]:
        """The running secure-channel listeners."""
        return list(self._channel_listeners.values())

    def secure_channel(self, address: Address | str) -> SecureChannel:
        """The open channel whose address (encryptor) is ``address``."""
        addr = Address.parse(address)
        channel = self._channels.get(addr)
        if channel is None:
            raise NotFoundError(f"no secure channel {safe_text(str(addr))} on node {self.name}")
        return channel  # type: ignore[no-any-return]

    async def delete_secure_channel(self, address: Address | str) -> None:
        """Close the channel at ``address`` (sends Close to its peer)."""
        await self.secure_channel(address).close()

    async def delete_secure_channel_listener(self, address: Address | str) -> None:
        """Stop the listener at ``address``: the channels it accepted are closed (Close is
        sent to each peer) and its handshakes in progress abandoned."""
        addr = Address.parse(address)
        if addr not in self._channel_listeners:
            raise NotFoundError(f"no secure-channel listener {safe_text(str(addr))} on node "
                                f"{self.name}")
        await self.stop_worker(addr)

    def register_secure_channel(self, channel: SecureChannel) -> None:
        self._channels[channel.address] = channel

    def unregister_secure_channel(self, channel: SecureChannel) -> None:
        if self._channels.get(channel.address) is channel:
            del self._channels[channel.address]

    def register_secure_channel_listener(self, listener: SecureChannelListener) -> None:
        self._channel_listeners[listener.address] = listener

    def unregister_secure_channel_listener(self, listener: SecureChannelListener) -> None:
        if self._channel_listeners.get(listener.address) is listener:
            del self._channel_listeners[listener.address]

    # -- introspection ---------------------------------------------------------------------------
    def workers(self) -> list[Address]:
        """Primary addresses of the running workers, processors and contexts."""
        return list(self._slots)

    def has_address(self, address: Address | str) -> bool:
        return Address.parse(address) in self._endpoints

    # -- stop ------------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Close transports, stop every worker and processor (shutdown hooks run), cancel tasks."""
        if self.stopped or self._stopping:
            return
        self._stopping = True
        try:
            for channel in list(self._channels.values()):  # (sends Close while transports run)
                try:
                    await channel.close()
                except Exception:
                    log.exception("secure channel %s failed to close", channel.address)
            for router in list(self._transports.values()):
                try:
                    await router.stop()
                except Exception:
                    log.exception("transport failed to stop")
            slots = list(self._slots.values())
            for slot in reversed(slots):
                self.unregister(slot)
            tasks = [s.task for s in slots if s.task is not None and not s.task.done()
                     and s.task is not asyncio.current_task()]
            tasks += [t for t in self._connect_tasks if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            for slot in reversed(slots):
                await self._shutdown_hook(slot)
        finally:
            self._endpoints.clear()
            self._main = None
            self.stopped = True
