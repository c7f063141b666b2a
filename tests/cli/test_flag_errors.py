"""CLI errors name the user's flag or argument, not a node's control method; values are escaped
once; contradictory flags are a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.nodes import stop_all_nodes
from trust.cli.common import cli_usage_message
from trust.errors import UsageError
from trust.node.control_client import ControlClient


def _usage(cli: Cli, *args: str) -> str:
    """The one error line of a usage error (exit 2)."""
    r = cli(*args, ok=False)
    assert r.returncode == 2, r.stderr
    assert_one_line_error(r)
    return r.stderr.strip()


def test_errors_a_node_finds_name_the_flag(cli: Cli, home: Path) -> None:
    try:
        cli("node", "create", "n1")
        line = _usage(cli, "relay", "create", "x", "--to", "n1", "--at", "/node/n1",
                      "--authorized", "Ixyz")
        assert line.startswith("error: --authorized: must be a list") and "relay.create" not in line
        line = _usage(cli, "tcp-outlet", "create", "--at", "n1", "--to", "127.0.0.1:5432",
                      "--from", "bad name")
        assert line.startswith("error: --from: must be a name") and "tcp_outlet" not in line
        line = _usage(cli, "tcp-inlet", "show", "x\x1b[31m", "--at", "n1")
        assert line.startswith("error: NAME: must be a name") and "tcp_inlet" not in line
        line = _usage(cli, "relay", "show", "a b", "--at", "n1")
        assert line.startswith("error: NAME: a relay name is") and "relay.show" not in line
        # the control API keeps naming its own parameters
        with pytest.raises(UsageError, match=r"^tcp_outlet\.create 'from' must be a name"):
            ControlClient.for_node("n1", home).request(
                "tcp_outlet.create", {"to": "127.0.0.1:5432", "from": "bad name"})
    finally:
        stop_all_nodes(home)


def test_cli_usage_message_maps_only_known_parameters() -> None:
    assert cli_usage_message("tcp_inlet.delete", "tcp_inlet.delete 'name' must be a name") == \
        "NAME: must be a name"
    assert cli_usage_message("tcp_inlet.create", "'authorized' must be a list") == \
        "--authorized: must be a list"
    assert cli_usage_message("relay.create", "relay.create 'name': a relay name is …") == \
        "NAME: a relay name is …"
    for method, message in [("tcp_inlet.show", "tcp_outlet.show 'name' must be a name"),
                            ("relay.create", "relay.create 'wait' must be true or false"),
                            ("stream.create", "stream.create 'name' must be a name"),
                            ("relay.create", "relay x was not registered within 30s")]:
        assert cli_usage_message(method, message) == message


def test_a_bad_address_is_escaped_once(cli: Cli) -> None:
    line = _usage(cli, "tcp-outlet", "create", "--at", "n1", "--to", "h\x1b]0;pwn\x07:80")
    assert line == "error: --to: invalid TCP address 'h\\x1b]0;pwn\\x07:80': bad host"
    line = _usage(cli, "tcp-inlet", "create", "--at", "n1", "--from", "h\x9b1m:80", "--to",
                  "/node/n1/service/outlet")
    assert line == "error: --from: invalid TCP address 'h\\x9b1m:80': bad host"


def test_policy_text_is_escaped_once_and_alike_everywhere(cli: Cli) -> None:
    expression = '(= subject.x "a\\u{1b}[31mb\\nc\\u{9b}d\\u{202e}e")'
    shown = '(= subject.x "a\\u{1b}[31mb\\nc\\u{9b}d\\u{202e}e")'  # the policy, as written
    created = cli("policy", "create", "--resource", "r1", "--allow", expression).out
    assert created == f"Set the policy of resource r1 at node default: {shown}"
    assert cli("policy", "show", "--resource", "r1").out == shown
    assert cli("policy", "list").out == f"resource\tr1\t{shown}"
    assert cli("policy", "lint", expression).out == shown
    assert cli.json("policy", "show", "--resource", "r1")["expression"] == \
        '(= subject.x "a\\u{1b}[31mb\\nc\x9bd\u202ee")'  # JSON: exact
    tested = cli("policy", "test", "--resource", "r1", "--env", "subject.x=y", "--explain").out
    assert '"a\\u{1b}[31mb\\nc\\u{9b}d\\u{202e}e"' in tested
    assert all(c == "\n" or 0x20 <= ord(c) < 0x7F for c in created + tested)


def test_hosted_and_created_together_are_a_usage_error(cli: Cli) -> None:
    for verb in ("show", "delete"):
        line = _usage(cli, "relay", verb, "bank", "--at", "bank1", "--hosted", "--created")
        assert line == (f"error: give --hosted or --created, not both (see: truststack relay "
                        f"{verb} --help)")
