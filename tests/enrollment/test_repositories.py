"""The authority repository contract, on memory, SQLite and PostgreSQL alike: members,
pre-trusted members, tickets (atomic redemption, typed refusals, purge), the audit log,
revocations and settings."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.enrollment.conftest import closing
from trust.enrollment.errors import TicketExpiredError, TicketUnknownError, TicketUsedError
from trust.enrollment.repositories import (
    REDEEM_ACTION,
    AuditRecord,
    AuthorityRepository,
    Member,
    MemoryAuthorityRepository,
    Redemption,
    TicketRecord,
    new_member,
)
from trust.errors import ConflictError
from trust.storage.authority import SqlAuthorityRepository
from trust.storage.sql import database

AUTH = "I" + "aa" * 32
OTHER_AUTH = "I" + "bb" * 32
A = "I" + "01" * 32
B = "I" + "02" * 32
C = "I" + "03" * 32
NOW = 1_800_000_000


def ident(i: int) -> str:
    return "I" + i.to_bytes(32, "big").hex()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_repo(kind: str, tmp_path: Path, request: pytest.FixtureRequest
              ) -> Callable[[str], AuthorityRepository]:
    """Repositories of ``authority`` on one shared database (per test)."""
    url = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    elif kind == "postgresql":
        url = request.getfixturevalue("postgres_url")
    memory = MemoryAuthorityRepository()

    def make(authority: str = AUTH) -> AuthorityRepository:
        if url is None:
            return memory
        return SqlAuthorityRepository(closing(database(url)), authority)

    return make


@pytest.fixture
def repo(make_repo: Callable[[str], AuthorityRepository]) -> AuthorityRepository:
    return make_repo(AUTH)


def ticket(code: bytes, *, ref: str = "ref0000001", uses: int = 1, expires_at: int = NOW + 600,
           attrs: dict[str, str] | None = None) -> TicketRecord:
    return TicketRecord(ref, hashlib.sha256(code).digest(), attrs or {"role": "db"}, A, NOW,
                        expires_at, uses, uses)


def merge_into(identifier: str) -> Callable[[Member, TicketRecord], Member]:
    def merge(before: Member, t: TicketRecord) -> Member:
        return Member(identifier, {**before.attributes, **t.attributes}, t.created_by, NOW)
    return merge


async def test_members_put_get_list_delete(repo: AuthorityRepository) -> None:
    assert await repo.get_member(B) is None
    before = await repo.put_member(Member(B, {"x": "1"}, A, NOW),
                                   AuditRecord(NOW, A, "member.add", B, attributes={"x": "1"}))
    assert before is None
    before = await repo.put_member(Member(B, {"x": "2"}, A, NOW + 1),
                                   AuditRecord(NOW, A, "member.update", B))
    assert before is not None and before.attributes == {"x": "1"}
    await repo.put_member(Member(C, {}, A, NOW), AuditRecord(NOW, A, "member.add", C))
    assert [m.identifier for m in await repo.list_members(limit=10)] == [B, C]
    assert [m.identifier for m in await repo.list_members(limit=1)] == [B]
    got = await repo.get_member(B)
    assert got == Member(B, {"x": "2"}, A, NOW + 1, False)
    assert await repo.revocation_version() == 0
    deleted = await repo.delete_member(B, AuditRecord(NOW + 2, A, "member.delete", B),
                                       revoked_at=NOW + 2)
    assert deleted is not None and deleted.identifier == B
    assert await repo.get_member(B) is None
    assert await repo.delete_member(B, AuditRecord(NOW, A, "member.delete", B),
                                    revoked_at=NOW) is None
    version, entries = await repo.revocations()
    assert version == 1 and [(e.identifier, e.revoked_at) for e in entries] == [(B, NOW + 2)]
    actions = [e.action for e in await repo.audit_log(after=0, limit=100)]
    assert actions == ["member.add", "member.update", "member.add", "member.delete"]
    entries2 = await repo.audit_log(after=2, limit=1)
    assert [e.seq for e in entries2] == [(await repo.audit_log(after=0, limit=100))[2].seq]


async def test_pre_trusted_members_are_replaced_and_never_deleted(repo: AuthorityRepository
                                                                 ) -> None:
    await repo.put_member(Member(C, {"y": "1"}, A, NOW), AuditRecord(NOW, A, "member.add", C))
    await repo.replace_pre_trusted([Member(A, {"ockam-role": "admin"}, AUTH, NOW, True),
                                    Member(C, {"z": "1"}, AUTH, NOW, True)],
                                   [AuditRecord(NOW, AUTH, "member.pre_trusted", A)])
    c = await repo.get_member(C)
    assert c is not None and c.pre_trusted and c.attributes == {"z": "1"}
    assert await repo.delete_member(C, AuditRecord(NOW, A, "member.delete", C),
                                    revoked_at=NOW) is None
    with pytest.raises(ConflictError):
        await repo.put_member(Member(C, {}, A, NOW), AuditRecord(NOW, A, "member.update", C))
    # the next start replaces the set: A stays, C is no longer pre-trusted (and gone)
    await repo.replace_pre_trusted([Member(A, {}, AUTH, NOW + 5, True)], [])
    assert await repo.get_member(C) is None
    a = await repo.get_member(A)
    assert a is not None and a.pre_trusted and a.added_at == NOW + 5
    assert await repo.revocation_version() == 0


async def test_ticket_redeemed_exactly_as_often_as_allowed(repo: AuthorityRepository) -> None:
    code = b"\x01" * 32
    await repo.add_ticket(ticket(code, uses=2), AuditRecord(NOW, A, "ticket.create",
                                                            ticket="ref0000001"))
    stored = await repo.get_ticket("ref0000001")
    assert stored is not None and stored.code_hash == hashlib.sha256(code).digest()
    assert await repo.count_tickets() == 1
    r1 = await repo.redeem_ticket(hashlib.sha256(code).digest(), B, NOW, merge_into(B))
    assert r1.previous is None and r1.ticket.uses_left == 1 and r1.member.attributes == {
        "role": "db"}
    r2 = await repo.redeem_ticket(hashlib.sha256(code).digest(), C, NOW, merge_into(C))
    assert r2.ticket.uses_left == 0
    with pytest.raises(TicketUsedError, match="ref0000001"):
        await repo.redeem_ticket(hashlib.sha256(code).digest(), A, NOW, merge_into(A))
    with pytest.raises(TicketUnknownError):
        await repo.redeem_ticket(hashlib.sha256(b"\x02" * 32).digest(), A, NOW, merge_into(A))
    assert await repo.get_member(A) is None
    assert [e.action for e in await repo.audit_log(after=0, limit=10)] == [
        "ticket.create", "ticket.redeem", "ticket.redeem"]


async def test_expired_ticket_refused_then_purged(repo: AuthorityRepository) -> None:
    code = b"\x03" * 32
    h = hashlib.sha256(code).digest()
    await repo.add_ticket(ticket(code, expires_at=NOW + 10),
                          AuditRecord(NOW, A, "ticket.create", ticket="ref0000001"))
    with pytest.raises(TicketExpiredError):
        await repo.redeem_ticket(h, B, NOW + 10, merge_into(B))
    assert (await repo.get_ticket("ref0000001")) is not None   # kept during the grace period
    assert await repo.purge_tickets(expired_before=NOW + 10) == 0
    assert await repo.purge_tickets(expired_before=NOW + 11) == 1
    with pytest.raises(TicketUnknownError):
        await repo.redeem_ticket(h, B, NOW, merge_into(B))


async def test_failed_merge_leaves_the_ticket_unused(repo: AuthorityRepository) -> None:
    code = b"\x04" * 32
    h = hashlib.sha256(code).digest()
    await repo.add_ticket(ticket(code), AuditRecord(NOW, A, "ticket.create", ticket="ref0000001"))

    await repo.put_member(Member(B, {"x": "1"}, A, NOW), AuditRecord(NOW, A, "member.add", B))

    def refuse(before: Member, t: TicketRecord) -> Member:
        raise ConflictError("no")

    with pytest.raises(ConflictError):
        await repo.redeem_ticket(h, B, NOW, refuse)
    t = await repo.get_ticket("ref0000001")
    assert t is not None and t.uses_left == 1
    assert len(await repo.audit_log(after=0, limit=10)) == 2
    m = await repo.get_member(B)
    assert m is not None and m.attributes == {"x": "1"}
    r = await repo.redeem_ticket(h, B, NOW, merge_into(B))
    assert r.member.attributes == {"role": "db", "x": "1"}


async def test_duplicate_ticket_reference_conflicts(repo: AuthorityRepository) -> None:
    await repo.add_ticket(ticket(b"\x05" * 32), AuditRecord(NOW, A, "ticket.create"))
    with pytest.raises(ConflictError):
        await repo.add_ticket(ticket(b"\x06" * 32), AuditRecord(NOW, A, "ticket.create"))


async def test_revocations_expire_and_version_grows(repo: AuthorityRepository) -> None:
    for i, ident_ in enumerate((B, C)):
        await repo.put_member(Member(ident_, {}, A, NOW), AuditRecord(NOW, A, "member.add"))
        await repo.delete_member(ident_, AuditRecord(NOW, A, "member.delete"), revoked_at=NOW + i)
    assert await repo.revocation_version() == 2
    assert await repo.expire_revocations(revoked_before=NOW) == 0
    assert await repo.revocation_version() == 2
    assert await repo.expire_revocations(revoked_before=NOW + 1) == 1
    version, entries = await repo.revocations()
    assert version == 3 and [e.identifier for e in entries] == [C]


async def test_settings(repo: AuthorityRepository) -> None:
    assert await repo.get_setting("k") is None
    assert await repo.put_setting("k", b"one", replace=False) == b"one"
    assert await repo.put_setting("k", b"two", replace=False) == b"one"
    assert await repo.put_setting("k", b"three") == b"three"
    assert await repo.get_setting("k") == b"three"


async def test_fifty_concurrent_redemptions_of_a_one_use_ticket(repo: AuthorityRepository
                                                               ) -> None:
    code = b"\x07" * 32
    h = hashlib.sha256(code).digest()
    await repo.add_ticket(ticket(code), AuditRecord(NOW, A, "ticket.create", ticket="ref0000001"))
    results = await asyncio.gather(*[
        repo.redeem_ticket(h, ident(i), NOW, merge_into(ident(i))) for i in range(50)],
        return_exceptions=True)
    ok = [r for r in results if isinstance(r, Redemption)]
    assert len(ok) == 1
    assert all(isinstance(r, TicketUsedError) for r in results if not isinstance(r, Redemption))
    assert len(await repo.list_members(limit=100)) == 1


async def test_authorities_sharing_a_database_are_apart(
        kind: str, make_repo: Callable[[str], AuthorityRepository]) -> None:
    if kind == "memory":
        return  # one in-memory repository is one authority by construction
    one, two = make_repo(AUTH), make_repo(OTHER_AUTH)
    await one.put_member(Member(B, {}, A, NOW), AuditRecord(NOW, A, "member.add", B))
    await one.delete_member(B, AuditRecord(NOW, A, "member.delete", B), revoked_at=NOW)
    assert await two.get_member(B) is None
    assert await two.revocations() == (0, [])
    assert await two.audit_log(after=0, limit=10) == []


async def test_audit_entries_are_purged_by_age(repo: AuthorityRepository) -> None:
    for at in (NOW - 10, NOW - 5, NOW):
        await repo.put_member(Member(B, {}, A, at), AuditRecord(at, A, "member.update", B))
    assert await repo.purge_audit(before=NOW - 5) == 1
    left = await repo.audit_log(after=0, limit=10)
    assert [e.at for e in left] == [NOW - 5, NOW]
    await repo.put_member(Member(B, {}, A, NOW), AuditRecord(NOW, A, "member.update", B))
    assert (await repo.audit_log(after=0, limit=10))[-1].seq > left[-1].seq


async def test_redemption_sees_the_member_before(repo: AuthorityRepository) -> None:
    before = Member(B, {"ockam-relay": "b", "team": "x"}, A, NOW - 1)
    await repo.put_member(before, AuditRecord(NOW, A, "member.add", B))
    code = b"\x08" * 32
    await repo.add_ticket(ticket(code), AuditRecord(NOW, A, "ticket.create", ticket="ref0000001"))
    seen: list[Member | None] = []

    def merge(prev: Member, t: TicketRecord) -> Member:
        seen.append(prev)
        return Member(B, {**prev.attributes, **t.attributes}, t.created_by, NOW)

    r = await repo.redeem_ticket(hashlib.sha256(code).digest(), B, NOW, merge)
    assert seen == [before] and r.previous == before
    assert r.member.attributes == {"ockam-relay": "b", "role": "db", "team": "x"}
    assert await repo.get_member(B) == r.member
    # and a pre-trusted member is never overwritten by a redemption
    await repo.replace_pre_trusted([Member(C, {"p": "1"}, AUTH, NOW, True)], [])
    code2 = b"\x09" * 32
    await repo.add_ticket(ticket(code2, ref="ref0000002"), AuditRecord(NOW, A, "ticket.create"))
    with pytest.raises(ConflictError):
        await repo.redeem_ticket(hashlib.sha256(code2).digest(), C, NOW, merge_into(C))
    t2 = await repo.get_ticket("ref0000002")
    assert t2 is not None and t2.uses_left == 1


async def test_a_new_member_gets_the_tickets_attributes_and_one_audit_entry(
        repo: AuthorityRepository) -> None:
    code = b"\x0a" * 32
    attrs = {"z": "last", "a": "first", "note": "caf\u00e9 \"q\""}
    await repo.add_ticket(ticket(code, attrs=attrs, uses=2),
                          AuditRecord(NOW, A, "ticket.create", ticket="ref0000001"))

    def never(before: Member, t: TicketRecord) -> Member:
        raise AssertionError("merge is for existing members only")

    r = await repo.redeem_ticket(hashlib.sha256(code).digest(), B, NOW + 3, never)
    assert r.previous is None and r.ticket.uses_left == 1 and r.ticket.reference == "ref0000001"
    assert r.member == new_member(B, r.ticket, NOW + 3) == Member(B, attrs, A, NOW + 3)
    assert await repo.get_member(B) == r.member
    entries = await repo.audit_log(after=0, limit=10)
    assert [e.action for e in entries] == ["ticket.create", REDEEM_ACTION]
    e = entries[-1]
    assert (e.at, e.actor, e.subject, e.ticket, e.attributes) == (NOW + 3, B, B, "ref0000001",
                                                                  attrs)


async def test_one_identifier_redeeming_tickets_concurrently(repo: AuthorityRepository) -> None:
    """Redemptions by one new identifier race to create its member: every one succeeds (the
    losers merge into the winner's record), one member, one audit entry each."""
    codes = [bytes([0x20 + i]) * 32 for i in range(8)]
    for i, code in enumerate(codes):
        await repo.add_ticket(ticket(code, ref=f"ref000010{i}", attrs={f"k{i}": "v"}),
                              AuditRecord(NOW, A, "ticket.create"))
    results = await asyncio.gather(*[
        repo.redeem_ticket(hashlib.sha256(c).digest(), B, NOW, merge_into(B)) for c in codes])
    assert sum(r.previous is None for r in results) == 1
    m = await repo.get_member(B)
    assert m is not None and m.attributes == {f"k{i}": "v" for i in range(8)}
    assert len([e for e in await repo.audit_log(after=0, limit=100)
                if e.action == REDEEM_ACTION]) == 8
    for code in codes:
        with pytest.raises(TicketUsedError):
            await repo.redeem_ticket(hashlib.sha256(code).digest(), C, NOW, merge_into(C))


async def test_concurrent_redemptions_each_get_their_own_outcome(repo: AuthorityRepository
                                                                 ) -> None:
    """On SQLite concurrent redemptions share one transaction (group commit), each in a
    savepoint: a refused one is rolled back alone, the others commit."""
    good = [bytes([0x40 + i]) * 32 for i in range(6)]
    for i, code in enumerate(good):
        await repo.add_ticket(ticket(code, ref=f"ref000020{i}"), AuditRecord(NOW, A, "ticket.create"))
    await repo.put_member(Member(C, {"x": "1"}, A, NOW), AuditRecord(NOW, A, "member.add", C))

    def refuse(before: Member, t: TicketRecord) -> Member:
        raise ConflictError("refused")

    calls = [repo.redeem_ticket(hashlib.sha256(code).digest(), ident(100 + i), NOW,
                                merge_into(ident(100 + i))) for i, code in enumerate(good[:5])]
    calls.append(repo.redeem_ticket(hashlib.sha256(good[5]).digest(), C, NOW, refuse))
    calls.append(repo.redeem_ticket(hashlib.sha256(b"\x7f" * 32).digest(), B, NOW,
                                    merge_into(B)))
    calls.append(repo.redeem_ticket(hashlib.sha256(good[0]).digest(), B, NOW, merge_into(B)))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, Redemption) for r in results[:5])
    assert isinstance(results[5], ConflictError)
    assert isinstance(results[6], TicketUnknownError)
    assert isinstance(results[7], TicketUsedError)
    t = await repo.get_ticket("ref0000205")
    assert t is not None and t.uses_left == 1  # the refused redemption left it unused
    c = await repo.get_member(C)
    assert c is not None and c.attributes == {"x": "1"}
    assert await repo.get_member(B) is None
    assert sorted(m.identifier for m in await repo.list_members(limit=100)) == sorted(
        [C, *(ident(100 + i) for i in range(5))])
    assert len([e for e in await repo.audit_log(after=0, limit=100)
                if e.action == REDEEM_ACTION]) == 5
    # concurrent reads of members (grouped on SQLite) each get their own answer
    got = await asyncio.gather(*[repo.get_member(i) for i in (B, C, ident(100), ident(104))])
    assert [None if m is None else m.identifier for m in got] == [None, C, ident(100), ident(104)]


async def test_redemption_joins_an_open_transaction(kind: str, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    """Inside the task's own transaction a redemption runs in it (no deadlock with the
    grouped path) and is undone with it."""
    if kind == "memory":
        return
    url = f"sqlite:///{tmp_path / 'j.sqlite'}" if kind == "sqlite" else \
        request.getfixturevalue("postgres_url")
    db = closing(database(url))
    repo = SqlAuthorityRepository(db, AUTH)
    code = b"\x50" * 32
    await repo.add_ticket(ticket(code), AuditRecord(NOW, A, "ticket.create"))
    with pytest.raises(RuntimeError, match="undo"):
        async with db.transaction():
            r = await asyncio.wait_for(repo.redeem_ticket(hashlib.sha256(code).digest(), B, NOW,
                                                          merge_into(B)), 10)
            assert r.member.identifier == B
            assert await asyncio.wait_for(repo.get_member(B), 10) == r.member
            raise RuntimeError("undo")
    t = await repo.get_ticket("ref0000001")
    assert t is not None and t.uses_left == 1
    assert await repo.get_member(B) is None


async def test_replicas_redeeming_for_the_same_identifiers(
        kind: str, make_repo: Callable[[str], AuthorityRepository]) -> None:
    """Two repositories of one authority on one database (as replicas) redeem tickets for
    overlapping identifiers at once (grouped statements may fail on a member the other made
    meanwhile and are then redone one by one): every ticket is used once, every identifier
    is one member holding the attributes of all its tickets, one audit entry per use."""
    one, two = make_repo(AUTH), make_repo(AUTH)
    codes = [bytes([0x60 + i]) * 32 for i in range(24)]
    for i, code in enumerate(codes):
        await one.add_ticket(ticket(code, ref=f"ref00003{i:02d}", attrs={f"k{i}": "v"}),
                             AuditRecord(NOW, A, "ticket.create"))
    owner = [ident(200 + i % 6) for i in range(24)]
    results = await asyncio.gather(*[
        (one if i % 2 else two).redeem_ticket(hashlib.sha256(c).digest(), owner[i], NOW,
                                              merge_into(owner[i]))
        for i, c in enumerate(codes)])
    assert [r.member.identifier for r in results] == owner
    for k in range(6):
        m = await one.get_member(ident(200 + k))
        assert m is not None and m.attributes == {f"k{i}": "v" for i in range(k, 24, 6)}
    for i in range(24):
        t = await one.get_ticket(f"ref00003{i:02d}")
        assert t is not None and t.uses_left == 0
    assert len([e for e in await one.audit_log(after=0, limit=100)
                if e.action == REDEEM_ACTION]) == 24
