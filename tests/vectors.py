"""Access to the Ockam vectors kept in the repository (``tests/data/ockam-public.json``).

Where they come from is written in ``tests/data/README.md``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent / "data" / "ockam-public.json"


@cache
def vectors() -> list[dict[str, Any]]:
    return json.loads(VECTORS.read_text())


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [v for v in vectors() if v["kind"] == kind]


def by_name(name: str) -> dict[str, Any]:
    return next(v for v in vectors() if v["name"] == name)
