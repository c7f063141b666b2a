"""``truststack credential``: issue, verify, show, store, list, present, verify-presentation,
attributes."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

from trust.cli.common import (
    UNIX_TIME,
    AsciiInt,
    emit,
    emit_table,
    iso_time,
    output_option,
    read_bytes_file,
    read_value,
    run,
    terminal_safe,
)

if TYPE_CHECKING:
    from trust.credentials.repositories import StoredCredential
    from trust.credentials.service import CredentialService
    from trust.credentials.verification import VerifiedCredential
    from trust.identities.identity import Identity
    from trust.models.credential import Artifact

T = TypeVar("T")

TIME = click.option("--time", "at", type=UNIX_TIME, metavar="UNIX_SECONDS",
                    help="Check validity at this time instead of now.")
AUTHORITY = click.option("--authority", "authorities", multiple=True, required=True,
                         metavar="A", help="A trusted issuer: a local identity's name, a known "
                         "identifier, or a change history (hex or @PATH). Repeatable.")
FILE = click.option("--file", "file", type=click.Path(dir_okay=False),
                    help="Read the hex (or binary) object from this file.")


def _service() -> CredentialService:
    from trust.services import open_credentials

    return open_credentials()


def _with_service(fn: Callable[[CredentialService], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        service = _service()
        try:
            return await fn(service)
        finally:
            await service.close()

    return run(go())


def _when(ts: int) -> str:
    return iso_time(ts)


def _now(at: int | None) -> int:
    return int(time.time()) if at is None else at


def _object_bytes(value: str | None, file: str | None, what: str) -> bytes:
    """A hex object given inline, as @PATH, or with --file (hex text or raw bytes)."""
    from trust.errors import DecodeError, UsageError

    if file is not None and value is None:
        data = read_bytes_file(file, what)
        try:
            return bytes.fromhex(data.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return data
    text = read_value(value, file, what=what)
    if not text:
        raise UsageError(f"the {what} is empty")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise DecodeError(f"the {what} is not a hex string", field=what) from None


def _decode(value: str | None, file: str | None, what: str = "credential") -> Artifact:
    from trust.models.credential import decode_artifact

    return decode_artifact(_object_bytes(value, file, what))


def _ref(value: str) -> str:
    """An identity reference; @PATH reads it (a change history) from a file."""
    return read_value(value, None, what="identity") if value.startswith("@") else value.strip()


async def _authorities(service: CredentialService, refs: tuple[str, ...]) -> list[Identity]:
    """The trusted issuers, verified but not stored yet (see :func:`_remember`)."""
    return await service.resolve([_ref(a) for a in refs], store=False)


async def _remember(service: CredentialService, *identities: Identity | None) -> None:
    """Once a command has succeeded, keep the histories it was given as known identities (a
    failed command stores nothing)."""
    for identity in identities:
        if identity is not None:
            await service.identities.remember(identity)


def _parse_attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    from trust.errors import UsageError

    out: dict[str, str] = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"an attribute is NAME=VALUE, got {p!r}")
        if name in out:
            raise UsageError(f"attribute {name!r} is given twice")
        out[name] = value
    return out


async def _typed(service: CredentialService, schema_id: int, attributes: dict[bytes, bytes]
                 ) -> dict[str, Any]:
    from trust.credentials.schemas import typed_attributes

    return typed_attributes(dict(sorted(attributes.items())), await service.schema(schema_id))


def _verified_json(v: VerifiedCredential, typed: dict[str, Any]) -> dict[str, Any]:
    return {
        "valid": True,
        "subject": v.subject,
        "issuer": v.issuer,
        "format": "selective" if v.selective else "ockam",
        "schema": v.schema,
        "attributes": typed,
        "hidden_digests": v.hidden,
        "created_at": v.created_at,
        "expires_at": v.expires_at,
    }


def _value_text(v: Any) -> str:
    """A typed attribute value as text: a string as it is, other values as JSON."""
    import json

    return v if isinstance(v, str) else json.dumps(v)


def _show_value(v: Any) -> str:
    """One value for plain output: :func:`_value_text`, made terminal-safe."""
    return terminal_safe(_value_text(v))


def _verified_plain(data: dict[str, Any], extra: list[str] | None = None) -> str:
    t = terminal_safe
    lines = ["valid", f"Subject: {t(data['subject'])}", f"Issuer: {t(data['issuer'])}",
             f"Format: {data['format']}", f"Schema: {data['schema']}",
             f"Created at: {data['created_at']} ({_when(data['created_at'])})",
             f"Expires at: {data['expires_at']} ({_when(data['expires_at'])})", *(extra or []),
             "Attributes:"]
    lines += [f"  {t(k)}: {_show_value(v)}" for k, v in data["attributes"].items()] or ["  (none)"]
    if data["format"] == "selective":
        lines.append(f"Undisclosed digests: {data['hidden_digests']}")
    return "\n".join(lines)


@click.group("credential")
def cli() -> None:
    """Credentials: signed attributes about an identity (Ockam format, or selective disclosure).

    \b
    Examples:
      truststack credential issue --identity authority --subject alice --attribute role=admin
      truststack credential verify @cred.hex --authority authority
      truststack credential present --identity alice @held.hex --reveal role \\
          --audience api --nonce 8f2c
    """


@cli.command("issue")
@click.option("--identity", "issuer", metavar="NAME",
              help="The issuing local identity (default: the default identity).")
@click.option("--subject", required=True, metavar="S",
              help="Who the credential is about: a local name, a known identifier, or a change "
              "history (hex or @PATH; verified and imported).")
@click.option("--attribute", "attributes", multiple=True, metavar="NAME=VALUE",
              help="An attribute (repeatable).")
@click.option("--ttl", default="30d", show_default=True, help="How long the credential is valid.")
@click.option("--schema", "schema_id", default="0", show_default=True, metavar="ID",
              help="Schema identifier; a schema created in this home checks and encodes values.")
@click.option("--selective", is_flag=True,
              help="Selective disclosure: sign salted digests; the output carries the disclosures "
              "for the holder.")
@click.option("--decoys", type=AsciiInt(0, 1024), default=0, show_default=True,
              help="Random decoy digests that hide the number of attributes (with --selective).")
@click.option("--key-vault", metavar="VAULT",
              help="Vault holding the credential-signing purpose key (created there on first use).")
@TIME
@output_option
def issue(issuer: str | None, subject: str, attributes: tuple[str, ...], ttl: str, schema_id: str,
          selective: bool, decoys: int, key_vault: str | None, at: int | None, output: str) -> None:
    """Issue a credential about SUBJECT (plain output: the credential hex).

    With --selective the hex is the holder's copy: the credential and every disclosure.

    \b
    Example:
      truststack credential issue --identity authority --subject @bob.hex \\
          --attribute role=member --attribute level=3 --schema 7 --ttl 1h
    """
    from trust.cli.common import parse_duration
    from trust.credentials.schemas import check_schema_id
    from trust.errors import UsageError
    from trust.models.credential import DisclosableCredential

    values = _parse_attributes(attributes)
    seconds = int(parse_duration(ttl, allow_zero=False))
    if seconds < 1:
        raise UsageError(f"--ttl {ttl!r} is shorter than a second")
    sid = check_schema_id(schema_id)
    now = _now(at)

    async def go(s: CredentialService) -> tuple[Any, dict[str, Any]]:
        subject_identity = await s.identities.resolve(_ref(subject), store=False)
        result = await s.issue(issuer, subject_identity, values, ttl=seconds, schema_id=sid,
                               selective=selective, decoys=decoys, key_vault=key_vault, now=now)
        await _remember(s, subject_identity)
        if isinstance(result, DisclosableCredential):
            attrs = {d.name: d.value for d in result.disclosures}
        else:
            attrs = result.credential.payload.attributes.as_dict()  # type: ignore[union-attr]
        return result, await _typed(s, sid, attrs)

    result, typed = _with_service(go)
    cred = result.credential if isinstance(result, DisclosableCredential) else result
    c = cred.credential
    data = {"credential": result.hex(), "format": "selective" if selective else "ockam",
            "subject": c.subject_text, "issuer": "I" + cred.issuer.hex(), "schema": c.schema,
            "attributes": typed, "created_at": c.created_at, "expires_at": c.expires_at}
    if selective:
        data["digests"] = len(c.payload.digests)  # type: ignore[union-attr]
    emit(output, data, result.hex())


@cli.command("verify")
@click.argument("credential", metavar="HEX|@PATH", required=False)
@FILE
@AUTHORITY
@click.option("--subject", metavar="S", help="Require this subject (name, identifier or history).")
@TIME
@output_option
def verify(credential: str | None, file: str | None, authorities: tuple[str, ...],
           subject: str | None, at: int | None, output: str) -> None:
    """Verify a credential issued by one of the authorities (exit 0 only if valid).

    A valid credential's attributes are recorded in this home's attribute store.

    \b
    Example:
      truststack credential verify @cred.hex --authority authority --time 1700000000
    """
    from trust.errors import DecodeError
    from trust.models.credential import CredentialAndPurposeKey, DisclosableCredential

    obj = _decode(credential, file)
    if not isinstance(obj, (CredentialAndPurposeKey, DisclosableCredential)):
        raise DecodeError("expected a credential with its purpose key (a presentation is "
                          "checked with verify-presentation)", field="credential")

    async def go(s: CredentialService) -> dict[str, Any]:
        auths = await _authorities(s, authorities)
        subj = await s.identities.resolve(_ref(subject), store=False) if subject else None
        v = await s.verify(obj, auths, subject=subj, now=_now(at))
        await _remember(s, *auths, subj)
        return _verified_json(v, await _typed(s, v.schema, v.attributes))

    data = _with_service(go)
    emit(output, data, lambda: _verified_plain(data))


def _credential_view(cpk: Any, typed: dict[str, Any] | None) -> dict[str, Any]:
    c = cpk.credential
    a = cpk.purpose_key_attestation.attestation_data
    key = a.public_key.signing
    view: dict[str, Any] = {
        "format": "selective" if c.is_selective else "ockam",
        "subject": c.subject_text,
        "subject_latest_change_hash": c.subject_latest_change_hash.hex()
        if c.subject_latest_change_hash else None,
        "issuer": "I" + a.subject.hex(),
        "schema": c.schema,
        "created_at": c.created_at,
        "expires_at": c.expires_at,
    }
    if c.is_selective:
        view["digests"] = [d.hex() for d in c.payload.digests]
    else:
        view["attributes"] = typed
    view["signing_key"] = {
        "type": key.key_type.value if key else None,
        "public_key": key.hex if key else None,
        "attested_by": "I" + a.subject.hex(),
        "issuer_latest_change_hash": a.subject_latest_change_hash.hex(),
        "created_at": a.created_at,
        "expires_at": a.expires_at,
    }
    return view


def _disclosures_view(disclosures: Any) -> list[dict[str, Any]]:
    from trust.credentials.schemas import text_of

    return [{"name": text_of(d.name), "value": text_of(d.value), "salt": d.salt.hex(),
             "digest": d.digest.hex()} for d in disclosures]


@cli.command("show")
@click.argument("credential", metavar="HEX|@PATH", required=False)
@FILE
@output_option
def show(credential: str | None, file: str | None, output: str) -> None:
    """Decode a credential, a holder's selective credential or a presentation, without
    verifying it.

    \b
    Example:
      truststack credential show @cred.hex --output json
    """
    from trust.credentials.schemas import typed_attributes
    from trust.models.credential import (
        Credential,
        CredentialAndPurposeKey,
        DisclosableCredential,
        Presentation,
    )

    obj = _decode(credential, file)
    data: dict[str, Any]
    if isinstance(obj, Credential):
        view: dict[str, Any] = {"format": "selective" if obj.is_selective else "ockam",
                                "subject": obj.subject_text, "schema": obj.schema,
                                "created_at": obj.created_at, "expires_at": obj.expires_at}
        if not obj.is_selective:
            view["attributes"] = typed_attributes(obj.payload.attributes.as_dict(), None)  # type: ignore[union-attr]
        data = {"kind": "credential", **view}
    elif isinstance(obj, CredentialAndPurposeKey):
        typed = None if obj.credential.is_selective else \
            typed_attributes(obj.credential.payload.attributes.as_dict(), None)  # type: ignore[union-attr]
        data = {"kind": "credential_and_purpose_key", **_credential_view(obj, typed)}
    elif isinstance(obj, DisclosableCredential):
        data = {"kind": "disclosable_credential", **_credential_view(obj.credential, None),
                "disclosures": _disclosures_view(obj.disclosures)}
    else:
        assert isinstance(obj, Presentation)
        pd = obj.presentation_data
        data = {"kind": "presentation", "holder": "I" + pd.holder.identifier.hex(),
                "audience": pd.audience, "nonce": pd.nonce, "presented_at": pd.presented_at,
                "disclosures": _disclosures_view(pd.disclosures),
                "credential": _credential_view(pd.credential, None)}

    def plain() -> str:
        lines = [f"Kind: {data['kind']}"]
        for k, v in data.items():
            if k == "kind":
                continue
            if isinstance(v, dict):
                lines.append(f"{k}:")
                lines += [f"  {terminal_safe(kk)}: {_show_value(vv)}" for kk, vv in v.items()]
            elif isinstance(v, list):
                lines.append(f"{k}: {len(v)}")
                lines += [f"  {_show_value(i)}" for i in v]
            else:
                lines.append(f"{k}: {_show_value(v) if v is not None else '-'}")
        return "\n".join(lines)

    emit(output, data, plain)


LIST_COLUMNS = ("id", "holder_shown", "format", "issuer", "schema", "expires_at", "expired")
"""``credential list`` plain columns: id, holder (name, else identifier), format, issuer, schema,
expiry (ISO time), expired (yes/no)."""

ATTRIBUTE_COLUMNS = ("subject", "name", "value", "issuer", "schema", "expires_at")
"""``credential attributes`` plain columns: subject, name, value, issuer, schema, expiry."""


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _stored_json(sc: StoredCredential, names: dict[str, str], now: int) -> dict[str, Any]:
    return {"id": sc.id, "holder": sc.holder, "holder_name": names.get(sc.holder),
            "issuer": sc.issuer, "subject": sc.subject,
            "format": "selective" if sc.selective else "ockam", "schema": sc.schema,
            "created_at": sc.created_at, "expires_at": sc.expires_at, "stored_at": sc.stored_at,
            "expired": sc.expires_at < now, "credential": sc.data.hex()}


@cli.command("store")
@click.argument("credential", metavar="HEX|@PATH", required=False)
@FILE
@click.option("--identity", "holder", metavar="NAME",
              help="The local identity the credential is about (default: the default identity).")
@AUTHORITY
@TIME
@output_option
def store(credential: str | None, file: str | None, holder: str | None,
          authorities: tuple[str, ...], at: int | None, output: str) -> None:
    """Verify a credential about a local identity, then keep it in that identity's wallet.

    \b
    Example:
      truststack credential store --identity alice @cred.hex --authority authority
    """
    from trust.errors import DecodeError
    from trust.models.credential import CredentialAndPurposeKey, DisclosableCredential

    obj = _decode(credential, file)
    if not isinstance(obj, (CredentialAndPurposeKey, DisclosableCredential)):
        raise DecodeError("expected a credential with its purpose key", field="credential")
    now = _now(at)

    async def go(s: CredentialService) -> dict[str, Any]:
        auths = await _authorities(s, authorities)
        sc = await s.store(holder, obj, auths, now=now)
        await _remember(s, *auths)
        local = await s.identities.local.by_identifier(sc.holder)
        return _stored_json(sc, {sc.holder: local.name} if local else {}, now)

    data = _with_service(go)
    emit(output, data, f"Stored credential {data['id']} for "
         f"{terminal_safe(data['holder_name'] or data['holder'])}")


@cli.command("list")
@click.option("--identity", "holder", metavar="NAME", help="Only this identity's credentials.")
@TIME
@output_option
def list_(holder: str | None, at: int | None, output: str) -> None:
    """List the credentials in the wallets of local identities.

    \b
    Example:
      truststack credential list --identity alice --output json
    """
    now = _now(at)

    async def go(s: CredentialService) -> list[dict[str, Any]]:
        names = {n.identifier: n.name for n in await s.identities.list()}
        return [_stored_json(sc, names, now) for sc in await s.list_stored(holder)]

    items = _with_service(go)
    for i in items:
        i["holder_shown"] = i["holder_name"] or i["holder"]
    emit_table(output, items if output != "json" else [_without(i, "holder_shown") for i in items],
               LIST_COLUMNS, formats={"expires_at": iso_time})


@cli.command("present")
@click.argument("credential", metavar="HEX|@PATH", required=False)
@FILE
@click.option("--identity", "holder", metavar="NAME",
              help="The holder (the credential's subject; default: the default identity).")
@click.option("--reveal", "reveal", multiple=True, metavar="K1,K2",
              help="Attributes to disclose (comma-separated, repeatable; default: none).")
@click.option("--audience", required=True, help="Who the presentation is for.")
@click.option("--nonce", required=True, help="The verifier's challenge.")
@TIME
@output_option
def present_(credential: str | None, file: str | None, holder: str | None,
             reveal: tuple[str, ...], audience: str, nonce: str, at: int | None,
             output: str) -> None:
    """Present a selective credential, revealing only some attributes (plain output: the
    presentation hex).

    \b
    Example:
      truststack credential present --identity alice @held.hex --reveal role,level \\
          --audience https://api.example --nonce 5b1e9c
    """
    from trust.errors import DecodeError
    from trust.models.credential import DisclosableCredential

    obj = _decode(credential, file)
    if not isinstance(obj, DisclosableCredential):
        raise DecodeError("expected a selective credential with its disclosures (issue it with "
                          "--selective)", field="credential")
    names = [n.strip() for r in reveal for n in r.split(",") if n.strip()]
    now = _now(at)

    async def go(s: CredentialService) -> Any:
        return await s.present(holder, obj, names, audience=audience, nonce=nonce, now=now)

    p = _with_service(go)
    pd = p.presentation_data
    from trust.credentials.schemas import text_of

    emit(output, {"presentation": p.hex(), "holder": "I" + pd.holder.identifier.hex(),
                  "audience": pd.audience, "nonce": pd.nonce, "presented_at": pd.presented_at,
                  "revealed": [text_of(d.name) for d in pd.disclosures]},
         p.hex())


@cli.command("verify-presentation")
@click.argument("presentation", metavar="HEX|@PATH", required=False)
@FILE
@AUTHORITY
@click.option("--audience", required=True, help="This verifier's audience name.")
@click.option("--nonce", required=True, help="The challenge this verifier gave.")
@click.option("--subject", metavar="S", help="Require this holder (name, identifier or history).")
@TIME
@output_option
def verify_presentation(presentation: str | None, file: str | None, authorities: tuple[str, ...],
                        audience: str, nonce: str, subject: str | None, at: int | None,
                        output: str) -> None:
    """Verify a presentation: issuer, revealed digests, holder binding, audience, nonce and
    freshness; a nonce is accepted once (exit 0 only if valid).

    \b
    Example:
      truststack credential verify-presentation @p.hex --authority authority \\
          --audience https://api.example --nonce 5b1e9c
    """
    from trust.errors import DecodeError
    from trust.models.credential import Presentation

    obj = _decode(presentation, file, "presentation")
    if not isinstance(obj, Presentation):
        raise DecodeError("expected a presentation", field="presentation")

    async def go(s: CredentialService) -> dict[str, Any]:
        auths = await _authorities(s, authorities)
        subj = await s.identities.resolve(_ref(subject), store=False) if subject else None
        vp = await s.verify_presentation(obj, auths, audience=audience, nonce=nonce,
                                         subject=subj, now=_now(at))
        await _remember(s, *auths, subj)
        v = vp.credential
        return {**_verified_json(v, await _typed(s, v.schema, v.attributes)),
                "holder": vp.holder.identifier, "audience": vp.audience, "nonce": vp.nonce,
                "presented_at": vp.presented_at}

    data = _with_service(go)
    emit(output, data, lambda: _verified_plain(data, [
        f"Audience: {terminal_safe(data['audience'])}", f"Nonce: {terminal_safe(data['nonce'])}",
        f"Presented at: {data['presented_at']} ({_when(data['presented_at'])})"]))


@cli.command("attributes")
@click.argument("subject", metavar="[SUBJECT]", required=False)
@TIME
@output_option
def attributes(subject: str | None, at: int | None, output: str) -> None:
    """Show the verified, unexpired attributes in this home's attribute store (of SUBJECT: a
    local name or an identifier; default: every subject).

    \b
    Example:
      truststack credential attributes I6b9c10a2... --output json
    """
    now = _now(at)

    async def go(s: CredentialService) -> list[dict[str, Any]]:
        if subject is None:
            subjects = await s.attributes.subjects(now=now)
        elif subject.startswith("I") and len(subject) == 65:
            subjects = [subject]
        else:
            subjects = [(await s.identities.get(subject)).identifier]
        source = s.subject_attributes()
        out = []
        for sub in subjects:
            for a in await source.records(sub, now=now):
                out.append({"subject": sub, "name": a.name, "value": a.value, "issuer": a.issuer,
                            "schema": a.schema, "created_at": a.created_at,
                            "expires_at": a.expires_at})
        return out

    items = _with_service(go)
    emit_table(output, items, ATTRIBUTE_COLUMNS,
               formats={"value": _value_text, "expires_at": iso_time})
