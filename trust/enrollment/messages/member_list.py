"""The reply of ``direct_authenticator`` ``GET /members``: a map ``Identifier →
AttributesEntry``, identifiers in increasing byte order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from trust.enrollment.messages.attributes_entry import AttributesEntry
from trust.enrollment.messages.common import (
    MAX_MESSAGE_SIZE,
    check_identifier,
    enc_identifier,
    read_identifier,
)
from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, head

__all__ = ["MAX_LISTED_MEMBERS", "MemberList"]

MAX_LISTED_MEMBERS: Final = 20_000
"""Members one reply lists at most."""


@dataclass(frozen=True, slots=True)
class MemberList:
    members: Mapping[str, AttributesEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.members) > MAX_LISTED_MEMBERS:
            raise ValueError(f"a member list holds at most {MAX_LISTED_MEMBERS} members")
        object.__setattr__(self, "members", {check_identifier(k): v
                                             for k, v in sorted(self.members.items())})

    def encode(self) -> bytes:
        return head(5, len(self.members)) + b"".join(
            enc_identifier(k) + v.encode() for k, v in self.members.items())

    @classmethod
    def decode(cls, data: bytes) -> MemberList:
        data = bytes(data)
        check_size(data, "member_list", MAX_MESSAGE_SIZE)
        r = Reader(data)
        n = r.map("member_list")
        if n > MAX_LISTED_MEMBERS:
            raise DecodeError(f"more than {MAX_LISTED_MEMBERS} members", field="member_list",
                              offset=0)
        out: dict[str, AttributesEntry] = {}
        last = ""
        for i in range(n):
            at = r.pos
            k = read_identifier(r, f"member_list[{i}].identifier")
            if k <= last:
                raise DecodeError("identifiers must be in increasing order, each once",
                                  field="member_list", offset=at)
            last = k
            out[k] = AttributesEntry.read(r, f"member_list[{i}]")
        r.end("member_list")
        return cls(out)
