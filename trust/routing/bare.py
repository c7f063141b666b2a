"""The few BARE encodings Ockam uses in payloads (wire spec §0.1): ``uvarint``, ``data``, ``string``.

A Rust ``String`` message is ``uvarint(len) || utf8``; ``Vec<u8>`` is ``uvarint(len) || bytes``.
Decoders are strict: shortest uvarints, at most 10 bytes (the 10th must be ``0x01``), no trailing
bytes; every failure is a :class:`~trust.errors.DecodeError`.
"""

from __future__ import annotations

from trust.errors import DecodeError

__all__ = [
    "decode_data",
    "decode_string",
    "encode_data",
    "encode_string",
    "encode_uvarint",
    "read_uvarint",
]


def encode_uvarint(n: int) -> bytes:
    if not 0 <= n < 1 << 64:
        raise ValueError("uvarint out of range")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_uvarint(data: bytes, pos: int = 0, field: str = "uvarint") -> tuple[int, int]:
    """Read one uvarint at ``pos``; return ``(value, next position)``."""
    value = 0
    shift = 0
    for i in range(10):
        if pos + i >= len(data):
            raise DecodeError("unexpected end of data", field=field)
        b = data[pos + i]
        if i == 9 and b != 0x01:
            raise DecodeError("uvarint is longer than 64 bits", field=field)
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if b == 0 and i > 0:
                raise DecodeError("uvarint is not in its shortest form", field=field)
            return value, pos + i + 1
    raise DecodeError("uvarint is longer than 64 bits", field=field)  # pragma: no cover


def encode_data(data: bytes) -> bytes:
    return encode_uvarint(len(data)) + data


def decode_data(data: bytes, field: str = "data") -> bytes:
    n, pos = read_uvarint(data, 0, field)
    if pos + n != len(data):
        if pos + n > len(data):
            raise DecodeError(f"length {n} runs past the end of the data", field=field)
        raise DecodeError(f"{len(data) - pos - n} trailing bytes", field=field)
    return bytes(data[pos:])


def encode_string(text: str) -> bytes:
    """A BARE string: ``uvarint(len) || utf8`` (how Ockam sends a Rust ``String``)."""
    return encode_data(text.encode("utf-8"))


def decode_string(data: bytes, field: str = "string") -> str:
    raw = decode_data(data, field)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("not valid UTF-8", field=field) from None
