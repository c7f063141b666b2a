"""``SecureChannelMessage::Payload`` = ``[0, [PlaintextPayloadMessage]]`` with
``PlaintextPayloadMessage = [onward_route: Route, return_route: Route, payload: bstr]``
(wire spec §4.2): a routed message carried through the channel.

Padded and with Ockam's empty padding, ``onward ["echoer"], return ["app"], payload 0548656c6c6f``
is ``8282008183818200466563686f657281820043617070460548656c6c6f40``.

:func:`encode_payload` and :func:`decode_payload` are the record layer's hot path: the envelope
is built from cached route bytes, and decoding recognises the common shape with direct indexing
(every other input goes through the general, checking decoder of :mod:`.padded`).
"""

from __future__ import annotations

from struct import Struct
from typing import Final, NamedTuple

from trust.models.cbor import Reader, head
from trust.routing.route import Route
from trust.routing.route_cbor import encode_route, read_route

__all__ = ["PAYLOAD_PREFIX", "PAYLOAD_VARIANT", "Payload", "bstr_head", "decode_payload_fast",
           "encode_payload", "payload_at", "payload_parts", "routes_prefix"]

PAYLOAD_VARIANT: Final = 0
PAYLOAD_PREFIX: Final = b"\x82\x82\x00\x81\x83"
"""Padded message, Payload variant, one field, PlaintextPayloadMessage of three fields."""

_BSTR_HEADS: Final = tuple(head(2, i) for i in range(256))
_NO_PADDING: Final = b"\x40"
_new_tuple = tuple.__new__


class Payload(NamedTuple):
    """A message for the peer's node: its onward route there, its return route, its bytes.
    (Immutable; a named tuple, cheap to build on the record path.)"""

    onward_route: Route
    return_route: Route
    payload: bytes

    @property
    def variant(self) -> int:
        return PAYLOAD_VARIANT

    def encode_message(self) -> bytes:
        """The ``SecureChannelMessage`` item."""
        return b"".join(payload_parts(self.onward_route, self.return_route, self.payload))[1:-1]

    def encode(self, padding: bytes = b"") -> bytes:  # type: ignore[override]
        """The padded message."""
        if padding:
            from trust.channels.messages.padded import pad

            return pad(self.encode_message(), padding)
        return encode_payload(self.onward_route, self.return_route, self.payload)

    @classmethod
    def read_fields(cls, r: Reader, field: str = "payload") -> Payload:
        """Read the fields array (after the variant index)."""
        r.array(field, 1)
        r.array(f"{field}.message", 3)
        onward, r.pos = read_route(r.data, r.pos, len(r.data), f"{field}.onward_route")
        ret, r.pos = read_route(r.data, r.pos, len(r.data), f"{field}.return_route")
        return cls(onward, ret, r.bytes(f"{field}.payload"))


_H16: Final = Struct(">BH").pack
_H32: Final = Struct(">BI").pack


def bstr_head(n: int) -> bytes:
    """The head of a byte string of ``n`` bytes."""
    if n < 256:
        return _BSTR_HEADS[n]
    if n < 0x10000:
        return _H16(0x59, n)
    if n < 0x100000000:
        return _H32(0x5A, n)
    return head(2, n)


def payload_parts(onward: Route, ret: Route, payload: bytes) -> tuple[bytes, ...]:
    """The padded message's bytes in pieces (join them, or encrypt their concatenation)."""
    return (PAYLOAD_PREFIX + encode_route(onward) + encode_route(ret) + bstr_head(len(payload)),
            payload, _NO_PADDING)


def routes_prefix(onward: Route, ret: Route) -> bytes:
    """The padded Payload's bytes before the payload's length: a channel that keeps its routes
    keeps this prefix."""
    return PAYLOAD_PREFIX + encode_route(onward) + encode_route(ret)


def encode_payload(onward: Route, ret: Route, payload: bytes) -> bytes:
    """The padded Payload message (empty padding), built from cached route bytes."""
    return b"".join((PAYLOAD_PREFIX, encode_route(onward), encode_route(ret),
                     bstr_head(len(payload)), payload, _NO_PADDING))


def payload_at(data: bytes | bytearray, pos: int, end: int, onward: Route,
                ret: Route) -> Payload | None:
    """The Payload whose routes were read (``onward``, ``ret``) and whose payload byte string
    starts at ``pos``, followed by an empty padding that ends at ``end``; None for any other
    shape (the general decoder then decides)."""
    if pos >= end:
        return None
    h = data[pos]
    if 0x40 <= h < 0x58:
        n = h - 0x40
        pos += 1
    elif h == 0x59 and pos + 3 <= end:
        n = (data[pos + 1] << 8) | data[pos + 2]
        if n < 0x100:
            return None
        pos += 3
    elif h == 0x5A and pos + 5 <= end:
        n = int.from_bytes(data[pos + 1 : pos + 5], "big")
        if n < 0x10000:
            return None
        pos += 5
    elif h == 0x58 and pos + 2 <= end:
        n = data[pos + 1]
        if n < 24:
            return None
        pos += 2
    else:
        return None
    stop = pos + n
    if stop + 1 != end or data[stop] != 0x40:
        return None
    if type(data) is bytes:
        return _new_tuple(Payload, (onward, ret, data[pos:stop]))
    return _new_tuple(Payload, (onward, ret, bytes(memoryview(data)[pos:stop])))


def decode_payload_fast(data: bytes | bytearray, end: int) -> Payload | None:
    """The Payload in ``data[:end]`` when it has the usual shape (empty padding, shortest heads);
    None for anything else (the general decoder then decides). Raises DecodeError only for a
    malformed route."""
    if end < 9 or not data.startswith(PAYLOAD_PREFIX):
        return None
    onward, pos = read_route(data, 5, end, "payload.onward_route")
    ret, pos = read_route(data, pos, end, "payload.return_route")
    return payload_at(data, pos, end, onward, ret)
