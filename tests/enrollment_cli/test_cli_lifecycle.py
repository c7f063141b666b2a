"""Authority lifecycle through the CLI: restart with the recorded options, delete,
--foreground (background nodes always stopped, even when a test fails)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.conftest import Cli, assert_one_line_error
from tests.enrollment_cli.helpers import rows, stop_all


def test_restart_serves_the_same_authority(tmp_path: Path) -> None:
    """`node stop` + `node start`: same identity, same members (the options are recorded);
    `authority delete` removes it."""
    cli = Cli(tmp_path / "home")
    try:
        cli("identity", "create", "admin")
        ident = cli.json("authority", "create", "a1")["identifier"]
        m = cli("identity", "create", "m").out
        cli("enroll", cli("ticket", "create", "--at", "a1", "--attribute", "k=v").out,
            "--identity", "m")
        cli("node", "stop", "a1")
        assert_one_line_error(cli("ticket", "create", "--at", "a1", ok=False), "not running")
        assert cli.json("node", "start", "a1")["identifier"] == ident
        [member] = cli.json("authority", "member", "list", "--at", "a1")
        assert member["identifier"] == m and member["attributes"] == {"k": "v"}
        assert "deleted" in cli("authority", "delete", "a1").out
        assert not (tmp_path / "home" / "nodes" / "a1").exists()
    finally:
        stop_all(tmp_path / "home")


def test_foreground_runs_until_interrupted(tmp_path: Path) -> None:
    from tests.conftest import TRUSTSTACK

    cli = Cli(tmp_path / "home")
    cli("identity", "create", "admin")
    p = subprocess.Popen([TRUSTSTACK, "authority", "create", "fg", "--foreground"],
                         env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (tmp_path / "home" / "nodes" / "fg" / "state.json").exists():
                break
            assert p.poll() is None, p.communicate()
            time.sleep(0.1)
        assert _ticket_ok(cli, "fg")
        p.send_signal(2)
        p.wait(timeout=15)
        assert p.returncode == 0
        assert rows(cli, "node", "list")[0][:2] == ["fg", "stopped"]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        stop_all(tmp_path / "home")


def _ticket_ok(cli: Cli, at: str) -> bool:
    return len(cli("ticket", "create", "--at", at).out) > 200


def test_without_an_admin_nothing_is_created(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    assert_one_line_error(cli("authority", "create", "a1", ok=False), "--admin")
    assert_one_line_error(cli("authority", "create", "a1", "--admin", "nosuch", ok=False),
                          "nosuch")
    assert not (tmp_path / "home" / "nodes" / "a1").exists()
