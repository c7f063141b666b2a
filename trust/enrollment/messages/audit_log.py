"""The reply of ``GET /audit``: an array of :class:`~.audit_entry.AuditEntry`, oldest first."""

from __future__ import annotations

from dataclasses import dataclass

from trust.enrollment.messages.audit_entry import AuditEntry
from trust.enrollment.messages.audit_query import MAX_AUDIT_LIMIT
from trust.enrollment.messages.common import MAX_MESSAGE_SIZE
from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, head

__all__ = ["AuditLog"]


@dataclass(frozen=True, slots=True)
class AuditLog:
    entries: tuple[AuditEntry, ...] = ()

    def encode(self) -> bytes:
        return head(4, len(self.entries)) + b"".join(e.encode() for e in self.entries)

    @classmethod
    def decode(cls, data: bytes) -> AuditLog:
        data = bytes(data)
        check_size(data, "audit_log", MAX_MESSAGE_SIZE)
        r = Reader(data)
        n = r.array("audit_log", max_len=MAX_AUDIT_LIMIT)
        entries = []
        last = -1
        for i in range(n):
            at = r.pos
            e = AuditEntry.read(r, f"audit_log[{i}]")
            if e.seq <= last:
                raise DecodeError("entries must be in increasing order", field="audit_log",
                                  offset=at)
            last = e.seq
            entries.append(e)
        r.end("audit_log")
        return cls(tuple(entries))
