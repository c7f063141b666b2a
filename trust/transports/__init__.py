"""Transports that carry routed messages between nodes (TCP, wire-compatible with Ockam).

Names are loaded on first use (:mod:`trust.lazy_exports`): the address checks of
:mod:`trust.transports.addresses` come without the asyncio transport."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trust.lazy_exports import lazy_getattr

if TYPE_CHECKING:
    from trust.transports.addresses import split_host_port
    from trust.transports.tcp import (
        ConnectionFailedError,
        TcpConnection,
        TcpListener,
        TcpTransport,
    )

_EXPORTS = {
    **dict.fromkeys(("ConnectionFailedError", "TcpConnection", "TcpListener", "TcpTransport"),
                    "trust.transports.tcp"),
    "split_host_port": "trust.transports.addresses",
}

__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())

__all__ = [
    "ConnectionFailedError",
    "TcpConnection",
    "TcpListener",
    "TcpTransport",
    "split_host_port",
]
