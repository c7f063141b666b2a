"""Shared pieces of the CLI: output selection, error handling, value reading, durations.

Conventions (``docs/cli.md``): ``--output plain|json`` on every command; errors are one line on
stderr with exit 1 (usage errors exit 2); ``@PATH`` in place of a long value reads it from a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from policies.errors import PolicyError
from trust.durations import parse_duration
from trust.errors import TrustError, UsageError
from vaults.errors import VaultError

__all__ = [
    "STATE",
    "emit",
    "output_option",
    "parse_duration",
    "read_value",
    "run",
    "run_cli",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _State:
    verbose: bool = False


STATE = _State()

OUTPUT_CHOICE = click.Choice(["plain", "json"])


def output_option(f: F) -> F:
    """Add ``--output plain|json`` (passed to the command as ``output``)."""
    return click.option(
        "--output",
        type=OUTPUT_CHOICE,
        default="plain",
        show_default=True,
        help="Output format.",
    )(f)


def emit(output: str, data: Any, plain: str | Callable[[], str] | None = None) -> None:
    """Print ``data`` as JSON, or the plain text (default: ``data`` itself when it is a str)."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False))
        return
    if plain is None:
        text = data if isinstance(data, str) else json.dumps(data, indent=2)
    else:
        text = plain() if callable(plain) else plain
    if text:
        click.echo(text)


def read_value(value: str | None, file: str | None = None, *, what: str = "value") -> str:
    """Resolve a long CLI value: ``@PATH`` or ``--file PATH`` reads a file, ``-`` reads stdin."""
    if value is not None and file is not None:
        raise UsageError(f"give the {what} either inline or with --file, not both")
    if file is not None:
        return _read_file(file, what)
    if value is None:
        raise UsageError(f"missing {what} (give it inline, as @PATH, or with --file PATH)")
    if value == "-":
        return sys.stdin.read().strip()
    if value.startswith("@"):
        return _read_file(value[1:], what)
    return value.strip()


def _read_file(path: str, what: str) -> str:
    if path == "-":
        return sys.stdin.read().strip()
    try:
        return Path(path).read_text().strip()
    except OSError as e:
        raise UsageError(f"cannot read the {what} from {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the {what} file {path} is not text") from None


def run(coro: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
    """Run a coroutine from a synchronous click command."""

    async def _wrap() -> T:
        return await coro

    return asyncio.run(_wrap())


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(text.split())


def run_cli(group: click.Command, args: list[str]) -> int:
    """Invoke ``group`` and map errors to (one line on stderr, exit code)."""
    verbose = "--verbose" in args
    try:
        rv = group.main(args=args, prog_name="truststack", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 1
    except UsageError as e:
        _report(e, verbose)
        return 2
    except (TrustError, VaultError, PolicyError) as e:
        _report(e, verbose)
        return 1
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as e:
        if verbose:
            traceback.print_exc()
        click.echo(f"error: internal error ({type(e).__name__}): {_one_line(e)}", err=True)
        return 1


def _report(e: BaseException, verbose: bool) -> None:
    if verbose or STATE.verbose:
        traceback.print_exc()
    click.echo(f"error: {_one_line(e)}", err=True)
