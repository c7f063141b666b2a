"""Portal messages against the wire spec's vectors (§8.4, §8.7; copied to tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust.errors import DecodeError
from trust.portals.messages import (
    MAX_PAYLOAD_SIZE,
    Disconnect,
    PacketCounter,
    Payload,
    Ping,
    Pong,
    PortalMessage,
    decode,
    encode,
    encode_payload,
)

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "portal_messages.json").read_text())
UNITS: dict[str, PortalMessage] = {"ping": Ping(), "pong": Pong(), "disconnect": Disconnect()}


@pytest.mark.parametrize("v", VECTORS["encode"], ids=lambda v: v["hex"])
def test_encode_vectors(v: dict[str, str]) -> None:
    msg: PortalMessage = (Payload(bytes.fromhex(v["data"])) if v["message"] == "payload"
                          else UNITS[v["message"]])
    assert encode(msg).hex() == v["hex"]
    if isinstance(msg, Payload):
        assert encode_payload(msg.data).hex() == v["hex"]


@pytest.mark.parametrize("v", VECTORS["decode"], ids=lambda v: v["hex"])
def test_decode_vectors(v: dict[str, str]) -> None:
    msg = decode(bytes.fromhex(v["hex"]))
    if "message" in v:
        assert msg == UNITS[v["message"]]
    else:
        assert msg == Payload(bytes.fromhex(v["data"]), v["counter"])  # type: ignore[arg-type]


@pytest.mark.parametrize("hexed", [
    "", "04", "0000", "0100", "0203", "03", "0303aa", "030205", "0302050502", "0302050501020304",
    "0302050501bb", "038000", "03" + "80808004",  # non-shortest length; over 48 KiB
])
def test_malformed_messages_are_decode_errors(hexed: str) -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex(hexed))


def test_payload_limit() -> None:
    big = bytes(MAX_PAYLOAD_SIZE)
    assert decode(encode_payload(big)) == Payload(big)
    with pytest.raises(ValueError):
        encode_payload(big + b"x")
    with pytest.raises(DecodeError):
        decode(b"\x03" + bytes.fromhex("818003") + bytes(MAX_PAYLOAD_SIZE + 1))


@given(st.binary(max_size=300), st.one_of(st.none(), st.integers(0, 0xFFFF)))
def test_round_trip(data: bytes, counter: int | None) -> None:
    assert decode(encode(Payload(data, counter))) == Payload(data, counter)


def test_packet_counters_must_run_in_order() -> None:
    c = PacketCounter()
    c.check(None)
    for n in (0, 1, 2):
        c.check(n)
    with pytest.raises(DecodeError):
        c.check(4)
