"""Transports that carry routed messages between nodes (TCP, wire-compatible with Ockam)."""

from trust.transports.tcp import (
    ConnectionFailedError,
    TcpConnection,
    TcpListener,
    TcpTransport,
    split_host_port,
)

__all__ = [
    "ConnectionFailedError",
    "TcpConnection",
    "TcpListener",
    "TcpTransport",
    "split_host_port",
]
