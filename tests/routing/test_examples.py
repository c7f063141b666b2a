"""The routing example scripts and the Python blocks of docs/routing.md and docs/node.md run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

EXPECTED = {
    "routing_local.py": ["b'ping'", "b'HI'", "0#hop => 0#echo"],
    "routing_multi_hop.py": ["b'hello through B'", "without the hop: ReceiveTimeoutError",
                             "refused by B's flow control: 1"],
    "routing_wire.py": ["0000001983818200466563686f657281820043617070460548656c6c6f",
                        "0#echoer | 0#app | Hello"],
}


@pytest.mark.parametrize("script", sorted((ROOT / "examples").glob("routing_*.py")),
                         ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60, env={"TRUSTSTACK_HOME": str(tmp_path / "h"),
                                                      "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    for needle in EXPECTED[script.name]:
        assert needle in p.stdout, (needle, p.stdout)


@pytest.mark.parametrize("doc", ["routing.md", "node.md"])
def test_docs_python_blocks_run(doc: str, tmp_path: Path) -> None:
    text = (ROOT / "docs" / doc).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        p = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60, env={"TRUSTSTACK_HOME": str(tmp_path / "h"),
                                                          "PATH": "/usr/bin:/bin"})
        assert p.returncode == 0, block + p.stderr
