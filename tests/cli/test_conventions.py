"""CLI conventions shared by every command: one-line usage errors, ``--output`` and
``--verbose`` before or after the noun, tab-separated lists, safe display of untrusted text."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, assert_one_line_error
from trust.cli.common import emit_table, iso_time, terminal_safe
from trust.durations import MAX_DURATION, parse_duration
from trust.errors import UsageError

# -- usage errors ------------------------------------------------------------------------------


def test_usage_errors_are_one_line_exit_2(cli: Cli) -> None:
    r = cli("credential", "verify", "00", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "error: missing option --authority")
    assert "credential verify --help" in r.stderr
    r = cli("identity", "create", "--zzz", ok=False)
    assert r.returncode == 2 and r.stderr.strip() == \
        "error: no such option --zzz (see: truststack identity create --help)"
    r = cli("credential", "issue", "--subject", "x", "--time", "-1", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "invalid value for --time")
    r = cli("nope", ok=False)
    assert r.returncode == 2
    assert_one_line_error(r, "no such command")


def test_help_still_works(cli: Cli) -> None:
    r = cli("identity", "create", "--help")
    assert "Usage: truststack identity create" in r.stdout and "--output" in r.stdout
    assert "--verbose" in r.stdout
    assert "--output" in cli("--help").stdout
    r = cli("identity", ok=None)  # a noun without its verb shows the noun's help
    assert "Commands:" in r.stdout + r.stderr


# -- --output / --verbose anywhere -------------------------------------------------------------


def test_output_and_verbose_before_or_after_the_noun(cli: Cli) -> None:
    cli("identity", "create", "alice")
    before = json.loads(cli("--output", "json", "identity", "list").stdout)
    after = json.loads(cli("identity", "list", "--output", "json").stdout)
    assert before == after and before[0]["name"] == "alice"
    # after the noun wins over before it
    assert cli("--output", "json", "identity", "list", "--output", "plain").out.startswith("alice\t")
    assert cli("--verbose", "identity", "list").returncode == 0
    assert cli("identity", "list", "--verbose").returncode == 0
    r = cli("identity", "show", "nobody", "--verbose", ok=False)
    assert "no identity named 'nobody'" in r.stderr


# -- identity create without a name -------------------------------------------------------------


def test_identity_create_without_name_prints_the_chosen_name(cli: Cli) -> None:
    r = cli("identity", "create")
    assert r.out.startswith("I") and len(r.out) == 65  # stdout: only the identifier
    m = re.fullmatch(r"created identity (identity-[0-9a-f]{6}) \(no NAME was given\)\n", r.stderr)
    assert m, r.stderr
    assert cli.json("identity", "show", m.group(1))["identifier"] == r.out
    assert_one_line_error(cli("identity", "create", "", ok=False), "invalid identity name")


# -- lists ---------------------------------------------------------------------------------------


def test_lists_are_tab_separated_without_labels(cli: Cli) -> None:
    assert cli("identity", "list").stdout == ""
    assert cli("schema", "list").stdout == ""
    assert cli("credential", "list").stdout == ""
    alice = cli("identity", "create", "alice").out
    bob = cli("identity", "create", "bob").out
    lines = cli("identity", "list").stdout.splitlines()
    assert [ln.split("\t")[:4] for ln in lines] == [["alice", alice, "yes", "default"],
                                                     ["bob", bob, "no", "default"]]
    assert all(len(ln.split("\t")) == 6 for ln in lines)
    cli("schema", "create", "7", "--attribute", "role:string", "--attribute", "level:int",
        "--description", "a\tb")
    assert cli("schema", "list").stdout == "7\trole:string,level:int\ta\\x09b\n"
    cred = cli("credential", "issue", "--identity", "alice", "--subject", "bob",
               "--attribute", "role=x\ty").out
    cli("credential", "store", cred, "--identity", "bob", "--authority", "alice")
    [row] = cli("credential", "list").stdout.splitlines()
    cells = row.split("\t")
    assert cells[1:5] == ["bob", "ockam", alice, "0"] and cells[6] == "no" and len(cells) == 7
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", cells[5])
    attrs = cli("credential", "attributes").stdout.splitlines()
    assert attrs == []  # store does not record attributes; verify does
    cli("credential", "verify", cred, "--authority", "alice")
    [row] = cli("credential", "attributes").stdout.splitlines()
    assert row.split("\t")[:5] == [bob, "role", "x\\x09y", alice, "0"]


def test_emit_table(capsys: pytest.CaptureFixture[str]) -> None:
    rows: list[dict[str, Any]] = [{"a": "x\ny", "b": None, "c": True, "d": 3, "e": ["l"], "t": 0},
            {"a": "", "b": "\x1b[31m", "c": False, "d": 1.5, "e": {"k": 1}, "t": None}]
    emit_table("plain", rows, ["a", "b", "c", "d", "e", "t"], formats={"t": iso_time})
    assert capsys.readouterr().out.splitlines() == [
        'x\\x0ay\t-\tyes\t3\t["l"]\t1970-01-01T00:00:00Z',
        '-\t\\x1b[31m\tno\t1.5\t{"k":1}\t-']
    emit_table("json", rows, ["a"])
    assert json.loads(capsys.readouterr().out) == rows
    emit_table("plain", [], ["a"])
    assert capsys.readouterr().out == ""


# -- untrusted text ------------------------------------------------------------------------------

HOSTILE = ["\x1b]0;pwned\x07", "\x1b[2J", "line\r\nforged: yes", "\x9b31m", "\u202egnp.exe",
           "\u2066iso\u2069", "nul\x00byte", "del\x7f", "zw\u200bsp", "sep\u2028ara\u2029tor",
           "back\\slash", "\ud800"]


@pytest.mark.parametrize("text", HOSTILE)
def test_terminal_safe_leaves_no_control_character(text: str) -> None:
    shown = terminal_safe(text)
    assert shown.isprintable(), repr(shown)
    assert "\n" not in shown and "\t" not in shown
    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in shown)


def test_terminal_safe_keeps_printable_text() -> None:
    assert terminal_safe("plain text: café, 日本語, Ελληνικά") == "plain text: café, 日本語, Ελληνικά"
    assert terminal_safe("a\\b") == "a\\\\b" and terminal_safe("a\\b", backslash=False) == "a\\b"
    assert terminal_safe(b"ok\xff\x1b") == "ok\\xff\\x1b"
    assert terminal_safe("\x1b") != terminal_safe("\\x1b")  # an escape cannot be faked
    assert terminal_safe(7) == "7"


def test_credential_attributes_cannot_forge_output(cli: Cli, tmp_path: Path) -> None:
    cli("identity", "create", "issuer")
    cli("identity", "create", "holder")
    name = "x\x1b]0;title\x07"
    value = "admin\r\nIssuer: Ifake\x1b[2J\x9b\u202e"
    cred = cli("credential", "issue", "--identity", "issuer", "--subject", "holder",
               "--attribute", f"{name}={value}").out
    sel = cli("credential", "issue", "--identity", "issuer", "--subject", "holder", "--selective",
              "--attribute", f"{name}={value}").out
    outputs = [cli("credential", "verify", cred, "--authority", "issuer").stdout,
               cli("credential", "show", cred).stdout,
               cli("credential", "show", sel).stdout,
               cli("credential", "verify", sel, "--authority", "issuer").stdout,
               cli("credential", "attributes").stdout]
    pres = cli("credential", "present", sel, "--identity", "holder", "--reveal", name,
               "--audience", "api\x1b[1A", "--nonce", "n\rforged").out
    outputs.append(cli("credential", "show", pres).stdout)
    outputs.append(cli("credential", "verify-presentation", pres, "--authority", "issuer",
                       "--audience", "api\x1b[1A", "--nonce", "n\rforged").stdout)
    for out in outputs:
        for bad in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
            assert bad not in out, (bad, out)
        assert "\nIssuer: Ifake" not in out
    assert "admin\\x0d\\x0aIssuer: Ifake\\x1b[2J\\x9b\\u202e" in outputs[0]
    # JSON stays exact
    data = cli.json("credential", "verify", cred, "--authority", "issuer")
    assert data["attributes"] == {name: value}


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("10m", 600), ("1h", 3600), ("7d", 604800),
                                          ("500ms", 0.5), ("2", 2), (" 1.5h ", 5400), (0, 0),
                                          (12, 12)])
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "-1", "-1d", "1e9", "inf", "nan", "1_000", "\u0663",
                                  "\u0663d", "\uff13s", "9" * 60, "9" * 400, "99999999999d",
                                  "1y", "1 d d", float("inf"), float("nan"), -1, True])
def test_parse_duration_refuses(text: str | float) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_parse_duration_bounds() -> None:
    assert parse_duration(f"{MAX_DURATION}s") == MAX_DURATION
    with pytest.raises(UsageError, match="too long"):
        parse_duration(f"{MAX_DURATION + 1}s")
    with pytest.raises(UsageError, match="more than zero"):
        parse_duration("0s", allow_zero=False)
    with pytest.raises(UsageError, match="too long"):
        parse_duration("2h", maximum=3600)
