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


_active: list[object] = []  # the running spinner, if any: a nested step keeps it going


@contextlib.contextmanager
def spinner(text: str, *, stream: TextIO | None = None) -> Iterator[None]:
    """Show ``text`` with a spinner on ``stream`` (default: stderr) while the block runs, and
    clear it afterwards; do nothing unless the stream is a terminal. Standard output is left
    alone (it may be piped while stderr is a terminal); a step inside another keeps the outer
    spinner."""
    out = sys.stderr if stream is None else stream
    if _active or not interactive(out):
        yield
        return
    from rich.console import Console
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text

    console = Console(file=out, highlight=False)
    live = Live(Spinner("dots", text=Text(text)), console=console, transient=True,
                refresh_per_second=12.5, redirect_stdout=False, redirect_stderr=True)
    _active.append(live)
    try:
        with live:
            yield
    finally:
        _active.pop()


def install() -> None:
    """Use :func:`spinner` for the slow steps of this process (:func:`trust.progress.set_progress`)."""
    from trust.progress import set_progress

    set_progress(spinner)
