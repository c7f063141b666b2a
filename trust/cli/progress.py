"""Feedback while a slow command waits (an HSM or a KMS takes seconds): a spinner on stderr when
it is a terminal, nothing at all when it is piped or redirected, so scripts see clean output.

``rich`` is imported only when a spinner is actually shown (the CLI starts fast).

>>> with spinner("vault hsm (pkcs11): signing"):   # doctest: +SKIP
...     do_the_slow_thing()
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO

__all__ = ["install", "interactive", "spinner"]


def interactive(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: stderr) is a terminal that can show a spinner."""
    out = sys.stderr if stream is None else stream
    try:
        tty = out.isatty()
    except (AttributeError, ValueError, OSError):
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


@contextlib.contextmanager
def spinner(text: str, *, stream: TextIO | None = None) -> Iterator[None]:
    """Show ``text`` with a spinner on ``stream`` (default: stderr) while the block runs, and
    clear it afterwards; do nothing unless the stream is a terminal."""
    out = sys.stderr if stream is None else stream
    if not interactive(out):
        yield
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=out, highlight=False)
    with console.status(escape(text), spinner="dots"):
        yield


def install() -> None:
    """Use :func:`spinner` for the slow steps of this process (:func:`trust.progress.set_progress`)."""
    from trust.progress import set_progress

    set_progress(spinner)
