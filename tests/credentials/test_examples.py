"""The credential example scripts and the Python blocks of docs/credentials.md run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("credentials_*.py"))


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"credentials_basic.py", "credentials_selective.py"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120, env={"PATH": "/usr/bin:/bin", "TRUSTSTACK_HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    assert "refused" in p.stdout


def test_docs_python_blocks_run(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "credentials.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        p = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60)
        assert p.returncode == 0, block + p.stderr


def test_cli_doc_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("\n## credential\n", 1)[1].split("\n## ", 1)[0]
    [script] = re.findall(r"```sh\n(.*?)```", section, re.S)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "TRUSTSTACK_HOME": str(tmp_path / "home")}
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "team: blue" in p.stdout and "role" not in p.stdout.split("Attributes:")[-1]
