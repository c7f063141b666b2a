"""``truststack secure-channel``, ``secure-channel-listener`` and ``/secure`` routes in
``message send``, with real background nodes (always stopped, even when a test fails)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.nodes import stop_all_nodes as _stop_all
from trust.errors import NotFoundError, UsageError

WRONG_ID = "I" + "ab" * 32




@pytest.fixture
def two_nodes(cli: Cli, home: Path) -> Iterator[tuple[Cli, str, str]]:
    """Running nodes n1 and n2; yields (cli, n1's identifier, n2's identifier)."""
    try:
        n1 = cli.json("node", "create", "n1")
        n2 = cli.json("node", "create", "n2")
        yield cli, n1["identifier"], n2["identifier"]
    finally:
        _stop_all(home)


def _rows(cli: Cli, *args: str) -> list[list[str]]:
    out = cli(*args).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def _wait_rows(cli: Cli, count: int, *args: str) -> list[list[str]]:
    """The rows of a list command once there are ``count`` (a Close takes a moment)."""
    deadline = time.monotonic() + 5
    rows = _rows(cli, *args)
    while len(rows) != count and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = _rows(cli, *args)
    return rows


def test_create_prints_the_route_alone_and_messages_go_through(
        two_nodes: tuple[Cli, str, str]) -> None:
    cli, id1, id2 = two_nodes
    r = cli("secure-channel", "create", "--from", "n1", "--to", "/node/n2/service/api")
    assert re.fullmatch(r"/service/[0-9a-f]{32}\n", r.stdout), r.stdout
    route = r.out
    assert cli("message", "send", "hello", "--from", "n1", "--to", f"{route}/service/echo").out \
        == "hello"
    address = route.removeprefix("/service/")

    # list at both ends: the initiator's peer is n2, the responder's is n1
    [row] = _rows(cli, "secure-channel", "list", "--at", "n1")
    assert row[:4] == [address, route, id2, "yes"]
    [row2] = _rows(cli, "secure-channel", "list", "--at", "n2")
    assert row2[2:4] == [id1, "no"]

    # show, by address or by route; JSON is the same object
    shown = cli.json("secure-channel", "show", route, "--at", "n1")
    assert shown["address"] == address and shown["peer"] == id2 and shown["initiator"] is True
    assert cli.json("secure-channel", "show", address, "--at", "n1") == shown
    assert f"Peer: {id2}" in cli("secure-channel", "show", address, "--at", "n1").stdout

    # delete: gone at n1 at once, and at n2 when the Close arrives
    cli("secure-channel", "delete", route, "--at", "n1")
    assert _rows(cli, "secure-channel", "list", "--at", "n1") == []
    assert _wait_rows(cli, 0, "secure-channel", "list", "--at", "n2") == []
    assert_one_line_error(cli("secure-channel", "show", address, "--at", "n1", ok=False),
                          "no secure channel")
    assert_one_line_error(cli("secure-channel", "delete", address, "--at", "n1", ok=False),
                          "no secure channel")
    r = cli("message", "send", "hello", "--from", "n1", "--to", f"{route}/service/echo",
            "--timeout", "1s", ok=False)
    assert_one_line_error(r)

    # --output json: an object with the route
    created = cli.json("secure-channel", "create", "--from", "n1", "--to", "/node/n2/service/api")
    assert created["route"] == f"/service/{created['address']}" and created["peer"] == id2


def test_authorized_identifiers(two_nodes: tuple[Cli, str, str]) -> None:
    cli, _, id2 = two_nodes
    r = cli("secure-channel", "create", "--from", "n1", "--to", "/node/n2/service/api",
            "--authorized", WRONG_ID, ok=False)
    assert_one_line_error(r, "not a trusted identifier")
    assert _rows(cli, "secure-channel", "list", "--at", "n1") == []
    assert r.stdout == ""

    route = cli("secure-channel", "create", "--from", "n1", "--to", "/node/n2/service/api",
                "--authorized", WRONG_ID, "--authorized", id2).out
    assert cli("message", "send", "hi", "--from", "n1", "--to", f"{route}/service/echo").out == "hi"

    r = cli("secure-channel", "create", "--from", "n1", "--to", "/node/n2/service/api",
            "--authorized", "Inothex", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "identifier")
    r = cli("secure-channel", "create", "--from", "n1", "--to", "node/n2", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "invalid route")
    assert_one_line_error(cli("secure-channel", "list", "--at", "nosuch", ok=False), "nosuch")


def test_listener_at_another_address(two_nodes: tuple[Cli, str, str]) -> None:
    cli, id1, _ = two_nodes
    out = cli("secure-channel-listener", "create", "only-n1", "--at", "n2", "--authorized", id1).out
    assert "only-n1" in out
    names = [row[0] for row in _rows(cli, "secure-channel-listener", "list", "--at", "n2")]
    assert sorted(names) == ["api", "only-n1"]
    route = cli("secure-channel", "create", "--from", "n1", "--to",
                "/node/n2/service/only-n1", "--timeout", "10s").out
    assert cli("message", "send", "yo", "--from", "n1", "--to", f"{route}/service/echo").out == "yo"
    listeners = cli.json("secure-channel-listener", "list", "--at", "n2")
    assert {lst["address"]: lst["handshakes"] for lst in listeners}["only-n1"] == 1

    assert_one_line_error(cli("secure-channel-listener", "create", "only-n1", "--at", "n2",
                              ok=False), "already in use")
    kept = cli("secure-channel", "create", "--from", "n1", "--to", "/node/n2/service/api").out
    cli("secure-channel-listener", "delete", "only-n1", "--at", "n2")
    assert [row[0] for row in _rows(cli, "secure-channel-listener", "list", "--at", "n2")] == ["api"]
    # the channel it accepted is closed at both ends (n1 was told); the one through api stays
    assert [row[1] for row in _wait_rows(cli, 1, "secure-channel", "list", "--at", "n1")] == [kept]
    assert len(_rows(cli, "secure-channel", "list", "--at", "n2")) == 1
    r = cli("message", "send", "x", "--from", "n1", "--to", f"{route}/service/echo", ok=False)
    assert "Traceback" not in r.stderr
    r = cli("secure-channel", "create", "--from", "n1", "--to", "/node/n2/service/only-n1",
            "--timeout", "1s", ok=False)
    assert_one_line_error(r, "no secure channel")
    assert_one_line_error(cli("secure-channel-listener", "delete", "only-n1", "--at", "n2",
                              ok=False), "no secure-channel listener")
    r = cli("secure-channel-listener", "create", "bad/name", "--at", "n2", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "address")


def test_secure_segments_in_message_send(two_nodes: tuple[Cli, str, str], home: Path) -> None:
    cli, _, _ = two_nodes
    assert cli("message", "send", "hello", "--from", "n1", "--to",
               "/node/n2/secure/api/service/echo").out == "hello"
    # the channel was closed after the reply, at both ends
    assert _rows(cli, "secure-channel", "list", "--at", "n1") == []
    assert _wait_rows(cli, 0, "secure-channel", "list", "--at", "n2") == []
    # a channel inside a channel to the same node's listener
    assert cli("message", "send", "nested", "--from", "n1", "--to",
               "/node/n2/secure/api/secure/api/service/echo").out == "nested"
    assert _wait_rows(cli, 0, "secure-channel", "list", "--at", "n2") == []
    # without --from: a throwaway identity, nothing added to the home's identities
    before = cli("identity", "list").stdout
    port = cli.json("node", "show", "n2")["listeners"][0].rsplit(":", 1)[1]
    assert cli("message", "send", "hey", "--to",
               f"/ip4/127.0.0.1/tcp/{port}/secure/api/service/echo").out == "hey"
    assert cli("identity", "list").stdout == before
    # a route ending inside a channel goes nowhere: a usage error, before anything is sent
    for extra in ((), ("--from", "n1")):
        r = cli("message", "send", "x", "--to", "/node/n2/secure/api", *extra, ok=False)
        assert r.returncode == 2
        assert_one_line_error(r, "cannot end with /secure")


def test_control_methods_refuse_hostile_params(two_nodes: tuple[Cli, str, str]) -> None:
    from trust.node.control_client import ControlClient

    client = ControlClient.for_node("n1")
    bad: list[tuple[str, dict[str, Any]]] = [
        ("secure_channel.create", {}),
        ("secure_channel.create", {"to": 5}),
        ("secure_channel.create", {"to": "/" + "x" * 5000}),
        ("secure_channel.create", {"to": "/node/n2/service/api", "authorized": "I00"}),
        ("secure_channel.create", {"to": "/node/n2/service/api", "authorized": [WRONG_ID] * 65}),
        ("secure_channel.create", {"to": "/node/n2/service/api", "authorized": [7]}),
        ("secure_channel.create", {"to": "/node/n2/service/api", "timeout": True}),
        ("secure_channel.create", {"to": "/node/n2/service/api", "timeout": -1}),
        ("secure_channel.create", {"to": "/node/n2/service/api", "timeout": 1e9}),
        ("secure_channel.create", {"to": "/node/n2/service/api", "identity": ["x"]}),
        ("secure_channel.show", {"address": None}),
        ("secure_channel.show", {"address": "a\nb"}),
        ("secure_channel.delete", {"address": "x" * 200}),
        ("secure_channel_listener.create", {"address": ""}),
        ("secure_channel_listener.create", {"address": "ok", "authorized": {"a": 1}}),
        ("secure_channel_listener.delete", {"address": 3}),
        ("message.send", {"to": "/node/n2/secure/api", "payload": ""}),
    ]
    for method, params in bad:
        with pytest.raises(UsageError):
            client.request(method, params)
    with pytest.raises(NotFoundError):
        client.request("secure_channel.show", {"address": "0" * 32})
    # nothing was created, and the node still answers
    assert client.request("secure_channel.list") == {"channels": []}
    names = [lst["address"] for lst in client.request("secure_channel_listener.list")["listeners"]]
    assert names == ["api"]
    assert json.dumps(client.request("node.show"))


def test_create_as_another_local_identity(two_nodes: tuple[Cli, str, str]) -> None:
    cli, id1, _ = two_nodes
    bob = cli.json("identity", "create", "bob")["identifier"]
    route = cli("secure-channel", "create", "--from", "n1", "--identity", "bob", "--to",
                "/node/n2/service/api").out
    assert cli("message", "send", "hi", "--from", "n1", "--to", f"{route}/service/echo").out == "hi"
    # n2 sees bob, not n1's own identity
    [row] = _rows(cli, "secure-channel", "list", "--at", "n2")
    assert row[2] == bob != id1
    r = cli("secure-channel", "create", "--from", "n1", "--identity", "nobody", "--to",
            "/node/n2/service/api", ok=False)
    assert_one_line_error(r, "no identity named 'nobody'")
    assert [row[0] for row in _rows(cli, "secure-channel", "list", "--at", "n1")] == \
        [route.removeprefix("/service/")]


def test_the_peers_change_histories_seen_are_kept_in_the_homes_database(
        two_nodes: tuple[Cli, str, str], home: Path) -> None:
    """A node keeps the newest change history of each channel peer in the home's database
    (saved while it runs and when it stops, loaded when it starts): a restart does not let a
    peer go back to a key it rotated away from (tests/storage/test_known_histories.py)."""
    import asyncio

    from trust.storage import open_storage
    from trust.storage.known_histories import SqlKnownHistories

    cli, id1, id2 = two_nodes
    cli("secure-channel", "create", "--from", "n1", "--to", "/node/n2/service/api")
    cli("node", "stop", "n1")
    cli("node", "stop", "n2")

    async def stored() -> set[str]:
        storage = open_storage(home=home)
        try:
            entries, skipped = await storage.repository(SqlKnownHistories).load(100)
        finally:
            await storage.close()
        assert skipped == 0
        return {"I" + identifier.hex() for identifier, _ in entries}

    assert asyncio.run(stored()) == {id1, id2}  # each saw the other
    cli("node", "start", "n1")  # (a node starts with the table it left)
