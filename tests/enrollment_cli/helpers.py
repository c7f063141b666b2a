"""Background authority nodes for the CLI tests: always stopped, even when a test fails."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import TRUSTSTACK, Cli
from trust.node.files import pid_alive


def stop_all(home: Path) -> None:
    """Stop every node under ``home``: politely, then by pid as a last resort."""
    nodes = home / "nodes"
    if not nodes.is_dir():
        return
    for d in nodes.iterdir():
        with contextlib.suppress(Exception):
            subprocess.run([TRUSTSTACK, "node", "stop", d.name], capture_output=True, timeout=15,
                           env={**os.environ, "TRUSTSTACK_HOME": str(home)})
        with contextlib.suppress(OSError, ValueError):
            pid = int((d / "pid").read_text())
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def nodes_stopped(home: Path) -> Iterator[None]:
    try:
        yield
    finally:
        stop_all(home)


def rows(cli: Cli, *args: str) -> list[list[str]]:
    return [line.split("\t") for line in cli(*args).stdout.splitlines() if line]
