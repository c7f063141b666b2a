"""Two authority replicas (``authority create … --identity SAME --database postgresql://…``)
serve one authority: a ticket made at one redeems at the other, and when one is killed mid-load
the other keeps serving, no ticket is redeemed twice and no member is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.channels.node_helpers import party
from tests.conftest import Cli
from tests.enrollment_cli.helpers import stop_all
from trust.enrollment.client import AuthorityClient
from trust.enrollment.errors import NotMemberError, TicketUsedError
from trust.enrollment.messages.audit_entry import AuditEntry
from trust.errors import TrustError
from trust.node import Node
from trust.node.resolve import route_from_text
from vaults.software import SoftwareVault

TICKETS = 30
"""Tickets (one use each); two clients race for each, one preferring each replica."""


@dataclass
class Outcome:
    identifier: str
    ticket: int
    enrolled: bool = False
    via: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def test_replicas_share_tickets_and_survive_a_killed_replica(tmp_path: Path,
                                                           postgres_url: str) -> None:
    home = tmp_path / "home"
    cli = Cli(home)
    try:
        admin = cli("identity", "create", "admin").out
        cli("identity", "create", "authority")
        r1 = cli.json("authority", "create", "r1", "--identity", "authority", "--database",
                      postgres_url)
        r2 = cli.json("authority", "create", "r2", "--identity", "authority", "--database",
                      postgres_url)
        assert r1["identifier"] == r2["identifier"]
        assert "***" in r1["authority"]["database"] or "@" not in postgres_url.split("//")[1] \
            or ":" not in postgres_url.split("//")[1].split("@")[0]
        routes = {"r1": cli.json("authority", "show", "r1")["route"],
                  "r2": cli.json("authority", "show", "r2")["route"]}

        # a ticket made at r1 redeems at r2 (the CLI enrolls along the ticket's route: r1's, so
        # point a second ticket at r2 by hand: same authority, other route)
        cli("identity", "create", "m0")
        ticket = cli("ticket", "create", "--at", "r1", "--attribute", "k=v").out
        fields = bytes.fromhex(ticket).decode().split(",")
        fields[0] = routes["r2"]
        if len(fields) > 6:
            fields[6] = routes["r2"]
        enrolled = cli.json("enroll", ",".join(fields).encode().hex(), "--identity", "m0")
        assert enrolled["attributes"] == {"k": "v"} and enrolled["route"] == routes["r2"]
        assert any(m["identifier"] == enrolled["identifier"]
                   for m in cli.json("authority", "member", "list", "--at", "r1"))

        outcomes, audit, members = asyncio.run(_load(home, r1["identifier"], routes,
                                                     r1["pid"]))
    finally:
        stop_all(home)

    # r1 was killed mid-load; r2 kept serving: every client got a definite answer through it
    assert any(o.enrolled and o.via[-1] == "r2" for o in outcomes)
    assert any(o.enrolled and o.via[-1] == "r1" for o in outcomes), "r1 served nothing"
    for o in outcomes:
        assert o.enrolled or any("used" in e for e in o.errors), (o.via, o.errors)
    # no ticket redeemed twice: one member per ticket, one redemption per ticket reference
    by_ticket: dict[int, list[str]] = {}
    for o in outcomes:
        if o.enrolled:
            by_ticket.setdefault(o.ticket, []).append(o.identifier)
    assert sorted(by_ticket) == list(range(TICKETS))
    assert all(len(v) == 1 for v in by_ticket.values()), by_ticket
    redeemed = [e.ticket for e in audit if e.action == "ticket.redeem"]
    assert len(redeemed) == len(set(redeemed)) == TICKETS + 1
    # no member lost: every client that enrolled is a member, and nobody else
    enrolled_ids = {o.identifier for o in outcomes if o.enrolled}
    assert enrolled_ids <= set(members)
    assert set(members) - enrolled_ids - {enrolled["identifier"]} == set()
    assert admin not in members


async def _load(home: Path, authority: str, routes: dict[str, str], r1_pid: int
                ) -> tuple[list[Outcome], list[AuditEntry], list[str]]:
    from trust.services import open_identities

    now = int(time.time()) - 60
    vault = SoftwareVault()
    parties = [await party(vault, now) for _ in range(2 * TICKETS)]
    route = {name: route_from_text(text) for name, text in routes.items()}
    async with Node("clients") as node:
        manager = open_identities(home)
        try:
            me = await manager.get("admin")
            async with await AuthorityClient.connect(node, me, route["r1"], authority,
                                                     identities=manager) as admin:
                codes = [await admin.create_ticket({"n": str(i)}) for i in range(TICKETS)]
        finally:
            await manager.close()

        done = 0
        done_at_r1 = 0
        killed = asyncio.Event()

        async def client(i: int) -> Outcome:
            nonlocal done, done_at_r1
            identity, side = parties[i]
            ticket = i // 2
            order = ["r1", "r2"] if i % 2 == 0 else ["r2", "r1"]
            o = Outcome(identity.identifier, ticket)
            await asyncio.sleep(0.01 * (i % 7))
            ambiguous = False
            for attempt in range(4):
                name = order[0] if attempt == 0 else "r2" if killed.is_set() else order[attempt % 2]
                o.via.append(name)
                try:
                    async with await AuthorityClient.connect(node, side, route[name], authority,
                                                             timeout=3) as c:
                        try:
                            await c.redeem(codes[ticket])
                        except TicketUsedError:
                            if not ambiguous:
                                raise
                            # an earlier try at the killed replica may have gone through:
                            # then this identity is a member and gets its credential
                            try:
                                await c.get_credential()
                            except NotMemberError:
                                raise TicketUsedError("used by another identity") from None
                        await c.get_credential()
                    o.enrolled = True
                    done += 1
                    done_at_r1 += name == "r1"
                    return o
                except TicketUsedError as e:
                    o.errors.append(f"used: {e}")
                    return o
                except (TimeoutError, TrustError, OSError) as e:
                    o.errors.append(f"{name}: {type(e).__name__}")
                    ambiguous = True
                    await asyncio.sleep(0.2)
            return o

        # the kill must fall inside the load, whatever the replicas' relative speed: client 0
        # enrolls at r1 first, alone (r1 has served when it is killed); the last quarter of the
        # clients start only after the kill, which comes once a quarter of the tickets are
        # used (or every earlier client is done: never a wait without end)
        late = 3 * TICKETS // 2
        early_left = late - 1

        async def early(i: int) -> Outcome:
            nonlocal early_left
            try:
                return await client(i)
            finally:
                early_left -= 1

        async def after_kill(i: int) -> Outcome:
            await killed.wait()
            return await client(i)

        async def killer() -> None:
            while (done < TICKETS // 4 or not done_at_r1) and early_left:
                await asyncio.sleep(0.005)
            os.kill(r1_pid, signal.SIGKILL)
            killed.set()

        first = await client(0)
        kill_task = asyncio.create_task(killer())
        rest = await asyncio.gather(*(early(i) for i in range(1, late)),
                                    *(after_kill(i) for i in range(late, 2 * TICKETS)))
        outcomes = [first, *rest]
        assert killed.is_set()
        await kill_task

        manager = open_identities(home)
        try:
            me = await manager.get("admin")
            async with await AuthorityClient.connect(node, me, route["r2"], authority,
                                                     identities=manager) as admin:
                audit = await admin.audit()
                members = await admin.member_ids()
        finally:
            await manager.close()
    return list(outcomes), list(audit), members
