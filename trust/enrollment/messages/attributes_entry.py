"""``AttributesEntry`` (``ockam_identity``): a member as ``direct_authenticator`` shows it,
``{1: {bytes: bytes} attributes, 2: added_at u64, 3: expires_at u64?, 4: attested_by
Identifier?}``, plus, from us, ``5: true`` for a pre-trusted member (left out otherwise)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trust.enrollment.messages.common import (
    MAX_ATTRIBUTES,
    MAX_MESSAGE_SIZE,
    U64_MAX,
    check_identifier,
    check_text_attributes,
    enc_identifier,
    encode_struct,
    read_identifier,
    read_struct,
)
from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_bool, enc_bytes, enc_uint, head

__all__ = ["AttributesEntry"]


def _u64(r: Reader, f: str) -> int:
    return r.uint(f, max_value=U64_MAX)


def _true(r: Reader, f: str) -> bool:
    at = r.pos
    if not r.bool(f):
        raise DecodeError("only 'true' is sent here (false is left out)", field=f, offset=at)
    return True


def _bytes_map(r: Reader, f: str) -> dict[str, str]:
    start = r.pos
    n = r.map(f)
    if n > MAX_ATTRIBUTES:
        raise DecodeError(f"{n} attributes is more than the {MAX_ATTRIBUTES} allowed", field=f,
                          offset=start)
    out: dict[str, str] = {}
    last: bytes | None = None
    for _ in range(n):
        at = r.pos
        k = r.bytes(f"{f}.name")
        if last is not None and k <= last:
            raise DecodeError("attribute names must be in increasing order, each once", field=f,
                              offset=at)
        last = k
        v = r.bytes(f"{f}.value")
        try:
            out[k.decode("utf-8")] = v.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("an attribute is not UTF-8 text", field=f, offset=at) from None
    try:
        return check_text_attributes(out, f)
    except DecodeError as e:
        raise DecodeError(e.message, field=f, offset=start) from None


@dataclass(frozen=True, slots=True)
class AttributesEntry:
    attributes: Mapping[str, str] = field(default_factory=dict)
    added_at: int = 0
    expires_at: int | None = None
    attested_by: str | None = None
    pre_trusted: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes",
                           check_text_attributes(self.attributes, "attributes_entry.attributes"))
        if self.attested_by is not None:
            object.__setattr__(self, "attested_by", check_identifier(self.attested_by))

    def encode(self) -> bytes:
        items = sorted((k.encode(), v.encode()) for k, v in self.attributes.items())
        attrs = head(5, len(items)) + b"".join(enc_bytes(k) + enc_bytes(v) for k, v in items)
        return encode_struct([
            (1, attrs),
            (2, enc_uint(self.added_at)),
            (3, None if self.expires_at is None else enc_uint(self.expires_at)),
            (4, None if self.attested_by is None else enc_identifier(self.attested_by)),
            (5, enc_bool(True) if self.pre_trusted else None),
        ])

    @classmethod
    def read(cls, r: Reader, f: str = "attributes_entry") -> AttributesEntry:
        v = read_struct(r, f, {1: _bytes_map, 2: _u64, 3: _u64, 4: read_identifier, 5: _true},
                        required={1, 2})
        return cls(v[1], v[2], v.get(3), v.get(4), bool(v.get(5, False)))

    @classmethod
    def decode(cls, data: bytes) -> AttributesEntry:
        check_size(bytes(data), "attributes_entry", MAX_MESSAGE_SIZE)
        r = Reader(bytes(data))
        out = cls.read(r)
        r.end("attributes_entry")
        return out
