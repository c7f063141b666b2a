"""Background authority nodes for the CLI tests: always stopped, even when a test fails."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import Cli
from tests.fixtures.nodes import stop_all_nodes as stop_all


@contextlib.contextmanager
def nodes_stopped(home: Path) -> Iterator[None]:
    try:
        yield
    finally:
        stop_all(home)


def rows(cli: Cli, *args: str) -> list[list[str]]:
    return [line.split("\t") for line in cli(*args).stdout.splitlines() if line]
