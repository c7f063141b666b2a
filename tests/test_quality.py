"""Project-wide checks: ruff and mypy are clean, the CLI starts fast, heavy backends load lazily."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import TRUSTSTACK

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean() -> None:
    p = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_clean() -> None:
    """The packages type-check with the configuration in pyproject.toml (about 5 s cold)."""
    p = subprocess.run([sys.executable, "-m", "mypy", "trust", "vaults", "policies"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "Success: no issues found" in p.stdout


def test_help_is_fast_and_lists_nouns() -> None:
    best = 10.0
    for _ in range(3):
        t = time.perf_counter()
        p = subprocess.run([TRUSTSTACK, "--help"], capture_output=True, text=True)
        best = min(best, time.perf_counter() - t)
        assert p.returncode == 0
    assert "identity" in p.stdout and "Examples:" in p.stdout
    assert best < 0.5, f"truststack --help took {best:.3f}s"


def test_heavy_backends_not_imported_at_startup() -> None:
    code = (
        "import sys, trust.cli.main as m\n"
        "m.cli.main(['--help'], standalone_mode=False)\n"
        "heavy = [n for n in ('boto3', 'botocore', 'google', 'grpc', 'pkcs11', 'rich', 'psycopg')"
        " if n in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "HEAVY=", p.stdout


def test_unknown_command_is_a_usage_error() -> None:
    p = subprocess.run([TRUSTSTACK, "no-such-noun"], capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr


def test_version() -> None:
    p = subprocess.run([TRUSTSTACK, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and "truststack" in p.stdout
