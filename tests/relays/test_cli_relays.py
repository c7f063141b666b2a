"""``truststack relay`` with real background nodes (always stopped, even when a test fails):
create/list/show/delete and their JSON, a channel through the relay, recovery after the relay
node is killed and restarted, and hostile arguments."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TRUSTSTACK, Cli, assert_one_line_error, popen_interruptible
from tests.fixtures.nodes import stop_all_nodes as _stop_all
from trust.errors import UsageError
from trust.node.control_client import ControlClient
from trust.node.files import pid_alive

THROUGH = "/node/hub/service/forward_to_bank/secure/api/service/echo"




@pytest.fixture
def three_nodes(cli: Cli, home: Path) -> Iterator[tuple[Cli, dict[str, str]]]:
    """Running nodes hub (hosts relays), bank (behind the relay), analysis; their identifiers."""
    try:
        ids = {name: cli.json("node", "create", name)["identifier"]
               for name in ("hub", "bank", "analysis")}
        yield cli, ids
    finally:
        _stop_all(home)


@pytest.fixture
def hub_and_bank(cli: Cli, home: Path) -> Iterator[Cli]:
    """Running nodes hub and bank."""
    try:
        for name in ("hub", "bank"):
            cli("node", "create", name)
        yield cli
    finally:
        _stop_all(home)


def _wait(predicate, timeout: float = 10.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)
    return time.monotonic() - start


def test_create_list_show_delete_and_a_channel_through_the_relay(
        three_nodes: tuple[Cli, dict[str, str]]) -> None:
    cli, ids = three_nodes
    r = cli("relay", "create", "bank", "--to", "bank", "--at", "/node/hub")
    assert r.stdout == "/node/hub/service/forward_to_bank\n"
    # analysis reaches bank's echo through the relay, inside a channel to bank's api
    assert cli("message", "send", "hello", "--from", "analysis", "--to", THROUGH).out == "hello"

    [created] = cli.json("relay", "list", "--at", "bank")
    assert created["role"] == "created" and created["status"] == "registered"
    assert created["address"] == "forward_to_bank" and created["peer"] == ids["hub"]
    assert created["route"] == "/node/hub/service/forward_to_bank"
    [hosted] = cli.json("relay", "list", "--to", "/node/hub")  # --to and /node/ as in Ockam
    assert hosted["role"] == "hosted" and hosted["owner"] == ids["bank"] and hosted["live"]
    assert hosted["messages"] >= 1 and hosted["bytes"] > 0
    plain = cli("relay", "list", "--at", "hub").out.split("\t")
    assert plain == ["bank", "hosted", "forward_to_bank", "live", ids["bank"]]
    show = cli("relay", "show", "bank", "--at", "bank").out
    assert "Status: registered" in show and ids["hub"] in show
    assert cli.json("relay", "show", "bank", "--at", "hub")["owner"] == ids["bank"]

    # the hub deletes the relay it hosts; deleting bank's relay stops its registration
    assert cli.json("relay", "delete", "bank", "--at", "hub", "--hosted") == {
        "name": "bank", "role": "hosted", "deleted": True}
    assert cli.json("relay", "list", "--at", "hub") == []
    assert_one_line_error(cli("message", "send", "x", "--from", "analysis", "--to", THROUGH,
                              "--timeout", "2s", ok=False))
    cli("relay", "delete", "bank", "--at", "bank")
    assert cli.json("relay", "list", "--at", "bank") == []
    # an ephemeral-free name again, now as JSON
    again = cli.json("relay", "create", "bank", "--to", "bank", "--at", "/node/hub")
    assert again["status"] == "registered" and again["registrations"] == 1
    assert cli("message", "send", "again", "--from", "analysis", "--to", THROUGH).out == "again"


def test_the_relay_comes_back_when_the_relay_node_is_killed_and_restarted(
        three_nodes: tuple[Cli, dict[str, str]], home: Path) -> None:
    cli, ids = three_nodes
    cli("relay", "create", "bank", "--to", "bank", "--at", "/node/hub")
    pid = int((home / "nodes" / "hub" / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: not pid_alive(pid), 5)
    cli("node", "start", "hub")
    restarted = time.monotonic()

    def live() -> bool:
        rows = cli.json("relay", "list", "--at", "hub")
        return any(r["name"] == "bank" and r["live"] for r in rows)

    _wait(live, 10)
    assert time.monotonic() - restarted < 10
    assert cli("message", "send", "back", "--from", "analysis", "--to", THROUGH).out == "back"
    [created] = cli.json("relay", "list", "--at", "bank")
    assert created["status"] == "registered" and created["registrations"] == 2
    assert created["peer"] == ids["hub"]  # the same hub (its identity), not an impostor


def test_hostile_arguments_fail_in_one_line(hub_and_bank: Cli) -> None:
    cli = hub_and_bank
    for args, needle, code in [
        (("relay", "create", "a/b", "--to", "bank", "--at", "/node/hub"), "relay name", 2),
        (("relay", "create", "x" * 129, "--to", "bank", "--at", "/node/hub"), "relay name", 2),
        (("relay", "create", "register", "--to", "bank", "--at", "/node/hub"), "ephemeral", 2),
        (("relay", "create", "x", "--to", "bank", "--at", "nowhere"), "route", 2),
        (("relay", "create", "x", "--to", "nosuch", "--at", "/node/hub"), "nosuch", 1),
        (("relay", "create", "x", "--to", "bank", "--at", "/node/nosuch"), "nosuch", 1),
        (("relay", "create", "x", "--to", "bank", "--at", "/node/hub", "--timeout", "0s"),
         "timeout", 2),
        (("relay", "create", "x", "--to", "bank", "--at", "/node/hub", "--authorized", "Ibad"),
         "authorized", 2),
        (("relay", "create", "x", "--to", "bank", "--at", "/ip4/127.0.0.1/tcp/1", "--timeout",
          "1s"), "not registered", 1),
        (("relay", "show", "nosuch", "--at", "bank"), "no relay nosuch", 1),
        (("relay", "show", "\x1b[31m", "--at", "bank"), "relay name", 2),
        (("relay", "delete", "nosuch", "--at", "hub", "--hosted"), "no relay nosuch hosted", 1),
        (("relay", "list", "--at", "nosuch"), "nosuch", 1),
    ]:
        r = cli(*args, ok=False)
        assert_one_line_error(r, needle)
        assert r.returncode == code, (args, r.stderr)
        assert "\x1b" not in r.stderr
    # nothing was created by any of them
    assert cli.json("relay", "list", "--at", "bank") == []
    cli("relay", "create", "x", "--to", "bank", "--at", "/node/hub")
    r = cli("relay", "create", "x", "--to", "bank", "--at", "/node/hub", ok=False)
    assert_one_line_error(r, "already created relay x")


def test_hostile_control_parameters_are_usage_errors(hub_and_bank: Cli, home: Path) -> None:
    client = ControlClient.for_node("bank", home)
    before = client.request("relay.list")
    ident = "I" + "ab" * 32
    cases: list[tuple[str, dict[str, Any]]] = [
        ("relay.create", {}),
        ("relay.create", {"name": 5, "at": "/node/hub"}),
        ("relay.create", {"name": "x", "at": ["/node/hub"]}),
        ("relay.create", {"name": "x", "at": "/" + "a" * 5000}),
        ("relay.create", {"name": "x", "at": "/node/hub", "timeout": True}),
        ("relay.create", {"name": "x", "at": "/node/hub", "timeout": 1e9}),
        ("relay.create", {"name": "x", "at": "/node/hub", "authorized": ident}),
        ("relay.create", {"name": "x", "at": "/node/hub", "authorized": [ident.upper()]}),
        ("relay.create", {"name": "x", "at": "/node/hub", "authorized": [ident] * 65}),
        ("relay.show", {"name": None}),
        ("relay.show", {"name": "x" * 200}),
        ("relay.delete", {"name": "x", "hosted": "yes"}),
    ]
    for method, params in cases:
        with pytest.raises(UsageError):
            client.request(method, params)
    assert client.request("relay.list") == before == {"relays": [], "hosted": []}


def test_no_connection_wait_registers_once_the_relay_node_appears(cli: Cli, home: Path) -> None:
    import socket

    with socket.socket() as s:  # a free port, where the relay node will listen later
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        cli("node", "create", "bank")
        at = f"/ip4/127.0.0.1/tcp/{port}"
        r = cli("relay", "create", "bank", "--to", "bank", "--at", at, "--no-connection-wait")
        assert r.out == f"{at}/service/forward_to_bank"
        [created] = cli.json("relay", "list", "--at", "bank")
        assert created["status"] == "connecting" and created["registrations"] == 0
        cli("node", "create", "hub", "--tcp-listener-address", f"127.0.0.1:{port}")
        _wait(lambda: cli.json("relay", "show", "bank", "--at", "bank")["status"]
              == "registered", 15)
        assert cli.json("relay", "show", "bank", "--at", "hub", "--hosted")["live"] is True
    finally:
        _stop_all(home)


def test_ctrl_c_on_relay_create_leaves_no_relay_behind(hub_and_bank: Cli) -> None:
    """``relay create`` waits for the registration; interrupted (Ctrl-C), it changes nothing:
    the node abandons the request when its client leaves (before, the relay kept retrying
    until the timeout)."""
    cli = hub_and_bank
    proc = popen_interruptible([TRUSTSTACK, "relay", "create", "slow", "--to", "bank", "--at",
                                "/ip4/127.0.0.1/tcp/1", "--timeout", "60s"],
                               env=cli.env(None), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        _wait(lambda: [r["name"] for r in cli.json("relay", "list", "--at", "bank")] == ["slow"])
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and err.strip().startswith("error:")
    _wait(lambda: cli.json("relay", "list", "--at", "bank") == [], 3)
