"""Policy stores: the in-memory one and the SQLite one, through the same tests; then what only
SQLite does (reopening, cross-object and cross-process cache invalidation)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policies import (
    Environment,
    InMemoryPolicyRepository,
    Policy,
    PolicyError,
    PolicyRepository,
    authorize,
)
from trust.errors import StorageError
from trust.storage.database import Database
from trust.storage.policies import SqlitePolicyRepository

ADMIN = Policy.parse('(= subject.role "admin")')
CRED = Policy.parse("(= subject.has_credential true)")
OPS = Policy.parse('role="ops"')


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PolicyRepository]:
    if request.param == "memory":
        yield InMemoryPolicyRepository()
        return
    db = Database(tmp_path / "state.sqlite")
    try:
        yield SqlitePolicyRepository(db)
    finally:
        db.close()


def test_implements_the_protocol(store: PolicyRepository) -> None:
    assert isinstance(store, PolicyRepository)


def test_set_get_replace_delete(store: PolicyRepository) -> None:
    entry = run(store.set_policy(ADMIN, resource="web", now=100))
    assert (entry.scope, entry.kind, entry.name, entry.updated_at) == ("default", "resource",
                                                                        "web", 100)
    assert entry.to_dict() == {"node": "default", "resource": "web", "resource_type": None,
                               "expression": ADMIN.text, "updated_at": 100}
    got = run(store.get_policy(resource="web"))
    assert got is not None and got.policy == ADMIN and got.updated_at == 100
    run(store.set_policy('role="ops"', resource="web", now=200))
    got = run(store.get_policy(resource="web"))
    assert got is not None and got.policy == OPS and got.updated_at == 200
    assert run(store.get_policy(resource_type="web")) is None
    assert run(store.delete_policy(resource="web")) is True
    assert run(store.delete_policy(resource="web")) is False
    assert run(store.get_policy(resource="web")) is None


def test_scopes_keep_policies_apart(store: PolicyRepository) -> None:
    run(store.set_policy(ADMIN, resource="web"))
    run(store.set_policy(OPS, resource="web", scope="n1"))
    run(store.set_policy(CRED, resource_type="tcp-outlet", scope="n2"))
    assert run(store.get_policy(resource="web")).policy == ADMIN
    assert run(store.get_policy(resource="web", scope="n1")).policy == OPS
    assert run(store.get_policy(resource="web", scope="n2")) is None
    assert [e.name for e in run(store.list_policies())] == ["web"]
    assert [e.name for e in run(store.list_policies(scope="n2"))] == ["tcp-outlet"]
    assert run(store.policy_for("web", "tcp-outlet", scope="n2")) == CRED
    assert run(store.policy_for("web", "tcp-outlet", scope="n3")) is None
    assert run(store.delete_policy(resource="web", scope="n1")) is True
    assert run(store.get_policy(resource="web")).policy == ADMIN


def test_lookup_order_resource_then_type_then_default(store: PolicyRepository) -> None:
    fallback = Policy.deny_all()
    assert run(store.policy_for("web", "tcp-outlet")) is None
    assert run(store.policy_for("web", "tcp-outlet", default=fallback)) is fallback
    run(store.set_policy(CRED, resource_type="tcp-outlet"))
    assert run(store.policy_for("web", "tcp-outlet", default=fallback)) == CRED
    assert run(store.policy_for("web", default=fallback)) is fallback  # type unknown: no fallback
    run(store.set_policy(ADMIN, resource="web"))
    assert run(store.policy_for("web", "tcp-outlet", default=fallback)) == ADMIN
    assert run(store.policy_for("db", "tcp-outlet")) == CRED
    run(store.delete_policy(resource="web"))
    assert run(store.policy_for("web", "tcp-outlet")) == CRED
    run(store.delete_policy(resource_type="tcp-outlet"))
    assert run(store.policy_for("web", "tcp-outlet", default=fallback)) is fallback


def test_a_resource_named_like_a_type_is_still_a_resource(store: PolicyRepository) -> None:
    run(store.set_policy(ADMIN, resource="tcp-outlet"))
    assert run(store.get_policy(resource_type="tcp-outlet")) is None
    assert run(store.policy_for("other", "tcp-outlet")) is None
    assert run(store.policy_for("tcp-outlet")) == ADMIN


def test_list_orders_resources_then_types(store: PolicyRepository) -> None:
    run(store.set_policy(CRED, resource_type="b-type"))
    run(store.set_policy(ADMIN, resource="z"))
    run(store.set_policy(OPS, resource="a"))
    run(store.set_policy(CRED, resource_type="a-type"))
    entries = run(store.list_policies())
    assert [(e.kind, e.name) for e in entries] == [("resource", "a"), ("resource", "z"),
                                                   ("resource_type", "a-type"),
                                                   ("resource_type", "b-type")]
    assert entries[2].resource is None and entries[2].resource_type == "a-type"


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({}, "exactly one of"),
    ({"resource": "a", "resource_type": "b"}, "exactly one of"),
    ({"resource": ""}, "non-empty"),
    ({"resource": "has space"}, "whitespace"),
    ({"resource_type": "x" * 256}, "longer than 255"),
    ({"resource": "web", "scope": "bad\nnode"}, "whitespace or control"),
])
def test_bad_keys_are_policy_errors(store: PolicyRepository, kwargs: dict[str, Any],
                                    needle: str) -> None:
    with pytest.raises(PolicyError, match=needle):
        run(store.set_policy(ADMIN, **kwargs))
    with pytest.raises(PolicyError, match=needle):
        run(store.get_policy(**kwargs))
    assert run(store.list_policies()) == []


def test_bad_policies_are_rejected_before_storing(store: PolicyRepository) -> None:
    with pytest.raises(PolicyError, match="1:3"):
        run(store.set_policy("(=", resource="web"))
    with pytest.raises(PolicyError, match="expected a Policy"):
        run(store.set_policy(42, resource="web"))  # type: ignore[arg-type]
    assert run(store.get_policy(resource="web")) is None


def test_authorize(store: PolicyRepository) -> None:
    run(store.set_policy(CRED, resource_type="tcp-outlet"))
    run(store.set_policy(ADMIN, resource="admin-panel"))
    member = Environment.build(has_credential=True, subject={"role": "member"})
    assert run(authorize(store, member, "web", "tcp-outlet")) is True
    assert run(authorize(store, member, "admin-panel", "tcp-outlet")) is False
    assert run(authorize(store, member, "web")) is False  # no policy at all: deny
    assert run(authorize(store, member, "web", default=Policy.allow_all())) is True


# -- SQLite only ---------------------------------------------------------------------------


def test_policies_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with Database(path) as db:
        s = SqlitePolicyRepository(db)
        run(s.set_policy(ADMIN, resource="web", scope="n1", now=7))
        run(s.set_policy(CRED, resource_type="tcp-outlet", scope="n1"))
    with Database(path) as db:
        s = SqlitePolicyRepository(db)
        assert run(s.policy_for("web", "tcp-outlet", scope="n1")) == ADMIN
        assert run(s.policy_for("db", "tcp-outlet", scope="n1")) == CRED
        assert run(s.get_policy(resource="web", scope="n1")).updated_at == 7
        assert len(run(s.list_policies(scope="n1"))) == 2


def wait_until(check: Callable[[], bool], limit: float) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, f"not seen within {limit} s"
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.mark.parametrize("shared_connection", [False, True])
def test_a_change_through_one_store_is_seen_through_another_within_1s(
        tmp_path: Path, shared_connection: bool) -> None:
    path = tmp_path / "state.sqlite"
    db_a = Database(path)
    db_b = db_a if shared_connection else Database(path)
    try:
        a, b = SqlitePolicyRepository(db_a), SqlitePolicyRepository(db_b)
        run(a.set_policy(ADMIN, resource="web"))
        assert run(b.policy_for("web")) == ADMIN  # b now caches the compiled policy
        run(a.set_policy(OPS, resource="web"))
        wait_until(lambda: run(b.policy_for("web")) == OPS, 1.0)
        run(a.delete_policy(resource="web"))
        wait_until(lambda: run(b.policy_for("web")) is None, 1.0)
        run(a.set_policy(CRED, resource_type="t"))  # a cached miss must not hide a new policy
        wait_until(lambda: run(b.policy_for("web", "t")) == CRED, 1.0)
    finally:
        db_a.close()
        db_b.close()


def test_the_cache_is_only_rechecked_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    now = [0.0]
    with Database(path) as db_a, Database(path) as db_b:
        a = SqlitePolicyRepository(db_a)
        b = SqlitePolicyRepository(db_b, recheck=0.25, clock=lambda: now[0])
        assert run(b.policy_for("web")) is None  # a miss, cached
        run(a.set_policy(ADMIN, resource="web"))
        now[0] = 0.1
        assert run(b.policy_for("web")) is None  # within the interval: still the cached miss
        now[0] = 0.3
        assert run(b.policy_for("web")) == ADMIN
        run(a.set_policy(OPS, resource="web"))
        now[0] = 0.4
        assert run(b.policy_for("web")) == ADMIN  # within the interval: the cached policy
        now[0] = 0.6
        assert run(b.policy_for("web")) == OPS
        run(b.set_policy(CRED, resource="web"))  # own writes are seen at once
        assert run(b.policy_for("web")) == CRED


def test_a_change_from_another_process_is_seen_within_1s(cli: Any, home: Path) -> None:
    cli("policy", "create", "--resource", "web", "--allow", 'role="admin"')
    with Database.open_home(home) as db:
        store = SqlitePolicyRepository(db)
        assert run(store.policy_for("web")) == ADMIN
        cli("policy", "create", "--resource", "web", "--allow", 'role="ops"')
        wait_until(lambda: run(store.policy_for("web")) == OPS, 1.0)
        cli("policy", "delete", "--resource", "web")
        wait_until(lambda: run(store.policy_for("web")) is None, 1.0)


def test_a_corrupted_row_is_a_storage_error(tmp_path: Path) -> None:
    with Database(tmp_path / "state.sqlite") as db:
        s = SqlitePolicyRepository(db)
        run(s.set_policy(ADMIN, resource="web"))
        db.execute("UPDATE abac_policy SET expression = '(= subject.role' WHERE name = 'web'")
        with pytest.raises(StorageError, match="does not parse"):
            run(s.get_policy(resource="web"))
        with pytest.raises(StorageError, match="does not parse"):
            run(SqlitePolicyRepository(db).policy_for("web"))


def test_the_compiled_policy_cache_is_bounded_by_size(tmp_path: Path) -> None:
    """Lookups of many distinct long resource names (a peer picks them) keep the cache bounded."""
    db = Database(tmp_path / "state.sqlite")
    try:
        store = SqlitePolicyRepository(db)
        run(store.set_policy(ADMIN, resource_type="tcp-outlet"))
        peak = 0
        for i in range(400):
            name = f"r{i}-" + "x" * 200_000
            assert run(store.policy_for(name, "tcp-outlet")) == ADMIN
            peak = max(peak, store.cached_bytes)
        assert 0 < peak <= 32 * 1024 * 1024
    finally:
        db.close()
