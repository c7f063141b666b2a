"""``truststack policy ...`` through the real executable."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_one_line_error
from trust.node.files import pid_alive

ADMIN = '(= subject.role "admin")'


def test_create_show_list_delete(cli: Any) -> None:
    r = cli("policy", "create", "--resource", "web", "--allow", 'role="admin"')
    assert r.out == f"Set the policy of resource web at node default: {ADMIN}"
    created = cli.json("policy", "create", "--resource-type", "tcp-outlet", "--allow",
                       "(= subject.has_credential true)")
    assert created["node"] == "default" and created["resource"] is None
    assert created["resource_type"] == "tcp-outlet"
    assert created["expression"] == "(= subject.has_credential true)"
    assert isinstance(created["updated_at"], int) and created["warnings"] == []

    assert cli("policy", "show", "--resource", "web").out == ADMIN
    shown = cli.json("policy", "show", "--resource", "web")
    assert shown == {"node": "default", "resource": "web", "resource_type": None,
                     "expression": ADMIN, "updated_at": shown["updated_at"]}

    listed = cli.json("policy", "list")
    assert [(p["resource"], p["resource_type"]) for p in listed] == [("web", None),
                                                                     (None, "tcp-outlet")]
    plain = cli("policy", "list").out.splitlines()
    assert plain[0].split("\t") == ["resource", "web", '(= subject.role "admin")']
    assert plain[1].split("\t")[:2] == ["resource_type", "tcp-outlet"]

    deleted = cli.json("policy", "delete", "--resource", "web")
    assert deleted == {"deleted": True, "node": "default", "resource": "web",
                       "resource_type": None, "reloaded": False}
    r = cli("policy", "show", "--resource", "web", ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "no policy for resource web at node default")
    r = cli("policy", "delete", "--resource", "web", ok=False)
    assert_one_line_error(r, "no policy for resource web")
    assert cli("policy", "delete", "--resource-type", "tcp-outlet").out == (
        "Deleted the policy of resource type tcp-outlet at node default")
    assert cli.json("policy", "list") == []
    assert cli("policy", "list").out == ""


@pytest.fixture
def stopped_nodes(cli: Any, home: Path) -> Iterator[None]:
    """Nodes n1 and n2 exist (created, then stopped; killed at the end even on failure)."""
    try:
        for name in ("n1", "n2"):
            cli("node", "create", name)
            cli("node", "stop", name)
        yield
    finally:
        for name in ("n1", "n2"):
            cli("node", "stop", name, ok=None)
            with contextlib.suppress(OSError, ValueError):
                pid = int((home / "nodes" / name / "pid").read_text())
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_create_refuses_a_node_that_does_not_exist(cli: Any) -> None:
    r = cli("policy", "create", "--resource", "web", "--allow", "web", "--at", "n9", ok=False)
    assert_one_line_error(r, "no node named n9", "node create n9")
    r = cli("policy", "create", "--resource", "web", "--allow", "web", "--at", "bad name",
            ok=False)
    assert_one_line_error(r, "invalid node name")
    assert cli.json("policy", "list", "--at", "n9") == []
    # the default scope needs no node, named or not
    cli("policy", "create", "--resource", "web", "--allow", "web", "--at", "default")
    assert [p["node"] for p in cli.json("policy", "list")] == ["default"]


def test_nodes_keep_policies_apart(cli: Any, stopped_nodes: None) -> None:
    cli("policy", "create", "--resource", "web", "--allow", "web", "--at", "n1")
    cli("policy", "create", "--resource", "web", "--allow", "db", "--at", "n2")
    assert cli("policy", "show", "--resource", "web", "--at", "n1").out == (
        '(= subject.web "true")')
    assert cli("policy", "show", "--resource", "web", "--at", "n2").out == (
        '(= subject.db "true")')
    assert cli.json("policy", "list") == []
    assert [p["node"] for p in cli.json("policy", "list", "--at", "n2")] == ["n2"]
    assert_one_line_error(cli("policy", "show", "--resource", "web", ok=False), "node default")


def test_policy_text_from_a_file(cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "policy.txt"
    f.write_text(';; admins in production\n(and (= subject.role "admin")\n'
                 '     (= resource.env "prod"))\n')
    expected = '(and (= subject.role "admin") (= resource.env "prod"))'
    cli("policy", "create", "--resource", "a", "--allow", f"@{f}")
    cli("policy", "create", "--resource", "b", "--file", str(f))
    assert cli("policy", "show", "--resource", "a").out == expected
    assert cli("policy", "show", "--resource", "b").out == expected
    assert cli("policy", "lint", "--file", str(f)).out == expected
    r = cli("policy", "create", "--resource", "c", "--allow", "@" + str(tmp_path / "nope"),
            ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "cannot read the policy")


def test_create_errors(cli: Any) -> None:
    r = cli("policy", "create", "--resource", "web", "--allow", '(and (= subject.a "x")', ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "1:23", "expected ')' to close the '(' at 1:1")
    r = cli("policy", "create", "--allow", "web", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "exactly one of --resource and --resource-type")
    r = cli("policy", "create", "--resource", "a", "--resource-type", "b", "--allow", "web",
            ok=False)
    assert r.returncode == 2
    r = cli("policy", "create", "--resource", "a", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "missing policy")
    r = cli("policy", "create", "--resource", "has space", "--allow", "web", ok=False)
    assert_one_line_error(r, "whitespace")
    r = cli("policy", "create", "--resource", "a", "--allow", "web", "--output", "xml", ok=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert cli.json("policy", "list") == []


def test_create_warns_about_suspicious_policies(cli: Any) -> None:
    r = cli("policy", "create", "--resource", "web", "--allow", '(= rol.e "admin")')
    assert "warning: 1:4: unknown attribute namespace in 'rol.e'" in r.stderr
    data = cli.json("policy", "create", "--resource", "web", "--allow", '(= rol.e "admin")')
    assert len(data["warnings"]) == 1


def test_test_command(cli: Any) -> None:
    assert cli("policy", "test", "--allow", 'role="admin"', "--env",
               "subject.role=admin").out == "allowed"
    r = cli("policy", "test", "--allow", 'role="admin"', "--env", "subject.role=user")
    assert r.out == 'denied (false: subject.role is "user", not "admin")'
    assert r.returncode == 0
    r = cli("policy", "test", "--allow", 'role="admin"')
    assert r.out == "denied (unknown: subject.role is missing)"

    data = cli.json("policy", "test", "--allow", "(and (< subject.age 18) (= resource.env "
                    '"prod") (= action.id "read") (< env.now 100))', "--env", "subject.age=15",
                    "--env", "resource.env=prod", "--env", "action.id=read", "--time", "50")
    assert data["allowed"] is True and data["result"] == "true" and data["reason"] is None
    assert data["environment"] == {"subject.age": "15", "resource.env": "prod",
                                   "action.id": "read", "env.now": 50}
    assert data["dropped"] == [] and "explain" not in data

    data = cli.json("policy", "test", "--allow", "(and (= subject.has_credential true) "
                    f'(= subject.identifier "I{"ab" * 32}") (>= subject.level 3))',
                    "--env", "subject.has_credential=true", "--env", f"subject.identifier=I{'ab' * 32}",
                    "--env", "subject.level=2", "--explain")
    assert data["allowed"] is False and data["result"] == "false"
    tree = data["explain"]
    assert tree["result"] == "false"
    assert tree["reason"] == 'argument 3 is false: subject.level (the string "2") >= 3 is false'
    assert [c["result"] for c in tree["children"]] == ["true", "true", "false"]
    level = tree["children"][2]
    assert level["expression"] == "(>= subject.level 3)"
    assert level["children"] == [{"expression": "subject.level", "value": "2", "missing": False}]


def test_test_explain_plain(cli: Any) -> None:
    r = cli("policy", "test", "--allow", 'web and not (db or ops)', "--env", "subject.web=true",
            "--env", "subject.db=false", "--explain")
    lines = r.out.splitlines()
    assert lines[0].startswith("denied (unknown:")
    assert lines[1].startswith("unknown (and (= subject.web")
    assert any("subject.ops is missing" in ln for ln in lines)


def test_test_schema_and_lists(cli: Any) -> None:
    data = cli.json("policy", "test", "--allow", '(and (member? "ops" subject.groups) '
                    "(> subject.score 2.5))", "--env", "subject.groups=dev,ops",
                    "--env", "subject.score=3", "--schema", "groups=list",
                    "--schema", "score=float")
    assert data["allowed"] is True
    assert data["environment"]["subject.groups"] == ["dev", "ops"]
    assert data["environment"]["subject.score"] == 3.0
    r = cli("policy", "test", "--allow", "web", "--env", "subject.n=x", "--schema", "n=int",
            ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "attribute 'n'", "not a valid int")
    r = cli("policy", "test", "--allow", "web", "--schema", "n=date", ok=False)
    assert_one_line_error(r, "type must be one of")


def test_test_reserved_attributes_cannot_be_forged(cli: Any) -> None:
    data = cli.json("policy", "test", "--allow", "(= subject.has_credential true)",
                    "--env", "subject.has_credential=false")
    assert data["allowed"] is False
    r = cli("policy", "test", "--allow", "web", "--env", "subject.has_credential=yes", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "must be true or false")


@pytest.mark.parametrize(("args", "needle"), [
    (["--env", "role=admin"], "names start with subject."),
    (["--env", "subject.role"], "expects NAME=VALUE"),
    (["--env", "subject.a=1", "--env", "subject.a=2"], "given twice"),
    (["--time", "soon"], "unix seconds"),
    (["--time", "5", "--env", "env.now=6"], "either with --time or with --env env.now"),
    (["--resource", "web"], "not both"),
])
def test_test_usage_errors(cli: Any, args: list[str], needle: str) -> None:
    r = cli("policy", "test", "--allow", "web", *args, ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, needle)


def test_test_stored_policies(cli: Any) -> None:
    cli("policy", "create", "--resource-type", "tcp-outlet", "--allow",
        "(= subject.has_credential true)")
    cli("policy", "create", "--resource", "admin", "--allow", 'role="admin"')
    data = cli.json("policy", "test", "--resource", "web", "--resource-type", "tcp-outlet",
                    "--env", "subject.has_credential=true")
    assert data["allowed"] is True
    assert data["policy"] == {"node": "default", "resource": "web",
                              "resource_type": "tcp-outlet", "matched": "resource_type"}
    assert data["environment"]["resource.id"] == "web"
    assert data["environment"]["resource.type"] == "tcp-outlet"
    data = cli.json("policy", "test", "--resource", "admin", "--resource-type", "tcp-outlet",
                    "--env", "subject.has_credential=true")
    assert data["allowed"] is False and data["policy"]["matched"] == "resource"
    data = cli.json("policy", "test", "--resource", "web", "--at", "elsewhere")
    assert data["allowed"] is False and data["policy"]["matched"] is None
    assert data["expression"] is None
    r = cli("policy", "test", "--resource", "web")
    assert r.out == "denied: no policy for resource web at node default"


def test_lint(cli: Any) -> None:
    r = cli("policy", "lint", "web and not (db or ops)")
    assert r.out == ('(and (= subject.web "true") (not (or (= subject.db "true") '
                     '(= subject.ops "true"))))')
    data = cli.json("policy", "lint", '(and (= subject.role "admin")\n  (= foo.bar 1))')
    assert data["valid"] is True and data["grammar"] == "s-expression"
    assert data["warnings"] == [{"line": 2, "column": 6, "message": data["warnings"][0]["message"]}]
    assert "unknown attribute namespace in 'foo.bar'" in data["warnings"][0]["message"]
    r = cli("policy", "lint", '(= foo.bar 1)')
    assert r.out.splitlines()[1].startswith("warning: 1:4: unknown attribute namespace")

    r = cli("policy", "lint", "(and (= subject.a 1)\n     (frob 2))", ok=False)
    assert r.returncode == 1 and r.stdout == ""
    assert_one_line_error(r, "2:7", "unknown operator 'frob'")
    r = cli("policy", "lint", "web and", "--output", "json", ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "1:8")
    assert json.loads(r.stdout) == {"valid": False, "error": {
        "line": 1, "column": 8,
        "message": "expected a name, 'not' or '(', found the end of the policy"}}
    r = cli("policy", "lint", ok=False)
    assert r.returncode == 2


def test_policy_from_stdin(cli: Any) -> None:
    r = cli("policy", "lint", "-", input="(= subject.a 1)\n")
    assert r.out == "(= subject.a 1)"


@pytest.mark.parametrize("verb", ["create", "show", "list", "delete", "test", "lint"])
def test_every_command_has_help_with_an_example(cli: Any, verb: str) -> None:
    r = cli("policy", verb, "--help")
    assert "truststack policy" in r.out and "--output" in r.out


def test_test_subject_flags_without_a_node(cli: Any) -> None:
    ident = "I" + "5" * 64
    data = cli.json("policy", "test", "--allow",
                    f'(and (= subject.identifier "{ident}") subject.has_credential '
                    '(= subject.role "admin"))', "--identifier", ident, "--attribute", "role=admin")
    assert data["allowed"] is True
    assert data["environment"]["subject.has_credential"] is True
    data = cli.json("policy", "test", "--allow", "(= subject.has_credential true)",
                    "--identifier", ident)
    assert data["allowed"] is False  # no --has-credential, no --attribute: not set
    assert cli.json("policy", "test", "--allow", "(= subject.has_credential true)",
                    "--has-credential")["allowed"] is True
