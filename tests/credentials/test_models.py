"""Strict decoding of the credential objects: what is refused, and which field is named."""

from __future__ import annotations

import pytest

from tests.credentials.helpers import make_world, run
from trust.errors import DecodeError
from trust.models.cbor import enc_bytes, enc_uint
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

SUBJECT = b"\x01" * 32


def _data(attrs: bytes) -> bytes:
    return b"\x85" + enc_bytes(SUBJECT) + enc_bytes(SUBJECT) + attrs + b"\x01\x02"


def test_attribute_maps_must_be_sorted_bytewise_and_unique() -> None:
    ok = b"\x82\x00\xa2" + enc_bytes(b"ab") + enc_bytes(b"1") + enc_bytes(b"b") + enc_bytes(b"2")
    assert CredentialData.decode(_data(ok)).attributes.as_dict() == {b"ab": b"1", b"b": b"2"}
    length_first = (b"\x82\x00\xa2" + enc_bytes(b"b") + enc_bytes(b"2") + enc_bytes(b"ab")
                    + enc_bytes(b"1"))
    dup = b"\x82\x00\xa2" + (enc_bytes(b"a") + enc_bytes(b"1")) * 2
    for bad in (length_first, dup):
        with pytest.raises(DecodeError, match="sorted bytewise") as e:
            CredentialData.decode(_data(bad))
        assert e.value.field == "credential_data.subject_attributes.map"
    text_key = b"\x82\x00\xa1\x61a" + enc_bytes(b"1")
    with pytest.raises(DecodeError, match="expected byte string, found text string"):
        CredentialData.decode(_data(text_key))
    with pytest.raises(DecodeError, match="given twice"):
        Attributes.of([("a", "1"), (b"a", "2")])
    with pytest.raises(DecodeError, match="sorted"):
        Attributes(0, ((b"b", b""), (b"a", b"")))


def test_credential_data_is_strict() -> None:
    good = _data(b"\x82\x00\xa0")
    assert CredentialData.decode(good).encode() == good
    for bad, field in [(good + b"\x00", "credential_data"),
                       (good.replace(b"\x85", b"\x86", 1) + b"\x00", "credential_data"),
                       (b"\x85\x58\x1f" + b"\x01" * 31 + good[35:], "credential_data.subject"),
                       (good[:-1] + b"\x18\x02", "credential_data.expires_at")]:
        with pytest.raises(DecodeError) as e:
            CredentialData.decode(bad)
        assert e.value.field == field, e.value


def test_versioned_data_types_and_heads() -> None:
    w = run(make_world())
    cpk = run(w.issue())
    held = run(w.issue_selective(decoys=1))
    raw = cpk.credential.data
    assert raw[:3] == b"\x83\x01\x03"
    sig = cpk.credential.signature
    for data, needle in [(b"\x83\x01\x02" + raw[3:], "expected data type 3 or 128, found 2"),
                         (b"\x83\x02\x03" + raw[3:], "unknown version 2"),
                         (b"\x83\x01\x18\x03" + raw[3:], "shortest form"),
                         (raw + b"\x00", "trailing")]:
        with pytest.raises(DecodeError, match=needle):
            Credential(data, sig)
    sel = held.credential.credential.data
    assert sel[:4] == b"\x83\x01\x18\x80"
    with pytest.raises(DecodeError, match="shortest form"):
        Credential(b"\x83\x01\x19\x00\x80" + sel[4:], sig)
    # a selective payload under data type 3 (and the reverse) does not decode
    with pytest.raises(DecodeError):
        Credential(b"\x83\x01\x03" + sel[4:], sig)
    with pytest.raises(DecodeError):
        Credential(b"\x83\x01\x18\x80" + raw[3:], sig)


def test_selective_payload_is_strict() -> None:
    d1, d2 = b"\x10" * 32, b"\x20" * 32

    def payload(digests: list[bytes]) -> bytes:
        return (b"\x85" + enc_bytes(SUBJECT) + enc_bytes(SUBJECT) + b"\x82\x05"
                + bytes([0x80 + len(digests)]) + b"".join(enc_bytes(d) for d in digests)
                + enc_uint(1) + enc_uint(2))

    assert SelectiveCredentialData.decode(payload([d1, d2])).digests == (d1, d2)
    for digests, needle in [([d2, d1], "sorted"), ([d1, d1], "unique"),
                            ([b"\x10" * 31], "expected 32 bytes")]:
        with pytest.raises(DecodeError, match=needle):
            SelectiveCredentialData.decode(payload(digests))
    nulls = b"\x85\xf6\xf6" + payload([d1])[69:]
    with pytest.raises(DecodeError, match="expected byte string, found null"):
        SelectiveCredentialData.decode(nulls)
    with pytest.raises(DecodeError, match="more digests than bytes"):
        SelectiveCredentialData.decode(payload([d1])[:71] + b"\x98\xff")


def test_disclosures_are_strict() -> None:
    ok = Disclosure.create(b"\x00" * 16, "n", "v")
    assert ok.raw == b"\x83\x50" + b"\x00" * 16 + b"\x41n\x41v"
    for raw, needle in [(b"\x83\x4f" + b"\x00" * 15 + b"\x41n\x41v", "expected 16 bytes"),
                        (ok.raw + b"\x00", "trailing"),
                        (b"\x84" + ok.raw[1:] + b"\x40", "expected an array of 3"),
                        (b"\x83\x50" + b"\x00" * 16 + b"\x61n\x41v", "expected byte string")]:
        with pytest.raises(DecodeError, match=needle) as e:
            Disclosure(raw)
        assert str(e.value.field).startswith("disclosure")
    with pytest.raises(DecodeError, match="salt"):
        Disclosure.create(b"\x00" * 8, "n", "v")


def test_every_artifact_kind_decodes_by_shape() -> None:
    w = run(make_world())
    cpk = run(w.issue())
    held = run(w.issue_selective())
    p = run(w.present(held, ["role"]))
    for obj in (cpk, cpk.credential, held, held.credential, held.credential.credential, p):
        raw = obj.encode()
        got = decode_artifact(raw)
        assert type(got) is type(obj) and got.encode() == raw
    assert CredentialAndPurposeKey.decode(held.credential.encode()).credential.is_selective
    for bad, needle in [(b"", "the data ends"), (b"\x82", "truncated"),
                        (b"\x82\x01\x02", "not a credential"), (b"\x83\x01\x02\x03", "array of 2"),
                        (b"\xa0", "expected array")]:
        with pytest.raises(DecodeError, match=needle):
            decode_artifact(bad)
    # a presentation's field errors name their place
    with pytest.raises(DecodeError) as e:
        Presentation.decode(p.encode()[:-1])
    assert e.value.field == "presentation.signature"
    inner = bytearray(p.encode())
    inner[7] = 0x02  # the VersionedData data type 18 81 -> 18 02 (not the shortest head)
    with pytest.raises(DecodeError) as e:
        Presentation.decode(bytes(inner))
    assert str(e.value.field).startswith("presentation.data")
    with pytest.raises(DecodeError) as e:
        DisclosableCredential.decode(held.encode()[:-3])
    assert str(e.value.field).startswith("disclosable_credential.disclosures")
    with pytest.raises(DecodeError) as e:
        CredentialAndPurposeKey.decode(cpk.encode()[:-1])
    assert str(e.value.field).startswith("credential_and_purpose_key.purpose_key_attestation")


def test_presentation_embeds_exact_bytes() -> None:
    w = run(make_world())
    held = run(w.issue_selective({"a": "1", "b": "2"}))
    p = run(w.present(held, ["b", "a", "b"]))
    pd = p.presentation_data
    assert pd.credential_raw == held.credential.encode()
    assert pd.holder_raw == w.holder.export()
    assert [d.name for d in pd.disclosures] == [b"a", b"b"]  # sorted, each once
    assert PresentationData.decode(p.data[7:]) == pd
    # a presentation of an Ockam-format credential cannot even be built
    with pytest.raises(DecodeError, match="selective"):
        PresentationData(run(w.issue()), (), w.holder.change_history, "a", "n", 1)
