"""The authority's tables (:class:`~trust.enrollment.repositories.AuthorityRepository`) on the
async SQL layer: SQLite and PostgreSQL alike, so replicas of one authority share a PostgreSQL
database.

Every row belongs to one authority (its identifier), so several authorities may share a
database. One-time codes are stored only as their SHA-256. A redemption is one transaction
around one conditional ``UPDATE … SET uses_left = uses_left - 1 WHERE … AND uses_left > 0 AND
expires_at > now RETURNING …``: of concurrent redemptions of a ticket with one use left, in one
process or in many sharing PostgreSQL, exactly one gets the row. On SQLite the redemption's
statements run in one call on the database's thread; on PostgreSQL a new member's redemption
is one statement (ticket, member and audit entry: one round trip, one commit), and the
redemption of an existing member (or of a ticket that cannot be used) a transaction of a few.

>>> # repo = SqlAuthorityRepository(storage.db, authority_identifier)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, NoReturn, TypeVar

from trust.enrollment.errors import TicketExpiredError, TicketUnknownError, TicketUsedError
from trust.enrollment.messages.audit_entry import AuditEntry
from trust.enrollment.messages.revocation_list import Revoked
from trust.enrollment.repositories import (
    REDEEM_ACTION,
    AuditRecord,
    Member,
    MemberMerge,
    Redemption,
    RevocationListFullError,
    TicketLimitError,
    TicketRecord,
    new_member,
    redeem_audit,
)
from trust.errors import ConflictError, StorageError, TrustError
from trust.storage.sql import Database, IntegrityViolation, Migration, Transaction

__all__ = ["MIGRATIONS", "SqlAuthorityRepository"]

MIGRATIONS = [
    Migration(
        "authority", 1,
        sqlite=[
            "CREATE TABLE authority_member (authority TEXT NOT NULL, identifier TEXT NOT NULL, "
            "attributes TEXT NOT NULL, added_by TEXT NOT NULL, added_at INTEGER NOT NULL, "
            "is_pre_trusted INTEGER NOT NULL, PRIMARY KEY (authority, identifier))",
            "CREATE TABLE authority_ticket (code_hash BLOB PRIMARY KEY, authority TEXT NOT NULL, "
            "reference TEXT NOT NULL, attributes TEXT NOT NULL, created_by TEXT NOT NULL, "
            "created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, "
            "usage_count INTEGER NOT NULL, uses_left INTEGER NOT NULL, "
            "UNIQUE (authority, reference))",
            "CREATE TABLE authority_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "authority TEXT NOT NULL, at INTEGER NOT NULL, actor TEXT NOT NULL, "
            "action TEXT NOT NULL, subject TEXT, ticket TEXT, attributes TEXT)",
            "CREATE TABLE authority_revocation (authority TEXT NOT NULL, "
            "identifier TEXT NOT NULL, revoked_at INTEGER NOT NULL, "
            "PRIMARY KEY (authority, identifier))",
            "CREATE TABLE authority_state (authority TEXT PRIMARY KEY, "
            "revocation_version INTEGER NOT NULL)",
            "CREATE TABLE authority_setting (authority TEXT NOT NULL, name TEXT NOT NULL, "
            "value BLOB NOT NULL, PRIMARY KEY (authority, name))",
        ],
        postgresql=[
            "CREATE TABLE authority_member (authority TEXT NOT NULL, identifier TEXT NOT NULL, "
            "attributes TEXT NOT NULL, added_by TEXT NOT NULL, added_at BIGINT NOT NULL, "
            "is_pre_trusted INTEGER NOT NULL, PRIMARY KEY (authority, identifier))",
            "CREATE TABLE authority_ticket (code_hash BYTEA PRIMARY KEY, "
            "authority TEXT NOT NULL, reference TEXT NOT NULL, attributes TEXT NOT NULL, "
            "created_by TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, "
            "usage_count BIGINT NOT NULL, uses_left BIGINT NOT NULL, "
            "UNIQUE (authority, reference))",
            "CREATE TABLE authority_audit (seq BIGSERIAL PRIMARY KEY, authority TEXT NOT NULL, "
            "at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT, "
            "ticket TEXT, attributes TEXT)",
            "CREATE TABLE authority_revocation (authority TEXT NOT NULL, "
            "identifier TEXT NOT NULL, revoked_at BIGINT NOT NULL, "
            "PRIMARY KEY (authority, identifier))",
            "CREATE TABLE authority_state (authority TEXT PRIMARY KEY, "
            "revocation_version BIGINT NOT NULL)",
            "CREATE TABLE authority_setting (authority TEXT NOT NULL, name TEXT NOT NULL, "
            "value BYTEA NOT NULL, PRIMARY KEY (authority, name))",
        ],
        both=["CREATE INDEX authority_audit_by_authority ON authority_audit (authority, seq)",
              "CREATE INDEX authority_ticket_expiry ON authority_ticket (authority, expires_at)"],
    ),
]

_MEMBER_COLUMNS = "identifier, attributes, added_by, added_at, is_pre_trusted"
_TICKET_COLUMNS = ("reference, code_hash, attributes, created_by, created_at, expires_at, "
                   "usage_count, uses_left")


_MEMBER_SUBQUERIES = ", ".join(
    f"(SELECT {c} FROM authority_member WHERE authority = ? AND identifier = ?)"
    for c in ("attributes", "added_by", "added_at", "is_pre_trusted"))


def _dump(attributes: Mapping[str, str]) -> str:
    return json.dumps(dict(attributes), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def _load(text: Any) -> dict[str, str]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise StorageError("an authority row holds malformed attributes") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise StorageError("an authority row holds malformed attributes")
    return value


def _member(row: tuple[Any, ...]) -> Member:
    return Member(str(row[0]), _load(row[1]), str(row[2]), int(row[3]), bool(row[4]))


def _ticket(row: tuple[Any, ...]) -> TicketRecord:
    return TicketRecord(str(row[0]), bytes(row[1]), _load(row[2]), str(row[3]), int(row[4]),
                        int(row[5]), int(row[6]), int(row[7]))


def _refuse(found: tuple[Any, ...] | None, now: int) -> NoReturn:
    """The error of a redemption whose ticket (reference, expires_at) could not be used."""
    if found is None:
        raise TicketUnknownError("unknown enrollment ticket")
    if int(found[1]) <= now:
        raise TicketExpiredError(f"enrollment ticket {found[0]} has expired")
    raise TicketUsedError(f"enrollment ticket {found[0]} was already used")


def _merged(identifier: str, before: Member | None, ticket: TicketRecord, now: int,
            merge: MemberMerge) -> Member:
    member = new_member(identifier, ticket, now) if before is None else merge(before, ticket)
    if member.identifier != identifier:
        raise ConflictError("a redemption writes the redeemer's member record")
    return member


_INSERT_AUDIT = ("INSERT INTO authority_audit (authority, at, actor, action, subject, ticket, "
                 "attributes) VALUES (?, ?, ?, ?, ?, ?, ?)")
_SQLITE_WRITE_MEMBER = (
    f"INSERT INTO authority_member (authority, {_MEMBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (authority, identifier) DO UPDATE SET attributes = excluded.attributes, "
    "added_by = excluded.added_by, added_at = excluded.added_at, "
    "is_pre_trusted = excluded.is_pre_trusted WHERE authority_member.is_pre_trusted = 0")

_PG_REDEEM_NEW = (
    # One statement, so one transaction and one commit: use the ticket only if the redeemer
    # is no member yet, insert it as new_member() makes it (the ticket's attributes, added by
    # the ticket's creator; the ticket's stored attributes are the same sorted JSON text) and
    # append redeem_audit()'s entry. A member inserted meanwhile by another transaction makes
    # the INSERT fail (unique key), and with it the whole statement: nothing changes.
    f"WITH t AS (UPDATE authority_ticket SET uses_left = uses_left - 1 WHERE authority = ? "
    "AND code_hash = ? AND uses_left > 0 AND expires_at > ? AND NOT EXISTS (SELECT 1 FROM "
    "authority_member WHERE authority = ? AND identifier = ?) "
    f"RETURNING {_TICKET_COLUMNS}), "
    "w AS (INSERT INTO authority_member (authority, identifier, attributes, added_by, "
    "added_at, is_pre_trusted) SELECT ?::text, ?::text, t.attributes, t.created_by, "
    "?::bigint, 0 FROM t RETURNING 1), "
    "a AS (INSERT INTO authority_audit (authority, at, actor, action, subject, ticket, "
    f"attributes) SELECT ?::text, ?::bigint, ?::text, '{REDEEM_ACTION}', ?::text, t.reference, "
    "t.attributes FROM t, w) "
    "SELECT t.* FROM t")


A = TypeVar("A")
R = TypeVar("R")

MAX_BATCH = 64
"""Redemptions (or member reads) one SQLite transaction serves at most."""


def _sqlite_error(e: sqlite3.Error) -> TrustError:
    if isinstance(e, sqlite3.IntegrityError):
        return IntegrityViolation(f"the state database refused a write: {e}")
    return StorageError(f"state database error: {e}")


class _Batcher(Generic[A, R]):
    """Group commit: the calls that wait while a batch runs go together into the next one
    (at most :data:`MAX_BATCH`), which ``run`` serves in one transaction, returning each
    call's result or error in order. Every caller is answered only after its batch committed,
    so each result is as durable as a transaction of its own. (On a busy event loop a call of
    its own waits for its turns of the loop at the database and again for its result; a batch
    pays that once; on PostgreSQL a batch is one round trip and one commit.)"""

    def __init__(self, run: Callable[[list[A]], Awaitable[list[R | BaseException]]]) -> None:
        self.run = run
        self.pending: list[tuple[A, asyncio.Future[R]]] = []
        self.task: asyncio.Task[None] | None = None

    async def __call__(self, args: A) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        task = self.task
        if task is None or task.done() or task.get_loop() is not loop:
            # (calls left waiting in another, stopped event loop cannot be served)
            self.pending = [p for p in self.pending if p[1].get_loop() is loop]
            self.pending.append((args, future))
            self.task = loop.create_task(self._drain())
        else:
            self.pending.append((args, future))
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                try:
                    outcomes = await self.run([a for a, _ in batch])
                except Exception as e:
                    outcomes = [e] * len(batch)
                except BaseException:
                    # (cancelled: a running batch may still commit; its callers cannot know)
                    gone = StorageError("the authority's storage stopped during the request")
                    for _, f in batch + self.pending:
                        if not f.done():
                            f.set_exception(gone)
                    self.pending = []
                    raise
                for (_, f), o in zip(batch, outcomes, strict=True):
                    if f.done():
                        continue
                    if isinstance(o, BaseException):
                        f.set_exception(o if isinstance(o, Exception) else StorageError(
                            "the authority's storage stopped during the request"))
                    else:
                        f.set_result(o)
        finally:
            self.pending = [p for p in self.pending if not p[1].done()]


def _savepoints(conn: Any, one: Callable[[Any, A], R], batch: list[A]
                ) -> list[R | BaseException]:
    """SQLite: each call of a batch in a savepoint of its own, inside the batch's transaction
    (a call that fails is rolled back alone and gets its error)."""
    out: list[R | BaseException] = []
    for args in batch:
        conn.execute("SAVEPOINT call")
        try:
            result = one(conn, args)
        except Exception as e:
            conn.execute("ROLLBACK TO call")
            conn.execute("RELEASE call")
            out.append(_sqlite_error(e) if isinstance(e, sqlite3.Error) else e)
        else:
            conn.execute("RELEASE call")
            out.append(result)
    return out


_PG_REDEEM_NEW_BATCH = (
    # _PG_REDEEM_NEW for several redemptions (distinct codes and identifiers) in one
    # statement: the rows that come back are the redemptions done; a member inserted
    # meanwhile by another transaction fails the whole statement (nothing changes).
    "WITH i AS (SELECT * FROM unnest(?::bytea[], ?::text[], ?::bigint[]) AS i(code_hash, "
    "identifier, at)), "
    "t AS (UPDATE authority_ticket k SET uses_left = k.uses_left - 1 FROM i "
    "WHERE k.authority = ? AND k.code_hash = i.code_hash AND k.uses_left > 0 "
    "AND k.expires_at > i.at AND NOT EXISTS (SELECT 1 FROM authority_member m "
    "WHERE m.authority = k.authority AND m.identifier = i.identifier) "
    "RETURNING i.identifier, i.at, k.reference, k.code_hash, k.attributes, k.created_by, "
    "k.created_at, k.expires_at, k.usage_count, k.uses_left), "
    "w AS (INSERT INTO authority_member (authority, identifier, attributes, added_by, "
    "added_at, is_pre_trusted) SELECT ?::text, t.identifier, t.attributes, t.created_by, "
    "t.at, 0 FROM t), "
    "a AS (INSERT INTO authority_audit (authority, at, actor, action, subject, ticket, "
    f"attributes) SELECT ?::text, t.at, t.identifier, '{REDEEM_ACTION}', t.identifier, "
    "t.reference, t.attributes FROM t) "
    "SELECT t.identifier, t.reference, t.code_hash, t.attributes, t.created_by, t.created_at, "
    "t.expires_at, t.usage_count, t.uses_left FROM t")

_RedeemArgs = tuple[bytes, str, int, MemberMerge]


class SqlAuthorityRepository:
    """The stored state of the authority ``authority`` (its identifier) in ``db``."""

    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database, authority: str) -> None:
        self.db = db
        self.authority = authority
        db.require(MIGRATIONS)
        self._redemptions: _Batcher[_RedeemArgs, Redemption] = _Batcher(
            self._pg_redeem_batch if db.dialect == "postgresql" else
            lambda work: db.run_sync_transaction(lambda c: _savepoints(
                c, lambda conn, a: self._redeem_sqlite(conn, *a), work)))
        self._member_reads: _Batcher[str, Member | None] = _Batcher(
            lambda work: db.run_sync_transaction(lambda c: _savepoints(
                c, self._read_member, work)))

    async def _audit(self, tx: Transaction, a: AuditRecord) -> None:
        await tx.execute("INSERT INTO authority_audit (authority, at, actor, action, subject, "
                         "ticket, attributes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (self.authority, a.at, a.actor, a.action, a.subject, a.ticket,
                          None if a.attributes is None else _dump(a.attributes)))

    async def _get_member(self, tx: Transaction | Database, identifier: str, lock: str = ""
                          ) -> Member | None:
        row = await tx.fetch_one(f"SELECT {_MEMBER_COLUMNS} FROM authority_member "
                                 f"WHERE authority = ? AND identifier = ?{lock}",
                                 (self.authority, identifier))
        return None if row is None else _member(row)

    async def _write_member(self, tx: Transaction, m: Member) -> None:
        n = await tx.execute(
            f"INSERT INTO authority_member (authority, {_MEMBER_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (authority, identifier) DO UPDATE SET "
            "attributes = excluded.attributes, added_by = excluded.added_by, "
            "added_at = excluded.added_at, is_pre_trusted = excluded.is_pre_trusted "
            "WHERE authority_member.is_pre_trusted = 0",
            (self.authority, m.identifier, _dump(m.attributes), m.added_by, m.added_at,
             int(m.pre_trusted)))
        if n == 0:
            raise ConflictError("a pre-trusted member is changed only at authority start")

    async def _write_member_and_audit(self, tx: Transaction, m: Member, a: AuditRecord) -> None:
        """PostgreSQL: the member's upsert and its audit entry in one statement (no entry, and
        a :class:`ConflictError`, when the member is pre-trusted)."""
        n = await tx.execute(
            f"WITH w AS (INSERT INTO authority_member (authority, {_MEMBER_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (authority, identifier) DO UPDATE SET "
            "attributes = excluded.attributes, added_by = excluded.added_by, "
            "added_at = excluded.added_at, is_pre_trusted = excluded.is_pre_trusted "
            "WHERE authority_member.is_pre_trusted = 0 RETURNING 1) "
            "INSERT INTO authority_audit (authority, at, actor, action, subject, ticket, "
            "attributes) SELECT ?::text, ?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text "
            "FROM w",
            (self.authority, m.identifier, _dump(m.attributes), m.added_by, m.added_at,
             int(m.pre_trusted), self.authority, a.at, a.actor, a.action, a.subject, a.ticket,
             None if a.attributes is None else _dump(a.attributes)))
        if n == 0:
            raise ConflictError("a pre-trusted member is changed only at authority start")

    # -- members ----------------------------------------------------------------------------
    async def get_member(self, identifier: str) -> Member | None:
        if self.db.dialect == "sqlite" and not self.db.in_transaction:
            return await self._member_reads(identifier)  # (grouped with concurrent reads)
        return await self._get_member(self.db, identifier)

    def _read_member(self, conn: Any, identifier: str) -> Member | None:
        row = conn.execute(f"SELECT {_MEMBER_COLUMNS} FROM authority_member "
                           "WHERE authority = ? AND identifier = ?",
                           (self.authority, identifier)).fetchone()
        return None if row is None else _member(row)

    async def list_members(self, *, limit: int, after: str = "") -> list[Member]:
        rows = await self.db.fetch_all(f"SELECT {_MEMBER_COLUMNS} FROM authority_member "
                                       "WHERE authority = ? AND identifier > ? "
                                       "ORDER BY identifier LIMIT ?",
                                       (self.authority, after, limit))
        return [_member(r) for r in rows]

    async def put_member(self, member: Member, audit: AuditRecord) -> Member | None:
        async with self.db.transaction() as tx:
            before = await self._get_member(tx, member.identifier, self.db.for_update)
            await self._write_member(tx, member)
            await self._audit(tx, audit)
            return before

    async def delete_member(self, identifier: str, audit: AuditRecord, *, revoked_at: int,
                            room: int | None = None) -> Member | None:
        async with self.db.transaction() as tx:
            row = await tx.fetch_one(
                f"DELETE FROM authority_member WHERE authority = ? AND identifier = ? "
                f"AND is_pre_trusted = 0 RETURNING {_MEMBER_COLUMNS}",
                (self.authority, identifier))
            if row is None:
                return None
            # (the version's row is locked first: on PostgreSQL, concurrent deletions of this
            # authority then count one after the other; SQLite's write transactions are
            # exclusive anyway)
            await self._bump(tx)
            if room is not None:
                held = await tx.fetch_value(
                    "SELECT COUNT(*) FROM authority_revocation WHERE authority = ? "
                    "AND identifier <> ?", (self.authority, identifier))
                if int(held or 0) >= room:
                    raise RevocationListFullError("the revocation list is full")
            await tx.execute("DELETE FROM authority_ticket WHERE authority = ? AND created_by = ? "
                             "AND uses_left > 0", (self.authority, identifier))
            await tx.execute(
                "INSERT INTO authority_revocation (authority, identifier, revoked_at) "
                "VALUES (?, ?, ?) ON CONFLICT (authority, identifier) DO UPDATE SET "
                "revoked_at = excluded.revoked_at", (self.authority, identifier, revoked_at))
            await self._audit(tx, audit)
            return _member(row)

    async def replace_pre_trusted(self, members: list[Member], audit: list[AuditRecord]
                                  ) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM authority_member WHERE authority = ? "
                             "AND is_pre_trusted = 1", (self.authority,))
            await tx.execute_many(
                f"INSERT INTO authority_member (authority, {_MEMBER_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (authority, identifier) DO UPDATE SET "
                "attributes = excluded.attributes, added_by = excluded.added_by, "
                "added_at = excluded.added_at, is_pre_trusted = 1",
                [(self.authority, m.identifier, _dump(m.attributes), m.added_by, m.added_at)
                 for m in members])
            for a in audit:
                await self._audit(tx, a)

    # -- tickets ----------------------------------------------------------------------------
    async def add_ticket(self, ticket: TicketRecord, audit: AuditRecord, *,
                         max_tickets: int | None = None) -> None:
        async with self.db.transaction() as tx:
            if max_tickets is not None:
                if self.db.dialect == "postgresql":
                    # (this authority's ticket insertions count one after the other; SQLite's
                    # write transactions are exclusive anyway)
                    await tx.fetch_value("SELECT pg_advisory_xact_lock(hashtextextended("
                                         "?::text, 7))", ("authority_ticket:" + self.authority,))
                held = await tx.fetch_value("SELECT COUNT(*) FROM authority_ticket "
                                            "WHERE authority = ?", (self.authority,))
                if int(held or 0) >= max_tickets:
                    raise TicketLimitError(f"{max_tickets} tickets are stored, the limit")
            try:
                await tx.execute(
                    f"INSERT INTO authority_ticket (authority, {_TICKET_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (self.authority, ticket.reference, ticket.code_hash, _dump(ticket.attributes),
                     ticket.created_by, ticket.created_at, ticket.expires_at,
                     ticket.usage_count, ticket.uses_left))
            except IntegrityViolation:
                raise ConflictError("a ticket with this reference or code exists") from None
            await self._audit(tx, audit)

    async def redeem_ticket(self, code_hash: bytes, identifier: str, now: int,
                            merge: MemberMerge) -> Redemption:
        if self.db.dialect == "sqlite":
            # the whole transaction (BEGIN, statements, COMMIT) in one call on the database's
            # thread, grouped with the redemptions waiting meanwhile (SQLite's write
            # transactions are exclusive: nothing changes the rows in between)
            if self.db.in_transaction:
                return await self.db.run_sync_transaction(
                    lambda conn: self._redeem_sqlite(conn, code_hash, identifier, now, merge))
            return await self._redemptions((code_hash, identifier, now, merge))
        if self.db.in_transaction:
            return await self._redeem_pg(code_hash, identifier, now, merge)
        return await self._redemptions((code_hash, identifier, now, merge))

    async def _pg_redeem_batch(self, work: list[_RedeemArgs]) -> list[Redemption | BaseException]:
        """PostgreSQL: new members' redemptions waiting together in one statement (one round
        trip, one commit); the others (an existing member, a ticket that cannot be used, a
        second use of a code or identifier in the batch, a batch that failed) one by one."""
        out: list[Redemption | BaseException | None] = [None] * len(work)
        alone: list[int] = []
        if len(work) > 1:
            hashes: set[bytes] = set()
            idents: set[str] = set()
            together: list[int] = []
            for k, (h, ident, _, _) in enumerate(work):
                if h in hashes or ident in idents:
                    alone.append(k)
                else:
                    hashes.add(h)
                    idents.add(ident)
                    together.append(k)
            try:
                rows = await self.db.fetch_all(_PG_REDEEM_NEW_BATCH, (
                    [work[k][0] for k in together], [work[k][1] for k in together],
                    [work[k][2] for k in together], self.authority, self.authority,
                    self.authority))
            except (IntegrityViolation, StorageError):
                rows = []  # (nothing changed: each is tried on its own)
            done = {str(r[0]): r[1:] for r in rows}
            for k in together:
                h, ident, now, _ = work[k]
                row = done.get(ident)
                if row is None:
                    alone.append(k)
                else:
                    ticket = _ticket(row)
                    out[k] = Redemption(ticket, new_member(ident, ticket, now), None)
        else:
            alone = [0]
        results = await asyncio.gather(*[self._redeem_pg(*work[k]) for k in alone],
                                       return_exceptions=True)
        for k, r in zip(alone, results, strict=True):
            out[k] = r
        return [r if r is not None else StorageError("a redemption got no outcome")
                for r in out]

    async def _redeem_pg(self, code_hash: bytes, identifier: str, now: int,
                         merge: MemberMerge) -> Redemption:
        # a new member's redemption is one statement (one round trip, one commit)
        try:
            row = await self.db.fetch_one(_PG_REDEEM_NEW, (
                self.authority, code_hash, now, self.authority, identifier,
                self.authority, identifier, now, self.authority, now, identifier, identifier))
        except IntegrityViolation:
            row = None  # the member appeared meanwhile: the statement changed nothing
        if row is not None:
            ticket = _ticket(row)
            result = Redemption(ticket, new_member(identifier, ticket, now), None)
            return result
        # an existing member, or a ticket that cannot be used (the error is found here)
        async with self.db.transaction() as tx:
            # one round trip: use the ticket and lock the member's row (if any)
            row = await tx.fetch_one(
                "WITH t AS (UPDATE authority_ticket SET uses_left = uses_left - 1 "
                "WHERE authority = ? AND code_hash = ? AND uses_left > 0 AND expires_at > ? "
                f"RETURNING {_TICKET_COLUMNS}), m AS (SELECT attributes, added_by, "
                "added_at, is_pre_trusted FROM authority_member WHERE authority = ? "
                "AND identifier = ? FOR UPDATE) SELECT t.*, m.attributes, m.added_by, "
                "m.added_at, m.is_pre_trusted FROM t LEFT JOIN m ON true",
                (self.authority, code_hash, now, self.authority, identifier))
            if row is None:
                found = await tx.fetch_one(
                    "SELECT reference, expires_at FROM authority_ticket "
                    "WHERE authority = ? AND code_hash = ?", (self.authority, code_hash))
                _refuse(found, now)
            assert row is not None
            ticket = _ticket(row)
            before = None if row[8] is None else _member((identifier, *row[8:12]))
            member = _merged(identifier, before, ticket, now, merge)
            result = Redemption(ticket, member, before)
            await self._write_member_and_audit(tx, member, redeem_audit(result, now))
            return result

    def _redeem_sqlite(self, conn: Any, code_hash: bytes, identifier: str, now: int,
                       merge: MemberMerge) -> Redemption:
        """The redemption's statements, on the SQLite thread inside the open transaction."""
        rows = conn.execute(
            "UPDATE authority_ticket SET uses_left = uses_left - 1 WHERE authority = ? "
            "AND code_hash = ? AND uses_left > 0 AND expires_at > ? "
            f"RETURNING {_TICKET_COLUMNS}, {_MEMBER_SUBQUERIES}",
            (self.authority, code_hash, now, *([self.authority, identifier] * 4))).fetchall()
        if not rows:
            _refuse(conn.execute("SELECT reference, expires_at FROM authority_ticket "
                                 "WHERE authority = ? AND code_hash = ?",
                                 (self.authority, code_hash)).fetchone(), now)
        row = rows[0]
        ticket = _ticket(row)
        before = None if row[8] is None else _member((identifier, *row[8:12]))
        member = _merged(identifier, before, ticket, now, merge)
        result = Redemption(ticket, member, before)
        a = redeem_audit(result, now)
        attributes = _dump(member.attributes)
        n = conn.execute(_SQLITE_WRITE_MEMBER, (self.authority, identifier, attributes,
                                                member.added_by, member.added_at,
                                                int(member.pre_trusted))).rowcount
        if n == 0:
            raise ConflictError("a pre-trusted member is changed only at authority start")
        conn.execute(_INSERT_AUDIT, (self.authority, a.at, a.actor, a.action, a.subject, a.ticket,
                                     attributes))
        return result

    async def get_ticket(self, reference: str) -> TicketRecord | None:
        row = await self.db.fetch_one(f"SELECT {_TICKET_COLUMNS} FROM authority_ticket "
                                      "WHERE authority = ? AND reference = ?",
                                      (self.authority, reference))
        return None if row is None else _ticket(row)

    async def find_ticket(self, code_hash: bytes) -> TicketRecord | None:
        row = await self.db.fetch_one(f"SELECT {_TICKET_COLUMNS} FROM authority_ticket "
                                      "WHERE authority = ? AND code_hash = ?",
                                      (self.authority, code_hash))
        return None if row is None else _ticket(row)

    async def count_tickets(self) -> int:
        n = await self.db.fetch_value("SELECT COUNT(*) FROM authority_ticket WHERE authority = ?",
                                      (self.authority,))
        return int(n or 0)

    async def purge_tickets(self, *, expired_before: int) -> int:
        return await self.db.execute("DELETE FROM authority_ticket WHERE authority = ? "
                                     "AND expires_at < ?", (self.authority, expired_before))

    # -- audit ------------------------------------------------------------------------------
    async def audit_log(self, *, after: int, limit: int) -> list[AuditEntry]:
        rows = await self.db.fetch_all(
            "SELECT seq, at, actor, action, subject, ticket, attributes FROM authority_audit "
            "WHERE authority = ? AND seq > ? ORDER BY seq LIMIT ?",
            (self.authority, after, limit))
        return [AuditEntry(int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], r[5],
                           None if r[6] is None else _load(r[6])) for r in rows]

    async def purge_audit(self, *, before: int) -> int:
        return await self.db.execute("DELETE FROM authority_audit WHERE authority = ? AND at < ?",
                                     (self.authority, before))

    # -- revocations ------------------------------------------------------------------------
    async def _bump(self, tx: Transaction) -> None:
        await tx.execute("INSERT INTO authority_state (authority, revocation_version) "
                         "VALUES (?, 1) ON CONFLICT (authority) DO UPDATE SET "
                         "revocation_version = authority_state.revocation_version + 1",
                         (self.authority,))

    async def revocation_version(self) -> int:
        v = await self.db.fetch_value("SELECT revocation_version FROM authority_state "
                                      "WHERE authority = ?", (self.authority,))
        return 0 if v is None else int(v)

    async def revocations(self) -> tuple[int, list[Revoked]]:
        async with self.db.transaction() as tx:
            v = await tx.fetch_value("SELECT revocation_version FROM authority_state "
                                     "WHERE authority = ?", (self.authority,))
            rows = await tx.fetch_all("SELECT identifier, revoked_at FROM authority_revocation "
                                      "WHERE authority = ? ORDER BY identifier",
                                      (self.authority,))
        return (0 if v is None else int(v)), [Revoked(str(i), int(t)) for i, t in rows]

    async def expire_revocations(self, *, revoked_before: int) -> int:
        async with self.db.transaction() as tx:
            n = await tx.execute("DELETE FROM authority_revocation WHERE authority = ? "
                                 "AND revoked_at < ?", (self.authority, revoked_before))
            if n:
                await self._bump(tx)
            return n

    # -- settings ---------------------------------------------------------------------------
    async def get_setting(self, key: str) -> bytes | None:
        v = await self.db.fetch_value("SELECT value FROM authority_setting WHERE authority = ? "
                                      "AND name = ?", (self.authority, key))
        return None if v is None else bytes(v)

    async def put_setting(self, key: str, value: bytes, *, replace: bool = True) -> bytes:
        async with self.db.transaction() as tx:
            conflict = "DO UPDATE SET value = excluded.value" if replace else "DO NOTHING"
            await tx.execute("INSERT INTO authority_setting (authority, name, value) "
                             f"VALUES (?, ?, ?) ON CONFLICT (authority, name) {conflict}",
                             (self.authority, key, bytes(value)))
            v = await tx.fetch_value("SELECT value FROM authority_setting WHERE authority = ? "
                                     "AND name = ?", (self.authority, key))
        return bytes(v)

    async def close(self) -> None:
        """The database belongs to the caller (its :class:`~trust.storage.Storage`)."""
        return None
