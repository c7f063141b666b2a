"""BARE strings and uvarints (wire spec §0.1, §8.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust.errors import DecodeError
from trust.routing.bare import (
    decode_data,
    decode_string,
    encode_string,
    encode_uvarint,
    read_uvarint,
)


def test_vectors() -> None:
    assert encode_string("Hello").hex() == "0548656c6c6f"
    assert encode_string("register").hex() == "087265676973746572"  # §8.7 relay
    assert encode_string("forward_to_blue").hex() == "0f666f72776172645f746f5f626c7565"
    assert decode_string(bytes.fromhex("04626c7565")) == "blue"
    assert encode_uvarint(300).hex() == "ac02"
    assert read_uvarint(bytes.fromhex("ffffffffffffffffff01")) == (2**64 - 1, 10)


@pytest.mark.parametrize("hexdata", [
    "", "05486565", "0548656c6c6f00", "8000", "80", "ffffffffffffffffff02",
    "ffffffffffffffffffff01", "01ff",
])
def test_rejects(hexdata: str) -> None:
    with pytest.raises(DecodeError):
        decode_string(bytes.fromhex(hexdata))


@given(st.text())
def test_string_round_trip(s: str) -> None:
    assert decode_string(encode_string(s)) == s


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_uvarint_round_trip(n: int) -> None:
    assert read_uvarint(encode_uvarint(n)) == (n, len(encode_uvarint(n)))


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_decode_error(data: bytes) -> None:
    for fn in (decode_string, decode_data):
        try:
            fn(data)
        except DecodeError:
            pass
