"""``truststack tcp-outlet`` / ``tcp-inlet`` with real background nodes (always stopped, even
when a test fails): bytes through inlet -> channel -> outlet, byte counts in list/show and JSON,
``--authorized`` on the inlet's channel, ``--allow`` stored as ``policy create`` stores it and
enforced with the reason logged, a relay route, and hostile arguments."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.echo import through
from tests.fixtures.nodes import stop_all_nodes
from trust.errors import UsageError
from trust.node.control_client import ControlClient
from trust.node.files import NodePaths
from trust.node.portal_feature import via_route


@pytest.fixture
def bank_and_analysis(cli: Cli, home: Path) -> Iterator[dict[str, str]]:
    try:
        yield {name: cli.json("node", "create", name)["identifier"]
               for name in ("bank", "analysis")}
    finally:
        stop_all_nodes(home)


def _closed_promptly(address: str) -> float:
    host, _, port = address.rpartition(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"hello")
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    return time.monotonic() - start


def test_a_portal_between_two_background_nodes(cli: Cli, home: Path, echo_port: int,
                                               bank_and_analysis: dict[str, str]) -> None:
    ids = bank_and_analysis
    assert cli("tcp-outlet", "create", "--at", "bank", "--to", f"127.0.0.1:{echo_port}").out \
        == "/service/outlet"
    inlet = cli.json("tcp-inlet", "create", "--at", "analysis", "--to",
                     "/node/bank/secure/api/service/outlet", "--authorized", ids["bank"])
    assert inlet["name"] == "inlet" and inlet["authorized"] == [ids["bank"]]
    data = os.urandom(200_000)
    assert through(inlet["address"], data) == data
    [row] = cli.json("tcp-inlet", "list", "--at", "analysis")
    assert row["bytes_in"] == row["bytes_out"] == len(data) and row["connected"] is True
    shown = cli.json("tcp-outlet", "show", "outlet", "--at", "bank")
    assert shown["bytes_out"] == shown["bytes_in"] == len(data) and shown["connections"] == 1
    assert cli("tcp-outlet", "list", "--at", "bank").out.split("\t")[:2] == [
        "outlet", f"127.0.0.1:{echo_port}"]
    assert f"Bytes: {len(data)} from clients" in cli("tcp-inlet", "show", "inlet", "--at",
                                                       "analysis").out
    # node show lists them too, with their byte counts
    assert [i["bytes_in"] for i in cli.json("node", "show", "analysis")["inlets"]] == [len(data)]
    assert [o["name"] for o in cli.json("node", "show", "bank")["outlets"]] == ["outlet"]

    # the inlet's channel trusts only --authorized: an outlet node with another identity is
    # refused, the client's connection closed at once
    other = cli.json("tcp-inlet", "create", "--at", "analysis", "--to",
                     "/node/bank/secure/api/service/outlet", "--authorized", ids["analysis"])
    assert other["name"] == "inlet-2"
    assert _closed_promptly(other["address"]) < 5
    shown = cli.json("tcp-inlet", "show", "inlet-2", "--at", "analysis")
    assert shown["failed"] == 1 and shown["connected"] is False
    assert shown["last_error"]

    # --allow is the resource's policy, stored as `policy create --resource` stores it
    expr = f'(= subject.identifier "{ids["bank"]}")'  # not analysis: denied
    made = cli.json("tcp-outlet", "create", "--at", "bank", "--to", f"127.0.0.1:{echo_port}",
                    "--from", "db", "--allow", expr)
    assert made["policy"] == expr and made["route"] == "/service/db"
    assert cli.json("policy", "show", "--resource", "db", "--at", "bank")["expression"] == expr
    denied = cli.json("tcp-inlet", "create", "--at", "analysis", "--name", "db", "--to",
                      "/node/bank/secure/api/service/db")
    assert _closed_promptly(denied["address"]) < 5
    assert cli.json("tcp-outlet", "show", "db", "--at", "bank")["denied"] == 1
    log = NodePaths("bank", home).log.read_text()
    assert f"outlet db: connection for {ids['analysis']} refused: the peer is denied: the " \
           "policy of resource db is false" in log
    # a policy changed with `policy create` applies to the next connection
    cli("policy", "create", "--resource", "db", "--at", "bank", "--allow",
        f'(= subject.identifier "{ids["analysis"]}")')
    assert through(denied["address"], b"now allowed") == b"now allowed"

    for kind, name, node in (("tcp-inlet", "inlet", "analysis"), ("tcp-outlet", "db", "bank")):
        assert cli.json(kind, "delete", name, "--at", node) == {"name": name, "deleted": True}
    assert [r["name"] for r in cli.json("tcp-inlet", "list", "--at", "analysis")] == [
        "db", "inlet-2"]
    assert cli.json("tcp-outlet", "list", "--at", "bank")[0]["name"] == "outlet"


def test_hostile_arguments_are_one_line_errors(cli: Cli, home: Path,
                                               bank_and_analysis: dict[str, str]) -> None:
    for args, needle in [
        (("tcp-inlet", "create", "--at", "analysis", "--from", "nope", "--to", "/service/x"),
         "HOST:PORT"),
        (("tcp-inlet", "create", "--at", "analysis"), "exactly one of"),
        (("tcp-inlet", "create", "--at", "analysis", "--to", "/node/bank/service/outlet",
          "--via", "r"), "exactly one of"),
        (("tcp-inlet", "create", "--at", "analysis", "--via", "bank"), "authority route"),
        (("tcp-inlet", "create", "--at", "analysis", "--to", "/service/x", "--authorized",
          "Ixyz"), "identifier"),
        (("tcp-inlet", "create", "--at", "analysis", "--to", "/service/x", "--name", "a b"),
         "name"),
        (("tcp-inlet", "create", "--at", "analysis", "--to", "/service/x", "--name", "api"),
         "already"),
        (("tcp-inlet", "create", "--at", "analysis", "--to", "/service/x", "--name", "db\n"),
         "name"),
        (("tcp-outlet", "create", "--at", "bank", "--to", "127.0.0.1:1", "--from", "db\n"),
         "name"),
        (("tcp-outlet", "create", "--at", "bank", "--to", "127.0.0.1:0"), "port"),
        (("tcp-outlet", "create", "--at", "bank", "--to", "127.0.0.1:1", "--allow", "(= a"),
         "policy"),
        (("tcp-outlet", "create", "--at", "bank", "--to", "127.0.0.1:1", "--from", "echo"),
         "already"),
        (("tcp-outlet", "create", "--at", "bank", "--to", "127.0.0.1:1", "--silence-timeout",
          "0"), "more than zero"),
        (("tcp-outlet", "create", "--at", "bank", "--to", "127.0.0.1:1", "--silence-timeout",
          "2d"), "too long"),
        (("tcp-inlet", "create", "--at", "analysis", "--to", "/service/x", "--keepalive",
          "soon"), "invalid duration"),
        (("tcp-inlet", "create", "--at", "analysis", "--to", "/service/x", "--keepalive",
          "-1s"), "negative"),
        (("tcp-outlet", "show", "nope", "--at", "bank"), "no outlet"),
        (("tcp-inlet", "delete", "nope", "--at", "analysis"), "no inlet"),
    ]:
        assert_one_line_error(cli(*args, ok=False), needle)
    # the same settings straight over the control protocol: typed errors, nothing made
    bank = ControlClient.for_node("bank", home)
    analysis = ControlClient.for_node("analysis", home)
    for bad in (True, "soon", -1, 0, 1e9, [1], {"s": 1}, "nan"):
        with pytest.raises(UsageError, match="silence_timeout"):
            bank.request("tcp_outlet.create", {"to": "127.0.0.1:1", "silence_timeout": bad})
        with pytest.raises(UsageError, match="keepalive"):
            analysis.request("tcp_inlet.create", {"to": "/service/x", "keepalive": bad})
    for bad_name in ("db\n", "db\x1b[31m", "a" * 65):  # (a final newline passed a '$' check)
        with pytest.raises(UsageError, match="must be a name"):
            bank.request("tcp_outlet.create", {"to": "127.0.0.1:1", "from": bad_name})
        with pytest.raises(UsageError, match="must be a name"):
            analysis.request("tcp_inlet.create", {"to": "/service/x", "name": bad_name})
    assert cli.json("tcp-outlet", "list", "--at", "bank") == []
    assert cli.json("tcp-inlet", "list", "--at", "analysis") == []
    # an address in use: nothing is created, and the policy given is not stored
    taken = cli.json("tcp-inlet", "create", "--at", "analysis", "--to", "/service/x")["address"]
    assert_one_line_error(cli("tcp-inlet", "create", "--at", "analysis", "--from", taken,
                              "--to", "/service/x", "--name", "web", "--allow", "true", ok=False),
                          "already in use")
    assert [i["name"] for i in cli.json("tcp-inlet", "list", "--at", "analysis")] == ["inlet"]
    assert_one_line_error(cli("policy", "show", "--resource", "web", "--at", "analysis",
                              ok=False), "no policy")


def test_via_expands_to_the_authority_route_and_the_relay() -> None:
    assert via_route("/dnsaddr/127.0.0.1/tcp/4000/service/api", "bank") == (
        "/dnsaddr/127.0.0.1/tcp/4000/secure/api/service/forward_to_bank/secure/api/service/"
        "outlet")
    assert via_route("/node/project/secure/api", "db") == (
        "/node/project/secure/api/service/forward_to_db/secure/api/service/outlet")
