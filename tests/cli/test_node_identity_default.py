"""A node's own identity never silently becomes the default identity for ``credential issue``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error


@pytest.fixture
def nodes(cli: Cli, home: Path) -> Iterator[Cli]:
    """``cli``; every node it started is stopped and deleted at the end, even on failure."""
    try:
        yield cli
    finally:
        cli("node", "delete", "--all", ok=None, timeout=30)


def test_node_identity_is_not_the_default(nodes: Cli) -> None:
    nodes("node", "create", "n1")
    [ident] = nodes.json("identity", "list")
    assert ident["name"] == "n1" and ident["is_default"] is False
    r = nodes("credential", "issue", "--subject", "n1", "--attribute", "role=admin", ok=False)
    assert_one_line_error(r, "no default identity", "--identity")
    assert_one_line_error(nodes("identity", "show", ok=False), "no default identity")
    # naming the node's identity explicitly works
    assert nodes("credential", "issue", "--identity", "n1", "--subject", "n1").out
    # the first identity a user creates becomes the default, not the node's
    nodes("identity", "create", "alice")
    assert nodes.json("identity", "show")["name"] == "alice"
