"""Portal messages, wire-compatible with Ockam's ``PortalMessage`` (wire spec §6.1).

A BARE enum: ``Ping`` = ``00``, ``Pong`` = ``01``, ``Disconnect`` = ``02``, ``Payload(data)`` =
``03 || uvarint(len) || data``. Like Ockam at HEAD, no packet counter is sent; a received one
(``00`` = none, or ``01 || u16 little-endian``) is decoded and returned, and the receiver checks
the counters run 0, 1, 2, ... (:class:`PacketCounter`). A payload holds at most
:data:`MAX_PAYLOAD_SIZE` (48 KiB) bytes; decoders reject more, unknown tags, non-shortest
lengths and trailing bytes.

>>> encode_payload(b"hi").hex()
'03026869'
>>> decode(bytes.fromhex("0302050501bbaa"))
Payload(data=b'\\x05\\x05', counter=43707)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from trust.errors import DecodeError
from trust.routing.bare import encode_uvarint, read_uvarint

__all__ = [
    "DISCONNECT",
    "HELLO",
    "KEEPALIVE",
    "MAX_PAYLOAD_SIZE",
    "PING",
    "PONG",
    "Disconnect",
    "PacketCounter",
    "Payload",
    "Ping",
    "Pong",
    "PortalMessage",
    "decode",
    "encode",
    "encode_payload",
    "payload_header",
    "payload_span",
]

MAX_PAYLOAD_SIZE: Final = 48 * 1024
"""Bytes one Payload message carries at most (Ockam's ``MAX_PAYLOAD_SIZE``)."""

PING: Final = b"\x00"
PONG: Final = b"\x01"
DISCONNECT: Final = b"\x02"
KEEPALIVE: Final = b"\x03\x00"
"""An empty Payload: a portal writes it as nothing (Ockam's too). A truststack inlet sends it
on a connection that has sent nothing for a while, so its outlet can tell a quiet client from
a gone inlet (see :data:`trust.portals.portal.KEEPALIVE_INTERVAL`)."""
HELLO: Final = KEEPALIVE
"""The same empty Payload, sent once by each truststack portal right after the Pong (the
outlet after sending it, the inlet on receiving it): "I half-close" (see
:data:`trust.portals.portal.HALF_CLOSE_WAIT`). The first empty Payload a connection receives
is its peer's HELLO, later ones are keepalives. Ockam's portals send none."""
_PAYLOAD: Final = 3


@dataclass(frozen=True, slots=True)
class Ping:
    """The inlet's first message: asks the outlet for a connection to its target."""


@dataclass(frozen=True, slots=True)
class Pong:
    """The outlet's answer: connected; its return route is where the data goes."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The sender's socket is done (no more data will come)."""


@dataclass(frozen=True, slots=True)
class Payload:
    """Bytes read from one side's socket, for the other side's socket."""

    data: bytes
    counter: int | None = None


PortalMessage = Ping | Pong | Disconnect | Payload

_UNITS: Final[dict[int, PortalMessage]] = {0: Ping(), 1: Pong(), 2: Disconnect()}


def payload_header(n: int) -> bytes:
    """The bytes that precede ``n`` data bytes in a Payload message."""
    if not 0 <= n <= MAX_PAYLOAD_SIZE:
        raise ValueError(f"a portal payload holds at most {MAX_PAYLOAD_SIZE} bytes")
    return b"\x03" + encode_uvarint(n)


def encode_payload(data: bytes) -> bytes:
    """``Payload(data)`` as Ockam writes it (no counter)."""
    return payload_header(len(data)) + data


def encode(message: PortalMessage) -> bytes:
    if isinstance(message, Payload):
        out = encode_payload(message.data)
        if message.counter is not None:
            if not 0 <= message.counter < 1 << 16:
                raise ValueError("a packet counter is a u16")
            out += b"\x01" + message.counter.to_bytes(2, "little")
        return out
    return bytes((_TAGS[type(message)],))


_TAGS: Final[dict[type, int]] = {Ping: 0, Pong: 1, Disconnect: 2}


def payload_span(data: bytes | bytearray | memoryview) -> tuple[int, int, int | None]:
    """``(start, end, counter)`` of the data of the Payload message ``data`` (its tag is
    ``03``): the data is ``data[start:end]``. Raises :class:`DecodeError`."""
    n, start = read_uvarint(data, 1, "portal payload length")  # type: ignore[arg-type]
    if n > MAX_PAYLOAD_SIZE:
        raise DecodeError(f"a portal payload of {n} bytes is over {MAX_PAYLOAD_SIZE}",
                          field="portal payload")
    end = start + n
    rest = len(data) - end
    if rest == 0:
        return start, end, None
    if rest < 0:
        raise DecodeError("unexpected end of data", field="portal payload")
    flag = data[end]
    if rest == 1 and flag == 0:
        return start, end, None
    if rest == 3 and flag == 1:
        return start, end, data[end + 1] | data[end + 2] << 8
    raise DecodeError("trailing bytes after a portal payload", field="portal payload")


def decode(data: bytes | bytearray | memoryview) -> PortalMessage:
    """One portal message (strict: see the module docstring)."""
    if not data:
        raise DecodeError("an empty portal message", field="portal message")
    tag = data[0]
    if tag == _PAYLOAD:
        start, end, counter = payload_span(data)
        return Payload(bytes(data[start:end]), counter)
    unit = _UNITS.get(tag)
    if unit is None:
        raise DecodeError(f"unknown portal message tag {tag}", field="portal message")
    if len(data) != 1:
        raise DecodeError("trailing bytes after a portal message", field="portal message")
    return unit


class PacketCounter:
    """Checks received packet counters: when a peer sends them they must run 0, 1, 2, ...
    (wrapping at 2**16), as Ockam's ``check_packet_counter``."""

    __slots__ = ("expected",)

    def __init__(self) -> None:
        self.expected = 0

    def check(self, counter: int | None) -> None:
        if counter is None:
            return
        if counter != self.expected:
            raise DecodeError(f"portal packet {counter} arrived, {self.expected} was expected",
                              field="packet counter")
        self.expected = (self.expected + 1) & 0xFFFF
