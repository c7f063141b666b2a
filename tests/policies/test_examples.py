"""Every examples/policy_*.py runs (each asserts its own results) and prints what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "policy_quickstart.py": ["admin in prod: allowed", "guest: denied",
                             'subject.role is "guest", not "admin"', "web in eu: allowed"],
    "policy_store.py": ["member -> web: allowed", "member -> billing: denied",
                        "after reopening, billing: (and subject.has_credential"],
    "policy_typed_attributes.py": ["untyped result: None", "schema error: attribute 'clearance'",
                                   "dropped: ('subject.identifier', 'subject.has_credential')"],
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in (ROOT / "examples").glob("policy_*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    for needle in EXPECTED[name]:
        assert needle in p.stdout, (needle, p.stdout)
