"""Running a hostile command line in process and checking that it failed cleanly: the harness
the hostile-argument sweeps share (each keeps its own cases and its own snapshot of the home)."""

from __future__ import annotations

import pytest


def case_id(args: tuple[str, ...]) -> str:
    """A readable, ASCII test id for a command line."""
    text = " ".join(a if len(a) < 24 else a[:20] + "..." for a in args)
    return text.encode("unicode_escape").decode("ascii")


def run_hostile(env: dict[str, str], args: tuple[str, ...],
                capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``truststack ARGS`` in this process (``{key}`` in an argument replaced by
    ``env[key]``); return its exit code, stdout and stderr."""
    from trust.cli.common import run_cli
    from trust.cli.main import cli

    argv = []
    for a in args:
        for key, value in env.items():
            a = a.replace("{" + key + "}", value)
        argv.append(a)
    capfd.readouterr()
    code = run_cli(cli, argv)
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_clean_error_line(code: int, out: str, err: str) -> str:
    """The command failed (exit 1 or 2) with one ``error: `` line on stderr, no traceback, no
    internal error, no terminal control characters, nothing on stdout; return that line."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code in (1, 2), f"exit {code}; stdout {out[:200]!r}; stderr {err[:300]!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {err[:500]!r}"
    assert lines[0].startswith("error: ")
    assert "internal error" not in err and "Traceback" not in err, err
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert len(lines[0]) < 2000
    assert out == ""
    return lines[0]
