"""The spinner for slow commands (issue 10, item 10): shown on a terminal (a pty here), nothing
at all when stderr is piped or redirected."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys

import pytest

from trust import progress as hook
from trust.cli.progress import interactive, spinner

SPINNER_CHARS = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


def run_with_pty_stderr(args: list[str], env: dict[str, str] | None = None,
                        timeout: float = 60) -> tuple[int, str, str]:
    """Run ``args`` with stderr on a pseudo-terminal and stdout on a pipe: (exit, stdout, tty)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                             env={**os.environ, "TERM": "xterm", **(env or {})})
    finally:
        os.close(slave)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                p.kill()
                raise AssertionError("no output from the pty in time")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not chunk:
                break
            seen += chunk
        assert p.stdout is not None
        out = p.stdout.read()
        p.stdout.close()
        code = p.wait(timeout=timeout)
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    return code, out.decode(), seen.decode(errors="replace")


SLOW = ("from trust.cli.progress import spinner\nimport time\n"
        "with spinner('vault hsm (pkcs11): signing'):\n"
        "    print('result', flush=True)\n"  # stdout written while spinning stays on stdout
        "    with spinner('nested'):\n        time.sleep(0.3)\n"
        "print('done')\n")


def test_spinner_on_a_terminal() -> None:
    code, out, tty = run_with_pty_stderr([sys.executable, "-c", SLOW])
    assert code == 0 and out == "result\ndone\n"  # stdout stays clean
    assert SPINNER_CHARS & set(tty) and "vault hsm (pkcs11): signing" in tty
    assert "nested" not in tty and "result" not in tty
    assert tty.rstrip().endswith("\x1b[2K")  # the line is cleared afterwards


def test_nothing_when_piped() -> None:
    p = subprocess.run([sys.executable, "-c", SLOW], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout == "result\ndone\n" and p.stderr == ""


def test_nothing_on_a_non_terminal_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    with spinner("working", stream=buf):
        pass
    assert buf.getvalue() == "" and not interactive(buf)
    monkeypatch.setenv("TERM", "dumb")

    class FakeTty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not interactive(FakeTty())  # a dumb terminal gets no spinner either


def test_the_hook_is_a_no_op_until_installed() -> None:
    from trust.cli.progress import install

    old = hook.enabled()
    try:
        hook.set_progress(None)
        with hook.progress("x"):
            pass
        assert not hook.enabled()
        install()
        assert hook.enabled()
    finally:
        if not old:
            hook.set_progress(None)
