"""Addresses and routes: text forms, CBOR (wire spec §1.1-1.2), errors."""

from __future__ import annotations

import pickle

import pytest

from trust.errors import DecodeError, UsageError
from trust.routing import LOCAL, TCP, Address, LocalMessage, Route


def test_address_text_forms() -> None:
    assert Address.parse("echo") == Address(LOCAL, b"echo")
    assert Address.parse("0#echo") == Address.local("echo")
    assert Address.parse("1#127.0.0.1:4000") == Address.tcp("127.0.0.1:4000")
    assert str(Address.local("echo")) == "0#echo"
    assert str(Address.tcp("localhost:4000")) == "1#localhost:4000"
    assert Address.tcp("h:1").tt == TCP and Address.tcp("h:1").inner == b"h:1"
    assert Address(0, b"\xff\x00").name == "ff00"  # not UTF-8: shown as hex


@pytest.mark.parametrize("text", ["", "a#b#c", "x#echo", "256#echo", "1#", "-1#a", "١#a"])
def test_address_bad_text(text: str) -> None:
    with pytest.raises(UsageError):
        Address.parse(text)


def test_address_random_is_32_hex() -> None:
    a, b = Address.random(), Address.random()
    assert a != b and a.tt == 0
    assert len(a.name) == 32 and int(a.name, 16) >= 0 and a.name == a.name.lower()


def test_address_cbor_vector() -> None:
    # wire spec §1.1: 0#app -> 82 00 43 617070
    assert Address.local("app").encode().hex() == "820043617070"
    assert Address.decode(bytes.fromhex("820043617070")) == Address.local("app")
    assert Address.tcp("1.2.3.4:5").encode().hex() == "820149312e322e332e343a35"


@pytest.mark.parametrize("hexdata", [
    "820043617070ff",      # trailing byte
    "83004361707000",      # three elements
    "a2",                  # map (the pre-2024 form)
    "82180143617070",      # non-shortest type head
    "82190100436170",      # type 256
    "82004461",            # inner runs past the end
    "82006361",            # inner is text, not bytes
    "",
])
def test_address_decode_rejects(hexdata: str) -> None:
    with pytest.raises(DecodeError):
        Address.decode(bytes.fromhex(hexdata))


def test_address_is_hashable_value_and_pickles() -> None:
    a = Address.local("w")
    assert {a: 1}[Address.parse("0#w")] == 1
    assert pickle.loads(pickle.dumps(a)) == a
    assert isinstance(pickle.loads(pickle.dumps(a)), Address)


def test_route_building_and_text() -> None:
    r = Route(["1#127.0.0.1:4000", "hop"]) / "echo"
    assert str(r) == "1#127.0.0.1:4000 => 0#hop => 0#echo"
    assert Route.parse(str(r)) == r
    assert r.next() == Address.tcp("127.0.0.1:4000")
    assert r.pop_front() == Route(["hop", "echo"])
    assert r.push_front(Address.local("x"))[0] == Address.local("x")
    assert r[1:] == Route(["hop", "echo"])
    assert Route.of("echo") == Route(["echo"]) and Route.of(Address.local("a")) == Route(["a"])
    assert Route([]) == Route.parse("") and not Route([])
    with pytest.raises(UsageError):
        Route([]).next()
    with pytest.raises(UsageError):
        Route.parse("a => => b")


def test_route_cbor_round_trip() -> None:
    r = Route(["echoer"])
    assert r.encode().hex() == "81820046" + b"echoer".hex()
    assert Route.decode(r.encode()) == r
    assert Route.decode(b"\x80") == Route([])
    with pytest.raises(DecodeError):
        Route.decode(b"\x81")
    with pytest.raises(DecodeError):
        Route.decode(r.encode() + b"\x00")


def test_local_message_route_steps() -> None:
    m = LocalMessage(Route(["hop", "echo"]), Route(["app"]), b"x")
    n = m.step_forward(Address.local("hop"))
    assert n.onward_route == Route(["echo"]) and n.return_route == Route(["hop", "app"])
    assert m.onward_route == Route(["hop", "echo"])  # the original is unchanged
    assert m.replace_front_onward(Address.local("z")).onward_route == Route(["z", "echo"])
    assert m.with_payload(b"y").payload == b"y"
    assert "payload=1B" in repr(m)
