"""The authority's shared capacity: no requester can hold the request slots every peer shares,
neither by not reading its replies nor by flooding requests that take long."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.enrollment.helpers import running, world
from trust.enrollment.errors import TooManyRequestsError
from trust.enrollment.messages import Method, Request
from trust.enrollment.repositories import AuditRecord, Member, MemoryAuthorityRepository


async def test_a_requester_that_does_not_read_its_replies_holds_no_slot() -> None:
    w = world()
    # (one "peer" may take every slot here: what is tested is that its replies never wait)
    async with running(max_in_flight=4, max_per_peer=4) as run:
        other = await run.connect(w.admin)
        sink = run.server.context(mailbox_size=1)   # never reads: its mailbox is full at once
        payload = Request.of(Method.GET, "/").encode()

        async def flood() -> None:
            for _ in range(40):
                await sink.send("revocation_list", payload)

        task = asyncio.get_running_loop().create_task(flood())
        try:
            await asyncio.sleep(0.3)
            started = time.monotonic()
            await asyncio.wait_for(other.revocation_list(), 3)
            assert time.monotonic() - started < 3
            assert run.authority.stats["replies_dropped"] > 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            sink.close()


class _Gated(MemoryAuthorityRepository):
    """Looking up ``who`` waits until ``gate`` is set (a slow request of that peer)."""

    def __init__(self, who: str) -> None:
        super().__init__()
        self.who = who
        self.gate = asyncio.Event()

    async def get_member(self, identifier: str) -> Member | None:
        if identifier == self.who:
            await self.gate.wait()
        return await super().get_member(identifier)


async def test_one_peer_cannot_take_more_than_its_share_of_the_slots() -> None:
    w = world()
    flooder, other = w.parties[0], w.parties[1]
    repo = _Gated(flooder.identifier)
    await repo.put_member(Member(flooder.identifier, {}, w.admin.identifier, 1),
                          audit=_audit(w.admin.identifier, flooder.identifier))
    await repo.put_member(Member(other.identifier, {}, w.admin.identifier, 1),
                          audit=_audit(w.admin.identifier, other.identifier))
    async with running(repository=repo, max_in_flight=8, max_per_peer=2) as run:
        f = await run.connect(flooder)
        o = await run.connect(other)
        loop = asyncio.get_running_loop()
        slow = [loop.create_task(f.get_credential()) for _ in range(6)]
        try:
            done, _ = await asyncio.wait(slow, timeout=3, return_when=asyncio.ALL_COMPLETED)
            # its share (2) waits for the storage; the others are refused at once
            refused = [t for t in done if isinstance(t.exception(), TooManyRequestsError)]
            assert len(refused) == 4 and len(done) == 4
            assert run.authority.stats["refused_busy"] == 4
            # another peer is served meanwhile
            await asyncio.wait_for(o.get_credential(), 3)
            repo.gate.set()
            for t in slow:
                if t not in done:
                    await asyncio.wait_for(t, 3)
            # its share is free again
            await asyncio.wait_for(f.get_credential(), 3)
        finally:
            repo.gate.set()
            for t in slow:
                t.cancel()
            await asyncio.gather(*slow, return_exceptions=True)


def _audit(actor: str, subject: str) -> AuditRecord:
    return AuditRecord(1, actor, "member.add", subject)


def test_limits_must_be_sensible() -> None:
    from trust.enrollment.authority import Authority
    from trust.errors import UsageError

    with pytest.raises(UsageError):
        Authority(None, None, 0)  # type: ignore[arg-type]


async def test_a_client_keeps_within_its_share_however_many_requests_it_makes() -> None:
    """``AuthorityClient`` holds back requests beyond :data:`IN_FLIGHT` (the authority's default
    share per peer) instead of getting ``too_many_requests`` (e.g. a benchmark's gather)."""
    from trust.enrollment.client import IN_FLIGHT

    w = world()
    async with running() as run:
        admin = await run.connect(w.admin)
        lists = await asyncio.gather(*[admin.revocation_list() for _ in range(3 * IN_FLIGHT)])
        assert len(lists) == 3 * IN_FLIGHT
