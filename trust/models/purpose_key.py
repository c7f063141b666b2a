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
from trust.models.fastpath import KEY_PREFIX, FastPathMiss, arg, uint
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
from vaults.errors import VaultError

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

    @classmethod
    def from_versioned(cls, data: bytes) -> PurposeKeyAttestationData:
        """Decode an attestation's ``data`` (VersionedData, type 2, of this structure): the
        fast path for the shapes our encoder produces (:func:`decode_attestation_data_fast`),
        else the strict decoder (:meth:`from_versioned_strict`), which names the field."""
        fast = decode_attestation_data_fast(data)
        return fast if fast is not None else cls.from_versioned_strict(data)

    @classmethod
    def from_versioned_strict(cls, data: bytes) -> PurposeKeyAttestationData:
        """The general decoder of an attestation's ``data`` (precise errors, offsets in
        ``data``)."""
        payload = read_versioned(data, PURPOSE_KEY_ATTESTATION_DATA_TYPE, "attestation.data")
        try:
            return cls.decode(payload)
        except DecodeError as e:  # the payload ends the VersionedData
            raise relocate(e, e.field, len(data) - len(payload)) from None


_SECURE_CHANNEL_KEY = b"\x82\x00\x81\x58\x20"
_SIGNING_KEY = b"\x82\x01\x81"


def decode_attestation_data_fast(data: bytes) -> PurposeKeyAttestationData | None:
    """An attestation's ``data`` in the exact shape our encoder produces (``83 01 02``, a
    byte string holding ``85``, two 32-byte strings, the purpose key, two timestamps), read with
    direct indexing; None for anything else, and the strict decoder then decides. Whatever it
    returns, the strict decoder returns too (property test)."""
    try:
        if data[:3] != b"\x83\x01\x02":
            return None
        if data[3] == 0x58 and data[4] >= 24:  # the payload is 117 to 152 bytes long
            n, i = data[4], 5
        else:
            n, i = arg(data, 3, 0x40)
        if i + n != len(data) or data[i : i + 3] != b"\x85\x58\x20" or \
                data[i + 35 : i + 37] != b"\x58\x20":
            return None
        subject = data[i + 3 : i + 35]
        latest = data[i + 37 : i + 69]
        i += 69
        if data[i : i + 5] == _SECURE_CHANNEL_KEY:
            x25519 = data[i + 5 : i + 37]
            i += 37
            public_key = PurposePublicKey(Purpose.SECURE_CHANNEL_STATIC, x25519=x25519)
        elif data[i : i + 3] == _SIGNING_KEY:
            kind = KEY_PREFIX.get(data[i + 3 : i + 8])
            if kind is None:
                return None
            kt, size = kind
            key = data[i + 8 : i + 8 + size]
            i += 8 + size
            public_key = PurposePublicKey(Purpose.CREDENTIAL_SIGNING, signing=PublicKey(kt, key))
        else:
            return None
        created, i = uint(data, i)
        expires, i = uint(data, i)
    except (IndexError, FastPathMiss, VaultError):
        return None
    # every slice above was complete: a short one would have left i past the end
    if i != len(data):
        return None
    return PurposeKeyAttestationData(subject, latest, public_key, created, expires)


@dataclass(frozen=True)
class PurposeKeyAttestation:
    data: bytes
    signature: Signature
    attestation_data: PurposeKeyAttestationData = field(init=False, compare=False, repr=False)
    data_hash: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        data = decode_attestation_data_fast(self.data)
        if data is None:
            data = PurposeKeyAttestationData.from_versioned_strict(self.data)
        object.__setattr__(self, "attestation_data", data)
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
