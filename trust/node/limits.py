"""A node's default TCP limits (its options override them): here, not in
:mod:`trust.node.node`, so the CLI reads them without importing the runtime."""

from __future__ import annotations

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_CONNECTIONS",
           "DEFAULT_STALL_TIMEOUT"]

DEFAULT_MAX_CONNECTIONS = 10_000
"""Open TCP connections a node accepts (in and out); more are closed at once and counted."""
DEFAULT_IDLE_TIMEOUT = 300.0
"""A TCP connection with no bytes in either direction for this long is closed (seconds)."""
DEFAULT_STALL_TIMEOUT = 60.0
"""A TCP connection whose full write buffer drains nothing for this long is closed (seconds)."""
DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds an outgoing TCP connection may take to open."""
