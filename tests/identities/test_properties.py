"""Property tests: decoders never raise anything but DecodeError; encode(decode(x)) == x."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import mutations_of
from tests.vectors import by_kind, by_name
from trust.errors import DecodeError
from trust.models import cbor
from trust.models.change_history import Change, ChangeData, ChangeHistory
from trust.models.primitives import Signature
from trust.models.purpose_key import (
    PurposeKeyAttestation,
    PurposeKeyAttestationData,
    PurposePublicKey,
)
from vaults.keys import KeyType, PublicKey

SEEDS = [bytes.fromhex(v["hex"]) for v in by_kind("change_history")] + [
    bytes.fromhex(h) for k, h in by_name("synthetic_rotation_ed25519_to_p256_with_credential")[
        "artefacts"].items() if k.startswith(("identity", "attestation"))
]
DECODERS = [ChangeHistory.decode, PurposeKeyAttestation.decode, ChangeData.decode, cbor.loads]


def mutated() -> st.SearchStrategy[bytes]:
    return mutations_of(SEEDS)


@settings(max_examples=400, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), mutated()))
def test_decoders_only_raise_decode_error(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except DecodeError:
            pass


def _key(kind: KeyType, draw: st.DrawFn) -> PublicKey:
    if kind is KeyType.ED25519:
        return PublicKey(kind, draw(st.binary(min_size=32, max_size=32)))
    return PublicKey(kind, b"\x04" + draw(st.binary(min_size=64, max_size=64)))


u64 = st.integers(0, (1 << 64) - 1)


@st.composite
def histories(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 4))
    changes = []
    prev = None
    for i in range(n):
        kt = draw(st.sampled_from(list(KeyType)))
        cd = ChangeData(prev, _key(kt, draw), draw(st.booleans()), draw(u64), draw(u64))
        sig = Signature(kt, draw(st.binary(min_size=64, max_size=64)))
        psig = Signature(draw(st.sampled_from(list(KeyType))),
                         draw(st.binary(min_size=64, max_size=64))) if i else None
        c = Change(cd.to_versioned(), sig, psig)
        changes.append(c)
        prev = c.change_hash
    return ChangeHistory(tuple(changes)).encode()


@st.composite
def attestations(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        ppk = PurposePublicKey.secure_channel(draw(st.binary(min_size=32, max_size=32)))
    else:
        ppk = PurposePublicKey.credential_signing(_key(draw(st.sampled_from(list(KeyType))), draw))
    data = PurposeKeyAttestationData(draw(st.binary(min_size=32, max_size=32)),
                                     draw(st.binary(min_size=32, max_size=32)), ppk, draw(u64),
                                     draw(u64)).to_versioned()
    kt = draw(st.sampled_from(list(KeyType)))
    return PurposeKeyAttestation(data, Signature(kt, draw(st.binary(min_size=64, max_size=64)))).encode()


@settings(max_examples=200, deadline=None)
@given(raw=histories())
def test_history_round_trip(raw: bytes) -> None:
    assert ChangeHistory.decode(raw).encode() == raw


@settings(max_examples=200, deadline=None)
@given(raw=attestations())
def test_attestation_round_trip(raw: bytes) -> None:
    assert PurposeKeyAttestation.decode(raw).encode() == raw


values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(1 << 64), (1 << 64) - 1), st.binary(max_size=40),
              st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(max_size=5), children, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(v=values)
def test_generic_cbor_round_trip_and_cbor2_agrees(v: object) -> None:
    import cbor2

    raw = cbor.dumps(v)
    assert cbor.loads(raw) == v
    assert cbor2.loads(raw) == v
    assert cbor.dumps(cbor.loads(raw)) == raw


def _outcome(decode, data: bytes):  # type: ignore[no-untyped-def]
    try:
        h = decode(data)
    except DecodeError:
        return "error"
    return [(c.data, c.signature, c.previous_signature, c.change_data, c.change_hash)
            for c in h.changes]


@settings(max_examples=400, deadline=None)
@given(data=st.one_of(histories(), mutated()))
def test_fast_and_strict_history_decoders_agree(data: bytes) -> None:
    from trust.models.change_history import _fast_decode

    assert _outcome(ChangeHistory.decode, data) == _outcome(ChangeHistory.decode_strict, data)
    fast = _fast_decode(data)
    if fast is not None:
        assert fast.encode() == data


@st.composite
def attestation_datas(draw: st.DrawFn) -> bytes:
    """An attestation's ``data`` (VersionedData) as our encoder makes it, any key and times."""
    return PurposeKeyAttestation.decode(draw(attestations())).data


ATTESTATION_DATA_SEEDS = [
    PurposeKeyAttestation.decode(bytes.fromhex(h)).data for k, h in by_name(
        "synthetic_rotation_ed25519_to_p256_with_credential")["artefacts"].items()
    if k.startswith("attestation")]


def _data_outcome(decode, data: bytes):  # type: ignore[no-untyped-def]
    try:
        return decode(data)
    except DecodeError as e:
        return ("error", e.message, e.field, e.offset)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(attestation_datas(), mutations_of(ATTESTATION_DATA_SEEDS),
                      st.binary(max_size=200)))
def test_fast_and_strict_attestation_data_decoders_agree(data: bytes) -> None:
    from trust.models.purpose_key import decode_attestation_data_fast

    strict = _data_outcome(PurposeKeyAttestationData.from_versioned_strict, data)
    assert _data_outcome(PurposeKeyAttestationData.from_versioned, data) == strict
    fast = decode_attestation_data_fast(data)
    if fast is not None:
        assert fast == strict
        assert fast.to_versioned() == data


def test_attestation_data_fast_path_takes_our_shapes() -> None:
    """The fast path is really used for what our encoder makes (both purposes, both key types),
    and declines what only the strict decoder may judge."""
    from trust.models.purpose_key import decode_attestation_data_fast

    for seed in ATTESTATION_DATA_SEEDS:
        fast = decode_attestation_data_fast(seed)
        assert fast is not None and fast == PurposeKeyAttestationData.from_versioned_strict(seed)
    p256 = PurposePublicKey.credential_signing(PublicKey(KeyType.P256, b"\x04" + bytes(64)))
    big = PurposeKeyAttestationData(bytes(32), bytes(32), p256, 0, (1 << 64) - 1).to_versioned()
    assert decode_attestation_data_fast(big) == PurposeKeyAttestationData.from_versioned_strict(big)
    assert len(ATTESTATION_DATA_SEEDS) == 2
    for bad in (ATTESTATION_DATA_SEEDS[0][:-1], ATTESTATION_DATA_SEEDS[0] + b"\x00",
                ATTESTATION_DATA_SEEDS[0].replace(b"\x83\x01\x02", b"\x83\x01\x03", 1)):
        assert decode_attestation_data_fast(bad) is None


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(histories(), mutated()), before=st.binary(max_size=8),
       after=st.binary(max_size=8))
def test_history_fast_reader_inside_a_message_agrees_with_the_strict_decoder(
        data: bytes, before: bytes, after: bytes) -> None:
    """read_history_fast (used by the handshake payload decoder) reads a history where it lies
    in a larger buffer: what it returns is what the strict decoder makes of the bytes it read."""
    from trust.models.change_history import read_history_fast

    found = read_history_fast(before + data + after, len(before))
    if found is None:
        return
    history, end = found
    consumed = (before + data + after)[len(before) : end]
    assert _outcome(lambda _: history, consumed) == _outcome(ChangeHistory.decode_strict, consumed)
    assert history.encode() == consumed
