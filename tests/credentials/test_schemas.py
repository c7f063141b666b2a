"""Schemas and typed values: issuers refuse what does not match; verifiers read typed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.credentials.helpers import NOW, run
from trust.credentials.issuance import sign_credential_data
from trust.credentials.schemas import (
    AttributeType,
    Schema,
    decode_value,
    encode_value,
    prepare_attributes,
    typed_attributes,
)
from trust.errors import ConflictError, UsageError, VerificationError
from trust.models.credential import Attributes, CredentialAndPurposeKey, CredentialData
from trust.services import open_credentials

SCHEMA = Schema.create(7, ["role:string", "level:int", "ratio:float", "admin:bool",
                           "groups:list"], "test schema")


def test_wire_encodings() -> None:
    assert encode_value(AttributeType.INT, "  042 ") == b"42"
    assert encode_value(AttributeType.INT, -7) == b"-7"
    assert encode_value(AttributeType.FLOAT, "3") == b"3.0"
    assert encode_value(AttributeType.FLOAT, 0.1) == b"0.1"
    assert encode_value(AttributeType.BOOL, "TRUE") == b"true"
    assert encode_value(AttributeType.BOOL, False) == b"false"
    assert encode_value(AttributeType.LIST, "a, b,c") == bytes.fromhex("836161616261 63")
    assert encode_value(AttributeType.LIST, '["x,y", "z"]') == bytes.fromhex("8263782c79617a")
    assert encode_value(AttributeType.LIST, "") == b"\x80"
    assert encode_value(AttributeType.STRING, "é") == "é".encode()
    # reads are strict: only the canonical forms
    for kind, raw in [(AttributeType.INT, b"042"), (AttributeType.INT, b"+4"),
                      (AttributeType.INT, b"9223372036854775808"), (AttributeType.FLOAT, b"3"),
                      (AttributeType.FLOAT, b"nan"), (AttributeType.BOOL, b"True"),
                      (AttributeType.LIST, b"\x9f\xff"), (AttributeType.LIST, b"\x81\x41a"),
                      (AttributeType.LIST, b"\x81\x61a\x00")]:
        with pytest.raises(ValueError):
            decode_value(kind, raw)


def test_issuer_refuses_what_does_not_match_the_schema() -> None:
    ok = prepare_attributes({"role": "admin", "level": "3", "ratio": "0.5", "admin": "true",
                             "groups": "a,b"}, SCHEMA)
    assert ok[b"level"] == b"3" and ok[b"groups"] == b"\x82\x61a\x61b"
    for values, needle in [({"level": "three"}, "'level' must be an int"),
                           ({"admin": "maybe"}, "'admin' must be a bool"),
                           ({"ratio": "inf"}, "'ratio' must be a float"),
                           ({"level": str(1 << 63)}, "does not fit"),
                           ({"groups": '["a", 1]'}, "'groups' must be a list"),
                           ({"colour": "red"}, "'colour' is not in schema 7")]:
        with pytest.raises(UsageError, match=needle):
            prepare_attributes(values, SCHEMA)
    # without a schema every value is a string
    assert prepare_attributes({"level": "three"}, None) == {b"level": b"three"}


def test_verifier_reads_typed_values() -> None:
    raw = prepare_attributes({"role": "admin", "level": "12", "ratio": "2.5", "admin": "false",
                              "groups": "dev,ops"}, SCHEMA)
    assert typed_attributes(raw, SCHEMA) == {"role": "admin", "level": 12, "ratio": 2.5,
                                             "admin": False, "groups": ["dev", "ops"]}
    assert typed_attributes(raw, None)["level"] == "12"
    with pytest.raises(VerificationError, match="'level' is not an int as schema 7 requires"):
        typed_attributes({b"level": b"12.0"}, SCHEMA)
    # names the schema does not know read as strings
    assert typed_attributes({b"other": b"1"}, SCHEMA) == {"other": "1"}


def test_schema_definitions() -> None:
    assert SCHEMA.to_json() == {"id": 7, "description": "test schema", "attributes": {
        "role": "string", "level": "int", "ratio": "float", "admin": "bool", "groups": "list"}}
    assert Schema.from_json(SCHEMA.to_json()) == SCHEMA
    assert Schema.create((1 << 64) - 1, {"a": "int"}).id == (1 << 64) - 1
    for args, needle in [((1 << 64, ["a:int"]), "64-bit"), (("x", ["a:int"]), "unsigned"),
                         ((1, ["a:integer"]), "unknown attribute type"),
                         ((1, ["a"]), "NAME:TYPE"), ((1, ["a:int", "a:bool"]), "twice"),
                         ((1, ["bad name:int"]), "invalid attribute name"), ((1, []), "at least")]:
        with pytest.raises(UsageError, match=needle):
            Schema.create(*args)  # type: ignore[arg-type]


def test_service_checks_against_stored_schemas(tmp_path: Path) -> None:
    async def go() -> None:
        s = open_credentials(tmp_path / "home")
        try:
            await s.schemas.add(SCHEMA)
            with pytest.raises(ConflictError):
                await s.schemas.add(SCHEMA)
            assert await s.schemas.get(7) == SCHEMA and [x.id for x in await s.schemas.list()] == [7]
            issuer = await s.identities.create_identity("issuer", now=NOW - 100)
            holder = await s.identities.create_identity("holder", now=NOW - 100)
            with pytest.raises(UsageError, match="'level' must be an int"):
                await s.issue("issuer", "holder", {"level": "high"}, schema_id=7, now=NOW)
            cpk = await s.issue("issuer", "holder", {"level": "5", "admin": "true",
                                                     "groups": "a,b"}, schema_id=7, now=NOW)
            assert isinstance(cpk, CredentialAndPurposeKey)
            v = await s.verify(cpk, [issuer.identity], now=NOW)
            assert typed_attributes(v.attributes, await s.schema(v.schema)) == {
                "admin": True, "groups": ["a", "b"], "level": 5}
            # the verifier's schema says int; a credential carrying "5.5" is refused and nothing
            # is recorded about it
            vault, handle, att = await s.identities.credential_signing_key("issuer", now=NOW)
            bad = CredentialData(holder.identity.identifier_bytes,
                                 holder.identity.latest_change_hash,
                                 Attributes.of({"level": "5.5"}, 7), NOW, NOW + 10)
            forged = CredentialAndPurposeKey(await sign_credential_data(bad, vault, handle, att),
                                             att)
            with pytest.raises(VerificationError, match="not an int"):
                await s.verify(forged, [issuer.identity], now=NOW)
            assert [r.value for r in await s.attributes.get(holder.identifier, now=NOW)] == [
                b"true", b"\x82\x61a\x61b", b"5"]
            # a schema unknown here: every value is a string
            cpk = await s.issue("issuer", "holder", {"level": "high"}, schema_id=99, now=NOW)
            v = await s.verify(cpk, [issuer.identity], now=NOW)
            assert typed_attributes(v.attributes, await s.schema(99)) == {"level": "high"}
            assert await s.schemas.delete(7) and not await s.schemas.delete(7)
        finally:
            await s.close()

    run(go())
