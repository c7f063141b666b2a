"""SQL implementation (SQLite and PostgreSQL) of :class:`policies.PolicyRepository`.

Tables: ``abac_policy`` (one row per (node, kind, name), the canonical expression text) and
``abac_policy_version`` (one counter row, bumped in the same transaction as every write).

Compiled policies are cached per store object. The cache is dropped when this object writes, and
when the version counter moved, which is read at most every ``recheck`` seconds (default 0.25 s):
a change made through another store object (another connection, another process) is seen within
that time. Lookups in between are dictionary reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from policies import Policy, PolicyEntry
from policies.errors import PolicyError
from policies.repository import DEFAULT_SCOPE, Kind, as_policy, check_name, target
from trust.errors import StorageError
from trust.storage.sql import Database, Migration, Transaction

__all__ = ["MIGRATIONS", "SqlPolicyRepository"]

_TABLES: Final = """abac_policy (
        node_name  TEXT NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('resource', 'resource_type')),
        name       TEXT NOT NULL,
        expression TEXT NOT NULL,
        updated_at {int} NOT NULL,
        PRIMARY KEY (node_name, kind, name)
    )"""

MIGRATIONS: Final = [
    Migration("policies", 1, sqlite=[
        # IF NOT EXISTS: homes made before migrations existed already hold these tables.
        "CREATE TABLE IF NOT EXISTS " + _TABLES.format(int="INTEGER"),
        """CREATE TABLE IF NOT EXISTS abac_policy_version (
            id      INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        )""",
    ], postgresql=[
        "CREATE TABLE " + _TABLES.format(int="BIGINT"),
        """CREATE TABLE abac_policy_version (
            id      INTEGER PRIMARY KEY CHECK (id = 1),
            version BIGINT NOT NULL
        )""",
    ], both=[
        "INSERT INTO abac_policy_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    ]),
]

_CACHE_LIMIT: Final = 10_000
_CACHE_BYTES: Final = 32 * 1024 * 1024
"""The compiled-policy cache is dropped when it holds this much (estimated: names, canonical text
and its compiled closures, about 8 bytes per character) or :data:`_CACHE_LIMIT` entries."""


class SqlPolicyRepository:
    """Policies in a SQL database, with a compiled-policy cache."""

    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database, *, recheck: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        db.require(MIGRATIONS)
        self._recheck = recheck
        self._clock = clock
        # kind -> scope -> name -> compiled policy (None: known to have none)
        self._cache: dict[str, dict[str, dict[str, Policy | None]]] = {
            "resource": {}, "resource_type": {}}
        self._resources = self._cache["resource"]
        self._types = self._cache["resource_type"]
        self._cached = 0
        self._cached_bytes = 0
        self._generation = 0
        self._version: int | None = None  # read on first use
        self._deadline = clock()

    # -- cache -----------------------------------------------------------------------------

    async def _read_version(self) -> int:
        value = await self.db.fetch_value("SELECT version FROM abac_policy_version WHERE id = 1")
        return int(value) if value is not None else 0

    def _clear(self) -> None:
        self._generation += 1
        self._resources.clear()
        self._types.clear()
        self._cached = 0
        self._cached_bytes = 0

    async def _fresh(self) -> None:
        """Drop the cache if another store object changed a policy since we last looked."""
        self._deadline = self._clock() + self._recheck
        version = await self._read_version()
        if version != self._version:
            self._version = version
            self._clear()

    async def _load(self, scope: str, kind: str, name: str) -> Policy | None:
        """Read, compile and cache one policy (or its absence)."""
        generation = self._generation
        row = await self.db.fetch_one(
            "SELECT expression FROM abac_policy WHERE node_name = ? AND kind = ? AND name = ?",
            (scope, kind, name))
        policy = None if row is None else self._parse(row[0], scope, kind, name)
        size = 256 + len(scope) + len(name) + (0 if policy is None else 8 * len(policy.text))
        if generation != self._generation:
            return policy  # the cache was dropped while we read: do not keep what may be stale
        if self._cached >= _CACHE_LIMIT or self._cached_bytes + size > _CACHE_BYTES:
            self._clear()
        self._cached += 1
        self._cached_bytes += size
        self._cache[kind].setdefault(scope, {})[name] = policy
        return policy

    @property
    def cached_bytes(self) -> int:
        """The estimated size of the compiled-policy cache."""
        return self._cached_bytes

    @staticmethod
    def _parse(text: str, scope: str, kind: str, name: str) -> Policy:
        try:
            return Policy.parse(text)
        except PolicyError as e:
            raise StorageError(f"the stored policy of {kind} {name!r} at node {scope!r} "
                               f"does not parse: {e}") from None

    # -- PolicyRepository ------------------------------------------------------------------

    async def set_policy(self, policy: Policy | str, *, resource: str | None = None,
                         resource_type: str | None = None, scope: str = DEFAULT_SCOPE,
                         now: int | None = None) -> PolicyEntry:
        kind, name = target(resource, resource_type)
        scope = check_name(scope, "node name")
        compiled = as_policy(policy)
        at = int(time.time()) if now is None else int(now)
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO abac_policy (node_name, kind, name, expression, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (node_name, kind, name) DO UPDATE SET "
                "expression = excluded.expression, updated_at = excluded.updated_at",
                (scope, kind, name, compiled.text, at))
            await self._bump(tx)
        return PolicyEntry(scope, kind, name, compiled, at)

    async def get_policy(self, *, resource: str | None = None, resource_type: str | None = None,
                         scope: str = DEFAULT_SCOPE) -> PolicyEntry | None:
        kind, name = target(resource, resource_type)
        scope = check_name(scope, "node name")
        row = await self.db.fetch_one(
            "SELECT expression, updated_at FROM abac_policy "
            "WHERE node_name = ? AND kind = ? AND name = ?", (scope, kind, name))
        if row is None:
            return None
        return PolicyEntry(scope, kind, name, self._parse(row[0], scope, kind, name), int(row[1]))

    async def delete_policy(self, *, resource: str | None = None,
                            resource_type: str | None = None,
                            scope: str = DEFAULT_SCOPE) -> bool:
        kind, name = target(resource, resource_type)
        scope = check_name(scope, "node name")
        async with self.db.transaction() as tx:
            deleted = await tx.execute(
                "DELETE FROM abac_policy WHERE node_name = ? AND kind = ? AND name = ?",
                (scope, kind, name)) > 0
            if deleted:
                await self._bump(tx)
        return deleted

    async def list_policies(self, *, scope: str = DEFAULT_SCOPE) -> list[PolicyEntry]:
        scope = check_name(scope, "node name")
        rows = await self.db.fetch_all(
            "SELECT kind, name, expression, updated_at FROM abac_policy WHERE node_name = ? "
            "ORDER BY kind, name", (scope,))
        out = []
        for kind, name, text, updated_at in rows:
            k: Kind = "resource" if kind == "resource" else "resource_type"
            out.append(PolicyEntry(scope, k, name, self._parse(text, scope, k, name),
                                   int(updated_at)))
        return out

    async def policy_for(self, resource: str, resource_type: str | None = None, *,
                         scope: str = DEFAULT_SCOPE,
                         default: Policy | None = None) -> Policy | None:
        if self._clock() >= self._deadline:
            await self._fresh()
        try:  # the warm path: two dict reads, no exception
            policy = self._resources[scope][resource]
        except KeyError:
            policy = await self._load(scope, "resource", resource)
        if policy is None and resource_type is not None:
            try:
                policy = self._types[scope][resource_type]
            except KeyError:
                policy = await self._load(scope, "resource_type", resource_type)
        return default if policy is None else policy

    # -- internals -------------------------------------------------------------------------

    async def _bump(self, tx: Transaction) -> None:
        version = await tx.fetch_value(
            "UPDATE abac_policy_version SET version = version + 1 WHERE id = 1 RETURNING version")
        self._version = int(version)
        self._clear()
