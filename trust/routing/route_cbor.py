"""Routes embedded in larger CBOR objects (secure-channel messages): encode one, or read one at
a position, strictly (the same rules and errors as the TCP frame codec).

    >>> from trust.routing import Route
    >>> from trust.routing.route_cbor import encode_route, read_route
    >>> raw = encode_route(Route(["echoer"]))
    >>> raw.hex()
    '818200466563686f6572'
    >>> read_route(raw, 0, len(raw), "onward_route")
    (Route(['0#echoer']), 10)
"""

from __future__ import annotations

from typing import Final

from trust.routing import tcp_frame
from trust.routing.route import Route

__all__ = ["encode_route", "read_route"]

_ENCODED: dict[Route, bytes] = {}
_ENCODED_MAX: Final = 4096
_ENCODED_MAX_BYTES: Final = 512


def encode_route(route: Route) -> bytes:
    """CBOR of ``route`` (an array of ``[tt, inner]``); short routes are cached."""
    c = _ENCODED.get(route)
    if c is None:
        c = route.encode()
        if len(c) <= _ENCODED_MAX_BYTES:
            if len(_ENCODED) >= _ENCODED_MAX:
                _ENCODED.clear()
            _ENCODED[route] = c
    return c


def read_route(data: bytes | bytearray, pos: int, end: int, field: str) -> tuple[Route, int]:
    """Read one CBOR route from ``data[pos:end]``; return it and the position after it.
    Malformed input raises :class:`~trust.errors.DecodeError` naming ``field``."""
    return tcp_frame.read_route(data, pos, end, field)
