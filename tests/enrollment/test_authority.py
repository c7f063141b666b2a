"""The authority's services through real secure channels between two nodes on 127.0.0.1:
enrollment, roles and reserved attributes, pre-trusted members, typed ticket refusals,
re-enrollment, revocation, the audit log, and the channel-only rule."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from pathlib import Path

import pytest

from tests.enrollment.conftest import closing
from tests.enrollment.helpers import Running, make_world, running, world
from trust.credentials.verification import verify_credential
from trust.enrollment.errors import (
    BadRequestError,
    ForbiddenError,
    MemberNotFoundError,
    NotMemberError,
    PreTrustedError,
    SecureChannelRequiredError,
    TicketError,
    TicketExpiredError,
    TicketUnknownError,
    TicketUsedError,
    UnknownPathError,
)
from trust.enrollment.messages import ErrorBody, Method, OneTimeCode, Request, Response, Status
from trust.enrollment.revocation import verify_revocation_list
from trust.enrollment.service import AuthorityOptions
from trust.enrollment.ticket import EnrollmentTicket, authority_route_text
from trust.models.credential import CredentialAndPurposeKey
from trust.storage.authority import SqlAuthorityRepository
from trust.storage.sql import database


def opts(credential_ttl: int) -> AuthorityOptions:
    return AuthorityOptions(admins=frozenset({world().admin.identifier}),
                            credential_ttl=credential_ttl)


def ticket_of(run: Running, code: OneTimeCode) -> EnrollmentTicket:
    return EnrollmentTicket.for_authority(code, authority_route_text(run.route.addresses[0].name),
                                          run.world.signer.identity, "company")


async def test_enroll_gives_a_credential_with_the_ticket_attributes() -> None:
    w = world()
    async with running() as run:
        admin = await run.connect(w.admin)
        code = await admin.create_ticket({"component": "db", "env": "prod"})
        assert code.reference and code.expires_at
        ticket = EnrollmentTicket.decode(ticket_of(run, code).encode())
        alice = w.parties[0]
        client = await run.connect(alice)
        cred = await client.enroll(ticket)
        v = verify_credential(cred, [w.signer.identity], expected_subject=alice.identity)
        assert v.attributes == {b"component": b"db", b"env": b"prod"}
        assert v.schema == 1 and v.expires_at - v.created_at == 3600
        # the credential came with the redemption's answer; credential_issuer gives the same
        fetched = verify_credential(await client.get_credential(), [w.signer.identity],
                                    expected_subject=alice.identity)
        assert fetched.attributes == v.attributes
        members = await admin.list_members()
        assert members[alice.identifier].attributes == {"component": "db", "env": "prod"}
        assert members[alice.identifier].attested_by == w.admin.identifier
        assert await admin.member_ids() == [alice.identifier]
        shown = await admin.show_member(alice.identifier)
        assert shown.attributes == {"component": "db", "env": "prod"}
        # the admin gets a credential without being a member
        admin_cred = verify_credential(await admin.get_credential(), [w.signer.identity])
        assert admin_cred.attributes == {b"ockam-relay": b"*"}


async def test_credential_ttl_is_configurable() -> None:
    w = world()
    async with running(options=opts(credential_ttl=120)) as run:
        admin = await run.connect(w.admin)
        client = await run.connect(w.parties[1])
        code = await admin.create_ticket({"a": "1"})
        before = run.authority.stats["requests"]
        v = verify_credential(await client.enroll(code), [w.signer.identity])
        assert run.authority.stats["requests"] == before + 1   # one round trip enrolls
        assert v.expires_at - v.created_at == 120
        v = verify_credential(await client.get_credential(), [w.signer.identity])
        assert v.expires_at - v.created_at == 120


async def test_enroller_rights_and_limits() -> None:
    w = world()
    enroller, member, target = w.parties[0], w.parties[1], w.parties[2]
    async with running() as run:
        admin = await run.connect(w.admin)
        await admin.add_member(enroller.identifier, {"ockam-role": "enroller"})
        await admin.add_member(member.identifier, {"team": "blue"})
        e = await run.connect(enroller)
        # an enroller adds, shows and deletes ordinary members and creates tickets
        await e.add_member(target.identifier, {"team": "red"})
        assert (await e.show_member(target.identifier)).attributes == {"team": "red"}
        await e.create_ticket({"team": "green"})
        # ... but never grants a reserved attribute nor makes an enroller
        for attrs in ({"ockam-role": "enroller"}, {"ockam-relay": "db"},
                      {"trust_context_id": "x"}, {"truststack.admin": "1"}):
            with pytest.raises(ForbiddenError, match="reserved attribute"):
                await e.create_ticket(attrs)
            with pytest.raises(ForbiddenError, match="reserved attribute"):
                await e.add_member(target.identifier, attrs)
        # ... nor deletes or changes an enroller
        await admin.add_member(w.parties[3].identifier, {"ockam-role": "enroller"})
        with pytest.raises(ForbiddenError, match="admin"):
            await e.delete_member(w.parties[3].identifier)
        with pytest.raises(ForbiddenError, match="admin"):
            await e.add_member(w.parties[3].identifier, {"team": "x"})
        # ... nor reads the audit log
        with pytest.raises(ForbiddenError):
            await e.audit()
        await e.delete_member(target.identifier)
        with pytest.raises(MemberNotFoundError):
            await e.show_member(target.identifier)
        # an admin deletes enrollers; an admin cannot make an admin through the API
        await admin.delete_member(w.parties[3].identifier)
        with pytest.raises(BadRequestError, match="ockam-role"):
            await admin.add_member(target.identifier, {"ockam-role": "admin"})
        # a plain member manages nothing
        m = await run.connect(member)
        with pytest.raises(ForbiddenError, match="enroller"):
            await m.create_ticket({})
        with pytest.raises(ForbiddenError):
            await m.list_members()
        with pytest.raises(ForbiddenError):
            await m.add_member(target.identifier, {})
        # a stranger gets no credential (Ockam's "unauthorized member")
        stranger = await run.connect(w.parties[4])
        with pytest.raises(NotMemberError, match="unauthorized member"):
            await stranger.get_credential()


async def test_enroller_changing_a_member_keeps_its_reserved_attributes() -> None:
    w = world()
    enroller, target = w.parties[0], w.parties[1]
    async with running() as run:
        admin = await run.connect(w.admin)
        await admin.add_member(enroller.identifier, {"ockam-role": "enroller"})
        await admin.add_member(target.identifier, {"ockam-relay": "db", "team": "a"})
        e = await run.connect(enroller)
        await e.add_member(target.identifier, {"team": "b"})
        assert (await admin.show_member(target.identifier)).attributes == {
            "ockam-relay": "db", "team": "b"}


async def test_pre_trusted_members() -> None:
    w = world()
    boss, fixed = w.parties[0], w.parties[1]
    trusted = {boss.identifier: {"ockam-role": "admin"}, fixed.identifier: {"site": "hq"}}
    options = AuthorityOptions(trusted_identities=trusted)   # no other admin
    async with running(options=options) as run:
        b = await run.connect(boss)
        await b.add_member(w.parties[2].identifier, {"ockam-role": "enroller"})   # an admin
        entry = await b.show_member(fixed.identifier)
        assert entry.pre_trusted and entry.attributes == {"site": "hq"}
        for who in (fixed.identifier, boss.identifier):
            with pytest.raises(PreTrustedError):
                await b.delete_member(who)
        with pytest.raises(PreTrustedError):
            await b.add_member(fixed.identifier, {"site": "elsewhere"})
        f = await run.connect(fixed)
        v = verify_credential(await f.get_credential(), [w.signer.identity])
        assert v.attributes == {b"site": b"hq"}
        # a pre-trusted member cannot change itself with a ticket (and the ticket stays unused)
        code = await b.create_ticket({"site": "x"})
        with pytest.raises(PreTrustedError):
            await f.redeem(code)
        await (await run.connect(w.parties[3])).redeem(code)


async def test_tickets_expired_reused_forged_and_malformed_are_refused() -> None:
    w = world()
    now = [float(int(time.time()))]
    async with running(clock=lambda: now[0]) as run:
        admin = await run.connect(w.admin)
        c1, c2 = await run.connect(w.parties[0]), await run.connect(w.parties[1])
        code = await admin.create_ticket({"a": "1"})
        expiring = await admin.create_ticket({"a": "2"}, ttl=5)
        assert expiring.expires_at == int(now[0]) + 5
        await c1.redeem(code)
        with pytest.raises(TicketUsedError, match=str(code.reference)):
            await c2.redeem(code)
        with pytest.raises(TicketUnknownError):
            await c2.redeem(OneTimeCode(secrets.token_bytes(32)))
        now[0] += 5
        with pytest.raises(TicketExpiredError):
            await c2.redeem(expiring)
        for bad in (b"", b"\xa1\x01\x41\x00", b"\xa1\x01\x58\x20" + b"\x00" * 31, b"\xff"):
            with pytest.raises(BadRequestError):
                await c2.request("enrollment_token_acceptor", Method.POST, "/", bad or None)
        with pytest.raises(UnknownPathError):
            await c2.request("enrollment_token_acceptor", Method.GET, "/nowhere")
        # bounds: time to live and usage count
        with pytest.raises(BadRequestError, match="seconds"):
            await admin.create_ticket({}, ttl=8 * 86_400)
        with pytest.raises(BadRequestError, match="usage count"):
            await admin.create_ticket({}, usage_count=10_001)
        zero = await admin.create_ticket({}, usage_count=0)   # Ockam: 0 behaves as 1
        await c2.redeem(zero)
        with pytest.raises(TicketUsedError):
            await (await run.connect(w.parties[2])).redeem(zero)


async def test_reenrolling_replaces_non_reserved_attributes() -> None:
    w = world()
    alice = w.parties[0]
    async with running() as run:
        admin = await run.connect(w.admin)
        client = await run.connect(alice)
        await client.redeem(await admin.create_ticket({"ockam-relay": "alice", "team": "a",
                                                       "old": "1"}))
        cred = await client.enroll(await admin.create_ticket({"team": "b"}))
        v = verify_credential(cred, [w.signer.identity])
        assert v.attributes == {b"ockam-relay": b"alice", b"team": b"b"}
        actions = [(e.action, e.ticket is not None) for e in await admin.audit()]
        assert actions == [("ticket.create", True), ("ticket.redeem", True),
                           ("ticket.create", True), ("ticket.redeem", True)]


async def test_requests_not_through_a_channel_are_refused() -> None:
    async with running() as run:
        req = Request.of(Method.POST, "/")
        reply = await run.server.ctx.request("credential_issuer", req.encode(), timeout=5)
        resp = Response.decode(reply.payload)
        assert resp.header.re == req.id and resp.status is Status.BAD_REQUEST
        err = resp.error_body()
        assert err.code == SecureChannelRequiredError.code
        assert err.message == "secure channel required"
        # garbage that is not even a request header: 400 with request id 0
        reply = await run.server.ctx.request("direct_authenticator", b"\xff\x00", timeout=5)
        resp = Response.decode(reply.payload)
        assert resp.header.re == 0 and resp.status is Status.BAD_REQUEST
        assert isinstance(resp.error_body(), ErrorBody)
        assert run.authority.stats["no_channel"] == 1


async def test_deleting_a_member_revokes_it() -> None:
    w = world()
    alice, bob = w.parties[0], w.parties[1]
    async with running() as run:
        admin = await run.connect(w.admin)
        first = verify_revocation_list(await admin.revocation_list(), w.signer.identity)
        assert first.version == 0 and len(first) == 0
        a = await run.connect(alice)
        await a.enroll(await admin.create_ticket({"x": "1"}))
        await (await run.connect(bob)).enroll(await admin.create_ticket({"x": "2"}))
        await admin.delete_member(alice.identifier)
        with pytest.raises(NotMemberError):
            await a.get_credential()
        with pytest.raises(MemberNotFoundError):
            await admin.delete_member(alice.identifier)
        listed = verify_revocation_list(await a.revocation_list(), w.signer.identity,
                                        previous=first)
        assert listed.version == 1 and alice.identifier in listed
        assert bob.identifier not in listed
        at = listed.revoked_at(alice.identifier)
        assert at is not None and listed.is_revoked(alice.identifier, at)
        assert not listed.is_revoked(alice.identifier, at + 1)   # enrolled again later
        # deleting everyone (Ockam's DELETE /members) spares the caller
        await admin.delete_all_members()
        after = verify_revocation_list(await admin.revocation_list(), w.signer.identity,
                                       previous=listed)
        assert after.version == 2 and bob.identifier in after


async def test_fifty_concurrent_redemptions_over_channels_with_sqlite(tmp_path: Path) -> None:
    w = await make_world(50)
    repo = SqlAuthorityRepository(closing(database(f"sqlite:///{tmp_path / 'a.sqlite'}")),
                                  w.signer.identifier)
    async with running(repository=repo, w=w,
                       options=AuthorityOptions(admins=frozenset({w.admin.identifier}))) as run:
        admin = await run.connect(w.admin)
        clients = [await run.connect(p) for p in w.parties[:50]]
        code = await admin.create_ticket({"only": "one"})
        results = await asyncio.gather(*[c.redeem(code) for c in clients],
                                       return_exceptions=True)
        assert sum(isinstance(r, CredentialAndPurposeKey) for r in results) == 1
        assert all(isinstance(r, TicketUsedError) for r in results
                   if not isinstance(r, CredentialAndPurposeKey))
        assert len(await admin.list_members()) == 1


async def test_the_code_never_appears_in_clear(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    w = world()
    path = tmp_path / "authority.sqlite"
    repo = SqlAuthorityRepository(closing(database(f"sqlite:///{path}")), w.signer.identifier)
    caplog.set_level(logging.DEBUG)
    codes: list[OneTimeCode] = []
    errors: list[str] = []
    async with running(repository=repo) as run:
        admin = await run.connect(w.admin)
        client = await run.connect(w.parties[0])
        used = await admin.create_ticket({"a": "1"})
        codes.append(used)
        await client.redeem(used)
        try:
            await client.redeem(used)
        except TicketError as e:
            errors.append(str(e))
        expired = await admin.create_ticket({"a": "1"}, ttl=1)
        codes.append(expired)
        late = float((expired.expires_at or 0) + 1)
        run.authority.clock = lambda: late
        try:
            await client.redeem(expired)
        except TicketError as e:
            errors.append(str(e))
        errors.extend(repr(x) + str(x) for x in codes)
        ticket = ticket_of(run, used)
        errors.extend([repr(ticket), str(ticket)])
        errors.extend(f"{e.as_json()}" for e in await admin.audit())
        await repo.db.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    logs = caplog.text
    assert len(errors) >= 6
    for c in codes:
        for needle in (c.hex(), c.hex().upper()):
            assert needle not in logs
            assert all(needle not in e for e in errors)
            assert needle.encode() not in raw
        assert c.code not in raw


async def test_a_member_list_too_large_to_send_is_refused_in_one_line() -> None:
    from trust.enrollment.repositories import AuditRecord, Member, MemoryAuthorityRepository

    w = world()
    repo = MemoryAuthorityRepository()
    big = {f"a{i:02d}": "x" * 1000 for i in range(64)}
    for i in range(70):
        ident = "I" + i.to_bytes(32, "big").hex()
        await repo.put_member(Member(ident, big, w.admin.identifier, 0),
                              AuditRecord(0, w.admin.identifier, "member.add", ident))
    async with running(repository=repo) as run:
        admin = await run.connect(w.admin)
        with pytest.raises(BadRequestError, match="too large to send"):
            await admin.list_members()
        assert len(await admin.member_ids()) == 70


async def test_an_incoming_access_control_guards_each_service() -> None:
    from trust.node.access_control import AllowAll, DenyAll
    from trust.node.errors import ReceiveTimeoutError

    w = world()

    def controls(name: str) -> object:
        return DenyAll if name == "credential_issuer" else AllowAll

    async with running(incoming=controls) as run:
        admin = await run.connect(w.admin)
        admin.timeout = 0.5
        assert await admin.member_ids() == []
        with pytest.raises(ReceiveTimeoutError):
            await admin.get_credential()          # dropped by the service's access control
