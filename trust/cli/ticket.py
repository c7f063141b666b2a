"""``truststack ticket create``: one-time enrollment tickets made by an authority."""

from __future__ import annotations

from typing import Any

import click

from trust.cli.common import AsciiInt, emit, output_option

MAX_ATTRIBUTES = 64


@click.group("ticket")
def cli() -> None:
    """Enrollment tickets: one-time codes that make their holder a member of an authority.

    A ticket is one line of hex (Ockam's ExportedEnrollmentTicket): the authority's route,
    identifier, name and change history (the enrollee's trust anchor) and a one-time code.
    Treat it as a secret until it is used.

    \b
    Examples:
      truststack ticket create --at auth --attribute role=db > db.ticket
      truststack ticket create --at auth --enroller --expires-in 1h > enroller.ticket
      truststack enroll @db.ticket --identity db
    """


def parse_attributes(pairs: tuple[str, ...], *, relay: str | None = None,
                     enroller: bool = False) -> dict[str, str]:
    """``k=v`` pairs (``k`` alone is ``k=true``, as Ockam), with ``--relay NAME``
    (``ockam-relay=NAME``) and ``--enroller`` (``ockam-role=enroller``)."""
    from trust.errors import UsageError

    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not name:
            raise UsageError("--attribute needs a NAME (NAME=VALUE, or NAME alone for true)")
        if name in out:
            raise UsageError(f"attribute {name[:40]!r} is given twice")
        out[name] = value if sep else "true"
    if relay is not None:
        if "ockam-relay" in out:
            raise UsageError("give the relay either with --relay or as an attribute, not both")
        out["ockam-relay"] = relay
    if enroller:
        if "ockam-role" in out:
            raise UsageError("give the role either with --enroller or as an attribute, not both")
        out["ockam-role"] = "enroller"
    if len(out) > MAX_ATTRIBUTES:
        raise UsageError(f"at most {MAX_ATTRIBUTES} attributes")
    return out


@cli.command("create")
@click.option("--at", "at", required=True, metavar="AUTHORITY",
              help="The authority (a running local authority node).")
@click.option("--identity", metavar="NAME",
              help="Ask as this local identity, an admin or enroller (default: the default "
                   "identity).")
@click.option("--attribute", "attributes", metavar="NAME=VALUE", multiple=True,
              help="An attribute the enrollee gets (repeatable; NAME alone means NAME=true).")
@click.option("--usage-count", type=AsciiInt(1, 1_000_000), default=1, show_default=True,
              help="How many identities may enroll with the ticket.")
@click.option("--expires-in", default="10m", show_default=True, metavar="DURATION",
              help="How long the ticket is valid (the authority enforces a maximum).")
@click.option("--enroller", is_flag=True,
              help="The enrollee becomes an enroller (ockam-role=enroller; admins only).")
@click.option("--relay", metavar="NAME",
              help="The enrollee may take relay NAME (ockam-relay=NAME; admins only; * for any).")
@output_option
def create(at: str, identity: str | None, attributes: tuple[str, ...], usage_count: int,
           expires_in: str, enroller: bool, relay: str | None, output: str) -> None:
    """Create a ticket at the authority; print it alone (redirect it to a file).

    \b
    Examples:
      truststack ticket create --at auth --attribute role=db > db.ticket
      truststack ticket create --at auth --usage-count 10 --expires-in 1h --relay db
    """
    from trust.cli.authority import with_authority
    from trust.cli.common import parse_duration
    from trust.enrollment.ticket import EnrollmentTicket
    from trust.errors import UsageError

    seconds = parse_duration(expires_in)
    if not 1 <= seconds <= 366 * 86400:
        raise UsageError("--expires-in must be between 1s and 366d")
    attrs = parse_attributes(attributes, relay=relay, enroller=enroller)

    async def go(client: Any, route: str) -> dict[str, Any]:
        code = await client.create_ticket(attrs, ttl=int(seconds), usage_count=usage_count)
        authority = client.channel.peer.identity
        ticket = EnrollmentTicket.for_authority(code, route, authority, at)
        return {"ticket": ticket.encode(), "reference": code.reference,
                "expires_at": code.expires_at, "usage_count": usage_count,
                "attributes": attrs, "authority": authority.identifier, "route": route}

    data = with_authority(at, identity, go)
    emit(output, data, data["ticket"])
