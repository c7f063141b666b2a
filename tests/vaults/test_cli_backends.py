"""``truststack vault create`` for PKCS#11, AWS KMS and GCP KMS, and identities whose keys live
there, through the real CLI executable (subprocesses) against SoftHSM2, moto's server and the
GCP KMS fake on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.gcp_kms_fake import FakeKmsServer
from tests.fixtures.servers import MotoServer, SilentListener
from tests.fixtures.softhsm import SoftHsm, pkcs11_tool
from tests.vaults.conftest import KEY_RING, UNREACHABLE

BACKENDS = ["pkcs11", "aws-kms", "gcp-kms"]


@pytest.fixture
def make_vault(request: pytest.FixtureRequest, cli: Cli,
               monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Create a vault of a backend through the CLI; returns its name (the backend's name)."""

    def make(backend: str) -> str:
        if backend == "pkcs11":
            hsm: SoftHsm = request.getfixturevalue("softhsm")
            monkeypatch.setenv("HSM_PIN", hsm.pin)
            args = ["--pkcs11", hsm.uri(), "--pin-env", "HSM_PIN"]
        elif backend == "aws-kms":
            moto: MotoServer = request.getfixturevalue("moto")
            args = ["--aws-kms", "--region", "us-east-1", "--endpoint-url", moto.url, "--timeout", "5s"]
        else:
            gcp: FakeKmsServer = request.getfixturevalue("gcp")
            args = ["--gcp-kms", KEY_RING, "--endpoint", gcp.address, "--plaintext", "--timeout", "5s"]
        view = cli.json("vault", "create", backend, *args)
        assert view["backend"] == backend
        return backend

    return make


def _no_vault(cli: Cli, name: str) -> None:
    assert name not in [v["name"] for v in cli.json("vault", "list")]


def _no_identity(cli: Cli, name: str) -> None:
    r = cli("identity", "show", name, ok=False)
    assert "no identity named" in r.stderr


# -- happy paths -----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_identities_on_backend_export_verify_and_rotate(
        backend: str, make_vault: Callable[[str], str], cli: Cli, other_cli: Cli) -> None:
    """An identity whose key is in the backend exports and verifies in an empty home; a file-vault
    identity rotates to a backend key and back, and its history still verifies."""
    vault = make_vault(backend)
    shown = cli.json("vault", "show", vault)
    assert shown["backend"] == backend
    assert "1234" not in json.dumps(shown)  # never the PIN, only where to read it
    info = cli.json("identity", "create", "alice", "--vault", vault)
    assert info["vault"] == vault
    assert info["changes"][-1]["key_type"] == "p256"  # the backends' default
    history = cli("identity", "export", "alice").out
    verified = other_cli.json("identity", "verify", history)
    assert verified["identifier"] == info["identifier"] and verified["valid"] is True

    identifier = cli("identity", "create", "bob").out  # file vault, Ed25519
    to_backend = cli.json("identity", "rotate", "bob", "--vault", vault)
    assert to_backend["vault"] == vault
    back = cli.json("identity", "rotate", "bob", "--vault", "default")
    assert back["vault"] == "default" and back["identifier"] == identifier
    verified = other_cli.json("identity", "verify", cli("identity", "export", "bob").out)
    assert verified["identifier"] == identifier
    assert [c["key_type"] for c in verified["changes"]] == ["ed25519", "p256", "ed25519"]


def test_ed25519_identities_on_pkcs11_and_gcp(make_vault: Callable[[str], str], cli: Cli,
                                              other_cli: Cli) -> None:
    for backend in ("pkcs11", "gcp-kms"):
        vault = make_vault(backend)
        name = f"ed-{backend}"
        cli("identity", "create", name, "--vault", vault, "--key-type", "ed25519")
        history = cli("identity", "export", name).out
        verified = other_cli.json("identity", "verify", history)
        assert verified["changes"][0]["key_type"] == "ed25519"


def test_existing_keys_made_outside_truststack(make_vault: Callable[[str], str], cli: Cli,
                                               softhsm: SoftHsm, kms_client: Any,
                                               gcp_client: Any) -> None:
    """--key-id with a key made by pkcs11-tool, by the raw AWS API, and by the raw GCP client: the
    identity's primary key is that key's public key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from vaults.keys import PublicKey

    for backend in BACKENDS:
        make_vault(backend)
    pkcs11_tool(softhsm, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "cli-ext",
                "--id", "c1c1")
    expected = {}
    meta = kms_client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms_client.create_alias(AliasName="alias/cli-ext", TargetKeyId=meta["KeyId"])
    expected["aws-kms"] = PublicKey.from_spki(kms_client.get_public_key(KeyId=meta["KeyId"])["PublicKey"])
    key = gcp_client.create_crypto_key(request={
        "parent": KEY_RING, "crypto_key_id": "cli-ext",
        "crypto_key": {"purpose": "ASYMMETRIC_SIGN",
                       "version_template": {"algorithm": "EC_SIGN_P256_SHA256"}}}, retry=None, timeout=5)
    version = f"{key.name}/cryptoKeyVersions/1"
    pem = gcp_client.get_public_key(request={"name": version}, retry=None, timeout=5).pem
    expected["gcp-kms"] = PublicKey.from_spki(pem.encode())
    for backend, key_id in (("pkcs11", "cli-ext"), ("aws-kms", "alias/cli-ext"), ("gcp-kms", version)):
        info = cli.json("identity", "create", f"ext-{backend}", "--vault", backend, "--key-id", key_id)
        public = bytes.fromhex(info["changes"][0]["public_key"])
        if backend in expected:
            assert public == expected[backend].data
        else:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)


# -- faults when creating a vault: one line naming the backend and the cause, nothing stored ------
def test_vault_create_pkcs11_faults(cli: Cli, softhsm: SoftHsm) -> None:
    pin = {"HSM_PIN": softhsm.pin}
    cases: list[tuple[list[str], dict[str, str], tuple[str, ...]]] = [
        (["--pkcs11", softhsm.uri(), "--pin-env", "HSM_PIN"], {"HSM_PIN": "0000"},
         ("pkcs11", "wrong PIN")),
        (["--pkcs11", softhsm.uri(token="absent"), "--pin-env", "HSM_PIN"], pin,
         ("pkcs11", "no token matching token=absent")),
        (["--pkcs11", softhsm.uri(module="/nonexistent/libp11.so"), "--pin-env", "HSM_PIN"], pin,
         ("pkcs11", "module /nonexistent/libp11.so does not exist")),
        (["--pkcs11", softhsm.uri() + "&pin-value=1234", "--pin-env", "HSM_PIN"], pin,
         ("pkcs11", "a PIN inside the URI is refused")),
        (["--pkcs11", softhsm.uri(), "--pin-env", "HSM_PIN"],
         {"HSM_PIN": softhsm.pin, "SOFTHSM2_CONF": str(softhsm.no_ec_conf)},
         ("pkcs11", "offers no P-256 signing")),
        (["--pkcs11", softhsm.uri(), "--pin-env", "UNSET_PIN_VAR"], {},
         ("PIN", "UNSET_PIN_VAR", "not set")),
    ]
    for args, env, needles in cases:
        r = cli("vault", "create", "hsm", *args, ok=False, env=env)
        assert r.returncode == 1, (args, r.stderr)
        assert_one_line_error(r, *needles)  # a stored vault would turn the next case into a conflict
    _no_vault(cli, "hsm")


def test_vault_create_usage_errors_exit_2(cli: Cli, softhsm: SoftHsm) -> None:
    for args in (["--pkcs11", softhsm.uri()],  # no PIN source
                 ["--pkcs11", softhsm.uri(), "--pin-env", "A", "--pin-file", "/tmp/x"],
                 ["--aws-kms", "--pin-env", "A"],
                 ["--aws-kms", "--gcp-kms", KEY_RING],
                 ["--gcp-kms", KEY_RING, "--plaintext"],
                 ["--gcp-kms", KEY_RING, "--endpoint", "h:1", "--timeout", "0s"],
                 ["--passphrase-env", "X", "--region", "r"]):
        r = cli("vault", "create", "v", *args, ok=False)
        assert r.returncode == 2, (args, r.stderr)
        assert_one_line_error(r)
    _no_vault(cli, "v")


def test_vault_create_aws_faults(cli: Cli, aws_env: dict[str, str], silent: SilentListener) -> None:
    r = cli("vault", "create", "aws", "--aws-kms", "--region", "us-east-1",
            "--endpoint-url", f"http://{UNREACHABLE}", "--timeout", "2s", ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "aws-kms", f"cannot reach http://{UNREACHABLE}")
    r = cli("vault", "create", "aws", "--aws-kms", "--region", "us-east-1",
            "--endpoint-url", f"http://{silent.address}", "--timeout", "500ms", ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "aws-kms", "did not answer ListKeys within 0.5 s")
    r = cli("vault", "create", "aws", "--aws-kms", "--profile", "nobody", ok=False)
    assert_one_line_error(r, "aws-kms", "no AWS profile named 'nobody'")
    _no_vault(cli, "aws")


def test_vault_create_gcp_faults(cli: Cli, gcp: FakeKmsServer, silent: SilentListener) -> None:
    r = cli("vault", "create", "gcp", "--gcp-kms", KEY_RING, "--endpoint", UNREACHABLE, "--plaintext",
            "--timeout", "1s", ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "gcp-kms", f"cannot reach {UNREACHABLE}")
    r = cli("vault", "create", "gcp", "--gcp-kms", KEY_RING, "--endpoint", silent.address, "--plaintext",
            "--timeout", "500ms", ok=False)
    assert_one_line_error(r, "gcp-kms", "did not answer GetKeyRing within 0.5 s")
    r = cli("vault", "create", "gcp", "--gcp-kms", "projects/p/locations/global/keyRings/absent",
            "--endpoint", gcp.address, "--plaintext", ok=False)
    assert_one_line_error(r, "gcp-kms", "no key ring projects/p/locations/global/keyRings/absent")
    r = cli("vault", "create", "gcp", "--gcp-kms", "ring", "--endpoint", gcp.address, "--plaintext",
            ok=False)
    assert_one_line_error(r, "gcp-kms", "invalid key ring name")
    gcp.fake.deny = {"GetKeyRing"}
    r = cli("vault", "create", "gcp", "--gcp-kms", KEY_RING, "--endpoint", gcp.address, "--plaintext",
            ok=False)
    assert_one_line_error(r, "gcp-kms", "access denied", "PERMISSION_DENIED")
    _no_vault(cli, "gcp")


# -- faults when using a vault: one line, exit 1, no half-created identity -------------------------
def test_identity_faults_on_pkcs11(make_vault: Callable[[str], str], cli: Cli, softhsm: SoftHsm) -> None:
    vault = make_vault("pkcs11")
    r = cli("identity", "create", "x", "--vault", vault, ok=False, env={"HSM_PIN": "4321"})
    assert r.returncode == 1
    assert_one_line_error(r, "pkcs11", "wrong PIN")
    r = cli("identity", "create", "x", "--vault", vault, "--key-type", "ed25519", ok=False,
            env={"SOFTHSM2_CONF": str(softhsm.no_eddsa_conf)})
    assert r.returncode == 1
    assert_one_line_error(r, "pkcs11", "ed25519")
    r = cli("identity", "create", "x", "--vault", vault, "--key-id", "no-such-key", ok=False)
    assert_one_line_error(r, "pkcs11", "no private key 'no-such-key'")
    _no_identity(cli, "x")


def test_identity_faults_on_aws(make_vault: Callable[[str], str], cli: Cli, kms_client: Any) -> None:
    vault = make_vault("aws-kms")
    disabled = kms_client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kms_client.disable_key(KeyId=disabled)
    pending = kms_client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kms_client.schedule_key_deletion(KeyId=pending, PendingWindowInDays=7)
    for key_id, cause in ((disabled, "is disabled"), (pending, "is pending deletion"),
                          ("alias/none", "no key alias/none")):
        r = cli("identity", "create", "x", "--vault", vault, "--key-id", key_id, ok=False)
        assert r.returncode == 1
        assert_one_line_error(r, "aws-kms", cause)
    r = cli("identity", "create", "x", "--vault", vault, "--key-type", "ed25519", ok=False)
    assert_one_line_error(r, "aws-kms", "ECC_NIST_EDWARDS25519")
    _no_identity(cli, "x")


def test_identity_faults_on_gcp(make_vault: Callable[[str], str], cli: Cli, gcp: FakeKmsServer,
                                gcp_client: Any) -> None:
    vault = make_vault("gcp-kms")
    key = gcp_client.create_crypto_key(request={
        "parent": KEY_RING, "crypto_key_id": "off",
        "crypto_key": {"purpose": "ASYMMETRIC_SIGN",
                       "version_template": {"algorithm": "EC_SIGN_P256_SHA256"}}}, retry=None, timeout=5)
    off = f"{key.name}/cryptoKeyVersions/1"
    gcp_client.update_crypto_key_version(request={
        "crypto_key_version": {"name": off, "state": "DISABLED"}, "update_mask": {"paths": ["state"]}},
        retry=None, timeout=5)
    r = cli("identity", "create", "x", "--vault", vault, "--key-id", off, ok=False)
    assert_one_line_error(r, "gcp-kms", "state DISABLED")
    gcp.fake.deny = {"*"}
    r = cli("identity", "create", "x", "--vault", vault, ok=False)
    assert r.returncode == 1
    assert_one_line_error(r, "gcp-kms", "access denied")
    _no_identity(cli, "x")


def test_vault_delete_keeps_backend_keys(make_vault: Callable[[str], str], cli: Cli,
                                         kms_client: Any) -> None:
    vault = make_vault("aws-kms")
    before = {k["KeyId"] for k in kms_client.list_keys()["Keys"]}
    cli("vault", "delete", vault)
    _no_vault(cli, vault)
    assert {k["KeyId"] for k in kms_client.list_keys()["Keys"]} == before


def test_pkcs11_pin_from_a_file(cli: Cli, softhsm: SoftHsm, tmp_path: Any) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    pin_file.chmod(0o644)
    r = cli("vault", "create", "hsm-file", "--pkcs11", softhsm.uri(), "--pin-file", str(pin_file),
            ok=False)
    assert_one_line_error(r, "accessible by others", "chmod 0600")
    assert cli.json("vault", "list") == []
    pin_file.chmod(0o600)
    shown = cli.json("vault", "create", "hsm-file", "--pkcs11", softhsm.uri(), "--pin-file", str(pin_file))
    assert shown["pin_file"] == str(pin_file) and "pin_env" not in shown
    assert cli.json("identity", "create", "p", "--vault", "hsm-file")["vault"] == "hsm-file"
    pin_file.write_text("9999\n")  # the PIN is read each time the token is opened
    r = cli("identity", "rotate", "p", ok=False)
    assert_one_line_error(r, "pkcs11", "wrong PIN")
