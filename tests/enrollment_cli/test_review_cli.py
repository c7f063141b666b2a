"""Refusals added after an attacker review, through the CLI against a background authority
(stopped at the end, even when a test fails): each is one line, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.enrollment_cli.helpers import rows, stop_all


@dataclass
class Auth:
    cli: Cli
    admin: str
    identifier: str


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Auth]:
    """A home with an admin identity (the default), a running authority ``auth`` and an
    enroller ``enr`` there."""
    home = tmp_path_factory.mktemp("review") / "home"
    cli = Cli(home)
    try:
        admin = cli("identity", "create", "admin").out
        created = cli.json("authority", "create", "auth")
        cli("identity", "create", "enr")
        cli("enroll", cli("ticket", "create", "--at", "auth", "--enroller").out,
            "--identity", "enr")
        yield Auth(cli, admin, created["identifier"])
    finally:
        stop_all(home)


def test_audit_after_beyond_the_storage_is_a_usage_error(auth: Auth) -> None:
    r = auth.cli("authority", "audit", "--at", "auth", "--after", str(1 << 63), ok=False)
    assert_one_line_error(r, "sequence number")
    assert r.returncode == 2
    auth.cli("authority", "audit", "--at", "auth", "--after", str((1 << 63) - 1))


def test_an_enroller_cannot_touch_the_admin_nor_anyone_the_authority(auth: Auth) -> None:
    a = auth
    r = a.cli("authority", "member", "add", a.admin, "--at", "auth", "--identity", "enr",
              "--attribute", "role=db", ok=False)
    assert_one_line_error(r, "admin")
    r = a.cli("authority", "member", "delete", a.identifier, "--at", "auth", ok=False)
    assert_one_line_error(r, "authority itself")
    listed = [row[0] for row in rows(a.cli, "authority", "member", "list", "--at", "auth")]
    assert a.admin not in listed and a.identifier not in listed


def test_a_deleted_enrollers_ticket_enrolls_nobody(auth: Auth) -> None:
    a = auth
    a.cli("identity", "create", "enr2")
    enr2 = a.cli.json("identity", "show", "enr2")["identifier"]
    a.cli("enroll", a.cli("ticket", "create", "--at", "auth", "--enroller").out,
          "--identity", "enr2")
    stash = a.cli("ticket", "create", "--at", "auth", "--identity", "enr2",
                  "--usage-count", "5").out
    a.cli("authority", "member", "delete", enr2, "--at", "auth")
    a.cli("identity", "create", "late")
    r = a.cli("enroll", stash, "--identity", "late", ok=False)
    assert_one_line_error(r, "ticket")
    late = a.cli.json("identity", "show", "late")["identifier"]
    assert late not in [row[0] for row in rows(a.cli, "authority", "member", "list", "--at",
                                               "auth")]
