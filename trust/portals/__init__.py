"""TCP portals (Ockam's inlets and outlets): TCP connections carried as routed messages,
usually through secure channels and relays. See :mod:`trust.portals.portal` and
``docs/portals.md``."""

from trust.portals.messages import MAX_PAYLOAD_SIZE
from trust.portals.portal import (
    PortalConnection,
    PortalStats,
    TcpInlet,
    TcpOutlet,
    allow_all,
    create_inlet,
    create_outlet,
)

__all__ = [
    "MAX_PAYLOAD_SIZE",
    "PortalConnection",
    "PortalStats",
    "TcpInlet",
    "TcpOutlet",
    "allow_all",
    "create_inlet",
    "create_outlet",
]
