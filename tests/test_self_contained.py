"""The repository needs nothing beside it: a fresh clone collects and runs its vector tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A path that leaves the repository: the spec folder beside it, or a machine-specific root.
_OUTSIDE = re.compile(r"\.\./shared|[\"']shared[\"']\s*[/,)]|/work/")
_SCANNED = ("tests", "bench", "trust", "vaults", "policies", "examples", "docs", "README.md",
            "pyproject.toml", ".ci")


def _tracked_files() -> list[Path]:
    p = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    return [ROOT / line for line in p.stdout.splitlines() if line]


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(_SCANNED) or path.suffix not in {".py", ".md", ".toml", ".json", ""}:
            continue
        if rel == "tests/test_self_contained.py" or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if _OUTSIDE.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_a_copy_with_nothing_beside_it_collects_and_runs_the_vector_tests(tmp_path: Path) -> None:
    copy = tmp_path / "clone" / "truststack"
    for path in _tracked_files():
        rel = path.relative_to(ROOT)
        if not path.is_file() or rel.parts[0] in {".venv", ".git"}:
            continue
        target = copy / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    assert not (copy.parent / "shared").exists()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--collect-only"], cwd=copy, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "error" not in p.stdout.lower().splitlines()[-1], p.stdout[-2000:]
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/identities/test_vectors.py", "tests/credentials/test_vectors.py"],
                       cwd=copy, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    # the copy's own modules ran, not this checkout's
    assert "passed" in p.stdout.splitlines()[-1]
