"""The credential service: issue, verify, store, present and verify presentations with the
lookups and records around the pure functions (identities, schemas, wallet, attribute store,
seen nonces). It depends on the repository Protocols and never imports :mod:`trust.storage`:
a composition root passes the implementations in (:func:`trust.services.open_credentials` wires a
home's storage).
"""

from __future__ import annotations

import re
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
from trust.errors import DecodeError, UsageError, VerificationError
from trust.identities.identity import Identity, verify_change_history
from trust.identities.manager import CREDENTIAL_SIGNING, IdentityManager, IdentityRef
from trust.identities.purpose_keys import DEFAULT_PURPOSE_KEY_TTL
from trust.models.credential import (
    Attributes,
    CredentialAndPurposeKey,
    DisclosableCredential,
    Presentation,
    decode_artifact,
)

MAX_CREDENTIAL_TTL = DEFAULT_PURPOSE_KEY_TTL
"""A credential lives at most as long as a new credential-signing key (five years)."""


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)


_IDENTIFIER = re.compile(r"I[0-9a-fA-F]{64}", re.ASCII)

CredentialLike = CredentialAndPurposeKey | DisclosableCredential | bytes | str
"""A credential as the service takes it: the object, its bytes, or its hex."""


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.strip())
        except ValueError:
            raise DecodeError("not a hex string", field="credential") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode_artifact(bytes(value))
    return value


def _credential_object(value: CredentialLike) -> CredentialAndPurposeKey | DisclosableCredential:
    obj = _decoded(value)
    if not isinstance(obj, (CredentialAndPurposeKey, DisclosableCredential)):
        raise DecodeError("expected a credential with its purpose key", field="credential")
    return obj


class CredentialService:
    def __init__(self, identities: IdentityManager, schemas: SchemaRepository,
                 wallet: CredentialWallet, attributes: AttributeRepository,
                 nonces: NonceRepository) -> None:
        self.identities = identities
        self.schemas = schemas
        self.wallet = wallet
        self.attributes = attributes
        self.nonces = nonces

    async def close(self) -> None:
        await self.identities.close()

    async def __aenter__(self) -> CredentialService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def subject_attributes(self) -> SubjectAttributes:
        """Typed ``subject.*`` attributes from the attribute store."""
        return SubjectAttributes(self.attributes, self.schemas)

    async def attributes_of(self, subject: IdentityRef, *, now: int | None = None
                            ) -> dict[str, Any]:
        """``{name: typed value}``: the verified, unexpired attributes of ``subject`` (an
        identity, a local name or an identifier) in the attribute store, at ``now`` (default:
        the clock); on a name several issuers gave, the latest credential wins."""
        if isinstance(subject, str) and _IDENTIFIER.fullmatch(subject.strip()):
            identifier = "I" + subject.strip()[1:].lower()
        else:
            identifier = (await self.identities.resolve(subject)).identifier
        return await self.subject_attributes().get(identifier, now=now)

    # -- lookups ---------------------------------------------------------------------------------
    async def resolve(self, refs: IdentityRef | Iterable[IdentityRef], *, store: bool = True
                      ) -> list[Identity]:
        """Identities named by objects, local names, known identifiers or change histories (hex;
        verified, and imported unless ``store`` is false); one reference or several."""
        if isinstance(refs, (str, Identity)):
            refs = [refs]
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
    async def issue(self, issuer: IdentityRef | None, subject: IdentityRef, values: Mapping[str, Any], *,
                    ttl: int = ..., schema_id: int = ..., selective: Literal[False] = ...,
                    decoys: int = ..., key_vault: str | None = ..., now: int | None = ...
                    ) -> CredentialAndPurposeKey: ...

    @overload
    async def issue(self, issuer: IdentityRef | None, subject: IdentityRef, values: Mapping[str, Any], *,
                    ttl: int = ..., schema_id: int = ..., selective: Literal[True],
                    decoys: int = ..., key_vault: str | None = ..., now: int | None = ...
                    ) -> DisclosableCredential: ...

    @overload
    async def issue(self, issuer: IdentityRef | None, subject: IdentityRef, values: Mapping[str, Any], *,
                    ttl: int = ..., schema_id: int = ..., selective: bool,
                    decoys: int = ..., key_vault: str | None = ..., now: int | None = ...
                    ) -> CredentialAndPurposeKey | DisclosableCredential: ...

    async def issue(self, issuer: IdentityRef | None, subject: IdentityRef, values: Mapping[str, Any], *,
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
        subject_identity = await self.identities.resolve(subject)
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

    async def verify(self, credential: CredentialLike,
                     authorities: IdentityRef | Iterable[IdentityRef], *,
                     subject: IdentityRef | None = None, now: int | None = None,
                     record: bool = True) -> VerifiedCredential:
        """Verify a credential (a disclosable one reveals all its disclosures) and, with
        ``record``, keep its attributes in the attribute store.

        ``credential`` is the object, its bytes or its hex; ``authorities`` (one or several) and
        ``subject`` are identities, names, identifiers or change histories (those are stored as
        known identities only once the credential verified); ``now`` defaults to the clock."""
        t = _now(now)
        obj = _credential_object(credential)
        auths = await self.resolve(authorities, store=False)
        expected = await self.identities.resolve(subject, store=False) if subject is not None \
            else None
        v = await self._verify(obj, auths, expected, t, record)
        for identity in (*auths, expected):
            if identity is not None:
                await self.identities.remember(identity)
        return v

    async def _verify(self, credential: CredentialAndPurposeKey | DisclosableCredential,
                      authorities: list[Identity], subject: Identity | None, t: int,
                      record: bool) -> VerifiedCredential:
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
    async def store(self, holder: IdentityRef | None, credential: CredentialLike,
                    authorities: IdentityRef | Iterable[IdentityRef], *,
                    now: int | None = None) -> StoredCredential:
        """Verify a credential about the local identity ``holder`` (default: the default
        identity) and keep it in its wallet."""
        named = await self.identities.get(holder)
        obj = _credential_object(credential)
        v = await self.verify(obj, authorities, subject=named.identity, now=now, record=False)
        return await self.wallet.add(named.identifier, v.issuer, v.subject, v.schema, v.selective,
                                     obj.encode(), v.created_at, v.expires_at,
                                     now=_now(now))

    async def list_stored(self, holder: IdentityRef | None = None) -> list[StoredCredential]:
        """The wallet: every held credential, or those of the local identity ``holder``."""
        if holder is None:
            return await self.wallet.list()
        return await self.wallet.list((await self.identities.get(holder)).identifier)

    # -- presentations ---------------------------------------------------------------------------
    async def present(self, holder: IdentityRef | None, held: CredentialLike,
                      reveal: Iterable[str], *, audience: str, nonce: str,
                      now: int | None = None) -> Presentation:
        """A presentation of the selective credential ``held`` (object, bytes or hex) by the
        local identity ``holder`` (default: the default identity) revealing ``reveal``."""
        named = await self.identities.get(holder)
        obj = _credential_object(held)
        if not isinstance(obj, DisclosableCredential):
            raise UsageError("only a selective credential with its disclosures can be presented")
        if isinstance(reveal, str):
            reveal = [reveal]
        _, vault = await self.identities.vault(named.vault)
        return await present(obj, named.identity, vault, named.key_handle, reveal=reveal,
                             audience=audience, nonce=nonce, now=_now(now))

    async def verify_presentation(self, presentation: Presentation | bytes | str,
                                  authorities: IdentityRef | Iterable[IdentityRef], *,
                                  audience: str, nonce: str, subject: IdentityRef | None = None,
                                  now: int | None = None, record: bool = True
                                  ) -> VerifiedPresentation:
        """Verify a presentation (object, bytes or hex), then record its nonce (a second use is
        a replay) and, with ``record``, the revealed attributes."""
        t = _now(now)
        obj = _decoded(presentation)
        if not isinstance(obj, Presentation):
            raise DecodeError("expected a presentation", field="presentation")
        auths = await self.resolve(authorities, store=False)
        expected = await self.identities.resolve(subject, store=False) if subject is not None \
            else None
        known_holder = await self.known(holder_of(obj))
        vp = verify_presentation(obj, auths, audience=audience, nonce=nonce, now=t,
                                 expected_subject=expected, known_holder=known_holder)
        await self._typed_check(vp.credential)
        if not await self.nonces.use(audience, nonce, expires_at=vp.presented_at + MAX_AGE, now=t):
            raise VerificationError(f"nonce {nonce!r} was already used for audience {audience!r} "
                                    "(a replayed presentation)")
        if known_holder is None or len(vp.holder.changes) > len(known_holder.changes):
            await self.identities.remember(vp.holder, now=t)
        if record:
            c = vp.credential
            await self.attributes.record(c.subject, c.issuer, c.attributes, schema=c.schema,
                                         created_at=c.created_at, expires_at=c.expires_at,
                                         replace=False)
        for identity in (*auths, expected):
            if identity is not None:
                await self.identities.remember(identity)
        return vp
