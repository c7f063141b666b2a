"""``async def`` tests here run in a fresh event loop each (no plugin needed); databases the
test opened through :func:`closing` are closed in that loop afterwards (a PostgreSQL database
belongs to the loop that opened it)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

_TO_CLOSE: list[Any] = []


def closing(db: Any) -> Any:
    """Close ``db`` (anything with ``async close()``) at the end of the running test."""
    _TO_CLOSE.append(db)
    return db


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    args = {k: pyfuncitem.funcargs[k] for k in pyfuncitem._fixtureinfo.argnames}

    async def main() -> None:
        try:
            await fn(**args)
        finally:
            while _TO_CLOSE:
                await _TO_CLOSE.pop().close()

    asyncio.run(main())
    return True
