"""The handshake fails with a typed error, and yields no keys, on every way a peer can be wrong:
bad binding, attestation out of its window, a history that does not verify, an untrusted peer,
a missing or bad credential, any changed byte, a replayed message."""

from __future__ import annotations

import pytest

from tests.channels import vectors as v
from tests.channels.helpers import (
    NOW,
    appendix_b_identities,
    elixir_attestation,
    elixir_payload,
    vector_keys,
    world,
)
from trust.channels import (
    ChannelIdentity,
    Close,
    DecryptionError,
    HandshakeComplete,
    HandshakeState,
    IdentityAndCredentials,
    Initiator,
    PeerAuthenticator,
    RecordSession,
    Responder,
    TrustAuthority,
    TrustIdentifier,
    TrustPolicy,
    X25519KeyPair,
)
from trust.channels.keys import DhKey
from trust.errors import RemoteProtocolError, TrustError, UntrustedError, UsageError, VerificationError
from trust.models.primitives import Signature
from trust.models.purpose_key import PurposeKeyAttestation


def forged(static: DhKey, payload: IdentityAndCredentials) -> ChannelIdentity:
    """A ChannelIdentity without the local check that its attestation names its static key (a
    misbehaving peer)."""
    ident = object.__new__(ChannelIdentity)
    ident.static = static
    ident.payload = payload
    ident.payload_bytes = payload.encode()
    return ident


def handshake(ini_id: ChannelIdentity, res_id: ChannelIdentity,
              ini_auth: PeerAuthenticator | None = None, res_auth: PeerAuthenticator | None = None,
              now: int = NOW) -> tuple[HandshakeComplete, HandshakeComplete]:
    ini = Initiator(ini_id, ini_auth)
    res = Responder(res_id, res_auth)
    [m2] = res.receive(ini.start(), now=now)
    m3, done_i = ini.receive(m2.data, now=now)  # type: ignore[union-attr]
    [done_r] = res.receive(m3.data, now=now)  # type: ignore[union-attr]
    assert isinstance(done_i, HandshakeComplete) and isinstance(done_r, HandshakeComplete)
    return done_i, done_r


def fails(ini_id: ChannelIdentity, res_id: ChannelIdentity, error: type[Exception], *,
          side: str, ini_auth: PeerAuthenticator | None = None,
          res_auth: PeerAuthenticator | None = None, now: int = NOW, match: str | None = None) -> Exception:
    """Run a handshake that must fail on ``side`` ("initiator": checking message 2;
    "responder": checking message 3); check that it reports nothing and stays failed."""
    ini = Initiator(ini_id, ini_auth)
    res = Responder(res_id, res_auth)
    [m2] = res.receive(ini.start(), now=now)
    if side == "initiator":
        with pytest.raises(error, match=match) as info:
            ini.receive(m2.data, now=now)  # type: ignore[union-attr]
        machine: Initiator | Responder = ini
        again = m2.data  # type: ignore[union-attr]
    else:
        m3, _ = ini.receive(m2.data, now=now)  # type: ignore[union-attr]
        with pytest.raises(error, match=match) as info:
            res.receive(m3.data, now=now)  # type: ignore[union-attr]
        machine = res
        again = m3.data  # type: ignore[union-attr]
    assert machine.state is HandshakeState.FAILED
    assert machine.error is info.value
    with pytest.raises(RemoteProtocolError, match="failed"):
        machine.receive(again, now=now)
    return info.value


def both_sides(bad: ChannelIdentity, good: ChannelIdentity, error: type[Exception], *,
               auth: PeerAuthenticator | None = None, now: int = NOW, match: str | None = None) -> None:
    fails(bad, good, error, side="responder", res_auth=auth, now=now, match=match)
    fails(good, bad, error, side="initiator", ini_auth=auth, now=now, match=match)


# -- success first -------------------------------------------------------------------------------


def test_vault_keys_and_both_key_types() -> None:
    w = world()
    done_i, done_r = handshake(w.alice.channel_identity(), w.bob.channel_identity())
    assert done_i.peer.identifier == w.bob.identity.identifier
    assert done_r.peer.identifier == w.alice.identity.identifier
    assert done_i.keys.encrypt_key == done_r.keys.decrypt_key
    assert done_i.keys.decrypt_key == done_r.keys.encrypt_key
    assert done_i.peer.credentials == () and not done_i.peer.has_credential


def test_credentials_verified_and_exposed() -> None:
    w = world()
    auth = PeerAuthenticator(TrustAuthority(w.authority))
    _, done_r = handshake(w.alice.channel_identity((w.alice_credential,)), w.bob.channel_identity(),
                          res_auth=auth)
    peer = done_r.peer
    assert peer.has_credential and peer.credentials[0].issuer == w.authority.identifier
    assert peer.attributes == {"role": "admin", "team": "blue"}
    policy = TrustPolicy('(and (= subject.role "admin") subject.has_credential)',
                         authorities=(w.authority,))
    handshake(w.alice.channel_identity((w.alice_credential,)), w.bob.channel_identity(),
              res_auth=PeerAuthenticator(policy))


def test_credentials_ignored_without_an_authority() -> None:
    w = world()
    # Ockam's rule: with no authority configured, credentials are not verified nor used
    _, done_r = handshake(w.alice.channel_identity((w.alice_foreign_credential,)),
                          w.bob.channel_identity())
    assert done_r.peer.credentials == ()


# -- the binding ---------------------------------------------------------------------------------


def test_attested_key_is_not_the_noise_static_key() -> None:
    w = world()
    i_s, _, r_s, _ = vector_keys()
    # the payload attests r_s, but the handshake is run with i_s
    bad = forged(i_s, elixir_payload(r_s.public))
    both_sides(bad, w.carol.channel_identity(), VerificationError,
               match="not the key the peer used")
    # and a payload whose attestation is of another party altogether
    bad = forged(X25519KeyPair.generate(), IdentityAndCredentials.of(
        w.alice.identity.export(), w.alice.attestation))
    both_sides(bad, w.carol.channel_identity(), VerificationError)


def test_local_identity_must_name_its_static_key() -> None:
    i_s, _, r_s, _ = vector_keys()
    with pytest.raises(UsageError):
        ChannelIdentity(i_s, elixir_payload(r_s.public))


# -- the attestation's window ----------------------------------------------------------------------


def _elixir(created: int = v.ATT_CREATED, expires: int = v.ATT_EXPIRES) -> ChannelIdentity:
    key = X25519KeyPair.generate()
    return ChannelIdentity(key, elixir_payload(key.public, created=created, expires=expires))


def test_expired_attestation() -> None:
    good = world().carol.channel_identity()
    both_sides(_elixir(expires=NOW - 1), good, VerificationError, match="expired")
    handshake(_elixir(expires=NOW), good)  # valid up to its expiry, inclusive


def test_future_attestation() -> None:
    good = world().carol.channel_identity()
    both_sides(_elixir(created=NOW + 61), good, VerificationError, match="future")
    handshake(_elixir(created=NOW + 60), good)  # 60 s of clock drift allowed
    early = _elixir(created=v.ATT_CREATED - 1_000)
    both_sides(_elixir(), early, VerificationError, now=v.ATT_CREATED - 61, match="future")


def test_history_that_does_not_verify() -> None:
    key = X25519KeyPair.generate()
    history = bytearray(v.ELIXIR_HISTORY)
    history[-1] ^= 1  # the change's signature
    bad = ChannelIdentity(key, IdentityAndCredentials.of(bytes(history), elixir_attestation(key.public)))
    both_sides(bad, world().carol.channel_identity(), VerificationError, match="signature")


def test_attestation_signed_by_another_identity() -> None:
    w = world()
    # carol's history with alice's attestation (of alice's key): subject mismatch
    bad = forged(w.alice.static, IdentityAndCredentials.of(w.carol.identity.export(),
                                                           w.alice.attestation))
    both_sides(bad, w.bob.channel_identity(), VerificationError, match="attestation is for")


# -- trust policies and credentials ------------------------------------------------------------------


def test_untrusted_identifier() -> None:
    w = world()
    auth = PeerAuthenticator(TrustIdentifier(w.bob.identity.identifier))
    both_sides(w.alice.channel_identity(), w.carol.channel_identity(), UntrustedError, auth=auth,
               match="not a trusted identifier")


def test_required_credential_missing() -> None:
    w = world()
    for auth in (PeerAuthenticator(TrustAuthority(w.authority)),
                 PeerAuthenticator(authorities=[w.authority], require_credential=True)):
        both_sides(w.alice.channel_identity(), w.carol.channel_identity(), UntrustedError,
                   auth=auth, match="no (valid )?credential")


def test_credential_from_an_unknown_authority() -> None:
    w = world()
    auth = PeerAuthenticator(TrustAuthority(w.authority))
    both_sides(w.alice.channel_identity((w.alice_foreign_credential,)), w.carol.channel_identity(),
               UntrustedError, auth=auth, match="not one of the given authorities")
    # even when credentials are optional, a presented one that does not verify fails
    auth = PeerAuthenticator(authorities=[w.authority])
    both_sides(w.alice.channel_identity((w.alice_foreign_credential,)), w.carol.channel_identity(),
               UntrustedError, auth=auth)


def test_expired_credential() -> None:
    w = world()
    auth = PeerAuthenticator(TrustAuthority(w.authority))
    both_sides(w.alice.channel_identity((w.alice_expired_credential,)), w.carol.channel_identity(),
               VerificationError, auth=auth, match="expired")


def test_credential_of_someone_else() -> None:
    w = world()
    auth = PeerAuthenticator(TrustAuthority(w.authority))
    both_sides(w.bob.channel_identity((w.alice_credential,)), w.carol.channel_identity(),
               UntrustedError, auth=auth, match="about")


def test_policy_denies() -> None:
    w = world()
    auth = PeerAuthenticator(TrustPolicy('(= subject.role "dev")', authorities=(w.authority,)))
    both_sides(w.alice.channel_identity((w.alice_credential,)), w.carol.channel_identity(),
               UntrustedError, auth=auth, match="refused by the policy")


def test_warm_path_still_checks_time_and_trust() -> None:
    w = world()
    alice = w.alice.channel_identity((w.alice_credential,))
    auth = PeerAuthenticator(TrustAuthority(w.authority))
    handshake(alice, w.carol.channel_identity(), res_auth=auth)  # fills the caches
    expires = w.alice.attestation.attestation_data.expires_at
    fails(alice, w.carol.channel_identity(), VerificationError, side="responder", res_auth=auth,
          now=expires + 1)
    fails(alice, w.carol.channel_identity(), UntrustedError, side="responder",
          res_auth=PeerAuthenticator(TrustIdentifier(w.bob.identity)))
    cred_expiry = w.alice_credential.credential.expires_at
    fails(alice, w.carol.channel_identity(), VerificationError, side="responder", res_auth=auth,
          now=cred_expiry + 1)


# -- every byte ------------------------------------------------------------------------------------


def _variants(message: bytes) -> list[bytes]:
    out = []
    for i in range(len(message)):
        for x in (0x01, 0x80, 0xFF):
            b = bytearray(message)
            b[i] ^= x
            out.append(bytes(b))
    out += [message[:-1], message + b"\x00", message[1:]]
    return out


def test_every_changed_byte_of_message_1() -> None:
    _, i_e, _, r_e = vector_keys()
    i_id, r_id = appendix_b_identities()
    for m1 in _variants(v.IDENTITY_M1):
        ini = Initiator(i_id, ephemeral=i_e)
        assert ini.start() == v.IDENTITY_M1
        res = Responder(r_id, ephemeral=r_e)
        try:
            [m2] = res.receive(m1, now=NOW)
        except TrustError:
            continue  # refused at once: fine
        with pytest.raises(TrustError):
            ini.receive(m2.data, now=NOW)  # type: ignore[union-attr]
        assert ini.state is HandshakeState.FAILED


def test_every_changed_byte_of_message_2() -> None:
    _, i_e, _, _ = vector_keys()
    i_id, _ = appendix_b_identities()
    for m2 in _variants(v.IDENTITY_M2):
        ini = Initiator(i_id, ephemeral=i_e)
        ini.start()
        with pytest.raises(TrustError):
            ini.receive(m2, now=NOW)
        assert ini.state is HandshakeState.FAILED


def test_every_changed_byte_of_message_3() -> None:
    _, _, _, r_e = vector_keys()
    _, r_id = appendix_b_identities()
    for m3 in _variants(v.IDENTITY_M3):
        res = Responder(r_id, ephemeral=r_e)
        [m2] = res.receive(v.IDENTITY_M1, now=NOW)
        assert m2.data == v.IDENTITY_M2  # type: ignore[union-attr]
        with pytest.raises(TrustError):
            res.receive(m3, now=NOW)
        assert res.state is HandshakeState.FAILED


# -- replays -------------------------------------------------------------------------------------


def test_replayed_messages_to_the_same_machines() -> None:
    _, i_e, _, r_e = vector_keys()
    i_id, r_id = appendix_b_identities()
    ini, res = Initiator(i_id, ephemeral=i_e), Responder(r_id, ephemeral=r_e)
    m1 = ini.start()
    [m2] = res.receive(m1, now=NOW)
    with pytest.raises(TrustError):
        res.receive(m1, now=NOW)  # message 1 again, where message 3 is expected
    res = Responder(r_id, ephemeral=r_e)
    res.receive(m1, now=NOW)
    m3, _ = ini.receive(m2.data, now=NOW)  # type: ignore[union-attr]
    with pytest.raises(RemoteProtocolError, match="completed"):
        ini.receive(m2.data, now=NOW)  # type: ignore[union-attr]
    res.receive(m3.data, now=NOW)  # type: ignore[union-attr]
    with pytest.raises(RemoteProtocolError, match="completed"):
        res.receive(m3.data, now=NOW)  # type: ignore[union-attr]


def test_recorded_handshake_replayed_to_fresh_machines() -> None:
    i_id, r_id = appendix_b_identities()
    # an eavesdropper replays messages 1 and 3 to a new responder (fresh ephemeral key)
    res = Responder(r_id)
    [m2] = res.receive(v.IDENTITY_M1, now=NOW)
    assert m2.data != v.IDENTITY_M2  # type: ignore[union-attr]
    with pytest.raises(DecryptionError):
        res.receive(v.IDENTITY_M3, now=NOW)
    assert res.state is HandshakeState.FAILED
    # and message 2 to a new initiator
    ini = Initiator(i_id)
    ini.start()
    with pytest.raises(DecryptionError):
        ini.receive(v.IDENTITY_M2, now=NOW)


def test_driving_the_machines_the_wrong_way() -> None:
    i_id, r_id = appendix_b_identities()
    ini = Initiator(i_id)
    with pytest.raises(UsageError):
        ini.receive(v.IDENTITY_M2)
    ini.start()
    with pytest.raises(UsageError):
        ini.start()
    with pytest.raises(RemoteProtocolError, match="65535"):
        Responder(r_id).receive(bytes(70_000))




def test_warm_cache_is_keyed_by_the_exact_bytes() -> None:
    w = world()
    auth = PeerAuthenticator()
    good = w.alice.channel_identity()
    auth.authenticate(good.payload_bytes, w.alice.static.public, now=NOW)  # cached now
    att = good.payload.purpose_key_attestation
    sig = bytearray(att.signature.data)
    sig[0] ^= 1
    forged_att = PurposeKeyAttestation(att.data, Signature(att.signature.key_type, bytes(sig)))
    payload = IdentityAndCredentials.of(w.alice.identity.export(), forged_att)
    with pytest.raises(VerificationError, match="signature"):
        auth.authenticate(payload.encode(), w.alice.static.public, now=NOW)
    history = bytearray(w.alice.identity.export())
    history[-1] ^= 1
    payload = IdentityAndCredentials.of(bytes(history), att)
    with pytest.raises(VerificationError, match="signature"):
        auth.authenticate(payload.encode(), w.alice.static.public, now=NOW)


def test_low_order_ephemeral_keys_are_refused() -> None:
    # an all-zero X25519 key gives an all-zero shared secret: refused, on both sides
    i_id, r_id = appendix_b_identities()
    res = Responder(r_id)
    with pytest.raises(VerificationError, match="all-zero"):
        res.receive(bytes(32), now=NOW)
    assert res.state is HandshakeState.FAILED
    ini = Initiator(i_id)
    ini.start()
    with pytest.raises(VerificationError, match="all-zero"):
        ini.receive(bytes(96), now=NOW)
    assert ini.state is HandshakeState.FAILED


# -- a refusal after message 3 closes the initiator's channel --------------------------------------


def test_responder_refusing_after_message_3_holds_a_close_record_for_the_initiator() -> None:
    w = world()
    ini = Initiator(w.alice.channel_identity())
    res = Responder(w.carol.channel_identity(),
                    PeerAuthenticator(TrustIdentifier(w.bob.identity.identifier)))
    [m2] = res.receive(ini.start(), now=NOW)
    m3, done = ini.receive(m2.data, now=NOW)  # type: ignore[union-attr]
    assert res.refusal is None
    with pytest.raises(UntrustedError):
        res.receive(m3.data, now=NOW)  # type: ignore[union-attr]
    assert res.refusal is not None and res.state is HandshakeState.FAILED
    # only the initiator reads it (its keys): a Close, which its channel honours
    assert isinstance(done, HandshakeComplete)
    assert RecordSession(done.keys).decrypt(res.refusal) == Close()
    # a changed payload of message 3: refused, and the initiator is told (its keys exist);
    # a changed static key (its first 48 bytes): no keys, so no refusal
    for where, told in ((-1, True), (60, True), (0, False), (47, False)):
        res = Responder(w.carol.channel_identity())
        ini = Initiator(w.alice.channel_identity())
        [m2] = res.receive(ini.start(), now=NOW)
        m3, done = ini.receive(m2.data, now=NOW)  # type: ignore[union-attr]
        changed = bytearray(m3.data)  # type: ignore[union-attr]
        changed[where] ^= 1
        with pytest.raises(DecryptionError):
            res.receive(bytes(changed), now=NOW)
        assert (res.refusal is not None) is told, where
        if res.refusal is not None:
            assert isinstance(done, HandshakeComplete)
            assert RecordSession(done.keys).decrypt(res.refusal) == Close()
    # no refusal when the handshake succeeded
    res = Responder(w.carol.channel_identity())
    ini = Initiator(w.alice.channel_identity())
    [m2] = res.receive(ini.start(), now=NOW)
    m3, _ = ini.receive(m2.data, now=NOW)  # type: ignore[union-attr]
    res.receive(m3.data, now=NOW)  # type: ignore[union-attr]
    assert res.refusal is None
