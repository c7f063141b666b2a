"""examples/streams.py runs and tells what happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_streams_example_runs(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(ROOT / "examples" / "streams.py")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60,
                       env={"TRUSTSTACK_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    for needle in ["channel over streams open, hub sees the sensor: True",
                   "sensor pushed 1000 readings while the hub was offline",
                   "hub caught up: True (1000 readings, each once)",
                   "plaintext in them: False"]:
        assert needle in p.stdout, (needle, p.stdout)
    assert "Traceback" not in p.stderr
