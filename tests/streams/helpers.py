"""Running the stream tests' coroutines (the suite uses plain asyncio, no plugin); a party's
channel states in a file of its own."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from trust.storage.sql import database
from trust.storage.stream_channels import SqlChannelStates


def aio(timeout: float = 30.0) -> Callable[[Callable[..., Coroutine[Any, Any, None]]],
                                           Callable[..., None]]:
    """Run the decorated ``async def`` test in a fresh event loop, failing after ``timeout``."""
    def wrap(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
        @functools.wraps(fn)
        def test(*args: Any, **kwargs: Any) -> None:
            asyncio.run(asyncio.wait_for(fn(*args, **kwargs), timeout))
        return test
    return wrap


def channel_states(directory: Path, name: str) -> SqlChannelStates:
    """Channel states in ``directory/name.sqlite`` (one file per party)."""
    return SqlChannelStates(database(f"sqlite:///{directory / f'{name}.sqlite'}"))
