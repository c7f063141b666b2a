"""Named local identities with keys in configured vaults: the service behind ``truststack
identity`` and the nodes.

:class:`IdentityManager` depends on the repository Protocols and on a vault-configuration
store; it never imports :mod:`trust.storage`: a composition root passes the implementations in
(:func:`trust.services.open_identities` wires a home's storage).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trust.errors import ConflictError, DecodeError, NotFoundError, UsageError
from trust.identities.creation import DEFAULT_IDENTITY_TTL, create_identity, rotate_identity
from trust.identities.identity import Comparison, Identity, verify_change_history
from trust.identities.purpose_keys import DEFAULT_PURPOSE_KEY_TTL, attest_purpose_key
from trust.identities.repositories import (
    KnownIdentities,
    LocalIdentities,
    LocalIdentity,
    PurposeKeys,
    StoredPurposeKey,
)
from trust.models.purpose_key import PurposeKeyAttestation, PurposePublicKey
from trust.vault_config import DEFAULT_VAULT, VaultConfigStore, create_vault, open_vault
from vaults.errors import VaultError
from vaults.keys import KeyType
from vaults.signing import SigningVault

if TYPE_CHECKING:
    from vaults.file import FileVault

SECURE_CHANNEL = "secure_channel"
CREDENTIAL_SIGNING = "credential_signing"


@dataclass(frozen=True, eq=False)
class NamedIdentity(Identity):
    """A local identity: an :class:`Identity` (so it goes wherever one is meant, e.g. the
    authorities of ``verify_credential``) with its local name and where its primary key is."""

    name: str
    vault: str
    key_handle: str
    is_default: bool
    created_at: int

    @classmethod
    def of(cls, name: str, identity: Identity, vault: str, key_handle: str, is_default: bool,
           created_at: int) -> NamedIdentity:
        return cls(identity.change_history, identity.raw, name, vault, key_handle, is_default,
                   created_at)

    @property
    def identity(self) -> Identity:
        """The bare verified history (equal to any other :class:`Identity` of the same bytes)."""
        return Identity(self.change_history, self.raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NamedIdentity):
            return (self.raw, self.name, self.vault, self.key_handle) == \
                (other.raw, other.name, other.vault, other.key_handle)
        return isinstance(other, Identity) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash(self.raw)


_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", re.ASCII)
_IDENTIFIER_RE = re.compile(r"I[0-9a-fA-F]{64}", re.ASCII)
_HEX_RE = re.compile(r"[0-9a-fA-F]+", re.ASCII)

IdentityRef = Identity | NamedIdentity | str
"""What names an identity in the Python API: the object, its name or its identifier."""


def _shown(text: str) -> str:
    return repr(text[:70] + "..." if len(text) > 70 else text)

_REMEMBER_ATTEMPTS = 8

MAX_IDENTITY_TTL = 1000 * 365 * 86400
"""The longest validity a new change may have (a thousand years)."""


def check_identity_name(name: str) -> str:
    """``name`` if it is a valid local identity name: 1 to 64 ASCII letters, digits, ``-``,
    ``_`` and ``.``, not starting with ``-`` or ``.``, and not shaped like an identifier."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or _IDENTIFIER_RE.fullmatch(name):
        shown = repr(name[:70] + "..." if isinstance(name, str) and len(name) > 70 else name)
        raise UsageError(f"invalid identity name {shown} (1 to 64 ASCII letters, digits, '-', "
                         "'_', '.'; not an identifier)")
    return name


class IdentityManager:
    """Named local identities over the repository Protocols. ``on_close`` (a coroutine
    function) is awaited by :meth:`close` after the vaults close: the composition root's hook to
    close the storage it opened for this manager."""

    def __init__(self, known: KnownIdentities, local: LocalIdentities, purpose_keys: PurposeKeys,
                 vault_configs: VaultConfigStore, home: str | os.PathLike[str] | None = None, *,
                 on_close: Callable[[], Awaitable[None]] | None = None) -> None:
        self.known = known
        self.local = local
        self.purpose_keys = purpose_keys
        self.vault_configs = vault_configs
        self.home = home
        self._vaults: dict[str, SigningVault] = {}
        self._on_close = on_close

    async def close(self) -> None:
        try:
            for v in self._vaults.values():
                await v.close()
            self._vaults.clear()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                await on_close()

    async def __aenter__(self) -> IdentityManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- vaults --------------------------------------------------------------------------------
    async def vault(self, name: str | None = None) -> tuple[str, SigningVault]:
        """The vault ``name`` (default: the file vault ``default``, created on first use)."""
        name = name or DEFAULT_VAULT
        if name in self._vaults:
            return name, self._vaults[name]
        config = await self.vault_configs.find(name)
        if config is None:
            if name != DEFAULT_VAULT:
                raise NotFoundError(f"no vault named {name!r} (see: truststack vault list)")
            config = await create_vault(self.vault_configs, name, "file", {}, self.home)
        vault = await open_vault(config, self.home)
        self._vaults[name] = vault
        return name, vault

    async def software_vault(self, name: str | None = None) -> tuple[str, FileVault]:
        """The file vault that keeps secure-channel (X25519) keys, with its name: ``name`` if it
        is a file vault, else the ``default`` file vault."""
        from vaults.file import FileVault

        if name is not None:
            _, v = await self.vault(name)
            if isinstance(v, FileVault):
                return name, v
        _, v = await self.vault(DEFAULT_VAULT)
        if not isinstance(v, FileVault):
            raise VaultError("the default vault is not a file vault")
        return DEFAULT_VAULT, v

    async def delete_vault(self, name: str) -> None:
        from trust.vault_config import delete_vault

        users = await self.local.uses_vault(name)
        if users:
            raise ConflictError(f"vault {name!r} is used by identit{'y' if len(users) == 1 else 'ies'} "
                                f"{', '.join(users)}; delete or rotate them first")
        self._vaults.pop(name, None)
        await delete_vault(self.vault_configs, name, self.home)

    # -- creation --------------------------------------------------------------------------------
    async def create_identity(self, name: str | None = None, *, vault: str | None = None,
                              key_type: KeyType | str | None = None, key_id: str | None = None,
                              now: int | None = None, ttl: int = DEFAULT_IDENTITY_TTL,
                              may_be_default: bool = True) -> NamedIdentity:
        """Create (and store) a named identity whose primary key is new in ``vault``, or the
        existing key ``key_id``; without ``name`` one is chosen (``identity-`` and 6 hex digits).
        It becomes the default identity when there is none, unless ``may_be_default`` is false
        (a node's own identity). Nothing is stored if any step fails."""
        name = check_identity_name(name) if name is not None else f"identity-{secrets.token_hex(3)}"
        if not 0 < ttl <= MAX_IDENTITY_TTL:
            raise UsageError(f"an identity's time to live must be between 1 second and "
                             f"{MAX_IDENTITY_TTL} seconds")
        if await self.local.get(name) is not None:
            raise ConflictError(f"an identity named {name!r} already exists")
        vault_name, v = await self.vault(vault)
        created_key = False
        if key_id is not None:
            handle = await v.resolve_key(key_id)
            if key_type is not None and (await v.public_key(handle)).key_type is not KeyType(key_type):
                raise UsageError(f"key {key_id} is not a {KeyType(key_type).value} key")
        else:
            kt = KeyType(key_type) if key_type is not None else v.default_key_type
            if kt not in v.key_types:
                raise VaultError(f"vault {vault_name!r} ({v.backend}) cannot make {kt.value} keys")
            handle = await v.generate_key(kt)
            created_key = True
        stored_history = False
        try:
            identity = await create_identity(v, handle, now=now, ttl=ttl)
            stored_history = await self.remember(identity) is None
            local = LocalIdentity(name, identity.identifier, vault_name, handle, False,
                                  int(time.time()))
            await self.local.add(local, may_be_default=may_be_default)
        except BaseException:
            if stored_history:
                with contextlib.suppress(Exception):
                    await self.known.delete(identity.identifier)
            if created_key:
                await _discard_key(v, handle)
            raise
        return await self.get(name)

    async def get_or_create(self, name: str, *, may_be_default: bool = False) -> NamedIdentity:
        """The local identity ``name``, created if missing: a service's (a node's) own identity,
        which does not become the default identity unless ``may_be_default``."""
        local = await self.local.get(name)
        if local is not None:
            return await self._named(local)
        return await self.create_identity(name, may_be_default=may_be_default)

    # -- lookup --------------------------------------------------------------------------------
    async def _named(self, local: LocalIdentity) -> NamedIdentity:
        raw = await self.known.get(local.identifier)
        if raw is None:
            raise NotFoundError(f"the history of identity {local.name!r} is missing")
        return NamedIdentity.of(local.name, verify_change_history(raw, cache=True), local.vault,
                             local.key_handle, local.is_default, local.created_at)

    async def get(self, name: IdentityRef | None = None) -> NamedIdentity:
        """A local identity by name (default: the default identity); its identifier, its
        :class:`NamedIdentity` or its :class:`Identity` work too."""
        if name is None:
            default = await self.local.default()
            if default is None:
                if not await self.local.list():
                    raise NotFoundError("no identities yet (create one: truststack identity "
                                        "create NAME)")
                raise NotFoundError("no default identity: name one (--identity NAME); a node's "
                                    "own identity is never the default")
            return await self._named(default)
        if isinstance(name, NamedIdentity):
            name = name.name
        elif isinstance(name, Identity):
            by_id = await self.local.by_identifier(name.identifier)
            if by_id is None:
                raise NotFoundError(f"identity {name.identifier} is not a local identity of this "
                                    "home")
            return await self._named(by_id)
        elif not isinstance(name, str):
            raise UsageError(f"an identity is a name, an identifier, a NamedIdentity or an "
                             f"Identity, not {type(name).__name__}")
        if _IDENTIFIER_RE.fullmatch(name):
            by_id = await self.local.by_identifier("I" + name[1:].lower())
            if by_id is None:
                raise NotFoundError(f"identity {name} is not a local identity of this home")
            return await self._named(by_id)
        local = await self.local.get(name)
        if local is None:
            raise NotFoundError(f"no identity named {_shown(name)} (see: truststack identity list)")
        return await self._named(local)

    async def list(self) -> list[NamedIdentity]:
        return [await self._named(x) for x in await self.local.list()]

    async def resolve(self, ref: IdentityRef, *, store: bool = True) -> Identity:
        """The :class:`Identity` that ``ref`` names: an :class:`Identity` or
        :class:`NamedIdentity` (returned as is), a local name, a known identifier, or a change
        history in hex (verified; stored as a known identity unless ``store`` is false, and
        refused if it conflicts with, or is older than, the stored history)."""
        if isinstance(ref, Identity):
            return ref
        if isinstance(ref, NamedIdentity):
            return ref.identity
        if not isinstance(ref, str):
            raise UsageError(f"an identity is a name, an identifier, a change history, a "
                             f"NamedIdentity or an Identity, not {type(ref).__name__}")
        ref = ref.strip()
        if not ref:
            raise UsageError("an empty identity (give a name, an identifier or a change history)")
        if _IDENTIFIER_RE.fullmatch(ref):
            identifier = "I" + ref[1:].lower()
            raw = await self.known.get(identifier)
            if raw is None:
                raise NotFoundError(f"identity {identifier} is not known here (import its history "
                                    "first)")
            return verify_change_history(raw, cache=True)
        if len(ref) > 65 and _HEX_RE.fullmatch(ref):
            if len(ref) % 2:
                raise DecodeError("odd number of hex digits", field="change_history")
            data = bytes.fromhex(ref)
            if store:
                identity, _ = await self.import_identity(data)
                return identity
            identity = verify_change_history(data)
            await self._check_known(identity)
            return identity
        return (await self.get(ref)).identity

    async def _check_known(self, identity: Identity) -> None:
        raw = await self.known.get(identity.identifier)
        if raw is None:
            return
        cmp = identity.compare(verify_change_history(raw, cache=True))
        if cmp is Comparison.CONFLICT:
            raise ConflictError(f"the history of {identity.identifier} conflicts with the stored "
                                "one (a different change at the same position)")
        if cmp is Comparison.OLDER:
            raise ConflictError(f"the history of {identity.identifier} is older than the stored "
                                "one")

    async def remember(self, identity: Identity, *, now: int | None = None) -> Comparison | None:
        """Store ``identity`` as a known identity when it is new (returns None) or newer than
        the stored one (returns ``NEWER``); an equal one is kept (``EQUAL``); a conflicting or
        older one raises ``ConflictError``. Safe against concurrent writers (another process
        storing a history of the same identity): the write is a compare-and-set, retried."""
        t = int(time.time()) if now is None else int(now)
        data = identity.export()
        for _ in range(_REMEMBER_ATTEMPTS):
            raw = await self.known.get(identity.identifier)
            if raw is None:
                if await self.known.add(identity.identifier, data, now=t):
                    return None
                continue  # another writer stored one first: compare with it
            stored = verify_change_history(raw, cache=True)
            cmp = identity.compare(stored)
            if cmp is Comparison.CONFLICT:
                raise ConflictError(
                    f"the history of {identity.identifier} conflicts with the stored one "
                    "(a different change at the same position)")
            if cmp is Comparison.OLDER:
                raise ConflictError(
                    f"the history of {identity.identifier} is older than the stored one "
                    f"({len(identity.changes)} changes < {len(stored.changes)})")
            if cmp is not Comparison.NEWER:
                return cmp
            if await self.known.replace(identity.identifier, data, previous=raw, now=t):
                return cmp
        raise ConflictError(f"the history of {identity.identifier} kept changing while it was "
                            "being stored (concurrent writers)")

    # -- rotation --------------------------------------------------------------------------------
    async def rotate(self, name: str, *, vault: str | None = None,
                     key_type: KeyType | str | None = None, key_id: str | None = None,
                     revoke_purpose_keys: bool = False, now: int | None = None,
                     ttl: int = DEFAULT_IDENTITY_TTL) -> NamedIdentity:
        """Add a change with a new primary key (in ``vault``, default: the same vault), signed by
        the new key and co-signed by the previous one; then re-attest (or, with
        ``revoke_purpose_keys``, drop) the identity's purpose keys."""
        named = await self.get(name)
        _, old_vault = await self.vault(named.vault)
        new_vault_name, new_vault = await self.vault(vault or named.vault)
        created_key = False
        if key_id is not None:
            handle = await new_vault.resolve_key(key_id)
            public = await new_vault.public_key(handle)
            if key_type is not None and public.key_type is not KeyType(key_type):
                raise UsageError(f"key {key_id} is not a {KeyType(key_type).value} key")
            if public == named.identity.latest_public_key:
                raise UsageError(f"key {key_id} is already the current key of {named.name!r}; "
                                 "a rotation needs another key")
        else:
            kt = KeyType(key_type) if key_type is not None else (
                named.identity.latest_public_key.key_type
                if vault is None and named.identity.latest_public_key.key_type in new_vault.key_types
                else new_vault.default_key_type)
            if kt not in new_vault.key_types:
                raise VaultError(f"vault {new_vault_name!r} ({new_vault.backend}) cannot make "
                                 f"{kt.value} keys")
            handle = await new_vault.generate_key(kt)
            created_key = True
        try:
            rotated = await rotate_identity(named.identity, old_vault, named.key_handle, new_vault,
                                            handle, revoke_all_purpose_keys=revoke_purpose_keys,
                                            now=now, ttl=ttl)
            await self.remember(rotated)
            await self.local.update_key(name, new_vault_name, handle)
        except BaseException:
            if created_key:
                await _discard_key(new_vault, handle)
            raise
        if revoke_purpose_keys:
            await self.purpose_keys.delete(rotated.identifier)
        else:
            await self._reattest(rotated, new_vault, handle, now)
        return await self.get(name)

    async def _reattest(self, identity: Identity, vault: SigningVault, handle: str,
                        now: int | None) -> None:
        t = int(time.time()) if now is None else now
        for pk in await self.purpose_keys.list(identity.identifier):
            old = PurposeKeyAttestation.decode(pk.attestation)
            if old.attestation_data.expires_at < t:
                continue
            att = await attest_purpose_key(identity, vault, handle,
                                           old.attestation_data.public_key, now=now,
                                           expires_at=old.attestation_data.expires_at)
            d = att.attestation_data
            await self.purpose_keys.replace_attestation(identity.identifier, pk.purpose,
                                                        pk.key_handle, att.encode(),
                                                        d.created_at, d.expires_at)

    # -- import / verify / delete ------------------------------------------------------------------
    async def import_identity(self, data: bytes) -> tuple[Identity, Comparison | None]:
        """Verify a change history and store it as a known identity."""
        identity = verify_change_history(data)
        return identity, await self.remember(identity)

    async def delete(self, name: str) -> None:
        """Forget a local identity, its purpose keys and (for file vaults) its private keys.
        A key that another local identity still uses (as its primary key or a purpose key) is
        kept. The public history stays known."""
        named = await self.get(name)
        pks = await self.purpose_keys.list(named.identifier)
        await self.local.delete(name)
        await self.purpose_keys.delete(named.identifier)
        for pk in pks:
            if await self.local.key_users(pk.vault, pk.key_handle):
                continue
            if pk.purpose == SECURE_CHANNEL:
                with contextlib.suppress(NotFoundError, VaultError):
                    (await self.software_vault(pk.vault))[1].delete_x25519(pk.key_handle)
            else:
                await self._delete_local_key(pk.vault, pk.key_handle)
        if not await self.local.key_users(named.vault, named.key_handle):
            await self._delete_local_key(named.vault, named.key_handle)

    async def _delete_local_key(self, vault: str, handle: str) -> None:
        try:
            _, v = await self.vault(vault)
        except (NotFoundError, VaultError):
            return
        if v.backend in ("file", "software"):
            await v.delete_key(handle)

    # -- purpose keys ----------------------------------------------------------------------------
    async def _signer(self, named: NamedIdentity) -> tuple[SigningVault, str]:
        _, v = await self.vault(named.vault)
        return v, named.key_handle

    async def secure_channel_key(self, name: str | None = None, *, now: int | None = None,
                                 ttl: int = DEFAULT_PURPOSE_KEY_TTL
                                 ) -> tuple[FileVault, str, PurposeKeyAttestation]:
        """The identity's static X25519 key for secure channels (created and attested on first
        use, renewed when it expires): (vault, handle, attestation)."""
        named = await self.get(name)
        t = int(time.time()) if now is None else now
        for pk in await self.purpose_keys.list(named.identifier, SECURE_CHANNEL):
            if pk.expires_at >= t + 60:
                _, v = await self.software_vault(pk.vault)
                return v, pk.key_handle, PurposeKeyAttestation.decode(pk.attestation)
        vault_name, sc_vault = await self.software_vault(named.vault)
        handle = sc_vault.generate_x25519(persist=True)
        signer, sh = await self._signer(named)
        att = await attest_purpose_key(
            named.identity, signer, sh,
            PurposePublicKey.secure_channel(sc_vault.x25519_public_key(handle)), now=now, ttl=ttl)
        d = att.attestation_data
        await self.purpose_keys.add(StoredPurposeKey(named.identifier, SECURE_CHANNEL, vault_name,
                                                     handle, att.encode(), d.created_at,
                                                     d.expires_at))
        return sc_vault, handle, att

    async def credential_signing_key(self, name: str | None = None, *, key_vault: str | None = None,
                                     key_type: KeyType | str | None = None,
                                     now: int | None = None, ttl: int = DEFAULT_PURPOSE_KEY_TTL,
                                     min_remaining: int = 0
                                     ) -> tuple[SigningVault, str, PurposeKeyAttestation]:
        """The issuer's credential-signing purpose key: reused while it has at least
        ``min_remaining`` seconds left, else created in ``key_vault`` (default: the identity's
        vault) and attested. Returns (vault, handle, attestation)."""
        named = await self.get(name)
        t = int(time.time()) if now is None else now
        for pk in await self.purpose_keys.list(named.identifier, CREDENTIAL_SIGNING):
            if key_vault is not None and pk.vault != key_vault:
                continue
            if pk.expires_at >= t + max(min_remaining, 60) and \
                    PurposeKeyAttestation.decode(pk.attestation).attestation_data.created_at <= t + 60:
                _, v = await self.vault(pk.vault)
                return v, pk.key_handle, PurposeKeyAttestation.decode(pk.attestation)
        latest = named.identity.latest_change.change_data
        if t < latest.attestations_valid_from:
            raise UsageError(f"identity {named.name!r} cannot attest a key at {t}: its current key "
                             f"is valid from {latest.attestations_valid_from}")
        if t + max(min_remaining, 0) > min(t + ttl, latest.attestations_valid_until):
            longest = max(0, min(t + ttl, latest.attestations_valid_until) - t)
            raise UsageError(f"a signing key of identity {named.name!r} attested at {t} would be "
                             f"valid for at most {longest} seconds, less than the {min_remaining} "
                             "needed (choose a shorter time to live)")
        vault_name, v = await self.vault(key_vault or named.vault)
        kt = KeyType(key_type) if key_type is not None else v.default_key_type
        if kt not in v.key_types:
            raise VaultError(f"vault {vault_name!r} ({v.backend}) cannot make {kt.value} keys")
        handle = await v.generate_key(kt)
        try:
            signer, sh = await self._signer(named)
            att = await attest_purpose_key(
                named.identity, signer, sh,
                PurposePublicKey.credential_signing(await v.public_key(handle)), now=now, ttl=ttl)
            d = att.attestation_data
            await self.purpose_keys.add(StoredPurposeKey(named.identifier, CREDENTIAL_SIGNING,
                                                         vault_name, handle, att.encode(),
                                                         d.created_at, d.expires_at))
        except BaseException:
            await _discard_key(v, handle)
            raise
        return v, handle, att

    async def forget_purpose_key(self, key: StoredPurposeKey) -> None:
        """Undo a purpose key this home just created (its record and, unless another local
        identity uses it, its private key): for a command that fails after creating one."""
        await self.purpose_keys.delete(key.identifier, key.purpose, key.key_handle)
        if await self.local.key_users(key.vault, key.key_handle):
            return
        with contextlib.suppress(NotFoundError, VaultError):
            if key.purpose == SECURE_CHANNEL:
                (await self.software_vault(key.vault))[1].delete_x25519(key.key_handle)
            else:
                _, v = await self.vault(key.vault)
                await _discard_key(v, key.key_handle)


async def _discard_key(vault: SigningVault, handle: str) -> None:
    """Best-effort removal of a key this manager just generated, when the operation that needed
    it failed (HSM/KMS keys are destroyed or scheduled for deletion by their backend)."""
    with contextlib.suppress(Exception):
        await vault.delete_key(handle)


def identity_json(identity: Identity) -> dict[str, Any]:
    """The JSON view of an identity (``identity show``, ``verify``, ``import``)."""
    return {
        "identifier": identity.identifier,
        "change_history": identity.export_hex(),
        "changes": [
            {
                "change_hash": c.change_hash.hex(),
                "previous_change": c.change_data.previous_change.hex()
                if c.change_data.previous_change else None,
                "key_type": c.primary_public_key.key_type.value,
                "public_key": c.primary_public_key.data.hex(),
                "valid_from": c.change_data.attestations_valid_from,
                "valid_until": c.change_data.attestations_valid_until,
                "revoke_all_purpose_keys": c.change_data.revoke_all_purpose_keys,
            }
            for c in identity.changes
        ],
    }
