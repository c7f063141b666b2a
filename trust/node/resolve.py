"""Turn the route text users type into a :class:`~trust.routing.Route`, resolving node names.

``/node/NAME`` becomes the TCP address of node NAME's first listener, read from its
``state.json`` in the home directory (the node must be running).
"""

from __future__ import annotations

import os

from trust.errors import NotFoundError, TrustError
from trust.node.files import NodePaths, read_json
from trust.routing import Route, parse_multiaddr

__all__ = ["node_listener_address", "route_from_text"]


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
