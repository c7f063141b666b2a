"""The relay client (wire spec §5.2): register a relay at another node and keep it registered.

:class:`RelayClient` runs on the node behind the relay. It opens a *link* to the node that
hosts relays (``connect()``: usually a secure channel to its ``api``), sends the registration
from its own address (``main_remote``) to ``static_forwarding_service`` (a name) or
``forwarding_service`` (``"register"``: ephemeral), and waits for the relay's notification
(its address, ``forward_to_NAME``). It then checks liveness by pinging the relay node's
``echo`` through the link (a CBOR unsigned integer, as Ockam's sessions do, §7): after
``max_missed`` pings without an answer (a ping counts as answered when the link received
records meanwhile: a busy link's echo may wait behind relayed traffic), or when the link
cannot be opened or the
registration is not confirmed, it closes the link and starts again after a back-off
(``backoff`` doubling up to ``max_backoff``). The same identity registering the same name
replaces the route at the relay node, so a client that lost its link simply registers again.

What comes through the relay reaches this node through the link: its flow admits only
``consumers`` (default ``api``, the secure-channel listener, and ``echo``); an end-to-end
secure channel to ``api`` through the relay is the normal use (portals do it). Messages that an
Elixir-style relay sends through ``main_remote`` are passed on from ``main_internal`` under
the same flow-control rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from trust.errors import DecodeError, TrustError, UsageError
from trust.logsafe import safe_text, warn_limited
from trust.node.errors import ReceiveTimeoutError
from trust.node.flow_control import FLOW_CONTROL_LOCAL_INFO
from trust.node.worker import Worker
from trust.relays.messages import (
    SERVICE,
    STATIC_SERVICE,
    check_relay_address,
    check_relay_name,
    decode_notification,
    encode_registration,
)
from trust.routing import Address, LocalMessage, Route

if TYPE_CHECKING:
    from trust.node.context import Context
    from trust.node.node import Node

__all__ = ["DEFAULT_CONSUMERS", "RelayClient", "encode_ping"]

log = logging.getLogger("trust.relays")

DEFAULT_CONSUMERS: Final = ("api", "echo")
"""What traffic through a relay may reach on the client node by default."""

Connect = Callable[[], Awaitable[Any]]
"""Opens a link to the relay node: an object with ``route`` (to that node's services) and
``async close()``; its ``flow_control_id`` (if any) is the flow what comes through it has."""


def encode_ping(n: int) -> bytes:
    """A ping: ``n`` as a CBOR unsigned integer (Ockam's ``Ping(u64)``)."""
    if n < 24:
        return bytes([n])
    for head, size in ((0x18, 1), (0x19, 2), (0x1A, 4), (0x1B, 8)):
        if n < 1 << (8 * size):
            return bytes([head]) + n.to_bytes(size, "big")
    raise ValueError("ping counter out of range")


class _ClientWorker(Worker):
    """``main_remote`` (and ``main_internal``): receives the relay's notification."""

    def __init__(self, client: RelayClient) -> None:
        self.client = client

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        onward = msg.onward_route.addresses
        if len(onward) == 1:
            self.client.notified(msg)
            return
        # an Elixir-style relay forwards through us: pass on what the flow admits
        nxt = msg.pop_front_onward()
        flow = msg.find_local_info(FLOW_CONTROL_LOCAL_INFO) if msg.local_info else None
        if flow is None:
            return
        flow_id = flow.decode("utf-8", "replace")
        if not ctx.node.flow_controls.may_relay(flow_id, nxt.onward_route.addresses[0]):
            ctx.node.refuse(nxt, flow_id, ctx.address)
            return
        await ctx.forward(nxt, from_address=self.client.main_internal)


class RelayClient:
    """Registers relay ``name`` (``None``: ephemeral) through the links ``connect`` opens, and
    keeps it registered until :meth:`stop`."""

    def __init__(self, node: Node, name: str | None, connect: Connect, *,
                 consumers: Iterable[str] = DEFAULT_CONSUMERS,
                 ping_interval: float = 1.0, ping_timeout: float = 2.0, max_missed: int = 2,
                 connect_timeout: float = 10.0, register_timeout: float = 5.0,
                 backoff: float = 0.2, max_backoff: float = 2.0) -> None:
        if name is not None:
            check_relay_name(name)
        for value in (ping_interval, ping_timeout, connect_timeout, register_timeout, backoff,
                      max_backoff):
            if not 0 < value <= 3600:
                raise UsageError("relay client intervals and timeouts must be in (0, 3600] s")
        if max_missed < 1:
            raise UsageError("max_missed must be at least 1")
        self.node = node
        self.name = name
        self.connect = connect
        self.consumers = tuple(consumers)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_missed = max_missed
        self.connect_timeout = connect_timeout
        self.register_timeout = register_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.main_remote = Address.random()
        self.main_internal = Address.random()
        self.state = "stopped"
        """``connecting`` (never registered yet), ``registered``, ``reconnecting``, ``stopped``."""
        self.remote_address: str | None = None
        """The relay's address at the relay node (``forward_to_NAME``), once registered."""
        self.peer: str | None = None
        """The relay node's identifier (when the link is a secure channel)."""
        self.registrations = 0
        self.registered_at: int | None = None
        self.created_at = int(time.time())
        self.last_error: str | None = None
        self.link: Any = None
        self._ctx: Context | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pending: asyncio.Future[str] | None = None
        self._registered = asyncio.Event()
        self._pings = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, *, wait: float | None = None) -> None:
        """Start registering; with ``wait``, return once registered (or raise the last error
        after ``wait`` seconds, having stopped)."""
        if self._task is not None:
            raise UsageError("the relay client is already started")
        self._ctx = await self.node.start_worker([self.main_remote, self.main_internal],
                                                 _ClientWorker(self))
        self.state = "connecting"
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name=f"relay client {self.name}")
        if wait is not None:
            try:
                await self.wait_registered(wait)
            except BaseException:
                await self.stop()
                raise

    async def wait_registered(self, timeout: float) -> None:
        """Return once the relay is registered; :class:`ReceiveTimeoutError` after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self._registered.wait()
        except TimeoutError:
            last = self.last_error
            if self._pending is not None:  # (the attempt under way says more than an old one)
                last = ("the relay node has not confirmed the registration (refused? see its "
                        "log)")
            elif last is None:
                last = "no secure channel to the relay node yet"
            why = f": {last}"
            raise ReceiveTimeoutError(f"relay {self.name or '(ephemeral)'} was not registered "
                                      f"within {timeout:g}s{why}") from None

    async def stop(self) -> None:
        """Stop re-registering and close the link (the relay node forgets the relay when it
        notices the link is gone, or when told: ``relay delete --at``)."""
        self.state = "stopped"
        self._stopping = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()  # (and the loop ends at its next turn, should a cancel be lost:
            # Python 3.11's asyncio.timeout may turn a cancel that meets its deadline into
            # TimeoutError)
            await asyncio.wait((task,), timeout=self.ping_timeout + 5)
        await self._close_link()
        if self.node.has_address(self.main_remote):
            with contextlib.suppress(TrustError):
                await self.node.stop_worker(self.main_remote)

    @property
    def is_registered(self) -> bool:
        return self._registered.is_set()

    @property
    def route(self) -> Route | None:
        """The route from this node to the relay (through the link), once registered."""
        if self.link is None or self.remote_address is None:
            return None
        return Route.of(self.link.route) / Address.local(self.remote_address)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "role": "created", "address": self.remote_address,
                "status": self.state, "peer": self.peer, "registrations": self.registrations,
                "registered_at": self.registered_at, "last_error": self.last_error,
                "created_at": self.created_at}

    # -- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.backoff
        while not self._stopping:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    self.link = await self.connect()
                self.peer = getattr(getattr(self.link, "peer", None), "identifier", None)
                self._admit(self.link)
                await self._register()
                delay = self.backoff
                await self._watch()
            except asyncio.CancelledError:
                raise
            except TrustError as e:  # (before TimeoutError: typed timeouts say more)
                self.last_error = safe_text(e, 400)
            except TimeoutError:
                self.last_error = (f"no secure channel to the relay node within "
                                   f"{self.connect_timeout:g}s")
            except Exception as e:  # whatever went wrong, the client goes on trying
                self.last_error = safe_text(e, 400)
                log.exception("relay client %s failed", self.name)
            self._registered.clear()
            if self._stopping:
                return
            self.state = "reconnecting" if self.registrations else "connecting"
            warn_limited(log, f"relay_client:{self.name}", "relay %s: %s; trying again in %.1fs",
                         self.name or "(ephemeral)", self.last_error, delay)
            await self._close_link()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    def _admit(self, link: Any) -> None:
        flow = getattr(link, "flow_control_id", None)
        if flow is not None:
            for consumer in self.consumers:
                self.node.flow_controls.add_consumer(consumer, flow)

    async def _register(self) -> None:
        assert self._ctx is not None
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending = fut
        service = SERVICE if self.name is None else STATIC_SERVICE
        try:
            await self._ctx.send(Route.of(self.link.route) / service,
                                 encode_registration(self.name))
            try:
                async with asyncio.timeout(self.register_timeout):
                    address = await fut
            except TimeoutError:
                raise ReceiveTimeoutError(
                    f"the relay node did not confirm the registration within "
                    f"{self.register_timeout:g}s (refused? see its log)") from None
        finally:
            self._pending = None
        self.remote_address = address
        self.registrations += 1
        self.registered_at = int(time.time())
        self.state = "registered"
        self.last_error = None
        self._registered.set()
        log.info("relay %s registered at %s", self.name or "(ephemeral)", address)

    def notified(self, msg: LocalMessage) -> None:
        """The relay's notification (or a stale one, ignored)."""
        fut = self._pending
        if fut is None or fut.done():
            return
        try:
            address = decode_notification(msg.payload, self.name)
        except DecodeError as e:
            fut.set_exception(e)
            return
        ret = msg.return_route.addresses
        if ret and ret[-1].is_local:  # Rust: the relay's address is the last return hop
            try:  # (checked as the notification's text is: it is shown and logged)
                address = check_relay_address(ret[-1].name, self.name)
            except DecodeError as e:
                fut.set_exception(e)
                return
        fut.set_result(address)

    def link_broken(self) -> bool:
        """Is the link's first hop (e.g. a channel's TCP connection) gone from this node?"""
        remote = getattr(self.link, "remote_route", None)
        if remote is None:
            return False
        addresses = Route.of(remote).addresses
        return bool(addresses) and addresses[0].is_local and not self.node.has_address(addresses[0])

    async def _watch(self) -> None:
        missed = 0
        while True:
            await asyncio.sleep(self.ping_interval)
            if self.link_broken():
                self.last_error = "the connection to the relay node was lost"
                return
            self._pings += 1
            ping = encode_ping(self._pings)
            received = getattr(self.link, "records_received", None)
            try:
                reply = await self.node.send_and_receive(Route.of(self.link.route) / "echo", ping,
                                                         timeout=self.ping_timeout)
                ok = reply == ping
            except TrustError:
                ok = False
            if not ok and received is not None and \
                    getattr(self.link, "records_received", received) != received:
                ok = True  # busy, not gone: records came meanwhile (relayed traffic queued ahead)
            missed = 0 if ok else missed + 1
            if missed >= self.max_missed:
                self.last_error = "the relay node stopped answering pings"
                return

    async def _close_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            with contextlib.suppress(TrustError, TimeoutError, OSError):
                async with asyncio.timeout(3):
                    await link.close()
