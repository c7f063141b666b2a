"""A hook for progress feedback around slow steps (HSM and KMS calls take seconds).

Library code wraps a slow step in ``with progress("vault hsm (pkcs11): signing"):``; by default
that does nothing. The CLI installs a spinner (:mod:`trust.cli.progress`) with
:func:`set_progress`; a program can install its own. This module imports nothing heavy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

__all__ = ["Progress", "enabled", "progress", "set_progress"]

Progress = Callable[[str], AbstractContextManager[object]]

_factory: Progress | None = None


def set_progress(factory: Progress | None) -> None:
    """Install ``factory`` (``factory(text)`` is a context manager around each slow step), or
    remove it with ``None``."""
    global _factory
    _factory = factory


def enabled() -> bool:
    return _factory is not None


def progress(text: str) -> AbstractContextManager[object]:
    """The installed progress feedback for one slow step (nothing when none is installed)."""
    return _factory(text) if _factory is not None else contextlib.nullcontext()
