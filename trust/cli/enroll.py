"""``truststack enroll``: redeem an enrollment ticket, fetch the credential and keep it."""

from __future__ import annotations

from typing import Any

import click

from trust.cli.common import emit, iso_time, output_option, terminal_safe


def _plain(data: dict[str, Any]) -> str:
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(data["attributes"].items())) or "-"
    return "\n".join([
        f"Enrolled {terminal_safe(data['identity'])} ({data['identifier']}) with authority "
        f"{terminal_safe(data['authority_name'])} ({data['authority']})",
        f"Attributes: {terminal_safe(attrs)}",
        f"Credential valid until {iso_time(data['expires_at'])} (stored: truststack credential "
        f"list --identity {terminal_safe(data['identity'])})"])


@click.command("enroll")
@click.argument("ticket", metavar="TICKET|@FILE")
@click.option("--identity", metavar="NAME",
              help="The local identity that enrolls (default: the default identity).")
@click.option("--timeout", default="30s", show_default=True,
              help="How long to wait for the authority.")
@output_option
def cli(ticket: str, identity: str | None, timeout: str, output: str) -> None:
    """Redeem TICKET at its authority: the identity becomes a member with the ticket's
    attributes; fetch its credential and keep it in the identity's wallet.

    The ticket names the authority (its route and change history): the secure channel to it
    accepts only that identity. The authority's identity is remembered as a known identity.

    \b
    Examples:
      truststack enroll @db.ticket --identity db
      truststack ticket create --at auth | truststack enroll - --identity db
    """
    from trust.cli.common import parse_duration, read_value, run
    from trust.enrollment.ticket import EnrollmentTicket
    from trust.errors import UsageError

    seconds = parse_duration(timeout)
    if not 0 < seconds <= 600:
        raise UsageError("--timeout must be positive and at most 10m")
    parsed = EnrollmentTicket.decode(read_value(ticket, what="ticket"))

    async def go() -> dict[str, Any]:
        from trust.cli.authority import undo_new_channel_keys
        from trust.credentials.verification import verify_credential
        from trust.enrollment.client import AuthorityClient
        from trust.node import Node
        from trust.services import open_credentials

        service = open_credentials()
        try:
            manager = service.identities
            me = await manager.get(identity)
            async with undo_new_channel_keys(manager, me):
                async with Node("enroll") as node:
                    client = await AuthorityClient.connect(node, me, parsed.route(),
                                                           parsed.authority, identities=manager,
                                                           timeout=seconds)
                    try:
                        credential = await client.enroll(parsed)
                    finally:
                        await client.close()
                verified = verify_credential(credential, [parsed.authority])
                await service.store(me.name, credential, [parsed.authority])
                await manager.remember(parsed.authority)
        finally:
            await service.close()
        return {"identity": me.name, "identifier": me.identifier,
                "authority": parsed.identifier, "authority_name": parsed.project_name,
                "route": parsed.route_text, "attributes": dict(verified.policy_subject()),
                "expires_at": verified.expires_at, "credential": credential.encode().hex()}

    data = run(go())
    emit(output, data, lambda: _plain(data))
