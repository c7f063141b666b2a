"""Purpose-key attestations (spec §6).

``PurposeKeyAttestation = [data, signature]`` where ``data`` is VersionedData (type 2) of
``PurposeKeyAttestationData = [subject, subject_latest_change_hash, public_key, created_at,
expires_at]`` and ``public_key`` is ``[0, [x25519 32 bytes]]`` (SecureChannelStatic) or
``[1, [PublicKey]]`` (CredentialSigning).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_bytes, enc_uint, relocate
from trust.models.primitives import (
    IDENTIFIER_SIZE,
    PURPOSE_KEY_ATTESTATION_DATA_TYPE,
    PublicKey,
    Signature,
    encode_public_key,
    encode_signature,
    encode_versioned,
    read_public_key,
    read_signature,
    read_versioned,
)

_U64 = (1 << 64) - 1


class Purpose(enum.IntEnum):
    SECURE_CHANNEL_STATIC = 0
    CREDENTIAL_SIGNING = 1

    @property
    def label(self) -> str:
        return "secure_channel" if self is Purpose.SECURE_CHANNEL_STATIC else "credential_signing"


@dataclass(frozen=True, slots=True)
class PurposePublicKey:
    """An X25519 key (``purpose`` SECURE_CHANNEL_STATIC, ``x25519`` set) or a credential
    verifying key (CREDENTIAL_SIGNING, ``signing`` set)."""

    purpose: Purpose
    x25519: bytes | None = None
    signing: PublicKey | None = None

    @classmethod
    def secure_channel(cls, x25519_public: bytes) -> PurposePublicKey:
        if len(x25519_public) != 32:
            raise DecodeError("an X25519 public key is 32 bytes", field="public_key")
        return cls(Purpose.SECURE_CHANNEL_STATIC, x25519=x25519_public)

    @classmethod
    def credential_signing(cls, public_key: PublicKey) -> PurposePublicKey:
        return cls(Purpose.CREDENTIAL_SIGNING, signing=public_key)

    def encode(self) -> bytes:
        if self.purpose is Purpose.SECURE_CHANNEL_STATIC:
            assert self.x25519 is not None
            return b"\x82\x00\x81" + enc_bytes(self.x25519)
        assert self.signing is not None
        return b"\x82\x01\x81" + encode_public_key(self.signing)

    @classmethod
    def read(cls, r: Reader, field_name: str) -> PurposePublicKey:
        r.array(field_name, 2)
        variant = r.uint(f"{field_name}.purpose")
        r.array(f"{field_name}.fields", 1)
        if variant == 0:
            return cls(Purpose.SECURE_CHANNEL_STATIC, x25519=r.bytes(f"{field_name}.x25519", 32))
        if variant == 1:
            return cls(Purpose.CREDENTIAL_SIGNING, signing=read_public_key(r, f"{field_name}.key"))
        raise DecodeError(f"unknown purpose {variant}", field=f"{field_name}.purpose")


@dataclass(frozen=True, slots=True)
class PurposeKeyAttestationData:
    subject: bytes
    subject_latest_change_hash: bytes
    public_key: PurposePublicKey
    created_at: int
    expires_at: int

    def encode(self) -> bytes:
        return (b"\x85" + enc_bytes(self.subject) + enc_bytes(self.subject_latest_change_hash)
                + self.public_key.encode() + enc_uint(self.created_at) + enc_uint(self.expires_at))

    @classmethod
    def decode(cls, data: bytes) -> PurposeKeyAttestationData:
        f = "attestation_data"
        r = Reader(data)
        r.array(f, 5)
        subject = r.bytes(f"{f}.subject", IDENTIFIER_SIZE)
        latest = r.bytes(f"{f}.subject_latest_change_hash", IDENTIFIER_SIZE)
        pk = PurposePublicKey.read(r, f"{f}.public_key")
        created = r.uint(f"{f}.created_at", max_value=_U64)
        expires = r.uint(f"{f}.expires_at", max_value=_U64)
        r.end(f)
        return cls(subject, latest, pk, created, expires)

    def to_versioned(self) -> bytes:
        return encode_versioned(PURPOSE_KEY_ATTESTATION_DATA_TYPE, self.encode())


@dataclass(frozen=True)
class PurposeKeyAttestation:
    data: bytes
    signature: Signature
    attestation_data: PurposeKeyAttestationData = field(init=False, compare=False, repr=False)
    data_hash: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        payload = read_versioned(self.data, PURPOSE_KEY_ATTESTATION_DATA_TYPE, "attestation.data")
        try:
            attestation_data = PurposeKeyAttestationData.decode(payload)
        except DecodeError as e:  # the payload ends the VersionedData
            raise relocate(e, e.field, len(self.data) - len(payload)) from None
        object.__setattr__(self, "attestation_data", attestation_data)
        object.__setattr__(self, "data_hash", hashlib.sha256(self.data).digest())

    def encode(self) -> bytes:
        return b"\x82" + enc_bytes(self.data) + encode_signature(self.signature)

    @classmethod
    def read(cls, r: Reader, field_name: str = "attestation") -> PurposeKeyAttestation:
        r.array(field_name, 2)
        data = r.bytes(f"{field_name}.data")
        at = r.pos - len(data)
        sig = read_signature(r, f"{field_name}.signature")
        try:
            return cls(data, sig)
        except DecodeError as e:
            raise relocate(e, f"{field_name}.{e.field or 'data'}", at) from None

    @classmethod
    def decode(cls, data: bytes) -> PurposeKeyAttestation:
        if not isinstance(data, (bytes, bytearray)):
            raise DecodeError(f"expected bytes, got {type(data).__name__}", field="attestation")
        check_size(data, "attestation")
        r = Reader(bytes(data))
        att = cls.read(r)
        r.end("attestation")
        return att
