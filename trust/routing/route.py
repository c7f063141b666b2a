"""Routes: ordered lists of addresses (Ockam's ``ockam_core::Route``).

``Route(["1#127.0.0.1:4000", "echo"])``, ``route / "echo"`` appends, ``str(route)`` is
``"1#127.0.0.1:4000 => 0#echo"`` and :meth:`Route.parse` reads it back. On the wire (CBOR) a
route is an array of addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Union, overload

from trust.errors import DecodeError, UsageError
from trust.models.cbor import head
from trust.routing.address import Address

__all__ = ["Route", "RouteLike"]

RouteLike = Union["Route", Address, str, Iterable[Address | str]]
"""What the API accepts where a route is expected: a Route, one address, address text, or a list."""


_PARSED: dict[str, Route] = {}
_PARSED_MAX = 1024


class Route:
    """An immutable sequence of :class:`Address` (the first one is the next hop).

    :attr:`addresses` is the tuple itself (a plain attribute: the fast way for hot code to
    read a route; never assign it). :meth:`from_tuple` makes a route of a tuple without
    copying."""

    __slots__ = ("addresses",)

    addresses: tuple[Address, ...]
    """The addresses, the next hop first (read-only)."""

    if TYPE_CHECKING:
        _addrs: tuple[Address, ...]

    def __init__(self, addresses: Iterable[Address | str] = ()) -> None:
        self.addresses = tuple(a if isinstance(a, Address) else Address.parse(a) for a in addresses)

    @classmethod
    def from_tuple(cls, addrs: tuple[Address, ...]) -> Route:
        """The route of an already-parsed tuple of addresses, without checking or copying (the
        fast path for the node's hot code; ``Route(addresses)`` checks and parses)."""
        r = cls.__new__(cls)
        r.addresses = addrs
        return r

    _of = from_tuple
    """Former name of :meth:`from_tuple` (kept for code outside this repository)."""

    @classmethod
    def of(cls, value: RouteLike) -> Route:
        """Coerce a :data:`RouteLike` into a Route."""
        if isinstance(value, Route):
            return value
        if isinstance(value, Address):
            return cls.from_tuple((value,))
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
            return cls.from_tuple(())
        parts = [p.strip() for p in text.split("=>")]
        if any(not p for p in parts):
            raise UsageError(f"invalid route {text!r}: empty address between '=>'")
        return cls.from_tuple(tuple(Address.parse(p) for p in parts))

    # -- sequence --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.addresses)

    def __bool__(self) -> bool:
        return bool(self.addresses)

    def __iter__(self) -> Iterator[Address]:
        return iter(self.addresses)

    @overload
    def __getitem__(self, i: int) -> Address: ...
    @overload
    def __getitem__(self, i: slice) -> Route: ...
    def __getitem__(self, i: int | slice) -> Address | Route:
        if isinstance(i, slice):
            return Route.from_tuple(self.addresses[i])
        return self.addresses[i]

    def next(self) -> Address:
        """The first address; a :class:`UsageError` when the route is empty."""
        if not self.addresses:
            raise UsageError("the route is empty")
        return self.addresses[0]

    # -- building --------------------------------------------------------------------------------
    def __truediv__(self, other: RouteLike) -> Route:
        """``route / "echo"`` appends an address (or another route)."""
        if isinstance(other, Address):
            return Route.from_tuple((*self.addresses, other))
        if isinstance(other, str):
            return Route.from_tuple((*self.addresses, Address.parse(other)))
        return Route.from_tuple(self.addresses + Route.of(other).addresses)

    def __add__(self, other: Route) -> Route:
        if not isinstance(other, Route):
            return NotImplemented
        return Route.from_tuple(self.addresses + other.addresses)

    def pop_front(self) -> Route:
        return Route.from_tuple(self.addresses[1:])

    def push_front(self, address: Address) -> Route:
        return Route.from_tuple((address, *self.addresses))

    def replace_front(self, address: Address) -> Route:
        return Route.from_tuple((address, *self.addresses[1:]))

    # -- equality, text --------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Route):
            return self.addresses == other.addresses
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.addresses)

    def __str__(self) -> str:
        return " => ".join(str(a) for a in self.addresses)

    def __repr__(self) -> str:
        return f"Route([{', '.join(repr(str(a)) for a in self.addresses)}])"

    # -- CBOR ------------------------------------------------------------------------------------
    def encode(self) -> bytes:
        """CBOR array of ``[tt, inner]`` arrays."""
        addrs = self.addresses
        return head(4, len(addrs)) + b"".join([a.encode() for a in addrs])

    @classmethod
    def decode(cls, data: bytes) -> Route:
        """Decode exactly one CBOR route; trailing bytes are an error."""
        from trust.routing.tcp_frame import read_route

        route, pos = read_route(data, 0, len(data), "route")
        if pos != len(data):
            raise DecodeError(f"{len(data) - pos} trailing bytes", field="route")
        return route


# Former name of the ``addresses`` slot, the same descriptor (as fast), for the modules that still
# read ``route._addrs`` (trust.transports.tcp, trust.portals.portal: theirs to move).
Route._addrs = Route.__dict__["addresses"]  # type: ignore[misc]
