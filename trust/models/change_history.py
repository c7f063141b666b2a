"""Change histories: ``ChangeHistory = [+ Change]``, ``Change = [data, signature,
? previous_signature]``, ``ChangeData = [previous_change / null, primary_public_key,
revoke_all_purpose_keys, attestations_valid_from, attestations_valid_until]`` (spec §4).

Decoding is strict and also decodes every change's embedded VersionedData and ChangeData, so a
decoded history is well formed (its signatures are checked by :mod:`trust.identities`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_bool, enc_bytes, enc_uint, head
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
        object.__setattr__(self, "change_data", ChangeData.decode(payload))
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
        n = r.array(field_name, min_len=2, max_len=3)
        if first and n == 3:
            raise DecodeError("the first change cannot carry a previous_signature",
                              field=field_name)
        if not first and n == 2:
            raise DecodeError("a later change must carry a previous_signature", field=field_name)
        data = r.bytes(f"{field_name}.data")
        sig = read_signature(r, f"{field_name}.signature")
        prev = read_signature(r, f"{field_name}.previous_signature") if n == 3 else None
        try:
            return cls(data, sig, prev)
        except DecodeError as e:
            raise DecodeError(e.message, field=f"{field_name}.{e.field or 'data'}") from None


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
        r = Reader(bytes(data))
        n = r.array("change_history", min_len=1)
        if n > len(data):
            raise DecodeError("more changes than bytes", field="change_history")
        changes = tuple(Change.read(r, f"change[{i}]", first=i == 0) for i in range(n))
        r.end("change_history")
        return cls(changes)

    @classmethod
    def read(cls, r: Reader, field_name: str) -> ChangeHistory:
        """Read an embedded change history from a larger object."""
        n = r.array(field_name, min_len=1)
        if n > len(r.data) - r.pos:
            raise DecodeError("more changes than bytes", field=field_name)
        return cls(tuple(Change.read(r, f"{field_name}[{i}]", first=i == 0) for i in range(n)))
