"""Enrollment with an authority, in one process: an authority node with its database, an admin
who makes a one-time ticket, a member who redeems it and gets a credential, a reused ticket
refused, and a deleted member on the authority's signed revocation list.

Run it: ``python examples/enrollment.py`` (it works in a temporary home and prints what happens).
The command line does the same with ``truststack authority create``, ``ticket create`` and
``enroll`` (docs/enrollment.md).
"""

from __future__ import annotations

import asyncio
import tempfile

from trust.credentials.verification import verify_credential
from trust.enrollment import (
    AuthorityClient,
    AuthorityOptions,
    AuthoritySigner,
    EnrollmentTicket,
    start_authority,
    verify_revocation_list,
)
from trust.enrollment.errors import TicketUsedError
from trust.enrollment.ticket import authority_route_text
from trust.node import Node
from trust.node.resolve import route_from_text
from trust.services import open_identities
from trust.storage import open_storage
from trust.storage.authority import SqlAuthorityRepository


async def main(home: str) -> None:
    async with open_identities(home) as ids:
        authority = await ids.create_identity("authority")
        admin = await ids.create_identity("admin")
        member = await ids.create_identity("member")
        other = await ids.create_identity("other")
        # the authority signs credentials with a purpose key its identity attests
        vault, handle, attestation = await ids.credential_signing_key("authority")
        signer = AuthoritySigner(authority, vault, handle, attestation)

        # its members, tickets (hashed), audit log and revocations: SQLite here,
        # postgresql://... for replicas
        storage = open_storage(f"sqlite:///{home}/authority.sqlite")
        repository = SqlAuthorityRepository(storage.db, authority.identifier)
        async with Node("authority") as server, Node("clients") as clients:
            await server.create_secure_channel_listener(authority, "api", identities=ids)
            tcp = await server.create_tcp_listener("127.0.0.1:0")
            running = await start_authority(server, signer, repository, AuthorityOptions(
                admins=frozenset({admin.identifier}), credential_ttl=600))
            route = authority_route_text(tcp.address)

            # the admin makes a ticket: one line to hand to the member (a secret until used)
            async with await AuthorityClient.connect(clients, admin, route_from_text(route),
                                                     authority.identifier, identities=ids) as a:
                code = await a.create_ticket({"role": "db"}, ttl=600, usage_count=1)
            text = EnrollmentTicket.for_authority(code, route, authority, "example").encode()
            print("ticket:", text[:32] + "...", f"({len(text)} hex digits)")

            # the member trusts the authority named in the ticket (its change history)
            ticket = EnrollmentTicket.decode(text)
            async with await AuthorityClient.connect(clients, member, ticket.route(),
                                                     ticket.authority, identities=ids) as m:
                credential = await m.enroll(ticket)
            verified = verify_credential(credential, [ticket.authority])
            print("member's credential attributes:", dict(verified.policy_subject()))

            # a one-time ticket works once
            async with await AuthorityClient.connect(clients, other, ticket.route(),
                                                     ticket.authority, identities=ids) as o:
                try:
                    await o.redeem(ticket)
                except TicketUsedError as e:
                    print("reused ticket refused:", type(e).__name__)

            # deleting a member revokes it: relying nodes pull the signed list
            async with await AuthorityClient.connect(clients, admin, ticket.route(),
                                                     ticket.authority, identities=ids) as a:
                await a.delete_member(member.identifier)
                signed = await a.revocation_list()
                audit = await a.audit()
            revoked = verify_revocation_list(signed, authority)
            print("member revoked:", revoked.is_revoked(member.identifier, verified.created_at))
            print("audit:", ", ".join(e.action for e in audit))
            await running.stop()
        await storage.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="truststack-enrollment-") as tmp:
        asyncio.run(main(tmp))
