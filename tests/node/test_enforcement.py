"""Policies enforced on a background node's services (``truststack`` CLI, real processes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.fixtures.nodes import stop_all_nodes
from tests.node.test_cli import nodes  # noqa: F401  (the fixture: every node stopped at the end)
from trust.node.control_client import ControlClient


def _send(cli: Cli, to: str, *, ok: bool = True) -> str:
    r = cli("message", "send", "ping", "--from", "n1", "--to", to, "--timeout", "1s", ok=ok)
    return r.out


def _log(home: Path, name: str) -> str:
    return (home / "nodes" / name / "node.log").read_text(errors="replace")


def test_stored_policy_governs_plain_tcp_to_echo_at_once(nodes: Cli, home: Path) -> None:  # noqa: F811
    nodes.json("node", "create", "n1")
    nodes.json("node", "create", "n2")
    echo = "/node/n2/service/echo"
    assert _send(nodes, echo) == "ping"  # open until a policy is stored
    d = nodes.json("policy", "test", "--resource", "echo", "--at", "n2")
    assert d["allowed"] and d["policy_source"] == "default" and d["running"] is True
    assert d["resource_type"] == "echoer" and "open" in d["reason"] and d["subject"] is None

    created = nodes.json("policy", "create", "--at", "n2", "--resource", "echo", "--allow",
                         "(= subject.has_credential true)")
    assert created["reloaded"] is True
    # the next message is decided by the new policy (the node reloaded before create returned)
    r = nodes("message", "send", "ping", "--from", "n1", "--to", echo, "--timeout", "1s",
              ok=False)
    assert r.returncode != 0
    log = _log(home, "n2")
    assert "denied: the policy of resource echo is unknown" in log
    checks = nodes.json("node", "show", "n2")["policy_checks"]
    assert checks["denied"] >= 1 and checks["policies"] == 1
    assert "subject.has_credential" in log and "without a secure channel" in log
    d = nodes.json("policy", "test", "--resource", "echo", "--at", "n2")
    assert not d["allowed"] and d["policy_source"] == "resource"
    assert d["expression"] == "(= subject.has_credential true)"
    # a channel peer with a credential would pass; local messages are never checked
    d = nodes.json("policy", "test", "--resource", "echo", "--at", "n2", "--identifier",
                   "I" + "1" * 64, "--attribute", "role=admin")
    assert d["allowed"] and d["subject"]["has_credential"] is True
    assert nodes("message", "send", "local", "--from", "n2", "--to", "/service/echo").out == "local"

    # a policy that allows: plain TCP passes again
    nodes("policy", "create", "--at", "n2", "--resource", "echo", "--allow", "true")
    assert _send(nodes, echo) == "ping"
    # the resource's policy gone, its type's decides
    assert nodes.json("policy", "delete", "--at", "n2", "--resource", "echo")["reloaded"] is True
    nodes("policy", "create", "--at", "n2", "--resource-type", "echoer", "--allow", "false")
    assert nodes("message", "send", "x", "--from", "n1", "--to", echo, "--timeout", "1s",
                 ok=False).returncode != 0
    assert "denied: the policy of resource type echoer is false" in _log(home, "n2")
    assert nodes.json("policy", "test", "--resource", "echo",
                      "--at", "n2")["policy_source"] == "type"
    # hop is a resource of its own: still open, and what it forwards to echo is still checked
    assert nodes("message", "send", "x", "--from", "n1", "--to",
                 "/node/n2/service/hop/service/echo", "--timeout", "1s", ok=False).returncode != 0
    nodes("policy", "delete", "--at", "n2", "--resource-type", "echoer")
    assert _send(nodes, "/node/n2/service/hop/service/echo") == "ping"


def test_reload_reaches_the_running_node_within_a_second(nodes: Cli, home: Path) -> None:  # noqa: F811
    nodes.json("node", "create", "n1")
    client = ControlClient.for_node("n1", home)
    before = client.request("policy.reload")
    assert before["policies"] == 0
    nodes("policy", "create", "--at", "n1", "--resource", "svc", "--allow", "false")
    t0 = time.monotonic()
    after = client.request("policy.reload")
    assert time.monotonic() - t0 < 1.0
    assert after["policies"] == 1 and after["version"] > before["version"]
    d = client.request("policy.decide", {"resource": "svc", "identifier": "I" + "2" * 64})
    assert not d["allowed"] and d["policy_source"] == "resource"


def test_policy_test_reports_defaults_of_a_stopped_node(nodes: Cli, home: Path) -> None:  # noqa: F811
    nodes.json("node", "create", "n1")
    nodes("node", "stop", "n1")
    d = nodes.json("policy", "test", "--resource", "echo", "--at", "n1")
    assert d["allowed"] and d["running"] is False and d["policy_source"] == "default"
    # a resource that is not open: a node without an authority admits only channel traffic
    d = nodes.json("policy", "test", "--resource", "outlet", "--resource-type", "tcp-outlet",
                   "--at", "n1")
    assert not d["allowed"] and "plain TCP" in d["reason"]
    d = nodes.json("policy", "test", "--resource", "outlet", "--at", "n1", "--identifier",
                   "I" + "3" * 64)
    assert d["allowed"] and "listener admitted" in d["reason"]
    out = nodes("policy", "test", "--resource", "outlet", "--at", "n1").out
    assert out.startswith("denied (default: ")
    # a policy stored while the node is stopped: nothing to reload, read at start
    assert nodes.json("policy", "create", "--at", "n1", "--resource", "outlet", "--allow",
                      "true")["reloaded"] is False
    assert nodes.json("policy", "test", "--resource", "outlet", "--at", "n1")["allowed"]
    nodes("node", "start", "n1")
    d = nodes.json("policy", "test", "--resource", "outlet", "--at", "n1")
    assert d["allowed"] and d["running"] is True and d["policy_source"] == "resource"


def test_policy_test_at_node_rejects_bad_subjects(nodes: Cli) -> None:  # noqa: F811
    nodes.json("node", "create", "n1")
    for args, needle in ((["--identifier", "Ixyz"], "64 lowercase hex"),
                         (["--attribute", "role=admin"], "need a subject"),
                         (["--env", "subject.role=admin"], "--identifier"),
                         (["--attribute", "noequals", "--identifier", "I" + "1" * 64],
                          "NAME=VALUE")):
        r = nodes("policy", "test", "--resource", "echo", "--at", "n1", *args, ok=False)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_node_with_an_authority_requires_its_credential(nodes: Cli, home: Path) -> None:  # noqa: F811
    nodes("identity", "create", "authority")
    nodes("identity", "create", "n3id")
    nodes("identity", "create", "stranger")
    auth_id = nodes.json("identity", "show", "authority")["identifier"]
    cred = nodes("credential", "issue", "--identity", "authority", "--subject", "n3id",
                 "--attribute", "role=node").out
    (home / "n3.cred").write_text(cred + "\n")
    state = nodes.json("node", "create", "n3", "--identity", "n3id", "--authority", "authority",
                       "--credential", f"@{home / 'n3.cred'}")
    assert state["authorities"] == [auth_id]
    assert f"Authorities: {auth_id}" in nodes("node", "show", "n3").out
    config = (home / "nodes" / "n3" / "node.json").read_text()
    assert cred.lower() in config  # recorded for node start
    member = "I" + "4" * 64
    d = nodes.json("policy", "test", "--resource", "svc", "--at", "n3")
    assert not d["allowed"] and "no subject" in d["reason"]
    d = nodes.json("policy", "test", "--resource", "svc", "--at", "n3", "--identifier", member)
    assert not d["allowed"] and "subject.has_credential is false" in d["reason"]
    assert nodes.json("policy", "test", "--resource", "svc", "--at", "n3", "--identifier",
                      member, "--attribute", "role=x")["allowed"]
    assert nodes.json("policy", "test", "--resource", "svc", "--at", "n3", "--identifier",
                      auth_id)["allowed"]  # the authority itself
    # echo stays open until a policy is stored for it
    assert nodes.json("policy", "test", "--resource", "echo", "--at", "n3")["allowed"]
    nodes("node", "stop", "n3")
    assert nodes.json("node", "start", "n3")["authorities"] == [auth_id]

    # a credential issued to another identity: the node does not start, nothing is left
    other = nodes("credential", "issue", "--identity", "authority", "--subject", "stranger",
                  "--attribute", "role=node").out
    r = nodes("node", "create", "n4", "--identity", "n3id", "--authority", "authority",
              "--credential", other, ok=False)
    assert r.returncode == 1 and "issued to" in r.stderr and "Traceback" not in r.stderr
    assert not (home / "nodes" / "n4").exists()
    # a credential without its authority, bad hex, an unknown authority: one-line errors
    for args in (["--credential", cred], ["--authority", "authority", "--credential", "zz"],
                 ["--authority", "nobody"]):
        r = nodes("node", "create", "n5", *args, ok=False)
        assert r.returncode in (1, 2) and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (home / "nodes" / "n5").exists()


def test_tampered_authority_record_is_refused(nodes: Cli, home: Path) -> None:  # noqa: F811
    import json

    nodes.json("node", "create", "n1")
    nodes("node", "stop", "n1")
    path = home / "nodes" / "n1" / "node.json"
    good = json.loads(path.read_text())
    for bad in ({"authorities": "00"}, {"authorities": ["zz"]}, {"credential": 5},
                {"authorities": ["0011"]}):
        path.write_text(json.dumps({**good, **bad}))
        r = nodes("node", "start", "n1", ok=False)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@dataclass
class Enrolled:
    """Background nodes made by the CLI alone: ``srv`` trusts a local authority identity;
    ``admin`` and ``member`` carry credentials from it (role=admin, role=member) and each holds
    an open channel to ``srv``'s ``api`` listener; ``stranger`` trusts no authority and holds
    no credential."""

    cli: Cli
    home: Path
    ids: dict[str, str]
    channels: dict[str, str]


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enrolled]:
    home = tmp_path_factory.mktemp("enf") / "home"
    cli = Cli(home)
    try:
        cli("identity", "create", "authority")
        ids: dict[str, str] = {}
        for name, role in (("admin", "admin"), ("member", "member")):
            cli("identity", "create", f"{name}-id")
            cred = cli("credential", "issue", "--identity", "authority", "--subject",
                       f"{name}-id", "--attribute", f"role={role}").out
            (home / f"{name}.cred").write_text(cred + "\n")
            ids[name] = cli.json("node", "create", name, "--identity", f"{name}-id", "--authority",
                                 "authority", "--credential", f"@{home / f'{name}.cred'}")["identifier"]
        ids["srv"] = cli.json("node", "create", "srv", "--authority", "authority")["identifier"]
        ids["stranger"] = cli.json("node", "create", "stranger")["identifier"]
        channels = {name: cli("secure-channel", "create", "--from", name, "--to",
                              "/node/srv/service/api").out
                    for name in ("admin", "member", "stranger")}
        yield Enrolled(cli, home, ids, channels)
    finally:
        stop_all_nodes(home)


def _through(e: Enrolled, name: str, text: str) -> bool:
    """Did ``text`` come back from srv's echo through ``name``'s open channel?"""
    r = e.cli("message", "send", text, "--from", name, "--to",
              f"{e.channels[name]}/service/echo", "--timeout", "1s", ok=None)
    assert "Traceback" not in r.stderr
    if r.returncode == 0:
        assert r.out == text
        return True
    assert "no reply" in r.stderr, r.stderr
    return False


def test_cli_stored_policy_denies_one_enrolled_peer_and_allows_another(enrolled: Enrolled) -> None:
    e = enrolled
    # each channel's peer is verified with its credential (srv's side of each channel)
    peers = {row.split("\t")[2] for row in e.cli("secure-channel", "list", "--at", "srv").out.splitlines()}
    assert peers == {e.ids["admin"], e.ids["member"], e.ids["stranger"]}
    # no policy for echo: open (as over plain TCP)
    assert all(_through(e, n, f"open-{n}") for n in ("admin", "member", "stranger"))
    e.cli("policy", "create", "--at", "srv", "--resource", "echo", "--allow",
          '(= subject.role "admin")')
    assert _through(e, "admin", "admin-ok")
    assert not _through(e, "member", "member-denied")  # enrolled, but role=member
    assert not _through(e, "stranger", "stranger-denied")  # no credential at all
    log = _log(e.home, "srv")
    assert "denied: the policy of resource echo is" in log and "subject.role" in log
    d = e.cli.json("policy", "test", "--resource", "echo", "--at", "srv", "--identifier",
                   e.ids["member"], "--attribute", "role=member")
    assert not d["allowed"] and d["policy_source"] == "resource"


def test_cli_policy_change_governs_the_next_message_on_open_channels(enrolled: Enrolled) -> None:
    e = enrolled
    e.cli("policy", "create", "--at", "srv", "--resource", "echo", "--allow",
          '(= subject.role "admin")')
    assert _through(e, "admin", "a1") and not _through(e, "member", "m1")
    # a new policy: the very next message on each already-open channel follows it
    t0 = time.monotonic()
    created = e.cli.json("policy", "create", "--at", "srv", "--resource", "echo", "--allow",
                         f'(= subject.identifier "{e.ids["member"]}")')
    assert created["reloaded"] is True and time.monotonic() - t0 < 5
    assert _through(e, "member", "m2")
    assert not _through(e, "admin", "a2")
    # the resource's policy deleted: echo is open again (until a policy is stored for it)
    assert e.cli.json("policy", "delete", "--at", "srv", "--resource", "echo")["reloaded"] is True
    assert all(_through(e, n, f"{n}-3") for n in ("admin", "member", "stranger"))
    # a policy on the resource type governs as well, and its deletion too
    e.cli("policy", "create", "--at", "srv", "--resource-type", "echoer", "--allow", "false")
    assert not _through(e, "admin", "a4")
    e.cli("policy", "delete", "--at", "srv", "--resource-type", "echoer")
    assert _through(e, "admin", "a5")
    # a reload takes well under a second at the running node
    client = ControlClient.for_node("srv", e.home)
    t0 = time.monotonic()
    client.request("policy.reload")
    assert time.monotonic() - t0 < 1.0


def test_create_says_so_when_a_running_node_cannot_reload(nodes: Cli, home: Path) -> None:  # noqa: F811
    nodes.json("node", "create", "n1")
    (home / "nodes" / "n1" / "control.sock").unlink()  # running, but unreachable
    r = nodes("policy", "create", "--at", "n1", "--resource", "echo", "--allow", "false",
              ok=False)
    assert r.returncode == 1 and "did not reload" in r.stderr and "restart it" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert nodes("policy", "show", "--at", "n1", "--resource", "echo").out == "false"
    import os
    import signal

    os.kill(int((home / "nodes" / "n1" / "pid").read_text()), signal.SIGTERM)
