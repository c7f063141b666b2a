"""Shared pieces of the CLI: output selection, error handling, value reading, durations.

Conventions (``docs/cli.md``): ``--output plain|json`` on every command (before or after the
noun); errors are one line on stderr with exit 1 (usage errors exit 2); ``@PATH`` in place of a
long value reads it from a file. Plain output passes every untrusted string through
:func:`terminal_safe`; list commands print rows with :func:`emit_table`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import traceback
import unicodedata
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from policies.errors import PolicyError
from trust.durations import parse_duration
from trust.errors import TrustError, UsageError
from vaults.errors import VaultError
from vaults.safe_files import FileRefused, read_bounded_file

__all__ = [
    "CLI_PARAMETERS",
    "MAX_UNIX_TIME",
    "MAX_VALUE_FILE",
    "STATE",
    "UNIX_TIME",
    "AsciiInt",
    "CliNodeClient",
    "check_flag",
    "cli_usage_message",
    "emit",
    "emit_table",
    "iso_time",
    "output_option",
    "parse_duration",
    "read_bytes_file",
    "read_value",
    "run",
    "run_cli",
    "seconds_text",
    "terminal_safe",
    "write_bytes_file",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _State:
    verbose: bool = False
    output: str = "plain"


STATE = _State()
"""Options given before the noun (``truststack --verbose --output json identity list``)."""

OUTPUT_CHOICE = click.Choice(["plain", "json"])

MAX_VALUE_FILE = 16 * 1024 * 1024
"""The largest file ``@PATH`` / ``--file`` reads (16 MiB; objects are at most 1 MiB, 2 MiB as hex)."""


def _resolve_output(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    return value if value is not None else STATE.output


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        STATE.verbose = True


def output_option(f: F) -> F:
    """Add ``--output plain|json`` (passed to the command as ``output``; default: the value given
    before the noun, else ``plain``) and ``--verbose``, so both work after the noun too."""
    f = click.option("--verbose", is_flag=True, expose_value=False, callback=_set_verbose,
                     help="Show a traceback when the command fails.")(f)
    return click.option(
        "--output",
        type=OUTPUT_CHOICE,
        default=None,
        callback=_resolve_output,
        help="Output format: plain (default) or json.",
    )(f)


class AsciiInt(click.ParamType):
    """A whole number in ASCII digits within [``min``, ``max``]: no ``٣``, ``1_000``, ``1e3`` or
    60-digit values (click's ``int`` accepts the first two and any size)."""

    name = "integer"

    def __init__(self, min: int = 0, max: int = (1 << 63) - 1) -> None:
        self.min = min
        self.max = max

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            text = str(value).strip()
            if not re.fullmatch(r"-?[0-9]{1,20}", text, re.ASCII):
                shown = text if len(text) <= 30 else text[:30] + "..."
                self.fail(f"{shown!r} is not a whole number in ASCII digits", param, ctx)
            n = int(text)
        if not self.min <= n <= self.max:
            self.fail(f"{n} is not between {self.min} and {self.max}", param, ctx)
        return n


MAX_UNIX_TIME = 253_402_300_799
"""9999-12-31T23:59:59Z: the latest ``--time`` accepted."""

UNIX_TIME = AsciiInt(0, MAX_UNIX_TIME)
"""The click type of ``--time UNIX_SECONDS``."""


# -- untrusted text on a terminal -------------------------------------------------------------

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SAFE_RUN = re.compile(r"[ -\[\]-~]*")  # printable ASCII except the backslash


def _escape_char(c: str, backslash: bool = True) -> str:
    if c == "\\":
        return "\\\\" if backslash else c
    o = ord(c)
    if unicodedata.category(c) not in _UNSAFE_CATEGORIES:
        return c
    if o < 0x100:
        return f"\\x{o:02x}"
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape: argv, file names)
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def terminal_safe(text: object, *, backslash: bool = True) -> str:
    """``text`` (str, bytes or any value's ``str()``) made safe to print on a terminal as one
    line: control characters (C0 including TAB, CR and LF; DEL; C1 including CSI), format
    characters (bidi overrides and isolates, zero-width characters), line and paragraph
    separators, surrogates and unassigned code points are shown as ``\\xNN``, ``\\uNNNN`` or
    ``\\UNNNNNNNN``, and a backslash as two, so the output cannot move the cursor, set a
    terminal title, forge a line or a column, or reorder what follows. Bytes that are not
    UTF-8 (in bytes, or surrogate-escaped in a str) are shown as ``\\xNN``. Printable text,
    non-ASCII letters included, is unchanged. Use it for every string a peer or a file
    supplied (JSON output needs nothing: it is exact). ``backslash=False`` leaves backslashes
    alone (for messages that already hold ``repr()``s).
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        s = bytes(text).decode("utf-8", "surrogateescape")
    else:
        s = text if isinstance(text, str) else str(text)
    if _SAFE_RUN.fullmatch(s):
        return s
    return "".join(_escape_char(c, backslash) for c in s)


def seconds_text(value: Any, absent: str) -> str:
    """``90s`` for a number of seconds from a node's answer; ``absent`` for anything else."""
    return f"{value:g}s" if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else absent


def iso_time(ts: int | None) -> str:
    """A unix time as ``YYYY-MM-DDTHH:MM:SSZ`` (``-`` for None; the number if out of range)."""
    if ts is None:
        return "-"
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return str(ts)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (str, bytes)):
        return terminal_safe(value) if value != "" else "-"
    if isinstance(value, (int, float)):
        return str(value)
    return terminal_safe(json.dumps(value, separators=(",", ":")))


def emit_table(output: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *,
               formats: Mapping[str, Callable[[Any], str]] | None = None,
               escaped: Collection[str] = ()) -> None:
    """Print a list: JSON (the rows as they are) or plain, one line per row with the values of
    ``columns`` separated by tabs, without labels or header, so ``cut -f2`` works.

    Plain cells: None and "" print ``-``, booleans ``yes``/``no``, other values their text
    through :func:`terminal_safe` (so a value cannot add a column or a line); ``formats`` maps
    a column to a function that renders it (e.g. ``{"expires_at": iso_time}``), whose result is
    made terminal-safe as well. ``escaped`` names columns whose text holds escapes of its own
    (canonical policy text: ``\\u{1b}``, ``\\n``): their backslashes are printed as they are
    (anything else is made terminal-safe still), so the escapes are not escaped twice. An empty
    list prints nothing in plain mode and ``[]`` in JSON.
    """
    if output == "json":
        click.echo(json.dumps(list(rows), indent=2))
        return
    fmt = formats or {}
    for row in rows:
        cells = []
        for col in columns:
            value = row.get(col)
            if col in fmt:
                cells.append(terminal_safe(fmt[col](value), backslash=col not in escaped))
            elif col in escaped and isinstance(value, str) and value:
                cells.append(terminal_safe(value, backslash=False))
            else:
                cells.append(_cell(value))
        click.echo("\t".join(cells))


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
    """Resolve a long CLI value: ``@PATH`` or ``--file PATH`` reads a file, ``-`` reads stdin.

    A file must be a regular file (or ``-``) of at most :data:`MAX_VALUE_FILE` bytes of UTF-8
    text; anything else is a one-line :class:`UsageError`."""
    if value is not None and file is not None:
        raise UsageError(f"give the {what} either inline or with --file, not both")
    if file is not None:
        return _read_text(file, what)
    if value is None:
        raise UsageError(f"missing {what} (give it inline, as @PATH, or with --file PATH)")
    if value == "-":
        return _read_text("-", what)
    if value.startswith("@"):
        return _read_text(value[1:], what)
    if "\x00" in value:
        raise UsageError(f"the {what} contains a NUL character")
    return value.strip()


def _refused(e: FileRefused, what: str, shown: str) -> str:
    """The one-line error of a file named on the command line that was not read."""
    if e.reason == "directory":
        return f"cannot read the {what} from {shown}: it is a directory"
    if e.reason == "not_regular":
        return f"cannot read the {what} from {shown}: not a regular file"
    if e.reason == "too_large":
        return f"the {what} file {shown} is too large (over {MAX_VALUE_FILE // (1024 * 1024)} MiB)"
    return f"cannot read the {what} from {shown}: {e.detail or e.reason}"


def read_bytes_file(path: str, what: str = "file") -> bytes:
    """The bytes of ``path`` (``-``: stdin): a regular file of at most :data:`MAX_VALUE_FILE`
    bytes, read without following a FIFO or a device; a :class:`UsageError` otherwise."""
    shown = terminal_safe(path)
    if path == "-":
        data = sys.stdin.buffer.read(MAX_VALUE_FILE + 1)
    else:
        if not path or "\x00" in path:
            raise UsageError(f"cannot read the {what}: empty or invalid path")
        try:
            data = read_bounded_file(path, limit=MAX_VALUE_FILE, follow_symlinks=True)
        except FileRefused as e:
            raise UsageError(_refused(e, what, shown)) from None
    if len(data) > MAX_VALUE_FILE:
        raise UsageError(f"the {what} from {shown} is too large (over "
                         f"{MAX_VALUE_FILE // (1024 * 1024)} MiB)")
    return data


def _read_text(path: str, what: str) -> str:
    data = read_bytes_file(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the {what} file {terminal_safe(path)} is not UTF-8 text") from None
    if "\x00" in text:
        raise UsageError(f"the {what} file {terminal_safe(path)} contains a NUL character")
    return text.strip()


def write_bytes_file(path: str, data: bytes, what: str = "file") -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it); a missing
    directory, a directory in place of the file or any other OS error is a :class:`UsageError`
    and leaves nothing behind."""
    shown = terminal_safe(path)
    if not path or "\x00" in path:
        raise UsageError(f"cannot write the {what}: empty or invalid path")
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"cannot write the {what} to {shown}: it is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write the {what} to {shown}: no directory {terminal_safe(parent)}")
    tmp = parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write the {what} to {shown}: {e.strerror or e}") from None


CLI_PARAMETERS: dict[str, dict[str, str]] = {
    "relay.create": {"name": "NAME", "at": "--at", "authorized": "--authorized",
                     "timeout": "--timeout"},
    "relay.show": {"name": "NAME", "hosted": "--hosted/--created"},
    "relay.delete": {"name": "NAME", "hosted": "--hosted/--created"},
    "tcp_outlet.create": {"to": "--to", "from": "--from", "allow": "--allow",
                          "silence_timeout": "--silence-timeout"},
    "tcp_outlet.show": {"name": "NAME"},
    "tcp_outlet.delete": {"name": "NAME"},
    "tcp_inlet.create": {"from": "--from", "to": "--to", "via": "--via", "name": "--name",
                         "authorized": "--authorized", "allow": "--allow",
                         "keepalive": "--keepalive"},
    "tcp_inlet.show": {"name": "NAME"},
    "tcp_inlet.delete": {"name": "NAME"},
}
"""The command-line flag or argument of each control-method parameter a CLI command sends, by
method: a node's usage error about parameter ``'p'`` of the method names the flag instead
(``relay.create 'authorized' must be …`` → ``--authorized: must be …``); see
:func:`cli_usage_message`."""

_PARAMETER_ERROR = re.compile(r"(?:(?P<method>[a-z_]+\.[a-z_]+) )?'(?P<param>[a-z_]+)':? (?P<rest>.+)",
                              re.S)


def cli_usage_message(method: str, message: str) -> str:
    """A node's usage error for control method ``method`` (``M 'param' …`` or ``'param' …``)
    as the CLI shows it: naming the flag of :data:`CLI_PARAMETERS` (``--flag: …``); any other
    message unchanged."""
    m = _PARAMETER_ERROR.fullmatch(message)
    if m is None or m.group("method") not in (None, method):
        return message
    flag = CLI_PARAMETERS.get(method, {}).get(m.group("param"))
    return message if flag is None else f"{flag}: {m.group('rest')}"


def check_flag(flag: str, check: Callable[[Any], T], value: Any) -> T:
    """``check(value)``; its :class:`UsageError` names the flag (``--to: invalid TCP …``)."""
    try:
        return check(value)
    except UsageError as e:
        raise UsageError(f"{flag}: {e}") from None


class CliNodeClient:
    """A node's control client for a CLI command: as :class:`~trust.node.control_client.
    ControlClient`, but a usage error names the command's flag (:func:`cli_usage_message`);
    the control API's own error text is unchanged."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def request(self, method: str, params: dict[str, Any] | None = None, *,
                timeout: float = 30.0) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.client.request(method, params, timeout=timeout)
        except UsageError as e:
            shown = cli_usage_message(method, str(e))
            if shown == str(e):
                raise
            raise UsageError(shown) from e
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def node_client(node: str) -> CliNodeClient:
    """The control client of the running node ``node`` (imported when a command needs it, so
    ``truststack --help`` stays fast); :class:`~trust.node.errors.NodeNotRunningError` when
    it is not running."""
    from trust.node.control_client import ControlClient

    return CliNodeClient(ControlClient.for_node(node))


def run(coro: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
    """Run a coroutine from a synchronous click command."""

    import asyncio  # (here: importing it costs a command that does not need it ~50 ms)

    async def _wrap() -> T:
        return await coro

    return asyncio.run(_wrap())


MAX_ERROR_LINE = 1000
"""Error lines are cut to this many characters (a hostile value may be 100 kB long)."""


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return _cut(terminal_safe(" ".join(text.split()), backslash=False))


def _cut(line: str) -> str:
    return line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 3] + "..."


_QUOTED_OPTION = re.compile(r"'(--?[A-Za-z0-9][A-Za-z0-9-]*)'")


def _usage_line(e: click.ClickException) -> str:
    """click's error as one line: ``missing option --authority (see: truststack credential
    verify --help)``."""
    message = " ".join(e.format_message().split()).rstrip(".")
    message = _QUOTED_OPTION.sub(r"\1", message)
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click.UsageError) and ctx is not None:
        message = _cut(message) + f" (see: {ctx.command_path} --help)"
    return _cut(terminal_safe(message, backslash=False))


def run_cli(group: click.Command, args: list[str]) -> int:
    """Invoke ``group`` and map errors to (one line on stderr, exit code)."""
    verbose = "--verbose" in args
    STATE.verbose = False
    STATE.output = "plain"
    for i, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            click.echo(f"error: argument {i} ({_cut(terminal_safe(arg))}) is not valid UTF-8 "
                       "text", err=True)
            return 2
    try:
        rv = group.main(args=args, prog_name="truststack", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.NoArgsIsHelpError as e:
        e.show()  # a group without its verb: its help, as click prints it
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"error: {_usage_line(e)}", err=True)
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
        if verbose or STATE.verbose:
            traceback.print_exc()
        click.echo(f"error: internal error ({type(e).__name__}): {_one_line(e)}", err=True)
        return 1


def _report(e: BaseException, verbose: bool) -> None:
    if verbose or STATE.verbose:
        traceback.print_exc()
    click.echo(f"error: {_one_line(e)}", err=True)
