"""The identity example scripts and the Python blocks of docs/identities.md run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("script", sorted((ROOT / "examples").glob("identities_*.py")),
                         ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert p.returncode == 0, p.stderr


def test_docs_python_blocks_run(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "identities.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        p = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60)
        assert p.returncode == 0, block + p.stderr
