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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

from trust.errors import ConflictError, NotFoundError, UsageError
from trust.node.access_control import AccessControl, RelayMessage
from trust.node.context import DEFAULT_TIMEOUT, Context
from trust.node.errors import NodeStoppedError, UnknownAddressError
from trust.node.flow_control import FlowControlId, FlowControls
from trust.node.mailbox import DEFAULT_MAILBOX_SIZE, Mailbox, MailboxClosedError
from trust.node.worker import FunctionWorker, InlineWorker, Processor, Worker
from trust.routing import LOCAL, TCP, Address, LocalMessage, Route, RouteLike

if TYPE_CHECKING:
    from trust.transports.tcp import TcpConnection, TcpListener, TcpTransport

__all__ = ["Endpoint", "Node", "NodeStats", "TransportRouter"]

log = logging.getLogger("trust.node")

_YIELD_EVERY = 64
"""A worker yields to the event loop after this many messages handled without waiting."""

_INLINE_DEPTH = 8
"""How many inline workers may run nested (e.g. hop → hop → echo) before messages queue."""


class Endpoint(Protocol):
    """Something registered at an address: a worker's mailbox or a connection's sender."""

    incoming: AccessControl | None
    producer_flow: FlowControlId | None

    def offer(self, msg: LocalMessage) -> bool: ...
    def on_space(self, callback: Any) -> None: ...
    async def wait_space(self) -> None: ...


class TransportRouter(Protocol):
    """A transport that turns its addresses (e.g. ``1#host:port``) into a local sender address."""

    async def resolve(self, address: Address) -> Address: ...
    async def stop(self) -> None: ...


@dataclass(slots=True)
class NodeStats:
    """Counters of dropped messages (each is also logged)."""

    refused_by_flow_control: int = 0
    denied_incoming: int = 0
    denied_outgoing: int = 0
    unknown_address: int = 0
    worker_errors: int = 0
    disconnected_peers: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Slot:
    """A registered worker, processor or detached context (an :class:`Endpoint`)."""

    __slots__ = ("addresses", "busy", "ctx", "incoming", "kind", "mailbox", "offer", "on_space",
                 "outgoing", "producer_flow", "runner", "shut_down", "task", "wait_space")

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
        self.ctx: Context
        # the Endpoint interface, bound straight to the mailbox (saves a call per message)
        self.offer = mailbox.offer
        self.on_space = mailbox.on_space
        self.wait_space = mailbox.wait_space


def _access(ac: AccessControl | None) -> AccessControl | None:
    from trust.node.access_control import AllowAll

    return None if ac is None or ac is AllowAll else ac


class Node:
    """An asyncio messaging node (workers, processors, transports, flow control).

    Create one with ``Node(name)`` inside a running event loop (or ``await Node.create(name)``)
    and stop it with :meth:`stop` or ``async with``.
    """

    def __init__(self, name: str = "node", *, mailbox_size: int = DEFAULT_MAILBOX_SIZE) -> None:
        self.name = name
        self.mailbox_size = mailbox_size
        self.flow_controls = FlowControls()
        self._fc_consumers = self.flow_controls._consumers
        self.stats = NodeStats()
        self.listener_consumers: set[str] = {"echo", "hop"}
        """Local addresses every new TCP listener admits by default."""
        self.identity: Any = None
        """The identity this node carries (set by whoever starts it; unused by routing)."""
        self._endpoints: dict[Address, Any] = {}
        self._slots: dict[Address, _Slot] = {}
        self._transports: dict[int, TransportRouter] = {}
        self._tcp: TcpTransport | None = None
        self._main: Context | None = None
        self._stopping = False
        self._inline_depth = 0
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
                  mailbox_size: int | None) -> _Slot:
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
        slot = _Slot(addrs, kind, Mailbox(mailbox_size or self.mailbox_size), _access(incoming),
                     _access(outgoing), runner)
        slot.ctx = Context(self, slot)
        for a in addrs:
            self._endpoints[a] = slot
        self._slots[addrs[0]] = slot
        return slot

    def _unregister(self, slot: _Slot) -> None:
        if self._slots.get(slot.addresses[0]) is not slot:
            return
        del self._slots[slot.addresses[0]]
        for a in slot.addresses:
            if self._endpoints.get(a) is slot:
                del self._endpoints[a]
            self.flow_controls.remove_consumer(a)
        slot.mailbox.close()

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

    # -- workers ---------------------------------------------------------------------------------
    async def start_worker(self, address: Address | str | Iterable[Address | str],
                           worker: Worker | Any, *,
                           incoming: AccessControl | None = None,
                           outgoing: AccessControl | None = None,
                           mailbox_size: int | None = None) -> Context:
        """Start ``worker`` at ``address`` (or several addresses; the first is primary).

        ``worker`` is a :class:`Worker` or an ``async def handler(ctx, msg)``. ``incoming`` and
        ``outgoing`` are access controls (default: allow all). Returns the worker's context.
        """
        if not isinstance(worker, Worker):
            if not callable(worker):
                raise UsageError("a worker is a Worker or an async function (ctx, msg)")
            worker = FunctionWorker(worker)
        addrs = [address] if isinstance(address, (Address, str)) else list(address)
        slot = self._register(addrs, "worker", worker, incoming=incoming, outgoing=outgoing,
                              mailbox_size=mailbox_size)
        if isinstance(worker, InlineWorker):
            slot.offer = self._inline_offer(slot, worker)
        slot.task = asyncio.get_running_loop().create_task(
            self._run_worker(slot), name=f"worker {slot.addresses[0]}")
        return slot.ctx

    def _inline_offer(self, slot: _Slot, worker: InlineWorker) -> Any:
        """The ``offer`` of an inline worker: handle at once when idle, else queue."""
        mailbox = slot.mailbox
        items = mailbox._items
        ctx = slot.ctx
        handle_now = worker.handle_now
        stats = self.stats

        def offer(msg: LocalMessage) -> bool:
            if items or slot.busy or self._inline_depth >= _INLINE_DEPTH or mailbox.closed:
                return mailbox.offer(msg)
            self._inline_depth += 1
            try:
                if handle_now(ctx, msg):
                    return True
            except Exception:
                stats.worker_errors += 1
                log.exception("worker at %s failed to handle a message", slot.addresses[0])
                return True
            finally:
                self._inline_depth -= 1
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
        if not isinstance(slot, _Slot) or self._slots.get(slot.addresses[0]) is not slot:
            raise UnknownAddressError(f"no worker at address {addr} on node {self.name}")
        await self._stop_slot(slot)

    async def _stop_slot(self, slot: _Slot) -> None:
        self._unregister(slot)
        task = slot.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
        await self._shutdown_hook(slot)

    async def _shutdown_hook(self, slot: _Slot) -> None:
        """Run the worker's or processor's ``shutdown`` once."""
        if slot.shut_down or slot.runner is None:
            return
        slot.shut_down = True
        try:
            await slot.runner.shutdown(slot.ctx)
        except Exception:
            log.exception("%s at %s failed to shut down", slot.kind, slot.addresses[0])

    async def _run_worker(self, slot: _Slot) -> None:
        ctx = slot.ctx
        worker = slot.runner
        try:
            await worker.initialize(ctx)
        except Exception:
            log.exception("worker at %s failed to initialize; stopping it", slot.addresses[0])
            self._unregister(slot)
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
            except Exception:
                stats.worker_errors += 1
                log.exception("worker at %s failed to handle a message", slot.addresses[0])
            finally:
                slot.busy = False
            handled += 1
            if handled >= _YIELD_EVERY:
                handled = 0
                await asyncio.sleep(0)

    async def _run_processor(self, slot: _Slot) -> None:
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
        self._unregister(slot)
        await self._shutdown_hook(slot)

    # -- routing ---------------------------------------------------------------------------------
    async def _send(self, msg: LocalMessage, source: Address,
                    outgoing: AccessControl | None) -> bool:
        """Route a locally sent message to its first onward hop (waiting for space)."""
        onward = msg.onward_route._addrs
        if not onward:
            raise UsageError("cannot send a message with an empty onward route")
        dst = onward[0]
        ep = self._endpoints.get(dst)
        if ep is None:
            if dst.tt != LOCAL:
                router = self._transports.get(dst.tt)
                if router is None and dst.tt == TCP and not self._stopping:
                    router = self.tcp
                if router is None:
                    raise NotFoundError(f"no transport can reach {dst} on node {self.name}")
                dst = await router.resolve(dst)
                msg = msg.replace_front_onward(dst)
                ep = self._endpoints.get(dst)
            if ep is None:
                if self._stopping:
                    raise NodeStoppedError(f"node {self.name} is stopping")
                raise UnknownAddressError(f"no worker at address {dst} on node {self.name}")
        if outgoing is not None and not outgoing(RelayMessage(source, dst, msg)):
            self.stats.denied_outgoing += 1
            log.warning("message from %s to %s denied by outgoing access control", source, dst)
            return False
        incoming = ep.incoming
        if incoming is not None and not incoming(RelayMessage(source, dst, msg)):
            self.stats.denied_incoming += 1
            log.warning("message from %s to %s denied by incoming access control", source, dst)
            return False
        flow = ep.producer_flow
        if flow is not None:
            consumers = self._fc_consumers.get(flow)
            if consumers is None or source not in consumers:
                self.flow_controls.add_consumer(source, flow)
        while not ep.offer(msg):
            try:
                await ep.wait_space()
            except MailboxClosedError:
                raise UnknownAddressError(f"{dst} stopped before the message could be "
                                          "delivered") from None
        return True

    def _try_send(self, msg: LocalMessage, source: Address,
                  outgoing: AccessControl | None) -> bool | None:
        """Like :meth:`_send` without waiting: ``None`` (nothing done) when it would wait,
        else ``True`` (delivered) or ``False`` (dropped by an access control)."""
        onward = msg.onward_route._addrs
        if not onward:
            raise UsageError("cannot send a message with an empty onward route")
        dst = onward[0]
        ep = self._endpoints.get(dst)
        if ep is None:
            if dst.tt != LOCAL:
                router = self._transports.get(dst.tt)
                resolve_nowait = getattr(router, "resolve_nowait", None)
                local = resolve_nowait(dst) if resolve_nowait is not None else None
                if local is None:
                    return None
                dst = local
                msg = msg.replace_front_onward(dst)
                ep = self._endpoints.get(dst)
            if ep is None:
                raise UnknownAddressError(f"no worker at address {dst} on node {self.name}")
        if outgoing is not None and not outgoing(RelayMessage(source, dst, msg)):
            self.stats.denied_outgoing += 1
            log.warning("message from %s to %s denied by outgoing access control", source, dst)
            return False
        incoming = ep.incoming
        if incoming is not None and not incoming(RelayMessage(source, dst, msg)):
            self.stats.denied_incoming += 1
            log.warning("message from %s to %s denied by incoming access control", source, dst)
            return False
        flow = ep.producer_flow
        if flow is not None:
            consumers = self._fc_consumers.get(flow)
            if consumers is None or source not in consumers:
                self.flow_controls.add_consumer(source, flow)
        return True if ep.offer(msg) else None

    def remote_delivery(self, flow_id: FlowControlId, spawner_id: FlowControlId | None,
                        source: Address, local_info: tuple[Any, ...]
                        ) -> Callable[[LocalMessage], Endpoint | None]:
        """The delivery function of a producer (a TCP connection's receiver).

        It pushes ``source`` (the connection's sender address) onto each message's return
        route, attaches ``local_info``, then delivers like :meth:`deliver_remote`: ``None``
        when delivered or dropped, else the endpoint whose mailbox is full.
        """
        fc = self._fc_consumers
        endpoints = self._endpoints
        prefix = (source,)
        new_route = Route._of
        last_ret: Route | None = None
        last_pushed: Route | None = None

        def deliver(msg: LocalMessage) -> Endpoint | None:
            nonlocal last_ret, last_pushed
            ret = msg.return_route
            if ret is last_ret:
                msg.return_route = last_pushed  # type: ignore[assignment]
            else:
                last_ret = ret
                last_pushed = msg.return_route = new_route(prefix + ret._addrs)
            msg.local_info = local_info
            dst = msg.onward_route._addrs[0]
            consumers = fc.get(flow_id)
            if (consumers is None or dst not in consumers) and (
                    spawner_id is None or (consumers := fc.get(spawner_id)) is None
                    or dst not in consumers):
                self._refused(msg, flow_id, source)
                return None
            ep = endpoints.get(dst)
            if ep is None:
                self.stats.unknown_address += 1
                log.warning("message from %s to unknown address %s dropped", source, dst)
                return None
            incoming = ep.incoming
            if incoming is not None and not incoming(RelayMessage(source, dst, msg)):
                self.stats.denied_incoming += 1
                log.warning("message from %s to %s denied by incoming access control", source,
                            dst)
                return None
            if ep.offer(msg):
                return None
            return ep  # type: ignore[no-any-return]

        return deliver

    def _refused(self, msg: LocalMessage, flow_id: FlowControlId, source: Address) -> None:
        dst = msg.onward_route._addrs[0]
        self.stats.refused_by_flow_control += 1
        log.warning("message from %s to %s refused: %s does not accept messages of flow %s",
                    source, dst, dst, flow_id)

    def deliver_remote(self, msg: LocalMessage, flow_id: FlowControlId,
                       spawner_id: FlowControlId | None, source: Address) -> Endpoint | None:
        """Deliver a message that came out of a producer of ``flow_id`` (a TCP receiver),
        which ``spawner_id`` (a TCP listener's flow, if any) spawned.

        Drops (and counts) messages the flow does not admit. Returns ``None`` when the
        message was delivered or dropped, or the endpoint whose mailbox is full: the caller
        stops reading and retries after :meth:`Endpoint.on_space`.
        """
        dst = msg.onward_route._addrs[0]
        fc = self._fc_consumers
        consumers = fc.get(flow_id)
        if (consumers is None or dst not in consumers) and (
                spawner_id is None or (consumers := fc.get(spawner_id)) is None
                or dst not in consumers):
            self._refused(msg, flow_id, source)
            return None
        ep = self._endpoints.get(dst)
        if ep is None:
            self.stats.unknown_address += 1
            log.warning("message from %s to unknown address %s dropped", source, dst)
            return None
        incoming = ep.incoming
        if incoming is not None and not incoming(RelayMessage(source, dst, msg)):
            self.stats.denied_incoming += 1
            log.warning("message from %s to %s denied by incoming access control", source, dst)
            return None
        if ep.offer(msg):
            return None
        return ep  # type: ignore[no-any-return]

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

            self._tcp = TcpTransport(self)
        return self._tcp

    async def create_tcp_listener(self, address: str = "127.0.0.1:0", *,
                                  consumers: Iterable[Address | str] | None = None
                                  ) -> TcpListener:
        """Listen for TCP connections; ``consumers`` (default: :attr:`listener_consumers`)."""
        return await self.tcp.listen(address, consumers=consumers)

    async def connect_tcp(self, address: str) -> TcpConnection:
        """Connect (or reuse the connection) to a TCP peer ``host:port``."""
        return await self.tcp.connect(address)

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
            for router in list(self._transports.values()):
                try:
                    await router.stop()
                except Exception:
                    log.exception("transport failed to stop")
            slots = list(self._slots.values())
            for slot in reversed(slots):
                self._unregister(slot)
            tasks = [s.task for s in slots if s.task is not None and not s.task.done()
                     and s.task is not asyncio.current_task()]
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
