"""Per-worker access-control hooks.

An access control is a callable that sees a :class:`RelayMessage` (source address, destination
address and the message with its ``local_info``) and returns ``True`` to let it through.
A worker has an *incoming* one (checked before a message enters its mailbox) and an *outgoing*
one (checked when it sends). A denied message is dropped and counted in ``node.stats``.

>>> from trust.routing import Address, LocalMessage, Route
>>> ac = AllowSourceAddress("alice")
>>> ac(RelayMessage(Address.local("alice"), Address.local("bob"),
...                 LocalMessage(Route(["bob"]), Route(["alice"]), b"")))
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from trust.routing import Address, LocalMessage

__all__ = [
    "AccessControl",
    "AllowAll",
    "AllowLocalInfo",
    "AllowOnwardAddress",
    "AllowSourceAddress",
    "DenyAll",
    "RelayMessage",
    "all_of",
    "any_of",
]


class RelayMessage(NamedTuple):
    """What an access control sees: who sends, to which local address, and the message."""

    source: Address
    destination: Address
    message: LocalMessage


AccessControl = Callable[[RelayMessage], bool]


def AllowAll(relay: RelayMessage) -> bool:
    """Let everything through (the default)."""
    return True


def DenyAll(relay: RelayMessage) -> bool:
    """Let nothing through."""
    return False


def _addresses(values: Iterable[Address | str] | Address | str) -> frozenset[Address]:
    if isinstance(values, (Address, str)):
        values = [values]
    return frozenset(Address.parse(v) for v in values)


class AllowSourceAddress:
    """Only messages sent from one of the given local addresses."""

    __slots__ = ("addresses",)

    def __init__(self, addresses: Iterable[Address | str] | Address | str) -> None:
        self.addresses = _addresses(addresses)

    def __call__(self, relay: RelayMessage) -> bool:
        return relay.source in self.addresses


class AllowOnwardAddress:
    """Only messages whose next hop is one of the given addresses (an outgoing control)."""

    __slots__ = ("addresses",)

    def __init__(self, addresses: Iterable[Address | str] | Address | str) -> None:
        self.addresses = _addresses(addresses)

    def __call__(self, relay: RelayMessage) -> bool:
        return relay.destination in self.addresses


class AllowLocalInfo:
    """Only messages carrying a local-info entry of the given type (and data, if given)."""

    __slots__ = ("data", "type_identifier")

    def __init__(self, type_identifier: str, data: bytes | None = None) -> None:
        self.type_identifier = type_identifier
        self.data = data

    def __call__(self, relay: RelayMessage) -> bool:
        for info in relay.message.local_info:
            if info.type_identifier == self.type_identifier and (
                self.data is None or info.data == self.data
            ):
                return True
        return False


def all_of(*controls: AccessControl) -> AccessControl:
    """Allowed when every control allows."""
    return lambda relay: all(c(relay) for c in controls)


def any_of(*controls: AccessControl) -> AccessControl:
    """Allowed when at least one control allows."""
    return lambda relay: any(c(relay) for c in controls)
