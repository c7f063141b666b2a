"""Implementations of the repository Protocols declared by the services, on one async SQL layer
(:mod:`trust.storage.sql`) that runs on SQLite (the embedded default) and PostgreSQL.

The entry point is :func:`open_storage`::

    storage = open_storage()                                 # the home's state.sqlite
    storage = open_storage("sqlite:///var/lib/truststack/state.sqlite")
    storage = open_storage("postgresql://truststack@db.example:5432/truststack")

    async with storage:                                      # connect + migrate; close at the end
        await storage.local_identities.list()
        async with storage.transaction():                    # several calls, one atomic unit
            await storage.attributes.delete(subject)
            await storage.wallet.delete(credential_id)

:class:`Storage` holds every repository (created on first use): ``known_identities``,
``local_identities``, ``purpose_keys``, ``vault_configs``, ``schemas``, ``wallet``,
``attributes``, ``nonces``, ``policies``; ``db`` is the :class:`~trust.storage.sql.Database`.
Nothing connects until the first statement (or ``await storage.open()``); migrations of the
core components are applied then.

**Adding tables from another module** (``trust/storage/authority.py``,
``trust/storage/streams.py``): in that module declare ``MIGRATIONS = [Migration("authority", 1,
sqlite=[...], postgresql=[...]), ...]`` (see :mod:`trust.storage.sql` for the rules) and
repository classes whose constructor takes the :class:`~trust.storage.sql.Database` and sets a
``MIGRATIONS`` class attribute; callers get a shared instance with
``storage.repository(SqlTickets)``, which registers the migrations (applied before the next
statement). Write SQL with ``?`` placeholders, portable ``ON CONFLICT``/``RETURNING``, and
``db.transaction()`` (or ``db.run_transaction``) for anything that must be atomic.

The services (:mod:`trust.identities`, :mod:`trust.credentials`) never import this package: the
composition roots (the CLI, the node daemon, :mod:`trust.services`) pass repositories in.
"""

from __future__ import annotations

import contextlib
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from trust.storage.sql import Database, Migration, Transaction, database, redact_url

if TYPE_CHECKING:
    from trust.storage.credentials import SqlAttributes, SqlNonces, SqlSchemas, SqlWallet
    from trust.storage.identities import SqlKnownIdentities, SqlLocalIdentities, SqlPurposeKeys
    from trust.storage.policies import SqlPolicyRepository
    from trust.storage.vault_configs import SqlVaultConfigs

__all__ = ["Database", "Migration", "Storage", "Transaction", "core_migrations", "open_storage",
           "redact_url", "storage_url"]

R = TypeVar("R")


def core_migrations() -> list[Migration]:
    """The migrations of every core repository (applied when a :class:`Storage` opens)."""
    from trust.storage import credentials, identities, policies, vault_configs

    return [*identities.MIGRATIONS, *credentials.MIGRATIONS, *policies.MIGRATIONS,
            *vault_configs.MIGRATIONS]


def storage_url(home: str | os.PathLike[str] | None = None) -> str:
    """The URL of a home's embedded database: ``sqlite:///HOME/state.sqlite``."""
    from trust.home import state_db_path

    return f"sqlite:///{state_db_path(home).resolve()}"


class Storage:
    """Every repository over one database (see the module's documentation)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.url = db.url
        self.dialect = db.dialect
        self._repositories: dict[type, Any] = {}
        db.require(core_migrations())

    def repository(self, cls: type[R]) -> R:
        """The shared instance of repository class ``cls`` (``cls(db)``; its ``MIGRATIONS``, if
        any, are applied before the next statement)."""
        found = self._repositories.get(cls)
        if found is None:
            migrations = getattr(cls, "MIGRATIONS", None)
            if migrations:
                self.db.require(migrations)
            found = self._repositories[cls] = cls(self.db)  # type: ignore[call-arg]
        return found  # type: ignore[no-any-return]

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """One atomic unit over any repositories of this storage (they join it)."""
        return self.db.transaction()

    async def open(self) -> Storage:
        """Connect and apply migrations now (otherwise the first statement does)."""
        await self.db.open()
        return self

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Storage:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the core repositories ----------------------------------------------------------------
    @cached_property
    def known_identities(self) -> SqlKnownIdentities:
        from trust.storage.identities import SqlKnownIdentities

        return self.repository(SqlKnownIdentities)

    @cached_property
    def local_identities(self) -> SqlLocalIdentities:
        from trust.storage.identities import SqlLocalIdentities

        return self.repository(SqlLocalIdentities)

    @cached_property
    def purpose_keys(self) -> SqlPurposeKeys:
        from trust.storage.identities import SqlPurposeKeys

        return self.repository(SqlPurposeKeys)

    @cached_property
    def vault_configs(self) -> SqlVaultConfigs:
        from trust.storage.vault_configs import SqlVaultConfigs

        return self.repository(SqlVaultConfigs)

    @cached_property
    def schemas(self) -> SqlSchemas:
        from trust.storage.credentials import SqlSchemas

        return self.repository(SqlSchemas)

    @cached_property
    def wallet(self) -> SqlWallet:
        from trust.storage.credentials import SqlWallet

        return self.repository(SqlWallet)

    @cached_property
    def attributes(self) -> SqlAttributes:
        from trust.storage.credentials import SqlAttributes

        return self.repository(SqlAttributes)

    @cached_property
    def nonces(self) -> SqlNonces:
        from trust.storage.credentials import SqlNonces

        return self.repository(SqlNonces)

    @cached_property
    def policies(self) -> SqlPolicyRepository:
        from trust.storage.policies import SqlPolicyRepository

        return self.repository(SqlPolicyRepository)


def open_storage(url: str | None = None, *, home: str | os.PathLike[str] | None = None,
                 **options: Any) -> Storage:
    """The :class:`Storage` at ``url`` (default: the home's ``state.sqlite``). Lazy: nothing
    connects until first use or ``await storage.open()`` / ``async with storage``. ``options``
    go to the database (``busy_timeout`` for SQLite; ``min_size``, ``max_size``, ``timeout``
    for the PostgreSQL pool)."""
    return Storage(database(url if url is not None else storage_url(home), **options))
