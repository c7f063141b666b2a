"""What the authority stores, as Protocols (the node or CLI picks the implementation:
:class:`MemoryAuthorityRepository` here, SQLite and PostgreSQL in
:mod:`trust.storage.authority`).

* **members**: identifier, attributes (text → text), who added it and when, pre-trusted or not;
* **tickets**: the SHA-256 of the one-time code (never the code), attributes, creator,
  creation and expiry times, usage count and uses left, a loggable reference;
* **audit log**: who added, changed or removed whom, which ticket was created or redeemed (by
  reference);
* **revocations**: deleted members' identifiers with the time of deletion, and a version that
  grows with every change of that list;
* **settings**: small named values shared by replicas (e.g. the credential-signing key's
  attestation).

Every method that changes several of them does so in one transaction: a redemption decrements
the ticket, writes the member and appends the audit entry, or does nothing.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from trust.enrollment.errors import TicketExpiredError, TicketUnknownError, TicketUsedError
from trust.enrollment.messages.audit_entry import AuditEntry
from trust.enrollment.messages.revocation_list import Revoked
from trust.errors import ConflictError

__all__ = [
    "REDEEM_ACTION",
    "AuditRecord",
    "AuthorityRepository",
    "Member",
    "MemberMerge",
    "MemoryAuthorityRepository",
    "Redemption",
    "RevocationListFullError",
    "TicketLimitError",
    "TicketRecord",
    "new_member",
    "redeem_audit",
]


@dataclass(frozen=True)
class Member:
    identifier: str
    attributes: Mapping[str, str]
    added_by: str
    added_at: int
    pre_trusted: bool = False

    def as_json(self) -> dict[str, object]:
        return {"identifier": self.identifier, "attributes": dict(self.attributes),
                "added_by": self.added_by, "added_at": self.added_at,
                "pre_trusted": self.pre_trusted}


@dataclass(frozen=True)
class TicketRecord:
    reference: str
    code_hash: bytes = field(repr=False)
    attributes: Mapping[str, str]
    created_by: str
    created_at: int
    expires_at: int
    usage_count: int
    uses_left: int

    def as_json(self) -> dict[str, object]:
        return {"reference": self.reference, "attributes": dict(self.attributes),
                "created_by": self.created_by, "created_at": self.created_at,
                "expires_at": self.expires_at, "usage_count": self.usage_count,
                "uses_left": self.uses_left}


@dataclass(frozen=True)
class AuditRecord:
    """An audit entry to append (the repository numbers it)."""

    at: int
    actor: str
    action: str
    subject: str | None = None
    ticket: str | None = None
    attributes: Mapping[str, str] | None = None

    def entry(self, seq: int) -> AuditEntry:
        return AuditEntry(seq, self.at, self.actor, self.action, self.subject, self.ticket,
                          None if self.attributes is None else dict(self.attributes))


@dataclass(frozen=True)
class Redemption:
    """A ticket redeemed: the ticket as it is now (``uses_left`` decremented), the member as
    written, and the member before (``None`` for a new member)."""

    ticket: TicketRecord
    member: Member
    previous: Member | None


class RevocationListFullError(ConflictError):
    """A deletion would put more entries on the revocation list than allowed."""


class TicketLimitError(ConflictError):
    """As many tickets as allowed are stored already."""


MemberMerge = Callable[[Member, TicketRecord], Member]
"""Given the member before (one exists) and the ticket, the member to write. Runs inside the
redemption's transaction; raising aborts it (the ticket is not used)."""

REDEEM_ACTION = "ticket.redeem"


def new_member(identifier: str, ticket: TicketRecord, now: int) -> Member:
    """The member a redemption makes of an identifier that is not a member yet: exactly the
    ticket's attributes, added by the ticket's creator, at ``now``."""
    return Member(identifier, dict(sorted(ticket.attributes.items())), ticket.created_by, now)


def redeem_audit(redemption: Redemption, now: int) -> AuditRecord:
    """The audit entry of a redemption: the redeemer, the ticket's reference, the attributes
    written."""
    m = redemption.member
    return AuditRecord(now, m.identifier, REDEEM_ACTION, m.identifier,
                       redemption.ticket.reference, m.attributes)


class AuthorityRepository(Protocol):
    # -- members ----------------------------------------------------------------------------
    async def get_member(self, identifier: str) -> Member | None: ...

    async def list_members(self, *, limit: int, after: str = "") -> list[Member]:
        """Members in identifier order, those after ``after``, at most ``limit``."""
        ...

    async def put_member(self, member: Member, audit: AuditRecord) -> Member | None:
        """Insert or replace ``member`` (never a pre-trusted one: :class:`ConflictError`) and
        append ``audit``; returns the member before."""
        ...

    async def delete_member(self, identifier: str, audit: AuditRecord, *, revoked_at: int,
                            room: int | None = None) -> Member | None:
        """Delete a member that is not pre-trusted, put it on the revocation list (revoked at
        ``revoked_at``, version + 1), delete the tickets it created that have uses left, and
        append ``audit``; ``None`` (nothing changed) when there is no such member or it is
        pre-trusted. With ``room``: :class:`RevocationListFullError` (nothing changed) when the
        revocation list would then hold more than ``room`` entries (counted in the same
        transaction)."""
        ...

    async def replace_pre_trusted(self, members: list[Member], audit: list[AuditRecord]
                                  ) -> None:
        """Replace every pre-trusted member with ``members`` (a member of the same identifier
        that is not pre-trusted is replaced too)."""
        ...

    # -- tickets ----------------------------------------------------------------------------
    async def add_ticket(self, ticket: TicketRecord, audit: AuditRecord, *,
                         max_tickets: int | None = None) -> None:
        """Store a new ticket (a second ticket with the same code hash or reference is a
        :class:`ConflictError`). With ``max_tickets``: :class:`TicketLimitError` (nothing
        stored) when that many are stored already (counted in the same transaction, so
        concurrent calls never store more)."""
        ...

    async def redeem_ticket(self, code_hash: bytes, identifier: str, now: int,
                            merge: MemberMerge) -> Redemption:
        """Atomically: use the ticket with this code hash once, write the member (for an
        identifier that is no member yet :func:`new_member`, else what ``merge`` returns given
        the member before), append :func:`redeem_audit`. Of concurrent redemptions of a ticket
        with one use left, exactly one succeeds. Raises :class:`TicketUnknownError`,
        :class:`TicketExpiredError` (``expires_at <= now``) or :class:`TicketUsedError`, and
        then changes nothing; a pre-trusted member is never overwritten
        (:class:`ConflictError`). (The rule for a new member is fixed so that a database can
        do the whole redemption in one statement.)"""
        ...

    async def get_ticket(self, reference: str) -> TicketRecord | None: ...

    async def find_ticket(self, code_hash: bytes) -> TicketRecord | None:
        """The ticket with this code hash, if any."""
        ...

    async def count_tickets(self) -> int:
        """How many tickets are stored (used, unused and expired until purged)."""
        ...

    async def purge_tickets(self, *, expired_before: int) -> int:
        """Delete tickets that expired before ``expired_before`` (used-up tickets stay until
        then, so a second use is told so); returns how many."""
        ...

    # -- audit ------------------------------------------------------------------------------
    async def audit_log(self, *, after: int, limit: int) -> list[AuditEntry]:
        """Entries with a sequence number above ``after``, oldest first, at most ``limit``."""
        ...

    async def purge_audit(self, *, before: int) -> int:
        """Delete audit entries recorded before ``before``; returns how many."""
        ...

    # -- revocations ------------------------------------------------------------------------
    async def revocations(self) -> tuple[int, list[Revoked]]:
        """The revocation list's version and entries."""
        ...

    async def revocation_version(self) -> int: ...

    async def expire_revocations(self, *, revoked_before: int) -> int:
        """Drop entries revoked before ``revoked_before`` (every credential they revoke has
        expired); the version grows when any was dropped. Returns how many."""
        ...

    # -- settings ---------------------------------------------------------------------------
    async def get_setting(self, key: str) -> bytes | None: ...

    async def put_setting(self, key: str, value: bytes, *, replace: bool = True) -> bytes:
        """Store ``value`` under ``key`` (with ``replace=False`` only when there is none);
        returns the value stored (the existing one when it was kept)."""
        ...

    async def close(self) -> None: ...


def same_hash(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two code hashes."""
    return hmac.compare_digest(a, b)


class MemoryAuthorityRepository:
    """An in-process :class:`AuthorityRepository` (tests, single-process authorities that need
    no persistence). One lock serialises every change."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._members: dict[str, Member] = {}
        self._tickets: dict[str, TicketRecord] = {}
        self._by_hash: dict[bytes, str] = {}
        self._audit: list[AuditEntry] = []
        self._seq = 0
        self._revoked: dict[str, int] = {}
        self._version = 0
        self._settings: dict[str, bytes] = {}

    def _append(self, audit: AuditRecord) -> None:
        self._seq += 1
        self._audit.append(audit.entry(self._seq))

    async def get_member(self, identifier: str) -> Member | None:
        return self._members.get(identifier)

    async def list_members(self, *, limit: int, after: str = "") -> list[Member]:
        return [self._members[k] for k in sorted(self._members) if k > after][:limit]

    async def put_member(self, member: Member, audit: AuditRecord) -> Member | None:
        async with self._lock:
            before = self._members.get(member.identifier)
            if before is not None and before.pre_trusted:
                raise ConflictError("a pre-trusted member is changed only at authority start")
            self._members[member.identifier] = member
            self._append(audit)
            return before

    async def delete_member(self, identifier: str, audit: AuditRecord, *, revoked_at: int,
                            room: int | None = None) -> Member | None:
        async with self._lock:
            before = self._members.get(identifier)
            if before is None or before.pre_trusted:
                return None
            if room is not None and \
                    len(self._revoked) - (identifier in self._revoked) >= room:
                raise RevocationListFullError("the revocation list is full")
            del self._members[identifier]
            for k in [k for k, t in self._tickets.items()
                      if t.created_by == identifier and t.uses_left > 0]:
                del self._by_hash[self._tickets.pop(k).code_hash]
            self._revoked[identifier] = revoked_at
            self._version += 1
            self._append(audit)
            return before

    async def replace_pre_trusted(self, members: list[Member], audit: list[AuditRecord]
                                  ) -> None:
        async with self._lock:
            for k in [k for k, m in self._members.items() if m.pre_trusted]:
                del self._members[k]
            for m in members:
                self._members[m.identifier] = replace(m, pre_trusted=True)
            for a in audit:
                self._append(a)

    async def add_ticket(self, ticket: TicketRecord, audit: AuditRecord, *,
                         max_tickets: int | None = None) -> None:
        async with self._lock:
            if max_tickets is not None and len(self._tickets) >= max_tickets:
                raise TicketLimitError(f"{max_tickets} tickets are stored, the limit")
            if ticket.reference in self._tickets or ticket.code_hash in self._by_hash:
                raise ConflictError("a ticket with this reference or code exists")
            self._tickets[ticket.reference] = ticket
            self._by_hash[ticket.code_hash] = ticket.reference
            self._append(audit)

    async def redeem_ticket(self, code_hash: bytes, identifier: str, now: int,
                            merge: MemberMerge) -> Redemption:
        async with self._lock:
            ref = self._by_hash.get(code_hash)
            found = None if ref is None else self._tickets.get(ref)
            if found is None or not same_hash(found.code_hash, code_hash):
                raise TicketUnknownError("unknown enrollment ticket")
            if found.expires_at <= now:
                raise TicketExpiredError(f"enrollment ticket {found.reference} has expired")
            if found.uses_left <= 0:
                raise TicketUsedError(f"enrollment ticket {found.reference} was already used")
            before = self._members.get(identifier)
            member = new_member(identifier, found, now) if before is None else \
                merge(before, found)
            if member.identifier != identifier or (before is not None and before.pre_trusted):
                raise ConflictError("a pre-trusted member is changed only at authority start")
            used = replace(found, uses_left=found.uses_left - 1)
            self._tickets[found.reference] = used
            self._members[member.identifier] = member
            result = Redemption(used, member, before)
            self._append(redeem_audit(result, now))
            return result

    async def get_ticket(self, reference: str) -> TicketRecord | None:
        return self._tickets.get(reference)

    async def find_ticket(self, code_hash: bytes) -> TicketRecord | None:
        ref = self._by_hash.get(code_hash)
        return None if ref is None else self._tickets.get(ref)

    async def count_tickets(self) -> int:
        return len(self._tickets)

    async def purge_tickets(self, *, expired_before: int) -> int:
        async with self._lock:
            gone = [k for k, t in self._tickets.items()
                    if t.expires_at < expired_before]
            for k in gone:
                del self._by_hash[self._tickets.pop(k).code_hash]
            return len(gone)

    async def audit_log(self, *, after: int, limit: int) -> list[AuditEntry]:
        return [e for e in self._audit if e.seq > after][:limit]

    async def purge_audit(self, *, before: int) -> int:
        async with self._lock:
            kept = [e for e in self._audit if e.at >= before]
            gone = len(self._audit) - len(kept)
            self._audit = kept
            return gone

    async def revocations(self) -> tuple[int, list[Revoked]]:
        return self._version, [Revoked(k, v) for k, v in sorted(self._revoked.items())]

    async def revocation_version(self) -> int:
        return self._version

    async def expire_revocations(self, *, revoked_before: int) -> int:
        async with self._lock:
            gone = [k for k, at in self._revoked.items() if at < revoked_before]
            for k in gone:
                del self._revoked[k]
            if gone:
                self._version += 1
            return len(gone)

    async def get_setting(self, key: str) -> bytes | None:
        return self._settings.get(key)

    async def put_setting(self, key: str, value: bytes, *, replace: bool = True) -> bytes:
        async with self._lock:
            if replace or key not in self._settings:
                self._settings[key] = bytes(value)
            return self._settings[key]

    async def close(self) -> None:
        return None
