"""The sans-IO handshake and record layer reproduce the specification's vectors byte for byte
(tests/channels/vectors.py names where each comes from)."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.channels import vectors as v
from tests.channels.helpers import NOW, appendix_b_identities, elixir_attestation, vector_keys
from trust.channels import (
    Close,
    Decryptor,
    Encryptor,
    HandshakeComplete,
    HandshakeState,
    Initiator,
    Payload,
    RecordSession,
    ReplayError,
    Responder,
    SendMessage,
    decode_message,
)
from trust.channels.noise import PROTOCOL_NAME, NoiseInitiator, NoiseResponder, SymmetricState
from trust.channels.records import rekey
from trust.routing import Route


def _bare(name: bytes, payloads: tuple[bytes, bytes, bytes]) -> tuple[bytes, bytes, bytes, object, object]:
    i_s, i_e, r_s, r_e = vector_keys()
    ini = NoiseInitiator(i_s, ephemeral=i_e, protocol_name=name)
    res = NoiseResponder(r_s, ephemeral=r_e, protocol_name=name)
    m1 = ini.write_message1(payloads[0])
    assert res.read_message1(m1) == payloads[0]
    m2 = res.write_message2(payloads[1])
    assert ini.read_message2(m2) == payloads[1]
    m3, ki = ini.write_message3(payloads[2])
    p3, kr = res.read_message3(m3)
    assert p3 == payloads[2]
    assert ini.handshake_hash == res.handshake_hash
    assert ini.remote_static == r_s.public and res.remote_static == i_s.public
    return m1, m2, m3, ki, kr


EMPTY = (b"", b"", b"")
TEST_MSGS = (b"test_msg_0", b"test_msg_1", b"test_msg_2")


def test_initialisation_hashes() -> None:
    assert SymmetricState(v.NOISE_NAME).h == v.NOISE_H0
    assert SymmetricState(PROTOCOL_NAME).h == v.OCKAM_H0
    assert SymmetricState(v.NOISE_NAME).ck == v.NOISE_NAME.ljust(32, b"\0")


def test_public_keys() -> None:
    i_s, i_e, r_s, _ = vector_keys()
    assert i_s.public == v.INITIATOR_STATIC_PUBLIC
    assert r_s.public == v.RESPONDER_STATIC_PUBLIC
    assert i_e.public == v.NOISE_EMPTY[0]


@pytest.mark.parametrize(("payloads", "expected"), [(EMPTY, v.NOISE_EMPTY), (TEST_MSGS, v.NOISE_TEST_MSG)])
def test_upstream_noise_name_vectors(payloads: tuple[bytes, bytes, bytes],
                                     expected: tuple[bytes, bytes, bytes]) -> None:
    m1, m2, m3, ki, kr = _bare(v.NOISE_NAME, payloads)
    assert (m1, m2, m3) == expected
    # Ockam's reversed split: the initiator encrypts with k2
    assert ki.encrypt_key == kr.decrypt_key == v.NOISE_K2  # type: ignore[attr-defined]
    assert ki.decrypt_key == kr.encrypt_key == v.NOISE_K1  # type: ignore[attr-defined]


def test_production_name_vectors() -> None:
    m1, m2, m3, ki, kr = _bare(PROTOCOL_NAME, EMPTY)
    assert (m1, m2, m3) == v.OCKAM_EMPTY
    assert ki.encrypt_key == v.OCKAM_K2 and ki.decrypt_key == v.OCKAM_K1  # type: ignore[attr-defined]
    assert kr.encrypt_key == v.OCKAM_K1 and kr.decrypt_key == v.OCKAM_K2  # type: ignore[attr-defined]
    m1, m2, m3, ki, _ = _bare(PROTOCOL_NAME, TEST_MSGS)
    assert m1 == v.NOISE_TEST_MSG[0]  # message 1 does not depend on the name
    assert (m2, m3) == (v.OCKAM_TEST_MSG_2, v.OCKAM_TEST_MSG_3)
    assert ki.encrypt_key == v.OCKAM_K2  # type: ignore[attr-defined]


def test_appendix_b_payloads() -> None:
    _, _, r_s, _ = vector_keys()
    att = elixir_attestation(r_s.public)
    assert att.data == v.RESPONDER_PKA_VERSIONED
    initiator, responder = appendix_b_identities()
    assert responder.payload_bytes == v.RESPONDER_PAYLOAD
    assert initiator.payload_bytes == v.INITIATOR_PAYLOAD
    assert responder.identifier == initiator.identifier == v.ELIXIR_IDENTIFIER


def _appendix_b_handshake() -> tuple[bytes, bytes, bytes, HandshakeComplete, HandshakeComplete]:
    _, i_e, _, r_e = vector_keys()
    i_id, r_id = appendix_b_identities()
    ini = Initiator(i_id, ephemeral=i_e)
    res = Responder(r_id, ephemeral=r_e)
    m1 = ini.start()
    [m2] = res.receive(m1, now=NOW)
    assert isinstance(m2, SendMessage)
    m3, done_i = ini.receive(m2.data, now=NOW)
    assert isinstance(m3, SendMessage) and isinstance(done_i, HandshakeComplete)
    [done_r] = res.receive(m3.data, now=NOW)
    assert isinstance(done_r, HandshakeComplete)
    assert ini.state is res.state is HandshakeState.COMPLETE
    return m1, m2.data, m3.data, done_i, done_r


def test_appendix_b_handshake() -> None:
    m1, m2, m3, done_i, done_r = _appendix_b_handshake()
    assert m1 == v.IDENTITY_M1
    assert m2 == v.IDENTITY_M2
    assert m3 == v.IDENTITY_M3
    assert done_i.handshake_hash == done_r.handshake_hash == v.IDENTITY_FINAL_H
    assert done_i.keys.encrypt_key == done_r.keys.decrypt_key == v.OCKAM_K2
    assert done_i.keys.decrypt_key == done_r.keys.encrypt_key == v.OCKAM_K1
    assert done_i.peer.identifier == done_r.peer.identifier == v.ELIXIR_IDENTIFIER
    assert done_i.peer.static_key == v.RESPONDER_STATIC_PUBLIC
    assert done_r.peer.static_key == v.INITIATOR_STATIC_PUBLIC
    assert "keys" not in repr(done_i) and v.OCKAM_K2.hex() not in repr(done_i)


def test_first_record() -> None:
    message = Payload(Route(["echoer"]), Route(["app"]), v.PAYLOAD_INNER)
    assert message.encode() == v.PAYLOAD_PLAINTEXT
    assert decode_message(v.PAYLOAD_PLAINTEXT) == message
    assert Encryptor(v.OCKAM_K2).encrypt(v.PAYLOAD_PLAINTEXT) == v.FIRST_RECORD
    _, _, _, done_i, done_r = _appendix_b_handshake()
    initiator, responder = RecordSession(done_i.keys), RecordSession(done_r.keys)
    assert initiator.encrypt_payload(Route(["echoer"]), Route(["app"]), v.PAYLOAD_INNER) == v.FIRST_RECORD
    assert responder.decrypt(v.FIRST_RECORD) == message
    reply = responder.encrypt(Payload(Route(["app"]), Route([]), b"back"))
    assert initiator.decrypt(reply) == Payload(Route(["app"]), Route([]), b"back")


def test_rekey_at_32_and_64() -> None:
    assert rekey(v.OCKAM_K2) == v.REKEY_K2
    keys = [v.OCKAM_K2, v.REKEY_K2, rekey(v.REKEY_K2)]
    enc = Encryptor(v.OCKAM_K2)
    records = [enc.encrypt(b"message %d" % n) for n in range(70)]
    for n, record in enumerate(records):
        assert record[:8] == n.to_bytes(8, "big")
        key = keys[n // 32]
        pt = AESGCM(key).decrypt(bytes(4) + record[:8], record[8:], None)
        assert pt == b"message %d" % n
        if n % 32 == 0 and n:  # the previous key no longer opens it
            with pytest.raises(InvalidTag):
                AESGCM(keys[n // 32 - 1]).decrypt(bytes(4) + record[:8], record[8:], None)
    dec = Decryptor(v.OCKAM_K2)
    assert [dec.decrypt(r) for r in records] == [b"message %d" % n for n in range(70)]
    # an encryptor resumed at a nonce uses that nonce's key
    for start in (31, 32, 33, 63, 64, 65):
        assert Encryptor(v.OCKAM_K2, nonce=start).encrypt(b"message %d" % start) == records[start]


def test_replay_window_sequence() -> None:
    enc = Encryptor(v.OCKAM_K2)
    records = [enc.encrypt(n.to_bytes(2, "big")) for n in range(161)]
    dec = Decryptor(v.OCKAM_K2)
    for n, accepted in v.REPLAY_SEQUENCE:
        if accepted:
            assert dec.decrypt(records[n]) == n.to_bytes(2, "big"), n
        else:
            with pytest.raises(ReplayError):
                dec.decrypt(records[n])


def test_close_and_refresh_credentials_vectors() -> None:
    assert Close().encode() == v.CLOSE
    assert decode_message(v.CLOSE) == Close()
    from trust.channels import RefreshCredentials

    message = RefreshCredentials(v.ELIXIR_HISTORY)
    raw = message.encode()
    assert raw.startswith(v.REFRESH_CREDENTIALS_PREFIX)
    assert decode_message(raw) == message
