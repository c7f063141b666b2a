"""``truststack authority``, ``ticket create`` and ``enroll`` end to end with a background
authority node (stopped at the end, even when a test fails)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.enrollment_cli.helpers import rows, stop_all


@dataclass
class Auth:
    cli: Cli
    home: Path
    admin: str
    identifier: str
    tmp: Path


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Auth]:
    """A home with an admin identity (the default) and a running authority ``auth``."""
    tmp = tmp_path_factory.mktemp("enroll")
    home = tmp / "home"
    cli = Cli(home)
    try:
        admin = cli("identity", "create", "admin").out
        trusted = tmp / "trusted.json"
        cli("identity", "create", "pre")
        pre = cli.json("identity", "show", "pre")["identifier"]
        trusted.write_text(json.dumps({pre: {"team": "ops"}}))
        created = cli.json("authority", "create", "auth", "--trusted-identities", f"@{trusted}",
                           "--credential-ttl", "10m")
        yield Auth(cli, home, admin, created["identifier"], tmp)
    finally:
        stop_all(home)


def _ticket(a: Auth, *args: str, identity: str | None = None) -> str:
    extra = ["--identity", identity] if identity else []
    r = a.cli("ticket", "create", "--at", "auth", *extra, *args)
    assert "\n" not in r.stdout.strip() and r.stderr == ""
    return r.out


def _member(a: Auth, name: str) -> str:
    out: str = a.cli("identity", "create", name).out
    return out


def test_authority_is_a_node_with_its_options_recorded(auth: Auth) -> None:
    a = auth
    [row] = [r for r in rows(a.cli, "node", "list") if r[0] == "auth"]
    assert row[1] == "running"
    record = json.loads((a.home / "nodes" / "auth" / "node.json").read_text())
    assert record["authority"]["admins"] == [a.admin]
    assert record["authority"]["credential_ttl"] == 600
    shown = a.cli.json("authority", "show", "auth")
    assert shown["identifier"] == a.identifier and shown["status"] == "running"
    assert shown["route"].startswith("/dnsaddr/127.0.0.1/tcp/") and \
        shown["route"].endswith("/service/api")
    assert shown["authority"]["admins"] == [a.admin]
    assert len(shown["authority"]["trusted_identities"]) == 1
    assert "Admins: " + a.admin in a.cli("authority", "show", "auth").stdout


def test_ticket_enroll_members_audit(auth: Auth) -> None:
    a = auth
    ticket = _ticket(a, "--attribute", "role=db", "--attribute", "flag", "--expires-in", "5m")
    assert all(c in "0123456789abcdef" for c in ticket)
    (a.tmp / "db.ticket").write_text(ticket + "\n")
    m1 = _member(a, "m1")
    enrolled = a.cli.json("enroll", f"@{a.tmp / 'db.ticket'}", "--identity", "m1")
    assert enrolled["identifier"] == m1 and enrolled["authority"] == a.identifier
    assert enrolled["attributes"] == {"role": "db", "flag": "true"}
    assert 0 < enrolled["expires_at"] - time.time() <= 600

    # the credential is in m1's wallet, issued by the authority
    [held] = a.cli.json("credential", "list", "--identity", "m1")
    assert held["issuer"] == a.identifier and held["credential"] == enrolled["credential"]

    # members: m1 (added by the admin's ticket) and the pre-trusted identity
    members = {m["identifier"]: m for m in a.cli.json("authority", "member", "list", "--at", "auth")}
    assert members[m1]["attributes"] == {"role": "db", "flag": "true"}
    assert members[m1]["attested_by"] == a.admin and members[m1]["pre_trusted"] is False
    assert [m["pre_trusted"] for i, m in members.items() if i != m1] == [True]
    plain = {r[0]: r for r in rows(a.cli, "authority", "member", "list", "--at", "auth")}
    assert plain[m1][1] == "flag=true,role=db" and plain[m1][4] == "no"
    shown = a.cli.json("authority", "member", "show", m1, "--at", "auth")
    assert shown == members[m1]

    # an admin adds a member directly, then changes it (upsert)
    m2 = _member(a, "m2")
    added = a.cli.json("authority", "member", "add", m2, "--at", "auth", "--attribute", "x=1")
    assert added["attributes"] == {"x": "1"}
    a.cli("authority", "member", "add", m2, "--at", "auth", "--attribute", "x=2", "--relay", "r2")
    assert a.cli.json("authority", "member", "show", m2, "--at", "auth")["attributes"] == \
        {"x": "2", "ockam-relay": "r2"}

    # delete: gone, and the audit log says who did what, tickets by reference only
    assert "deleted" in a.cli("authority", "member", "delete", m1, "--at", "auth").out
    ids = [m["identifier"] for m in a.cli.json("authority", "member", "list", "--at", "auth")]
    assert m1 not in ids and m2 in ids
    assert_one_line_error(a.cli("authority", "member", "show", m1, "--at", "auth", ok=False),
                          "not found")
    log = a.cli.json("authority", "audit", "--at", "auth")
    actions = [(e["action"], e["actor"], e["subject"]) for e in log]
    redeem = next(e for e in log if e["action"] == "ticket.redeem")
    assert redeem["actor"] == m1 and redeem["ticket"]
    assert any(act[1] == a.admin and act[2] == m1 and "delete" in act[0] for act in actions)
    assert any(act[1] == a.admin and act[2] == m2 for act in actions)
    code = bytes.fromhex(ticket).decode().split(",")[3]
    assert code not in json.dumps(log)
    plain_log = rows(a.cli, "authority", "audit", "--at", "auth")
    assert len(plain_log) == len(log) and all(len(r) == 7 for r in plain_log)

    # the code is nowhere in clear: not in the database, the node's log or any output
    node_dir = a.home / "nodes" / "auth"
    for f in node_dir.iterdir():
        if f.is_file():
            data = f.read_bytes()
            assert code.encode() not in data and bytes.fromhex(code) not in data, f


def test_ticket_errors_are_one_line(auth: Auth) -> None:
    a = auth
    _member(a, "r1")
    _member(a, "r2")
    short = _ticket(a, "--expires-in", "1s")
    made = time.monotonic()
    ticket = _ticket(a)
    # an unknown local identity fails before the ticket is spent
    assert_one_line_error(a.cli("enroll", ticket, "--identity", "nosuch", ok=False), "nosuch")
    a.cli("enroll", ticket, "--identity", "r1")
    # reused
    r = a.cli("enroll", ticket, "--identity", "r2", ok=False)
    assert_one_line_error(r, "already used")
    assert r.returncode == 1
    # malformed: not hex, truncated, a code changed (unknown), bad history (forged)
    for bad in ["zz-not-a-ticket", ticket[:100], "@" + str(a.tmp / "missing")]:
        r = a.cli("enroll", bad, "--identity", "r2", ok=False)
        assert_one_line_error(r)
        assert ticket[:64] not in r.stderr
    fields = bytes.fromhex(ticket).decode().split(",")
    fields[3] = "00" * 32
    r = a.cli("enroll", ",".join(fields).encode().hex(), "--identity", "r2", ok=False)
    assert_one_line_error(r, "unknown")
    fields = bytes.fromhex(_ticket(a)).decode().split(",")
    history = fields[4]
    fields[4] = fields[5] = history[:-8] + ("00000000" if history[-8:] != "00000000" else "11111111")
    assert_one_line_error(a.cli("enroll", ",".join(fields).encode().hex(), "--identity", "r2",
                                ok=False))
    # a ticket whose history is another identity's: the channel refuses the real authority
    other = a.cli("identity", "export", "admin").out
    fields = bytes.fromhex(_ticket(a)).decode().split(",")
    fields[1] = a.admin
    fields[4] = fields[5] = other
    r = a.cli("enroll", ",".join(fields).encode().hex(), "--identity", "r2", ok=False)
    assert_one_line_error(r, "not a trusted identifier")
    # expired (made first: its second has long passed)
    time.sleep(max(0.0, made + 2.1 - time.monotonic()))
    assert_one_line_error(a.cli("enroll", short, "--identity", "r2", ok=False), "expired")
    r2 = a.cli.json("identity", "show", "r2")["identifier"]
    assert r2 not in [m["identifier"] for m in
                      a.cli.json("authority", "member", "list", "--at", "auth")]


def test_enroller_limits(auth: Auth) -> None:
    a = auth
    enroller = _member(a, "enroller1")
    a.cli("enroll", _ticket(a, "--enroller"), "--identity", "enroller1")
    shown = a.cli.json("authority", "member", "show", enroller, "--at", "auth")
    assert shown["attributes"] == {"ockam-role": "enroller"}
    # an enroller creates ordinary tickets and adds ordinary members ...
    e1 = _member(a, "e1")
    t = _ticket(a, "--attribute", "role=web", identity="enroller1")
    # (the ticket read from standard input, as in `ticket create … | truststack enroll -`)
    assert a.cli.json("enroll", "-", "--identity", "e1", input=t + "\n")["attributes"] == \
        {"role": "web"}
    # ... but cannot grant reserved attributes or make enrollers
    for args in (["--enroller"], ["--relay", "x"], ["--attribute", "truststack.admin=1"]):
        r = a.cli("ticket", "create", "--at", "auth", "--identity", "enroller1", *args, ok=False)
        assert_one_line_error(r)
        assert r.stdout == ""
    r = a.cli("authority", "member", "add", e1, "--at", "auth", "--identity", "enroller1",
              "--enroller", ok=False)
    assert_one_line_error(r)
    # nor read the audit log (admins only); a plain member does nothing
    assert_one_line_error(a.cli("authority", "audit", "--at", "auth", "--identity", "enroller1",
                                ok=False))
    assert_one_line_error(a.cli("ticket", "create", "--at", "auth", "--identity", "e1", ok=False))
    # the pre-trusted member cannot be deleted, even by the admin
    pre = a.cli.json("identity", "show", "pre")["identifier"]
    assert_one_line_error(a.cli("authority", "member", "delete", pre, "--at", "auth", ok=False))


@pytest.mark.parametrize("args, needle", [
    (["ticket", "create"], "--at"),
    (["ticket", "create", "--at", "auth", "--usage-count", "0"], "usage-count"),
    (["ticket", "create", "--at", "auth", "--expires-in", "soon"], "duration"),
    (["ticket", "create", "--at", "auth", "--attribute", "=v"], "name"),
    (["authority", "create", "x", "--database", "mysql://h/db"], "--database"),
    (["authority", "create", "x", "--credential-ttl", "5s"], "--credential-ttl"),
    (["authority", "create", "x", "--trusted-identities", "[]"], "object"),
    (["authority", "create", "x", "--trusted-identities", "{not json"], "json"),
    (["authority", "member", "add", "Inothex", "--at", "auth"], "identifier"),
    (["enroll"], "ticket"),
])
def test_usage_errors_exit_2(auth: Auth, args: list[str], needle: str,
                             capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process (each is refused before anything is contacted or written)."""
    from trust.cli.common import run_cli
    from trust.cli.main import cli

    monkeypatch.setenv("TRUSTSTACK_HOME", str(auth.home))
    code = run_cli(cli, args)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle.lower() in lines[0].lower(), lines[0]
    assert not (auth.home / "nodes" / "x").exists()


def test_show_and_delete_refuse_plain_nodes_and_unknown_names(auth: Auth) -> None:
    a = auth
    assert_one_line_error(a.cli("authority", "show", "nosuch", ok=False), "nosuch")
    assert_one_line_error(a.cli("ticket", "create", "--at", "nosuch", ok=False), "nosuch")
    a.cli("node", "create", "plain")
    try:
        assert_one_line_error(a.cli("authority", "show", "plain", ok=False), "not an authority")
        assert_one_line_error(a.cli("authority", "delete", "plain", ok=False), "not an authority")
        assert_one_line_error(a.cli("ticket", "create", "--at", "plain", ok=False),
                              "not an authority")
    finally:
        a.cli("node", "delete", "plain")
