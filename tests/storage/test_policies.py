"""Policy stores: the in-memory one (policies/) and the SQL one on every engine, through the same
tests; then what only the SQL one does (reopening, cross-object and cross-process cache
invalidation)."""

from __future__ import annotations

import time
from collections.abc import Callable
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
from tests.storage.conftest import ENGINES, SHARED, Run, engine_url
from trust.errors import StorageError
from trust.storage import Storage, open_storage
from trust.storage.policies import SqlPolicyRepository

ADMIN = Policy.parse('(= subject.role "admin")')
CRED = Policy.parse("(= subject.has_credential true)")
OPS = Policy.parse('role="ops"')


@pytest.fixture(params=["objects", *ENGINES])
def store(request: pytest.FixtureRequest, tmp_path: Path, run: Run[Any]) -> PolicyRepository:
    """``objects``: InMemoryPolicyRepository; the others: the SQL store on that engine."""
    if request.param == "objects":
        return InMemoryPolicyRepository()
    storage = open_storage(engine_url(request.param, tmp_path, request))
    run(storage.open())
    request.addfinalizer(lambda: run(storage.close()))
    return storage.policies


def test_implements_the_protocol(store: PolicyRepository, run: Run[Any]) -> None:
    assert isinstance(store, PolicyRepository)


def test_set_get_replace_delete(store: PolicyRepository, run: Run[Any]) -> None:
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


def test_scopes_keep_policies_apart(store: PolicyRepository, run: Run[Any]) -> None:
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


def test_lookup_order_resource_then_type_then_default(store: PolicyRepository, run: Run[Any]) -> None:
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


def test_a_resource_named_like_a_type_is_still_a_resource(store: PolicyRepository, run: Run[Any]) -> None:
    run(store.set_policy(ADMIN, resource="tcp-outlet"))
    assert run(store.get_policy(resource_type="tcp-outlet")) is None
    assert run(store.policy_for("other", "tcp-outlet")) is None
    assert run(store.policy_for("tcp-outlet")) == ADMIN


def test_list_orders_resources_then_types(store: PolicyRepository, run: Run[Any]) -> None:
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
                                    needle: str, run: Run[Any]) -> None:
    with pytest.raises(PolicyError, match=needle):
        run(store.set_policy(ADMIN, **kwargs))
    with pytest.raises(PolicyError, match=needle):
        run(store.get_policy(**kwargs))
    assert run(store.list_policies()) == []


def test_bad_policies_are_rejected_before_storing(store: PolicyRepository, run: Run[Any]) -> None:
    with pytest.raises(PolicyError, match="1:3"):
        run(store.set_policy("(=", resource="web"))
    with pytest.raises(PolicyError, match="expected a Policy"):
        run(store.set_policy(42, resource="web"))  # type: ignore[arg-type]
    assert run(store.get_policy(resource="web")) is None


def test_authorize(store: PolicyRepository, run: Run[Any]) -> None:
    run(store.set_policy(CRED, resource_type="tcp-outlet"))
    run(store.set_policy(ADMIN, resource="admin-panel"))
    member = Environment.build(has_credential=True, subject={"role": "member"})
    assert run(authorize(store, member, "web", "tcp-outlet")) is True
    assert run(authorize(store, member, "admin-panel", "tcp-outlet")) is False
    assert run(authorize(store, member, "web")) is False  # no policy at all: deny
    assert run(authorize(store, member, "web", default=Policy.allow_all())) is True


# -- the SQL store only ----------------------------------------------------------------------


@pytest.mark.parametrize("engine", SHARED)
def test_policies_survive_reopening(url: str, run: Run[Any]) -> None:
    async def go() -> None:
        async with open_storage(url) as storage:
            s = storage.policies
            await s.set_policy(ADMIN, resource="web", scope="n1", now=7)
            await s.set_policy(CRED, resource_type="tcp-outlet", scope="n1")
        async with open_storage(url) as storage:
            s = storage.policies
            assert await s.policy_for("web", "tcp-outlet", scope="n1") == ADMIN
            assert await s.policy_for("db", "tcp-outlet", scope="n1") == CRED
            entry = await s.get_policy(resource="web", scope="n1")
            assert entry is not None and entry.updated_at == 7
            assert len(await s.list_policies(scope="n1")) == 2

    run(go())


def wait_until(check: Callable[[], bool], limit: float) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, f"not seen within {limit} s"
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.mark.parametrize("engine", SHARED)
@pytest.mark.parametrize("shared_connection", [False, True])
def test_a_change_through_one_store_is_seen_through_another_within_1s(
        url: str, shared_connection: bool, run: Run[Any]) -> None:
    storage_a = open_storage(url)
    storage_b = storage_a if shared_connection else open_storage(url)
    try:
        a = storage_a.policies
        b = SqlPolicyRepository(storage_b.db)  # another store object
        run(a.set_policy(ADMIN, resource="web"))
        assert run(b.policy_for("web")) == ADMIN  # b now caches the compiled policy
        run(a.set_policy(OPS, resource="web"))
        wait_until(lambda: run(b.policy_for("web")) == OPS, 1.0)
        run(a.delete_policy(resource="web"))
        wait_until(lambda: run(b.policy_for("web")) is None, 1.0)
        run(a.set_policy(CRED, resource_type="t"))  # a cached miss must not hide a new policy
        wait_until(lambda: run(b.policy_for("web", "t")) == CRED, 1.0)
    finally:
        run(storage_a.close())
        run(storage_b.close())


@pytest.mark.parametrize("engine", SHARED)
def test_the_cache_is_only_rechecked_every_interval(url: str, run: Run[Any]) -> None:
    now = [0.0]
    storage_a, storage_b = open_storage(url), open_storage(url)
    try:
        a = storage_a.policies
        b = SqlPolicyRepository(storage_b.db, recheck=0.25, clock=lambda: now[0])
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
    finally:
        run(storage_a.close())
        run(storage_b.close())


def test_a_change_from_another_process_is_seen_within_1s(cli: Any, home: Path,
                                                         run: Run[Any]) -> None:
    cli("policy", "create", "--resource", "web", "--allow", 'role="admin"')
    storage = open_storage(home=home)
    try:
        store = storage.policies
        assert run(store.policy_for("web")) == ADMIN
        cli("policy", "create", "--resource", "web", "--allow", 'role="ops"')
        wait_until(lambda: run(store.policy_for("web")) == OPS, 1.0)
        cli("policy", "delete", "--resource", "web")
        wait_until(lambda: run(store.policy_for("web")) is None, 1.0)
    finally:
        run(storage.close())


def test_a_corrupted_row_is_a_storage_error(storage: Storage, run: Run[Any]) -> None:
    async def go() -> None:
        s = storage.policies
        await s.set_policy(ADMIN, resource="web")
        await storage.db.execute(
            "UPDATE abac_policy SET expression = '(= subject.role' WHERE name = 'web'")
        with pytest.raises(StorageError, match="does not parse"):
            await s.get_policy(resource="web")
        with pytest.raises(StorageError, match="does not parse"):
            await SqlPolicyRepository(storage.db).policy_for("web")

    run(go())


@pytest.mark.parametrize("engine", ["memory"])
def test_the_compiled_policy_cache_is_bounded_by_size(storage: Storage, run: Run[Any]) -> None:
    """Lookups of many distinct long resource names (a peer picks them) keep the cache bounded."""
    store = storage.policies
    run(store.set_policy(ADMIN, resource_type="tcp-outlet"))
    peak = 0
    for i in range(400):
        name = f"r{i}-" + "x" * 200_000
        assert run(store.policy_for(name, "tcp-outlet")) == ADMIN
        peak = max(peak, store.cached_bytes)
    assert 0 < peak <= 32 * 1024 * 1024


def test_a_write_during_a_lookup_does_not_leave_a_stale_cache_entry(
        storage: Storage, run: Run[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A lookup that read the old policy while this store wrote a new one must not cache the old
    one (the write's version bump would hide it from the recheck for ever)."""
    import asyncio

    db = storage.db
    real_fetch_one = db.fetch_one
    written = asyncio.Event()

    async def slow_fetch_one(sql: str, params: Any = ()) -> Any:
        row = await real_fetch_one(sql, params)
        if "FROM abac_policy WHERE" in sql:
            await written.wait()  # the write lands between our read and our caching
        return row

    async def go() -> None:
        s = SqlPolicyRepository(db, recheck=3600)
        await s.set_policy(ADMIN, resource="web")
        monkeypatch.setattr(db, "fetch_one", slow_fetch_one)
        lookup = asyncio.create_task(s.policy_for("web"))
        await asyncio.sleep(0.05)
        await s.set_policy(OPS, resource="web")
        written.set()
        assert await lookup == ADMIN  # what it read
        monkeypatch.setattr(db, "fetch_one", real_fetch_one)
        assert await s.policy_for("web") == OPS

    run(go())
