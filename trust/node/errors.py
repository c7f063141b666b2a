"""Errors of the node runtime (all are :class:`~trust.errors.TrustError`)."""

from __future__ import annotations

from trust.errors import NotFoundError, TrustError

__all__ = ["NodeStoppedError", "ReceiveTimeoutError", "UnknownAddressError"]


class ReceiveTimeoutError(TrustError, TimeoutError):
    """No message arrived within the timeout."""


class UnknownAddressError(NotFoundError):
    """No worker (or connection) is registered at the address."""


class NodeStoppedError(TrustError):
    """The node (or the context) has stopped."""
