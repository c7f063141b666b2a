"""Every code block of README.md and docs/ runs as written, in order, as a newcomer would run it.

The pages are read in the order README.md links them (then any other page), in one home and one
working directory, like one terminal session:

* ``sh`` blocks run in bash (``-euo pipefail``); what they export and where they ``cd`` carries
  over to later blocks, as in a terminal;
* ``console`` blocks hold ``$ command`` lines, each followed by the output it must print;
* ``python`` blocks of one page run in one Python process, in order (later blocks use what the
  earlier ones defined), with the environment the shell blocks left;
* ``json``, ``text``, ``ebnf`` and ``cddl`` blocks are outputs, shapes and grammars: they are not code;
* a block that is not meant to run says so visibly, on the line just before it:
  ``*Not run: <why>*``; an untagged block is an error (say what it is).

README.md's two set-up commands (install, then the demo or the suite) are not run here: CI runs
the second one itself (``.ci/run``) and ``tests/test_demo.py`` runs the demo.

Background nodes that the pages start are stopped at the end, even when a block fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = {"python", "sh", "console"}
DATA = {"json", "text", "ebnf", "cddl"}
NOT_RUN = re.compile(r"^[*_]?Not run: .+[*_]?$")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    skipped: bool


def blocks_of(path: Path) -> list[Block]:
    out: list[Block] = []
    lines = path.read_text().splitlines()
    rel = path.relative_to(ROOT).as_posix()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        lang = m.group(1)
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{rel}:{start + 1}: unclosed code block")
        i += 1
        before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        out.append(Block(rel, start + 1, lang, "\n".join(body) + "\n",
                         bool(NOT_RUN.match(before.strip()))))
    return out


def pages() -> list[Path]:
    """README.md, then the docs it links in its order, then every other page of docs/."""
    readme = ROOT / "README.md"
    linked = [ROOT / p for p in re.findall(r"\]\((docs/[\w-]+\.md)\)", readme.read_text())]
    ordered = [readme, *dict.fromkeys(p for p in linked if p.exists())]
    return ordered + sorted(p for p in (ROOT / "docs").glob("*.md") if p not in ordered)


def test_every_block_is_code_data_or_visibly_not_run() -> None:
    bad = []
    for page in pages():
        for b in blocks_of(page):
            if b.lang not in RUN | DATA:
                bad.append(f"{b.page}:{b.line}: block tagged {b.lang or '(nothing)'!r}: tag it "
                           f"{sorted(RUN | DATA)} or mark it '*Not run: why*'")
    assert not bad, "\n".join(bad)


# -- the session --------------------------------------------------------------------------------

_DUMP = (f'{sys.executable} -c "import json, os, sys; '
         'json.dump({\\"env\\": dict(os.environ), \\"cwd\\": os.getcwd()}, open(sys.argv[1], \\"w\\"))"')

_DRIVER = textwrap.dedent("""
    import json, os, sys, traceback
    names = {"__name__": "__main__"}
    for line in sys.stdin:
        req = json.loads(line)
        with open(req["session"]) as f:
            session = json.load(f)
        os.environ.clear()
        os.environ.update(session["env"])
        os.chdir(session["cwd"])
        try:
            exec(compile(req["code"], req["name"], "exec"), names)
            result = {"ok": True}
        except BaseException:
            result = {"ok": False, "traceback": traceback.format_exc()}
        sys.stdout.flush()
        with open(req["result"], "w") as f:
            json.dump(result, f)
        print("\\0done", flush=True)
""")


class Session:
    """One home, one working directory, one environment, carried from block to block."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        work = tmp / "work"
        work.mkdir()
        self.state = tmp / "session.json"
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
               "HOME": str(tmp), "TRUSTSTACK_HOME": str(self.home), "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        self.state.write_text(json.dumps({"env": env, "cwd": str(work)}))
        self.python: subprocess.Popen[str] | None = None

    def session(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.state.read_text())
        return data

    def bash(self, b: Block, script: str) -> subprocess.CompletedProcess[str]:
        s = self.session()
        return subprocess.run(["bash", "-euo", "pipefail", "-c", script + f"\n{_DUMP} {self.state}\n"],
                              capture_output=True, text=True, cwd=str(s["cwd"]),
                              env=s["env"], timeout=180)  # type: ignore[arg-type]

    def run_sh(self, b: Block) -> None:
        p = self.bash(b, b.code)
        assert p.returncode == 0, (f"{b.page}:{b.line}: exit {p.returncode}\n{p.stdout[-3000:]}\n"
                                   f"{p.stderr[-3000:]}")

    def run_console(self, b: Block) -> None:
        commands: list[tuple[str, list[str]]] = []
        for line in b.code.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif commands:
                commands[-1][1].append(line)
            else:
                raise AssertionError(f"{b.page}:{b.line}: a console block starts with '$ '")
        for command, expected in commands:
            p = self.bash(b, command)
            shown = (p.stdout + p.stderr).rstrip("\n").splitlines()
            assert shown == expected, f"{b.page}:{b.line}: {command}\n{p.stdout}{p.stderr}"

    def run_python(self, b: Block, page: str) -> None:
        if self.python is None:
            self.python = subprocess.Popen([sys.executable, "-c", _DRIVER], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           text=True, cwd=str(self.tmp))
            self.python_page = page
        assert self.python.stdin is not None and self.python.stdout is not None
        result = self.tmp / "result.json"
        result.unlink(missing_ok=True)
        self.python.stdin.write(json.dumps({"code": b.code, "name": f"{b.page}:{b.line}",
                                            "session": str(self.state),
                                            "result": str(result)}) + "\n")
        self.python.stdin.flush()
        out = []
        for line in self.python.stdout:
            if line.startswith("\0done"):
                break
            out.append(line)
        assert result.exists(), f"{b.page}:{b.line}: the Python process died\n{''.join(out)[-3000:]}"
        r = json.loads(result.read_text())
        assert r["ok"], f"{b.page}:{b.line}:\n{''.join(out)[-2000:]}\n{r['traceback']}"

    def end_python(self) -> None:
        if self.python is not None:
            assert self.python.stdin is not None
            self.python.stdin.close()
            try:
                self.python.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.python.kill()
                self.python.wait()
            self.python = None

    def stop_nodes(self) -> None:
        self.end_python()
        for pid_file in self.home.glob("nodes/*/pid"):
            try:
                pid = int(pid_file.read_text().strip())
                os.kill(pid, signal.SIGKILL)
            except (ValueError, OSError):
                pass


@pytest.fixture
def session(tmp_path: Path) -> object:
    s = Session(tmp_path)
    try:
        yield s
    finally:
        s.stop_nodes()


def test_readme_and_every_page_run_in_order_in_one_session(session: Session) -> None:
    ran = 0
    failures: list[str] = []
    for page in pages():
        blocks = blocks_of(page)
        if page.name == "README.md":
            setup = [b for b in blocks if b.lang == "sh"][:2]
            assert all("pip install" in b.code for b in setup) and len(setup) == 2
            blocks = [b for b in blocks if b not in setup]
        for b in blocks:
            if b.skipped or b.lang not in RUN:
                continue
            try:
                if b.lang == "python":
                    session.run_python(b, b.page)
                elif b.lang == "sh":
                    session.run_sh(b)
                else:
                    session.run_console(b)
            except (AssertionError, subprocess.TimeoutExpired) as e:
                # go on: one report names every block that failed (later ones may fail
                # because of an earlier one, as they would for a reader)
                failures.append(str(e))
            ran += 1
        session.end_python()
    assert not failures, "\n\n".join(failures)
    assert ran >= 40
