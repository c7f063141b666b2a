"""Change histories: ``ChangeHistory = [+ Change]``, ``Change = [data, signature,
? previous_signature]``, ``ChangeData = [previous_change / null, primary_public_key,
revoke_all_purpose_keys, attestations_valid_from, attestations_valid_until]`` (spec §4).

Decoding is strict and also decodes every change's embedded VersionedData and ChangeData, so a
decoded history is well formed (its signatures are checked by :mod:`trust.identities`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_bool, enc_bytes, enc_uint, head, relocate
from trust.models.fastpath import KEY_PREFIX, FastPathMiss, arg, signature, uint
from trust.models.primitives import (
    CHANGE_DATA_TYPE,
    IDENTIFIER_SIZE,
    PublicKey,
    Signature,
    encode_public_key,
    encode_signature,
    encode_versioned,
    identifier_text,
    read_public_key,
    read_signature,
    read_versioned,
)
from vaults.errors import VaultError

_U64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class ChangeData:
    previous_change: bytes | None
    primary_public_key: PublicKey
    revoke_all_purpose_keys: bool
    attestations_valid_from: int
    attestations_valid_until: int

    def encode(self) -> bytes:
        prev = b"\xf6" if self.previous_change is None else enc_bytes(self.previous_change)
        return (b"\x85" + prev + encode_public_key(self.primary_public_key)
                + enc_bool(self.revoke_all_purpose_keys)
                + enc_uint(self.attestations_valid_from) + enc_uint(self.attestations_valid_until))

    @classmethod
    def decode(cls, data: bytes, field_name: str = "change_data") -> ChangeData:
        r = Reader(data)
        r.array(field_name, 5)
        prev = None if r.peek_null() else r.bytes(f"{field_name}.previous_change", IDENTIFIER_SIZE)
        pk = read_public_key(r, f"{field_name}.primary_public_key")
        revoke = r.bool(f"{field_name}.revoke_all_purpose_keys")
        valid_from = r.uint(f"{field_name}.attestations_valid_from", max_value=_U64)
        valid_until = r.uint(f"{field_name}.attestations_valid_until", max_value=_U64)
        r.end(field_name)
        return cls(prev, pk, revoke, valid_from, valid_until)

    def to_versioned(self) -> bytes:
        """The bytes that go into ``Change.data``."""
        return encode_versioned(CHANGE_DATA_TYPE, self.encode())


@dataclass(frozen=True)
class Change:
    """One change: the raw ``data`` (VersionedData bytes, what is hashed and signed), its
    signature by the change's own key and, after the first change, by the previous key."""

    data: bytes
    signature: Signature
    previous_signature: Signature | None = None
    change_data: ChangeData = field(init=False, compare=False, repr=False)
    change_hash: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        payload = read_versioned(self.data, CHANGE_DATA_TYPE, "change.data")
        try:
            change_data = ChangeData.decode(payload)
        except DecodeError as e:  # the payload ends the VersionedData
            raise relocate(e, e.field, len(self.data) - len(payload)) from None
        object.__setattr__(self, "change_data", change_data)
        object.__setattr__(self, "change_hash", hashlib.sha256(self.data).digest())

    @property
    def primary_public_key(self) -> PublicKey:
        return self.change_data.primary_public_key

    def encode(self) -> bytes:
        parts = [enc_bytes(self.data), encode_signature(self.signature)]
        if self.previous_signature is not None:
            parts.append(encode_signature(self.previous_signature))
        return head(4, len(parts)) + b"".join(parts)

    @classmethod
    def read(cls, r: Reader, field_name: str, *, first: bool) -> Change:
        start = r.pos
        n = r.array(field_name, min_len=2, max_len=3)
        if first and n == 3:
            raise DecodeError("the first change cannot carry a previous_signature",
                              field=field_name, offset=start)
        if not first and n == 2:
            raise DecodeError("a later change must carry a previous_signature", field=field_name,
                              offset=start)
        data = r.bytes(f"{field_name}.data")
        at = r.pos - len(data)
        sig = read_signature(r, f"{field_name}.signature")
        prev = read_signature(r, f"{field_name}.previous_signature") if n == 3 else None
        try:
            return cls(data, sig, prev)
        except DecodeError as e:
            raise relocate(e, f"{field_name}.{e.field or 'data'}", at) from None


@dataclass(frozen=True)
class ChangeHistory:
    changes: tuple[Change, ...]

    def __post_init__(self) -> None:
        if not self.changes:
            raise DecodeError("a change history has at least one change", field="change_history")

    @property
    def identifier(self) -> bytes:
        """The identifier: the hash of the first change's data (32 bytes)."""
        return self.changes[0].change_hash

    @property
    def identifier_text(self) -> str:
        return identifier_text(self.identifier)

    @property
    def latest(self) -> Change:
        return self.changes[-1]

    def encode(self) -> bytes:
        return head(4, len(self.changes)) + b"".join(c.encode() for c in self.changes)

    @classmethod
    def decode(cls, data: bytes) -> ChangeHistory:
        if not isinstance(data, (bytes, bytearray)):
            raise DecodeError(f"expected bytes, got {type(data).__name__}", field="change_history")
        check_size(data, "change_history")
        data = bytes(data)
        fast = _fast_decode(data)
        return fast if fast is not None else cls.decode_strict(data)

    @classmethod
    def decode_strict(cls, data: bytes) -> ChangeHistory:
        """The general decoder (precise errors); :meth:`decode` tries a fast path first."""
        check_size(data, "change_history")
        r = Reader(bytes(data))
        n = r.array("change_history", min_len=1)
        if n > len(data):
            raise DecodeError("more changes than bytes", field="change_history", offset=0)
        changes = tuple(Change.read(r, f"change[{i}]", first=i == 0) for i in range(n))
        r.end("change_history")
        return cls(changes)

    @classmethod
    def read(cls, r: Reader, field_name: str) -> ChangeHistory:
        """Read an embedded change history from a larger object."""
        start = r.pos
        n = r.array(field_name, min_len=1)
        if n > len(r.data) - r.pos:
            raise DecodeError("more changes than bytes", field=field_name, offset=start)
        return cls(tuple(Change.read(r, f"{field_name}[{i}]", first=i == 0) for i in range(n)))


# ---------------------------------------------------------------------------------------------
# Fast path. Verifying a history is dominated by signature checks; decoding must stay small next
# to them. This parser walks the exact shapes our encoder produces with direct indexing and
# returns None on anything unexpected, so the strict Reader path above decides (and names the
# field) for every input it does not accept. The property tests check both paths agree.


_U32 = struct.Struct(">I").unpack_from


def _change_data(d: bytes) -> ChangeData:
    if d[:3] != b"\x83\x01\x01":
        raise FastPathMiss
    if d[3] == 0x58 and d[4] >= 24:
        n, i = d[4], 5
    else:
        n, i = arg(d, 3, 0x40)
    if i + n != len(d) or d[i] != 0x85:
        raise FastPathMiss
    i += 1
    if d[i] == 0xF6:
        prev = None
        i += 1
    elif d[i : i + 2] == b"\x58\x20" and len(d) >= i + 34:
        prev = d[i + 2 : i + 34]
        i += 34
    else:
        raise FastPathMiss
    kind = KEY_PREFIX.get(d[i : i + 5])
    if kind is None:
        raise FastPathMiss
    kt, size = kind
    i += 5
    key = d[i : i + size]
    i += size
    if len(key) != size or i >= len(d):
        raise FastPathMiss
    flag = d[i]
    if flag not in (0xF4, 0xF5):
        raise FastPathMiss
    i += 1
    if d[i] == 0x1A and d[i + 5] == 0x1A and i + 10 == len(d):  # two timestamps (until 2106)
        valid_from = _U32(d, i + 1)[0]
        valid_until = _U32(d, i + 6)[0]
        if valid_from < 0x10000 or valid_until < 0x10000:
            raise FastPathMiss
    else:
        valid_from, i = uint(d, i)
        valid_until, i = uint(d, i)
        if i != len(d):
            raise FastPathMiss
    try:
        pk = PublicKey(kt, key)
    except VaultError:
        raise FastPathMiss from None
    return ChangeData(prev, pk, flag == 0xF5, valid_from, valid_until)


def _fast_decode(b: bytes) -> ChangeHistory | None:
    found = read_history_fast(b, 0)
    return found[0] if found is not None and found[1] == len(b) else None


def read_history_fast(b: bytes, start: int) -> tuple[ChangeHistory, int] | None:
    """The change history that starts at ``start`` in ``b`` (e.g. inside a message), read by the
    fast path, and the position after it; None when it is not in the exact shape our encoder
    produces (the strict decoder then decides). What it returns, the strict decoder returns too
    (property test)."""
    try:
        count = b[start] - 0x80
        if not 1 <= count < 24:
            return None
        i = start + 1
        changes = []
        for k in range(count):
            n = b[i]
            if n != (0x82 if k == 0 else 0x83):
                return None
            if b[i + 1] == 0x58 and b[i + 2] >= 24:
                size, i = b[i + 2], i + 3
            else:
                size, i = arg(b, i + 1, 0x40)
            if i + size > len(b):
                return None
            data = b[i : i + size]
            i += size
            sig, i = signature(b, i)
            prev_sig = None
            if n == 0x83:
                prev_sig, i = signature(b, i)
            change = object.__new__(Change)
            object.__setattr__(change, "data", data)
            object.__setattr__(change, "signature", sig)
            object.__setattr__(change, "previous_signature", prev_sig)
            object.__setattr__(change, "change_data", _change_data(data))
            object.__setattr__(change, "change_hash", hashlib.sha256(data).digest())
            changes.append(change)
        return ChangeHistory(tuple(changes)), i
    except (FastPathMiss, IndexError):
        return None
