"""The GCP KMS vault: the real ``google-cloud-kms`` client over gRPC (plaintext, 127.0.0.1) to
the fake KMS service in ``tests/fixtures/gcp_kms_fake.py``."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import google_crc32c
import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from google.api_core import exceptions as gexc
from google.cloud import kms_v1

from tests.fixtures.gcp_kms_fake import FakeKms, FakeKmsServer
from tests.fixtures.servers import SilentListener
from tests.vaults.conftest import KEY_RING, UNREACHABLE
from vaults.errors import (
    AccessDeniedError,
    BackendTimeoutError,
    BackendUnavailableError,
    KeyNotFoundError,
    KeyUnusableError,
    UnsupportedKeyTypeError,
    VaultError,
)
from vaults.gcp_kms import GcpKmsVault, check_key_ring
from vaults.keys import KeyType, PublicKey, raw_to_der_signature
from vaults.signing import SigningVault
from vaults.verify import verify_signature

run = asyncio.run
M = hashlib.sha256(b"change data").digest()
Alg = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm


def crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


@pytest.fixture
def vault(gcp: FakeKmsServer) -> Iterator[GcpKmsVault]:
    v = GcpKmsVault(KEY_RING, endpoint=gcp.address, plaintext=True, timeout=3)
    yield v
    run(v.close())


def _raw_key(client: Any, key_id: str, algorithm: Any) -> str:
    """A key made with the raw client (not truststack); returns its first version's name."""
    key = client.create_crypto_key(request={
        "parent": KEY_RING, "crypto_key_id": key_id,
        "crypto_key": {"purpose": "ASYMMETRIC_SIGN", "version_template": {"algorithm": algorithm}}},
        retry=None, timeout=5)
    return f"{key.name}/cryptoKeyVersions/1"


def test_p256_signs_ecdsa_sha256_over_m(vault: GcpKmsVault, gcp_fake: FakeKms) -> None:
    assert isinstance(vault, SigningVault)
    assert vault.backend == "gcp-kms" and vault.default_key_type is KeyType.P256
    handle = run(vault.generate_key(KeyType.P256))
    assert handle.startswith(f"{KEY_RING}/cryptoKeys/truststack-") and handle.endswith("/cryptoKeyVersions/1")
    pk = run(vault.public_key(handle))
    sig = run(vault.sign(handle, M))
    assert len(sig) == 64 and verify_signature(pk, M, sig)
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pk.data).verify(
        raw_to_der_signature(sig), M, ec.ECDSA(hashes.SHA256()))
    assert gcp_fake.calls.count("GetPublicKey") == 1
    run(vault.sign(handle, M))
    assert gcp_fake.calls.count("GetPublicKey") == 1  # cached


def test_ed25519_signs_data_m(vault: GcpKmsVault) -> None:
    handle = run(vault.generate_key(KeyType.ED25519))
    pk = run(vault.public_key(handle))
    assert pk.key_type is KeyType.ED25519
    assert verify_signature(pk, M, run(vault.sign(handle, M)))


def test_hsm_keys_pending_generation_are_waited_for(vault: GcpKmsVault, gcp_fake: FakeKms) -> None:
    gcp_fake.pending_generation_polls = 2
    handle = run(vault.generate_key(KeyType.P256))
    assert gcp_fake.calls.count("GetCryptoKeyVersion") == 3
    assert verify_signature(run(vault.public_key(handle)), M, run(vault.sign(handle, M)))


def test_key_made_with_the_raw_client(vault: GcpKmsVault, gcp_client: Any) -> None:
    version = _raw_key(gcp_client, "external", Alg.EC_SIGN_P256_SHA256)
    for name in (version, "external", "external/cryptoKeyVersions/1", f"{KEY_RING}/cryptoKeys/external",
                 "cryptoKeys/external/cryptoKeyVersions/1"):
        assert run(vault.resolve_key(name)) == version, name
    pem = gcp_client.get_public_key(request={"name": version}, retry=None, timeout=5).pem
    pk = run(vault.public_key(version))
    assert pk == PublicKey.from_spki(pem.encode())
    assert verify_signature(pk, M, run(vault.sign(version, M)))


def test_resolve_refuses_ambiguous_unusable_and_unsuitable_keys(vault: GcpKmsVault, gcp_client: Any) -> None:
    version = _raw_key(gcp_client, "two", Alg.EC_SIGN_P256_SHA256)
    gcp_client.create_crypto_key_version(request={"parent": version.rsplit("/cryptoKeyVersions/", 1)[0],
                                                  "crypto_key_version": {}}, retry=None, timeout=5)
    with pytest.raises(KeyNotFoundError, match="2 enabled versions"):
        run(vault.resolve_key("two"))
    assert run(vault.resolve_key("two/cryptoKeyVersions/2")).endswith("/two/cryptoKeyVersions/2")
    gcp_client.update_crypto_key_version(request={
        "crypto_key_version": {"name": version, "state": "DISABLED"}, "update_mask": {"paths": ["state"]}},
        retry=None, timeout=5)
    with pytest.raises(KeyUnusableError, match="state DISABLED"):
        run(vault.resolve_key(version))
    p384 = _raw_key(gcp_client, "p384", Alg.EC_SIGN_P384_SHA384)
    with pytest.raises(UnsupportedKeyTypeError, match="EC_SIGN_P384_SHA384"):
        run(vault.resolve_key(p384))
    for missing in ("nope", f"{KEY_RING}/cryptoKeys/two/cryptoKeyVersions/9", "projects/x", " "):
        with pytest.raises(KeyNotFoundError):
            run(vault.resolve_key(missing))


def test_list_and_delete(vault: GcpKmsVault, gcp_client: Any) -> None:
    a = run(vault.generate_key(KeyType.P256))
    b = run(vault.generate_key(KeyType.ED25519))
    _raw_key(gcp_client, "p384", Alg.EC_SIGN_P384_SHA384)  # not listed
    assert run(vault.list_keys()) == sorted([a, b])
    assert run(vault.delete_key(a)) is True
    state = gcp_client.get_crypto_key_version(request={"name": a}, retry=None, timeout=5).state
    assert state.name == "DESTROY_SCHEDULED"
    assert run(vault.list_keys()) == [b]
    assert run(vault.delete_key(a)) is False
    assert run(vault.delete_key(f"{KEY_RING}/cryptoKeys/none/cryptoKeyVersions/1")) is False


def test_key_ring_names_are_checked() -> None:
    ring = "projects/p/locations/global/keyRings/r"
    assert check_key_ring(f"/{ring}/") == ring
    for bad in ("ring", "projects/p/locations/global", "projects/p/locations/l/keyRings/r/cryptoKeys/k"):
        with pytest.raises(VaultError, match="invalid key ring name"):
            check_key_ring(bad)


# -- the fake answers like Cloud KMS (status codes), driven by the real client --------------------
def test_fake_rejects_a_bad_crc32c(gcp_client: Any) -> None:
    version = _raw_key(gcp_client, "crc", Alg.EC_SIGN_P256_SHA256)
    with pytest.raises(gexc.InvalidArgument) as e:
        gcp_client.asymmetric_sign(request={"name": version, "digest": {"sha256": M},
                                            "digest_crc32c": crc(M) ^ 1}, retry=None, timeout=5)
    assert e.value.grpc_status_code is grpc.StatusCode.INVALID_ARGUMENT
    assert "digest_crc32c" in e.value.message


def test_fake_rejects_digest_for_ed25519_and_data_for_ecdsa(gcp_client: Any) -> None:
    ed = _raw_key(gcp_client, "ed", Alg.EC_SIGN_ED25519)
    with pytest.raises(gexc.InvalidArgument, match="must contain data, not a digest"):
        gcp_client.asymmetric_sign(request={"name": ed, "digest": {"sha256": M}}, retry=None, timeout=5)
    p256 = _raw_key(gcp_client, "p256", Alg.EC_SIGN_P256_SHA256)
    with pytest.raises(gexc.InvalidArgument, match="must contain a digest, not data"):
        gcp_client.asymmetric_sign(request={"name": p256, "data": M}, retry=None, timeout=5)


def test_fake_answers_not_found_for_an_unknown_version(gcp_client: Any) -> None:
    with pytest.raises(gexc.NotFound) as e:
        gcp_client.asymmetric_sign(request={"name": f"{KEY_RING}/cryptoKeys/none/cryptoKeyVersions/1",
                                            "digest": {"sha256": M}}, retry=None, timeout=5)
    assert e.value.grpc_status_code is grpc.StatusCode.NOT_FOUND


def test_fake_requires_the_routing_header(gcp: FakeKmsServer) -> None:
    with grpc.insecure_channel(gcp.address) as channel:
        call = channel.unary_unary("/google.cloud.kms.v1.KeyManagementService/GetKeyRing",
                                   request_serializer=kms_v1.GetKeyRingRequest.serialize,
                                   response_deserializer=kms_v1.KeyRing.deserialize)
        with pytest.raises(grpc.RpcError) as e:
            call(kms_v1.GetKeyRingRequest(name=KEY_RING), timeout=5)
        assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        ring = call(kms_v1.GetKeyRingRequest(name=KEY_RING), timeout=5,
                    metadata=[("x-goog-request-params", f"name={KEY_RING}")])
        assert ring.name == KEY_RING


# -- faults seen through the vault ------------------------------------------------------------------
def test_disabled_version_is_unusable(vault: GcpKmsVault, gcp_client: Any) -> None:
    handle = run(vault.generate_key(KeyType.P256))
    run(vault.public_key(handle))
    gcp_client.update_crypto_key_version(request={
        "crypto_key_version": {"name": handle, "state": "DISABLED"}, "update_mask": {"paths": ["state"]}},
        retry=None, timeout=5)
    with pytest.raises(KeyUnusableError) as e:
        run(vault.sign(handle, M))
    assert str(e.value).startswith(f"gcp-kms: key {handle} cannot be used now (AsymmetricSign: "
                                   "FAILED_PRECONDITION:")
    assert "current state is: DISABLED" in str(e.value)


def test_permission_denied(vault: GcpKmsVault, gcp_fake: FakeKms) -> None:
    handle = run(vault.generate_key(KeyType.P256))
    run(vault.public_key(handle))
    gcp_fake.deny = {"AsymmetricSign"}
    with pytest.raises(AccessDeniedError, match=r"gcp-kms: access denied to key .* PERMISSION_DENIED"):
        run(vault.sign(handle, M))


def test_corrupted_signature_checksum_is_detected(vault: GcpKmsVault, gcp_fake: FakeKms) -> None:
    handle = run(vault.generate_key(KeyType.ED25519))
    gcp_fake.corrupt_signature_crc32c = True
    with pytest.raises(VaultError, match="failed its CRC32C check"):
        run(vault.sign(handle, M))


def test_missing_key_ring(gcp: FakeKmsServer) -> None:
    v = GcpKmsVault("projects/p/locations/global/keyRings/none", endpoint=gcp.address, plaintext=True,
                    timeout=2)
    try:
        with pytest.raises(KeyNotFoundError, match="no key ring projects/p/locations/global/keyRings/none"):
            run(v.check())
    finally:
        run(v.close())


def test_unreachable_endpoint_gives_up_within_the_timeout() -> None:
    v = GcpKmsVault(KEY_RING, endpoint=UNREACHABLE, plaintext=True, timeout=0.5)
    t = time.monotonic()
    try:
        with pytest.raises(BackendUnavailableError) as e:
            run(v.check())
    finally:
        run(v.close())
    assert time.monotonic() - t < 3
    assert str(e.value).startswith(f"gcp-kms: cannot reach {UNREACHABLE} (GetKeyRing: UNAVAILABLE:")


def test_listener_that_never_answers_times_out(silent: SilentListener) -> None:
    v = GcpKmsVault(KEY_RING, endpoint=silent.address, plaintext=True, timeout=0.5)
    t = time.monotonic()
    try:
        with pytest.raises(BackendTimeoutError) as e:
            run(v.sign(f"{KEY_RING}/cryptoKeys/k/cryptoKeyVersions/1", M))
    finally:
        run(v.close())
    assert 0.4 < time.monotonic() - t < 3
    assert str(e.value) == f"gcp-kms: {silent.address} did not answer GetPublicKey within 0.5 s"
