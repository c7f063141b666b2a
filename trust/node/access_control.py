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

from collections.abc import Awaitable, Callable, Iterable
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


AccessControl = Callable[[RelayMessage], "bool | Awaitable[bool]"]
"""Sync (``bool``) on the fast path, or asynchronous (an awaitable of ``bool``, e.g. a policy
read from a database): the node awaits it in a task before the message reaches the worker's
mailbox; messages to one worker keep their order."""


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
                self.data is None or getattr(info, "data", None) == self.data
            ):
                return True
        return False


def all_of(*controls: AccessControl) -> AccessControl:
    """Allowed when every control allows (asynchronous controls are awaited in order)."""
    def check(relay: RelayMessage) -> bool | Awaitable[bool]:
        for i, c in enumerate(controls):
            r = c(relay)
            if r is True:
                continue
            if hasattr(r, "__await__"):
                return _rest(r, controls[i + 1 :], relay, want=True)  # type: ignore[arg-type]
            if not r:
                return False
        return True

    return check


def any_of(*controls: AccessControl) -> AccessControl:
    """Allowed when at least one control allows (asynchronous controls are awaited in order)."""
    def check(relay: RelayMessage) -> bool | Awaitable[bool]:
        for i, c in enumerate(controls):
            r = c(relay)
            if r is True:
                return True
            if hasattr(r, "__await__"):
                return _rest(r, controls[i + 1 :], relay, want=False)  # type: ignore[arg-type]
        return False

    return check


async def _rest(first: Awaitable[bool], rest: tuple[AccessControl, ...], relay: RelayMessage, *,
                want: bool) -> bool:
    """Finish all_of (``want``: every control must allow) or any_of (one must)."""
    r: object = await first
    for c in rest:
        if bool(r) is not want:
            return not want
        r = c(relay)
        if hasattr(r, "__await__"):
            r = await r  # type: ignore[misc]
    return bool(r)
