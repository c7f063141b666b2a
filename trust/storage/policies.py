"""SQLite implementation of :class:`policies.PolicyRepository`.

Tables: ``abac_policy`` (one row per (node, kind, name), the canonical expression text) and
``abac_policy_version`` (one counter row, bumped in the same transaction as every write).

Compiled policies are cached per store object. The cache is dropped when this object writes, and
when the version counter moved, which is read at most every ``recheck`` seconds (default 0.25 s):
a change made through another store object (another connection, another process) is seen within
that time. Lookups in between are dictionary reads.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Final

from policies import Policy, PolicyEntry
from policies.errors import PolicyError
from policies.repository import DEFAULT_SCOPE, Kind, as_policy, check_name, target
from trust.errors import StorageError
from trust.storage.database import Database

__all__ = ["SqlitePolicyRepository"]

SCHEMA: Final = [
    """CREATE TABLE IF NOT EXISTS abac_policy (
        node_name  TEXT NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('resource', 'resource_type')),
        name       TEXT NOT NULL,
        expression TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (node_name, kind, name)
    )""",
    """CREATE TABLE IF NOT EXISTS abac_policy_version (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO abac_policy_version (id, version) VALUES (1, 0)",
]

_CACHE_LIMIT: Final = 10_000
_CACHE_BYTES: Final = 32 * 1024 * 1024
"""The compiled-policy cache is dropped when it holds this much (estimated: names, canonical text
and its compiled closures, about 8 bytes per character) or :data:`_CACHE_LIMIT` entries."""


class SqlitePolicyRepository:
    """Policies in the state database, with a compiled-policy cache."""

    def __init__(self, db: Database, *, recheck: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        db.ensure_schema("abac_policy", SCHEMA)
        self._recheck = recheck
        self._clock = clock
        # kind -> scope -> name -> compiled policy (None: known to have none)
        self._cache: dict[str, dict[str, dict[str, Policy | None]]] = {
            "resource": {}, "resource_type": {}}
        self._resources = self._cache["resource"]
        self._types = self._cache["resource_type"]
        self._cached = 0
        self._cached_bytes = 0
        self._version = self._read_version()
        self._deadline = clock() + recheck

    # -- cache -----------------------------------------------------------------------------

    def _read_version(self) -> int:
        row = self.db.query_one("SELECT version FROM abac_policy_version WHERE id = 1")
        return int(row[0]) if row else 0

    def _clear(self) -> None:
        self._resources.clear()
        self._types.clear()
        self._cached = 0
        self._cached_bytes = 0

    def _fresh(self) -> None:
        """Drop the cache if another store object changed a policy since we last looked."""
        self._deadline = self._clock() + self._recheck
        version = self._read_version()
        if version != self._version:
            self._version = version
            self._clear()

    def _load(self, scope: str, kind: str, name: str) -> Policy | None:
        """Read, compile and cache one policy (or its absence)."""
        row = self.db.query_one(
            "SELECT expression FROM abac_policy WHERE node_name = ? AND kind = ? AND name = ?",
            (scope, kind, name))
        policy = None if row is None else self._parse(row[0], scope, kind, name)
        size = 256 + len(scope) + len(name) + (0 if policy is None else 8 * len(policy.text))
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
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO abac_policy (node_name, kind, name, expression, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (node_name, kind, name) DO UPDATE SET "
                "expression = excluded.expression, updated_at = excluded.updated_at",
                (scope, kind, name, compiled.text, at))
            self._bump(conn)
        return PolicyEntry(scope, kind, name, compiled, at)

    async def get_policy(self, *, resource: str | None = None, resource_type: str | None = None,
                         scope: str = DEFAULT_SCOPE) -> PolicyEntry | None:
        kind, name = target(resource, resource_type)
        scope = check_name(scope, "node name")
        row = self.db.query_one(
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
        with self.db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM abac_policy WHERE node_name = ? AND kind = ? AND name = ?",
                (scope, kind, name))
            deleted = cur.rowcount > 0
            if deleted:
                self._bump(conn)
        return deleted

    async def list_policies(self, *, scope: str = DEFAULT_SCOPE) -> list[PolicyEntry]:
        scope = check_name(scope, "node name")
        rows = self.db.query_all(
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
            self._fresh()
        try:  # the warm path: two dict reads, no exception
            policy = self._resources[scope][resource]
        except KeyError:
            policy = self._load(scope, "resource", resource)
        if policy is None and resource_type is not None:
            try:
                policy = self._types[scope][resource_type]
            except KeyError:
                policy = self._load(scope, "resource_type", resource_type)
        return default if policy is None else policy

    # -- internals -------------------------------------------------------------------------

    def _bump(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE abac_policy_version SET version = version + 1 WHERE id = 1")
        row = conn.execute("SELECT version FROM abac_policy_version WHERE id = 1").fetchone()
        self._version = int(row[0])
        self._clear()
