"""Fixtures of the portal tests: a threaded echo server on 127.0.0.1 for background nodes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.echo import echo_server


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    with echo_server() as port:
        yield port
