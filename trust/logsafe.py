"""Safe logging of untrusted text: escaping and rate limiting.

* :func:`safe_text` turns anything (bytes from the wire, a peer's text, an address) into one
  printable line: control characters, non-printable characters and backslashes are escaped as
  Python's ``repr`` does (``\\n``, ``\\x1b``, ``\\u202e``), so a peer cannot forge log lines or
  send terminal escapes. Long values are cut (with a note of how much was cut).
* :class:`RateLimiter` lets through at most ``burst`` events per ``key`` and ``interval``; the
  first event over the limit is reported as such (``-1``), the others are only counted, and
  the next one let through reports how many were suppressed. :func:`warn_limited` uses one
  per logger to rate-limit repeated warnings: ``burst`` lines per key and interval, one line
  saying that more are suppressed, then (in a later interval) the count of suppressed ones.

>>> safe_text("ok\\nCRITICAL fake line\\x1b[2J")
'ok\\\\nCRITICAL fake line\\\\x1b[2J'
>>> safe_text(b"0#echo\\xff")
'0#echo\\\\xff'
>>> limiter = RateLimiter(burst=2, interval=60.0, clock=lambda: 0.0)
>>> [limiter.allow("k") for _ in range(5)]
[0, 0, -1, None, None]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = ["DEFAULT_LIMIT", "RateLimiter", "safe_text", "warn_limited"]

DEFAULT_LIMIT: Final = 200
"""Characters of an untrusted value kept in a log line (the rest is cut)."""


def _escape_char(c: str) -> str:
    r = repr(c)[1:-1]
    return r if r != c or c == "\\" else c


_TABLE: Final = {i: _escape_char(chr(i)) for i in range(0x100) if not chr(i).isprintable()
                 or chr(i) == "\\"}


def _escape_other(c: str) -> str:
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    return repr(c)[1:-1]


def safe_text(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as one printable line: bytes are decoded as UTF-8 (invalid bytes shown as
    ``\\xNN``), control and non-printable characters escaped, at most ``limit`` characters."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value[: limit * 4]).decode("utf-8", "surrogateescape")
        cut = len(value) > limit * 4
    else:
        text = value if isinstance(value, str) else str(value)
        cut = False
    if len(text) > limit:
        extra = len(text) - limit
        text = text[:limit]
        cut = True
    else:
        extra = 0
    if not text.isprintable() or "\\" in text:
        text = text.translate(_TABLE)
        if not text.isprintable():  # non-printable characters above U+00FF
            text = "".join(c if c.isprintable() else _escape_other(c) for c in text)
    if cut:
        text += f"…(+{extra} chars)" if extra else "…(cut)"
    return text


class RateLimiter:
    """At most ``burst`` events per key in each ``interval`` seconds.

    :meth:`allow` returns ``None`` for a suppressed event (``-1`` for the first one of a
    window), else how many events of that key were suppressed since the last one allowed
    (usually 0). At most ``max_keys`` keys are
    tracked (the oldest window is forgotten first), so the limiter's memory is bounded.
    """

    __slots__ = ("_clock", "_windows", "burst", "interval", "max_keys")

    def __init__(self, burst: int = 10, interval: float = 60.0, *, max_keys: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.interval = interval
        self.max_keys = max_keys
        self._clock = clock
        self._windows: dict[Any, list[float | int]] = {}  # key -> [window start, count, suppressed]

    def __len__(self) -> int:
        """Keys tracked (at most ``max_keys``)."""
        return len(self._windows)

    def allow(self, key: Any) -> int | None:
        now = self._clock()
        w = self._windows.get(key)
        if w is None or now - w[0] >= self.interval:
            suppressed = int(w[2]) if w is not None else 0
            if w is None and len(self._windows) >= self.max_keys:
                del self._windows[next(iter(self._windows))]
            self._windows[key] = [now, 1, 0]
            return suppressed
        if w[1] < self.burst:
            w[1] += 1
            suppressed, w[2] = int(w[2]), 0
            return suppressed
        w[2] += 1
        return -1 if w[2] == 1 else None


_LIMITERS: dict[str, RateLimiter] = {}


def warn_limited(logger: logging.Logger, key: str, msg: str, *args: Any,
                 burst: int = 10, interval: float = 60.0, level: int = logging.WARNING,
                 exc_info: bool = False) -> None:
    """``logger.log(level, msg, *args)``, at most ``burst`` times per ``key`` and ``interval``
    (per logger), then one line saying that more are suppressed; the first line after a
    suppression says how many were. Pass untrusted values through :func:`safe_text` first."""
    if not logger.isEnabledFor(level):
        return
    limiter = _LIMITERS.get(logger.name)
    if limiter is None:
        limiter = _LIMITERS[logger.name] = RateLimiter(burst, interval)
    suppressed = limiter.allow(key)
    if suppressed is None:
        return
    if suppressed < 0:
        logger.log(level, msg + " (more like this suppressed for up to %gs)", *args,
                   limiter.interval)
    elif suppressed:
        logger.log(level, msg + " (%d similar messages suppressed)", *args, suppressed,
                   exc_info=exc_info)
    else:
        logger.log(level, msg, *args, exc_info=exc_info)
