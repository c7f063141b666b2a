"""The audit log's bounds: a reply always fits in one message (the client asks for the rest
after the last entry), and ``after`` beyond what the storage holds is a typed refusal."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.enrollment.conftest import closing
from tests.enrollment.helpers import running, world
from trust.enrollment.authority import AUTHENTICATOR
from trust.enrollment.errors import BadRequestError
from trust.enrollment.messages import Method
from trust.enrollment.messages.audit_log import AUDIT_BODY_BUDGET, AuditLog, fit_entries
from trust.enrollment.messages.audit_query import AuditQuery
from trust.enrollment.messages.common import MAX_MESSAGE_SIZE
from trust.enrollment.repositories import AuditRecord, Member, MemoryAuthorityRepository
from trust.enrollment.service import MAX_SEQ, AuthorityOptions, AuthorityService
from trust.storage.authority import SqlAuthorityRepository
from trust.storage.sql import database

BIG = {f"a{i:02d}": "x" * 1024 for i in range(64)}   # the largest attributes allowed


async def test_an_audit_log_larger_than_a_message_comes_in_pieces() -> None:
    w = world()
    repo = MemoryAuthorityRepository()
    n = 80                                              # about 5.3 MB of entries
    now = int(time.time())
    for i in range(n):
        ident = "I" + f"{i:064x}"
        await repo.put_member(Member(ident, BIG, w.admin.identifier, now),
                              AuditRecord(now, w.admin.identifier, "member.add", ident, None, BIG))
    async with running(repository=repo) as run:
        admin = await run.connect(w.admin)
        body = await admin.request(AUTHENTICATOR, Method.GET, "/audit",
                                   AuditQuery(None, 1000).encode())
        assert body is not None and len(body) <= AUDIT_BODY_BUDGET < MAX_MESSAGE_SIZE
        page = AuditLog.decode(body).entries
        assert 0 < len(page) < n
        entries = await admin.audit(limit=1000)
        assert [e.seq for e in entries] == list(range(1, n + 1))
        assert entries[-1].attributes == BIG
        assert len(await admin.audit(limit=n - 3)) == n - 3
        assert [e.seq for e in await admin.audit(after=n - 2)] == [n - 1, n]


def test_fit_entries_keeps_the_longest_prefix_that_fits() -> None:
    from trust.enrollment.messages.audit_entry import AuditEntry

    w = world()
    entries = [AuditEntry(i, 1, w.admin.identifier, "member.add") for i in range(1, 11)]
    size = len(entries[0].encode())
    assert fit_entries(entries, 9 + 3 * size) == tuple(entries[:3])
    assert fit_entries(entries) == tuple(entries)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_audit_after_beyond_the_storage_is_a_bad_request(kind: str, tmp_path: Path) -> None:
    w = world()
    repo = MemoryAuthorityRepository() if kind == "memory" else SqlAuthorityRepository(
        closing(database(f"sqlite:///{tmp_path / 'a.db'}")), w.signer.identifier)
    svc = AuthorityService(w.signer, repo, AuthorityOptions(admins=frozenset({w.admin.identifier})))
    await svc.add_member(w.admin.identifier, w.parties[0].identifier, {}, now=1)
    assert await svc.audit(w.admin.identifier, after=MAX_SEQ) == []
    for after in (MAX_SEQ + 1, (1 << 64) - 1, -1):
        with pytest.raises(BadRequestError, match="after is a sequence number"):
            await svc.audit(w.admin.identifier, after=after)
