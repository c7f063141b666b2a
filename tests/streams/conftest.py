"""A real Kafka-protocol broker (Tansu) for the stream tests, started once per session and
always stopped; each test uses topics of its own (a unique prefix)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.kafka import Broker, start_broker

_prefixes = itertools.count(int(time.time() * 1000) % 1_000_000)


def unique_prefix() -> str:
    return f"t{next(_prefixes)}-"


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    b = start_broker()
    try:
        yield b
    finally:
        b.stop()
