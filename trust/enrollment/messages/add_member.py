"""``AddMember`` (``direct_authenticator`` ``POST /members``): ``{1: member Identifier,
2: {text: text} attributes}`` (Ockam's ``direct/types.rs``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trust.enrollment.messages.common import (
    MAX_MESSAGE_SIZE,
    check_identifier,
    check_text_attributes,
    enc_identifier,
    enc_text_map,
    encode_struct,
    read_identifier,
    read_struct,
    read_text_map,
)
from trust.models.cbor import Reader, check_size

__all__ = ["AddMember"]


@dataclass(frozen=True, slots=True)
class AddMember:
    member: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "member", check_identifier(self.member, "add_member.member"))
        object.__setattr__(self, "attributes",
                           check_text_attributes(self.attributes, "add_member.attributes"))

    def encode(self) -> bytes:
        return encode_struct([(1, enc_identifier(self.member)),
                              (2, enc_text_map(self.attributes))])

    @classmethod
    def read(cls, r: Reader, f: str = "add_member") -> AddMember:
        v = read_struct(r, f, {1: read_identifier, 2: read_text_map}, required={1, 2})
        return cls(v[1], v[2])

    @classmethod
    def decode(cls, data: bytes) -> AddMember:
        check_size(bytes(data), "add_member", MAX_MESSAGE_SIZE)
        r = Reader(bytes(data))
        out = cls.read(r)
        r.end("add_member")
        return out
