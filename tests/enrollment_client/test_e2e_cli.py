"""Issue 12's first "Done when", through the CLI with background nodes: an authority, tickets
with attributes, ``node create --ticket``, a secure channel presenting the credential, a stored
policy on the subject's attribute allows; with ``--revocation-refresh 1s``, within 2 s of
``authority member delete`` a message on the member's already-open channel is dropped and
logged, the member's open portal connection (its inlet, db's outlet) is closed, and a new
channel is refused."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.conftest import Cli
from tests.fixtures.echo import echo_server
from tests.node.test_cli import nodes  # noqa: F401  (the fixture: every node stopped at the end)
from trust.node.control_client import ControlClient


def _log(home: Path, name: str) -> str:
    return (home / "nodes" / name / "node.log").read_text(errors="replace")


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether ``sock`` ends (EOF or reset) within ``seconds``, whatever it still reads."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def test_member_delete_drops_open_channel_traffic_and_refuses_new_channels(
        nodes: Cli, home: Path, tmp_path: Path) -> None:  # noqa: F811
    with echo_server() as port:
        _member_delete(nodes, home, tmp_path, port)


def _member_delete(nodes: Cli, home: Path, tmp_path: Path, port: int) -> None:  # noqa: F811
    cli = nodes
    cli("identity", "create", "admin")
    cli("authority", "create", "auth")
    for name, role in (("db", "db"), ("web", "web")):
        ticket = cli("ticket", "create", "--at", "auth", "--attribute", f"role={role}").out
        (tmp_path / f"{name}.ticket").write_text(ticket + "\n")
        cli("node", "create", name, "--ticket", f"@{tmp_path / name}.ticket",
            "--revocation-refresh", "1s")
    web_id = cli.json("node", "show", "web")["identifier"]
    cli("policy", "create", "--at", "db", "--resource", "echo", "--allow",
        '(= subject.role "web")')

    # web's channel to db presents web's credential: the policy on its attribute allows
    channel = cli("secure-channel", "create", "--from", "web", "--to",
                  "/node/db/service/api").out
    assert cli("message", "send", "hi", "--from", "web", "--to", f"{channel}/service/echo",
               "--timeout", "5s").out == "hi"
    # a peer without the attribute is denied by the same policy (db itself has role=db)
    r = cli("message", "send", "hi", "--from", "db", "--to", "/node/db/secure/api/service/echo",
            "--timeout", "1s", ok=False)
    assert r.returncode != 0

    # a portal: web's inlet to db's outlet, one connection open and carrying bytes
    cli("tcp-outlet", "create", "--at", "db", "--to", f"127.0.0.1:{port}")
    inlet = cli("tcp-inlet", "create", "--at", "web", "--to",
                "/node/db/secure/api/service/outlet").out
    host, _, inlet_port = inlet.rpartition(":")
    client = socket.create_connection((host, int(inlet_port)), timeout=5)

    db = ControlClient.for_node("db", home)
    try:
        client.sendall(b"bytes flow")
        assert client.recv(100) == b"bytes flow"
        assert db.request("enrollment.show")["revocation"]["revoked_count"] == 0
        cli("authority", "member", "delete", web_id, "--at", "auth")
        t0 = time.monotonic()
        while web_id not in db.request("enrollment.show")["revocation"]["revoked"]:
            assert time.monotonic() - t0 < 2, "db did not pull the revocation within 2 s"
            time.sleep(0.05)
        assert _closed_within(client, 2), "the open portal connection was not closed"
    finally:
        client.close()
    assert db.request("tcp_outlet.show", {"name": "outlet"})["denied"] == 1
    assert f"the peer is denied: {web_id} is revoked by its authority" in _log(home, "db")
    r = cli("message", "send", "hi", "--from", "web", "--to", f"{channel}/service/echo",
            "--timeout", "1s", ok=False)
    assert "no reply" in r.stderr
    assert time.monotonic() - t0 < 3.5
    log = _log(home, "db")
    assert f"to echo dropped: {web_id} is revoked by its authority" in log

    # a new channel from web is refused by db's listener, and said so in db's log
    r = cli("message", "send", "hi", "--from", "web", "--to", "/node/db/secure/api/service/echo",
            "--timeout", "1s", ok=False)
    assert r.returncode != 0
    log = _log(home, "db")
    assert f"secure channel from {web_id} refused: it is revoked by its authority" in log
    # db's other peers are untouched: the authority's channel still answers its pulls
    shown = db.request("enrollment.show")["revocation"]
    assert shown["failures"] == 0 and shown["refreshes"] >= 2
