"""Helpers for asyncio tests (no pytest-asyncio here): run a coroutine on a chosen loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOOPS = ["asyncio", "uvloop"]


def arun(coro: Coroutine[Any, Any, T], *, timeout: float = 60.0, loop: str = "asyncio") -> T:
    """Run ``coro`` with a timeout on a fresh event loop (``asyncio`` or ``uvloop``)."""

    async def wrapped() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    if loop == "uvloop":
        import uvloop

        return uvloop.run(wrapped())
    return asyncio.run(wrapped())


def other_tasks() -> set[asyncio.Task[Any]]:
    """Unfinished tasks of the running loop other than the current one."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


def open_sockets() -> int:
    """How many socket file descriptors this process has open."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n
