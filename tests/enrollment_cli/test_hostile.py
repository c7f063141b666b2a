"""Hostile arguments to ``authority``, ``ticket`` and ``enroll``: each is refused with exit 1 or
2 and one line on stderr (no traceback, no terminal escapes, no ticket code), and changes nothing
in the home. In-process (:func:`trust.cli.common.run_cli`), so the sweep takes seconds."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.hostile import assert_one_clean_error_line, case_id, run_hostile

ESC = "\x1b]0;owned\x07\x1b[2J"
BIDI = "\u202eevil"
LONG = "a" * 100_000
HUGE = "9" * 60
ID0 = "I" + "0" * 64


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A home with identity alice (the default) and hostile files; tickets with a valid
    layout whose authority cannot be reached, or whose fields are wrong."""
    import asyncio

    from trust.cli.common import run_cli
    from trust.cli.main import cli
    from trust.enrollment.messages.one_time_code import OneTimeCode
    from trust.enrollment.ticket import EnrollmentTicket
    from trust.services import open_identities

    root = tmp_path_factory.mktemp("hostile-enroll")
    home = root / "home"
    old = os.environ.get("TRUSTSTACK_HOME")
    os.environ["TRUSTSTACK_HOME"] = str(home)
    try:
        assert run_cli(cli, ["identity", "create", "alice"]) == 0

        async def alice() -> object:
            async with open_identities(home) as ids:
                return await ids.get("alice")

        identity = asyncio.run(alice())
        code = OneTimeCode.random()
        unreachable = EnrollmentTicket.for_authority(code, "/dnsaddr/127.0.0.1/tcp/1/service/api",
                                                     identity, "gone")  # type: ignore[arg-type]
        fields = unreachable.text().split(",")
        (root / "ticket.txt").write_text(unreachable.encode())
        (root / "latin1.txt").write_bytes(b"caf\xe9 \xff\xfe")
        (root / "nul.txt").write_bytes(b"81\x0082")
        (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
        (root / "array.json").write_text(json.dumps([{"identifier": ID0, "attributes": {}}]))
        (root / "dir").mkdir()
        os.mkfifo(root / "fifo")
        yield {"home": str(home), "root": str(root), "code": code.hex(),
               "unreachable": unreachable.encode(),
               "escaped_route": ",".join([fields[0] + ESC, *fields[1:]]).encode().hex(),
               "wrong_id": ",".join([fields[0], ID0, *fields[2:]]).encode().hex(),
               "bad_code": ",".join([*fields[:3], "zz" * 32, *fields[4:]]).encode().hex(),
               "eight_fields": ",".join([*fields, "x", "y"]).encode().hex(),
               "legacy": json.dumps({"one_time_code": code.hex()}).encode().hex()}
    finally:
        if old is None:
            os.environ.pop("TRUSTSTACK_HOME", None)
        else:
            os.environ["TRUSTSTACK_HOME"] = old


CASES: list[tuple[str, ...]] = [
    # enroll: tickets that are not tickets, or name an authority that is not there
    *[("enroll", t) for t in ("", " ", "zz", "0", LONG, ESC, BIDI, "{unreachable}"[:-1] + "x",
                              "{escaped_route}", "{wrong_id}", "{bad_code}", "{eight_fields}",
                              "{legacy}", "{unreachable}")],
    *[("enroll", "@{root}/" + f) for f in ("latin1.txt", "nul.txt", "dir", "fifo", "missing")],
    ("enroll", "@{root}/ticket.txt", "--identity", "nosuch" + ESC),
    ("enroll", "@{root}/ticket.txt", "--timeout", HUGE),
    ("enroll", "@{root}/ticket.txt", "--timeout", "0"),
    # ticket create: options checked before the authority is contacted
    ("ticket", "create", "--at", "nosuch" + ESC),
    ("ticket", "create", "--at", "../etc"),
    ("ticket", "create", "--at", "a", "--usage-count", HUGE),
    ("ticket", "create", "--at", "a", "--usage-count", "\u0663"),
    ("ticket", "create", "--at", "a", "--usage-count", "-1"),
    ("ticket", "create", "--at", "a", "--expires-in", "1e9"),
    ("ticket", "create", "--at", "a", "--expires-in", "0"),
    ("ticket", "create", "--at", "a", "--expires-in", HUGE),
    ("ticket", "create", "--at", "a", "--attribute", "=x"),
    ("ticket", "create", "--at", "a", "--attribute", "k=1", "--attribute", "k=2"),
    ("ticket", "create", "--at", "a", "--relay", "x", "--attribute", "ockam-relay=y"),
    # authority create: nothing is written
    ("authority", "create", "bad name"),
    ("authority", "create", ESC),
    ("authority", "create", "a", "--database", "postgresql://h/db" + ESC),
    ("authority", "create", "a", "--database", LONG),
    ("authority", "create", "a", "--credential-ttl", HUGE),
    ("authority", "create", "a", "--credential-ttl", "40d"),
    ("authority", "create", "a", "--tcp-listener-address", "nohost"),
    ("authority", "create", "a", "--admin", "nosuch" + BIDI),
    ("authority", "create", "a", "--identity", "nosuch"),
    *[("authority", "create", "a", "--trusted-identities", v)
      for v in ("@{root}/deep.json", "@{root}/array.json", "@{root}/latin1.txt", "NaN",
                '{"' + ID0 + '": {"a": 1}}', '{"Ibad": {}}', '{"' + ID0 + '": {"' + ESC + '": "x"}}',
                '{"' + ID0 + '": {}, "' + ID0.upper()[0] + ID0[1:] + '": {}}')],
    # members and audit: identifiers checked first; unknown authorities named
    *[("authority", "member", verb, i, "--at", "a")
      for verb in ("add", "show", "delete") for i in ("Inothex", ESC, LONG, "")],
    ("authority", "member", "list", "--at", "nosuch"),
    ("authority", "audit", "--at", "nosuch", "--limit", "0"),
    ("authority", "audit", "--at", "nosuch", "--after", "-1"),
    ("authority", "show", "nosuch"),
    ("authority", "delete", "nosuch"),
]


def _snapshot(home: Path) -> str:
    """A digest of every row of every table of the home's database and of every other file."""
    import sqlite3

    h = hashlib.sha256()
    with sqlite3.connect(home / "state.sqlite") as c:
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "ORDER BY name")]
        for t in tables:
            rows = sorted(repr(r) for r in c.execute(f'SELECT * FROM "{t}"'))
            h.update(repr((t, rows)).encode())
    for p in sorted(home.rglob("*")):
        h.update(str(p.relative_to(home)).encode())
        if p.is_file() and not p.name.startswith("state.sqlite"):
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("args", CASES, ids=[case_id(c) for c in CASES])
def test_hostile_argument_is_one_line_and_changes_nothing(
        env: dict[str, str], args: tuple[str, ...], capfd: pytest.CaptureFixture[str]) -> None:
    home = Path(env["home"])
    before = _snapshot(home)
    code, out, err = run_hostile(env, args, capfd)
    assert_one_clean_error_line(code, out, err)
    assert env["code"] not in err
    assert _snapshot(home) == before, "a failed command changed the home"
