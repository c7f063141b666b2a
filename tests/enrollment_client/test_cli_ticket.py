"""``truststack node create --ticket / --authority-route / --revocation-refresh`` with real
background nodes, against an authority served in this test process (127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Cli, CliResult, assert_one_line_error
from tests.enrollment_client.helpers import run
from tests.enrollment_client.test_node_feature import World, an_authority
from tests.node.test_cli import nodes  # noqa: F401  (the fixture: every node stopped at the end)
from trust.node.control_client import ControlClient


async def _cli(cli: Cli, *args: str, ok: bool | None = True) -> CliResult:
    return await asyncio.to_thread(cli, *args, ok=ok)


async def _show(home: Path, name: str, ready: Callable[[dict[str, Any]], bool],
                timeout: float = 5) -> dict[str, Any]:
    """``enrollment.show`` at node ``name``, once ``ready`` says so."""
    client = ControlClient.for_node(name, home)
    async with asyncio.timeout(timeout):
        while True:
            shown: dict[str, Any] = await asyncio.to_thread(client.request, "enrollment.show")
            if ready(shown):
                return shown
            await asyncio.sleep(0.05)


def _record(home: Path, name: str) -> dict[str, object]:
    return json.loads((home / "nodes" / name / "node.json").read_text())  # type: ignore[no-any-return]


def test_flag_combinations_are_usage_errors(nodes: Cli, home: Path) -> None:  # noqa: F811
    ticket = "ab" * 40
    for args, needle in (
            (["--ticket", ticket, "--authority", "x"], "--ticket cannot be combined"),
            (["--ticket", ticket, "--credential", "00"], "--ticket cannot be combined"),
            (["--authority-route", "/dnsaddr/localhost/tcp/4000/service/api"],
             "--authority-route needs --authority"),
            (["--revocation-refresh", "1s"], "--revocation-refresh needs"),
            (["--ticket", ticket, "--revocation-refresh", "0s"], "revocation-refresh"),
            (["--ticket", ticket, "--revocation-refresh", "9d"], "revocation-refresh")):
        r = nodes("node", "create", "n1", *args, ok=False)
        assert r.returncode == 2, (args, r.stderr)
        assert_one_line_error(r, needle)
    nodes("identity", "create", "a1")
    for route in ("", "garbage\x1b[2J", "/a" * 3000, "/ip4/1.2.3.4/tcp/99999/service/api"):
        r = nodes("node", "create", "n1", "--authority", "a1", "--authority-route", route,
                  ok=False)
        assert r.returncode == 2 and "\x1b" not in r.stderr
        assert_one_line_error(r, "route")
    for bad in ("zz", "ab" * 40, "\x1b[2J", "@" + str(home / "missing")):
        r = nodes("node", "create", "n1", "--ticket", bad, ok=False)
        assert_one_line_error(r, "ticket")
        assert "\x1b" not in r.stderr
    assert not (home / "nodes" / "n1").exists()


def test_node_create_with_a_ticket_enrolls_records_and_restarts(nodes: Cli, home: Path,  # noqa: F811
                                                                tmp_path: Path) -> None:
    async def main() -> None:
        async with an_authority() as world:
            await _scenario(world, nodes, home, tmp_path)

    run(main, timeout=90)


async def _scenario(world: World, cli: Cli, home: Path, tmp_path: Path) -> None:
    ticket = await world.ticket({"role": "db"})
    path = tmp_path / "db.ticket"
    path.write_text(ticket.encode() + "\n")
    state = json.loads((await _cli(cli, "node", "create", "db", "--ticket", f"@{path}",
                                   "--revocation-refresh", "1s", "--output", "json")).stdout)
    assert state["authorities"] == [world.authority.identifier]
    record = _record(home, "db")
    assert record["authority_route"] == world.route_text
    assert record["revocation_refresh"] == 1.0 and record["credential_refresh"] is True
    assert isinstance(record["credential"], str)
    assert ticket.code.hex() not in json.dumps(record)  # the one-time code is not kept
    shown = await _show(home, "db", lambda s: s["revocation"]["refreshes"] >= 1)
    assert shown["credential"]["issuer"] == world.authority.identifier
    assert shown["revocation"]["interval"] == 1.0 and shown["revocation"]["version"] is not None

    # the ticket is spent: a second node cannot use it, and nothing is left behind
    r = await _cli(cli, "node", "create", "db2", "--ticket", f"@{path}", ok=False)
    assert_one_line_error(r)
    assert r.returncode == 1 and not (home / "nodes" / "db2").exists()
    assert ticket.code.hex() not in r.stderr
    ids = await _cli(cli, "identity", "list", "--output", "json")
    assert "db2" not in [i["name"] for i in json.loads(ids.stdout)]  # (not a substring test:
    # an identifier's hex may hold "db2")
    # a taken name is refused before the ticket is spent
    fresh = await world.ticket({"role": "db"})
    r = await _cli(cli, "node", "create", "db", "--ticket", fresh.encode(), ok=False)
    assert_one_line_error(r, "already exists")

    # recorded for `node start`
    await _cli(cli, "node", "stop", "db")
    await _cli(cli, "node", "start", "db")
    shown = await _show(home, "db", lambda s: s["revocation"]["refreshes"] >= 1)
    assert shown["route"] == world.route_text and shown["credential"]["failures"] == 0

    # a relying node with --authority and --authority-route (no ticket): pulls, refreshes nothing
    hist = tmp_path / "authority.hex"
    hist.write_text(world.authority.identity.export_hex())
    await _cli(cli, "node", "create", "relying", "--authority", f"@{hist}",
               "--authority-route", world.route_text)
    record = _record(home, "relying")
    assert record["revocation_refresh"] == 30.0 and record["credential_refresh"] is False
    shown = await _show(home, "relying", lambda s: s["revocation"]["refreshes"] >= 1)
    assert shown["credential"] is None
