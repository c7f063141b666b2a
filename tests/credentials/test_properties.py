"""Property tests of every credential decoder: any bytes give a value or a DecodeError (never
another exception), and every valid object round-trips byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.credentials.helpers import make_world, run
from tests.strategies import mutations_of
from tests.vectors import by_name
from trust.credentials.schemas import AttributeType, Schema, decode_value, encode_value
from trust.errors import DecodeError, UsageError, VerificationError
from trust.models import credential as m
from trust.models.cbor import Reader
from trust.models.credential import (
    Attributes,
    Credential,
    CredentialAndPurposeKey,
    CredentialData,
    DisclosableCredential,
    Disclosure,
    Presentation,
    PresentationData,
    SelectiveCredentialData,
    decode_artifact,
)
from trust.models.primitives import read_signature


def _seeds() -> list[bytes]:
    w = run(make_world())
    held = run(w.issue_selective({"role": "admin", "level": "3"}, decoys=2))
    p = run(w.present(held, ["role"]))
    cpk = run(w.issue())
    scenario = by_name("synthetic_rotation_ed25519_to_p256_with_credential")["artefacts"]
    out = [bytes.fromhex(by_name("elixir_refresh_credentials_credential_and_purpose_key")["hex"]),
           bytes.fromhex(scenario["credential_and_purpose_key:member_credential"]),
           cpk.encode(), cpk.credential.encode(), held.encode(), p.encode(),
           held.credential.credential.encode(), held.disclosures[0].raw]
    # the signed data and the payloads inside, so the inner decoders get near-valid input too
    out += [cpk.credential.data, held.credential.credential.data, p.data,
            cpk.credential.data[5:], held.credential.credential.data[7:], p.data[7:]]
    return out


SEEDS = _seeds()


def _disclosure(raw: bytes) -> Disclosure:
    return Disclosure(raw)


def _attributes(raw: bytes) -> Attributes:
    r = Reader(raw)
    a = Attributes.read(r)
    r.end("attributes")
    return a


DECODERS: list[Callable[[bytes], Any]] = [
    Credential.decode, CredentialAndPurposeKey.decode, DisclosableCredential.decode,
    Presentation.decode, PresentationData.decode, CredentialData.decode,
    SelectiveCredentialData.decode, _disclosure, decode_artifact, _attributes,
]


def mutated() -> st.SearchStrategy[bytes]:
    return mutations_of(SEEDS)


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), mutated()))
def test_decoders_only_raise_decode_error(data: bytes) -> None:
    for decode in DECODERS:
        try:
            value = decode(data)
        except DecodeError:
            continue
        # whatever decodes re-encodes to exactly the input
        if hasattr(value, "encode"):
            assert value.encode() == data, decode
        elif hasattr(value, "raw"):
            assert value.raw == data


def test_decoders_refuse_non_bytes_and_oversize() -> None:
    big = b"\x82" + b"\x00" * (1 << 20)
    for decode in (Credential.decode, CredentialAndPurposeKey.decode,
                   DisclosableCredential.decode, Presentation.decode, decode_artifact):
        for bad in ("text", None, 5, big):
            try:
                decode(bad)  # type: ignore[arg-type]
            except DecodeError as e:
                assert e.field
            else:
                raise AssertionError(f"{decode} accepted {bad!r:.20}")


u64 = st.integers(0, (1 << 64) - 1)
ident = st.binary(min_size=32, max_size=32)
attr_map = st.dictionaries(st.binary(max_size=20), st.binary(max_size=40), max_size=8)


@settings(max_examples=200, deadline=None)
@given(subject=st.none() | ident, latest=st.none() | ident, schema=u64, attrs=attr_map,
       created=u64, expires=u64)
def test_credential_data_round_trips(subject: bytes | None, latest: bytes | None, schema: int,
                                     attrs: dict[bytes, bytes], created: int,
                                     expires: int) -> None:
    d = CredentialData(subject, latest, Attributes.of(attrs, schema), created, expires)
    raw = d.encode()
    assert CredentialData.decode(raw) == d
    assert CredentialData.decode(raw).encode() == raw
    keys = [k for k, _ in d.attributes.entries]
    assert keys == sorted(keys)


@settings(max_examples=200, deadline=None)
@given(subject=ident, latest=ident, schema=u64,
       digests=st.sets(st.binary(min_size=32, max_size=32), max_size=12), created=u64,
       expires=u64)
def test_selective_data_round_trips(subject: bytes, latest: bytes, schema: int,
                                    digests: set[bytes], created: int, expires: int) -> None:
    d = SelectiveCredentialData(subject, latest, schema, tuple(sorted(digests)), created, expires)
    raw = d.encode()
    assert SelectiveCredentialData.decode(raw) == d
    versioned = d.to_versioned()
    assert versioned[:4] == b"\x83\x01\x18\x80"


@settings(max_examples=200, deadline=None)
@given(salt=st.binary(min_size=16, max_size=16), name=st.binary(max_size=300),
       value=st.binary(max_size=300))
def test_disclosures_round_trip(salt: bytes, name: bytes, value: bytes) -> None:
    d = Disclosure.create(salt, name, value)
    again = Disclosure(d.raw)
    assert (again.salt, again.name, again.value, again.digest) == (salt, name, value, d.digest)


VALUES = {
    AttributeType.STRING: st.text(max_size=30),
    AttributeType.INT: st.integers(-(1 << 63), (1 << 63) - 1),
    AttributeType.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
    AttributeType.BOOL: st.booleans(),
    AttributeType.LIST: st.lists(st.text(max_size=10), max_size=5),
}


@settings(max_examples=300, deadline=None)
@given(data=st.data(), kind=st.sampled_from(list(AttributeType)))
def test_typed_values_round_trip(data: st.DataObject, kind: AttributeType) -> None:
    value = data.draw(VALUES[kind])
    raw = encode_value(kind, value)
    want = float(value) if isinstance(value, (int, float)) and kind is AttributeType.FLOAT else value
    assert decode_value(kind, raw) == want
    assert encode_value(kind, decode_value(kind, raw)) == raw


SCHEMA = Schema.create(9, ["s:string", "i:int", "f:float", "b:bool", "l:list"])


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=40), name=st.sampled_from([b"s", b"i", b"f", b"b", b"l", b"x"]))
def test_typed_reads_raise_only_verification_errors(raw: bytes, name: bytes) -> None:
    try:
        SCHEMA.read(name, raw)
    except VerificationError as e:
        assert name.decode() in str(e)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=20), kind=st.sampled_from(list(AttributeType)))
def test_issuer_side_parsing_raises_only_usage_errors(text: str, kind: AttributeType) -> None:
    try:
        encode_value(kind, text, "a")
    except UsageError as e:
        assert "'a'" in str(e)


@settings(max_examples=600, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), mutated()))
def test_fast_paths_accept_only_what_the_strict_decoders_accept(data: bytes) -> None:
    """The fast decoders give up on anything unusual; whatever they accept, the strict decoders
    accept too, with an equal result."""
    fast_payload = m._credential_payload_fast(data)
    if fast_payload is not None:
        assert m._credential_payload_strict(data) == fast_payload
    fast_pd = m._presentation_data_fast(data)
    if fast_pd is not None:
        strict_pd = m._presentation_data_strict(data)
        assert strict_pd == fast_pd and strict_pd.encode() == fast_pd.encode()
    fast_cpk = m._cpk_fast(data)
    if fast_cpk is not None:
        r = Reader(data)
        strict_cpk = CredentialAndPurposeKey.read(r)
        r.end("cpk")
        assert strict_cpk == fast_cpk and strict_cpk.encode() == data
    outer = m._signed_fast(data, 0)
    if outer is not None and outer[2] == len(data):
        r = Reader(data)
        r.array("x", 2)
        assert r.bytes("x") == outer[0] and read_signature(r, "x") == outer[1]
        r.end("x")


def test_fast_paths_take_the_common_inputs() -> None:
    for raw in SEEDS:
        for decode in (m._credential_payload_fast, m._presentation_data_fast, m._cpk_fast):
            decode(raw)
    w = run(make_world())
    held = run(w.issue_selective({"role": "admin"}, decoys=1))
    p = run(w.present(held, ["role"]))
    assert m._credential_payload_fast(held.credential.credential.data) is not None
    assert m._credential_payload_fast(run(w.issue()).credential.data) is not None
    assert m._cpk_fast(held.credential.encode()) is not None
    assert m._presentation_data_fast(p.data) is not None
