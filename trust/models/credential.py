"""Credentials (spec §7) and truststack's selective-disclosure extension, byte for byte.

Ockam format::

    Credential              = [data: bstr, signature: Signature]
    data                    = VersionedData{1, 3, CredentialData}
    CredentialData          = [subject / null, subject_latest_change_hash / null,
                               Attributes, created_at, expires_at]
    Attributes              = [schema: uint, {* bstr => bstr}]      ; keys sorted bytewise
    CredentialAndPurposeKey = [Credential, PurposeKeyAttestation]

Selective disclosure (``docs/credentials.md``)::

    data                     = VersionedData{1, 128, SelectiveCredentialData}
    SelectiveCredentialData  = [subject, subject_latest_change_hash,
                                [schema: uint, [* digest: bstr .size 32]],   ; sorted, unique
                                created_at, expires_at]
    Disclosure               = [salt: bstr .size 16, name: bstr, value: bstr]
    digest                   = SHA-256(CBOR(Disclosure))
    DisclosableCredential    = [CredentialAndPurposeKey, [* bstr .cbor Disclosure]]
    Presentation             = [data: bstr, signature: Signature]        ; by the holder
    data                     = VersionedData{1, 129, PresentationData}
    PresentationData         = [credential: bstr .cbor CredentialAndPurposeKey,
                                disclosures: [* bstr .cbor Disclosure],
                                holder: bstr .cbor ChangeHistory,
                                audience: tstr, nonce: tstr, presented_at: uint]

Every object keeps the raw bytes it was decoded from (``data``, disclosures) so hashes and
signatures are computed over exactly what was received, and ``encode(decode(x)) == x``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_bytes, enc_text, enc_uint, head, relocate
from trust.models.change_history import ChangeHistory
from trust.models.fastpath import FastPathMiss, arg, signature
from trust.models.memo import BoundedCache, CacheInfo, decoded_size
from trust.models.primitives import (
    CREDENTIAL_DATA_TYPE,
    IDENTIFIER_SIZE,
    VERSION,
    Signature,
    encode_signature,
    encode_versioned,
    identifier_text,
    read_signature,
)
from trust.models.purpose_key import PurposeKeyAttestation

__all__ = [
    "CREDENTIAL_DATA_TYPE",
    "DIGEST_SIZE",
    "PRESENTATION_DATA_TYPE",
    "SALT_SIZE",
    "SELECTIVE_CREDENTIAL_DATA_TYPE",
    "AttributeMapping",
    "Attributes",
    "Credential",
    "CredentialAndPurposeKey",
    "CredentialData",
    "DisclosableCredential",
    "Disclosure",
    "Presentation",
    "PresentationData",
    "SelectiveCredentialData",
    "clear_decode_caches",
    "decode_artifact",
    "decode_cache_info",
]

SELECTIVE_CREDENTIAL_DATA_TYPE = 128
PRESENTATION_DATA_TYPE = 129
SALT_SIZE = 16
DIGEST_SIZE = 32
MAX_TEXT = 1024
"""Longest audience or nonce (UTF-8 bytes) a presentation may carry."""

_U64 = (1 << 64) - 1


def _bstr(data: bytes, pos: int, f: str, size: int | None = None) -> tuple[bytes, int]:
    """A byte string at ``pos`` (the hot path of every decoder here): short strings are read
    inline, anything else (long strings, wrong types, errors) goes through :class:`Reader`."""
    n = len(data)
    if pos < n:
        ib = data[pos]
        if 0x40 <= ib <= 0x57:
            start = pos + 1
            end = start + ib - 0x40
        elif ib == 0x58 and pos + 1 < n and data[pos + 1] >= 24:
            start = pos + 2
            end = start + data[pos + 1]
        else:
            start = end = -1
        if start >= 0 and end <= n and (size is None or end - start == size):
            return data[start:end], end
    r = Reader(data, pos)
    v = r.bytes(f, size)
    return v, r.pos


_ATTESTATIONS: BoundedCache[tuple[bytes, Signature], PurposeKeyAttestation] = BoundedCache(
    "models.attestations", 4 * 1024 * 1024, max_entry=decoded_size(b"\0" * 1024))
_HISTORIES: BoundedCache[bytes, ChangeHistory] = BoundedCache(
    "models.holder_histories", 16 * 1024 * 1024, max_entry=decoded_size(b"\0" * 16 * 1024))


def clear_decode_caches() -> None:
    """Forget decoded attestations and holder histories. Both are decoded from identical bytes
    over and over (every credential of an issuer key carries the same attestation, every
    presentation of a holder the same history), so decoders keep the immutable results: only
    small ones (they are not verified yet), within a bound on the bytes held
    (:func:`decode_cache_info`)."""
    _ATTESTATIONS.clear()
    _HISTORIES.clear()


def decode_cache_info() -> dict[str, CacheInfo]:
    """Entries and accounted bytes of the decode caches, by name."""
    return {"attestations": _ATTESTATIONS.info(), "holder_histories": _HISTORIES.info()}


def _split_versioned(data: bytes, f: str) -> tuple[int, bytes, int]:
    """(data_type, payload, payload's offset) of a VersionedData whose version is 1; nothing may
    follow."""
    r = Reader(data)
    r.array(f, 3)
    at = r.pos
    version = r.uint(f + ".version")
    if version != VERSION:
        raise DecodeError(f"unknown version {version} (only version {VERSION} exists)",
                          field=f + ".version", offset=at)
    dt = r.uint(f + ".data_type")
    payload, pos = _bstr(data, r.pos, f + ".data")
    if pos != len(data):
        raise DecodeError(f"{len(data) - pos} trailing bytes after the end of the item", field=f,
                          offset=pos)
    return dt, payload, pos - len(payload)


AttributeMapping = Mapping[str, str] | Mapping[bytes, bytes] | Mapping[str | bytes, str | bytes]
"""Attribute names to values, as text (UTF-8 encoded) or bytes."""


def _as_bytes(v: str | bytes) -> bytes:
    return v.encode("utf-8") if isinstance(v, str) else bytes(v)


def _sub(e: DecodeError, prefix: str, base: int) -> DecodeError:
    """``e`` from bytes that start at ``base`` inside the field ``prefix`` (see :func:`relocate`)."""
    return relocate(e, f"{prefix}.{e.field}" if e.field else prefix, base)


# ---------------------------------------------------------------------------------------------
# Ockam-format credential


@dataclass(frozen=True, slots=True)
class Attributes:
    """A schema identifier and a map of attribute names to values (both bytes), kept sorted
    bytewise by name (Rust ``BTreeMap<Vec<u8>, Vec<u8>>`` order)."""

    schema: int
    entries: tuple[tuple[bytes, bytes], ...]

    def __post_init__(self) -> None:
        if not 0 <= self.schema <= _U64:
            raise DecodeError("the schema identifier is a u64", field="attributes.schema")
        for i in range(1, len(self.entries)):
            if self.entries[i - 1][0] >= self.entries[i][0]:
                raise DecodeError("attribute names must be unique and sorted bytewise",
                                  field="attributes.map")

    @classmethod
    def of(cls, mapping: AttributeMapping | Iterable[tuple[str | bytes, str | bytes]],
           schema: int = 0) -> Attributes:
        """Attributes from a mapping (text is UTF-8 encoded); names are sorted bytewise."""
        items = mapping.items() if isinstance(mapping, Mapping) else mapping
        pairs: dict[bytes, bytes] = {}
        for k, v in items:
            name = _as_bytes(k)
            if name in pairs:
                raise DecodeError(f"attribute {name!r} given twice", field="attributes.map")
            pairs[name] = _as_bytes(v)
        return cls(schema, tuple(sorted(pairs.items())))

    def as_dict(self) -> dict[bytes, bytes]:
        return dict(self.entries)

    def encode(self) -> bytes:
        parts = [b"\x82", enc_uint(self.schema), head(5, len(self.entries))]
        for k, v in self.entries:
            parts.append(enc_bytes(k))
            parts.append(enc_bytes(v))
        return b"".join(parts)

    @classmethod
    def read(cls, r: Reader, f: str = "attributes") -> Attributes:
        r.array(f, 2)
        schema = r.uint(f"{f}.schema", max_value=_U64)
        fm = f + ".map"
        n = r.map(fm)
        data = r.data
        pos = r.pos
        if 2 * n > len(data) - pos:
            raise DecodeError(f"a map of {n} entries is longer than the data (truncated)",
                              field=fm, offset=pos)
        fk, fv = fm + ".key", fm + ".value"
        entries = []
        prev = b""
        for i in range(n):
            at = pos
            k, pos = _bstr(data, pos, fk)
            if i and k <= prev:
                raise DecodeError("attribute names must be unique and sorted bytewise", field=fm,
                                  offset=at)
            prev = k
            v, pos = _bstr(data, pos, fv)
            entries.append((k, v))
        r.pos = pos
        return cls(schema, tuple(entries))


@dataclass(frozen=True, slots=True)
class CredentialData:
    """The signed payload of an Ockam-format credential."""

    subject: bytes | None
    subject_latest_change_hash: bytes | None
    attributes: Attributes
    created_at: int
    expires_at: int

    def encode(self) -> bytes:
        subject = b"\xf6" if self.subject is None else enc_bytes(self.subject)
        latest = (b"\xf6" if self.subject_latest_change_hash is None
                  else enc_bytes(self.subject_latest_change_hash))
        return (b"\x85" + subject + latest + self.attributes.encode() + enc_uint(self.created_at)
                + enc_uint(self.expires_at))

    def to_versioned(self) -> bytes:
        return encode_versioned(CREDENTIAL_DATA_TYPE, self.encode())

    @property
    def schema(self) -> int:
        return self.attributes.schema

    @classmethod
    def decode(cls, data: bytes, f: str = "credential_data") -> CredentialData:
        r = Reader(data)
        r.array(f, 5)
        subject = latest = None
        if not r.peek_null():
            subject, r.pos = _bstr(data, r.pos, f + ".subject", IDENTIFIER_SIZE)
        if not r.peek_null():
            latest, r.pos = _bstr(data, r.pos, f + ".subject_latest_change_hash", IDENTIFIER_SIZE)
        attributes = Attributes.read(r, f"{f}.subject_attributes")
        created = r.uint(f"{f}.created_at", max_value=_U64)
        expires = r.uint(f"{f}.expires_at", max_value=_U64)
        r.end(f)
        return cls(subject, latest, attributes, created, expires)


# ---------------------------------------------------------------------------------------------
# selective disclosure


@dataclass(frozen=True, slots=True)
class SelectiveCredentialData:
    """The signed payload of a selective-disclosure credential: digests instead of attributes."""

    subject: bytes
    subject_latest_change_hash: bytes
    schema: int
    digests: tuple[bytes, ...]
    created_at: int
    expires_at: int

    def __post_init__(self) -> None:
        for i, d in enumerate(self.digests):
            if len(d) != DIGEST_SIZE:
                raise DecodeError(f"a digest is {DIGEST_SIZE} bytes", field="digests")
            if i and self.digests[i - 1] >= d:
                raise DecodeError("digests must be unique and sorted bytewise", field="digests")

    def encode(self) -> bytes:
        parts = [b"\x85", enc_bytes(self.subject), enc_bytes(self.subject_latest_change_hash),
                 b"\x82", enc_uint(self.schema), head(4, len(self.digests))]
        parts.extend(b"\x58\x20" + d for d in self.digests)
        parts.append(enc_uint(self.created_at))
        parts.append(enc_uint(self.expires_at))
        return b"".join(parts)

    def to_versioned(self) -> bytes:
        return encode_versioned(SELECTIVE_CREDENTIAL_DATA_TYPE, self.encode())

    @classmethod
    def decode(cls, data: bytes, f: str = "selective_credential_data") -> SelectiveCredentialData:
        r = Reader(data)
        r.array(f, 5)
        subject, r.pos = _bstr(data, r.pos, f + ".subject", IDENTIFIER_SIZE)
        latest, r.pos = _bstr(data, r.pos, f + ".subject_latest_change_hash", IDENTIFIER_SIZE)
        r.array(f + ".subject_attributes", 2)
        schema = r.uint(f + ".subject_attributes.schema", max_value=_U64)
        fd = f + ".subject_attributes.digests"
        n = r.array(fd)
        pos = r.pos
        if n * (DIGEST_SIZE + 2) > len(data) - pos:
            raise DecodeError("more digests than bytes", field=fd)
        digests: list[bytes] = []
        prev = b""
        for _ in range(n):
            if data[pos] == 0x58 and data[pos + 1] == DIGEST_SIZE:
                d = data[pos + 2 : pos + 2 + DIGEST_SIZE]
                pos += 2 + DIGEST_SIZE
            else:
                d, pos = _bstr(data, pos, fd, DIGEST_SIZE)
            if d <= prev:
                raise DecodeError("digests must be unique and sorted bytewise", field=fd)
            prev = d
            digests.append(d)
        r.pos = pos
        created = r.uint(f"{f}.created_at", max_value=_U64)
        expires = r.uint(f"{f}.expires_at", max_value=_U64)
        r.end(f)
        return cls(subject, latest, schema, tuple(digests), created, expires)


@dataclass(frozen=True)
class Disclosure:
    """One attribute of a selective credential, with its salt: ``raw`` is the CBOR
    ``[salt, name, value]`` whose SHA-256 is the digest the issuer signed."""

    raw: bytes
    salt: bytes = field(init=False, compare=False)
    name: bytes = field(init=False, compare=False)
    value: bytes = field(init=False, compare=False)
    digest: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        raw = self.raw
        if raw[:1] == b"\x83":
            pos = 1
        else:
            r = Reader(raw)
            r.array("disclosure", 3)
            pos = r.pos
        salt, pos = _bstr(raw, pos, "disclosure.salt", SALT_SIZE)
        name, pos = _bstr(raw, pos, "disclosure.name")
        value, pos = _bstr(raw, pos, "disclosure.value")
        if pos != len(raw):
            raise DecodeError(f"{len(raw) - pos} trailing bytes", field="disclosure")
        object.__setattr__(self, "salt", salt)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "digest", hashlib.sha256(self.raw).digest())

    @classmethod
    def create(cls, salt: bytes, name: str | bytes, value: str | bytes) -> Disclosure:
        if len(salt) != SALT_SIZE:
            raise DecodeError(f"a salt is {SALT_SIZE} bytes", field="disclosure.salt")
        return cls(b"\x83" + enc_bytes(salt) + enc_bytes(_as_bytes(name))
                   + enc_bytes(_as_bytes(value)))

    def encode(self) -> bytes:
        return self.raw


def _read_disclosures(r: Reader, f: str) -> tuple[Disclosure, ...]:
    n = r.array(f)
    if n > len(r.data) - r.pos:
        raise DecodeError("more disclosures than bytes", field=f)
    out = []
    data = r.data
    for i in range(n):
        raw, r.pos = _bstr(data, r.pos, f)
        try:
            out.append(Disclosure(raw))
        except DecodeError as e:
            raise _sub(e, f"{f}[{i}]", r.pos - len(raw)) from None
    return tuple(out)


def _encode_disclosures(disclosures: tuple[Disclosure, ...]) -> bytes:
    return head(4, len(disclosures)) + b"".join(enc_bytes(d.raw) for d in disclosures)


# ---------------------------------------------------------------------------------------------
# signed containers


def _credential_payload_strict(data: bytes) -> tuple[int, CredentialData | SelectiveCredentialData]:
    f = "credential.data"
    dt, payload, at = _split_versioned(data, f)
    if dt not in (CREDENTIAL_DATA_TYPE, SELECTIVE_CREDENTIAL_DATA_TYPE):
        raise DecodeError(f"expected data type {CREDENTIAL_DATA_TYPE} or "
                          f"{SELECTIVE_CREDENTIAL_DATA_TYPE}, found {dt}", field=f + ".data_type",
                          offset=2)
    try:
        if dt == CREDENTIAL_DATA_TYPE:
            return dt, CredentialData.decode(payload)
        return dt, SelectiveCredentialData.decode(payload)
    except DecodeError as e:
        raise _sub(e, f, at) from None


@dataclass(frozen=True)
class Credential:
    """``[data, signature]``: ``data`` is VersionedData of type 3 (Ockam) or 128 (selective)."""

    data: bytes
    signature: Signature
    data_type: int = field(init=False, compare=False, repr=False)
    payload: CredentialData | SelectiveCredentialData = field(init=False, compare=False, repr=False)
    data_hash: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        dt, decoded = _credential_payload_fast(self.data) or _credential_payload_strict(self.data)
        object.__setattr__(self, "data_type", dt)
        object.__setattr__(self, "payload", decoded)
        object.__setattr__(self, "data_hash", hashlib.sha256(self.data).digest())

    @property
    def is_selective(self) -> bool:
        return self.data_type == SELECTIVE_CREDENTIAL_DATA_TYPE

    @property
    def subject(self) -> bytes | None:
        return self.payload.subject

    @property
    def subject_text(self) -> str | None:
        s = self.payload.subject
        return None if s is None else identifier_text(s)

    @property
    def subject_latest_change_hash(self) -> bytes | None:
        return self.payload.subject_latest_change_hash

    @property
    def schema(self) -> int:
        return self.payload.schema

    @property
    def created_at(self) -> int:
        return self.payload.created_at

    @property
    def expires_at(self) -> int:
        return self.payload.expires_at

    def encode(self) -> bytes:
        return b"\x82" + enc_bytes(self.data) + encode_signature(self.signature)

    @classmethod
    def read(cls, r: Reader, f: str = "credential") -> Credential:
        r.array(f, 2)
        data, r.pos = _bstr(r.data, r.pos, f + ".data")
        at = r.pos - len(data)
        sig = read_signature(r, f + ".signature")
        try:
            return cls(data, sig)
        except DecodeError as e:
            field_name = e.field or "data"
            if field_name.startswith("credential."):
                field_name = field_name[len("credential."):]
            raise relocate(e, f"{f}.{field_name}", at) from None

    @classmethod
    def decode(cls, data: bytes) -> Credential:
        r = _reader(data, "credential")
        c = cls.read(r)
        r.end("credential")
        return c


@dataclass(frozen=True)
class CredentialAndPurposeKey:
    """A credential with the issuer's attestation of the key that signed it (Ockam's hex
    transport form)."""

    credential: Credential
    purpose_key_attestation: PurposeKeyAttestation

    def encode(self) -> bytes:
        return b"\x82" + self.credential.encode() + self.purpose_key_attestation.encode()

    def hex(self) -> str:
        return self.encode().hex()

    @property
    def issuer(self) -> bytes:
        """The identifier of the identity that attested the signing key."""
        return self.purpose_key_attestation.attestation_data.subject

    @classmethod
    def read(cls, r: Reader, f: str = "credential_and_purpose_key") -> CredentialAndPurposeKey:
        r.array(f, 2)
        cred = Credential.read(r, f + ".credential")
        fa = f + ".purpose_key_attestation"
        r.array(fa, 2)
        data, r.pos = _bstr(r.data, r.pos, fa + ".data")
        at = r.pos - len(data)
        sig = read_signature(r, fa + ".signature")
        att = _ATTESTATIONS.get((data, sig))
        if att is None:
            try:
                att = PurposeKeyAttestation(data, sig)
            except DecodeError as e:
                raise relocate(e, f"{fa}.{e.field or 'data'}", at) from None
            _ATTESTATIONS.put((data, sig), att, decoded_size(data))
        return cls(cred, att)

    @classmethod
    def decode(cls, data: bytes) -> CredentialAndPurposeKey:
        r = _reader(data, "credential_and_purpose_key")
        fast = _cpk_fast(r.data)
        if fast is not None:
            return fast
        v = cls.read(r)
        r.end("credential_and_purpose_key")
        return v


@dataclass(frozen=True)
class DisclosableCredential:
    """What the holder of a selective credential keeps: the credential and every disclosure."""

    credential: CredentialAndPurposeKey
    disclosures: tuple[Disclosure, ...]

    def __post_init__(self) -> None:
        if not self.credential.credential.is_selective:
            raise DecodeError("not a selective-disclosure credential (data type 128)",
                              field="disclosable_credential.credential")

    def encode(self) -> bytes:
        return b"\x82" + self.credential.encode() + _encode_disclosures(self.disclosures)

    def hex(self) -> str:
        return self.encode().hex()

    @classmethod
    def decode(cls, data: bytes) -> DisclosableCredential:
        f = "disclosable_credential"
        r = _reader(data, f)
        r.array(f, 2)
        cpk = CredentialAndPurposeKey.read(r, f"{f}.credential")
        disclosures = _read_disclosures(r, f"{f}.disclosures")
        r.end(f)
        return cls(cpk, disclosures)


@dataclass(frozen=True)
class PresentationData:
    """What the holder signs. The credential and the holder's history are embedded as byte
    strings (``credential_raw``, ``holder_raw``): exactly the bytes that were presented."""

    credential: CredentialAndPurposeKey
    disclosures: tuple[Disclosure, ...]
    holder: ChangeHistory
    audience: str
    nonce: str
    presented_at: int
    credential_raw: bytes = field(default=b"", compare=False, repr=False)
    holder_raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.credential_raw:
            object.__setattr__(self, "credential_raw", self.credential.encode())
        if not self.holder_raw:
            object.__setattr__(self, "holder_raw", self.holder.encode())
        if not self.credential.credential.is_selective:
            raise DecodeError("a presentation carries a selective-disclosure credential",
                              field="presentation_data.credential")

    def encode(self) -> bytes:
        return (b"\x86" + enc_bytes(self.credential_raw) + _encode_disclosures(self.disclosures)
                + enc_bytes(self.holder_raw) + enc_text(self.audience) + enc_text(self.nonce)
                + enc_uint(self.presented_at))

    def to_versioned(self) -> bytes:
        return encode_versioned(PRESENTATION_DATA_TYPE, self.encode())

    @classmethod
    def decode(cls, data: bytes, f: str = "presentation_data") -> PresentationData:
        r = Reader(data)
        r.array(f, 6)
        fc = f + ".credential"
        credential_raw, r.pos = _bstr(data, r.pos, fc)
        try:
            cpk = CredentialAndPurposeKey.decode(credential_raw)
        except DecodeError as e:
            raise _sub(e, fc, r.pos - len(credential_raw)) from None
        disclosures = _read_disclosures(r, f + ".disclosures")
        fh = f + ".holder"
        holder_raw, r.pos = _bstr(data, r.pos, fh)
        holder = _HISTORIES.get(holder_raw)
        if holder is None:
            try:
                holder = ChangeHistory.decode(holder_raw)
            except DecodeError as e:
                raise _sub(e, fh, r.pos - len(holder_raw)) from None
            _HISTORIES.put(holder_raw, holder, decoded_size(holder_raw))
        audience = _read_short_text(r, f + ".audience")
        nonce = _read_short_text(r, f + ".nonce")
        presented_at = r.uint(f + ".presented_at", max_value=_U64)
        r.end(f)
        return cls(cpk, disclosures, holder, audience, nonce, presented_at, credential_raw,
                   holder_raw)


def _presentation_data_strict(data: bytes) -> PresentationData:
    dt, payload, at = _split_versioned(data, "presentation.data")
    if dt != PRESENTATION_DATA_TYPE:
        raise DecodeError(f"expected data type {PRESENTATION_DATA_TYPE}, found {dt}",
                          field="presentation.data.data_type", offset=2)
    try:
        return PresentationData.decode(payload)
    except DecodeError as e:
        raise _sub(e, "presentation.data", at) from None


def _read_short_text(r: Reader, f: str) -> str:
    t = r.text(f)
    if len(t.encode("utf-8")) > MAX_TEXT:
        raise DecodeError(f"longer than {MAX_TEXT} bytes", field=f)
    return t


@dataclass(frozen=True)
class Presentation:
    """``[data, signature]``: the holder's signature (its identity's latest key) over
    ``SHA-256(data)``, ``data`` = VersionedData{1, 129, PresentationData}."""

    data: bytes
    signature: Signature
    presentation_data: PresentationData = field(init=False, compare=False, repr=False)
    data_hash: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        pd = _presentation_data_fast(self.data) or _presentation_data_strict(self.data)
        object.__setattr__(self, "presentation_data", pd)
        object.__setattr__(self, "data_hash", hashlib.sha256(self.data).digest())

    def encode(self) -> bytes:
        return b"\x82" + enc_bytes(self.data) + encode_signature(self.signature)

    def hex(self) -> str:
        return self.encode().hex()

    @classmethod
    def decode(cls, data: bytes) -> Presentation:
        f = "presentation"
        r = _reader(data, f)
        outer = _signed_fast(r.data, 0)
        if outer is not None and outer[2] == len(r.data):
            raw, sig = outer[0], outer[1]
            at = -1  # found only when needed: ``[data, signature]`` ends the input
        else:
            r.array(f, 2)
            raw, r.pos = _bstr(r.data, r.pos, f + ".data")
            at = r.pos - len(raw)
            sig = read_signature(r, f + ".signature")
            r.end(f)
        try:
            return cls(raw, sig)
        except DecodeError as e:
            field_name = e.field or "data"
            if not field_name.startswith("presentation."):
                field_name = "presentation." + field_name
            if at < 0:
                at = len(r.data) - len(encode_signature(sig)) - len(raw)
            raise relocate(e, field_name, at) from None


# ---------------------------------------------------------------------------------------------
# Fast paths. Verifying a credential or a presentation is dominated by one or two signature
# checks; decoding must stay small next to them. These parsers walk the exact shapes our encoder
# produces with direct indexing and give up (None) on anything unexpected, so the strict Reader
# path above decides, and names the field, for every input they do not accept. They accept
# nothing the strict path refuses (the property tests compare the two on mutated input).


def _fbytes(b: bytes, i: int) -> tuple[bytes, int]:
    h = b[i]
    if 0x40 <= h <= 0x57:
        start = i + 1
        end = start + h - 0x40
    elif h == 0x58 and b[i + 1] >= 24:
        start = i + 2
        end = start + b[i + 1]
    elif h == 0x59 and b[i + 1]:
        start = i + 3
        end = start + (b[i + 1] << 8 | b[i + 2])
    else:
        start, end = arg(b, i, 0x40)
        start, end = end, end + start
    if end > len(b):
        raise FastPathMiss
    return b[start:end], end


def _ftext(b: bytes, i: int) -> tuple[str, int]:
    n, i = arg(b, i, 0x60)
    end = i + n
    if end > len(b) or n > MAX_TEXT:
        raise FastPathMiss
    try:
        return b[i:end].decode("utf-8"), end
    except UnicodeDecodeError:
        raise FastPathMiss from None


def _fversioned(d: bytes) -> tuple[int, bytes]:
    if d[0] != 0x83 or d[1] != VERSION:
        raise FastPathMiss
    dt, i = arg(d, 2, 0)
    payload, i = _fbytes(d, i)
    if i != len(d):
        raise FastPathMiss
    return dt, payload


def _fsubject(p: bytes, i: int, nullable: bool) -> tuple[bytes | None, int]:
    if nullable and p[i] == 0xF6:
        return None, i + 1
    if p[i : i + 2] != b"\x58\x20" or i + 34 > len(p):
        raise FastPathMiss
    return p[i + 2 : i + 34], i + 34


def _fcredential_data(p: bytes) -> CredentialData:
    if p[0] != 0x85:
        raise FastPathMiss
    subject, i = _fsubject(p, 1, True)
    latest, i = _fsubject(p, i, True)
    if p[i] != 0x82:
        raise FastPathMiss
    schema, i = arg(p, i + 1, 0)
    n, i = arg(p, i, 0xA0)
    if 2 * n > len(p) - i:
        raise FastPathMiss
    entries = []
    prev = b""
    for k in range(n):
        name, i = _fbytes(p, i)
        if k and name <= prev:
            raise FastPathMiss
        value, i = _fbytes(p, i)
        entries.append((name, value))
        prev = name
    created, i = arg(p, i, 0)
    expires, i = arg(p, i, 0)
    if i != len(p):
        raise FastPathMiss
    return CredentialData(subject, latest, Attributes(schema, tuple(entries)), created, expires)


def _fselective_data(p: bytes) -> SelectiveCredentialData:
    if p[0] != 0x85:
        raise FastPathMiss
    subject, i = _fsubject(p, 1, False)
    latest, i = _fsubject(p, i, False)
    if p[i] != 0x82 or subject is None or latest is None:
        raise FastPathMiss
    schema, i = arg(p, i + 1, 0)
    n, i = arg(p, i, 0x80)
    if n * (DIGEST_SIZE + 2) > len(p) - i:
        raise FastPathMiss
    digests = []
    prev = b""
    for _ in range(n):
        if p[i : i + 2] != b"\x58\x20":
            raise FastPathMiss
        d = p[i + 2 : i + 34]
        if d <= prev:
            raise FastPathMiss
        digests.append(d)
        prev = d
        i += 34
    created, i = arg(p, i, 0)
    expires, i = arg(p, i, 0)
    if i != len(p):
        raise FastPathMiss
    return SelectiveCredentialData(subject, latest, schema, tuple(digests), created, expires)


def _credential_payload_fast(data: bytes) -> tuple[int, CredentialData | SelectiveCredentialData] | None:
    try:
        dt, payload = _fversioned(data)
        if dt == CREDENTIAL_DATA_TYPE:
            return dt, _fcredential_data(payload)
        if dt == SELECTIVE_CREDENTIAL_DATA_TYPE:
            return dt, _fselective_data(payload)
    except (FastPathMiss, IndexError, DecodeError):
        pass
    return None


def _signed_fast(b: bytes, i: int) -> tuple[bytes, Signature, int] | None:
    """``[data: bstr, signature]`` at ``i``: (data, signature, end)."""
    try:
        if b[i] != 0x82:
            return None
        data, i = _fbytes(b, i + 1)
        sig, i = signature(b, i)
    except (FastPathMiss, IndexError):
        return None
    return data, sig, i


def _cpk_fast(b: bytes) -> CredentialAndPurposeKey | None:
    try:
        if b[0] != 0x82:
            return None
        cred = _signed_fast(b, 1)
        if cred is None:
            return None
        att = _signed_fast(b, cred[2])
        if att is None or att[2] != len(b):
            return None
        credential = Credential(cred[0], cred[1])
        key = (att[0], att[1])
        attestation = _ATTESTATIONS.get(key)
        if attestation is None:
            attestation = PurposeKeyAttestation(att[0], att[1])
            _ATTESTATIONS.put(key, attestation, decoded_size(att[0]))
    except (IndexError, DecodeError):
        return None
    return CredentialAndPurposeKey(credential, attestation)


def _presentation_data_fast(data: bytes) -> PresentationData | None:
    try:
        dt, p = _fversioned(data)
        if dt != PRESENTATION_DATA_TYPE or p[0] != 0x86:
            return None
        credential_raw, i = _fbytes(p, 1)
        cpk = _cpk_fast(credential_raw)
        if cpk is None or not cpk.credential.is_selective:
            return None
        n, i = arg(p, i, 0x80)
        if n > len(p) - i:
            return None
        disclosures = []
        for _ in range(n):
            raw, i = _fbytes(p, i)
            disclosures.append(Disclosure(raw))
        holder_raw, i = _fbytes(p, i)
        holder = _HISTORIES.get(holder_raw)
        if holder is None:
            holder = ChangeHistory.decode(holder_raw)
            _HISTORIES.put(holder_raw, holder, decoded_size(holder_raw))
        audience, i = _ftext(p, i)
        nonce, i = _ftext(p, i)
        presented_at, i = arg(p, i, 0)
        if i != len(p):
            return None
    except (FastPathMiss, IndexError, DecodeError):
        return None
    return PresentationData(cpk, tuple(disclosures), holder, audience, nonce, presented_at,
                            credential_raw, holder_raw)


def _reader(data: bytes, f: str) -> Reader:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", field=f)
    data = bytes(data)
    check_size(data, f)
    return Reader(data)


Artifact = Credential | CredentialAndPurposeKey | DisclosableCredential | Presentation


def decode_artifact(data: bytes) -> Artifact:
    """Decode any of the credential objects by its shape: a presentation or a bare credential
    (``[bstr, sig]``, told apart by the VersionedData type), a credential with its purpose key
    (``[[bstr, sig], att]``), or a disclosable credential (``[[[bstr, sig], att], [...]]``)."""
    r = _reader(data, "credential")
    r.array("credential", 2)
    if r.at_end():
        raise DecodeError("the data ends where the credential should start (truncated)",
                          field="credential", offset=r.pos)
    major = r.data[r.pos] >> 5
    if major == 2:
        inner = r.bytes("credential.data")
        vr = Reader(inner)
        vr.array("credential.data", 3)
        vr.uint("credential.data.version")
        dt = vr.uint("credential.data.data_type")
        if dt == PRESENTATION_DATA_TYPE:
            return Presentation.decode(data)
        return Credential.decode(data)
    if major != 4:
        raise DecodeError("not a credential, credential with purpose key, disclosable "
                          "credential or presentation", field="credential", offset=r.pos)
    r.array("credential.credential", 2)
    if not r.at_end() and r.data[r.pos] >> 5 == 4:
        return DisclosableCredential.decode(data)
    return CredentialAndPurposeKey.decode(data)
