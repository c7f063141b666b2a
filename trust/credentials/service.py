"""The credential service: issue, verify, store, present and verify presentations with the
lookups and records around the pure functions (identities, schemas, wallet, attribute store,
seen nonces). It depends on the repository Protocols; :meth:`CredentialService.open` wires the
SQLite implementations of a home.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

from trust.credentials.attributes import SubjectAttributes
from trust.credentials.issuance import (
    DEFAULT_CREDENTIAL_TTL,
    MAX_DECOYS,
    issue_credential,
    issue_selective_credential,
)
from trust.credentials.presentation import (
    MAX_AGE,
    VerifiedPresentation,
    holder_of,
    present,
    verify_presentation,
)
from trust.credentials.repositories import (
    AttributeRepository,
    CredentialWallet,
    NonceRepository,
    SchemaRepository,
    StoredCredential,
)
from trust.credentials.schemas import Schema, prepare_attributes, typed_attributes
from trust.credentials.verification import VerifiedCredential, verify_credential
from trust.errors import UsageError, VerificationError
from trust.identities.identity import Identity, verify_change_history
from trust.identities.manager import CREDENTIAL_SIGNING, IdentityManager, IdentityRef
from trust.identities.purpose_keys import DEFAULT_PURPOSE_KEY_TTL
from trust.models.credential import (
    Attributes,
    CredentialAndPurposeKey,
    DisclosableCredential,
    Presentation,
)

MAX_CREDENTIAL_TTL = DEFAULT_PURPOSE_KEY_TTL
"""A credential lives at most as long as a new credential-signing key (five years)."""


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)


class CredentialService:
    def __init__(self, identities: IdentityManager, schemas: SchemaRepository,
                 wallet: CredentialWallet, attributes: AttributeRepository,
                 nonces: NonceRepository) -> None:
        self.identities = identities
        self.schemas = schemas
        self.wallet = wallet
        self.attributes = attributes
        self.nonces = nonces

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None) -> CredentialService:
        """The service over the SQLite state of ``home`` (one database connection)."""
        from trust.storage.credentials import SqliteAttributes, SqliteNonces, SqliteSchemas, SqliteWallet
        from trust.storage.database import Database
        from trust.storage.identities import (
            SqliteKnownIdentities,
            SqliteLocalIdentities,
            SqlitePurposeKeys,
        )
        from trust.storage.vault_configs import SqliteVaultConfigs

        db = Database.open_home(home)
        manager = IdentityManager(SqliteKnownIdentities(db), SqliteLocalIdentities(db),
                                  SqlitePurposeKeys(db), SqliteVaultConfigs(db), home)
        return cls(manager, SqliteSchemas(db), SqliteWallet(db), SqliteAttributes(db),
                   SqliteNonces(db))

    async def close(self) -> None:
        await self.identities.close()

    def subject_attributes(self) -> SubjectAttributes:
        """Typed ``subject.*`` attributes from the attribute store."""
        return SubjectAttributes(self.attributes, self.schemas)

    # -- lookups ---------------------------------------------------------------------------------
    async def resolve(self, refs: Iterable[IdentityRef], *, store: bool = True) -> list[Identity]:
        """Identities named by objects, local names, known identifiers or change histories (hex;
        verified, and imported unless ``store`` is false)."""
        out = [await self.identities.resolve(r, store=store) for r in refs]
        if not out:
            raise UsageError("give at least one authority")
        return out

    async def known(self, identifier: str | None) -> Identity | None:
        if identifier is None:
            return None
        raw = await self.identities.known.get(identifier)
        return verify_change_history(raw, cache=True) if raw is not None else None

    async def schema(self, schema_id: int) -> Schema | None:
        return await self.schemas.get(schema_id)

    # -- issue -----------------------------------------------------------------------------------
    @overload
    async def issue(self, issuer: str | None, subject: Identity | str, values: Mapping[str, Any], *,
                    ttl: int = ..., schema_id: int = ..., selective: Literal[False] = ...,
                    decoys: int = ..., key_vault: str | None = ..., now: int | None = ...
                    ) -> CredentialAndPurposeKey: ...

    @overload
    async def issue(self, issuer: str | None, subject: Identity | str, values: Mapping[str, Any], *,
                    ttl: int = ..., schema_id: int = ..., selective: Literal[True],
                    decoys: int = ..., key_vault: str | None = ..., now: int | None = ...
                    ) -> DisclosableCredential: ...

    @overload
    async def issue(self, issuer: str | None, subject: Identity | str, values: Mapping[str, Any], *,
                    ttl: int = ..., schema_id: int = ..., selective: bool,
                    decoys: int = ..., key_vault: str | None = ..., now: int | None = ...
                    ) -> CredentialAndPurposeKey | DisclosableCredential: ...

    async def issue(self, issuer: str | None, subject: Identity | str, values: Mapping[str, Any], *,
                    ttl: int = DEFAULT_CREDENTIAL_TTL, schema_id: int = 0, selective: bool = False,
                    decoys: int = 0, key_vault: str | None = None, now: int | None = None
                    ) -> CredentialAndPurposeKey | DisclosableCredential:
        """Issue a credential as the local identity ``issuer`` (default: the default identity).
        Values are checked and encoded through schema ``schema_id`` when this home has it.
        Everything is checked before anything is written; a credential-signing key created for
        this credential is removed again if issuing fails."""
        t = _now(now)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise UsageError(f"a credential's time to live must be a positive number of seconds, "
                             f"not {ttl!r}")
        if ttl > MAX_CREDENTIAL_TTL:
            raise UsageError(f"a credential's time to live is at most {MAX_CREDENTIAL_TTL} seconds")
        if decoys and not selective:
            raise UsageError("decoys only make sense for a selective credential")
        if not 0 <= decoys <= MAX_DECOYS:
            raise UsageError(f"decoys must be between 0 and {MAX_DECOYS}")
        schema = await self.schemas.get(schema_id)
        attributes = Attributes.of(prepare_attributes(values, schema), schema_id)
        issuer_named = await self.identities.get(issuer)
        subject_identity = subject if isinstance(subject, Identity) else \
            await self.identities.resolve(subject)
        before = {pk.key_handle for pk in await self.identities.purpose_keys.list(
            issuer_named.identifier, CREDENTIAL_SIGNING)}
        vault, handle, attestation = await self.identities.credential_signing_key(
            issuer_named.name, key_vault=key_vault, now=t, min_remaining=ttl)
        try:
            if selective:
                return await issue_selective_credential(subject_identity, attributes, vault, handle,
                                                        attestation, now=t, ttl=ttl, decoys=decoys)
            return await issue_credential(subject_identity, attributes, vault, handle, attestation,
                                          now=t, ttl=ttl)
        except BaseException:
            if handle not in before:
                for pk in await self.identities.purpose_keys.list(issuer_named.identifier,
                                                                  CREDENTIAL_SIGNING):
                    if pk.key_handle == handle:
                        await self.identities.forget_purpose_key(pk)
            raise

    # -- verify ----------------------------------------------------------------------------------
    async def _typed_check(self, v: VerifiedCredential) -> Schema | None:
        schema = await self.schemas.get(v.schema)
        if schema is not None:
            typed_attributes(v.attributes, schema)  # raises VerificationError on a mismatch
        return schema

    async def verify(self, credential: CredentialAndPurposeKey | DisclosableCredential,
                     authorities: list[Identity], *, subject: Identity | None = None,
                     now: int | None = None, record: bool = True) -> VerifiedCredential:
        """Verify a credential (a disclosable one reveals all its disclosures) and, with
        ``record``, keep its attributes in the attribute store."""
        t = _now(now)
        if isinstance(credential, DisclosableCredential):
            cpk, disclosures = credential.credential, credential.disclosures
        else:
            cpk, disclosures = credential, ()
        subject_identity = subject or await self.known(cpk.credential.subject_text)
        v = verify_credential(cpk, authorities, now=t, expected_subject=subject,
                              subject_identity=subject_identity, disclosures=disclosures)
        await self._typed_check(v)
        if record:
            await self.attributes.record(v.subject, v.issuer, v.attributes, schema=v.schema,
                                         created_at=v.created_at, expires_at=v.expires_at,
                                         replace=not v.selective)
        return v

    # -- wallet ----------------------------------------------------------------------------------
    async def store(self, holder: str | None, credential: CredentialAndPurposeKey | DisclosableCredential,
                    authorities: list[Identity], *, now: int | None = None) -> StoredCredential:
        """Verify a credential about the local identity ``holder`` (default: the default
        identity) and keep it in its wallet."""
        named = await self.identities.get(holder)
        v = await self.verify(credential, authorities, subject=named.identity, now=now,
                              record=False)
        return await self.wallet.add(named.identifier, v.issuer, v.subject, v.schema, v.selective,
                                     credential.encode(), v.created_at, v.expires_at,
                                     now=_now(now))

    async def list_stored(self, holder: str | None = None) -> list[StoredCredential]:
        """The wallet: every held credential, or those of the local identity ``holder``."""
        if holder is None:
            return await self.wallet.list()
        return await self.wallet.list((await self.identities.get(holder)).identifier)

    # -- presentations ---------------------------------------------------------------------------
    async def present(self, holder: str | None, held: DisclosableCredential, reveal: Iterable[str],
                      *, audience: str, nonce: str, now: int | None = None) -> Presentation:
        named = await self.identities.get(holder)
        _, vault = await self.identities.vault(named.vault)
        return await present(held, named.identity, vault, named.key_handle, reveal=reveal,
                             audience=audience, nonce=nonce, now=_now(now))

    async def verify_presentation(self, presentation: Presentation, authorities: list[Identity], *,
                                  audience: str, nonce: str, subject: Identity | None = None,
                                  now: int | None = None, record: bool = True
                                  ) -> VerifiedPresentation:
        """Verify a presentation, then record its nonce (a second use is a replay) and, with
        ``record``, the revealed attributes."""
        t = _now(now)
        known_holder = await self.known(holder_of(presentation))
        vp = verify_presentation(presentation, authorities, audience=audience, nonce=nonce, now=t,
                                 expected_subject=subject, known_holder=known_holder)
        await self._typed_check(vp.credential)
        if not await self.nonces.use(audience, nonce, expires_at=vp.presented_at + MAX_AGE, now=t):
            raise VerificationError(f"nonce {nonce!r} was already used for audience {audience!r} "
                                    "(a replayed presentation)")
        if known_holder is None or len(vp.holder.changes) > len(known_holder.changes):
            await self.identities.known.store(vp.holder)
        if record:
            c = vp.credential
            await self.attributes.record(c.subject, c.issuer, c.attributes, schema=c.schema,
                                         created_at=c.created_at, expires_at=c.expires_at,
                                         replace=False)
        return vp
