"""Durations as users write them: ``30s``, ``10m``, ``1h``, ``7d`` (and ``500ms``, bare seconds).

Only ASCII digits count (``٣d`` is refused, as are ``1e9``, ``inf`` and negative values), and a
duration is at most :data:`MAX_DURATION` (a thousand years), so every result fits the 64-bit
times the toolkit encodes.
"""

from __future__ import annotations

import math
import re

from trust.errors import UsageError

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RE = re.compile(r"^\s*([0-9]{1,20}(?:\.[0-9]{1,9})?)\s*(ms|s|m|h|d|w)?\s*$", re.ASCII)

MAX_DURATION = 1000 * 365 * 86400
"""A thousand years of 365 days, in seconds: the longest duration any option accepts."""

_HINT = "use e.g. 30s, 10m, 1h, 7d"


def _shown(text: object) -> str:
    s = str(text)
    return repr(s[:40] + "..." if len(s) > 40 else s)


def parse_duration(text: str | int | float, *, allow_zero: bool = True,
                   maximum: float = MAX_DURATION) -> float:
    """Seconds in ``text``; a :class:`UsageError` names a malformed, negative, zero (unless
    ``allow_zero``) or too long (over ``maximum`` seconds) duration."""
    if isinstance(text, bool):
        raise UsageError(f"invalid duration {text!r} ({_HINT})")
    if isinstance(text, (int, float)):
        if isinstance(text, float) and not math.isfinite(text):
            raise UsageError(f"invalid duration {text!r} ({_HINT})")
        if text < 0:
            raise UsageError(f"invalid duration {text!r}: must not be negative")
        seconds = float(text)
    else:
        m = _RE.match(str(text))
        if not m:
            if str(text).strip().startswith("-"):
                raise UsageError(f"invalid duration {_shown(text)}: must not be negative")
            raise UsageError(f"invalid duration {_shown(text)} ({_HINT})")
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds > maximum:
        raise UsageError(f"duration {_shown(text)} is too long (at most {_human(maximum)})")
    if seconds == 0 and not allow_zero:
        raise UsageError(f"duration {_shown(text)} must be more than zero")
    return seconds


def _human(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"
