"""Decode errors say what is wrong in words, keep their field names, and give the byte offset in
the input the caller passed, however deeply the bad bytes are nested (issue 10, item 7)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.credentials.helpers import make_world, run
from trust.errors import DecodeError
from trust.models.change_history import ChangeHistory
from trust.models.credential import CredentialAndPurposeKey, Presentation, decode_artifact
from trust.models.purpose_key import PurposeKeyAttestation

WORLD = run(make_world())
CPK = run(WORLD.issue()).encode()
HELD = run(WORLD.issue_selective())
PRESENTATION = run(WORLD.present(HELD, ["role"])).encode()


def _error(decode: object, data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as e:
        decode(data)  # type: ignore[operator]
    return e.value


def _mutate(data: bytes, at: int, value: int) -> bytes:
    m = bytearray(data)
    m[at] = value
    return bytes(m)


def test_a_byte_that_starts_no_item_is_named_in_words() -> None:
    e = _error(CredentialAndPurposeKey.decode, _mutate(CPK, 0, 0xFE))
    assert e.field == "credential_and_purpose_key" and e.offset == 0
    assert "byte 0xfe does not start any valid CBOR item" in str(e)
    assert "reserved additional information" not in str(e) and str(e).endswith("(at byte 0)")
    e = _error(CredentialAndPurposeKey.decode, _mutate(CPK, 0, 0x9F))
    assert "indefinite-length" in e.message


def test_offsets_of_nested_fields_are_offsets_in_the_input() -> None:
    subject = WORLD.holder.identifier_bytes
    at = CPK.index(b"\x58\x20" + subject)  # the subject, inside credential.data's payload
    e = _error(CredentialAndPurposeKey.decode, _mutate(CPK, at + 1, 0x1F))
    assert e.field == "credential_and_purpose_key.credential.data.credential_data.subject"
    assert e.message == "expected 32 bytes, found 31" and e.offset == at
    # the same bytes inside a presentation (credential inside presentation data inside the
    # presentation): the offset is still in the presentation's bytes
    at = PRESENTATION.index(b"\x58\x20" + subject)
    e = _error(Presentation.decode, _mutate(PRESENTATION, at + 1, 0x21))
    assert e.field is not None and e.field.startswith("presentation.data.presentation_data.credential")
    assert e.field.endswith(".subject") and e.offset == at


def test_offsets_in_change_histories_and_attestations() -> None:
    raw = WORLD.holder.raw
    key = WORLD.holder.latest_public_key.data
    at = raw.index(key) - 5  # the public key's [type, [bytes]] prefix
    e = _error(ChangeHistory.decode, _mutate(raw, at, 0x83))
    assert e.field is not None and "primary_public_key" in e.field and e.offset == at
    att = WORLD.attestation.encode()
    at = att.index(WORLD.issuer.identifier_bytes)
    e = _error(PurposeKeyAttestation.decode, _mutate(att, at - 1, 0x1F))
    assert e.field == "attestation.attestation_data.subject" and e.offset == at - 2


def test_truncation_says_so() -> None:
    for n in (0, 1, 5, len(CPK) // 2, len(CPK) - 1):
        e = _error(decode_artifact, CPK[:n])
        assert "truncated" in e.message or "ends" in e.message, str(e)
        assert e.offset is not None and 0 <= e.offset <= n


def test_trailing_bytes_point_after_the_item() -> None:
    e = _error(CredentialAndPurposeKey.decode, CPK + b"\x00\x00")
    assert "2 trailing bytes" in e.message and e.offset == len(CPK)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(PRESENTATION) - 1), st.integers(0, 255))
def test_every_error_of_a_mutated_presentation_has_an_offset_inside_it(at: int, value: int) -> None:
    data = _mutate(PRESENTATION, at, value)
    try:
        Presentation.decode(data)
    except DecodeError as e:
        assert e.field and e.field.startswith("presentation")
        assert e.offset is not None and 0 <= e.offset <= len(data), str(e)
        assert "reserved additional information" not in e.message
        assert f"(at byte {e.offset})" in str(e)


def test_a_signature_or_key_of_an_unknown_type_points_at_its_variant() -> None:
    # (found by the property test above: `unknown variant` errors had no offset)
    sig = PRESENTATION.rindex(b"\x82\x00\x81\x58\x40")  # the presentation's own Ed25519 signature
    e = _error(Presentation.decode, _mutate(PRESENTATION, sig + 1, 2))
    assert e.message == "unknown variant 2" and e.offset == sig + 1
    assert e.field == "presentation.signature"
    raw = WORLD.holder.raw
    key = raw.index(WORLD.holder.latest_public_key.data) - 5
    e = _error(ChangeHistory.decode, _mutate(raw, key + 1, 7))
    assert e.message == "unknown variant 7" and e.offset == key + 1


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(WORLD.holder.raw) - 1), st.integers(0, 255))
def test_every_error_of_a_mutated_change_history_has_an_offset_inside_it(at: int,
                                                                         value: int) -> None:
    data = _mutate(WORLD.holder.raw, at, value)
    try:
        ChangeHistory.decode(data)
    except DecodeError as e:
        assert e.offset is not None and 0 <= e.offset <= len(data), str(e)


def test_change_count_and_shape_errors_have_offsets() -> None:
    raw = WORLD.holder.raw
    e = _error(ChangeHistory.decode, _mutate(raw, 0, 0x98))  # an array head claiming more items
    assert e.message == "more changes than bytes" and e.offset == 0
    e = _error(ChangeHistory.decode, _mutate(raw, 1, 0x83))  # a first change with 3 elements
    assert e.message == "the first change cannot carry a previous_signature" and e.offset == 1
