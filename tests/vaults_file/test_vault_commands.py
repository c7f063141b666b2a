"""Failed vault commands leave nothing behind (issue 9, item 11) and stored configurations are
read strictly."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, assert_one_line_error
from trust.errors import StorageError
from trust.storage import open_storage
from trust.vault_config import VaultConfig, create_vault, delete_vault


def test_create_with_an_empty_passphrase_leaves_nothing(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    r = cli("vault", "create", "x", "--passphrase-env", "EMPTY", ok=False, env={"EMPTY": ""})
    assert_one_line_error(r, "passphrase is empty")
    assert not (cli.home / "vaults" / "x").exists()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    r = cli("vault", "create", "x", "--passphrase-file", str(empty), ok=False)
    assert_one_line_error(r, "passphrase is empty")
    assert not (cli.home / "vaults" / "x").exists()
    assert cli.json("vault", "list") == []
    cli("vault", "create", "x")  # the name is still free


def test_create_that_fails_to_record_removes_the_directory(tmp_path: Path) -> None:
    class FailingStore:
        async def find(self, name: str) -> None:
            return None

        async def add(self, config: VaultConfig) -> None:
            raise StorageError("disk full")

    with pytest.raises(StorageError):
        asyncio.run(create_vault(FailingStore(), "v", "file", {}, tmp_path))  # type: ignore[arg-type]
    assert not (tmp_path / "vaults" / "v").exists()


def test_delete_keeps_the_keys_when_the_configuration_stays(tmp_path: Path) -> None:
    store = open_storage(home=tmp_path).vault_configs  # SQLite: usable from each asyncio.run
    asyncio.run(create_vault(store, "v", "file", {}, tmp_path))
    vault_dir = tmp_path / "vaults" / "v"
    (vault_dir / "k.key").write_text("{}")

    class FailingDelete:
        async def get(self, name: str) -> VaultConfig:
            return await store.get(name)

        async def delete(self, name: str) -> None:
            raise StorageError("database is locked")

    with pytest.raises(StorageError):
        asyncio.run(delete_vault(FailingDelete(), "v", tmp_path))  # type: ignore[arg-type]
    assert (vault_dir / "k.key").exists() and (vault_dir / "vault.json").exists()
    asyncio.run(delete_vault(store, "v", tmp_path))
    assert os.listdir(tmp_path / "vaults") == []
    assert asyncio.run(store.find("v")) is None


def test_delete_of_a_vault_whose_directory_became_a_link(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    cli("vault", "create", "x")
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("mine")
    vault_dir = cli.home / "vaults" / "x"
    for f in vault_dir.iterdir():
        f.unlink()
    vault_dir.rmdir()
    vault_dir.symlink_to(target)
    r = cli("vault", "delete", "x")
    assert "internal error" not in r.stderr
    assert not os.path.lexists(vault_dir) and (target / "keep").read_text() == "mine"
    assert cli.json("vault", "list") == []


@pytest.mark.parametrize("params", ["[" * 10_000, "not json", "[1]", '{"a": [1]}', "x" * 70_000])
def test_tampered_configuration_row(tmp_path: Path, params: Any) -> None:
    async def go() -> None:
        async with open_storage(home=tmp_path) as storage:
            await storage.db.execute("INSERT INTO vault(name, backend, params, created_at) "
                                     "VALUES ('v', 'file', ?, 1)", (params,))
            with pytest.raises(StorageError, match="malformed"):
                await storage.vault_configs.get("v")
            with pytest.raises(StorageError, match="malformed"):
                await storage.vault_configs.list()

    asyncio.run(go())
