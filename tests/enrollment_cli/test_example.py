"""examples/enrollment.py runs and tells what happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_enrollment_example_runs(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(ROOT / "examples" / "enrollment.py")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60,
                       env={"TRUSTSTACK_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin",
                            "TMPDIR": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    for needle in ["member's credential attributes: {'role': 'db'}",
                   "reused ticket refused: TicketUsedError", "member revoked: True",
                   "audit: ticket.create, ticket.redeem, member.delete"]:
        assert needle in p.stdout, (needle, p.stdout)
    assert "Traceback" not in p.stderr
    assert not list(tmp_path.glob("truststack-enrollment-*")), "the example left its home"
