"""A credential that cannot be issued leaves no purpose key (record or key file) behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.credentials.helpers import NOW, run
from trust.credentials.service import CredentialService
from trust.errors import UsageError, VaultError
from trust.identities.manager import CREDENTIAL_SIGNING
from trust.services import open_credentials


async def _state(s: CredentialService, name: str) -> tuple[list[Any], list[str]]:
    named = await s.identities.get(name)
    _, v = await s.identities.vault(named.vault)
    return (await s.identities.purpose_keys.list(named.identifier),
            sorted(await v.list_keys()))  # type: ignore[attr-defined]


def test_a_ttl_no_signing_key_can_cover_is_refused_before_creating_one(tmp_path: Path) -> None:
    async def go() -> None:
        s = open_credentials(tmp_path)
        try:
            # an issuer whose key is valid for 1000 s cannot attest a key for longer
            await s.identities.create_identity("short", now=NOW - 10, ttl=1000)
            await s.identities.create_identity("holder", now=NOW - 10)
            before = await _state(s, "short")
            for _ in range(3):
                with pytest.raises(UsageError, match="valid for at most"):
                    await s.issue("short", "holder", {"role": "x"}, ttl=5000, now=NOW)
            # before the issuer's key is valid
            with pytest.raises(UsageError, match="valid from"):
                await s.issue("short", "holder", {"role": "x"}, ttl=60, now=NOW - 1000)
            for ttl in (0, -1, 10**30, True):
                with pytest.raises(UsageError):
                    await s.issue("short", "holder", {"role": "x"}, ttl=ttl, now=NOW)
            with pytest.raises(UsageError):
                await s.issue("short", "holder", {"role": "x"}, ttl=60, decoys=2, now=NOW)
            assert await _state(s, "short") == before
        finally:
            await s.close()

    run(go())


def test_a_failure_after_the_key_was_made_removes_it(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import trust.credentials.service as service

    async def broken(*args: Any, **kw: Any) -> Any:
        raise VaultError("the signer went away")

    async def go() -> None:
        s = open_credentials(tmp_path)
        try:
            await s.identities.create_identity("issuer", now=NOW - 10)
            await s.identities.create_identity("holder", now=NOW - 10)
            before = await _state(s, "issuer")
            monkeypatch.setattr(service, "issue_credential", broken)
            with pytest.raises(VaultError):
                await s.issue("issuer", "holder", {"role": "x"}, ttl=60, now=NOW)
            assert await _state(s, "issuer") == before
            monkeypatch.undo()
            # a key that existed before the failed call is kept
            await s.issue("issuer", "holder", {"role": "x"}, ttl=60, now=NOW)
            kept = await _state(s, "issuer")
            assert len(kept[0]) == 1 and kept[0][0].purpose == CREDENTIAL_SIGNING
            monkeypatch.setattr(service, "issue_credential", broken)
            with pytest.raises(VaultError):
                await s.issue("issuer", "holder", {"role": "x"}, ttl=60, now=NOW + 1)
            assert await _state(s, "issuer") == kept
        finally:
            await s.close()

    run(go())


def test_cli_huge_ttl_adds_no_purpose_key(cli: Cli, home: Path) -> None:
    import sqlite3

    cli("identity", "create", "alice")
    for ttl in ("99999999999d", "3650d", "0"):
        assert_one_line_error(cli("credential", "issue", "--subject", "alice", "--ttl", ttl,
                                  ok=False))
    with sqlite3.connect(home / "state.sqlite") as c:
        assert c.execute("SELECT count(*) FROM purpose_key").fetchone()[0] == 0
    assert len(list((home / "vaults" / "default").glob("*.key"))) == 1
