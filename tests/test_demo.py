"""``truststack demo`` runs the seed scenario end to end through the real executable: node
processes that are always gone afterwards (also after a failure or Ctrl-C), the three channels,
the policy decisions, the bytes, and a wiretap that saw only ciphertext."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import TRUSTSTACK, Cli, assert_one_line_error, popen_interruptible


def _processes_under(path: Path) -> list[str]:
    """Command lines of the running processes that name ``path`` (node processes get their
    home as ``--home``)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline and "trust.node" in cmdline:
            out.append(cmdline)
    return out


def test_demo_plain_leaves_nothing_behind(cli: Cli, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = cli("demo", env={"TMPDIR": str(tmp)})
    assert r.stdout.count("✔") == 17
    assert re.search(r"All steps passed in \d+\.\d s\.$", r.stdout.rstrip()), r.stdout[-200:]
    assert "alice allowed, bob denied" in r.stdout
    # the summary names each identity's own key type
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("authority I"))
    assert re.search(r"authority I[0-9a-f]{12}… \(Ed25519\), alice I[0-9a-f]{12}… \(Ed25519\), "
                     r"bob I[0-9a-f]{12}… \(P-256\)", line), line
    assert "redeeming analysis's ticket again was refused (enrollment ticket REF was already " \
           "used)" in r.stdout
    assert "GET / answered 200 with Bank Corp's ledger" in r.stdout
    assert "but bank's outlet denied its connection" in r.stdout
    assert r.stderr == ""
    assert re.search(r"bank→project \(bank [0-9a-f]{8}… ⇄ project [0-9a-f]{8}…, \d+/\d+ "
                     r"records\); analysis→project \(.*; analysis→bank \(analysis ", r.stdout)
    assert re.search(r"\d+ bytes in \d+ TCP connections crossed the project's listener; none of",
                     r.stdout)
    assert "project, bank and analysis stopped and deleted" in r.stdout
    assert not cli.home.exists()  # the demo used a temporary home, not $TRUSTSTACK_HOME
    assert list(tmp.iterdir()) == []  # ... and removed it
    assert _processes_under(tmp) == []


def test_demo_json_in_a_kept_home(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    report = json.loads(cli("demo", "--home", str(home), "--output", "json").stdout)
    assert report["ok"] is True and report["home"] == str(home)
    assert 0 < report["total_ms"] < 60_000
    steps = {s["title"]: s for s in report["steps"]}
    assert len(steps) == 17
    made = steps["Create three identities"]
    assert steps["Decide access with a policy"]["decisions"] == {"alice": True, "bob": False}

    project = steps["Start the project node (authority and relay)"]
    members = steps["Enroll bank and analysis with one-time tickets"]["members"]
    ids = {"project": project["project"]["identifier"],
           "bank": members["bank"]["identifier"], "analysis": members["analysis"]["identifier"]}
    assert members["bank"]["attributes"] == {"role": "bank", "ockam-relay": "bank"}
    assert members["analysis"]["attributes"] == {"role": "analyst"}
    # the project's transport was reached only through the wiretap
    assert project["authority_route"] == \
        f"/dnsaddr/{project['wiretap'].replace(':', '/tcp/')}/service/api"
    bank = steps["Bank: a relay at the project and an outlet to its service"]
    assert bank["relay"]["status"] == "registered" and bank["relay"]["peer"] == ids["project"]
    assert bank["outlet"]["policy"] == '(= subject.role "analyst")'
    inlet = steps["Analysis: an inlet via the relay"]["inlet"]
    assert inlet["route"].endswith("/secure/api/service/forward_to_bank/secure/api/service/outlet")

    traffic = steps["Through the portal"]
    assert traffic["connections"] == 2
    assert traffic["bytes"]["client_to_service"] > 0 and traffic["bytes"]["service_to_client"] > 0

    # the three channels, each end read back from its own node, between the right identities
    channels = steps["Three secure channels, read back from the nodes"]["channels"]
    assert set(channels) == {"bank→project", "analysis→project", "analysis→bank"}
    for label, ends in channels.items():
        a, b = label.split("→")
        assert ends["initiator"]["peer"] == ids[b] and ends["responder"]["peer"] == ids[a]
        assert ends["initiator"]["initiator"] is True and ends["responder"]["initiator"] is False
        assert ends["initiator"]["remote_route"].split()[-1] == "0#" + \
            ends["responder"]["decryptor"]
    inner, outer = channels["analysis→bank"], channels["analysis→project"]
    assert inner["initiator"]["remote_route"].split()[0] == "0#" + outer["initiator"]["address"]

    # a real deny: a stranger's connection to the same outlet, closed, with bank's reason logged
    stranger = steps["A stranger is denied"]
    assert stranger["stranger"] not in ids.values()
    assert f"outlet outlet: connection for {stranger['stranger']} refused: the peer is denied" \
        in stranger["bank_log"] and "subject.role is missing" in stranger["bank_log"]
    decisions = steps["Policy decisions"]
    assert decisions["analyst"]["allowed"] is True and decisions["stranger"]["allowed"] is False
    assert decisions["outlet"] == {"allowed": 2, "denied": 1}
    assert decisions["policy_checks"]["bank"]["denied"] == 1

    tap = steps["Only ciphertext at the project node's transport"]
    assert tap["found"] == [] and len(tap["searched"]) >= 3
    moved = traffic["bytes"]["client_to_service"] + traffic["bytes"]["service_to_client"]
    assert tap["captured_bytes"] > moved

    # the kept home is a normal home: its identities are usable, its nodes are gone
    kept = Cli(home)
    names = [i["name"] for i in kept.json("identity", "list")]
    assert names == ["alice", "analysis", "authority", "bank", "bob", "project",
                     "project-admin", "stranger"]
    assert kept.json("node", "list") == []
    assert _processes_under(home) == []
    assert len(kept.json("identity", "show", "authority")["changes"]) == 3
    for name in ("alice", "bob"):  # the key types the summary gave are the histories' own
        assert kept.json("identity", "show", name)["changes"][-1]["key_type"] == \
            made["key_types"][name]
    assert_one_line_error(cli("demo", "--home", str(home), ok=False), "not empty")


def test_demo_with_postgresql(cli: Cli, tmp_path: Path) -> None:
    """``--postgres``: the demo starts its own PostgreSQL server (initdb; as root, as the
    postgres user), queries it through the portal, and stops it. Without psycopg (hidden
    here) it queries with ``psql``."""
    home = tmp_path / "pg-home"
    hide = tmp_path / "no-psycopg"
    hide.mkdir()
    (hide / "psycopg.py").write_text("raise ImportError('psycopg is hidden by the test')\n")
    report = json.loads(cli("demo", "--home", str(home), "--postgres", "--output", "json",
                            env={"PYTHONPATH": str(hide)}).stdout)
    steps = {s["title"]: s for s in report["steps"]}
    bank = steps["Bank: a relay at the project and an outlet to its service"]
    target = bank["outlet"]["target"]
    assert "psql got PostgreSQL's answer through the portal: bank-corp-secret-" in \
        steps["Through the portal"]["detail"]
    tap = steps["Only ciphertext at the project node's transport"]
    assert tap["found"] == [] and "SELECT" in tap["searched"]
    assert steps["Policy decisions"]["outlet"] == {"allowed": 2, "denied": 1}
    assert _processes_under(home) == []
    host, _, port = target.rpartition(":")
    with socket.socket() as s:  # the demo's server is stopped
        assert s.connect_ex((host, int(port))) != 0
    assert bank["local_postgres"] and not Path(bank["local_postgres"]).exists()  # removed


def test_a_failing_demo_still_stops_its_nodes(cli: Cli, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on: the outlet cannot connect
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    home = tmp_path / "failing"
    r = cli("demo", "--home", str(home), "--postgres-url",
            f"postgresql://postgres@127.0.0.1:{closed}/postgres", ok=False)
    assert_one_line_error(r, "through the portal failed")
    assert "✔ Analysis: an inlet via the relay" in r.stdout  # the nodes were running
    assert not (home / "nodes").exists() or list((home / "nodes").iterdir()) == []
    assert _processes_under(home) == []


def test_ctrl_c_stops_the_nodes(tmp_path: Path) -> None:
    home = tmp_path / "interrupted"
    p = popen_interruptible([TRUSTSTACK, "demo", "--home", str(home)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            env={**os.environ, "TRUSTSTACK_HOME": str(tmp_path / "unused")})
    try:
        deadline = time.monotonic() + 60
        while not _processes_under(home):  # interrupted once the first node runs
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode != 0 and "Traceback" not in err
    assert "All steps passed" not in out
    assert _processes_under(home) == []
    assert not (home / "nodes").exists() or list((home / "nodes").iterdir()) == []


def test_demo_usage_errors(cli: Cli) -> None:
    assert_one_line_error(cli("demo", "--postgres", "--postgres-url", "postgresql://u@h/d",
                              ok=False), "not both")
    for bad in ("mysql://u@h/d", "postgresql://u@h:99999/d", "postgresql://u@h:x/d",
                "postgresql:///d", "postgresql://u@h/\x1b[2J", "postgresql://" + "h" * 3000):
        r = cli("demo", "--postgres-url", bad, ok=False)
        assert r.returncode == 2
        assert_one_line_error(r, "--postgres-url must be")
