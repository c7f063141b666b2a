"""The revocation list (ours; Ockam has none), served by the authority's ``revocation_list``
service (``GET /``):

``SignedRevocationList = [data: bytes, signature: Signature, attestation:
PurposeKeyAttestation]``, where ``data`` is a ``VersionedData{1, data_type 29810, payload}``
and ``payload`` is ``RevocationListData = {1: authority Identifier, 2: version u64,
3: issued_at u64, 4: [* [identifier Identifier, revoked_at u64]]}`` (identifiers in increasing
order, each once). The signature is the authority's credential-signing purpose key over
``SHA-256(data)`` (as credentials are signed; the data type keeps the two apart), and
``attestation`` proves that key is the authority's.

An entry revokes every credential of ``identifier`` created at or before ``revoked_at``: a
member deleted and then enrolled again gets new credentials that are valid. Build, sign and
verify with :mod:`trust.enrollment.revocation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from trust.enrollment.messages.common import (
    MAX_MESSAGE_SIZE,
    U64_MAX,
    check_identifier,
    enc_identifier,
    encode_struct,
    read_identifier,
    read_struct,
)
from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_bytes, enc_uint, head, relocate
from trust.models.primitives import (
    Signature,
    encode_signature,
    encode_versioned,
    read_signature,
    read_versioned,
)
from trust.models.purpose_key import PurposeKeyAttestation

__all__ = [
    "MAX_REVOKED",
    "REVOCATION_LIST_DATA_TYPE",
    "RevocationListData",
    "Revoked",
    "SignedRevocationList",
]

REVOCATION_LIST_DATA_TYPE: Final = 29810
"""The ``VersionedData`` data type of a revocation list (``0x7472``; credentials use 3)."""
MAX_REVOKED: Final = 65_536
"""Entries a list holds at most (entries leave the list once every credential they revoke
has expired, so this bounds deletions per credential lifetime)."""

def _u64(r: Reader, f: str) -> int:
    return r.uint(f, max_value=U64_MAX)

@dataclass(frozen=True, slots=True, order=True)
class Revoked:
    identifier: str
    revoked_at: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifier", check_identifier(self.identifier, "revoked"))
        if isinstance(self.revoked_at, bool) or not 0 <= self.revoked_at <= U64_MAX:
            raise ValueError("revoked_at must be an unsigned 64-bit integer")

def _entries(r: Reader, f: str) -> tuple[Revoked, ...]:
    n = r.array(f, max_len=MAX_REVOKED)
    out = []
    last = ""
    for i in range(n):
        at = r.pos
        r.array(f"{f}[{i}]", 2)
        ident = read_identifier(r, f"{f}[{i}].identifier")
        if ident <= last:
            raise DecodeError("identifiers must be in increasing order, each once", field=f,
                              offset=at)
        last = ident
        out.append(Revoked(ident, _u64(r, f"{f}[{i}].revoked_at")))
    return tuple(out)

@dataclass(frozen=True, slots=True)
class RevocationListData:
    authority: str
    version: int
    issued_at: int
    revoked: tuple[Revoked, ...] = ()
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "authority", check_identifier(self.authority, "authority"))
        for name in ("version", "issued_at"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= U64_MAX:
                raise ValueError(f"{name} must be an unsigned 64-bit integer")
        if len(self.revoked) > MAX_REVOKED:
            raise ValueError(f"a revocation list holds at most {MAX_REVOKED} entries")
        entries = tuple(sorted(self.revoked))
        if len({e.identifier for e in entries}) != len(entries):
            raise ValueError("an identifier appears twice in a revocation list")
        object.__setattr__(self, "revoked", entries)
        object.__setattr__(self, "_index", {e.identifier: e.revoked_at for e in entries})

    def revoked_at(self, identifier: str) -> int | None:
        """When ``identifier`` was revoked, or ``None`` when it is not on the list."""
        return self._index.get(identifier)

    def is_revoked(self, identifier: str, credential_created_at: int | None = None) -> bool:
        """Whether ``identifier`` is revoked; with ``credential_created_at``, whether a
        credential created then is (one created after the revocation, when the member enrolled
        again, is not)."""
        at = self._index.get(identifier)
        if at is None:
            return False
        return credential_created_at is None or credential_created_at <= at

    def __contains__(self, identifier: object) -> bool:
        return identifier in self._index

    def __len__(self) -> int:
        return len(self.revoked)

    def encode(self) -> bytes:
        entries = head(4, len(self.revoked)) + b"".join(
            b"\x82" + enc_identifier(e.identifier) + enc_uint(e.revoked_at) for e in self.revoked)
        return encode_struct([(1, enc_identifier(self.authority)), (2, enc_uint(self.version)),
                              (3, enc_uint(self.issued_at)), (4, entries)])

    def to_versioned(self) -> bytes:
        return encode_versioned(REVOCATION_LIST_DATA_TYPE, self.encode())

    @classmethod
    def decode(cls, payload: bytes) -> RevocationListData:
        r = Reader(bytes(payload))
        v = read_struct(r, "revocation_list", {1: read_identifier, 2: _u64, 3: _u64,
                                               4: _entries}, required={1, 2, 3, 4})
        r.end("revocation_list")
        return cls(v[1], v[2], v[3], v[4])

@dataclass(frozen=True, slots=True)
class SignedRevocationList:
    data: bytes
    signature: Signature
    attestation: PurposeKeyAttestation
    content: RevocationListData = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        payload = read_versioned(self.data, REVOCATION_LIST_DATA_TYPE, "revocation_list.data")
        try:
            data = RevocationListData.decode(payload)
        except DecodeError as e:
            raise relocate(e, e.field, len(self.data) - len(payload)) from None
        object.__setattr__(self, "content", data)

    def encode(self) -> bytes:
        return (b"\x83" + enc_bytes(self.data) + encode_signature(self.signature)
                + self.attestation.encode())

    @classmethod
    def decode(cls, data: bytes) -> SignedRevocationList:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"expected bytes, got {type(data).__name__}",
                              field="revocation_list")
        data = bytes(data)
        check_size(data, "revocation_list", MAX_MESSAGE_SIZE)
        r = Reader(data)
        r.array("revocation_list", 3)
        raw = r.bytes("revocation_list.data")
        at = r.pos - len(raw)
        signature = read_signature(r, "revocation_list.signature")
        attestation = PurposeKeyAttestation.read(r, "revocation_list.attestation")
        r.end("revocation_list")
        try:
            return cls(raw, signature, attestation)
        except DecodeError as e:
            raise relocate(e, e.field, at) from None
