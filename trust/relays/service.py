"""The relay service (Ockam's ``forwarding_service``, wire spec §5.1) and its relays.

A node behind a firewall registers a *relay* at a node others can reach: a worker at
``forward_to_NAME`` there that forwards every message it gets to the registering node, along
the route the registration came by (typically a secure channel the client opened). Traffic
through a relay goes straight to the client node (the relay prepends the registration's return
route without its last hop, the client's own address, as Ockam's Rust relay does) and replies
do not pass through the relay at all.

Registration rules (each refusal is a typed error, logged and counted; the registrant gets no
answer, as with Ockam, and nothing changes):

* the payload is one BARE string: ``"register"`` (ephemeral: a random name) or a name
  (:mod:`trust.relays.messages`), else :class:`~trust.errors.DecodeError`;
* with ``authorities`` (the node has an authority) the registration must come through a secure
  channel whose peer holds attribute ``ockam-relay`` = ``"*"`` or the name, in a credential from
  one of them, else :class:`~trust.errors.UntrustedError`;
* a name held by another identity's *live* registration is refused
  (:class:`~trust.errors.ConflictError`: no hijacking). A registration is live while the first
  hop of its route (the channel's encryptor, or the TCP connection) exists on this node, and
  the connection under that channel too. The
  same identity registering the name again replaces the route (a client that reconnected);
* at most ``max_relays`` relays, ``max_per_owner`` per identity, names of at most 128
  characters, return routes of at most :data:`MAX_ROUTE_HOPS` hops.

Relays are reachable like the service: every TCP listener and secure-channel listener of the
node admits them (flow control). What passes through a relay is not checked by policy: it is
the client's business (an end-to-end secure channel inside, as portals use).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from trust.channels.access import subject_of
from trust.channels.local_info import channel_info
from trust.errors import ConflictError, NotFoundError, RemoteProtocolError, TrustError, UntrustedError
from trust.logsafe import safe_text, warn_limited
from trust.node.worker import Worker
from trust.relays.messages import (
    PREFIX,
    SERVICE,
    STATIC_SERVICE,
    check_relay_name,
    decode_registration,
    encode_notification,
    random_name,
    relay_address,
)
from trust.routing import Address, LocalMessage, Route

if TYPE_CHECKING:
    from trust.node.access_control import AccessControl
    from trust.node.context import Context
    from trust.node.node import Node

__all__ = [
    "DEFAULT_MAX_PER_OWNER",
    "DEFAULT_MAX_RELAYS",
    "MAX_ROUTE_HOPS",
    "RELAY_ATTRIBUTE",
    "Relay",
    "RelayService",
    "RelayServiceStats",
    "start_relay_service",
]

log = logging.getLogger("trust.relays")

DEFAULT_MAX_RELAYS: Final = 1024
"""Relays a node hosts at most."""
DEFAULT_MAX_PER_OWNER: Final = 64
"""Relays one identity may hold at one node at most."""
MAX_ROUTE_HOPS: Final = 16
"""Hops a registration's return route may have at most."""
RELAY_ATTRIBUTE: Final = "ockam-relay"
"""The credential attribute that allows registering relays (``*`` or the relay's name)."""


@dataclass(slots=True)
class RelayServiceStats:
    registrations: int = 0
    """Registrations accepted (new relays and replaced routes)."""
    refused: int = 0
    """Registrations refused (malformed, unauthorized, hijack attempts, over a limit)."""
    messages: int = 0
    """Messages forwarded by all relays."""
    undeliverable: int = 0
    """Messages a relay could not pass on (its client's route is gone)."""


@dataclass(eq=False, slots=True)
class Relay:
    """One hosted relay: its name, address, owner and the route to its client."""

    name: str
    address: Address
    owner: str | None
    """The registrant's identifier (``None``: it registered without a secure channel)."""
    forward_route: Route
    """Prepended to every message's onward route (the registration's return route, without
    the client's own address)."""
    reply_route: Route
    """The registration's whole return route (where notifications go)."""
    ephemeral: bool
    created_at: int
    updated_at: int
    registrations: int = 1
    messages: int = 0
    bytes: int = 0
    ctx: Any = field(default=None, repr=False)

    def to_dict(self, live: bool) -> dict[str, Any]:
        return {"name": self.name, "role": "hosted", "address": self.address.name,
                "owner": self.owner, "live": live, "ephemeral": self.ephemeral,
                "forward_route": " ".join(str(a) for a in self.forward_route.addresses),
                "created_at": self.created_at, "updated_at": self.updated_at,
                "registrations": self.registrations, "messages": self.messages,
                "bytes": self.bytes}


class _RelayWorker(Worker):
    """``forward_to_NAME``: prepends the relay's forward route and passes the message on."""

    takes_views = True  # (the payload is passed on untouched)

    def __init__(self, service: RelayService, relay: Relay) -> None:
        self.service = service
        self.relay = relay

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        relay = self.relay
        onward = msg.onward_route.addresses
        out = LocalMessage(Route.from_tuple(relay.forward_route.addresses + onward[1:]),
                           msg.return_route, msg.payload, msg.local_info, msg.tracing_context)
        node = ctx.node
        ret = msg.return_route.addresses
        if ret:  # replies go straight back, around the relay: let the two flows meet
            fc = node.flow_controls
            nxt, prev = out.onward_route.addresses[0], ret[0]
            f_next = fc.flow_of_producer(nxt)
            if f_next is not None and not fc.is_consumer(prev, f_next):
                fc.add_consumer(prev, f_next)
            f_prev = fc.flow_of_producer(prev)
            if f_prev is not None and not fc.is_consumer(nxt, f_prev):
                fc.add_consumer(nxt, f_prev)
        try:
            await ctx.forward(out)
        except NotFoundError as e:
            self.service.stats.undeliverable += 1
            warn_limited(log, "relay_gone", "relay %s: its client is gone (%s); message dropped",
                         relay.name, safe_text(e))
            return
        relay.messages += 1
        relay.bytes += len(msg.payload)
        self.service.stats.messages += 1


class RelayService(Worker):
    """The relay service of one node (start it with :func:`start_relay_service`)."""

    def __init__(self, node: Node, *, authorities: Iterable[str] = (), prefix: str = PREFIX,
                 max_relays: int = DEFAULT_MAX_RELAYS,
                 max_per_owner: int = DEFAULT_MAX_PER_OWNER,
                 now: Any = time.time) -> None:
        if max_relays < 1 or max_per_owner < 1:
            raise ValueError("max_relays and max_per_owner must be positive")
        self.node = node
        self.authorities = frozenset(authorities)
        self.prefix = prefix
        self.max_relays = max_relays
        self.max_per_owner = max_per_owner
        self.stats = RelayServiceStats()
        self._relays: dict[str, Relay] = {}
        self._now = now

    # -- the worker --------------------------------------------------------------------------
    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        try:
            await self.register(msg)
        except TrustError as e:
            self.stats.refused += 1
            info = channel_info(msg)
            warn_limited(log, "relay_refused", "relay registration%s refused: %s",
                         "" if info is None else f" from {info.identifier}", safe_text(e, 400))

    async def shutdown(self, ctx: Context) -> None:
        for relay in list(self._relays.values()):
            await self._remove(relay)

    # -- registration ------------------------------------------------------------------------
    def authorize(self, msg: LocalMessage, name: str | None) -> str | None:
        """The registrant of ``msg`` (its channel peer's identifier, ``None`` without a
        channel), when it may register ``name`` (``None``: ephemeral); else
        :class:`UntrustedError`."""
        info = channel_info(msg)
        if not self.authorities:
            return None if info is None else info.identifier
        if info is None:
            raise UntrustedError("this node has an authority: a relay is registered through a "
                                 "secure channel only")
        value = subject_of(info.peer, self.authorities).attributes.get(RELAY_ATTRIBUTE)
        if value != "*" and (name is None or value != name):
            wanted = "'*'" if name is None else f"'*' or {name!r}"
            raise UntrustedError(f"{info.identifier} may not register relay "
                                 f"{name or '(ephemeral)'}: its credential's {RELAY_ATTRIBUTE} "
                                 f"attribute is {safe_text(value) if value else 'missing'}, "
                                 f"not {wanted}")
        return info.identifier

    async def register(self, msg: LocalMessage) -> Relay:
        """Handle one registration message (see the module's rules); return the relay, new or
        with its route replaced. Every refusal raises a typed error and changes nothing."""
        requested = decode_registration(msg.payload)
        ret = msg.return_route.addresses
        if not ret:
            raise RemoteProtocolError("a relay registration without a return route")
        if len(ret) > MAX_ROUTE_HOPS:
            raise RemoteProtocolError(f"a relay registration's return route has {len(ret)} hops "
                                      f"(at most {MAX_ROUTE_HOPS})")
        owner = self.authorize(msg, requested)
        forward = Route.from_tuple(ret[:-1] if len(ret) > 1 else ret)
        reply = msg.return_route
        now = int(self._now())
        name = random_name() if requested is None else requested
        relay = self._relays.get(name)
        if relay is not None and (owner is None or relay.owner != owner):
            if self.is_live(relay):
                raise ConflictError(f"relay {name} is held by "
                                    f"{relay.owner or 'a registrant without a channel'}: "
                                    "another identity cannot take it over")
            if relay.owner != owner:  # one more relay for this identity
                await self._check_limits(owner, new=False)
                relay = self._relays.get(name)  # (a sweep may have removed it: made anew below)
            if relay is not None:
                log.info("relay %s: its route was gone; now held by %s", name, owner)
        if relay is not None:
            previous = (relay.owner, relay.forward_route, relay.reply_route, relay.updated_at)
            relay.owner, relay.forward_route, relay.reply_route = owner, forward, reply
            relay.updated_at = now
            try:
                await self._notify(relay)
            except BaseException:
                relay.owner, relay.forward_route, relay.reply_route, relay.updated_at = previous
                raise
            relay.registrations += 1
        else:
            await self._check_limits(owner)
            address = Address.local(relay_address(name, self.prefix))
            relay = Relay(name, address, owner, forward, reply, requested is None, now, now)
            relay.ctx = await self.node.start_worker(address, _RelayWorker(self, relay))
            self._relays[name] = relay
            try:
                await self._notify(relay)
            except BaseException:
                await self._remove(relay)
                raise
            self._admit(address)
        self.stats.registrations += 1
        log.info("relay %s registered by %s", name, owner or "a peer without a channel")
        return relay

    async def _notify(self, relay: Relay) -> None:
        """Tell the client its relay's address, from that address (it reads it from the
        return route). A route that leads nowhere raises :class:`NotFoundError`."""
        await relay.ctx.send(relay.reply_route, encode_notification(relay.address.name),
                             drop_when_full=True)

    async def _check_limits(self, owner: str | None, *, new: bool = True) -> None:
        """Refuse one more relay for ``owner`` (``new``: one more on this node too; else a
        relay another identity held, taken over)."""
        if new and len(self._relays) >= self.max_relays:
            await self.sweep()
            if len(self._relays) >= self.max_relays:
                raise ConflictError(f"this node hosts {self.max_relays} relays: no more")
        held = sum(1 for r in self._relays.values() if r.owner == owner)
        if held >= self.max_per_owner:
            await self.sweep()
            held = sum(1 for r in self._relays.values() if r.owner == owner)
        if held >= self.max_per_owner:
            raise ConflictError(f"{owner or 'a registrant without a channel'} holds "
                                f"{self.max_per_owner} relays here: no more")

    def _admit(self, address: Address) -> None:
        """Let the node's TCP and secure-channel listeners reach ``address``."""
        node = self.node
        node.listener_consumers.add(address.name)
        fc = node.flow_controls
        for listener in node.tcp.listeners:
            fc.add_consumer(address, listener.flow_control_id)
        for channel_listener in node.secure_channel_listeners():
            fc.add_consumer(address, channel_listener.flow_control_id)

    # -- introspection and management -------------------------------------------------------
    def is_live(self, relay: Relay) -> bool:
        """Does the relay's route still lead off this node: its hops on this node exist, up to
        the one that leaves it (a secure channel, whose own first hop, e.g. its TCP
        connection, must exist too; a TCP connection; a transport address)? Services of this
        node that pass a message on (``hop``) are walked through: a registration sent through
        them must not count as live once its channel is gone."""
        node = self.node
        connections: set[Address] | None = None
        for hop in relay.forward_route.addresses:
            if not hop.is_local:
                return True
            if not node.has_address(hop):
                return False
            try:
                channel = node.secure_channel(hop)
            except NotFoundError:
                if connections is None:
                    connections = {c.sender_address for c in node.tcp.connections}
                if hop in connections:
                    return True
                continue  # (a service of this node in front of the way out)
            under = channel.remote_route.addresses[0]
            return not under.is_local or node.has_address(under)
        return True  # (only services of this node: a local registrant)

    def relays(self) -> list[Relay]:
        return sorted(self._relays.values(), key=lambda r: r.name)

    def relay(self, name: str) -> Relay:
        relay = self._relays.get(check_relay_name(name) if name else name)
        if relay is None:
            raise NotFoundError(f"no relay {safe_text(name)} at node {self.node.name}")
        return relay

    def info(self, relay: Relay) -> dict[str, Any]:
        return relay.to_dict(self.is_live(relay))

    async def delete(self, name: str) -> None:
        """Remove relay ``name`` (its client may register it again)."""
        await self._remove(self.relay(name))

    async def sweep(self) -> int:
        """Remove relays whose route is gone; return how many."""
        dead = [r for r in self._relays.values() if not self.is_live(r)]
        for relay in dead:
            await self._remove(relay)
        return len(dead)

    async def _remove(self, relay: Relay) -> None:
        if self._relays.get(relay.name) is relay:
            del self._relays[relay.name]
        self.node.listener_consumers.discard(relay.address.name)
        if self.node.has_address(relay.address):
            try:
                await self.node.stop_worker(relay.address)
            except TrustError:
                pass


async def start_relay_service(node: Node, *, authorities: Iterable[str] = (),
                              incoming: AccessControl | None = None,
                              prefix: str = PREFIX, max_relays: int = DEFAULT_MAX_RELAYS,
                              max_per_owner: int = DEFAULT_MAX_PER_OWNER) -> RelayService:
    """Start the relay service at ``forwarding_service`` (and ``static_forwarding_service``)
    on ``node``; every TCP and secure-channel listener of the node admits it. ``authorities``:
    identifiers whose credentials' ``ockam-relay`` attribute allows registering; ``incoming``:
    the service's access control (a node uses its policies for resource ``forwarding_service``
    of type ``relay``)."""
    service = RelayService(node, authorities=authorities, prefix=prefix, max_relays=max_relays,
                           max_per_owner=max_per_owner)
    await node.start_worker([SERVICE, STATIC_SERVICE], service, incoming=incoming)
    for address in (SERVICE, STATIC_SERVICE):
        service._admit(Address.local(address))
    return service
