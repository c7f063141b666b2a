"""The AWS KMS vault against moto's server over HTTP on 127.0.0.1, and botocore's Stubber for
what moto cannot do (Ed25519 keys, disabled / pending-deletion keys, access denied)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.fixtures.servers import MotoServer, SilentListener
from vaults.aws_kms import AwsKmsVault, make_client
from vaults.errors import (
    AccessDeniedError,
    BackendTimeoutError,
    BackendUnavailableError,
    KeyNotFoundError,
    KeyUnusableError,
    UnsupportedKeyTypeError,
)
from vaults.keys import KeyType, PublicKey, raw_to_der_signature
from vaults.signing import SigningVault
from vaults.verify import verify_signature

run = asyncio.run
M = hashlib.sha256(b"change data").digest()
STRAY = "http://127.0.0.1:9"  # a Stubber client's stray call fails here, never on the internet


@pytest.fixture
def vault(moto: MotoServer) -> Iterator[AwsKmsVault]:
    v = AwsKmsVault(region="us-east-1", endpoint_url=moto.url, timeout=5)
    yield v
    run(v.close())


@pytest.fixture
def stubbed(aws_env: dict[str, str]) -> Iterator[tuple[AwsKmsVault, Stubber]]:
    client = make_client(region="us-east-1", endpoint_url=STRAY, timeout=2)
    stubber = Stubber(client)
    stubber.activate()
    try:
        yield AwsKmsVault(client, timeout=2), stubber
        stubber.assert_no_pending_responses()
    finally:
        stubber.deactivate()
        client.close()


def test_p256_key_on_moto_signs_ecdsa_sha256_over_m(vault: AwsKmsVault) -> None:
    assert isinstance(vault, SigningVault)
    assert vault.backend == "aws-kms" and vault.default_key_type is KeyType.P256
    handle = run(vault.generate_key(KeyType.P256))
    pk = run(vault.public_key(handle))
    assert pk.key_type is KeyType.P256
    sig = run(vault.sign(handle, M))
    assert len(sig) == 64 and verify_signature(pk, M, sig)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pk.data)
    key.verify(raw_to_der_signature(sig), M, ec.ECDSA(hashes.SHA256()))
    assert not verify_signature(pk, hashlib.sha256(b"x").digest(), sig)


def test_key_created_with_the_raw_aws_api(vault: AwsKmsVault, kms_client: Any) -> None:
    """A key made by the plain boto3 client (not truststack), found by id, ARN, alias and alias
    ARN; its public key is the one KMS reports to the raw API; KMS's own Verify accepts ours."""
    meta = kms_client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms_client.create_alias(AliasName="alias/issuer", TargetKeyId=meta["KeyId"])
    alias_arn = meta["Arn"].replace(f"key/{meta['KeyId']}", "alias/issuer")
    for name in (meta["KeyId"], meta["Arn"], "alias/issuer", alias_arn):
        assert run(vault.resolve_key(name)) == meta["KeyId"], name
    der = kms_client.get_public_key(KeyId=meta["KeyId"])["PublicKey"]
    pk = run(vault.public_key(meta["KeyId"]))
    assert pk == PublicKey.from_spki(der)
    sig = run(vault.sign(meta["KeyId"], M))
    assert verify_signature(pk, M, sig)
    verdict = kms_client.verify(KeyId=meta["KeyId"], Message=M, MessageType="RAW",
                                Signature=raw_to_der_signature(sig), SigningAlgorithm="ECDSA_SHA_256")
    assert verdict["SignatureValid"] is True


def test_public_keys_are_cached(vault: AwsKmsVault, kms_client: Any) -> None:
    handle = run(vault.generate_key(KeyType.P256))
    first = run(vault.public_key(handle))
    kms_client.schedule_key_deletion(KeyId=handle, PendingWindowInDays=7)
    assert run(vault.public_key(handle)) is first  # no second GetPublicKey


def test_resolve_refuses_unusable_and_unsuitable_keys(vault: AwsKmsVault, kms_client: Any) -> None:
    def key(**kw: Any) -> str:
        return str(kms_client.create_key(**kw)["KeyMetadata"]["KeyId"])

    disabled = key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    kms_client.disable_key(KeyId=disabled)
    with pytest.raises(KeyUnusableError, match="is disabled"):
        run(vault.resolve_key(disabled))
    pending = key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    kms_client.schedule_key_deletion(KeyId=pending, PendingWindowInDays=7)
    with pytest.raises(KeyUnusableError, match="pending deletion"):
        run(vault.resolve_key(pending))
    with pytest.raises(UnsupportedKeyTypeError, match="not a signing key"):
        run(vault.resolve_key(key()))  # a symmetric ENCRYPT_DECRYPT key
    with pytest.raises(UnsupportedKeyTypeError, match="ECC_NIST_P384"):
        run(vault.resolve_key(key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")))
    for missing in ("alias/nope", "11111111-2222-3333-4444-555555555555", "  "):
        with pytest.raises(KeyNotFoundError):
            run(vault.resolve_key(missing))


def test_list_and_delete(vault: AwsKmsVault, kms_client: Any) -> None:
    a = run(vault.generate_key(KeyType.P256))
    b = run(vault.generate_key(KeyType.P256))
    kms_client.create_key()  # a symmetric key is not listed
    assert run(vault.list_keys()) == sorted([a, b])
    assert run(vault.delete_key(a)) is True
    state = kms_client.describe_key(KeyId=a)["KeyMetadata"]["KeyState"]
    assert state == "PendingDeletion"
    assert run(vault.list_keys()) == [b]
    assert run(vault.delete_key("11111111-2222-3333-4444-555555555555")) is False


def test_ed25519_is_refused_by_moto_with_the_service_reason(vault: AwsKmsVault) -> None:
    with pytest.raises(UnsupportedKeyTypeError) as e:
        run(vault.generate_key(KeyType.ED25519))
    assert str(e.value).startswith("aws-kms: the service does not make ECC_NIST_EDWARDS25519 keys")


# -- Stubber: Ed25519 request/response handling and the service's documented faults -----------
def test_ed25519_signing_path_with_stubbed_responses(stubbed: tuple[AwsKmsVault, Stubber]) -> None:
    vault, stubber = stubbed
    private = ed25519.Ed25519PrivateKey.generate()
    spki = private.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    stubber.add_response("create_key", {"KeyMetadata": {"KeyId": key_id, "KeySpec": "ECC_NIST_EDWARDS25519"}},
                         {"KeySpec": "ECC_NIST_EDWARDS25519", "KeyUsage": "SIGN_VERIFY",
                          "Description": ANY, "Tags": ANY})
    stubber.add_response("get_public_key", {"KeyId": key_id, "PublicKey": spki,
                                            "KeySpec": "ECC_NIST_EDWARDS25519", "KeyUsage": "SIGN_VERIFY"},
                         {"KeyId": key_id})
    stubber.add_response("sign", {"KeyId": key_id, "Signature": private.sign(M),
                                  "SigningAlgorithm": "ED25519_SHA_512"},
                         {"KeyId": key_id, "Message": M, "MessageType": "RAW",
                          "SigningAlgorithm": "ED25519_SHA_512"})
    handle = run(vault.generate_key(KeyType.ED25519))
    pk = run(vault.public_key(handle))
    assert pk.key_type is KeyType.ED25519
    assert verify_signature(pk, M, run(vault.sign(handle, M)))


def _p256_public(stubber: Stubber, key_id: str) -> None:
    spki = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    stubber.add_response("get_public_key", {"KeyId": key_id, "PublicKey": spki, "KeySpec": "ECC_NIST_P256",
                                            "KeyUsage": "SIGN_VERIFY"}, {"KeyId": key_id})


@pytest.mark.parametrize("code, message, error, needle", [
    ("DisabledException", "arn:aws:kms:us-east-1:111122223333:key/k1 is disabled.",
     KeyUnusableError, "is disabled"),
    ("KMSInvalidStateException", "arn:aws:kms:us-east-1:111122223333:key/k1 is pending deletion.",
     KeyUnusableError, "pending deletion"),
    ("AccessDeniedException", "User: arn:aws:iam::111122223333:user/ci is not authorized to perform: "
     "kms:Sign on resource: arn:aws:kms:us-east-1:111122223333:key/k1",
     AccessDeniedError, "access denied"),
])
def test_sign_faults_from_the_service(stubbed: tuple[AwsKmsVault, Stubber], code: str, message: str,
                                      error: type[Exception], needle: str) -> None:
    vault, stubber = stubbed
    _p256_public(stubber, "k1")
    stubber.add_client_error("sign", service_error_code=code, service_message=message,
                             http_status_code=400)
    with pytest.raises(error) as e:
        run(vault.sign("k1", M))
    text = str(e.value)
    assert text.startswith("aws-kms: ") and needle in text and "\n" not in text
    assert message in text  # the service's own words are kept


def test_access_denied_on_create(stubbed: tuple[AwsKmsVault, Stubber]) -> None:
    vault, stubber = stubbed
    stubber.add_client_error("create_key", service_error_code="AccessDeniedException",
                             service_message="not authorized to perform: kms:CreateKey",
                             http_status_code=400)
    with pytest.raises(AccessDeniedError, match="aws-kms: access denied"):
        run(vault.generate_key(KeyType.P256))


def test_stubbed_fault_is_one_line_exit_1_through_the_cli_error_path(
        stubbed: tuple[AwsKmsVault, Stubber], capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's error mapping turns the vault error into one line on stderr and exit 1."""
    import click

    from trust.cli.common import run_cli

    vault, stubber = stubbed
    _p256_public(stubber, "k1")
    stubber.add_client_error("sign", service_error_code="DisabledException",
                             service_message="arn:aws:kms:us-east-1:111122223333:key/k1 is disabled.",
                             http_status_code=400)

    @click.command()
    def sign() -> None:
        run(vault.sign("k1", M))

    assert run_cli(sign, []) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: aws-kms: key k1 is disabled")


# -- network faults --------------------------------------------------------------------------------
def test_unreachable_endpoint(aws_env: dict[str, str]) -> None:
    vault = AwsKmsVault(region="us-east-1", endpoint_url=STRAY, timeout=2)
    with pytest.raises(BackendUnavailableError) as e:
        run(vault.check())
    assert str(e.value).startswith("aws-kms: cannot reach http://127.0.0.1:9")


def test_listener_that_never_answers_times_out(aws_env: dict[str, str], silent: SilentListener) -> None:
    vault = AwsKmsVault(region="us-east-1", endpoint_url=f"http://{silent.address}", timeout=0.5)
    t = time.monotonic()
    with pytest.raises(BackendTimeoutError) as e:
        run(vault.sign("k1", M))
    took = time.monotonic() - t
    assert 0.4 < took < 3, took
    assert str(e.value) == f"aws-kms: http://{silent.address} did not answer GetPublicKey within 0.5 s"


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch, moto: MotoServer) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)
    vault = AwsKmsVault(region="us-east-1", endpoint_url=moto.url, timeout=2)
    with pytest.raises(AccessDeniedError, match="no AWS credentials"):
        run(vault.check())
