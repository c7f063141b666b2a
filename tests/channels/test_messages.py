"""Channel messages: exact bytes, strict decoders (trailing bytes, wrong types, unknown variants,
oversize), and property tests: any bytes decode to a value or raise DecodeError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels import vectors as v
from tests.channels.helpers import world
from tests.strategies import mutations_of
from trust.channels import Close, IdentityAndCredentials, Payload, RefreshCredentials, decode_message
from trust.channels.messages import MAX_IDENTITY_PAYLOAD_SIZE, MAX_PLAINTEXT_SIZE, pad
from trust.channels.messages.identity_and_credentials import decode_fast as identity_payload_fast
from trust.errors import DecodeError, UsageError
from trust.routing import Route
from trust.routing.route_cbor import encode_route, read_route

PAYLOAD = Payload(Route(["echoer"]), Route(["app"]), v.PAYLOAD_INNER)


def _seeds() -> list[bytes]:
    w = world()
    return [
        v.PAYLOAD_PLAINTEXT,
        v.CLOSE,
        RefreshCredentials(v.ELIXIR_HISTORY).encode(),
        RefreshCredentials(w.alice.identity.export(), (w.alice_credential,)).encode(),
        Payload(Route(["1#127.0.0.1:4000", "a", "b"]), Route([]), b"x" * 300).encode(),
        pad(PAYLOAD.encode_message(), b"padding"),
    ]


def test_round_trips() -> None:
    for raw in _seeds():
        m = decode_message(raw)
        assert m.encode() == raw or raw.endswith(b"padding")


@pytest.mark.parametrize("raw", [
    v.PAYLOAD_PLAINTEXT + b"\x00",                      # trailing byte
    v.CLOSE + b"\x40",
    bytes.fromhex("8282038040"),                         # unknown variant
    bytes.fromhex("8282028140"),                         # Close with a field... truncated
    bytes.fromhex("82820281f640"),                       # Close with a field
    bytes.fromhex("83820280404040"),                     # three elements
    bytes.fromhex("8282028060"),                         # text padding
    bytes.fromhex("82820280"),                           # no padding
    bytes.fromhex("9f82028040ff"),                       # indefinite length
    bytes.fromhex("8282180280" "40"),                    # non-shortest variant head
    v.PAYLOAD_PLAINTEXT.replace(b"\x46\x05", b"\x66\x05"),  # payload as text
    bytes.fromhex("82820081834180818200436170704040"),   # route as a byte string
    b"",
])
def test_strict_decoder_rejects(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(raw)


def test_oversize_and_wrong_types() -> None:
    with pytest.raises(DecodeError, match="limit"):
        decode_message(bytes(MAX_PLAINTEXT_SIZE + 1))
    with pytest.raises(DecodeError):
        decode_message("8282028040")  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="limit"):
        IdentityAndCredentials.decode(bytes(MAX_IDENTITY_PAYLOAD_SIZE + 1))
    with pytest.raises(DecodeError):
        IdentityAndCredentials.decode(v.RESPONDER_PAYLOAD + b"\x00")
    with pytest.raises(DecodeError):
        IdentityAndCredentials.decode(v.RESPONDER_PAYLOAD[:-1])
    with pytest.raises(UsageError):
        RefreshCredentials(b"\x80")  # not a history


def test_identity_payload_round_trip_and_size_cap() -> None:
    m = IdentityAndCredentials.decode(v.RESPONDER_PAYLOAD)
    assert m.encode() == v.RESPONDER_PAYLOAD
    assert m.change_history_raw == v.ELIXIR_HISTORY and m.credentials == ()
    w = world()
    too_many = (w.alice_credential,) * 200
    with pytest.raises(UsageError):
        IdentityAndCredentials.of(w.alice.identity.export(), w.alice.attestation, too_many)


def test_route_cbor() -> None:
    r = Route(["1#127.0.0.1:4000", "echoer"])
    raw = encode_route(r)
    assert raw == r.encode() and encode_route(r) is raw  # cached
    assert read_route(raw + b"tail", 0, len(raw), "route") == (r, len(raw))


# -- properties -------------------------------------------------------------------------------------

_FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decodes_or_decode_error(raw: bytes) -> None:
    try:
        m = decode_message(raw)
    except DecodeError:
        return
    again = decode_message(m.encode())
    assert again == m


@_FAST
@given(st.binary(max_size=400))
def test_any_bytes_decode_or_fail_typed(raw: bytes) -> None:
    _decodes_or_decode_error(raw)


@_FAST
@given(mutations_of(_seeds()))
def test_mutated_messages_decode_or_fail_typed(raw: bytes) -> None:
    _decodes_or_decode_error(raw)


@_FAST
@given(mutations_of([v.RESPONDER_PAYLOAD, v.INITIATOR_PAYLOAD]) | st.binary(max_size=400))
def test_identity_payload_decodes_or_fails_typed(raw: bytes) -> None:
    try:
        m = IdentityAndCredentials.decode(raw)
    except DecodeError:
        return
    assert m.encode() == raw


@_FAST
@given(mutations_of([v.RESPONDER_PAYLOAD, v.INITIATOR_PAYLOAD]))
def test_identity_payload_fast_path_agrees_with_the_strict_decoder(raw: bytes) -> None:
    fast = identity_payload_fast(raw)
    try:
        strict = IdentityAndCredentials.decode_strict(raw)
    except DecodeError:
        assert fast is None
        return
    if fast is not None:
        assert fast == strict and fast.change_history == strict.change_history


@_FAST
@given(mutations_of([encode_route(Route(["1#127.0.0.1:4000", "echoer"])), b"\x80"])
       | st.binary(max_size=64))
def test_route_reader_decodes_or_fails_typed(raw: bytes) -> None:
    try:
        route, end = read_route(raw, 0, len(raw), "route")
    except DecodeError:
        return
    assert encode_route(route) == raw[:end]


@_FAST
@given(st.lists(st.text(min_size=1, max_size=8).filter(lambda s: "#" not in s and "=>" not in s),
                max_size=4), st.binary(max_size=300), st.binary(max_size=8))
def test_payload_round_trip(names: list[str], data: bytes, padding: bytes) -> None:
    m = Payload(Route(names), Route(names[::-1]), data)
    assert decode_message(m.encode()) == m
    assert decode_message(m.encode(padding)) == m
    assert Close() == decode_message(Close().encode(padding))
