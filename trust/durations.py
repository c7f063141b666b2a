"""Durations as users write them: ``30s``, ``10m``, ``1h``, ``7d`` (and ``500ms``, bare seconds)."""

from __future__ import annotations

import re

from trust.errors import UsageError

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; a :class:`UsageError` names a malformed duration."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise UsageError(f"invalid duration {text!r}: must not be negative")
        return float(text)
    m = _RE.match(str(text))
    if not m:
        raise UsageError(f"invalid duration {text!r} (use e.g. 30s, 10m, 1h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]
