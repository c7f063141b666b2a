"""docs/python.md runs as written: its Python blocks, in order, in one fresh process, print what
the page says they print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "python.md"

EXPECTED = [
    re.compile(r"alice I[0-9a-f]{8}…"),
    re.compile(r"False True"),
    re.compile(r"3600"),
    re.compile(r"True"),
    re.compile(r"\{b'role': b'admin', b'team': b'blue'\}"),
    re.compile(r"\{'role': 'admin', 'team': 'blue'\}"),
    re.compile(r"True"),
    re.compile(r"False"),
    re.compile(r"b'hello'"),
]


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(), flags=re.S | re.M)


def test_python_walkthrough_runs_in_order(tmp_path: Path) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5
    program = "\n".join(f"exec(compile({b!r}, 'docs/python.md block {i}', 'exec'))"
                        for i, b in enumerate(blocks))
    env = {**os.environ, "TRUSTSTACK_HOME": str(tmp_path / "unused-home")}
    p = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == len(EXPECTED), p.stdout
    for line, pattern in zip(lines, EXPECTED, strict=True):
        assert pattern.fullmatch(line), (line, pattern.pattern)
    # the walkthrough used only its own throwaway home, and removed it
    assert not (tmp_path / "unused-home").exists()
