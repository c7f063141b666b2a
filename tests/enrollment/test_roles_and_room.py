"""Rules found wanting by an attacker review, on every repository: a
deleted (or demoted) enroller's tickets enroll nobody; enrollers cannot touch the records of
admins, and nobody those of the authority itself; deletions stop when the revocation list, as
stored, is full (the list stays servable); the ticket limit holds under concurrent requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.enrollment.conftest import closing
from tests.enrollment.helpers import world
from trust.enrollment.errors import (
    ConflictingRequestError,
    ForbiddenError,
    NotMemberError,
    TicketRevokedError,
    TicketUnknownError,
)
from trust.enrollment.repositories import AuthorityRepository, Member, MemoryAuthorityRepository
from trust.enrollment.service import AuthorityOptions, AuthorityService, Role
from trust.errors import UsageError
from trust.storage.authority import SqlAuthorityRepository
from trust.storage.sql import database

NOW = 1_800_000_000


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def make(request: pytest.FixtureRequest, tmp_path: Path
         ) -> Callable[..., tuple[AuthorityService, AuthorityRepository]]:
    url = None if request.param == "memory" else f"sqlite:///{tmp_path / 's.db'}" \
        if request.param == "sqlite" else request.getfixturevalue("postgres_url")

    def make(**kw: object) -> tuple[AuthorityService, AuthorityRepository]:
        w = world()
        repo: AuthorityRepository = MemoryAuthorityRepository() if url is None \
            else SqlAuthorityRepository(closing(database(url)), w.signer.identifier)
        opts = AuthorityOptions(admins=frozenset({w.admin.identifier}), **kw)  # type: ignore[arg-type]
        return AuthorityService(w.signer, repo, opts), repo
    return make


async def test_a_deleted_enrollers_tickets_enroll_nobody(make: Callable[..., tuple[
        AuthorityService, AuthorityRepository]]) -> None:
    svc, repo = make()
    w = world()
    admin, enroller, a, b = (w.admin.identifier, w.parties[0].identifier,
                             w.parties[1].identifier, w.parties[2].identifier)
    await svc.add_member(admin, enroller, {"ockam-role": "enroller"}, now=NOW)
    stash, record = await svc.create_ticket(enroller, {"role": "db"}, ttl=86_400,
                                            usage_count=100, now=NOW)
    await svc.redeem_ticket(a, stash, now=NOW)                 # while it is an enroller: fine
    await svc.delete_member(admin, enroller, now=NOW)
    # its tickets with uses left went with it
    assert await repo.get_ticket(record.reference) is None
    for who in (enroller, b):
        with pytest.raises(TicketUnknownError):
            await svc.redeem_ticket(who, stash, now=NOW + 2)
    assert await repo.get_member(b) is None and await repo.get_member(enroller) is None


async def test_a_demoted_enrollers_tickets_are_refused(make: Callable[..., tuple[
        AuthorityService, AuthorityRepository]]) -> None:
    svc, repo = make()
    w = world()
    admin, enroller, b = w.admin.identifier, w.parties[0].identifier, w.parties[2].identifier
    await svc.add_member(admin, enroller, {"ockam-role": "enroller"}, now=NOW)
    code, record = await svc.create_ticket(enroller, {"role": "db"}, usage_count=2, now=NOW)
    await svc.add_member(admin, enroller, {"team": "x"}, now=NOW)    # no longer an enroller
    with pytest.raises(TicketRevokedError, match="no longer"):
        await svc.redeem_ticket(b, code, now=NOW + 1)
    assert await repo.get_member(b) is None
    assert (await repo.get_ticket(record.reference)).uses_left == 2  # type: ignore[union-attr]
    # made an enroller again: the ticket works again
    await svc.add_member(admin, enroller, {"ockam-role": "enroller"}, now=NOW)
    await svc.redeem_ticket(b, code, now=NOW + 1)
    assert (await svc.role_of(b))[0] is Role.MEMBER


async def test_enrollers_cannot_touch_admins_and_nobody_the_authority(make: Callable[..., tuple[
        AuthorityService, AuthorityRepository]]) -> None:
    svc, repo = make()
    w = world()
    admin, enroller, plain = w.admin.identifier, w.parties[0].identifier, w.parties[1].identifier
    authority = w.signer.identifier
    await svc.add_member(admin, enroller, {"ockam-role": "enroller"}, now=NOW)
    await svc.add_member(admin, plain, {}, now=NOW)
    await svc.add_member(admin, admin, {"team": "ops"}, now=NOW)   # an admin's own record
    version = (await repo.revocations())[0]
    for subject in (admin, authority):
        with pytest.raises(ForbiddenError, match=r"admin|authority itself"):
            await svc.add_member(enroller, subject, {"role": "db"}, now=NOW)
        with pytest.raises(ForbiddenError, match=r"admin|authority itself"):
            await svc.delete_member(enroller, subject, now=NOW)
    # not even an admin gives the authority a record or revokes it
    with pytest.raises(ForbiddenError, match="authority itself"):
        await svc.add_member(admin, authority, {}, now=NOW)
    with pytest.raises(ForbiddenError, match="authority itself"):
        await svc.delete_member(admin, authority, now=NOW)
    assert (await repo.get_member(admin)).attributes == {"team": "ops"}  # type: ignore[union-attr]
    assert await repo.get_member(authority) is None
    # DELETE /members by an enroller skips the admin's record (and the enroller itself)
    assert await svc.delete_all_members(enroller, now=NOW) == 1
    assert await repo.get_member(admin) is not None and await repo.get_member(plain) is None
    version2, revoked = await repo.revocations()
    assert [r.identifier for r in revoked] == [plain] and version2 == version + 1
    assert (await svc.revocation_list(now=NOW)).content.revoked[0].identifier == plain


async def test_deletions_stop_when_the_stored_revocation_list_is_full(make: Callable[..., tuple[
        AuthorityService, AuthorityRepository]]) -> None:
    svc, repo = make(max_revocations=3)
    w = world()
    admin = w.admin.identifier
    idents = ["I" + f"{i:064x}" for i in range(1, 7)]
    for i in idents:
        await svc.add_member(admin, i, {}, now=NOW)
    await svc.revocation_list(now=NOW)       # signed while empty: the cache says 0 entries
    # one request, several deletions: it stops at the limit, with a typed error
    with pytest.raises(ConflictingRequestError, match=r"3 members deleted.*revocation list is full"):
        await svc.delete_all_members(admin, now=NOW)
    assert len((await repo.revocations())[1]) == 3
    left = [m.identifier for m in await repo.list_members(limit=10)]
    assert len(left) == 3
    with pytest.raises(ConflictingRequestError, match="revocation list is full"):
        await svc.delete_member(admin, left[0], now=NOW)
    assert await repo.get_member(left[0]) is not None            # nothing changed
    # the list stays servable; deleting again one already on it takes no more room
    assert len((await svc.revocation_list(now=NOW)).content.revoked) == 3
    first = (await repo.revocations())[1][0].identifier
    await svc.add_member(admin, first, {}, now=NOW + 5)
    await svc.delete_member(admin, first, now=NOW + 5)
    # once entries expire there is room again
    await svc.housekeeping(now=NOW + svc.options.retention + 10)
    await svc.delete_member(admin, left[0], now=NOW + svc.options.retention + 10)


def test_max_revocations_is_checked() -> None:
    for bad in (0, -1, 1 << 20, True):
        with pytest.raises(UsageError, match="max_revocations"):
            AuthorityOptions(max_revocations=bad)  # type: ignore[arg-type]


async def test_concurrent_ticket_requests_never_exceed_the_limit(make: Callable[..., tuple[
        AuthorityService, AuthorityRepository]]) -> None:
    svc, repo = make(max_tickets=3)
    admin = world().admin.identifier
    outcomes = await asyncio.gather(*[svc.create_ticket(admin, {}, now=NOW) for _ in range(12)],
                                    return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, ConflictingRequestError) and "limit" in str(o) for o in refused)
    assert len(refused) == 9 and await repo.count_tickets() == 3


class _SlowReads(MemoryAuthorityRepository):
    """Reading ``slow_for`` returns the row as read, after a delay (storage latency)."""

    slow_for: str | None = None

    async def get_member(self, identifier: str) -> Member | None:
        m = await super().get_member(identifier)
        if identifier == self.slow_for:
            self.slow_for = None
            await asyncio.sleep(0.2)
        return m


async def test_a_member_deleted_during_its_credential_request_gets_none() -> None:
    w = world()
    repo = _SlowReads()
    svc = AuthorityService(w.signer, repo, AuthorityOptions(admins=frozenset({w.admin.identifier})))
    victim = w.parties[1]
    now = int(time.time())                  # (within the signing key's attestation)
    await svc.add_member(w.admin.identifier, victim.identifier, {"role": "db"}, now=now)
    repo.slow_for = victim.identifier
    issue = asyncio.get_running_loop().create_task(svc.issue_credential(victim.identity, now=now))
    await asyncio.sleep(0.05)                 # its membership is read; the deletion runs now
    await svc.delete_member(w.admin.identifier, victim.identifier, now=now)
    # (before: a credential dated NOW + 1, after the revocation at NOW, so not covered by it)
    with pytest.raises(NotMemberError):
        await issue
    # a member that was not deleted is served as before
    other = w.parties[2]
    await svc.add_member(w.admin.identifier, other.identifier, {"role": "db"}, now=now)
    await svc.issue_credential(other.identity, now=now + 1)
