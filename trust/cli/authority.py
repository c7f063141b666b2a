"""``truststack authority``: create, show and delete authorities; manage their members; read
their audit log.

An authority is a node (it appears in ``node list``) whose record (``node.json``) also holds the
authority's options (:mod:`trust.node.authority_feature`), so ``node start`` serves the same
authority again. Commands that talk to an authority (``member …``, ``audit``, ``ticket
create``) open a secure channel to it from a temporary node in this process, as a local
identity (``--identity``; default: the default identity), and authenticate the authority by
its identifier: no background node is needed on the client side.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import click

from trust.cli.common import emit, emit_table, iso_time, output_option, terminal_safe

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
"""How long a command waits for the authority (channel handshake and each request)."""


@click.group("authority")
def cli() -> None:
    """Authorities: nodes that enroll members with one-time tickets and issue their credentials.

    The identity that runs `authority create` (the default identity, or --admin) is the
    authority's admin: it creates tickets, enrollers and members (`ticket create`,
    `authority member add`). Members enroll with a ticket (`enroll`) and get credentials that
    every node trusting the authority accepts.

    \b
    Examples:
      truststack identity create admin
      truststack authority create auth --tcp-listener-address 127.0.0.1:4000
      truststack ticket create --at auth --attribute role=db > db.ticket
      truststack enroll @db.ticket --identity db
      truststack authority member list --at auth
      truststack authority audit --at auth
    """


# -- create, show, delete ---------------------------------------------------------------------

@cli.command("create")
@click.argument("name")
@click.option("--tcp-listener-address", metavar="HOST:PORT",
              help="Where the authority listens (default: 127.0.0.1 on a free port, kept for "
                   "restarts).")
@click.option("--identity", metavar="ID_NAME",
              help="The authority's identity, a local identity (default: one named after the "
                   "authority, created on first start). Replicas share it.")
@click.option("--admin", metavar="ID_NAME",
              help="The local identity that administers the authority (default: the default "
                   "identity, i.e. the one running this command).")
@click.option("--database", metavar="URL",
              help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default: SQLite in the "
                   "node's directory). Authorities sharing one PostgreSQL database and identity "
                   "are replicas of one authority.")
@click.option("--trusted-identities", metavar="JSON|@FILE",
              help='Pre-trusted members: {"I...": {"attr": "value"}} (Ockam\'s format); they '
                   "cannot be deleted; ockam-role=admin makes an admin.")
@click.option("--credential-ttl", default="1h", show_default=True, metavar="DURATION",
              help="How long the credentials the authority issues are valid (1m to 30d).")
@click.option("--foreground", is_flag=True,
              help="Run the authority in this terminal until Ctrl-C (for containers).")
@output_option
def create(name: str, tcp_listener_address: str | None, identity: str | None, admin: str | None,
           database: str | None, trusted_identities: str | None, credential_ttl: str,
           foreground: bool, output: str) -> None:
    """Create authority NAME (a node) and start it; returns when it serves.

    \b
    Examples:
      truststack authority create auth --tcp-listener-address 127.0.0.1:4000
      truststack authority create auth --trusted-identities @trusted.json --credential-ttl 10m
      truststack authority create auth-1 --identity auth --database postgresql://u@db/authority
      truststack authority create auth-2 --identity auth --database postgresql://u@db/authority
    """
    from trust.cli.common import parse_duration, read_value, run
    from trust.errors import ConflictError
    from trust.node.authority_feature import (
        AuthorityOptions,
        check_credential_ttl,
        check_database_url,
        parse_trusted_identities,
    )
    from trust.node.files import NodePaths, write_json
    from trust.node.launcher import node_config, resolve_listener_flag, start_node

    paths = NodePaths(name)
    address = resolve_listener_flag(tcp_listener_address)
    ttl = check_credential_ttl(parse_duration(credential_ttl))
    url = None if database is None else check_database_url(database)
    trusted: dict[str, dict[str, str]] = {}
    if trusted_identities is not None:
        text = read_value(trusted_identities, what="trusted identities")
        try:
            doc = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
        except (ValueError, RecursionError):
            from trust.errors import UsageError

            raise UsageError("--trusted-identities is not valid JSON (expected "
                             "{\"I...\": {\"attr\": \"value\"}})") from None
        trusted = parse_trusted_identities(doc)
    admin_identifier, identity_name = run(_local_identities(admin, identity, name))
    options = AuthorityOptions(admins=(admin_identifier,), database=url,
                               trusted_identities=trusted, credential_ttl=ttl)
    config = node_config(name, identity=identity_name, tcp_listener_address=address)
    config["authority"] = options.to_record()
    if foreground:
        _run_foreground(paths, config)
        return
    try:
        paths.create_dir()
    except FileExistsError:
        raise ConflictError(f"a node named {name} already exists") from None
    try:
        write_json(paths.config, config)
        state = start_node(name)
    except BaseException:
        paths.remove()
        raise
    state.pop("control", None)
    data = {**state, "authority": options.public()}
    emit(output, data, lambda: f"Authority {name} ({state.get('identifier')}) is running "
                               f"(pid {state.get('pid')}), listening on "
                               f"{', '.join(state.get('listeners') or []) or '-'}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (a repeated key is ambiguous: refused)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        from trust.errors import UsageError

        raise UsageError("--trusted-identities names a key twice")
    return out


async def _local_identities(admin: str | None, identity: str | None,
                            name: str) -> tuple[str, str | None]:
    """(the admin's identifier, the authority identity's name if given); both must exist."""
    from trust.errors import NotFoundError
    from trust.services import open_identities

    manager = open_identities()
    try:
        try:
            admin_identity = await manager.get(admin)
        except NotFoundError:
            if admin is not None:
                raise
            raise NotFoundError("no default identity to administer the authority: give --admin "
                                "NAME (or create one: truststack identity create NAME)") from None
        if identity is not None:
            await manager.get(identity)
    finally:
        await manager.close()
    return admin_identity.identifier, identity


def _run_foreground(paths: Any, config: dict[str, Any]) -> None:
    """Record the authority (if new) and run its node in this process until Ctrl-C."""
    from trust.errors import ConflictError
    from trust.node import daemon
    from trust.node.files import write_json

    created = False
    try:
        paths.create_dir()
    except FileExistsError:
        existing = paths.require()
        if existing.get("authority") is None:
            raise ConflictError(f"node {paths.name} exists and is not an authority") from None
        if paths.is_running():
            raise ConflictError(f"node {paths.name} is already running") from None
    else:
        created = True
        write_json(paths.config, config)
    code = daemon.main(["run", paths.name, "--home", str(paths.home), "--foreground"])
    if code != 0:
        if created:
            paths.remove()
        raise click.exceptions.Exit(code)


def _authority_record(name: str) -> tuple[Any, dict[str, Any], Any]:
    """(paths, node record, options) of authority ``name``; a node that is not an authority is
    a :class:`NotFoundError`."""
    from trust.errors import NotFoundError
    from trust.node.authority_feature import authority_options
    from trust.node.files import NodePaths

    paths = NodePaths(name)
    config = paths.require()
    options = authority_options(config)
    if options is None:
        raise NotFoundError(f"node {name} is not an authority")
    return paths, config, options


def _show_plain(data: dict[str, Any]) -> str:
    auth = data.get("authority") or {}
    lines = [f"Authority: {terminal_safe(data.get('name'))}",
             f"Status: {terminal_safe(data.get('status'))}",
             f"Identifier: {terminal_safe(data.get('identifier') or '-')}",
             f"Listeners: {', '.join(terminal_safe(x) for x in data.get('listeners') or []) or '-'}",
             f"Route: {terminal_safe(data.get('route') or '-')}",
             f"Database: {terminal_safe(auth.get('database') or 'sqlite (in the node directory)')}",
             f"Admins: {', '.join(auth.get('admins') or []) or '-'}",
             f"Pre-trusted identities: {len(auth.get('trusted_identities') or {})}",
             f"Credential TTL: {auth.get('credential_ttl')}s"]
    serving = data.get("serving")
    if isinstance(serving, dict) and serving.get("services"):
        stats = serving.get("stats") or {}
        lines.append(f"Services: {', '.join(terminal_safe(s) for s in serving['services'])}")
        lines.append(f"Requests: {stats.get('requests', 0)} ({stats.get('errors', 0)} refused)")
    elif isinstance(serving, dict) and serving.get("error"):
        lines.append(f"Serving: no ({terminal_safe(serving['error'])})")
    return "\n".join(lines)


@cli.command("show")
@click.argument("name")
@output_option
def show(name: str, output: str) -> None:
    """Show authority NAME: status, identifier, route, database (without password), admins.

    \b
    Example:
      truststack authority show auth --output json
    """
    from trust.node.launcher import node_status

    _, _, options = _authority_record(name)
    state = node_status(name)
    state.pop("control", None)
    listeners = state.get("listeners") or []
    route = authority_route(listeners[0]) if listeners else None
    data = {**state, "route": route, "authority": options.public()}
    if state.get("status") == "running":
        from trust.errors import TrustError
        from trust.node.control_client import ControlClient

        try:
            live = ControlClient.for_node(name).request("authority.show", timeout=10)
        except TrustError as e:
            live = {"error": str(e)}
        data["serving"] = live
    emit(output, data, lambda: _show_plain(data))


@cli.command("delete")
@click.argument("name")
@output_option
def delete(name: str, output: str) -> None:
    """Stop and delete authority NAME (its node; with SQLite, its members and tickets too; a
    PostgreSQL database is left to the other replicas).

    \b
    Example:
      truststack authority delete auth
    """
    from trust.node.launcher import delete_node

    _authority_record(name)
    result = delete_node(name)
    emit(output, result, f"Authority {name} deleted")


def authority_route(listener: str) -> str:
    """The route (text) to the authority's ``api`` listener at ``listener`` (HOST:PORT; a
    wildcard host is reached at the loopback address)."""
    from trust.enrollment.ticket import authority_route_text

    host, _, port = listener.rpartition(":")
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host in ("[::]", "::"):
        host = "[::1]"
    return authority_route_text(f"{host}:{port}")


# -- talking to an authority ------------------------------------------------------------------

def authority_target(name: str) -> tuple[str, str]:
    """(route text to the ``api`` listener, identifier) of the running local authority
    ``name``."""
    from trust.errors import TrustError
    from trust.node.resolve import node_listener_address

    paths, config, _ = _authority_record(name)
    state = paths.read_state() or {}
    identifier = state.get("identifier") or config.get("identifier")
    if not isinstance(identifier, str):
        raise TrustError(f"authority {name} has not started yet (no identifier)")
    return authority_route(node_listener_address(name)), identifier


@contextlib.asynccontextmanager
async def undo_new_channel_keys(manager: Any, identity: Any) -> AsyncIterator[None]:
    """If the block fails, forget the secure-channel keys ``identity`` got inside it (a channel
    key is made on first use): a failed command leaves no purpose key behind."""
    from trust.identities.manager import SECURE_CHANNEL

    async def handles() -> set[str]:
        return {pk.key_handle for pk in await manager.purpose_keys.list(identity.identifier,
                                                                        SECURE_CHANNEL)}

    before = await handles()
    try:
        yield
    except BaseException:
        for pk in await manager.purpose_keys.list(identity.identifier, SECURE_CHANNEL):
            if pk.key_handle not in before:
                await manager.forget_purpose_key(pk)
        raise


@contextlib.asynccontextmanager
async def authority_channel(route: str, authority: str, identity: str | None, *,
                            timeout: float = DEFAULT_TIMEOUT) -> AsyncIterator[tuple[Any, Any]]:
    """A temporary node in this process with a secure channel, as the local identity
    ``identity`` (default: the default identity), to the authority ``authority`` (identifier)
    at ``route`` (route text to its ``api`` listener); yields (node, channel). The channel
    and the node are closed on exit; if the block fails, a secure-channel key made for it is
    forgotten."""
    from trust.channels.trust_policies import TrustIdentifier
    from trust.node import Node
    from trust.node.resolve import route_from_text
    from trust.services import open_identities

    target = route_from_text(route)
    async with open_identities() as manager, Node("authority-client") as node:
        me = await manager.get(identity)
        async with undo_new_channel_keys(manager, me):
            channel = await node.create_secure_channel(me, target,
                                                       trust=TrustIdentifier(authority),
                                                       identities=manager, timeout=timeout)
            try:
                yield node, channel
            finally:
                await channel.close()


def with_authority(at: str, identity: str | None,
                   fn: Callable[[Any, str], Coroutine[Any, Any, T]]) -> T:
    """Run ``fn(client, route)`` with an :class:`~trust.enrollment.client.AuthorityClient`
    talking to the local authority ``at`` as the local identity ``identity`` (``route``: the
    route text to the authority)."""
    from trust.cli.common import run
    from trust.enrollment.client import AuthorityClient

    route, identifier = authority_target(at)

    async def go() -> T:
        async with authority_channel(route, identifier, identity) as (node, channel):
            return await fn(AuthorityClient(node, channel, timeout=DEFAULT_TIMEOUT), route)

    return run(go())


# -- members and audit --------------------------------------------------------------------------

AT = click.option("--at", "at", required=True, metavar="AUTHORITY",
                  help="The authority (a running local authority node).")
AS = click.option("--identity", metavar="NAME",
                  help="Act as this local identity, an admin or enroller (default: the default "
                       "identity).")


def member_json(identifier: str, entry: Any) -> dict[str, Any]:
    """A member as JSON (Ockam's ``project-member list`` shape, flattened)."""
    return {"identifier": identifier, "attributes": dict(entry.attributes),
            "added_at": entry.added_at, "expires_at": entry.expires_at,
            "attested_by": entry.attested_by, "pre_trusted": entry.pre_trusted}


def _attributes_text(attrs: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(attrs.items())) or "-"


@cli.group("member")
def member() -> None:
    """Members of an authority: add (or change), list, show, delete (which revokes).

    \b
    Examples:
      truststack authority member add I0123... --at auth --attribute role=db
      truststack authority member list --at auth
      truststack authority member delete I0123... --at auth
    """


@member.command("add")
@click.argument("identifier")
@AT
@AS
@click.option("--attribute", "attributes", metavar="NAME=VALUE", multiple=True,
              help="An attribute of the member (repeatable; NAME alone means NAME=true).")
@click.option("--enroller", is_flag=True, help="Make the member an enroller (admins only).")
@click.option("--relay", metavar="NAME", help="ockam-relay=NAME (admins only).")
@output_option
def member_add(identifier: str, at: str, identity: str | None, attributes: tuple[str, ...],
               enroller: bool, relay: str | None, output: str) -> None:
    """Add IDENTIFIER as a member (or replace its attributes).

    \b
    Example:
      truststack authority member add I0123... --at auth --attribute role=db --relay db
    """
    from trust.cli.ticket import parse_attributes

    ident = _identifier_arg(identifier)
    attrs = parse_attributes(attributes, relay=relay, enroller=enroller)

    async def go(client: Any, route: str) -> dict[str, Any]:
        await client.add_member(ident, attrs)
        return member_json(ident, await client.show_member(ident))

    data = with_authority(at, identity, go)
    emit(output, data, f"Member {ident} added at {at} "
                       f"({terminal_safe(_attributes_text(data['attributes']))})")


@member.command("list")
@AT
@AS
@output_option
def member_list(at: str, identity: str | None, output: str) -> None:
    """List the members: identifier, attributes (k=v,...), added at, attested by, pre-trusted.

    \b
    Example:
      truststack authority member list --at auth --output json
    """

    async def go(client: Any, route: str) -> list[dict[str, Any]]:
        members = await client.list_members()
        return [member_json(i, e) for i, e in sorted(members.items())]

    rows = with_authority(at, identity, go)
    emit_table(output, rows, ["identifier", "attributes", "added_at", "attested_by", "pre_trusted"],
               formats={"attributes": _attributes_text, "added_at": iso_time})


@member.command("show")
@click.argument("identifier")
@AT
@AS
@output_option
def member_show(identifier: str, at: str, identity: str | None, output: str) -> None:
    """Show member IDENTIFIER.

    \b
    Example:
      truststack authority member show I0123... --at auth
    """
    ident = _identifier_arg(identifier)

    async def go(client: Any, route: str) -> dict[str, Any]:
        return member_json(ident, await client.show_member(ident))

    data = with_authority(at, identity, go)
    emit(output, data, lambda: "\n".join([
        f"Member: {data['identifier']}",
        f"Attributes: {terminal_safe(_attributes_text(data['attributes']))}",
        f"Added: {iso_time(data['added_at'])}",
        f"Attested by: {data['attested_by'] or '-'}",
        f"Pre-trusted: {'yes' if data['pre_trusted'] else 'no'}"]))


@member.command("delete")
@click.argument("identifier")
@AT
@AS
@output_option
def member_delete(identifier: str, at: str, identity: str | None, output: str) -> None:
    """Delete member IDENTIFIER: no new credentials, and its identifier goes on the authority's
    revocation list (relying nodes refuse it once they pull the list).

    \b
    Example:
      truststack authority member delete I0123... --at auth
    """
    ident = _identifier_arg(identifier)

    async def go(client: Any, route: str) -> dict[str, Any]:
        await client.delete_member(ident)
        return {"identifier": ident, "deleted": True}

    data = with_authority(at, identity, go)
    emit(output, data, f"Member {ident} deleted at {at}")


@cli.command("audit")
@AT
@AS
@click.option("--after", type=click.IntRange(min=0), default=0,
              help="Only entries after this sequence number.")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=1000, show_default=True,
              help="Entries at most.")
@output_option
def audit(at: str, identity: str | None, after: int, limit: int, output: str) -> None:
    """The audit log (admins): who added, changed or removed whom, which ticket (by reference,
    never the code) was created or redeemed.

    Plain output: seq, time, actor, action, subject, ticket reference, attributes.

    \b
    Example:
      truststack authority audit --at auth
    """

    async def go(client: Any, route: str) -> list[dict[str, Any]]:
        entries = await client.audit(after=after, limit=limit)
        return [{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                 "subject": e.subject, "ticket": e.ticket,
                 "attributes": None if e.attributes is None else dict(e.attributes)}
                for e in entries]

    rows = with_authority(at, identity, go)
    emit_table(output, rows, ["seq", "at", "actor", "action", "subject", "ticket", "attributes"],
               formats={"at": iso_time,
                        "attributes": lambda v: "-" if v is None else _attributes_text(v)})


def _identifier_arg(text: str) -> str:
    """A member's identifier (``I`` and 64 hex digits), normalized."""
    from trust.errors import UsageError
    from trust.models.primitives import identifier_from_text, identifier_text

    try:
        return identifier_text(identifier_from_text(text.strip()))
    except Exception:
        raise UsageError(f"'{terminal_safe(text[:80])}' is not an identifier (I followed by 64 "
                         "hex digits)") from None
