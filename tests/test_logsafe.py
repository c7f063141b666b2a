"""Untrusted text in logs: escaped into one printable line; repeated warnings rate-limited."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust.logsafe import RateLimiter, safe_text, warn_limited


@given(st.one_of(st.text(), st.binary()))
def test_safe_text_is_one_printable_line(value: str | bytes) -> None:
    out = safe_text(value)
    assert out.isprintable() and "\n" not in out and "\r" not in out
    assert len(out) <= 200 + 20


def test_safe_text_examples() -> None:
    assert safe_text("plain 0#echo 127.0.0.1:4000") == "plain 0#echo 127.0.0.1:4000"
    assert safe_text("a\nCRITICAL x\x1b[2J\u202e") == "a\\nCRITICAL x\\x1b[2J\\u202e"
    assert safe_text(b"\xff\x00ok\\") == "\\xff\\x00ok\\\\"  # a backslash cannot fake an escape
    assert safe_text("héllo wörld") == "héllo wörld"
    assert safe_text("x" * 500).endswith("…(+300 chars)")


def test_rate_limiter_counts_what_it_suppresses() -> None:
    now = [0.0]
    limiter = RateLimiter(burst=3, interval=10.0, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(6)] == [0, 0, 0, -1, None, None]
    assert limiter.allow("b") == 0  # keys are independent
    now[0] = 10.0
    assert limiter.allow("a") == 3  # the next window reports the suppressed ones
    bounded = RateLimiter(burst=1, max_keys=4, clock=lambda: 0.0)
    for i in range(100):
        bounded.allow(i)
    assert len(bounded) <= 4


def test_warn_limited_floods_become_a_few_lines(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("trust.test_logsafe")
    with caplog.at_level(logging.WARNING, logger="trust.test_logsafe"):
        for i in range(10_000):
            warn_limited(logger, "k", "message %d from %s", i, safe_text("peer\n"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 11
    assert lines[0] == "message 0 from peer\\n"
    assert "suppressed" in lines[-1]
