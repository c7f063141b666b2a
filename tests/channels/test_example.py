"""examples/secure_channel.py runs and tells what happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_secure_channel_example_runs(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(ROOT / "examples" / "secure_channel.py")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60,
                       env={"TRUSTSTACK_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    for needle in ["channel open, peer verified: True",
                   "bob's echo replied through the channel: b'hello bob'",
                   "bob sees alice as the peer: True", "wrong peer refused: UntrustedError",
                   "after close: alice has 0 channels, bob has 0"]:
        assert needle in p.stdout, (needle, p.stdout)
    assert "Traceback" not in p.stderr
