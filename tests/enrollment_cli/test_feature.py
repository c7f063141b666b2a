"""The node feature behind ``authority create``: its record is hostile input, database URLs
are shown without passwords, and replicas share one credential-signing key through the
authority's database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.enrollment_cli.helpers import stop_all
from trust.enrollment.repositories import MemoryAuthorityRepository
from trust.errors import StorageError, UsageError
from trust.node.authority_feature import (
    SIGNING_KEY_SETTING,
    authority_options,
    authority_signer,
    check_database_url,
    parse_trusted_identities,
    redact_url,
)

ID = "I" + "ab" * 32


@pytest.mark.parametrize("url, shown", [
    ("sqlite:///var/lib/a.sqlite", "sqlite:///var/lib/a.sqlite"),
    ("postgresql://u:secret@db:5432/auth", "postgresql://u:***@db:5432/auth"),
    ("postgresql://u@db/auth?password=secret&sslmode=require",
     "postgresql://u@db/auth?password=***&sslmode=require"),
    ("postgres://db/auth?SSLPassword=secret", "postgres://db/auth?SSLPassword=***"),
])
def test_database_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "secret" not in redact_url(url)
    assert check_database_url(url) == url


@pytest.mark.parametrize("url", ["mysql://h/db", "sqlite:relative", "postgresql://h/db x",
                                 "sqlite:///a\x1b[2J", "", "x" * 3000, 42])
def test_bad_database_urls_are_usage_errors(url: Any) -> None:
    with pytest.raises(UsageError):
        check_database_url(url)


def test_trusted_identities_are_ockams_object() -> None:
    assert parse_trusted_identities({"I" + ID[1:].upper(): {"role": "x"}}) == {ID: {"role": "x"}}
    with pytest.raises(UsageError, match="not an array"):
        parse_trusted_identities([{"identifier": ID, "attributes": {}}])
    for bad in [{"Inothex": {}}, {ID: {"a": 1}}, {ID: ["a"]}, "nope"]:
        with pytest.raises(UsageError):
            parse_trusted_identities(bad)


@pytest.mark.parametrize("section", [
    "x", [], {"admins": "I"}, {"admins": ["Inothex"]}, {"admins": [ID], "credential_ttl": True},
    {"admins": [ID], "credential_ttl": 10**9}, {"admins": [ID], "credential_ttl": 5},
    {"admins": [ID], "database": "mysql://h/d"}, {"admins": [ID], "trusted_identities": [1]},
    {"admins": [ID], "trusted_identities": {"Ibad": {}}},
])
def test_a_tampered_record_is_a_storage_error(section: Any) -> None:
    with pytest.raises(StorageError, match="authority record is not valid"):
        authority_options({"name": "a", "authority": section})


def test_records_without_authority_are_plain_nodes() -> None:
    assert authority_options({"name": "n"}) is None
    options = authority_options({"name": "a", "authority": {"admins": [ID.upper()[0] + ID[1:]]}})
    assert options is not None and options.admins == (ID,) and options.credential_ttl == 3600


def test_replicas_share_the_signing_key_recorded_in_the_database(tmp_path: Path) -> None:
    async def go() -> None:
        from trust.services import open_identities

        async with open_identities(tmp_path / "home") as ids:
            authority = await ids.create_identity("authority")
            repo = MemoryAuthorityRepository()
            first = await authority_signer(ids, authority, repo, credential_ttl=3600,
                                           now=_now())
            second = await authority_signer(ids, authority, repo, credential_ttl=3600,
                                            now=_now())
            assert (second.handle, second.attestation) == (first.handle, first.attestation)
            stored = json.loads((await repo.get_setting(SIGNING_KEY_SETTING)) or b"{}")
            assert stored["handle"] == first.handle
            # a setting that does not decode stops the authority (it never signs with junk)
            await repo.put_setting(SIGNING_KEY_SETTING, b"{not json")
            with pytest.raises(StorageError, match="malformed"):
                await authority_signer(ids, authority, repo, credential_ttl=3600, now=_now())
            # a key the home does not hold: replicas need the same identity and vault
            await repo.put_setting(SIGNING_KEY_SETTING, json.dumps(
                {**stored, "handle": "no-such-key"}).encode())
            with pytest.raises(StorageError, match="not in this home"):
                await authority_signer(ids, authority, repo, credential_ttl=3600, now=_now())

    asyncio.run(go())


def _now() -> int:
    import time

    return int(time.time())


def test_a_tampered_authority_record_stops_node_start_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cli = Cli(home)
    try:
        cli("identity", "create", "admin")
        cli("authority", "create", "a1")
        cli("node", "stop", "a1")
        record_path = home / "nodes" / "a1" / "node.json"
        record = json.loads(record_path.read_text())
        record["authority"]["credential_ttl"] = "forever"
        record_path.write_text(json.dumps(record))
        assert_one_line_error(cli("node", "start", "a1", ok=False), "authority record")
        assert cli.json("node", "show", "a1")["status"] == "stopped"
    finally:
        stop_all(home)
