"""The reply of ``GET /audit``: an array of :class:`~.audit_entry.AuditEntry`, oldest first.

A reply holds as many of the entries asked for as fit in :data:`AUDIT_BODY_BUDGET` bytes (at
least one: an entry is at most :data:`MAX_AUDIT_ENTRY_SIZE`); the rest follow from the last
entry's sequence number (the query's ``after``). A reply shorter than the budget less one entry
was not cut (:func:`may_be_cut`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from trust.enrollment.messages.audit_entry import AuditEntry
from trust.enrollment.messages.audit_query import MAX_AUDIT_LIMIT
from trust.enrollment.messages.common import (
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_MESSAGE_SIZE,
)
from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, head

__all__ = ["AUDIT_BODY_BUDGET", "MAX_AUDIT_ENTRY_SIZE", "AuditLog", "fit_entries", "may_be_cut"]

AUDIT_BODY_BUDGET: Final = MAX_MESSAGE_SIZE - 64
"""The largest audit reply body (the response's envelope fits in the rest)."""
MAX_AUDIT_ENTRY_SIZE: Final = MAX_ATTRIBUTES * (3 + 128 + 3 + MAX_ATTRIBUTE_VALUE) + 1024
"""An encoded entry is never larger: its attributes (names of at most 128 bytes, values of at
most MAX_ATTRIBUTE_VALUE) and, with room to spare, the rest."""


def fit_entries(entries: Iterable[AuditEntry], budget: int = AUDIT_BODY_BUDGET
                ) -> tuple[AuditEntry, ...]:
    """The longest prefix of ``entries`` whose :class:`AuditLog` encodes to at most
    ``budget`` bytes."""
    used = 9  # (the array's head, at most)
    out: list[AuditEntry] = []
    for e in entries:
        used += len(e.encode())
        if used > budget:
            break
        out.append(e)
    return tuple(out)


def may_be_cut(body_size: int, budget: int = AUDIT_BODY_BUDGET) -> bool:
    """Whether a reply of ``body_size`` bytes may have been cut by :func:`fit_entries` (the
    next entry might not have fitted): then ask again after its last entry."""
    return body_size > budget - MAX_AUDIT_ENTRY_SIZE


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
