"""The record layer: replay rejected, reordering within the window accepted and outside it
rejected, any flipped bit rejected, and a rejected record changes nothing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.channels import vectors as v
from tests.strategies import mutations_of
from trust.channels import (
    ChannelMessage,
    Close,
    DecryptionError,
    Decryptor,
    Encryptor,
    Payload,
    RecordSession,
    RefreshCredentials,
    ReplayError,
    SplitKeys,
)
from trust.channels.records import MAX_NONCE, RECORD_OVERHEAD
from trust.errors import DecodeError, UsageError
from trust.routing import Route

K = v.OCKAM_K2


def records(count: int, key: bytes = K) -> list[bytes]:
    enc = Encryptor(key)
    return [enc.encrypt(b"record %d" % n) for n in range(count)]


def test_replay_rejected() -> None:
    recs = records(40)
    dec = Decryptor(K)
    for n, r in enumerate(recs):
        assert dec.decrypt(r) == b"record %d" % n
        with pytest.raises(ReplayError, match="replay"):
            dec.decrypt(r)
    for r in recs[8:]:  # every one still in the window is refused again
        with pytest.raises(ReplayError):
            dec.decrypt(r)


def test_reorder_within_the_window_accepted() -> None:
    recs = records(200)
    rng = random.Random(7)
    order = list(range(200))
    # shuffle in blocks of 32: every record lies within 32 of the highest accepted so far
    for start in range(0, 200, 32):
        block = order[start : start + 32]
        rng.shuffle(block)
        order[start : start + 32] = block
    dec = Decryptor(K)
    for n in order:
        assert dec.decrypt(recs[n]) == b"record %d" % n
    assert dec.highest_nonce == 199


def test_reorder_outside_the_window_rejected() -> None:
    recs = records(100)
    dec = Decryptor(K)
    dec.decrypt(recs[0])
    with pytest.raises(ReplayError, match="ahead"):
        dec.decrypt(recs[33])  # 33 ahead of 0
    dec.decrypt(recs[32])  # exactly 32 ahead: fine (and a new key)
    dec.decrypt(recs[64])
    with pytest.raises(ReplayError, match="behind"):
        dec.decrypt(recs[31])  # 33 behind 64
    dec.decrypt(recs[33])  # 31 behind, previous key: fine


def test_every_flipped_bit_rejected_and_nothing_changes() -> None:
    recs = records(3)
    dec = Decryptor(K)
    dec.decrypt(recs[0])
    target = recs[1]
    for i in range(len(target)):
        for bit in range(8):
            b = bytearray(target)
            b[i] ^= 1 << bit
            with pytest.raises((DecryptionError, ReplayError)):
                dec.decrypt(bytes(b))
    # the forgeries changed nothing: the real record 1 and 2 are accepted
    assert dec.decrypt(target) == b"record 1"
    assert dec.decrypt(recs[2]) == b"record 2"


def test_forged_record_does_not_move_the_window_or_the_key() -> None:
    recs = records(70)
    dec = Decryptor(K)
    dec.decrypt(recs[0])
    forged = (32).to_bytes(8, "big") + recs[32][8:-1] + bytes([recs[32][-1] ^ 1])
    with pytest.raises(DecryptionError):
        dec.decrypt(forged)  # would have rotated the key and moved the window
    assert dec.highest_nonce == 0
    for n in range(1, 33):
        dec.decrypt(recs[n])
    ahead = bytearray(recs[64])
    ahead[-1] ^= 1
    with pytest.raises(DecryptionError):
        dec.decrypt(bytes(ahead))
    assert dec.decrypt(recs[33]) == b"record 33"


def test_short_and_foreign_records() -> None:
    dec = Decryptor(K)
    for short in (b"", bytes(8), bytes(RECORD_OVERHEAD - 1)):
        with pytest.raises(DecodeError):
            dec.decrypt(short)
    with pytest.raises(DecryptionError):
        dec.decrypt(records(1, v.OCKAM_K1)[0])  # the other direction's key
    with pytest.raises(ReplayError):
        dec.decrypt(b"\xff" * 8 + bytes(16))  # u64::MAX, far outside


def test_nonce_exhaustion() -> None:
    enc = Encryptor.resume(K, MAX_NONCE)
    assert enc.encrypt(b"last")[:8] == b"\xff" * 7 + b"\xfe"
    with pytest.raises(UsageError, match="nonces"):
        enc.encrypt(b"one too many")
    with pytest.raises(UsageError):
        Encryptor(b"short")
    with pytest.raises(UsageError):
        Encryptor(K, nonce=MAX_NONCE)  # resume() takes the key of that nonce instead
    enc = Encryptor(K, nonce=40)
    key, nonce = enc.state
    assert Encryptor.resume(key, nonce).encrypt(b"a") == enc.encrypt(b"a")


def test_encrypt_into_and_decrypt_into() -> None:
    enc, enc2 = Encryptor(K), Encryptor(K)
    buf = bytearray(100)
    n = enc.encrypt_into(b"hello", buf)
    assert bytes(buf[:n]) == enc2.encrypt(b"hello")
    dec = Decryptor(K)
    out = bytearray(10)
    assert dec.decrypt_into(bytes(buf[:n]), out) == 5 and out[:5] == b"hello"
    with pytest.raises(UsageError):
        enc.encrypt_into(b"x" * 100, bytearray(10))


def _sessions() -> tuple[RecordSession, RecordSession]:
    a = RecordSession(SplitKeys(encrypt_key=v.OCKAM_K2, decrypt_key=v.OCKAM_K1))
    b = RecordSession(SplitKeys(encrypt_key=v.OCKAM_K1, decrypt_key=v.OCKAM_K2))
    return a, b


def test_session_round_trips_every_message() -> None:
    a, b = _sessions()
    route = Route(["1#127.0.0.1:4000", "echoer"])
    messages: list[ChannelMessage] = [
        Payload(route, Route(["app"]), b"x"), Close(), RefreshCredentials(v.ELIXIR_HISTORY),
        Payload(Route([]), Route([]), b"")]
    for m in messages:
        assert b.decrypt(a.encrypt(m)) == m
        assert a.decrypt(b.encrypt(m)) == m
    for size in (1024, 16 * 1024 - 40, 64 * 1024, 65_536 * 3, 1000):
        data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
        record = a.encrypt_payload(Route(["echoer"]), Route(["app"]), data)
        assert b.decrypt(record) == Payload(Route(["echoer"]), Route(["app"]), data)


def test_session_rejects_tampered_large_record_and_recovers() -> None:
    a, b = _sessions()
    data = b"q" * 70_000
    record = bytearray(a.encrypt_payload(Route(["echoer"]), Route([]), data))
    record[5000] ^= 4
    with pytest.raises(DecryptionError):
        b.decrypt(bytes(record))
    record[5000] ^= 4
    assert b.decrypt(bytes(record)).payload == data  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | mutations_of([*records(3), _sessions()[0].encrypt(Close())]))
def test_any_record_bytes_give_a_message_or_a_typed_error(raw: bytes) -> None:
    _, b = _sessions()
    try:
        b.decrypt(raw)
    except (DecodeError, DecryptionError, ReplayError):
        return


def test_decryptor_snapshot_restore_continues_exactly() -> None:
    """A restored decryptor accepts and refuses exactly what the original would (window, keys
    rotated on both sides of a boundary, replays)."""
    key = bytes(range(32))
    enc = Encryptor(key)
    records = [enc.encrypt(b"m%d" % i) for i in range(100)]
    dec = Decryptor(key)
    for i in [*range(40), 45, 41, 70]:
        dec.decrypt(records[i])
    twin = Decryptor.restore(*dec.snapshot())
    for i in (42, 43, 44, 46, 71, 69, 72, 99, 98):
        assert dec.decrypt(records[i]) == twin.decrypt(records[i]) == b"m%d" % i
    for i in (45, 41, 70, 0, 10):
        for d in (dec, twin):
            with pytest.raises(ReplayError):
                d.decrypt(records[i])
    assert dec.snapshot() == twin.snapshot()
    with pytest.raises(UsageError):
        Decryptor.restore(key, None, 32, 40, 0)


def test_decrypt_view_gives_large_payloads_as_read_only_views_of_new_plaintext() -> None:
    a, b = _sessions()
    on, ret = Route(["echoer"]), Route(["app"])
    data = bytes(range(256)) * 200  # 51,200 bytes: a large record
    kinds = []
    for i in range(4):
        chunk = data[i:]  # (a new size each time: the length head changes too)
        m = b.decrypt(a.encrypt_payload(on, ret, chunk), view=True)
        assert type(m) is Payload and m.payload == chunk
        assert (m.onward_route, m.return_route) == (on, ret)
        kinds.append(type(m.payload))
    # the first record decodes its routes (a copy); records with remembered routes are views
    assert kinds[0] is bytes
    m = b.decrypt(a.encrypt_payload(on, ret, data[3:]), view=True)
    assert type(m.payload) is memoryview and m.payload.readonly  # type: ignore[union-attr]
    kept = m.payload  # type: ignore[union-attr]
    b.decrypt(a.encrypt_payload(on, ret, b"\xff" * len(data[3:])), view=True)
    assert kept == data[3:]  # its own plaintext: a later record does not change it
    # small records and the default are bytes
    assert type(b.decrypt(a.encrypt_payload(on, ret, b"x" * 100),  # type: ignore[union-attr]
                          view=True).payload) is bytes
    assert type(b.decrypt(a.encrypt_payload(on, ret, data)).payload) is bytes  # type: ignore[union-attr]


def test_decrypt_view_rejects_tampered_and_replayed_records_and_changes_nothing() -> None:
    a, b = _sessions()
    on, ret = Route(["echoer"]), Route(["app"])
    data = b"v" * 40_000
    first = a.encrypt_payload(on, ret, data)
    assert b.decrypt(first, view=True).payload == data  # type: ignore[union-attr]
    record = bytearray(a.encrypt_payload(on, ret, data))
    record[3000] ^= 1
    with pytest.raises(DecryptionError):
        b.decrypt(memoryview(bytes(record)), view=True)
    with pytest.raises(ReplayError):
        b.decrypt(first, view=True)
    record[3000] ^= 1
    assert b.decrypt(memoryview(bytes(record)), view=True).payload == data  # type: ignore[union-attr]


def test_encrypt_payload_at_makes_the_record_encrypt_payload_makes_in_the_senders_buffer() -> None:
    """A large payload with room around it in its sender's buffer is encrypted where it is:
    the same record as :meth:`RecordSession.encrypt_payload` makes, nonce for nonce across
    key renewals, the byte after the payload restored; nothing written at all when the head
    does not fit, the payload is small, nothing follows it, or no nonce is left."""
    a, twin = _sessions()[0], _sessions()[0]
    on, ret = Route(["echoer"]), Route(["app"])
    data = bytes(range(256)) * 200
    room = 64
    buf = bytearray(room + len(data) + 1)
    buf[room:room + len(data)] = data
    buf[-1] = 0xAB
    view = memoryview(buf)
    b = RecordSession(SplitKeys(encrypt_key=v.OCKAM_K1, decrypt_key=v.OCKAM_K2))
    for i in range(70):  # (the keys change at nonces 32 and 64)
        size = len(data) - i % 3
        record = a.encrypt_payload_at(on, ret, view, room, size, room)
        assert record == twin.encrypt_payload(on, ret, data[:size])
        assert buf[room:room + len(data)] == data and buf[-1] == 0xAB
        assert b.decrypt(record) == Payload(on, ret, data[:size])  # (read as any record)
    untouched = bytes(buf)
    assert a.encrypt_payload_at(on, ret, view, room, len(data), 3) is None
    assert a.encrypt_payload_at(on, ret, view, room, 1000, room) is None
    assert a.encrypt_payload_at(on, ret, view, room, len(data) + 1, room) is None
    assert bytes(buf) == untouched and a.encryptor.nonce == twin.encryptor.nonce == 70
    # no nonce left: the checking path says so
    spent = RecordSession(SplitKeys(encrypt_key=v.OCKAM_K2, decrypt_key=v.OCKAM_K1))
    spent.encryptor = Encryptor.resume(v.OCKAM_K2, MAX_NONCE + 1)
    assert spent.encrypt_payload_at(on, ret, view, room, len(data), room) is None
    with pytest.raises(UsageError):
        spent.encrypt_payload(on, ret, data)
