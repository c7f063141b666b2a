"""The environment builder: reserved names, attribute keys, schemas, value normalisation."""

from __future__ import annotations

import enum

import pytest

from policies import SCHEMA_TYPES, Environment, Policy, PolicyError
from policies.environment import check_schema, convert

ID = "I" + "3f" * 32
VICTIM = "I" + "0a" * 32


def test_build_sets_every_name() -> None:
    env = Environment.build(identifier=ID, has_credential=True, subject={"role": "admin"},
                            resource_id="web", resource_type="tcp-outlet",
                            resource={"env": "prod"}, action="handle_message",
                            action_attributes={"kind": "read"}, now=1_700_000_000,
                            env={"node": "n1"})
    assert dict(env) == {
        "subject.identifier": ID, "subject.has_credential": True, "subject.role": "admin",
        "resource.id": "web", "resource.type": "tcp-outlet", "resource.env": "prod",
        "action.id": "handle_message", "action.kind": "read", "env.now": 1_700_000_000,
        "env.node": "n1",
    }
    assert env.dropped == ()
    assert len(env) == 10 and "subject.role" in env and env["resource.env"] == "prod"
    assert env.get("subject.nope") is None
    assert env.to_dict()["subject.role"] == "admin"


def test_now_defaults_to_the_clock() -> None:
    import time

    before = int(time.time())
    now = Environment.build()["env.now"]
    assert isinstance(now, int) and before <= now <= int(time.time())
    with pytest.raises(PolicyError):
        Environment.build(now="soon")  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["identifier", "has_credential"])
def test_credential_attributes_cannot_override_reserved_subject_names(key: str) -> None:
    forged: dict[str, object] = {key: VICTIM if key == "identifier" else True, "role": "member"}
    env = Environment.build(identifier=ID, has_credential=False, subject=forged)
    assert env["subject.identifier"] == ID
    assert env["subject.has_credential"] is False
    assert f"subject.{key}" in env.dropped
    assert env["subject.role"] == "member"
    assert not Policy.parse(f'(= subject.identifier "{VICTIM}")').evaluate(env)
    assert not Policy.parse("(= subject.has_credential true)").evaluate(env)


def test_reserved_names_stay_unset_when_not_given() -> None:
    env = Environment.build(subject={"identifier": VICTIM, "has_credential": "true"})
    assert "subject.identifier" not in env and "subject.has_credential" not in env
    assert set(env.dropped) == {"subject.identifier", "subject.has_credential"}
    assert Policy.parse(f'(= subject.identifier "{VICTIM}")').truth(env) is None


def test_other_namespaces_keep_their_reserved_names() -> None:
    env = Environment.build(resource_id="web", resource_type="tcp-outlet",
                            resource={"id": "admin-panel", "type": "x", "env": "prod"},
                            action="handle_message", action_attributes={"id": "delete"},
                            now=5, env={"now": 10**12})
    assert env["resource.id"] == "web" and env["resource.type"] == "tcp-outlet"
    assert env["action.id"] == "handle_message" and env["env.now"] == 5
    assert set(env.dropped) == {"resource.id", "resource.type", "action.id", "env.now"}


def test_unusable_keys_and_values_are_dropped() -> None:
    env = Environment.build(subject={"with space": "x", "": "y", "ok-key.v2": "z",
                                     "obj": object(), "none": None, 7: "seven"})
    assert dict(env) == {"subject.ok-key.v2": "z", "env.now": env["env.now"]}
    assert {"subject.with space", "subject.", "subject.obj", "subject.7"} <= set(env.dropped)
    assert "subject.none" not in env and "subject.none" not in env.dropped


def test_values_are_normalised() -> None:
    class Color(enum.Enum):
        RED = 1

    class Level(enum.IntEnum):
        HIGH = 3

    env = Environment.build(subject={"groups": ["a", "b"], "tags": {"y", "x"}, "b": b"bytes",
                                     "level": Level.HIGH, "bad": b"\xff", "c": Color.RED,
                                     "nested": [[1, 2], (3,)]})
    assert env["subject.groups"] == ("a", "b")
    assert env["subject.tags"] == ("x", "y")
    assert env["subject.b"] == "bytes"
    assert env["subject.level"] == 3 and type(env["subject.level"]) is int
    assert env["subject.nested"] == ((1, 2), (3,))
    assert {"subject.bad", "subject.c"} <= set(env.dropped)
    assert Policy.parse('(member? "b" subject.groups)').evaluate(env)


def test_schema_types_string_attributes() -> None:
    schema = {"age": "int", "score": "float", "admin": "bool", "groups": "list", "name": "string"}
    env = Environment.build(subject={"age": "42", "score": "2.5", "admin": "TRUE",
                                     "groups": "dev, ops ,qa", "name": "7"}, schema=schema)
    assert env["subject.age"] == 42
    assert env["subject.score"] == 2.5
    assert env["subject.admin"] is True
    assert env["subject.groups"] == ("dev", "ops", "qa")
    assert env["subject.name"] == "7"
    assert Policy.parse('(and (>= subject.age 18) (member? "ops" subject.groups) '
                        "subject.admin)").evaluate(env)
    assert Policy.parse('(contains? subject.groups "ops")').evaluate(env)
    assert Policy.parse('(= subject.name 7)').evaluate(env)  # a string still reads as a number
    empty = Environment.build(subject={"groups": ""}, schema={"groups": "list"})
    assert empty["subject.groups"] == ()


@pytest.mark.parametrize(("kind", "value"), [
    ("int", "4.5"), ("int", "x"), ("int", True), ("float", "nan"), ("float", "abc"),
    ("bool", "yes"), ("bool", 1), ("string", 5), ("list", 5),
])
def test_schema_mismatch_is_an_error_or_dropped(kind: str, value: object) -> None:
    with pytest.raises(PolicyError, match="attribute 'a'"):
        Environment.build(subject={"a": value}, schema={"a": kind})
    env = Environment.build(subject={"a": value}, schema={"a": kind}, strict=False)
    assert "subject.a" not in env and "subject.a" in env.dropped
    assert Policy.parse('(= subject.a "x")').truth(env) is None  # fails closed


def test_schema_validation() -> None:
    assert check_schema({"a": "int"}) == {"a": "int"}
    assert {"string", "int", "float", "bool", "list"} == SCHEMA_TYPES
    with pytest.raises(PolicyError, match="type must be one of"):
        check_schema({"a": "integer"})
    with pytest.raises(PolicyError, match="unknown type"):
        Environment.build(subject={"a": "1"}, schema={"a": "date"})
    assert convert(3, "float") == 3.0 and convert(["a"], "list") == ("a",)


def test_environment_of_full_names() -> None:
    env = Environment.of({"subject.role": "admin", "resource.tags": ["a"], "missing": None})
    assert dict(env) == {"subject.role": "admin", "resource.tags": ("a",)}
    assert Environment.of(env) is env
    with pytest.raises(PolicyError, match="invalid attribute name"):
        Environment.of({"has space": 1})
    with pytest.raises(PolicyError, match="not a policy value"):
        Environment.of({"subject.x": object()})


def test_builder_argument_types() -> None:
    with pytest.raises(PolicyError, match="identifier must be a string"):
        Environment.build(identifier=b"I00")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="has_credential must be a bool"):
        Environment.build(has_credential="true")  # type: ignore[arg-type]


def test_plain_mappings_are_accepted_by_evaluate() -> None:
    policy = Policy.parse('(member? "a" subject.g)')
    assert policy.evaluate({"subject.g": ["a", "b"]})
    assert policy.truth({}) is None
    assert policy.explain({"subject.g": ["c"]}).result is False
