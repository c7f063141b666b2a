"""Credentials and policies compose (issue 10, item 4): a verified credential's attributes reach
``subject.*``; attributes that are not UTF-8 are dropped, listed and explained; ``policies/``
still imports nothing from ``trust/``; the documented three lines run."""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import pytest

from policies import Environment, Policy, TextAttributes, text_attributes
from tests.credentials.helpers import NOW, make_world, run
from trust.credentials.verification import VerifiedCredential, verify_credential

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Policy.parse('(and (= subject.role "admin") (= subject.has_credential true))')


def _verified(attributes: dict[bytes, bytes]) -> VerifiedCredential:
    world = run(make_world())
    cpk = run(world.issue(attributes))  # type: ignore[arg-type]
    return verify_credential(cpk, [world.issuer], now=NOW)


def test_the_bytes_a_credential_carries_reach_the_policy() -> None:
    v = _verified({b"role": b"admin", b"level": b"3"})
    assert v.attributes == {b"role": b"admin", b"level": b"3"}  # bytes stay available
    # before: every bytes key was dropped and the policy denied without a word
    env = Environment.build(identifier=v.subject, has_credential=True, subject=v.attributes)
    assert env.dropped == () and env["subject.role"] == "admin"
    assert ADMIN.evaluate(env)
    subject = v.policy_subject()
    assert subject == {"role": "admin", "level": "3"} and isinstance(subject, TextAttributes)
    assert all(type(k) is str and type(x) is str for k, x in subject.items())
    env = Environment.build(identifier=v.subject, has_credential=True, subject=subject)
    assert ADMIN.evaluate(env) and Policy.parse("(>= subject.level 3)").evaluate(env)


def test_attributes_that_are_not_utf8_are_dropped_listed_and_explained() -> None:
    v = _verified({b"role": b"\xffadmin", b"t\xfeam": b"blue", b"level": b"3"})
    subject = v.policy_subject()
    assert dict(subject) == {"level": "3"}
    assert subject.dropped == ("role", "t\\xfeam")
    for attrs in (subject, v.attributes):
        env = Environment.build(identifier=v.subject, has_credential=True, subject=attrs)
        assert set(env.dropped) == {"subject.role", "subject.t\\xfeam"}
        assert "subject.role" not in env
        assert ADMIN.evaluate(env) is False
        why = ADMIN.explain(env)
        assert why.outcome == "unknown"
        assert "subject.role is missing: the environment dropped it" in why.reason  # type: ignore[operator]
        assert set(why.to_dict()["dropped"]) == {"subject.role", "subject.t\\xfeam"}
        assert "dropped from the environment" in why.render()
    # with a schema too: a value that is not UTF-8 is dropped, never a schema error
    env = Environment.build(subject=v.attributes, schema={"role": "string", "level": "int"})
    assert env["subject.level"] == 3 and "subject.role" in env.dropped


def test_text_attributes_and_their_display() -> None:
    mixed: dict[str | bytes, str | bytes] = {b"a": b"1", "b": "2", b"\x1b[31m\xff": b"x"}
    t = text_attributes(mixed)
    assert dict(t) == {"a": "1", "b": "2"} and t.dropped == ("\x1b[31m\\xff",)
    env = Environment.build(subject=t)
    rendered = Policy.parse("subject.a").explain(env).render()
    assert "\x1b" not in rendered and "\\u{1b}[31m\\xff" in rendered
    # an empty map of dropped attributes still reports them
    assert Environment.build(subject=text_attributes({b"x": b"\xff"})).dropped == ("subject.x",)
    assert Environment.build(resource=text_attributes({b"x": b"\xff"})).dropped == (
        "resource.x",)


def test_policies_imports_nothing_from_trust() -> None:
    for path in (ROOT / "policies").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in ("trust", "vaults"), f"{path}: imports {n}"


def _python_blocks(page: str, after: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text()
    section = text[text.index(after):]
    section = section.split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _run(code: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<docs>", "exec"), {"__name__": "__docs__"})
    return out.getvalue().splitlines()


def test_the_credentials_page_goes_from_credential_to_decision() -> None:
    [block] = _python_blocks("credentials.md", "### From a verified credential to a policy")
    three = [ln for ln in block.splitlines() if ln.startswith(("verified = ", "env = ", "allowed = "))]
    assert len(three) == 3 and "policy_subject()" in three[1]
    assert _run(block) == ["True {b'role': b'admin'} {'role': 'admin'}"]


def test_the_policies_page_shows_the_same_three_lines_and_runs_its_example() -> None:
    fragment, example = _python_blocks("policies.md", "**From a verified credential.**")
    [cred] = _python_blocks("credentials.md", "### From a verified credential to a policy")
    for line in fragment.strip().splitlines():
        assert line in cred, line
    assert _run(example) == ["('subject.team',)", "True",
                             "subject.team is missing: the environment dropped it (not UTF-8, "
                             "reserved or not a policy value)"]


@pytest.mark.parametrize("value", [b"admin", "admin"])
def test_build_accepts_text_and_bytes_alike(value: bytes | str) -> None:
    env = Environment.build(subject={"role": value}, resource={b"env": b"prod"})
    assert env["subject.role"] == "admin" and env["resource.env"] == "prod"
