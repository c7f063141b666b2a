"""A missing extra gives an install hint, never ``internal error (ModuleNotFoundError)`` (issue 10,
item 2). The extras are installed here, so each run hides one library from a subprocess by
setting ``sys.modules[name] = None`` before the CLI starts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CliResult, assert_one_line_error
from tests.fixtures.softhsm import SoftHsm
from tests.vaults.conftest import KEY_RING
from trust.errors import MissingExtraError, UsageError


def cli_without(hidden: str, home: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    code = (f"import sys; sys.modules[{hidden!r}] = None\n"
            "from trust.cli.main import main\n"
            f"main({list(args)!r})\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "TRUSTSTACK_HOME": str(home), **(env or {})})
    return CliResult(p.returncode, p.stdout, p.stderr)


@pytest.mark.parametrize(("hidden", "extra", "args"), [
    ("pkcs11", "pkcs11", ["--pkcs11", "pkcs11:token=t?module-path=/usr/lib/softhsm/libsofthsm2.so",
                          "--pin-env", "HSM_PIN"]),
    ("boto3", "aws", ["--aws-kms", "--region", "us-east-1"]),
    ("botocore", "aws", ["--aws-kms", "--region", "us-east-1"]),
    ("google.cloud.kms_v1", "gcp", ["--gcp-kms", KEY_RING]),
    ("google_crc32c", "gcp", ["--gcp-kms", KEY_RING]),
])
def test_vault_create_names_the_extra(tmp_path: Path, hidden: str, extra: str, args: list[str]) -> None:
    home = tmp_path / "home"
    r = cli_without(hidden, home, "vault", "create", "v", *args, env={"HSM_PIN": "1234"})
    assert_one_line_error(r, f"pip install 'truststack[{extra}]'")
    assert r.returncode == 2 and "internal error" not in r.stderr
    listed = cli_without(hidden, home, "vault", "list", "--output", "json")
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"


def test_opening_a_configured_vault_names_the_extra(tmp_path: Path, softhsm: SoftHsm) -> None:
    home = tmp_path / "home"
    env = {"HSM_PIN": softhsm.pin}
    r = cli_without("nothing-hidden", home, "vault", "create", "hsm", "--pkcs11", softhsm.uri(),
                    "--pin-env", "HSM_PIN", env=env)
    assert r.returncode == 0, r.stderr
    r = cli_without("pkcs11", home, "identity", "create", "alice", "--vault", "hsm", env=env)
    assert_one_line_error(r, "pkcs11 vault backend", "pip install 'truststack[pkcs11]'")
    assert r.returncode == 2


def test_missing_extra_error_from_python(monkeypatch: pytest.MonkeyPatch) -> None:
    from trust.vault_config import VaultConfig, open_vault

    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingExtraError) as info:
        asyncio.run(open_vault(VaultConfig("a", "aws-kms", {"region": "us-east-1"})))
    assert isinstance(info.value, UsageError) and info.value.extra == "aws"
