"""The services depend on repository Protocols only: nothing in trust/identities/ or
trust/credentials/ imports trust.storage (the composition roots pass implementations in)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p for d in ("identities", "credentials") for p in (ROOT / "trust" / d).glob("*.py"))


def _imports(path: Path) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: str(p.relative_to(ROOT)))
def test_services_do_not_import_storage(path: Path) -> None:
    bad = [m for m in _imports(path) if m == "trust.storage" or m.startswith("trust.storage.")
           or m == "trust.services"]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_check_sees_imports() -> None:
    assert "trust.storage.sql" in _imports(ROOT / "trust" / "storage" / "identities.py")
