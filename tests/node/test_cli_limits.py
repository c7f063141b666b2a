"""``node create`` limits and hop permissions (recorded for ``node start``), failed creates that
leave nothing behind, and the node log's rotation (issue 9)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.nodes import stop_all_nodes


@pytest.fixture
def nodes(cli: Cli, home: Path) -> Iterator[Cli]:
    try:
        yield cli
    finally:
        stop_all_nodes(home)


def test_limits_and_hop_allow_are_recorded_and_applied(nodes: Cli, home: Path) -> None:
    n2 = nodes.json("node", "create", "n2")
    target = n2["listeners"][0]
    nodes.json("node", "create", "n1", "--hop-allow", target, "--max-connections", "50",
               "--idle-timeout", "10m", "--stall-timeout", "30s")
    config = json.loads((home / "nodes" / "n1" / "node.json").read_text())
    assert config["hop_allow"] == [target] and config["max_connections"] == 50
    assert config["idle_timeout"] == 600 and config["stall_timeout"] == 30
    nodes.json("node", "create", "n3")
    default = json.loads((home / "nodes" / "n3" / "node.json").read_text())
    assert default["hop_allow"] == [] and default["max_connections"] == 10000
    assert default["idle_timeout"] == 300 and default["stall_timeout"] == 60

    # from a temporary node in the CLI process (a remote peer for n1 and n3)
    via_n1 = "/node/n1/service/hop/node/n2/service/echo"
    assert nodes("message", "send", "hi", "--to", via_n1).out == "hi"
    r = nodes("message", "send", "hi", "--timeout", "500ms", "--to",
              "/node/n3/service/hop/node/n2/service/echo", ok=False)
    assert_one_line_error(r, "no reply")
    assert nodes.json("node", "show", "n3")["stats"]["hop_denied"] == 1
    assert "hop-allow" in nodes("node", "logs", "n3").out

    # node start applies the recorded settings (a new process: no connection to reuse)
    nodes("node", "stop", "n1")
    nodes("node", "start", "n1")
    assert nodes("message", "send", "again", "--to", via_n1).out == "again"
    assert nodes.json("node", "show", "n1")["stats"]["hop_denied"] == 0


def test_a_failed_create_keeps_no_identity(nodes: Cli, home: Path) -> None:
    n1 = nodes.json("node", "create", "n1")
    r = nodes("node", "create", "n3", "--tcp-listener-address", n1["listeners"][0], ok=False)
    assert_one_line_error(r, "in use")
    assert not (home / "nodes" / "n3").exists()
    assert "n3" not in [i["name"] for i in nodes.json("identity", "list")]


@pytest.mark.parametrize("args", [
    ["--tcp-listener-address", "127.0.0.1:70000"],
    ["--tcp-listener-address", "127.0.0.1:\u0664\u0660\u0660\u0660"],
    ["--tcp-listener-address", "127.0.0.1:-1"],
    ["--hop-allow", "10.0.0.1"],
    ["--hop-allow", "10.0.0.1:65536"],
    ["--max-connections", "0"],
    ["--max-connections", "\u0665"],
    ["--idle-timeout", "0s"],
    ["--stall-timeout", "soon"],
])
def test_bad_values_are_one_line_errors_and_create_nothing(nodes: Cli, home: Path,
                                                           args: list[str]) -> None:
    r = nodes("node", "create", "bad", *args, ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, args[0].lstrip("-").split("-")[0])
    assert not (home / "nodes" / "bad").exists()
    assert "bad" not in [i["name"] for i in nodes.json("identity", "list")]


def test_the_node_log_rotates_by_size(tmp_path: Path) -> None:
    """A background node's log (and its stderr) stays within LOG_MAX_BYTES × (backups + 1)."""
    script = textwrap.dedent("""
        import logging, os, sys
        import trust.node.daemon as daemon
        from trust.node.files import NodePaths
        daemon.LOG_MAX_BYTES = 20_000
        paths = NodePaths("n", sys.argv[1])
        paths.create_dir()
        daemon._setup_logging(paths, foreground=False)
        log = logging.getLogger("trust.test")
        for i in range(3000):
            log.info("line %d %s", i, "x" * 100)
        os.write(2, b"written to stderr after rotation\\n")
    """)
    home = tmp_path / "home"
    p = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    logs = sorted((home / "nodes" / "n").glob("node.log*"))
    assert [f.name for f in logs] == ["node.log", "node.log.1", "node.log.2", "node.log.3"]
    assert sum(f.stat().st_size for f in logs) <= 4 * 20_000 + 1000
    current = (home / "nodes" / "n" / "node.log").read_text()
    assert "line 2999" in current and "written to stderr after rotation" in current
