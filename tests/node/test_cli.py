"""``truststack node`` and ``truststack message`` with real background node processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TRUSTSTACK, Cli, assert_one_line_error
from tests.fixtures.nodes import stop_all_nodes
from trust.node.files import UNIX_PATH_LIMIT, pid_alive


@pytest.fixture
def nodes(cli: Cli, home: Path) -> Iterator[Cli]:
    """The ``cli`` fixture, with every node it started stopped at the end (even on failure)."""
    try:
        yield cli
    finally:
        stop_all_nodes(home)


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_two_background_nodes_lifecycle(nodes: Cli, home: Path) -> None:
    n1 = nodes.json("node", "create", "n1")
    n2 = nodes.json("node", "create", "n2")
    for state, name in ((n1, "n1"), (n2, "n2")):
        assert state["name"] == name and state["status"] == "running"
        assert re.fullmatch(r"127\.0\.0\.1:\d+", state["listeners"][0])
        assert re.fullmatch(r"I[0-9a-f]{64}", state["identifier"])
        assert pid_alive(state["pid"])

    # through n1 to n2's echo (the text goes as a BARE string and comes back decoded)
    r = nodes("message", "send", "hello", "--from", "n1", "--to", "/node/n2/service/echo")
    assert r.out == "hello"
    assert nodes.json("message", "send", "héllo wörld", "--from", "n1", "--to",
                      "/node/n2/service/echo") == {"to": "/node/n2/service/echo",
                                                   "reply": "héllo wörld"}
    # through n1's hop to n2's echo, from a temporary node in the CLI process
    assert nodes("message", "send", "hi", "--to",
                 "/node/n1/service/hop/node/n2/service/echo").out == "hi"
    port2 = n2["listeners"][0].split(":")[1]
    assert nodes("message", "send", "x", "--from", "n1", "--to",
                 f"/ip4/127.0.0.1/tcp/{port2}/service/echo").out == "x"
    assert nodes("message", "send", "00ff10", "--hex", "--from", "n1", "--to",
                 "/service/echo").out == "00ff10"

    listed = {n["name"]: n for n in nodes.json("node", "list")}
    assert set(listed) == {"n1", "n2"} and all(n["status"] == "running" for n in listed.values())
    plain = sorted(line.split("\t") for line in nodes("node", "list").out.splitlines())
    assert [row[:3] for row in plain] == [["n1", "running", str(n1["pid"])],
                                          ["n2", "running", str(n2["pid"])]]
    assert plain[0][3] == n1["listeners"][0]
    # without --from, the temporary node runs echo and hop like any node
    assert nodes("message", "send", "local", "--to", "/service/echo").out == "local"

    shown = nodes.json("node", "show", "n1")
    assert {"name", "pid", "status", "listeners", "identifier"} <= set(shown)
    assert shown["identifier"] == n1["identifier"] and shown["pid"] == n1["pid"]
    assert "echo" in " ".join(shown["workers"]) and "hop" in " ".join(shown["workers"])
    # the node's identity is a local identity named after it
    ident = nodes.json("identity", "show", "n1")
    assert ident["identifier"] == n1["identifier"]
    assert "Identifier: " + n1["identifier"] in nodes("node", "show", "n1").out

    assert "n1" in nodes("node", "logs", "n1").out

    nodes("node", "stop", "n1")
    assert _wait_gone(n1["pid"])
    stopped = nodes.json("node", "show", "n1")
    assert stopped["status"] == "stopped" and stopped["pid"] is None
    assert stopped["identifier"] == n1["identifier"]
    r = nodes("message", "send", "x", "--from", "n1", "--to", "/service/echo", ok=False)
    assert_one_line_error(r, "not running")
    assert_one_line_error(nodes("node", "stop", "n1", ok=False), "not running")

    again = nodes.json("node", "start", "n1")
    assert again["identifier"] == n1["identifier"] and again["pid"] != n1["pid"]
    assert again["listeners"] == n1["listeners"]  # the port chosen at create is kept
    assert nodes("message", "send", "back", "--from", "n1", "--to",
                 "/node/n2/service/echo").out == "back"

    nodes("node", "delete", "n1")
    assert _wait_gone(again["pid"])
    nodes("node", "delete", "n2")  # running: stopped first
    assert _wait_gone(n2["pid"])
    assert nodes.json("node", "list") == []
    assert not (home / "nodes" / "n1").exists()


def test_create_fails_cleanly_on_a_taken_name_or_port(nodes: Cli, home: Path) -> None:
    n1 = nodes.json("node", "create", "n1")
    assert_one_line_error(nodes("node", "create", "n1", ok=False), "already exists")
    r = nodes("node", "create", "n3", "--tcp-listener-address", n1["listeners"][0], ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "in use")
    assert [n["name"] for n in nodes.json("node", "list")] == ["n1"]
    assert not (home / "nodes" / "n3").exists()
    # the first node is unharmed
    assert nodes("message", "send", "ok", "--to", "/node/n1/service/echo").out == "ok"
    for args in (["node", "create", "bad/name"], ["node", "create", "-x"],
                 ["node", "create", "n4", "--tcp-listener-address", "nowhere"]):
        r = nodes(*args, ok=False)
        assert r.returncode == 2 and "Traceback" not in r.stderr
    assert_one_line_error(nodes("node", "create", "n5", "--identity", "nobody", ok=False),
                          "nobody")
    assert not (home / "nodes" / "n5").exists()


def test_explicit_identity_and_fixed_port(nodes: Cli) -> None:
    ops = nodes.json("identity", "create", "ops")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = nodes.json("node", "create", "relay", "--identity", "ops",
                       "--tcp-listener-address", f"127.0.0.1:{port}")
    assert state["identifier"] == ops["identifier"] and state["identity"] == "ops"
    assert state["listeners"] == [f"127.0.0.1:{port}"]


def test_one_line_errors(nodes: Cli) -> None:
    nodes("node", "create", "n1")
    assert_one_line_error(nodes("node", "show", "ghost", ok=False), "no node named ghost")
    assert_one_line_error(nodes("node", "logs", "ghost", ok=False), "ghost")
    assert_one_line_error(nodes("node", "delete", "ghost", ok=False), "ghost")
    r = nodes("message", "send", "x", "--from", "n1", "--to", "/ip4/1.2.3/tcp/1", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "/ip4/1.2.3", "IPv4")
    r = nodes("message", "send", "x", "--from", "n1", "--to", "/service/nobody", ok=False)
    assert_one_line_error(r, "nobody")
    r = nodes("message", "send", "x", "--from", "n1", "--to", "/node/ghost/service/echo",
              ok=False)
    assert_one_line_error(r, "ghost")
    r = nodes("message", "send", "x", "--from", "ghost", "--to", "/service/echo", ok=False)
    assert_one_line_error(r, "ghost")
    r = nodes("message", "send", "zz", "--hex", "--from", "n1", "--to", "/service/echo",
              ok=False)
    assert r.returncode == 2
    # a worker that never answers: the timeout is reported on one line
    r = nodes("message", "send", "x", "--from", "n1", "--timeout", "300ms", "--to",
              "/node/n1/service/hop", ok=False)
    assert_one_line_error(r, "no reply from /node/n1/service/hop within 0.3s")
    r = nodes("message", "send", "x", "--timeout", "300ms", "--to", "/node/n1/service/hop",
              ok=False)
    assert_one_line_error(r, "no reply from /node/n1/service/hop within 0.3s")
    # raw bytes both ways
    assert nodes("message", "send", "ff", "--hex", "--from", "n1", "--to",
                 "/service/echo").out == "ff"
    # the temporary node (no --from) runs echo and hop; other local workers do not exist
    assert nodes("message", "send", "x", "--to", "/service/echo").out == "x"
    assert_one_line_error(
        nodes("message", "send", "x", "--to", "/service/nobody", ok=False), "nobody")


def test_foreground_node(nodes: Cli, home: Path) -> None:
    proc = subprocess.Popen([TRUSTSTACK, "node", "create", "fg", "--foreground", "--output",
                             "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=nodes.env())
    try:
        assert proc.stdout is not None
        state = json.loads(proc.stdout.readline())
        assert state["name"] == "fg" and state["pid"] == proc.pid
        assert nodes("message", "send", "hey", "--from", "fg", "--to", "/service/echo").out \
            == "hey"
        assert nodes.json("node", "show", "fg")["status"] == "running"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert nodes.json("node", "show", "fg")["status"] == "stopped"
        assert "fg" in (home / "nodes" / "fg" / "node.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_long_home_path_uses_a_loopback_control_port(tmp_path: Path) -> None:
    home = tmp_path / ("h" * max(1, UNIX_PATH_LIMIT - len(str(tmp_path)))) / "home"
    cli = Cli(home)
    try:
        state = cli.json("node", "create", "n1")
        node_dir = home / "nodes" / "n1"
        assert not (node_dir / "control.sock").exists()
        control = json.loads((node_dir / "control.json").read_text())
        assert control["host"] == "127.0.0.1" and len(control["token"]) == 64
        assert (node_dir / "control.json").stat().st_mode & 0o777 == 0o600
        assert cli("message", "send", "far", "--from", "n1", "--to", "/service/echo").out == "far"
        assert cli.json("node", "show", "n1")["pid"] == state["pid"]
        cli("node", "stop", "n1")
        assert _wait_gone(state["pid"])
    finally:
        stop_all_nodes(home)


_SLOW_EXIT = """\
import atexit, sys, time
def _linger():
    if sys.argv[1:2] == ["run"]:  # only the node process: its interpreter exits slowly
        time.sleep(0.8)
atexit.register(_linger)
"""


def test_stop_returns_only_once_the_node_process_has_exited(nodes: Cli, tmp_path: Path) -> None:
    # A stopping node removes its pid file and releases its lock before its interpreter has
    # exited; `node stop` and `node delete` wait for the process itself, not only for the files.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SLOW_EXIT)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    for verb in ("stop", "delete"):
        pid = nodes.json("node", "create", f"slow-{verb}", env=env)["pid"]
        nodes("node", verb, f"slow-{verb}")
        assert not pid_alive(pid) or _is_zombie(pid), f"node {verb} returned before pid {pid} exited"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
