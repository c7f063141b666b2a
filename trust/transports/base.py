"""What a transport is to a node, and which transports a node can make.

A **transport** carries routed messages between nodes and turns its own addresses (TCP:
``1#host:port``) into the local address of a connection's sender, which the node then
delivers to like any other endpoint. It implements :class:`Transport`; the node keeps one per
address type (``node.transport(tt)``, ``node.register_transport(tt, transport)``) and asks it
whenever a route's next hop has that type.

:func:`register_transport_type` names the factory that builds a node's transport of a type on
first use: TCP (type 1) is registered here, so ``node.tcp`` and any ``1#host:port`` hop work
without setup. The connections of the TCP transport and the raw sockets of TCP portals share
one stream-connection base (:mod:`trust.transports.stream`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from trust.routing import TCP, Address

if TYPE_CHECKING:
    from trust.node.node import Node

__all__ = [
    "Transport",
    "TransportFactory",
    "register_transport_type",
    "transport_factory",
    "unregister_transport_type",
]


class Transport(Protocol):
    """A transport of one address type, owned by one node."""

    @property
    def transport_type(self) -> int:
        """The address type it resolves (TCP: 1)."""
        ...

    async def resolve(self, address: Address, *, remote: bool = False) -> Address:
        """The local sender address that reaches ``address`` (connecting when needed).
        ``remote``: on behalf of a remote peer (the transport may refuse)."""
        ...

    def resolve_nowait(self, address: Address) -> Address | None:
        """The sender address of an open connection to ``address``, or ``None``."""
        ...

    async def stop(self) -> None:
        """Close every listener and connection."""
        ...


TransportFactory = Callable[["Node"], Transport]
"""Builds a node's transport (it registers itself with ``node.register_transport``)."""

_FACTORIES: dict[int, TransportFactory] = {}


def register_transport_type(tt: int, factory: TransportFactory) -> None:
    """Let nodes build their transport for address type ``tt`` with ``factory`` on first use."""
    _FACTORIES[tt] = factory


def unregister_transport_type(tt: int) -> None:
    """Forget the factory of address type ``tt`` (nodes' existing transports stay)."""
    _FACTORIES.pop(tt, None)


def transport_factory(tt: int) -> TransportFactory | None:
    """The factory registered for address type ``tt`` (``None``: nodes cannot reach it)."""
    return _FACTORIES.get(tt)


def _tcp(node: Node) -> Transport:
    from trust.transports.tcp import TcpTransport

    return TcpTransport(node, hop_allow=node.hop_allow, **node.tcp_options)


register_transport_type(TCP, _tcp)
