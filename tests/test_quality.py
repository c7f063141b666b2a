"""Project-wide checks: ruff and mypy are clean, the CLI starts fast, heavy backends load lazily."""

from __future__ import annotations

import os
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
    """Startup work, measured as the child's CPU time (user + system): the suite runs on every
    core at once, so wall-clock time would measure the other tests. Best of five runs."""
    import resource

    best_cpu = best_wall = 10.0
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run([TRUSTSTACK, "--help"], capture_output=True, text=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
        assert p.returncode == 0
    assert "identity" in p.stdout and "Examples:" in p.stdout
    assert best_cpu < 0.4, f"truststack --help used {best_cpu:.3f}s of CPU"
    assert best_wall < 3.0, f"truststack --help took {best_wall:.3f}s"


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



def test_node_file_commands_start_without_the_runtime(tmp_path: Path) -> None:
    """Commands that read a node's files or send it one control request (most of what users
    type) do not import the node runtime, asyncio or the credential verifiers: each would add
    30-70 ms to every such command's start."""
    code = (
        "import sys, trust.cli.main as m\n"
        "for args in (['node', 'list'], ['node', 'stop', 'nope'], ['tcp-inlet', 'list', '--at',"
        " 'nope'], ['relay', 'list', '--at', 'nope'], ['relay', 'create', 'r', '--to', 'nope',"
        " '--at', '/node/x'], ['tcp-inlet', 'create', '--at', 'nope', '--from', '127.0.0.1:0',"
        " '--via', 'r']):\n"
        "    try:\n"
        "        m.cli.main(args, standalone_mode=False)\n"
        "    except Exception:\n"
        "        pass\n"
        "heavy = [n for n in ('asyncio', 'trust.node.node', 'trust.transports.tcp',"
        " 'trust.credentials.verification', 'cryptography') if n in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "TRUSTSTACK_HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "HEAVY=", p.stdout

# A capability the help, README or package metadata may name only once a command provides it.
_CLAIMS = {"secure channel": "secure-channel", "relay": "relay", "portal": "tcp-inlet",
           "stream": "stream", "enrol": "enroll"}


def test_help_readme_and_metadata_claim_only_what_exists() -> None:
    from trust.cli.main import NOUNS

    p = subprocess.run([TRUSTSTACK, "--help"], capture_output=True, text=True)
    meta = subprocess.run([sys.executable, "-c", "import importlib.metadata as m; "
                           "print(m.metadata('truststack')['Summary'])"],
                          capture_output=True, text=True).stdout
    intro = (ROOT / "README.md").read_text().split("Optional extras", 1)[0]
    for where, text in (("--help", p.stdout), ("pyproject", meta)):
        for claim, noun in _CLAIMS.items():
            if noun not in NOUNS:
                assert claim not in text.lower(), f"{where} names {claim!r}, which no command provides"
    for claim, noun in _CLAIMS.items():
        if noun not in NOUNS and claim in intro.lower():
            # the README may name what is missing only to say so
            sentence = next(s for s in intro.replace("\n", " ").split(". ") if claim in s.lower())
            assert "not" in sentence, f"README claims {claim!r}: {sentence!r}"


def test_unknown_command_is_a_usage_error() -> None:
    p = subprocess.run([TRUSTSTACK, "no-such-noun"], capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr


def test_version() -> None:
    p = subprocess.run([TRUSTSTACK, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and "truststack" in p.stdout
