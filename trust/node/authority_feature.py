"""The authority feature of a node process: a node whose record says it is an authority serves
the authority's services (member management, ticket issuer and acceptor, credential issuer,
revocation list) through its ``api`` secure-channel listener.

``truststack authority create`` writes the node's record (``node.json``) with an ``authority``
object, recorded so that ``node start`` serves the same authority again::

    "authority": {
      "admins": ["I…"],                       # the identity that ran `authority create`
      "database": "postgresql://…" | null,    # null: SQLite in the node's directory
      "trusted_identities": {"I…": {"attr": "value"}},
      "credential_ttl": 3600                  # seconds
    }

The record is read as hostile input (:func:`authority_options` checks every field). When the
node starts, :func:`start` opens the database and starts the authority's workers
(:mod:`trust.enrollment.authority`) as the node's identity; :func:`stop` stops them and closes
the database. Control method ``authority.show`` reports what the node serves.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trust.errors import DecodeError, StorageError, TrustError, UsageError

__all__ = [
    "DEFAULT_CREDENTIAL_TTL",
    "MAX_CREDENTIAL_TTL",
    "MIN_CREDENTIAL_TTL",
    "AuthorityOptions",
    "authority_options",
    "check_database_url",
    "default_database_url",
    "parse_trusted_identities",
    "redact_url",
    "register",
    "start",
    "stop",
]

log = logging.getLogger(__name__)

DEFAULT_CREDENTIAL_TTL = 3600
"""Credentials the authority issues are valid for this long by default (1 h)."""
MIN_CREDENTIAL_TTL = 60
MAX_CREDENTIAL_TTL = 30 * 86400
"""The longest credential time to live an authority accepts (30 days, Ockam's default)."""
MAX_ADMINS = 64
MAX_URL = 2048
_IDENTIFIER = re.compile(r"^I[0-9a-f]{64}$")


@dataclass(frozen=True)
class AuthorityOptions:
    """What an authority node's record says it serves."""

    admins: tuple[str, ...]
    database: str | None = None
    trusted_identities: dict[str, dict[str, str]] = field(default_factory=dict)
    credential_ttl: int = DEFAULT_CREDENTIAL_TTL

    def to_record(self) -> dict[str, Any]:
        return {"admins": list(self.admins), "database": self.database,
                "trusted_identities": self.trusted_identities,
                "credential_ttl": self.credential_ttl}

    def public(self) -> dict[str, Any]:
        """What may be shown: the database URL without its password."""
        return {"admins": list(self.admins),
                "database": None if self.database is None else redact_url(self.database),
                "trusted_identities": self.trusted_identities,
                "credential_ttl": self.credential_ttl}


def _identifier(value: Any, what: str) -> str:
    """``I`` + 64 hex digits (any case), returned as ``I`` + lowercase hex."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or not _IDENTIFIER.fullmatch("I" + text[1:].lower()) or text[:1] not in "Ii":
        shown = str(value)
        shown = shown[:20] + "..." if len(shown) > 20 else shown
        raise UsageError(f"{what}: {shown!r} is not an identifier (I followed by 64 hex digits)")
    return "I" + text[1:].lower()


def parse_trusted_identities(doc: Any) -> dict[str, dict[str, str]]:
    """Ockam's ``--trusted-identities`` JSON object ``{"I…": {"attr": "value"}}`` (text or
    parsed), checked by the authority's own rules
    (:func:`trust.enrollment.service.parse_trusted_identities`)."""
    from trust.enrollment.service import parse_trusted_identities as parse

    if isinstance(doc, list):
        raise UsageError('the trusted identities must be a JSON object {"I...": {"attr": '
                         '"value"}}, not an array')
    try:
        return parse(doc)
    except DecodeError as e:
        raise UsageError(f"--trusted-identities: {e}") from None


def check_database_url(url: Any) -> str:
    """A database URL the authority may use: ``sqlite:///PATH`` or ``postgresql://…``."""
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL or any(
            ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UsageError(f"--database must be a URL of at most {MAX_URL} characters without "
                         "spaces or control characters")
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres") or "://" not in url:
        raise UsageError("--database must be sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    return url


def redact_url(url: str) -> str:
    """``url`` without its password, in the user part or the query string
    (``postgresql://u:***@h/db?sslpassword=***``)."""
    from trust.storage.sql import redact_url as without_user_password

    text = without_user_password(url)
    head, sep, query = text.partition("?")
    if not sep:
        return text
    parts = []
    for item in query.split("&"):
        key, eq, _ = item.partition("=")
        parts.append(f"{key}=***" if eq and key.lower() in _SECRET_PARAMETERS else item)
    return head + "?" + "&".join(parts)


_SECRET_PARAMETERS = frozenset({"password", "sslpassword", "passfile"})


def default_database_url(node_dir: Path) -> str:
    """The SQLite database of an authority created without ``--database``."""
    return f"sqlite:///{node_dir / 'authority.sqlite'}"


def authority_options(config: dict[str, Any]) -> AuthorityOptions | None:
    """The authority options in a node record (``None``: the node is not an authority); a
    record that does not hold valid options is a :class:`StorageError`."""
    section = config.get("authority")
    if section is None:
        return None
    name = config.get("name")
    try:
        if not isinstance(section, dict):
            raise UsageError("'authority' is not an object")
        admins = section.get("admins") or []
        if not isinstance(admins, list) or len(admins) > MAX_ADMINS:
            raise UsageError(f"'admins' must be a list of at most {MAX_ADMINS} identifiers")
        database = section.get("database")
        if database is not None:
            database = check_database_url(database)
        ttl = section.get("credential_ttl", DEFAULT_CREDENTIAL_TTL)
        if type(ttl) is not int or not MIN_CREDENTIAL_TTL <= ttl <= MAX_CREDENTIAL_TTL:
            raise UsageError("'credential_ttl' is not a number of seconds in range")
        return AuthorityOptions(
            admins=tuple(_identifier(a, "admins") for a in admins), database=database,
            trusted_identities=parse_trusted_identities(section.get("trusted_identities") or {}),
            credential_ttl=ttl)
    except (UsageError, DecodeError) as e:
        raise StorageError(f"node {name}: its authority record is not valid ({e}); create the "
                           "authority again") from None


def check_credential_ttl(seconds: float) -> int:
    if not MIN_CREDENTIAL_TTL <= seconds <= MAX_CREDENTIAL_TTL:
        raise UsageError(f"--credential-ttl must be between {MIN_CREDENTIAL_TTL}s and "
                         f"{MAX_CREDENTIAL_TTL // 86400}d")
    return int(seconds)


# -- the node-process hooks --------------------------------------------------------------------

SIGNING_KEY_SETTING = "credential_signing_key"
"""The authority setting (in its database) naming the credential-signing key every replica
uses: ``{"vault": NAME, "handle": H, "attestation": HEX}`` (JSON)."""


@dataclass
class AuthorityState:
    """What the feature keeps in ``runtime.features[__name__]``."""

    options: AuthorityOptions
    url: str
    storage: Any
    repository: Any
    authority: Any


def _decode_signing_setting(value: bytes) -> tuple[str, str, Any]:
    """(vault name, key handle, attestation) from the stored setting."""
    import json

    from trust.models.purpose_key import PurposeKeyAttestation

    try:
        doc = json.loads(value.decode("utf-8"))
        vault, handle, att = doc["vault"], doc["handle"], doc["attestation"]
        if not (isinstance(vault, str) and isinstance(handle, str) and isinstance(att, str)):
            raise ValueError("wrong types")
        return vault, handle, PurposeKeyAttestation.decode(bytes.fromhex(att))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, TrustError) as e:
        raise StorageError(f"the authority's signing-key setting in its database is malformed "
                           f"({type(e).__name__})") from None


async def _stored_signer(manager: Any, identity: Any, value: bytes, needed_until: int) -> Any:
    """The signer the database names, or ``None`` when its attestation no longer lasts until
    ``needed_until`` (then a new key is made)."""
    from trust.enrollment.signer import AuthoritySigner

    vault_name, handle, att = _decode_signing_setting(value)
    if att.attestation_data.expires_at < needed_until:
        return None
    try:
        _, vault = await manager.vault(vault_name)
        public = await vault.public_key(handle)
    except Exception as e:
        raise StorageError(f"the authority's credential-signing key (vault {vault_name!r}) is "
                           f"not in this home ({type(e).__name__}): replicas need the same "
                           "identity and vault (a copy of the home, or a KMS vault)") from None
    key = att.attestation_data.public_key.signing
    if key is None or key != public:
        raise StorageError("the authority's credential-signing key in this home does not match "
                           "the key attested in its database")
    return AuthoritySigner(identity, vault, handle, att)


async def authority_signer(manager: Any, identity: Any, repository: Any, *,
                           credential_ttl: int, now: int) -> Any:
    """The authority's :class:`~trust.enrollment.signer.AuthoritySigner`: the credential-signing
    key recorded in the authority's database (shared by replicas), or, when there is none yet
    (or it expires before a credential issued now would), a key of the identity's vault,
    attested and recorded there; of replicas racing to record one, the first wins and the
    others use it."""
    import json

    from trust.identities.manager import CREDENTIAL_SIGNING

    needed_until = now + credential_ttl + 3600
    stored = await repository.get_setting(SIGNING_KEY_SETTING)
    if stored is not None:
        signer = await _stored_signer(manager, identity, stored, needed_until)
        if signer is not None:
            return signer
    _, handle, att = await manager.credential_signing_key(
        identity.name, now=now, min_remaining=credential_ttl + 3600)
    vault_name = next((pk.vault for pk in await manager.purpose_keys.list(identity.identifier,
                                                                          CREDENTIAL_SIGNING)
                       if pk.key_handle == handle), identity.vault)
    value = json.dumps({"vault": vault_name, "handle": handle,
                        "attestation": att.encode().hex()}).encode()
    winner = await repository.put_setting(SIGNING_KEY_SETTING, value, replace=stored is not None)
    signer = await _stored_signer(manager, identity, winner, needed_until)
    if signer is None:
        raise StorageError("the authority's credential-signing key in its database expires too "
                           "soon")
    return signer


async def start(runtime: Any) -> None:
    """Serve the authority when the node's record says it is one (else do nothing)."""
    options = authority_options(runtime.config)
    if options is None:
        return  # (before the imports: a member node starts ~60 ms sooner without them)
    import time

    from trust.enrollment.authority import start_authority
    from trust.enrollment.service import AuthorityOptions as ServiceOptions
    from trust.services import open_identities
    from trust.storage import open_storage
    from trust.storage.authority import SqlAuthorityRepository

    url = options.database or default_database_url(runtime.paths.dir.resolve())
    storage = open_storage(url)
    try:
        await storage.open()
        repository = SqlAuthorityRepository(storage.db, runtime.identity.identifier)
        manager = open_identities(runtime.paths.home)
        try:
            signer = await authority_signer(manager, runtime.identity, repository,
                                            credential_ttl=options.credential_ttl,
                                            now=int(time.time()))
        finally:
            await manager.close()
        service_options = ServiceOptions(credential_ttl=options.credential_ttl,
                                         admins=frozenset(options.admins),
                                         trusted_identities=options.trusted_identities)
        authority = await start_authority(runtime.node, signer, repository, service_options)
    except BaseException:
        await storage.close()
        raise
    runtime.features[__name__] = AuthorityState(options, url, storage, repository, authority)
    log.info("node %s serves authority %s (database %s, %d pre-trusted identities)",
             runtime.name, signer.identifier, redact_url(url), len(options.trusted_identities))


async def stop(runtime: Any) -> None:
    state = runtime.features.pop(__name__, None)
    if state is None:
        return
    try:
        await state.authority.stop()
    finally:
        await state.storage.close()


def register(server: Any, runtime: Any) -> None:
    """``authority.show``: what the node serves as an authority."""

    async def show(params: dict[str, Any]) -> dict[str, Any]:
        from trust.errors import NotFoundError

        state = runtime.features.get(__name__)
        if state is None:
            raise NotFoundError(f"node {runtime.name} is not an authority")
        authority = state.authority
        return {"identifier": authority.identifier, "database": redact_url(state.url),
                "services": list(authority.addresses), "stats": dict(authority.stats),
                **{k: v for k, v in state.options.public().items() if k != "database"}}

    server.register("authority.show", show)
