"""``AuditQuery`` (ours; ``direct_authenticator`` ``GET /audit``): ``{1: after u64?,
2: limit u32?}``: the audit entries with a sequence number above ``after``, at most ``limit``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from trust.enrollment.messages.common import U64_MAX, encode_struct, read_struct
from trust.models.cbor import Reader, check_size, enc_uint

__all__ = ["DEFAULT_AUDIT_LIMIT", "MAX_AUDIT_LIMIT", "AuditQuery"]

MAX_AUDIT_LIMIT: Final = 10_000
DEFAULT_AUDIT_LIMIT: Final = 1000
"""Entries an authority sends when the query names no limit."""


def _u64(r: Reader, f: str) -> int:
    return r.uint(f, max_value=U64_MAX)


def _limit(r: Reader, f: str) -> int:
    return r.uint(f, max_value=MAX_AUDIT_LIMIT)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    after: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.after is not None and not 0 <= self.after <= U64_MAX:
            raise ValueError("after must be an unsigned 64-bit integer")
        if self.limit is not None and not 0 <= self.limit <= MAX_AUDIT_LIMIT:
            raise ValueError(f"limit is at most {MAX_AUDIT_LIMIT}")

    def encode(self) -> bytes:
        return encode_struct([(1, None if self.after is None else enc_uint(self.after)),
                              (2, None if self.limit is None else enc_uint(self.limit))])

    @classmethod
    def decode(cls, data: bytes) -> AuditQuery:
        check_size(bytes(data), "audit_query", 1024)
        r = Reader(bytes(data))
        v = read_struct(r, "audit_query", {1: _u64, 2: _limit})
        r.end("audit_query")
        return cls(v.get(1), v.get(2))
