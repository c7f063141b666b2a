"""Hostile arguments to the identity, credential and schema commands (and the options every
command shares): each is refused with exit 1 or 2 and one line on stderr, never an internal error
or a traceback, and changes nothing in the home (state database rows, vault files).

Commands run in-process through :func:`trust.cli.common.run_cli` (the same path as the
executable) so the sweep takes seconds; ``test_non_utf8_argv_through_the_executable`` covers what
only a real process can pass.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.hostile import assert_one_clean_error_line, case_id, run_hostile
from tests.conftest import TRUSTSTACK
from trust.services import open_credentials, open_identities

HUGE = "9" * 60
HUGER = "9" * 400
ARABIC_3 = "\u0663"  # ARABIC-INDIC DIGIT THREE
LONG = "a" * 100_000
ESC = "\x1b]0;owned\x07\x1b[2J"
BIDI = "\u202eevil"
ID0 = "I" + "0" * 64


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A home with identity alice, schema 7 (level:int, groups:list), one credential, and
    hostile files: not UTF-8, with a NUL, binary garbage, a directory, a FIFO, a missing path."""
    from trust.cli.common import run_cli
    from trust.cli.main import cli

    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    old = os.environ.get("TRUSTSTACK_HOME")
    os.environ["TRUSTSTACK_HOME"] = str(home)
    try:
        assert run_cli(cli, ["identity", "create", "alice"]) == 0
        assert run_cli(cli, ["schema", "create", "7", "--attribute", "level:int",
                             "--attribute", "groups:list"]) == 0

        async def credential() -> str:
            s = open_credentials(home)
            try:
                return (await s.issue("alice", "alice", {"role": "x"}, ttl=3600)).hex()
            finally:
                await s.close()

        import asyncio

        cred = asyncio.run(credential())
        (root / "latin1.txt").write_bytes(b"caf\xe9 \xff\xfe")
        (root / "nul.txt").write_bytes(b"81\x0082")
        (root / "garbage.bin").write_bytes(bytes(range(256)) * 4)
        (root / "dir").mkdir()
        os.mkfifo(root / "fifo")
        os.environ["TRUSTSTACK_HOME"] = str(root / "elsewhere")

        async def strangers() -> list[str]:
            m = open_identities(root / "elsewhere")
            try:
                return [(await m.create_identity(f"stranger{i}")).identity.export_hex()
                        for i in range(8)]
            finally:
                await m.close()

        histories = asyncio.run(strangers())
        os.environ["TRUSTSTACK_HOME"] = str(home)
        yield {"root": str(root), "home": str(home), "cred": cred,
               **{f"history{i}": h for i, h in enumerate(histories)}}
    finally:
        if old is None:
            os.environ.pop("TRUSTSTACK_HOME", None)
        else:
            os.environ["TRUSTSTACK_HOME"] = old


def _r(env: dict[str, str], name: str) -> str:
    return str(Path(env["root"]) / name)


# Each case: arguments; {root} stands for the directory of hostile files, {cred} for a valid
# credential about alice, {historyN} for the change history of a stranger (one per case).
CASES: list[tuple[str, ...]] = [
    # shared options, unknown nouns and verbs
    ("--output", "xml", "identity", "list"),
    ("identity", "list", "--output", "xml"),
    ("no-such-noun",),
    ("identity", "no-such-verb"),
    ("identity", "create", "--no-such-option"),
    # identity create / show / rotate / delete
    ("identity", "create", ""),
    ("identity", "create", " "),
    ("identity", "create", LONG),
    ("identity", "create", "al" + ESC),
    ("identity", "create", "alice\n"),
    ("identity", "create", "-dash"),
    ("identity", "create", ID0),
    ("identity", "create", "alice"),
    ("identity", "create", "b" + BIDI),
    ("identity", "create", "bob", "--key-id", "no-such-key"),
    ("identity", "create", "bob", "--vault", "no-such-vault"),
    ("identity", "create", "bob", "--vault", LONG),
    ("identity", "create", "bob", "--key-type", "rsa"),
    ("identity", "show", "nobody" + ESC),
    ("identity", "show", ID0),
    ("identity", "show", LONG),
    ("identity", "rotate", "nobody"),
    ("identity", "rotate", "alice", "--key-id", "no-such-key"),
    ("identity", "rotate", "alice", "--vault", "no-such-vault"),
    ("identity", "delete", ""),
    ("identity", "delete", "nobody" + ESC),
    # identity export to places that cannot be written
    ("identity", "export", "alice", "--binary", "{root}/missing-dir/alice.bin"),
    ("identity", "export", "alice", "--binary", "{root}/dir"),
    ("identity", "export", "alice", "--binary", ""),
    ("identity", "export", "nobody", "--binary", "{root}/x.bin"),
    # identity import / verify: malformed values and files
    ("identity", "import", ""),
    ("identity", "import", "zz"),
    ("identity", "import", "abc"),
    ("identity", "import", "81" + "ff" * 1000),
    ("identity", "import", "0" * 100_000),
    ("identity", "import", "@{root}/missing"),
    ("identity", "import", "@{root}/dir"),
    ("identity", "import", "@{root}/fifo"),
    ("identity", "import", "@{root}/latin1.txt"),
    ("identity", "import", "@{root}/nul.txt"),
    ("identity", "import", "@"),
    ("identity", "import", "--file", "{root}/missing"),
    ("identity", "import", "--file", "{root}/dir"),
    ("identity", "import", "--file", "{root}/fifo"),
    ("identity", "import", "--file", "{root}/garbage.bin"),
    ("identity", "import", "81", "--file", "{root}/garbage.bin"),
    ("identity", "verify", ESC),
    ("identity", "verify", "--file", "{root}/latin1.txt"),
    # credential issue: durations, times, numbers, subjects, attributes, schemas
    *[("credential", "issue", "--subject", "alice", "--ttl", t)
      for t in ("0", "0s", "0.1", "-1", "-1d", HUGE, HUGER, HUGE + "d", "99999999999d",
                f"{ARABIC_3}d", ARABIC_3, "1e9", "inf", "nan", "1_000", "", "1y", "3650d",
                "\uff13d")],
    *[("credential", "issue", "--subject", "alice", "--time", t)
      for t in (HUGE, HUGER, "-1", ARABIC_3, "1e3", "", "1_000", "99999999999999")],
    ("credential", "issue", "--subject", "alice", "--time", "1"),
    *[("credential", "issue", "--subject", s)
      for s in ("", " ", ID0, "ab" * 40, "abc" * 31, LONG, "nobody" + ESC, "@{root}/missing",
                "@{root}/dir", "@{root}/fifo", "@{root}/latin1.txt")],
    *[("credential", "issue", "--subject", "alice", "--attribute", a)
      for a in ("no-equals", "=value", " =value")],
    ("credential", "issue", "--subject", "alice", "--attribute", "a=1", "--attribute", "a=2"),
    *[("credential", "issue", "--subject", "alice", "--schema", s)
      for s in (HUGE, "-1", ARABIC_3, "x", "", "18446744073709551616", "1e3")],
    *[("credential", "issue", "--subject", "alice", "--schema", "7", "--attribute", a)
      for a in (f"level={ARABIC_3}", f"level={HUGE}", f"level={HUGER}", "level=1_0", "level=",
                "groups=" + "[" * 50_000, "groups=[1]", "groups=[", "other=x")],
    *[("credential", "issue", "--subject", "alice", "--selective", "--decoys", d)
      for d in (HUGE, "-1", ARABIC_3, "1025")],
    ("credential", "issue", "--subject", "alice", "--decoys", "3"),
    ("credential", "issue", "--subject", "alice", "--identity", "nobody"),
    ("credential", "issue", "--subject", "alice", "--key-vault", "no-such-vault"),
    ("credential", "issue", "--attribute", "a=b"),
    # credential verify / show / store / present / verify-presentation / list / attributes
    *[("credential", verb, value, "--authority", "alice")
      for verb in ("verify", "store")
      for value in ("", "zz", "abc", "00", "81", "ff" * 5000, ESC, "@{root}/missing",
                    "@{root}/dir", "@{root}/fifo", "@{root}/latin1.txt", "@{root}/nul.txt")],
    ("credential", "verify", "--file", "{root}/garbage.bin", "--authority", "alice"),
    ("credential", "verify", "--file", "{root}/fifo", "--authority", "alice"),
    ("credential", "verify", "00"),
    *[("credential", "verify", "00", "--authority", a)
      for a in ("", ID0, "abc" * 31, "ab" * 40, "@{root}/missing", "nobody" + ESC)],
    ("credential", "verify", "00", "--authority", "alice", "--time", HUGE),
    ("credential", "verify", "00", "--authority", "alice", "--time", ARABIC_3),
    *[("credential", "show", v) for v in ("", "zz", "00", "8282", "@{root}/latin1.txt", HUGE)],
    ("credential", "show", "--file", "{root}/dir"),
    ("credential", "present", "00", "--audience", "a", "--nonce", "n"),
    ("credential", "present", "zz", "--audience", "a", "--nonce", "n", "--identity", "nobody"),
    ("credential", "verify-presentation", "00", "--authority", "alice", "--audience", "a",
     "--nonce", "n"),
    ("credential", "verify-presentation", "@{root}/fifo", "--authority", "alice", "--audience",
     "a", "--nonce", "n"),
    ("credential", "list", "--identity", "nobody"),
    ("credential", "list", "--time", HUGE),
    ("credential", "attributes", "nobody" + ESC),
    ("credential", "attributes", "--time", f"1{ARABIC_3}"),
    # a valid history given with a command that then fails is not stored
    ("credential", "verify", "00", "--authority", "{history0}"),
    ("credential", "verify", "{cred}", "--authority", "{history1}"),
    ("credential", "verify", "{cred}", "--authority", "alice", "--subject", "{history2}"),
    ("credential", "store", "{cred}", "--authority", "{history3}", "--identity", "alice"),
    ("credential", "issue", "--subject", "{history4}", "--identity", "nobody"),
    ("credential", "issue", "--subject", "{history5}", "--key-vault", "no-such-vault"),
    ("credential", "verify-presentation", "00", "--authority", "{history6}", "--audience", "a",
     "--nonce", "n"),
    # schema
    *[("schema", "create", sid, "--attribute", "a:string")
      for sid in (HUGE, "-1", ARABIC_3, "", "x", "18446744073709551616", "7")],
    *[("schema", "create", "8", "--attribute", a)
      for a in ("a", "a:nope", ":string", "a\n:string", LONG + ":string", "a" + ESC + ":string")],
    ("schema", "create", "8", "--attribute", "a:string", "--attribute", "a:int"),
    ("schema", "create", "8", "--attribute", "a:string", "--description", LONG),
    *[("schema", verb, sid) for verb in ("show", "delete")
      for sid in (HUGE, "-1", ARABIC_3, "x", "", "999")],
]


def _snapshot(home: Path) -> str:
    """A digest of every row of every table and of the vault files."""
    h = hashlib.sha256()
    with sqlite3.connect(home / "state.sqlite") as c:
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "ORDER BY name")]
        for t in tables:
            rows = sorted(repr(r) for r in c.execute(f'SELECT * FROM "{t}"'))
            if rows:
                h.update(repr((t, rows)).encode())
    for p in sorted((home / "vaults").rglob("*")):
        h.update(str(p.relative_to(home)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("args", CASES, ids=[case_id(c) for c in CASES])
def test_hostile_argument_is_one_typed_line_and_changes_nothing(
        env: dict[str, str], args: tuple[str, ...], capfd: pytest.CaptureFixture[str]) -> None:
    home = Path(env["home"])
    before = _snapshot(home)
    code, out, err = run_hostile(env, args, capfd)
    assert_one_clean_error_line(code, out, err)
    assert _snapshot(home) == before, "a failed command changed the home"


def test_non_utf8_argv_through_the_executable(env: dict[str, str]) -> None:
    """Bytes that are not UTF-8 in an argument (possible only from a real process)."""
    for args in ([b"identity", b"create", b"caf\xe9"],
                 [b"credential", b"issue", b"--subject", b"alice", b"--attribute", b"role=\xff"],
                 [b"identity", b"show", b"\xff\xfe"]):
        p = subprocess.run([TRUSTSTACK.encode(), *args], capture_output=True, timeout=30,
                           env={**os.environ, "TRUSTSTACK_HOME": env["home"]})
        err = p.stderr.decode("utf-8", "replace")
        assert p.returncode == 2, err
        assert len(err.strip().splitlines()) == 1 and "internal error" not in err, err
        assert "not valid UTF-8" in err and ("\\xe9" in err or "\\xff" in err)
