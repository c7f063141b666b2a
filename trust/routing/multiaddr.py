"""The route syntax users type (multiaddr-like, as Ockam Command's ``MultiAddr``).

Examples::

    /service/echo                                   a worker on this node
    /worker/3f8a…                                   a worker by its (random, hex) address
    /node/n2/service/echo                           node n2's TCP listener, then its echo
    /ip4/127.0.0.1/tcp/4000/service/echo            a TCP peer, then its echo
    /ip6/::1/tcp/4000/service/echo                  the same over IPv6
    /dnsaddr/localhost/tcp/4000/service/echo        a host name, resolved when connecting
    /ip4/B/tcp/PB/service/hop/ip4/C/tcp/PC/service/echo   through B's hop service to C

``/secure/NAME`` is accepted as a local address too (secure-channel endpoints, later).
:func:`parse_multiaddr` returns a :class:`MultiAddr`; :meth:`MultiAddr.to_route` turns it into a
:class:`~trust.routing.route.Route` (``/node/NAME`` is resolved by a callable the caller gives,
since node names live in the home directory). Errors are :class:`RouteSyntaxError` (a
:class:`~trust.errors.UsageError`) naming the bad segment and its position.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from trust.errors import UsageError
from trust.routing.address import LOCAL, TCP, Address
from trust.routing.route import Route

__all__ = ["PROTOCOLS", "MultiAddr", "RouteSyntaxError", "Segment", "parse_multiaddr"]

PROTOCOLS: Final = ("ip4", "ip6", "dnsaddr", "tcp", "node", "service", "secure", "worker")
_HOSTS: Final = ("ip4", "ip6", "dnsaddr")

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_HEX = re.compile(r"^[0-9a-f]+$")
_NAME = re.compile(r"^[^\s/]+$")


class RouteSyntaxError(UsageError):
    """A route text does not parse; ``segment`` and ``offset`` point at the bad part."""

    def __init__(self, text: str, segment: str, offset: int, reason: str) -> None:
        self.text = text
        self.segment = segment
        self.offset = offset
        self.reason = reason
        where = f" at '{segment}' (character {offset})" if segment else ""
        super().__init__(f"invalid route '{text}'{where}: {reason}")


@dataclass(frozen=True, slots=True)
class Segment:
    """One ``/protocol/value`` pair; ``offset`` is the index of its leading ``/``."""

    protocol: str
    value: str
    offset: int

    def __str__(self) -> str:
        return f"/{self.protocol}/{self.value}"


@dataclass(frozen=True, slots=True)
class MultiAddr:
    """A parsed route text."""

    text: str
    segments: tuple[Segment, ...]

    def __str__(self) -> str:
        return "".join(str(s) for s in self.segments)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(s.value for s in self.segments if s.protocol == "node")

    def to_route(self, resolve_node: Callable[[str], str] | None = None) -> Route:
        """The route: TCP hops become ``1#host:port``, services and workers local addresses.

        ``resolve_node(name)`` returns the ``host:port`` of a node's TCP listener; without it a
        ``/node/NAME`` segment is a :class:`RouteSyntaxError`.
        """
        addrs: list[Address] = []
        segs = self.segments
        i = 0
        while i < len(segs):
            s = segs[i]
            p = s.protocol
            if p in _HOSTS:
                port = segs[i + 1].value
                host = f"[{s.value}]" if p == "ip6" else s.value
                addrs.append(Address(TCP, f"{host}:{port}"))
                i += 2
                continue
            if p == "node":
                if resolve_node is None:
                    raise RouteSyntaxError(self.text, str(s), s.offset,
                                           "node names cannot be resolved here")
                addrs.append(Address(TCP, resolve_node(s.value)))
            else:  # service, secure, worker
                addrs.append(Address(LOCAL, s.value))
            i += 1
        return Route.from_tuple(tuple(addrs))


def _check_value(text: str, proto: str, value: str, seg: str, offset: int) -> None:
    def bad(reason: str) -> RouteSyntaxError:
        return RouteSyntaxError(text, seg, offset, reason)

    if proto == "ip4":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise bad(f"'{value}' is not an IPv4 address") from None
    elif proto == "ip6":
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            raise bad(f"'{value}' is not an IPv6 address") from None
    elif proto == "dnsaddr":
        if not _HOSTNAME.fullmatch(value):
            raise bad(f"'{value}' is not a host name")
    elif proto == "tcp":
        if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
            raise bad(f"'{value}' is not a TCP port (1-65535)")
    elif proto == "worker":
        if not _HEX.fullmatch(value):
            raise bad(f"'{value}' is not a worker address (lowercase hex)")
    elif not _NAME.fullmatch(value) or not value.isprintable():
        raise bad(f"'{value}' is not a valid {proto} name")


def parse_multiaddr(text: str) -> MultiAddr:
    """Parse a route text such as ``/ip4/127.0.0.1/tcp/4000/service/echo``."""
    if not isinstance(text, str):
        raise UsageError(f"a route is text, not {type(text).__name__}")
    if not text.startswith("/"):
        raise RouteSyntaxError(text, "", 0, "a route starts with '/' (e.g. /service/echo)")
    body = text[:-1] if text.endswith("/") and len(text) > 1 else text
    parts = body.split("/")[1:]
    segments: list[Segment] = []
    offset = 0
    i = 0
    while i < len(parts):
        proto = parts[i]
        seg_offset = offset
        if proto == "":
            raise RouteSyntaxError(text, "/", seg_offset, "empty segment")
        if proto not in PROTOCOLS:
            raise RouteSyntaxError(text, f"/{proto}", seg_offset,
                                   f"unknown protocol '{proto}' (known: {', '.join(PROTOCOLS)})")
        if i + 1 >= len(parts) or parts[i + 1] == "":
            raise RouteSyntaxError(text, f"/{proto}", seg_offset,
                                   f"'/{proto}' needs a value")
        value = parts[i + 1]
        seg = f"/{proto}/{value}"
        _check_value(text, proto, value, seg, seg_offset)
        prev = segments[-1].protocol if segments else None
        if proto == "tcp" and prev not in _HOSTS:
            raise RouteSyntaxError(text, seg, seg_offset,
                                   "'/tcp' must follow /ip4, /ip6 or /dnsaddr")
        if prev in _HOSTS and proto != "tcp":
            last = segments[-1]
            raise RouteSyntaxError(text, str(last), last.offset,
                                   f"'/{last.protocol}' must be followed by /tcp/PORT")
        segments.append(Segment(proto, value, seg_offset))
        offset += len(seg)
        i += 2
    if not segments:
        raise RouteSyntaxError(text, "/", 0, "the route is empty")
    if segments[-1].protocol in _HOSTS:
        last = segments[-1]
        raise RouteSyntaxError(text, str(last), last.offset,
                               f"'/{last.protocol}' must be followed by /tcp/PORT")
    return MultiAddr(text, tuple(segments))
