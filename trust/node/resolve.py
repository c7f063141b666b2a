"""Turn the route text users type into a :class:`~trust.routing.Route`, resolving node names.

``/node/NAME`` becomes the TCP address of node NAME's first listener, read from its
``state.json`` in the home directory (the node must be running).

``/secure/NAME`` in a route a message is sent along means "open a secure channel to the
listener NAME at the end of the route so far, and continue inside it":
:func:`secure_route_from_text` splits such a route into its channel legs, and
:func:`open_secure_route` opens them (each inside the previous one) and returns the route to
send along, with the channels to close once the reply is in.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from trust.errors import NotFoundError, TrustError
from trust.node.files import NodePaths, read_json
from trust.routing import Address, Route, parse_multiaddr
from trust.routing.multiaddr import MultiAddr

__all__ = [
    "SecureRoute",
    "close_channels",
    "node_listener_address",
    "open_secure_route",
    "require_destination",
    "route_from_text",
    "secure_route_from_text",
]


def node_listener_address(name: str, home: str | os.PathLike[str] | None = None) -> str:
    """``host:port`` of a running node's first TCP listener."""
    paths = NodePaths(name, home)
    paths.require()
    state = read_json(paths.state)
    if state is None or not paths.is_running():
        raise TrustError(f"node {name} is not running")
    listeners = state.get("listeners") or []
    if not listeners or not isinstance(listeners[0], str):
        raise NotFoundError(f"node {name} has no TCP listener")
    return listeners[0]


def route_from_text(text: str, home: str | os.PathLike[str] | None = None) -> Route:
    """Parse ``/ip4/.../tcp/.../service/echo``-style text (see :mod:`trust.routing.multiaddr`)."""
    return parse_multiaddr(text).to_route(lambda name: node_listener_address(name, home))


def require_destination(text: str, example: str = "/service/echo") -> MultiAddr:
    """Parse the route text a message is sent along (a syntax error raises) and refuse, as a
    :class:`~trust.errors.UsageError`, one that ends at a secure-channel listener
    (``/secure/NAME``): it names nothing to deliver to inside the channel (``example`` says
    what would)."""
    from trust.errors import UsageError

    addr = parse_multiaddr(text)
    if addr.segments[-1].protocol == "secure":
        raise UsageError(f"a route cannot end with /secure/NAME: add where to go inside the "
                         f"channel (e.g. {example})")
    return addr


MAX_SECURE_LEGS = 8
"""``/secure/NAME`` segments a route may hold (channels inside channels) at most."""


@dataclass(frozen=True, slots=True)
class SecureRoute:
    """A route with ``/secure/NAME`` segments: ``legs`` are (the route from where the previous
    channel ends, or from the sender, to the listener ``NAME``); ``rest`` follows the last
    channel. Without secure segments ``legs`` is empty and ``rest`` is the whole route."""

    legs: tuple[Route, ...]
    rest: Route

    @property
    def is_secure(self) -> bool:
        return bool(self.legs)


def secure_route_from_text(text: str, home: str | os.PathLike[str] | None = None) -> SecureRoute:
    """Parse route text, splitting it after each ``/secure/NAME`` segment (node names are
    resolved as in :func:`route_from_text`)."""
    from trust.errors import UsageError

    addr = parse_multiaddr(text)
    legs: list[Route] = []
    current: list[Any] = []

    def to_route(segments: list[Any]) -> Route:
        if not segments:
            return Route(())
        return MultiAddr(text, tuple(segments)).to_route(
            lambda name: node_listener_address(name, home))

    for seg in addr.segments:
        if seg.protocol == "secure":
            legs.append(to_route(current) / Address.parse(seg.value))
            current = []
            if len(legs) > MAX_SECURE_LEGS:
                raise UsageError(f"a route holds at most {MAX_SECURE_LEGS} /secure segments")
        else:
            current.append(seg)
    return SecureRoute(tuple(legs), to_route(current))


async def open_secure_route(route: SecureRoute,
                            open_channel: Callable[[Route], Awaitable[Any]]
                            ) -> tuple[Route, list[Any]]:
    """Open the channels of ``route`` in order, each along the previous one (``open_channel``
    opens one along a route and returns the channel); return the route to send along and the
    channels opened (close them, last first, when done). A failure closes those already open."""
    channels: list[Any] = []
    prefix = Route(())
    try:
        for leg in route.legs:
            channel = await open_channel(prefix + leg)
            channels.append(channel)
            prefix = channel.route
    except BaseException:
        await close_channels(channels)
        raise
    return prefix + route.rest, channels


async def close_channels(channels: list[Any]) -> None:
    """Close ``channels``, the last opened first."""
    for channel in reversed(channels):
        await channel.close()
