"""The composition root for Python programs: the services over a home's storage.

:mod:`trust.identities` and :mod:`trust.credentials` depend only on repository Protocols; these
functions pick the implementation (:func:`trust.storage.open_storage`: the home's
``state.sqlite`` by default, or any ``database`` URL such as ``postgresql://…``) and pass it in::

    async with open_credentials(home) as service:        # service.identities: the IdentityManager
        alice = await service.identities.create_identity("alice")

    async with open_identities(home) as manager:
        ...

Both return at once (the database connects on first use) and close the storage they opened when
the service closes. Pass ``storage=`` to share one already open :class:`~trust.storage.Storage`
(it is then left open).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from trust.identities.manager import IdentityManager

if TYPE_CHECKING:
    from trust.credentials.service import CredentialService
    from trust.storage import Storage

__all__ = ["identity_manager", "open_credentials", "open_identities"]


def identity_manager(storage: Storage, home: str | os.PathLike[str] | None = None, *,
                     owned: bool = False) -> IdentityManager:
    """An :class:`IdentityManager` over ``storage`` (closing it too when ``owned``)."""
    return IdentityManager(storage.known_identities, storage.local_identities,
                           storage.purpose_keys, storage.vault_configs, home,
                           on_close=storage.close if owned else None)


def open_identities(home: str | os.PathLike[str] | None = None, *,
                    database: str | None = None, storage: Storage | None = None
                    ) -> IdentityManager:
    """The identity service of ``home`` (default ``$TRUSTSTACK_HOME``), its state in
    ``database`` (default: the home's ``state.sqlite``) or in ``storage``."""
    from trust.storage import open_storage

    if storage is not None:
        return identity_manager(storage, home)
    return identity_manager(open_storage(database, home=home), home, owned=True)


def open_credentials(home: str | os.PathLike[str] | None = None, *,
                     database: str | None = None, storage: Storage | None = None
                     ) -> CredentialService:
    """The credential service of ``home`` (its ``identities`` is the :class:`IdentityManager`),
    its state in ``database`` (default: the home's ``state.sqlite``) or in ``storage``."""
    from trust.credentials.service import CredentialService  # (here: identity commands
    from trust.storage import open_storage  # start ~40 ms sooner without it)

    owned = storage is None
    s = storage if storage is not None else open_storage(database, home=home)
    return CredentialService(identity_manager(s, home, owned=owned), s.schemas, s.wallet,
                             s.attributes, s.nonces)
