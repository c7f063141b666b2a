"""examples/postgres_portal/run.sh runs the README's commands (each party in its own home) against
a real PostgreSQL server, ``psql`` gets the bank's rows through the inlet, and nothing is left
behind: no node process, no directory, no server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

from tests.conftest import BIN_DIR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "postgres_portal"


def _readme_commands() -> dict[str, list[str]]:
    """The commands of each party's block in the example's README, by section."""
    text = (EXAMPLE / "README.md").read_text()
    out: dict[str, list[str]] = {}
    for section, block in re.findall(r"^## (.+?)\n.*?```sh\n(.*?)```", text, re.M | re.S):
        out[section] = [ln for ln in block.splitlines() if ln.strip()]
    return out


def _ports_as_n(text: str) -> str:
    return re.sub(r"\b\d{4,5}\b", "N", text)


def _processes_naming(path: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmdline:
                found.append(cmdline)
    return found


def test_the_example_script_runs_the_readme_commands(tmp_path: Path) -> None:
    p = subprocess.run([str(EXAMPLE / "run.sh")], capture_output=True, text=True, timeout=180,
                       cwd=tmp_path,
                       env={"PATH": f"{BIN_DIR}:/usr/sbin:/usr/bin:/sbin:/bin",
                            "TMPDIR": str(tmp_path), "HOME": str(tmp_path),
                            "LANG": "C.UTF-8"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout
    assert re.search(r"^ Ada\s+\| 1250000\.00$", out, re.M), out
    assert re.search(r"^ Grace\s+\|\s+73\.50$", out, re.M), out
    assert "(2 rows)" in out
    # what ran is exactly what the README tells each party to type (ports aside)
    ran = _ports_as_n(out)
    commands = _readme_commands()
    assert set(commands) == {"The project's admin (once)", "Bank Corp (three commands)",
                             "Analysis Corp (two commands)"}
    assert len([c for c in commands["Bank Corp (three commands)"]
                if c.startswith("truststack")]) == 3
    assert len([c for c in commands["Analysis Corp (two commands)"]
                if c.startswith("truststack")]) == 2
    for section, lines in commands.items():
        who = {"The": "project", "Bank": "bank", "Analysis": "analysis"}[section.split()[0]]
        for line in lines:
            assert f"[{who}] $ {_ports_as_n(line)}" in ran, (line, out)
    # the outlet moved bytes both ways; the project hosts relay bank, live
    outlet = re.search(r"^outlet\t127\.0\.0\.1:(\d+)\t\d+\t(\d+)\t(\d+)$", out, re.M)
    assert outlet is not None and int(outlet[2]) > 0 and int(outlet[3]) > 0, out
    assert re.search(r"^bank\thosted\tforward_to_bank\tlive\tI[0-9a-f]{64}$", out, re.M)
    # nothing left: no node process, no work directory, PostgreSQL stopped
    assert _processes_naming(tmp_path) == []
    assert not list(tmp_path.glob("truststack-postgres-portal-*"))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", int(outlet[1]))) != 0, "PostgreSQL still runs"
