"""Routes: ordered lists of addresses (Ockam's ``ockam_core::Route``).

``Route(["1#127.0.0.1:4000", "echo"])``, ``route / "echo"`` appends, ``str(route)`` is
``"1#127.0.0.1:4000 => 0#echo"`` and :meth:`Route.parse` reads it back. On the wire (CBOR) a
route is an array of addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Union, overload

from trust.errors import DecodeError, UsageError
from trust.models.cbor import head
from trust.routing.address import Address

__all__ = ["Route", "RouteLike"]

RouteLike = Union["Route", Address, str, Iterable[Address | str]]
"""What the API accepts where a route is expected: a Route, one address, address text, or a list."""


_PARSED: dict[str, Route] = {}
_PARSED_MAX = 1024


class Route:
    """An immutable sequence of :class:`Address` (the first one is the next hop)."""

    __slots__ = ("_addrs",)

    _addrs: tuple[Address, ...]

    def __init__(self, addresses: Iterable[Address | str] = ()) -> None:
        self._addrs = tuple(a if isinstance(a, Address) else Address.parse(a) for a in addresses)

    @classmethod
    def from_tuple(cls, addrs: tuple[Address, ...]) -> Route:
        """The route of an already-parsed tuple of addresses, without checking or copying (the
        fast path for the node's hot code; ``Route(addresses)`` checks and parses)."""
        r = cls.__new__(cls)
        r._addrs = addrs
        return r

    _of = from_tuple

    @classmethod
    def of(cls, value: RouteLike) -> Route:
        """Coerce a :data:`RouteLike` into a Route."""
        if isinstance(value, Route):
            return value
        if isinstance(value, Address):
            return cls._of((value,))
        if isinstance(value, str):
            r = _PARSED.get(value)
            if r is None:
                r = cls.parse(value)
                if len(_PARSED) >= _PARSED_MAX:
                    _PARSED.clear()
                _PARSED[value] = r
            return r
        return cls(value)

    @classmethod
    def parse(cls, text: str) -> Route:
        """Parse Ockam's display form: addresses separated by ``=>`` (``"1#h:1 => 0#echo"``)."""
        if not text.strip():
            return cls._of(())
        parts = [p.strip() for p in text.split("=>")]
        if any(not p for p in parts):
            raise UsageError(f"invalid route {text!r}: empty address between '=>'")
        return cls._of(tuple(Address.parse(p) for p in parts))

    # -- sequence --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._addrs)

    def __bool__(self) -> bool:
        return bool(self._addrs)

    def __iter__(self) -> Iterator[Address]:
        return iter(self._addrs)

    @overload
    def __getitem__(self, i: int) -> Address: ...
    @overload
    def __getitem__(self, i: slice) -> Route: ...
    def __getitem__(self, i: int | slice) -> Address | Route:
        if isinstance(i, slice):
            return Route._of(self._addrs[i])
        return self._addrs[i]

    @property
    def addresses(self) -> tuple[Address, ...]:
        return self._addrs

    def next(self) -> Address:
        """The first address; a :class:`UsageError` when the route is empty."""
        if not self._addrs:
            raise UsageError("the route is empty")
        return self._addrs[0]

    # -- building --------------------------------------------------------------------------------
    def __truediv__(self, other: RouteLike) -> Route:
        """``route / "echo"`` appends an address (or another route)."""
        if isinstance(other, Address):
            return Route._of((*self._addrs, other))
        if isinstance(other, str):
            return Route._of((*self._addrs, Address.parse(other)))
        return Route._of(self._addrs + Route.of(other)._addrs)

    def __add__(self, other: Route) -> Route:
        if not isinstance(other, Route):
            return NotImplemented
        return Route._of(self._addrs + other._addrs)

    def pop_front(self) -> Route:
        return Route._of(self._addrs[1:])

    def push_front(self, address: Address) -> Route:
        return Route._of((address, *self._addrs))

    def replace_front(self, address: Address) -> Route:
        return Route._of((address, *self._addrs[1:]))

    # -- equality, text --------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Route):
            return self._addrs == other._addrs
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._addrs)

    def __str__(self) -> str:
        return " => ".join(str(a) for a in self._addrs)

    def __repr__(self) -> str:
        return f"Route([{', '.join(repr(str(a)) for a in self._addrs)}])"

    # -- CBOR ------------------------------------------------------------------------------------
    def encode(self) -> bytes:
        """CBOR array of ``[tt, inner]`` arrays."""
        addrs = self._addrs
        return head(4, len(addrs)) + b"".join([a.encode() for a in addrs])

    @classmethod
    def decode(cls, data: bytes) -> Route:
        """Decode exactly one CBOR route; trailing bytes are an error."""
        from trust.routing.tcp_frame import read_route

        route, pos = read_route(data, 0, len(data), "route")
        if pos != len(data):
            raise DecodeError(f"{len(data) - pos} trailing bytes", field="route")
        return route
