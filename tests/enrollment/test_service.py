"""The authority's rules without messaging: ticket defaults and bounds, housekeeping (expired
tickets purged after the grace period, old revocations dropped), options and the
trusted-identities file."""

from __future__ import annotations

import json

import pytest

from tests.enrollment.helpers import world
from trust.enrollment.errors import TicketExpiredError, TicketUnknownError
from trust.enrollment.repositories import MemoryAuthorityRepository
from trust.enrollment.service import (
    DEFAULT_TICKET_TTL,
    AuthorityOptions,
    AuthorityService,
    Role,
    code_hash,
    is_reserved,
    parse_trusted_identities,
)
from trust.errors import DecodeError, UsageError

NOW = 1_800_000_000


def service(**kw: object) -> tuple[AuthorityService, MemoryAuthorityRepository]:
    w = world()
    repo = MemoryAuthorityRepository()
    opts = AuthorityOptions(admins=frozenset({w.admin.identifier}), **kw)  # type: ignore[arg-type]
    return AuthorityService(w.signer, repo, opts), repo


async def test_ticket_defaults_and_the_stored_hash() -> None:
    svc, _repo = service()
    admin = world().admin.identifier
    code, record = await svc.create_ticket(admin, {"a": "1"}, now=NOW)
    assert record.expires_at == NOW + DEFAULT_TICKET_TTL == NOW + 600
    assert record.usage_count == record.uses_left == 1
    assert record.code_hash == code_hash(code.code) != code.code
    assert len(record.reference) == 10 and record.reference.isalnum()
    assert record.created_by == admin


async def test_housekeeping_purges_expired_tickets_after_the_grace_period() -> None:
    svc, repo = service(purge_grace=100, credential_ttl=60, revocation_retention=500,
                        audit_retention=1000)
    admin, alice = world().admin.identifier, world().parties[0].identifier
    code, _record = await svc.create_ticket(admin, {}, ttl=10, now=NOW)
    with pytest.raises(TicketExpiredError):
        await svc.redeem_ticket(alice, code, now=NOW + 10)
    assert await svc.housekeeping(now=NOW + 110) == (0, 0)   # within the grace period
    assert await svc.housekeeping(now=NOW + 111) == (1, 0)
    with pytest.raises(TicketUnknownError):
        await svc.redeem_ticket(alice, code, now=NOW + 111)
    # revocations leave the list after the retention, and the version grows
    code, _ = await svc.create_ticket(admin, {}, now=NOW)
    await svc.redeem_ticket(alice, code, now=NOW)
    await svc.delete_member(admin, alice, now=NOW)
    assert (await svc.revocation_list(now=NOW)).content.version == 1
    assert await svc.housekeeping(now=NOW + 500) == (0, 0)
    assert await svc.housekeeping(now=NOW + 501) == (0, 1)
    listed = (await svc.revocation_list(now=NOW + 501)).content
    assert listed.version == 2 and len(listed) == 0
    # audit entries older than the audit retention go too
    assert len(await repo.audit_log(after=0, limit=100)) == 4   # 2 created, 1 redeemed, 1 deleted
    await svc.housekeeping(now=NOW + 1001)
    assert await repo.audit_log(after=0, limit=100) == []


async def test_roles() -> None:
    w = world()
    trusted = {w.parties[5].identifier: {"ockam-role": "admin"}}
    svc, _ = service(trusted_identities=trusted)
    await svc.load_pre_trusted(now=NOW)
    assert (await svc.role_of(w.admin.identifier))[0] is Role.ADMIN
    assert (await svc.role_of(w.signer.identifier))[0] is Role.ADMIN      # itself
    assert (await svc.role_of(w.parties[5].identifier))[0] is Role.ADMIN  # pre-trusted admin
    await svc.add_member(w.admin.identifier, w.parties[0].identifier, {"ockam-role": "enroller"})
    await svc.add_member(w.admin.identifier, w.parties[1].identifier, {"x": "y"})
    assert (await svc.role_of(w.parties[0].identifier))[0] is Role.ENROLLER
    assert (await svc.role_of(w.parties[1].identifier))[0] is Role.MEMBER
    assert (await svc.role_of(w.parties[2].identifier))[0] is Role.NONE
    assert all(is_reserved(n) for n in ("ockam-role", "ockam-relay", "trust_context_id",
                                        "truststack.x"))
    assert not any(is_reserved(n) for n in ("role", "truststack", "ockam-tls-certificate"))


async def test_trust_context_id_is_in_every_credential() -> None:
    from trust.credentials.verification import verify_credential

    svc, _ = service(trust_context_id="project-1")
    w = world()
    v = verify_credential(await svc.issue_credential(w.admin.identity), [w.signer.identity])
    assert v.attributes == {b"ockam-relay": b"*", b"trust_context_id": b"project-1"}


def test_options_are_checked() -> None:
    with pytest.raises(UsageError):
        AuthorityOptions(ticket_ttl=10, max_ticket_ttl=5)
    with pytest.raises(UsageError):
        AuthorityOptions(credential_ttl=0)
    with pytest.raises(DecodeError):
        AuthorityOptions(admins=frozenset({"nobody"}))


def test_trusted_identities_file_is_ockams_object() -> None:
    a, b = "I" + "aa" * 32, "I" + "BB" * 32
    got = parse_trusted_identities(json.dumps({b: {"x": "1"}, a: {"ockam-role": "admin"}}))
    assert got == {a: {"ockam-role": "admin"}, "I" + "bb" * 32: {"x": "1"}}
    for bad in ('[{"identifier": "I00", "attributes": {}}]',     # the array of Ockam's help text
                "{", json.dumps({a: ["x"]}), json.dumps({a: {"x": 1}}),
                json.dumps({"Ixyz": {}}), json.dumps({a: {}, a.upper(): {}})):
        with pytest.raises(DecodeError):
            parse_trusted_identities(bad)


async def test_delete_all_pages_through_every_member() -> None:
    from trust.enrollment.repositories import AuditRecord, Member

    svc, repo = service()
    admin = world().admin.identifier
    for i in range(1500):
        ident = "I" + i.to_bytes(32, "big").hex()
        await repo.put_member(Member(ident, {}, admin, NOW), AuditRecord(NOW, admin, "member.add"))
    assert await svc.delete_all_members(admin, now=NOW) == 1500
    assert await repo.list_members(limit=10) == []
    assert (await svc.revocation_list(now=NOW)).content.version == 1500


async def test_deletions_stop_before_the_revocation_list_overflows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from trust.enrollment import service as service_module
    from trust.enrollment.errors import ConflictingRequestError

    monkeypatch.setattr(service_module, "MAX_REVOKED", service_module.REVOCATION_MARGIN + 2)
    svc, _ = service()
    w = world()
    admin = w.admin.identifier
    for p in w.parties[:3]:
        await svc.add_member(admin, p.identifier, {}, now=NOW)
    for p in w.parties[:2]:
        await svc.delete_member(admin, p.identifier, now=NOW)
        await svc.revocation_list(now=NOW)
    with pytest.raises(ConflictingRequestError, match="revocation list is full"):
        await svc.delete_member(admin, w.parties[2].identifier, now=NOW)
    assert await svc.show_member(admin, w.parties[2].identifier)


async def test_ticket_count_is_bounded() -> None:
    from trust.enrollment.errors import ConflictingRequestError

    svc, repo = service(max_tickets=2)
    admin = world().admin.identifier
    await svc.create_ticket(admin, {}, ttl=10, now=NOW)
    await svc.create_ticket(admin, {}, ttl=10, now=NOW)
    with pytest.raises(ConflictingRequestError, match="limit"):
        await svc.create_ticket(admin, {}, now=NOW)
    await svc.housekeeping(now=NOW + 10 + 3601)     # expired and past the grace period
    assert await repo.count_tickets() == 0
    await svc.create_ticket(admin, {}, now=NOW + 4000)


async def test_an_admins_ticket_can_make_an_enroller_and_an_enrollers_cannot() -> None:
    from trust.enrollment.errors import ForbiddenError

    svc, _ = service()
    w = world()
    admin, new, other = w.admin.identifier, w.parties[0].identifier, w.parties[1].identifier
    code, _ = await svc.create_ticket(admin, {"ockam-role": "enroller"}, now=NOW)
    await svc.redeem_ticket(new, code, now=NOW)
    assert (await svc.role_of(new))[0] is Role.ENROLLER
    with pytest.raises(ForbiddenError, match="reserved attribute 'ockam-role'"):
        await svc.create_ticket(new, {"ockam-role": "enroller"}, now=NOW)
    code, _ = await svc.create_ticket(new, {"team": "x"}, now=NOW)
    await svc.redeem_ticket(other, code, now=NOW)
    assert (await svc.role_of(other))[0] is Role.MEMBER


async def test_a_member_deleted_and_enrolled_again_within_one_second_is_not_revoked() -> None:
    import time

    from trust.credentials.verification import verify_credential

    svc, _repo = service()
    w = world()
    admin, alice = w.admin.identifier, w.parties[0]
    t = int(time.time())

    async def enrolled(at: int) -> int:
        code, _ = await svc.create_ticket(admin, {"team": "a"}, now=at)
        _, cred = await svc.enroll(alice.identity, code, now=at)
        return verify_credential(cred, [w.signer.identity], now=at).created_at

    async def revoked_at() -> int:
        entries = (await svc.revocation_list(now=t)).content.revoked
        return next(e.revoked_at for e in entries if e.identifier == alice.identifier)

    assert await enrolled(t) == t
    await svc.delete_member(admin, alice.identifier, now=t)
    assert await revoked_at() == t  # covers the first credential
    # enrolled again within the same second: created just after the revocation, not covered
    again = await enrolled(t)
    assert again == t + 1 > await revoked_at()
    # deleted again within that second: the revocation covers the new credential too
    await svc.delete_member(admin, alice.identifier, now=t)
    assert await revoked_at() == t + 1 >= again
    # once the clock is past the revocation, credentials are created at their own time
    assert await enrolled(t + 5) == t + 5
