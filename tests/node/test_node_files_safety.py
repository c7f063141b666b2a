"""A node's files are never written through a symbolic link (or a file planted in their place),
and one node's broken files do not break ``node list`` for the others."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from trust.errors import StorageError
from trust.node.files import NodePaths, open_append, write_json


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    c = Cli(tmp_path / "home")
    try:
        yield c
    finally:
        with contextlib.suppress(Exception):
            c("node", "delete", "--all", ok=None, timeout=30)


def test_write_json_does_not_follow_a_planted_temp_file_or_keep_its_mode(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    d = tmp_path / "n"
    d.mkdir()
    # what the temp file used to be named: a link there is not followed
    (d / f".state.json.{os.getpid()}.tmp").symlink_to(victim)
    write_json(d / "state.json", {"name": "n1"})
    assert victim.read_text() == "precious\n"
    assert json.loads((d / "state.json").read_text()) == {"name": "n1"}
    # nor does a planted file of mode 0644 make control.json (which holds the token) readable
    planted = d / f".control.json.{os.getpid()}.tmp"
    planted.write_text("")
    os.chmod(planted, 0o644)
    write_json(d / "control.json", {"port": 1, "token": "ab" * 32})
    assert stat.S_IMODE((d / "control.json").stat().st_mode) == 0o600
    # a link at the record itself is replaced, not written through
    (d / "node.json").symlink_to(victim)
    write_json(d / "node.json", {"name": "n1"})
    assert victim.read_text() == "precious\n" and not (d / "node.json").is_symlink()
    assert stat.S_IMODE((d / "node.json").stat().st_mode) == 0o600


def test_pid_is_written_atomically_and_not_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    paths = NodePaths("n1", tmp_path / "home")
    paths.dir.mkdir(parents=True)
    paths.pid.symlink_to(victim)
    paths.write_pid(1234)
    assert victim.read_text() == "precious\n"
    assert paths.read_pid() == 1234 and stat.S_IMODE(paths.pid.stat().st_mode) == 0o600


def test_open_append_refuses_links_and_fifos(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "node.log"
    link.symlink_to(victim)
    with pytest.raises(StorageError, match="symbolic link"):
        open_append(link)
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    with pytest.raises(StorageError, match="not a regular file"):
        open_append(fifo)  # and it does not block
    fd = open_append(tmp_path / "new.log")
    os.write(fd, b"x")
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "new.log").stat().st_mode) == 0o600


def test_node_start_writes_no_node_file_through_a_link(cli: Cli, tmp_path: Path) -> None:
    cli("node", "create", "n1")
    cli("node", "stop", "n1")
    paths = NodePaths("n1", cli.home)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    # node.log a link: refused with one line, nothing written to the target
    paths.log.unlink()
    paths.log.symlink_to(victim)
    r = cli("node", "start", "n1", ok=False)
    assert_one_line_error(r, "node.log", "symbolic link")
    assert victim.read_text() == "precious\n"
    # pid a link: replaced, not written through
    paths.log.unlink()
    paths.pid.unlink(missing_ok=True)
    paths.pid.symlink_to(victim)
    cli("node", "start", "n1")
    assert victim.read_text() == "precious\n" and not paths.pid.is_symlink()
    assert paths.read_pid() is not None


def test_one_node_with_a_linked_pid_file_does_not_break_node_list(cli: Cli, tmp_path: Path) -> None:
    cli("node", "create", "n1")
    cli("node", "create", "n2")
    cli("node", "stop", "n2")
    paths = NodePaths("n1", cli.home)
    pid = int(paths.pid.read_text())
    paths.pid.unlink()
    paths.pid.symlink_to(tmp_path / "elsewhere")
    try:
        rows = {row["name"]: row for row in cli.json("node", "list")}
        assert rows["n2"]["status"] == "stopped"
        assert rows["n1"]["status"] == "error" and "pid" in rows["n1"]["error"]
        r = cli("node", "list")
        assert "n2\tstopped" in r.stdout and "n1\terror" in r.stdout
        assert "warning: node n1" in r.stderr and "Traceback" not in r.stderr
    finally:  # (the node runs on: with its pid file a link, `node delete --all` cannot stop it)
        paths.pid.unlink()
        paths.pid.write_text(f"{pid}\n")
        cli("node", "stop", "n1", ok=None)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


def test_a_bad_hop_allow_in_node_json_is_reported_by_node_start(cli: Cli) -> None:
    cli("node", "create", "n1")
    cli("node", "stop", "n1")
    config_path = NodePaths("n1", cli.home).config
    config = json.loads(config_path.read_text())
    config["hop_allow"] = ["not a host:port"]
    config_path.write_text(json.dumps(config))
    r = cli("node", "start", "n1", ok=False)
    assert_one_line_error(r, "hop")
    assert "exited" not in r.stderr and "internal" not in r.stderr
