"""Shared pieces of the decoders' fast paths.

A fast path walks the exact shapes our encoder produces with direct indexing and raises
:class:`FastPathMiss` on anything else; the caller then runs the strict :class:`~trust.models.cbor.Reader`
decoder, which decides and names the field. The property tests check both paths agree.
"""

from __future__ import annotations

import struct

from trust.models.primitives import Signature
from vaults.keys import KeyType


class FastPathMiss(Exception):
    """The input is not in a shape the fast path handles (not necessarily invalid)."""


KEY_PREFIX = {b"\x82\x00\x81\x58\x20": (KeyType.ED25519, 32),
              b"\x82\x01\x81\x58\x41": (KeyType.P256, 65)}
"""The heads of a ``PublicKey`` (``82 0k 81`` + the key's byte-string head): its type and size."""
SIG_PREFIX = {b"\x82\x00\x81\x58\x40": KeyType.ED25519, b"\x82\x01\x81\x58\x40": KeyType.P256}
_HEAD_LEN = {0x18: 1, 0x19: 2, 0x1A: 4, 0x1B: 8}
_HEAD_MIN = {0x18: 24, 0x19: 0x100, 0x1A: 0x10000, 0x1B: 0x100000000}


def arg(b: bytes, i: int, base: int) -> tuple[int, int]:
    """The argument of the head at ``i`` whose major type is ``base`` (0x00 uint, 0x40 bstr,
    0x60 text, 0x80 array, 0xa0 map), in its shortest form; and the position after the head."""
    info = b[i] - base
    if 0 <= info < 24:
        return info, i + 1
    if info == 0x18 and b[i + 1] >= 24:
        return b[i + 1], i + 2
    n = _HEAD_LEN.get(info)
    if n is None or i + 1 + n > len(b):
        raise FastPathMiss
    v = int.from_bytes(b[i + 1 : i + 1 + n], "big")
    if v < _HEAD_MIN[info]:
        raise FastPathMiss
    return v, i + 1 + n


_U32 = struct.Struct(">I")


def uint(b: bytes, i: int) -> tuple[int, int]:
    """An unsigned integer at ``i`` in its shortest form (timestamps, 4-byte heads until 2106,
    inline); and the position after it."""
    if b[i] == 0x1A and i + 5 <= len(b):
        v: int = _U32.unpack_from(b, i + 1)[0]
        if v >= 0x10000:
            return v, i + 5
    return arg(b, i, 0)


def signature(b: bytes, i: int) -> tuple[Signature, int]:
    """A ``Signature`` (``82 0k 81 58 40`` + 64 bytes) at ``i``."""
    kt = SIG_PREFIX.get(b[i : i + 5])
    if kt is None or i + 69 > len(b):
        raise FastPathMiss
    return Signature(kt, b[i + 5 : i + 69]), i + 69
