"""Addresses: a transport type and opaque bytes, as Ockam's ``ockam_core::Address``.

Text form ``"<tt>#<inner>"`` (``"0#echo"``, ``"1#127.0.0.1:4000"``); text without ``#`` is a
local (type 0) address. On the wire (CBOR) an address is ``[tt: uint, inner: bstr]``.
"""

from __future__ import annotations

import os
from typing import Final

from trust.errors import DecodeError, UsageError
from trust.models.cbor import head

__all__ = ["LOCAL", "TCP", "TRANSPORT_NAMES", "UDP", "Address"]

LOCAL: Final = 0
TCP: Final = 1
UDP: Final = 2
WEBSOCKET: Final = 3
BLE: Final = 4
UDS: Final = 5

TRANSPORT_NAMES: Final = {LOCAL: "local", TCP: "tcp", UDP: "udp", WEBSOCKET: "websocket",
                          BLE: "ble", UDS: "uds"}


_ENCODED: dict[tuple[int, bytes], bytes] = {}
_ENCODED_MAX: Final = 8192


class Address(tuple[int, bytes]):
    """An immutable routing address: ``tt`` (0..255) and ``inner`` (bytes, normally UTF-8).

    Build one with :meth:`local`, :meth:`tcp`, :meth:`parse` or :meth:`random`; ``str()`` gives
    the text form ``tt#inner``. Addresses are hashable and compare by value (an Address is a
    ``(tt, inner)`` tuple underneath, which keeps routing lookups fast).
    """

    __slots__ = ()

    def __new__(cls, tt: int, inner: bytes | str) -> Address:
        if isinstance(inner, str):
            inner = inner.encode("utf-8")
        elif type(inner) is not bytes:
            inner = bytes(inner)
        if type(tt) is not int or not 0 <= tt <= 255:
            raise UsageError(f"transport type {tt!r} is out of range (0..255)")
        return tuple.__new__(cls, (tt, inner))

    def __getnewargs__(self) -> tuple[int, bytes]:  # type: ignore[override]
        return (self[0], self[1])

    @property
    def tt(self) -> int:
        """The transport type (0 local, 1 TCP, 2 UDP, ...)."""
        return self[0]

    @property
    def inner(self) -> bytes:
        """The transport-specific part (a worker name, ``host:port``, ...)."""
        return self[1]

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def local(cls, name: str | bytes) -> Address:
        return cls(LOCAL, name)

    @classmethod
    def tcp(cls, host_port: str) -> Address:
        """A TCP transport address ``1#host:port``."""
        return cls(TCP, host_port)

    @classmethod
    def random(cls, tt: int = LOCAL) -> Address:
        """A fresh random address: 32 lowercase hex characters (16 random bytes), as Ockam's."""
        return cls(tt, os.urandom(16).hex())

    @classmethod
    def parse(cls, text: str | Address) -> Address:
        """Parse ``"tt#inner"`` or ``"inner"`` (local). A :class:`UsageError` names bad text."""
        if isinstance(text, Address):
            return text
        if not isinstance(text, str):
            raise UsageError(f"an address is text like '0#echo', not {type(text).__name__}")
        parts = text.split("#")
        if len(parts) == 1:
            if not text:
                raise UsageError("an address must not be empty")
            return cls(LOCAL, text)
        if len(parts) != 2:
            raise UsageError(f"invalid address {text!r}: more than one '#'")
        tt_text, inner = parts
        if not tt_text.isdigit() or not tt_text.isascii():
            raise UsageError(f"invalid address {text!r}: transport type {tt_text!r} "
                             "is not a number")
        tt = int(tt_text)
        if tt > 255:
            raise UsageError(f"invalid address {text!r}: transport type {tt} is out of range")
        if not inner:
            raise UsageError(f"invalid address {text!r}: nothing after '#'")
        return cls(tt, inner)

    # -- views -----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """``inner`` as text (UTF-8; lowercase hex when it is not valid UTF-8)."""
        try:
            return self[1].decode("utf-8")
        except UnicodeDecodeError:
            return self[1].hex()

    @property
    def is_local(self) -> bool:
        return self[0] == LOCAL

    def __str__(self) -> str:
        return f"{self[0]}#{self.name}"

    def __repr__(self) -> str:
        return f"Address({self})"

    # -- CBOR ------------------------------------------------------------------------------------
    def encode(self) -> bytes:
        """CBOR ``[tt, inner]`` (cached for short addresses)."""
        c = _ENCODED.get(self)
        if c is None:
            tt, inner = self
            c = b"\x82" + head(0, tt) + head(2, len(inner)) + inner
            if len(inner) <= 64:
                if len(_ENCODED) >= _ENCODED_MAX:
                    _ENCODED.clear()
                _ENCODED[self] = c
        return c

    @classmethod
    def decode(cls, data: bytes) -> Address:
        """Decode exactly one CBOR address; trailing bytes are an error."""
        from trust.routing.tcp_frame import read_address

        addr, pos = read_address(data, 0, len(data), "address")
        if pos != len(data):
            raise DecodeError(f"{len(data) - pos} trailing bytes", field="address")
        return addr
