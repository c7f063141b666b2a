"""Every repository test runs against three engines: ``memory`` (SQLite in memory), ``sqlite``
(a file) and ``postgresql`` (a fresh database on the session's real server,
tests/fixtures/postgres.py). A test's coroutines all run in one event loop (``run``), as a
PostgreSQL storage belongs to the loop that opened it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from trust.storage import Storage, open_storage

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]

ENGINES = ["memory", "sqlite", "postgresql"]
SHARED = ["sqlite", "postgresql"]
"""The engines a second connection (another process) can share: parametrize ``engine`` with it."""


@pytest.fixture
def run() -> Iterator[Run[Any]]:
    """Runs a coroutine in the test's one event loop."""
    with asyncio.Runner() as runner:
        yield runner.run


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def engine_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh database of ``engine``."""
    if engine == "memory":
        return "sqlite:///:memory:"
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh database of ``engine``."""
    return engine_url(engine, tmp_path, request)


@pytest.fixture
def storage(url: str, run: Run[Any]) -> Iterator[Storage]:
    """An open storage over ``url``, closed after the test."""
    s = open_storage(url)
    run(s.open())
    try:
        yield s
    finally:
        run(s.close())
