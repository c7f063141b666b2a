"""``truststack node``: create, start, list, show, stop, delete nodes and read their logs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from trust.cli.common import emit, emit_table, output_option, terminal_safe


@click.group("node")
def cli() -> None:
    """Nodes: background processes that route messages (echo, hop, TCP listener).

    \b
    Examples:
      truststack node create n1
      truststack node create n2 --tcp-listener-address 127.0.0.1:4000
      truststack message send hello --from n1 --to /node/n2/service/echo
      truststack node show n1 --output json
      truststack node stop n1 && truststack node delete n1
    """


#: ``node logs`` reads (and prints) at most the last this many bytes of the log.
LOG_TAIL_BYTES = 1024 * 1024


def _text(value: Any) -> str:
    """A value from a node's record as shown (escaped; ``-`` for none)."""
    return terminal_safe(value) if value not in (None, "") else "-"


def _joined(values: Any) -> str:
    """A list from a node's record as shown: its values escaped, comma-separated."""
    if not isinstance(values, list):
        return _text(values)
    return ", ".join(_text(v) for v in values) or "-"


def _listeners(state: dict[str, Any]) -> str:
    return _joined(state.get("listeners") or [])


def _show_plain(state: dict[str, Any]) -> str:
    t = _text
    lines = [f"Node: {t(state.get('name'))}",
             f"Status: {t(state.get('status'))}",
             f"PID: {t(state.get('pid'))}",
             f"Listeners: {_listeners(state)}",
             f"Identity: {t(state.get('identity'))}",
             f"Identifier: {t(state.get('identifier'))}"]
    if state.get("authorities"):
        lines.append(f"Authorities: {_joined(state['authorities'])}")
    if state.get("workers"):
        lines.append(f"Workers: {_joined(state['workers'])}")
    lines.extend(_portal_lines(state))
    return "\n".join(lines)


def _portal_lines(state: dict[str, Any]) -> list[str]:
    """``node show``'s channels, relays, inlets and outlets, one indented line each."""
    from trust.cli.common import terminal_safe as t

    def section(title: str, items: Any, line: Any) -> list[str]:
        if not isinstance(items, list) or not items:
            return []
        return [f"{title}: {len(items)}", *(f"  {line(i)}" for i in items if isinstance(i, dict))]

    def channel(c: dict[str, Any]) -> str:
        side = "initiator" if c.get("initiator") else "responder"
        return (f"{t(c.get('address'))}  {side}  peer {t(c.get('peer'))}  sent "
                f"{c.get('records_sent', '-')} records, {c.get('bytes_sent', '-')} bytes; "
                f"received {c.get('records_received', '-')} records, "
                f"{c.get('bytes_received', '-')} bytes")

    def relay(r: dict[str, Any]) -> str:
        return (f"{t(r.get('name'))}  {t(r.get('status'))}  at {t(r.get('at'))}  relay node "
                f"{t(r.get('peer') or '-')}")

    def hosted(r: dict[str, Any]) -> str:
        return (f"{t(r.get('name'))}  {'live' if r.get('live') else 'gone'}  owner "
                f"{t(r.get('owner') or '-')}  {r.get('messages', 0)} messages, "
                f"{r.get('bytes', 0)} bytes")

    def counts(p: dict[str, Any]) -> str:
        return (f"{p.get('connections', 0)} connections ({p.get('active', 0)} open), "
                f"bytes in {p.get('bytes_in', 0)}, out {p.get('bytes_out', 0)}, denied "
                f"{p.get('denied', 0)}")

    def inlet(i: dict[str, Any]) -> str:
        return f"{t(i.get('name'))}  {t(i.get('address'))} -> {t(i.get('route'))}  {counts(i)}"

    def unrestored(r: dict[str, Any]) -> str:
        return f"{t(r.get('kind'))} {t(r.get('name'))}: {t(r.get('error'))}"

    def outlet(o: dict[str, Any]) -> str:
        return f"{t(o.get('name'))}  -> {t(o.get('target'))}  {counts(o)}"

    return [*section("Secure channels", state.get("channels"), channel),
            *section("Relays created", state.get("relays"), relay),
            *section("Relays hosted", state.get("hosted_relays"), hosted),
            *section("Inlets", state.get("inlets"), inlet),
            *section("Outlets", state.get("outlets"), outlet),
            *section("Not made again at start", state.get("not_restored"), unrestored)]


@cli.command("create")
@click.argument("name")
@click.option("--tcp-listener-address", metavar="HOST:PORT",
              help="Where the node listens (default: 127.0.0.1 on a free port).")
@click.option("--identity", metavar="NAME",
              help="Local identity the node carries (default: one named after the node, "
                   "created on first start).")
@click.option("--hop-allow", "hop_allow", metavar="HOST:PORT", multiple=True,
              help="Where hop may open a new connection for a remote peer (repeatable; * for "
                   "anywhere; default: nowhere; existing connections are always usable).")
@click.option("--max-connections", metavar="N", default="10000", show_default=True,
              help="Open TCP connections at most (more are closed at once).")
@click.option("--idle-timeout", metavar="DURATION", default="5m", show_default=True,
              help="Close a TCP connection with no bytes either way for this long.")
@click.option("--stall-timeout", metavar="DURATION", default="60s", show_default=True,
              help="Close a TCP connection whose peer reads nothing for this long.")
@click.option("--authority", "authorities", metavar="A", multiple=True,
              help="An authority the node trusts: a local identity's name, a known identifier, "
                   "or a change history (hex or @PATH). Repeatable. A resource with no policy "
                   "then requires a credential from it (or the authority itself).")
@click.option("--credential", metavar="HEX|@PATH",
              help="The credential the node presents (issued to its identity by an --authority).")
@click.option("--ticket", metavar="TICKET|@FILE",
              help="Enroll the node's identity with the ticket's authority first (ticket "
                   "create prints one), then trust that authority and present the credential "
                   "it issues, refreshed before it expires. Not with --authority/--credential.")
@click.option("--authority-route", metavar="ROUTE",
              help="Where the node's authority listens (e.g. /dnsaddr/HOST/tcp/PORT/service/"
                   "api): the node pulls its revocation list from there (default with "
                   "--ticket: the ticket's route). Needs --authority or --ticket.")
@click.option("--revocation-refresh", metavar="DURATION",
              help="How often the node pulls its authority's revocation list (default: 30s; "
                   "with --ticket or --authority-route).")
@click.option("--foreground", is_flag=True,
              help="Run the node in this terminal until Ctrl-C (for containers).")
@output_option
def create(name: str, tcp_listener_address: str | None, identity: str | None,
           hop_allow: tuple[str, ...], max_connections: str, idle_timeout: str,
           stall_timeout: str, authorities: tuple[str, ...], credential: str | None,
           ticket: str | None, authority_route: str | None, revocation_refresh: str | None,
           foreground: bool, output: str) -> None:
    """Create node NAME and start it in the background; returns when it is ready.

    \b
    Examples:
      truststack node create n1
      truststack node create relay --tcp-listener-address 0.0.0.0:4000 --identity ops
      truststack node create b --hop-allow 10.0.0.2:5000 --idle-timeout 10m
      truststack node create n1 --foreground
      truststack node create n3 --authority authority --credential @n3.cred
      truststack node create db --ticket @db.ticket --revocation-refresh 10s
    """
    from trust.node.launcher import create_node, node_config, resolve_listener_flag

    address = resolve_listener_flag(tcp_listener_address)
    enrollment = _enrollment_flags(ticket, authority_route, revocation_refresh,
                                   authorities, credential)
    options: dict[str, Any] = {"hop_allow": list(hop_allow),
               "max_connections": _count("--max-connections", max_connections),
               "idle_timeout": _duration("--idle-timeout", idle_timeout),
               "stall_timeout": _duration("--stall-timeout", stall_timeout)}
    if enrollment is not None and enrollment.ticket is not None:
        # checked before the ticket is spent: the name is free and the other flags are valid
        node_config(name, identity=identity, tcp_listener_address=address, **options)
        from trust.errors import ConflictError
        from trust.node.files import NodePaths

        if NodePaths(name).exists():
            raise ConflictError(f"a node named {name} already exists")
        options.update(_enroll(name, identity, enrollment))
    else:
        options.update(authorities=_authority_histories(authorities),
                       credential=_credential_hex(credential))
    if enrollment is not None:
        options["extra"] = enrollment.record()
    if foreground:
        config = node_config(name, identity=identity, tcp_listener_address=address, **options)
        _run_foreground(name, address, config, output)
        return
    state = create_node(name, tcp_listener_address=address, identity=identity, **options)
    state.pop("control", None)
    emit(output, state, lambda: f"Node {name} is running (pid {state['pid']}), "
                               f"listening on {_listeners(state)}")


class _Enrollment:
    """The validated ``--ticket``, ``--authority-route`` and ``--revocation-refresh``."""

    def __init__(self, ticket: Any, route: str | None, refresh: float) -> None:
        self.ticket = ticket
        self.route = route
        self.refresh = refresh

    def record(self) -> dict[str, Any]:
        route = self.route if self.route is not None else self.ticket.route_text
        return {"authority_route": route, "revocation_refresh": self.refresh,
                "credential_refresh": self.ticket is not None}


MAX_ROUTE_TEXT = 4096


def _enrollment_flags(ticket: str | None, route: str | None, refresh: str | None,
                      authorities: tuple[str, ...], credential: str | None) -> _Enrollment | None:
    """Check how ``--ticket``, ``--authority-route`` and ``--revocation-refresh`` combine with
    ``--authority``/``--credential`` (a usage error, exit 2, when they do not) and parse them;
    ``None`` when none is given."""
    from trust.errors import DecodeError, UsageError

    if ticket is not None and (authorities or credential is not None):
        raise UsageError("--ticket cannot be combined with --authority or --credential (the "
                         "ticket names the authority; the node enrolls for its credential)")
    if route is not None and ticket is None and not authorities:
        raise UsageError("--authority-route needs --authority (the authority it reaches) or "
                         "--ticket")
    if refresh is not None and ticket is None and route is None:
        raise UsageError("--revocation-refresh needs --ticket or --authority-route (where the "
                         "revocation list is pulled from)")
    if ticket is None and route is None:
        return None
    seconds = 30.0 if refresh is None else _duration("--revocation-refresh", refresh)
    if not 0.1 <= seconds <= 86400:
        raise UsageError("invalid --revocation-refresh: between 100ms and 1d")
    if route is not None:
        from trust.routing import parse_multiaddr

        if not 0 < len(route) <= MAX_ROUTE_TEXT:
            raise UsageError(f"--authority-route must be route text of 1-{MAX_ROUTE_TEXT} "
                             "characters")
        parse_multiaddr(route)  # a malformed route is a usage error now, not at each pull
    parsed = None
    if ticket is not None:
        from trust.cli.common import read_value
        from trust.enrollment.ticket import EnrollmentTicket

        text = read_value(ticket, None, what="ticket")
        try:
            parsed = EnrollmentTicket.decode(text)
        except DecodeError as e:
            raise DecodeError(f"invalid --ticket: {e}") from None
    return _Enrollment(parsed, route, seconds)


def _enroll(name: str, identity: str | None, enrollment: _Enrollment) -> dict[str, Any]:
    """Enroll the node's identity (``--identity``, else one named after the node, created if
    missing) with the ticket's authority; the ``authorities`` and ``credential`` to record."""
    from trust.cli.common import run
    from trust.node.enrollment_feature import enroll_identity

    ticket = enrollment.ticket
    credential = run(enroll_identity(ticket, identity or name, create=identity is None))
    return {"authorities": [ticket.authority.export_hex()],
            "credential": credential.encode().hex()}


def _authority_histories(refs: tuple[str, ...]) -> list[str]:
    """The change histories (hex) of the ``--authority`` references, verified."""
    if not refs:
        return []
    from trust.cli.common import read_value, run
    from trust.services import open_credentials

    async def go() -> list[str]:
        service = open_credentials()
        try:
            found = await service.resolve([read_value(r, None, what="authority")
                                           if r.startswith("@") else r.strip() for r in refs],
                                          store=False)
        finally:
            await service.close()
        return [i.export_hex() for i in found]

    return run(go())


def _credential_hex(value: str | None) -> str | None:
    """The ``--credential`` as hex (``@PATH``: read from a file, hex or binary)."""
    if value is None:
        return None
    from trust.cli.common import read_bytes_file
    from trust.errors import UsageError

    if value.startswith("@"):
        data = read_bytes_file(value[1:], "credential")
        try:
            text = data.decode("ascii").strip()
            bytes.fromhex(text)
            return text.lower()
        except (UnicodeDecodeError, ValueError):
            return data.hex()
    try:
        bytes.fromhex(value.strip())
    except ValueError:
        raise UsageError("--credential must be hex or @PATH") from None
    return value.strip().lower()


def _count(flag: str, text: str) -> int:
    from trust.errors import UsageError

    if not (text.isascii() and text.isdigit()) or len(text) > 7 or not 1 <= int(text) <= 1_000_000:
        raise UsageError(f"invalid {flag} {text[:40]!r} (a whole number, 1-1000000)")
    return int(text)


def _duration(flag: str, text: str) -> float:
    from trust.durations import parse_duration
    from trust.errors import UsageError

    try:
        seconds = parse_duration(text)
    except UsageError as e:
        raise UsageError(f"invalid {flag}: {e}") from None
    if not 0 < seconds <= 10 * 365 * 86400:
        raise UsageError(f"invalid {flag} {text[:40]!r}: must be positive (e.g. 30s, 5m)")
    return seconds


def _run_foreground(name: str, address: str | None, new_config: dict[str, Any],
                    output: str) -> None:
    import asyncio
    import json

    from trust.errors import ConflictError
    from trust.node.control import error_from_wire
    from trust.node.daemon import _setup_logging, run_node
    from trust.node.files import NodePaths, write_json

    paths = NodePaths(name)
    created = False
    try:
        paths.create_dir()
    except FileExistsError:
        config = paths.require()
        if config.get("tcp_listener_address") != address and address is not None:
            config["tcp_listener_address"] = address
            write_json(paths.config, config)
        if paths.is_running():
            raise ConflictError(f"node {name} is already running") from None
    else:
        created = True
        write_json(paths.config, new_config)
    _setup_logging(paths, foreground=True)
    failure: list[BaseException] = []

    def report(message: dict[str, Any]) -> None:
        if not message["ok"]:
            failure.append(error_from_wire(message["error"]))
            return
        state = message["state"]
        state.pop("control", None)
        if output == "json":
            click.echo(json.dumps(state))
        else:
            click.echo(f"Node {name} is running (pid {state['pid']}) in the foreground, "
                       f"listening on {_listeners(state)}; Ctrl-C stops it")
        sys.stdout.flush()

    runner: Callable[..., Any]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(run_node(paths, report=report, foreground=True))
    if failure:
        if created:  # a node that never started leaves nothing behind
            paths.remove()
        raise failure[0]


@cli.command("start")
@click.argument("name")
@output_option
def start(name: str, output: str) -> None:
    """Start a stopped node NAME again (same identity and listener settings).

    \b
    Example:
      truststack node stop n1 && truststack node start n1
    """
    from trust.node.launcher import start_node

    state = start_node(name)
    state.pop("control", None)
    emit(output, state, lambda: f"Node {name} is running (pid {state['pid']}), "
                               f"listening on {_listeners(state)}")


@cli.command("list")
@output_option
def list_(output: str) -> None:
    """List nodes with their status, pid and listeners.

    \b
    Example:
      truststack node list --output json
    """
    from trust.node.launcher import list_nodes

    nodes = list_nodes()
    emit_table(output, nodes, ["name", "status", "pid", "listeners"],
               formats={"listeners": lambda v: ",".join(v or []) or "-"})
    if output != "json":
        for node in nodes:
            if node.get("error"):
                click.echo(f"warning: node {node['name']}: {terminal_safe(node['error'])}",
                           err=True)


@cli.command("show")
@click.argument("name")
@output_option
def show(name: str, output: str) -> None:
    """Show node NAME: status, pid, listeners, identity and identifier; when it runs, its
    secure channels, relays, inlets and outlets with their counters.

    \b
    Example:
      truststack node show n1 --output json
    """
    from trust.node.launcher import node_status

    state = node_status(name)
    emit(output, state, lambda: _show_plain(state))


@cli.command("stop")
@click.argument("name")
@output_option
def stop(name: str, output: str) -> None:
    """Stop node NAME (it keeps its configuration; `node start` restarts it).

    \b
    Example:
      truststack node stop n1
    """
    from trust.node.launcher import stop_node

    result = stop_node(name)
    emit(output, result, f"Node {name} stopped")


@cli.command("delete")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Delete every node.")
@output_option
def delete(name: str | None, all_: bool, output: str) -> None:
    """Delete node NAME (stopping it first), or every node with --all.

    \b
    Examples:
      truststack node delete n1
      truststack node delete --all
    """
    from trust.errors import UsageError
    from trust.node.files import list_node_names
    from trust.node.launcher import delete_node

    if all_ == (name is not None):
        raise UsageError("give a node NAME or --all")
    names = list_node_names() if all_ else [name]
    results = [delete_node(n) for n in names if n is not None]
    if all_:
        emit(output, results, lambda: "\n".join(f"Node {r['name']} deleted" for r in results)
             or "No nodes.")
    else:
        emit(output, results[0], f"Node {name} deleted")


@cli.command("logs")
@click.argument("name")
@click.option("--lines", "-n", type=click.IntRange(min=1), help="Only the last N lines.")
def logs(name: str, lines: int | None) -> None:
    """Print node NAME's log.

    \b
    Example:
      truststack node logs n1 --lines 20
    """
    from trust.node.files import NodePaths, read_tail

    paths = NodePaths(name)
    paths.require()
    data, cut = read_tail(paths.log, LOG_TAIL_BYTES)
    if cut:  # the first line read is likely a piece of one
        data = data[data.find(b"\n") + 1:]
    text_lines = data.split(b"\n")
    if text_lines and not text_lines[-1]:
        text_lines.pop()
    if lines is not None:
        text_lines = text_lines[-lines:]
    if cut and (lines is None or len(text_lines) < lines):
        click.echo(f"note: only the last {LOG_TAIL_BYTES // 1024} KiB of the log are shown", err=True)
    for line in text_lines:
        # untrusted text: control characters escaped; the log's own escapes are kept as they are
        click.echo(terminal_safe(line, backslash=False))
