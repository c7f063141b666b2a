"""The reply of ``direct_authenticator`` ``GET /member_ids``: an array of identifiers."""

from __future__ import annotations

from dataclasses import dataclass

from trust.enrollment.messages.common import (
    MAX_MESSAGE_SIZE,
    check_identifier,
    enc_identifier,
    read_identifier,
)
from trust.enrollment.messages.member_list import MAX_LISTED_MEMBERS
from trust.models.cbor import Reader, check_size, head

__all__ = ["MemberIds"]


@dataclass(frozen=True, slots=True)
class MemberIds:
    identifiers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.identifiers) > MAX_LISTED_MEMBERS:
            raise ValueError(f"at most {MAX_LISTED_MEMBERS} identifiers")
        object.__setattr__(self, "identifiers",
                           tuple(check_identifier(i) for i in self.identifiers))

    def encode(self) -> bytes:
        return head(4, len(self.identifiers)) + b"".join(enc_identifier(i)
                                                         for i in self.identifiers)

    @classmethod
    def decode(cls, data: bytes) -> MemberIds:
        data = bytes(data)
        check_size(data, "member_ids", MAX_MESSAGE_SIZE)
        r = Reader(data)
        n = r.array("member_ids", max_len=MAX_LISTED_MEMBERS)
        ids = tuple(read_identifier(r, f"member_ids[{i}]") for i in range(n))
        r.end("member_ids")
        return cls(ids)
