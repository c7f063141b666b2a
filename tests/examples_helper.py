"""Running an ``examples/`` script as a reader would, and checking what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, tmp_path: Path, needles: list[str], timeout: float = 60) -> str:
    """Run ``examples/<name>`` in ``tmp_path`` with a fresh home; assert it succeeds, prints
    every needle and no traceback; return its output."""
    p = subprocess.run([sys.executable, str(ROOT / "examples" / name)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=timeout,
                       env={"TRUSTSTACK_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    for needle in needles:
        assert needle in p.stdout, (needle, p.stdout)
    assert "Traceback" not in p.stderr
    return p.stdout
