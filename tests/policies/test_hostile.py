"""Hostile policies and values (issue 9, items 12 and 13): one semantics for evaluate(),
authorize(), truth() and explain (what ``policy test`` shows); typed errors with line and column
for oversize numbers; a policy whose canonical form is over the limits is refused, not stored."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Environment, InMemoryPolicyRepository, Policy, PolicyError, authorize
from policies.lexer import MAX_DEPTH, MAX_POLICY_CHARS
from tests.conftest import Cli, assert_one_line_error

NAN_POLICIES = [
    "(= subject.x nan)", "(!= subject.x nan)", "(< subject.x nan)", "(> nan subject.x)",
    "(<= subject.x nan)", "(>= subject.missing nan)", "(!= nan subject.x)",
    "(not (< subject.x nan))", "(not (= subject.x nan))", "(if (< subject.x nan) true false)",
    "(= subject.x subject.y nan)", "(< subject.x nan 1)", "(member? subject.x [nan])",
    "(member? nan [subject.x 1.5])", "(or (< subject.x nan) (= subject.y \"a\"))",
    "(and (!= subject.x nan) true)", "(or (< subject.missing nan) true)",
]
ENVS: list[dict[str, Any]] = [
    {}, {"subject.x": "1"}, {"subject.x": 1.5}, {"subject.x": float("nan")},
    {"subject.x": "abc"}, {"subject.x": (1,)}, {"subject.y": "a"}, {"subject.x": True},
]


def _all_agree(policy: Policy, values: dict[str, Any]) -> bool | None:
    env = Environment.of(values)
    result = policy.truth(env)
    assert result in (True, False, None)
    assert policy.explain(env).result is result
    assert policy.evaluate(env) is (result is True)
    repo = InMemoryPolicyRepository()
    asyncio.run(repo.set_policy(policy, resource="r"))
    assert asyncio.run(authorize(repo, env, "r")) is (result is True)
    return result


@pytest.mark.parametrize("text", NAN_POLICIES)
def test_nan_beside_missing_attributes_has_one_semantics(
        text: str, caplog: pytest.LogCaptureFixture) -> None:
    policy = Policy.parse(text)
    with caplog.at_level(logging.DEBUG, logger="policies"):
        for values in ENVS:
            _all_agree(policy, values)
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_a_comparison_with_nan_and_a_missing_attribute_is_unknown() -> None:
    for text in ("(!= subject.x nan)", "(not (< subject.x nan))", "(!= nan subject.x)"):
        assert _all_agree(Policy.parse(text), {}) is None, text  # before: allowed, or TypeError
    assert _all_agree(Policy.parse("(!= subject.x nan)"), {"subject.x": "1"}) is True


ops = st.sampled_from(["=", "!=", "<", ">", "<=", ">="])
literals = st.one_of(st.just("nan"), st.just("-nan"), st.just("inf"), st.just("1"),
                     st.just("2.5"), st.just('"1"'), st.just("true"), st.just('"x"'))
values = st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-3, 3), st.booleans(),
                   st.sampled_from(["1", "2.5", "nan", "x", "true", ""]),
                   st.tuples(st.integers(0, 2)))


@settings(max_examples=400, deadline=None)
@given(ops, literals, values, st.booleans())
def test_name_against_literal_matches_explain(op: str, lit: str, v: Any, swap: bool) -> None:
    args = f"{lit} subject.x" if swap else f"subject.x {lit}"
    policy = Policy.parse(f"({op} {args})")
    _all_agree(policy, {} if v is None else {"subject.x": v})


def test_policy_test_agrees_with_evaluate_on_nan(cli: Cli) -> None:
    # before: evaluate() raised TypeError inside and denied, while policy test said allowed
    text = "(or (< subject.missing nan) true)"
    assert cli.json("policy", "test", "--allow", text)["allowed"] is True
    assert Policy.parse(text).evaluate({}) is True
    for text in ("(!= subject.x nan)", "(not (< subject.x nan))", "(!= subject.x nan)"):
        out = cli.json("policy", "test", "--allow", text)
        assert out["allowed"] is Policy.parse(text).evaluate({}) is False
        assert out["result"] == "unknown" and "subject.x is missing" in out["reason"]
    out = cli.json("policy", "test", "--allow", "(!= subject.x nan)", "--env", "subject.x=1")
    assert out["allowed"] is True


BIG = "9" * 5000
NUMBERS = [
    (f"(= subject.x {BIG})", "longer than 400 characters"),
    (f"(= subject.x -{BIG})", "longer than 400 characters"),
    (f"(= subject.x 0x{BIG})", "longer than 400 characters"),
    (f"(= subject.x 1.{BIG})", "longer than 400 characters"),
    (f"(= subject.x 1e{BIG})", "longer than 400 characters"),
    ("(= subject.x 0x1p99999)", "out of range"),
    ("(= subject.x -0x1.8p1024)", "out of range"),
    ("(= subject.x 1e999)", "out of range"),
    ("(= subject.x -1e400)", "out of range"),
    ("(= subject.x 9223372036854775808)", "64-bit"),
    ("(= subject.x 0x1_0000_0000_0000_0000)", "64-bit"),
]


@pytest.mark.parametrize(("text", "message"), NUMBERS)
def test_oversize_numbers_are_policy_errors_with_a_position(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as e:
        Policy.parse(text)
    assert (e.value.line, e.value.column) == (1, 14)
    assert len(str(e.value)) < 200  # the literal is shortened in the message
    with pytest.raises(PolicyError):
        Policy.parse(f"= subject.x {text[13:-1]}")  # the shorthand form too


def test_numbers_within_the_limits_still_parse() -> None:
    assert Policy.parse("(= subject.x 1e308)").text == "(= subject.x 1e+308)"
    assert Policy.parse("(= subject.x inf)").text == "(= subject.x +inf)"
    assert Policy.parse("(= subject.x 9223372036854775807)").text.endswith("807)")
    assert Policy.parse(f"(= subject.x 0.{'0' * 380}1)").text == "(= subject.x 0.0)"


@pytest.mark.parametrize("command", ["lint", "test", "create"])
def test_cli_oversize_numbers_are_one_line_errors(cli: Cli, tmp_path: Path, command: str) -> None:
    path = tmp_path / "p.txt"
    for text, message in (NUMBERS[0], NUMBERS[5]):
        path.write_text(text)
        args = {"lint": ["policy", "lint", f"@{path}"],
                "test": ["policy", "test", "--file", str(path)],
                "create": ["policy", "create", "--resource", "web", "--file", str(path)]}[command]
        r = cli(*args, ok=False)
        assert_one_line_error(r, "1:14", message)
        assert "internal" not in r.stderr
    assert cli.json("policy", "list") == []


def _too_long_canonical() -> str:
    # `a or b or ...`: each short name becomes (= subject.xN "true") in the canonical form
    names = []
    size = 0
    i = 0
    while size < MAX_POLICY_CHARS - 20:
        names.append(f"x{i}")
        size += len(names[-1]) + 4
        i += 1
    text = " or ".join(names)
    assert len(text) <= MAX_POLICY_CHARS
    return text


def test_canonical_form_over_the_length_limit_is_refused() -> None:
    with pytest.raises(PolicyError, match="canonical form"):
        Policy.parse(_too_long_canonical())


def test_canonical_form_over_the_depth_limit_is_refused() -> None:
    ok = "not " * (MAX_DEPTH - 1) + "a"
    assert Policy.parse(Policy.parse(ok).text) == Policy.parse(ok)
    with pytest.raises(PolicyError, match="nests 129 levels"):
        Policy.parse("not " * MAX_DEPTH + "a")


def test_create_refuses_what_could_not_be_read_back(cli: Cli, tmp_path: Path) -> None:
    cli("policy", "create", "--resource", "db", "--allow", "role=\"admin\"")
    path = tmp_path / "long.txt"
    path.write_text(_too_long_canonical())
    r = cli("policy", "create", "--resource", "web", "--file", str(path), ok=False)
    assert_one_line_error(r, "canonical form")
    r = cli("policy", "create", "--resource", "web", "--allow", "not " * MAX_DEPTH + "a", ok=False)
    assert_one_line_error(r, "canonical form")
    # nothing was stored, and the node's other policies still show, list and test
    assert [e["resource"] for e in cli.json("policy", "list")] == ["db"]
    assert cli("policy", "show", "--resource", "db").out == '(= subject.role "admin")'
    out = cli.json("policy", "test", "--resource", "db", "--env", "subject.role=admin")
    assert out["allowed"] is True
    cli("policy", "show", "--resource", "web", ok=False)


def test_json_lint_reports_the_position(cli: Cli) -> None:
    r = cli("policy", "lint", "(= subject.x 1e999)", "--output", "json", ok=False)
    assert json.loads(r.stdout)["error"]["column"] == 14


def test_the_attribute_name_cache_is_bounded_by_size() -> None:
    from policies.environment import key_cache_size

    for i in range(300):
        long_name = f"a{i}" + "x" * 100_000
        env = Environment.build(subject={long_name: "1", f"k{i}": "2"})
        assert env[f"subject.{long_name}"] == "1"
    # before: every distinct key was kept (300 x 100 KB here), now only short ones
    assert key_cache_size() < 4096 * 2 * (128 + 16)
