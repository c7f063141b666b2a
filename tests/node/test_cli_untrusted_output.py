"""``node show`` and ``node logs`` print untrusted text (node files, the node's log) escaped, and
``node logs`` reads a bounded tail of a regular file only."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from trust.cli.node import LOG_TAIL_BYTES
from trust.node.files import NodePaths

EVIL = "evil\x1b]0;owned\x07\x1b[2J\r\nForged: yes\u202e"


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[tuple[Cli, NodePaths]]:
    cli = Cli(tmp_path / "home")
    try:
        cli("node", "create", "n1")
        cli("node", "stop", "n1")
        yield cli, NodePaths("n1", cli.home)
    finally:
        with contextlib.suppress(Exception):
            cli("node", "delete", "--all", ok=None, timeout=30)


def _clean(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\u202e" not in text and "\nForged" not in text


def test_node_show_escapes_what_the_node_files_hold(stopped: tuple[Cli, NodePaths]) -> None:
    cli, paths = stopped
    config = json.loads(paths.config.read_text())
    config["identity"] = EVIL
    paths.config.write_text(json.dumps(config))
    r = cli("node", "show", "n1")
    _clean(r.stdout)
    assert "Identity: evil\\x1b]0;owned\\x07" in r.stdout
    assert len(r.stdout.splitlines()) == 6  # Node, Status, PID, Listeners, Identity, Identifier


def test_node_logs_escapes_control_characters_and_keeps_lines(stopped: tuple[Cli, NodePaths]) -> None:
    cli, paths = stopped
    # a log line holds no newline (the node escapes them), but anything else may be in it
    paths.log.write_bytes(b"first\n" + EVIL.replace("\n", "").encode() + b"\xff\nlast \\x41 kept\n")
    r = cli("node", "logs", "n1")
    _clean(r.stdout)
    lines = r.stdout.splitlines()
    assert lines[0] == "first" and lines[-1] == "last \\x41 kept"  # the log's own escapes kept
    assert lines[1].startswith("evil\\x1b]0;owned\\x07") and lines[1].endswith("\\xff")
    assert cli("node", "logs", "n1", "--lines", "1").stdout == "last \\x41 kept\n"


def test_node_logs_reads_a_bounded_tail(stopped: tuple[Cli, NodePaths]) -> None:
    cli, paths = stopped
    line = b"x" * 99 + b"\n"
    with open(paths.log, "wb") as f:
        f.write(line * (3 * LOG_TAIL_BYTES // len(line)) + b"the end\n")
    r = cli("node", "logs", "n1")
    assert len(r.stdout) <= LOG_TAIL_BYTES and r.stdout.endswith("the end\n")
    assert "note: only the last" in r.stderr
    assert all(ln in ("x" * 99, "the end") for ln in r.stdout.splitlines())  # no partial line
    assert cli("node", "logs", "n1", "-n", "2").stdout == "x" * 99 + "\nthe end\n"


def test_node_logs_refuses_links_and_fifos(stopped: tuple[Cli, NodePaths]) -> None:
    cli, paths = stopped
    paths.log.unlink()
    paths.log.symlink_to("/dev/zero")
    assert_one_line_error(cli("node", "logs", "n1", ok=False, timeout=20), "symbolic link")
    paths.log.unlink()
    os.mkfifo(paths.log)
    assert_one_line_error(cli("node", "logs", "n1", ok=False, timeout=20), "not a regular file")
