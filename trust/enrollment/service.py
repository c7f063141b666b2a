"""The authority's rules, over a repository and a signer (no messaging: the workers of
:mod:`trust.enrollment.authority` call these with the caller's identifier taken from the
secure channel).

Roles (as Ockam's direct authenticator, with the differences listed in ``docs/enrollment.md``):

* **member**: has a member record; gets its own credential.
* **enroller**: a member with ``ockam-role=enroller``; creates tickets, adds, shows, lists and
  deletes ordinary members (not enrollers, nor the records of admins), never grants a reserved
  attribute. Its tickets enroll only while it is an enroller.
* **admin**: the identities given as ``admins`` (the identity that created the authority),
  the authority itself, and pre-trusted members with ``ockam-role=admin``; everything an
  enroller does, plus reserved attributes (enrollers are made so), deleting enrollers, and the
  audit log. Admins get a credential without a member record (with ``ockam-relay=*``).
* nobody gives the authority itself a member record or deletes it.
* **pre-trusted** members come from the trusted-identities file at every start; nobody deletes
  or changes them through the API.

Reserved attributes: ``ockam-role``, ``ockam-relay``, ``trust_context_id`` and every name under
``truststack.``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from trust.credentials.issuance import issue_credential
from trust.enrollment.errors import (
    BadRequestError,
    ConflictingRequestError,
    ForbiddenError,
    MemberNotFoundError,
    NotMemberError,
    PreTrustedError,
    TicketRevokedError,
)
from trust.enrollment.messages.audit_entry import AuditEntry
from trust.enrollment.messages.audit_query import MAX_AUDIT_LIMIT
from trust.enrollment.messages.common import check_identifier, check_text_attributes
from trust.enrollment.messages.member_list import MAX_LISTED_MEMBERS
from trust.enrollment.messages.one_time_code import CODE_SIZE, OneTimeCode
from trust.enrollment.messages.revocation_list import MAX_REVOKED, SignedRevocationList
from trust.enrollment.repositories import (
    AuditRecord,
    AuthorityRepository,
    Member,
    Redemption,
    RevocationListFullError,
    TicketLimitError,
    TicketRecord,
)
from trust.enrollment.revocation import build_revocation_list, sign_revocation_list
from trust.enrollment.signer import AuthoritySigner
from trust.errors import ConflictError, DecodeError, UsageError
from trust.identities.identity import Identity
from trust.models.credential import Attributes, CredentialAndPurposeKey

__all__ = [
    "DEFAULT_CREDENTIAL_TTL",
    "DEFAULT_MAX_TICKET_TTL",
    "DEFAULT_TICKET_TTL",
    "PROJECT_MEMBER_SCHEMA",
    "RESERVED_ATTRIBUTES",
    "RESERVED_PREFIX",
    "AuthorityOptions",
    "AuthorityService",
    "Role",
    "code_hash",
    "is_reserved",
    "parse_trusted_identities",
]

log = logging.getLogger("trust.enrollment")

DEFAULT_CREDENTIAL_TTL: Final = 3600
"""Credentials the authority issues live one hour by default (Ockam: 30 days)."""
DEFAULT_TICKET_TTL: Final = 600
"""Tickets live ten minutes by default (as Ockam)."""
DEFAULT_MAX_TICKET_TTL: Final = 7 * 86_400
"""The longest a ticket may live unless configured otherwise (Ockam has no limit)."""
DEFAULT_MAX_USAGE_COUNT: Final = 10_000
DEFAULT_MAX_TICKETS: Final = 100_000
DEFAULT_AUDIT_RETENTION: Final = 365 * 86_400
"""The audit log keeps a year of entries by default."""
PURGE_GRACE: Final = 3600
"""Expired tickets are kept this long (a redemption is told "expired"), then purged."""
_RECENT_REVOCATIONS: Final = 10_000
"""Revocations of the last seconds remembered (see ``AuthorityService._after_revocation``)."""
PROJECT_MEMBER_SCHEMA: Final = 1
"""The credential schema Ockam's authority uses for member credentials."""
RESERVED_ATTRIBUTES: Final = frozenset({"ockam-role", "ockam-relay", "trust_context_id"})
RESERVED_PREFIX: Final = "truststack."
ROLE: Final = "ockam-role"
ENROLLER: Final = "enroller"
ADMIN: Final = "admin"
MAX_TRUSTED_IDENTITIES: Final = 10_000
MAX_SEQ: Final = (1 << 63) - 1
"""The largest audit sequence number the storage holds (a signed 64-bit integer)."""
REVOCATION_MARGIN: Final = 1024
"""Deletions stop this many entries before the revocation list's limit (replicas add too)."""
_REFERENCE_ALPHABET: Final = string.ascii_letters + string.digits
_REFERENCE_SIZE: Final = 10


def is_reserved(name: str) -> bool:
    """Whether only an admin may grant the attribute ``name``."""
    return name in RESERVED_ATTRIBUTES or name.startswith(RESERVED_PREFIX)


def code_hash(code: bytes) -> bytes:
    """What is stored of a one-time code: its SHA-256."""
    return hashlib.sha256(code).digest()


class Role(IntEnum):
    NONE = 0
    MEMBER = 1
    ENROLLER = 2
    ADMIN = 3


def parse_trusted_identities(value: str | bytes | Mapping[str, Any]
                             ) -> dict[str, dict[str, str]]:
    """Ockam's trusted-identities JSON object ``{"I…": {"attr": "value", ...}, ...}`` (text, or
    the parsed object): identifiers and attributes checked, sorted."""
    if isinstance(value, (str, bytes)):
        if len(value) > 16 << 20:
            raise DecodeError("the trusted identities are larger than 16 MiB",
                              field="trusted_identities")
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise DecodeError("not valid JSON", field="trusted_identities") from None
    if not isinstance(value, Mapping):
        raise DecodeError('expected a JSON object {"I…": {"attribute": "value"}}',
                          field="trusted_identities")
    if len(value) > MAX_TRUSTED_IDENTITIES:
        raise DecodeError(f"more than {MAX_TRUSTED_IDENTITIES} identities",
                          field="trusted_identities")
    out: dict[str, dict[str, str]] = {}
    for k, v in value.items():
        ident = check_identifier(k, "trusted_identities")
        if ident in out:
            raise DecodeError("an identifier appears twice", field="trusted_identities")
        if not isinstance(v, Mapping):
            raise DecodeError(f"the attributes of {ident} must be an object of text values",
                              field="trusted_identities")
        out[ident] = check_text_attributes(v, f"trusted_identities[{ident}]")
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class AuthorityOptions:
    """How an authority behaves (all times in seconds)."""

    credential_ttl: int = DEFAULT_CREDENTIAL_TTL
    ticket_ttl: int = DEFAULT_TICKET_TTL
    """A ticket's time to live when the request names none."""
    max_ticket_ttl: int = DEFAULT_MAX_TICKET_TTL
    max_usage_count: int = DEFAULT_MAX_USAGE_COUNT
    max_tickets: int = DEFAULT_MAX_TICKETS
    """Tickets the authority stores at most (until they expire and are purged)."""
    admins: frozenset[str] = frozenset()
    """Identifiers with the admin role (the identity that created the authority)."""
    trusted_identities: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Pre-trusted members (see :func:`parse_trusted_identities`)."""
    trust_context_id: str | None = None
    """When set, every credential carries ``trust_context_id`` with this value (Ockam's)."""
    purge_grace: int = PURGE_GRACE
    audit_retention: int = DEFAULT_AUDIT_RETENTION
    """Audit entries older than this are purged (the log stays bounded)."""
    revocation_retention: int | None = None
    """How long a deleted member stays on the revocation list (default: the credential TTL
    plus two minutes, after which every credential it revokes has expired)."""
    max_revocations: int | None = None
    """Deleted members the revocation list holds at most; a deletion beyond is refused
    (default: the list's limit less :data:`REVOCATION_MARGIN`, room for replicas)."""

    def __post_init__(self) -> None:
        for name in ("credential_ttl", "ticket_ttl", "max_ticket_ttl", "max_usage_count",
                     "max_tickets", "audit_retention"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise UsageError(f"{name} must be a positive integer")
        m = self.max_revocations
        if m is not None and (isinstance(m, bool) or not isinstance(m, int)
                              or not 0 < m <= MAX_REVOKED):
            raise UsageError(f"max_revocations must be between 1 and {MAX_REVOKED}")
        if self.ticket_ttl > self.max_ticket_ttl:
            raise UsageError("the default ticket time to live exceeds the maximum")
        object.__setattr__(self, "admins",
                           frozenset(check_identifier(a, "admins") for a in self.admins))
        object.__setattr__(self, "trusted_identities",
                           parse_trusted_identities(self.trusted_identities))

    @property
    def revocation_room(self) -> int:
        """Entries the revocation list may hold (see :attr:`max_revocations`)."""
        return self.max_revocations if self.max_revocations is not None \
            else max(1, MAX_REVOKED - REVOCATION_MARGIN)

    @property
    def retention(self) -> int:
        return self.revocation_retention if self.revocation_retention is not None \
            else self.credential_ttl + 120


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)


def _reference() -> str:
    return "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(_REFERENCE_SIZE))


class AuthorityService:
    """The authority's operations, each taking the caller's (channel-verified) identifier."""

    def __init__(self, signer: AuthoritySigner, repository: AuthorityRepository,
                 options: AuthorityOptions | None = None) -> None:
        self.signer = signer
        self.repository = repository
        self.options = options or AuthorityOptions()
        self.identifier = signer.identifier
        pre_admins = {i for i, a in self.options.trusted_identities.items()
                      if a.get(ROLE) == ADMIN}
        self.admins: frozenset[str] = frozenset({self.identifier, *self.options.admins,
                                                 *pre_admins})
        self._revocations: SignedRevocationList | None = None
        self._revocations_made = 0
        """Revocations this service made (a credential issued meanwhile is checked again)."""
        self._recent_revocations: dict[str, int] = {}
        """Identifiers this service revoked in the last seconds -> when (see
        :meth:`_after_revocation`)."""

    # -- start ------------------------------------------------------------------------------
    async def load_pre_trusted(self, *, now: int | None = None) -> int:
        """Replace the stored pre-trusted members with the configured ones (every start)."""
        t = _now(now)
        members = [Member(i, dict(a), self.identifier, t, True)
                   for i, a in self.options.trusted_identities.items()]
        audit = [AuditRecord(t, self.identifier, "member.pre_trusted", m.identifier,
                             attributes=m.attributes) for m in members]
        await self.repository.replace_pre_trusted(members, audit)
        return len(members)

    # -- roles ------------------------------------------------------------------------------
    async def role_of(self, identifier: str) -> tuple[Role, Member | None]:
        member = await self.repository.get_member(identifier)
        if identifier in self.admins:
            return Role.ADMIN, member
        if member is None:
            return Role.NONE, None
        if member.attributes.get(ROLE) == ENROLLER:
            return Role.ENROLLER, member
        return Role.MEMBER, member

    async def _require(self, caller: str, role: Role, what: str) -> Role:
        have, _ = await self.role_of(caller)
        if have < role:
            who = "an admin" if role is Role.ADMIN else "an enroller or an admin"
            raise ForbiddenError(f"only {who} may {what}")
        return have

    def _check_grant(self, attributes: Mapping[str, str], role: Role) -> None:
        reserved = sorted(k for k in attributes if is_reserved(k))
        if reserved and role is not Role.ADMIN:
            raise ForbiddenError(f"only an admin may grant the reserved attribute {reserved[0]!r}")
        value = attributes.get(ROLE)
        if value is not None and value != ENROLLER:
            raise BadRequestError(f"{ROLE} may only be {ENROLLER!r} (admins are configured at "
                                  "authority start, as trusted identities)")

    @staticmethod
    def _attributes(attributes: Mapping[str, str]) -> dict[str, str]:
        try:
            return check_text_attributes(attributes)
        except DecodeError as e:
            raise BadRequestError(str(e)) from None

    def _check_subject(self, identifier: str, role: Role, what: str) -> None:
        """Nobody has a member record of the authority itself (it would only put the
        authority on its own revocation list); only an admin changes or deletes an admin's."""
        if identifier == self.identifier:
            raise ForbiddenError(f"nobody may {what} the member record of the authority itself")
        if identifier in self.admins and role is not Role.ADMIN:
            raise ForbiddenError(f"only an admin may {what} the member record of the admin "
                                 f"{identifier}")

    def _may_delete(self, m: Member, caller: str, role: Role) -> bool:
        """Whether ``delete_all_members`` by ``caller`` deletes ``m``."""
        if m.identifier in (caller, self.identifier) or m.pre_trusted:
            return False
        return role is Role.ADMIN or (ROLE not in m.attributes and m.identifier not in self.admins)

    # -- members ----------------------------------------------------------------------------
    async def add_member(self, caller: str, identifier: str, attributes: Mapping[str, str], *,
                         now: int | None = None) -> Member:
        """Add or replace a member (Ockam's upsert). An enroller cannot grant reserved
        attributes nor change an enroller; when it changes a member, the member's reserved
        attributes are kept. An admin sets the attributes exactly."""
        t = _now(now)
        role = await self._require(caller, Role.ENROLLER, "add members")
        identifier = check_identifier(identifier, "member")
        self._check_subject(identifier, role, "change")
        attrs = self._attributes(attributes)
        self._check_grant(attrs, role)
        before = await self.repository.get_member(identifier)
        if before is not None and before.pre_trusted:
            raise PreTrustedError(f"member {identifier} is pre-trusted: it changes only through "
                                  "the trusted identities at authority start")
        if before is not None and role is not Role.ADMIN:
            if ROLE in before.attributes:
                raise ForbiddenError(f"only an admin may change the enroller {identifier}")
            attrs = {**{k: v for k, v in before.attributes.items() if is_reserved(k)}, **attrs}
        member = Member(identifier, dict(sorted(attrs.items())), caller, t)
        action = "member.add" if before is None else "member.update"
        try:
            await self.repository.put_member(member, AuditRecord(t, caller, action, identifier,
                                                                 attributes=member.attributes))
        except ConflictError:
            raise PreTrustedError(f"member {identifier} is pre-trusted") from None
        log.info("%s %s by %s", action, identifier, caller)
        return member

    async def list_members(self, caller: str, *, limit: int = MAX_LISTED_MEMBERS
                           ) -> list[Member]:
        await self._require(caller, Role.ENROLLER, "list members")
        return await self.repository.list_members(limit=min(limit, MAX_LISTED_MEMBERS))

    async def show_member(self, caller: str, identifier: str) -> Member:
        await self._require(caller, Role.ENROLLER, "show members")
        member = await self.repository.get_member(check_identifier(identifier, "member"))
        if member is None:
            raise MemberNotFoundError(f"member {identifier} not found")
        return member

    async def delete_member(self, caller: str, identifier: str, *, now: int | None = None
                            ) -> Member:
        """Delete a member: no more credentials, and on the revocation list. Pre-trusted
        members cannot be deleted; enrollers only by an admin."""
        t = _now(now)
        role = await self._require(caller, Role.ENROLLER, "delete members")
        identifier = check_identifier(identifier, "member")
        self._check_subject(identifier, role, "delete")
        member = await self.repository.get_member(identifier)
        if member is None:
            raise MemberNotFoundError(f"member {identifier} not found")
        if member.pre_trusted:
            raise PreTrustedError(f"member {identifier} is pre-trusted and cannot be deleted")
        if ROLE in member.attributes and role is not Role.ADMIN:
            raise ForbiddenError(f"only an admin may delete the enroller {identifier}")
        at = self._after_revocation(identifier, t)
        deleted = await self._delete(identifier, AuditRecord(
            t, caller, "member.delete", identifier, attributes=member.attributes), at)
        if deleted is None:
            raise MemberNotFoundError(f"member {identifier} not found")
        self._revoked(identifier, at)
        log.info("member.delete %s by %s (revoked)", identifier, caller)
        return deleted

    async def delete_all_members(self, caller: str, *, now: int | None = None) -> int:
        """Ockam's ``DELETE /members``: every member but the caller, skipping pre-trusted
        members and, for an enroller, enrollers. Returns how many were deleted."""
        role = await self._require(caller, Role.ENROLLER, "delete members")
        count = 0
        after = ""
        while True:
            page = await self.repository.list_members(limit=1000, after=after)
            if not page:
                return count
            after = page[-1].identifier
            for m in page:
                if not self._may_delete(m, caller, role):
                    continue
                t = _now(now)
                at = self._after_revocation(m.identifier, t)
                try:
                    deleted = await self._delete(m.identifier, AuditRecord(
                        t, caller, "member.delete", m.identifier, attributes=m.attributes), at)
                except ConflictingRequestError as e:
                    raise ConflictingRequestError(f"{count} members deleted, then: {e}") \
                        from None
                if deleted is not None:
                    self._revoked(m.identifier, at)
                    count += 1

    # -- tickets ----------------------------------------------------------------------------
    async def create_ticket(self, caller: str, attributes: Mapping[str, str], *,
                            ttl: int | None = None, usage_count: int | None = None,
                            now: int | None = None) -> tuple[OneTimeCode, TicketRecord]:
        """A new ticket: the code (returned once, stored only as its SHA-256) with its
        reference and expiry, and the stored record."""
        t = _now(now)
        role = await self._require(caller, Role.ENROLLER, "create tickets")
        attrs = self._attributes(attributes)
        self._check_grant(attrs, role)
        o = self.options
        life = o.ticket_ttl if ttl is None else ttl
        if not 0 < life <= o.max_ticket_ttl:
            raise BadRequestError(f"a ticket lives between 1 and {o.max_ticket_ttl} seconds")
        uses = usage_count or 1
        if not 0 < uses <= o.max_usage_count:
            raise BadRequestError(f"a ticket's usage count is between 1 and {o.max_usage_count}")
        for _ in range(3):
            code = secrets.token_bytes(CODE_SIZE)
            record = TicketRecord(_reference(), code_hash(code), attrs, caller, t, t + life,
                                  uses, uses)
            try:
                await self.repository.add_ticket(record, AuditRecord(
                    t, caller, "ticket.create", ticket=record.reference, attributes=attrs),
                    max_tickets=o.max_tickets)
            except TicketLimitError:
                raise ConflictingRequestError(
                    f"the authority holds {o.max_tickets} tickets, its limit; retry once some "
                    "expire and are purged") from None
            except ConflictError:
                continue
            log.info("ticket.create %s by %s (%d uses, expires at %d)", record.reference,
                     caller, uses, record.expires_at)
            return OneTimeCode(code, record.reference, record.expires_at), record
        raise ConflictError("could not store a new ticket (reference collisions)")

    async def redeem_ticket(self, caller: str, code: bytes | OneTimeCode, *,
                            now: int | None = None) -> Redemption:
        """Use a ticket: the caller becomes a member with the ticket's attributes (a member
        enrolling again keeps its reserved attributes the ticket does not set, and gets the
        rest from the ticket). Raises a :class:`~trust.enrollment.errors.TicketError` child."""
        t = _now(now)
        caller = check_identifier(caller, "caller")
        raw = code.code if isinstance(code, OneTimeCode) else code
        if not isinstance(raw, bytes) or len(raw) != CODE_SIZE:
            raise BadRequestError(f"a one-time code is {CODE_SIZE} bytes")

        def merge(before: Member, ticket: TicketRecord) -> Member:
            # (a new member gets exactly the ticket's attributes: repositories.new_member)
            if before.pre_trusted:
                raise PreTrustedError(f"member {caller} is pre-trusted: it changes only through "
                                      "the trusted identities at authority start")
            kept = {k: v for k, v in before.attributes.items() if is_reserved(k)}
            attrs = dict(sorted({**kept, **ticket.attributes}.items()))
            return Member(caller, attrs, ticket.created_by, t)

        digest = code_hash(raw)
        ticket = await self.repository.find_ticket(digest)
        if ticket is not None:
            creator, _ = await self.role_of(ticket.created_by)
            if creator < Role.ENROLLER:
                # (a deleted enroller's tickets with uses left went with it; this refuses those
                # of an enroller whose role was removed, or of an admin no longer configured)
                raise TicketRevokedError(f"enrollment ticket {ticket.reference} was created by "
                                         "an enroller that is no longer one")
        result = await self.repository.redeem_ticket(digest, caller, t, merge)
        log.info("ticket.redeem %s by %s (%s)", result.ticket.reference, caller,
                 "new member" if result.previous is None else "attributes replaced")
        return result

    # -- credentials ------------------------------------------------------------------------
    def _credential_attributes(self, identifier: str, member: Member | None) -> dict[str, str]:
        attrs: dict[str, str] = {}
        if self.options.trust_context_id is not None:
            attrs["trust_context_id"] = self.options.trust_context_id
        if member is not None:
            attrs.update(member.attributes)
        if identifier in self.admins:
            attrs.setdefault("ockam-relay", "*")
        return attrs

    async def credential_attributes(self, caller: str) -> dict[str, str]:
        """The attributes a credential for ``caller`` carries; :class:`NotMemberError` when it
        gets none."""
        role, member = await self.role_of(caller)
        if role is Role.NONE:
            raise NotMemberError("unauthorized member")
        return self._credential_attributes(caller, member)

    def _after_revocation(self, identifier: str, t: int) -> int:
        """``t``, or just after ``identifier``'s revocation by this service when that is not
        earlier: a revocation covers the credentials created at or before its time (in
        seconds), so a member deleted and enrolled again within one second gets a credential
        created a second later (well within the verifiers' allowed clock drift) rather than
        one revoked at once; and a second deletion revokes at least up to then. (Only the
        last seconds matter: no query is needed.)"""
        at = self._recent_revocations.get(identifier)
        return t if at is None or t > at else at + 1

    def _revoked(self, identifier: str, at: int) -> None:
        """Remember a revocation made now (bounded: entries older than a second go first)."""
        recent = self._recent_revocations
        if len(recent) >= _RECENT_REVOCATIONS:
            for k in [k for k, v in recent.items() if v < at - 1]:
                del recent[k]
            if len(recent) >= _RECENT_REVOCATIONS:  # (a burst: the oldest go)
                for k in list(recent)[: len(recent) // 2]:
                    del recent[k]
        recent[identifier] = at
        self._revocations_made += 1

    async def _issue(self, subject: Identity, attrs: Mapping[str, str], t: int, seen: int
                     ) -> CredentialAndPurposeKey:
        """Sign a credential with ``attrs``, read after this service had made ``seen``
        revocations. When it made more since, the member is read again: a deletion that ran
        between the read and the signing would otherwise leave a credential dated after its
        revocation (see :meth:`_after_revocation`), which the revocation list does not
        cover."""
        t = self._after_revocation(subject.identifier, t)
        signer = self.signer
        ttl = min(self.options.credential_ttl,
                  signer.attestation.attestation_data.expires_at - t)
        if ttl <= 0:
            raise ConflictError("the authority's credential-signing key has expired")
        credential = await issue_credential(subject, Attributes.of(attrs, PROJECT_MEMBER_SCHEMA),
                                            signer.vault, signer.handle, signer.attestation,
                                            now=t, ttl=ttl)
        if self._revocations_made != seen and \
                await self.credential_attributes(subject.identifier) != dict(attrs):
            raise ConflictingRequestError("the member was deleted or changed during the "
                                          "request; ask again")
        return credential

    async def issue_credential(self, subject: Identity, *, now: int | None = None
                               ) -> CredentialAndPurposeKey:
        """A credential for ``subject`` (the caller's verified identity) with its attributes,
        valid for the configured TTL (never beyond the signing key's attestation)."""
        t = _now(now)
        seen = self._revocations_made
        return await self._issue(subject, await self.credential_attributes(subject.identifier),
                                 t, seen)

    async def enroll(self, subject: Identity, code: bytes | OneTimeCode, *,
                     now: int | None = None) -> tuple[Redemption, CredentialAndPurposeKey]:
        """Redeem the ticket as ``subject`` and issue its credential at once (from the member
        record just written: no second lookup)."""
        t = _now(now)
        seen = self._revocations_made
        result = await self.redeem_ticket(subject.identifier, code, now=t)
        attrs = self._credential_attributes(subject.identifier, result.member)
        return result, await self._issue(subject, attrs, t, seen)

    # -- audit and revocation ---------------------------------------------------------------
    async def _delete(self, identifier: str, audit: AuditRecord, at: int) -> Member | None:
        """Delete and revoke, refused when the revocation list (as stored, counted in the
        deletion's transaction) has no room: an entry may leave it only when every credential
        it revokes has expired, and a list beyond its limit could not be signed."""
        room = self.options.revocation_room
        try:
            return await self.repository.delete_member(identifier, audit, revoked_at=at,
                                                       room=room)
        except RevocationListFullError:
            raise ConflictingRequestError(
                f"the revocation list is full ({room} deleted members within the last "
                f"{self.options.retention} seconds); retry once entries expire, or use a "
                "shorter credential time to live") from None

    async def audit(self, caller: str, *, after: int = 0, limit: int = 1000
                    ) -> list[AuditEntry]:
        await self._require(caller, Role.ADMIN, "read the audit log")
        if not 0 <= after <= MAX_SEQ:
            raise BadRequestError(f"after is a sequence number between 0 and {MAX_SEQ}")
        return await self.repository.audit_log(after=after,
                                               limit=max(0, min(limit, MAX_AUDIT_LIMIT)))

    async def revocation_list(self, *, now: int | None = None) -> SignedRevocationList:
        """The signed revocation list at the stored version (signed once per version)."""
        version = await self.repository.revocation_version()
        cached = self._revocations
        if cached is not None and cached.content.version == version:
            return cached
        version, entries = await self.repository.revocations()
        if len(entries) > MAX_REVOKED:
            raise ConflictingRequestError(f"the revocation list holds {len(entries)} entries, "
                                          f"more than the {MAX_REVOKED} one list may carry")
        signed = await sign_revocation_list(
            build_revocation_list(self.identifier, version, entries, now=_now(now)), self.signer)
        self._revocations = signed
        return signed

    async def housekeeping(self, *, now: int | None = None) -> tuple[int, int]:
        """Purge tickets expired for longer than the grace period, revocation entries older
        than the retention and audit entries older than the audit retention. Returns (tickets
        purged, revocations dropped)."""
        t = _now(now)
        purged = await self.repository.purge_tickets(expired_before=t - self.options.purge_grace)
        dropped = await self.repository.expire_revocations(
            revoked_before=t - self.options.retention)
        await self.repository.purge_audit(before=t - self.options.audit_retention)
        return purged, dropped

