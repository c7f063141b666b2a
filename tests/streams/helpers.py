"""Running the stream tests' coroutines (the suite uses plain asyncio, no plugin)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any


def aio(timeout: float = 30.0) -> Callable[[Callable[..., Coroutine[Any, Any, None]]],
                                           Callable[..., None]]:
    """Run the decorated ``async def`` test in a fresh event loop, failing after ``timeout``."""
    def wrap(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
        @functools.wraps(fn)
        def test(*args: Any, **kwargs: Any) -> None:
            asyncio.run(asyncio.wait_for(fn(*args, **kwargs), timeout))
        return test
    return wrap
