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


def open_sockets() -> frozenset[str]:
    """The sockets this process has open (``socket:[inode]``). Compare sets, not counts:
    ``open_sockets() <= before`` (nothing opened since is left open) holds when a socket of an
    earlier test in the same worker is closed meanwhile (a count went from 5 to 4 in one run)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return frozenset(found)
