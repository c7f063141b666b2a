"""A client of an authority, over a secure channel (Ockam's request/response envelope).

>>> # client = await AuthorityClient.connect(node, identity, ticket.route(), ticket.authority)
>>> # credential = await client.enroll(ticket)          # redeem the ticket, fetch a credential
>>> # await client.close()

Each method sends one request to one of the authority's services (see
:mod:`trust.enrollment.authority`) and raises the typed error the authority answered with
(:mod:`trust.enrollment.errors`: ``TicketExpiredError``, ``ForbiddenError`` …, matched by the
error's code, not its text), :class:`~trust.errors.RemoteProtocolError` for a malformed answer,
or :class:`~trust.node.errors.ReceiveTimeoutError` when none comes in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from trust.channels.local_info import channel_info
from trust.enrollment.authority import (
    ACCEPTOR,
    AUTHENTICATOR,
    CREDENTIAL_ISSUER,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PEER_SHARE,
    ISSUER,
    REVOCATION_LIST,
)
from trust.enrollment.errors import error_for
from trust.enrollment.messages.add_member import AddMember
from trust.enrollment.messages.attributes_entry import AttributesEntry
from trust.enrollment.messages.audit_entry import AuditEntry
from trust.enrollment.messages.audit_log import AuditLog, may_be_cut
from trust.enrollment.messages.audit_query import DEFAULT_AUDIT_LIMIT, AuditQuery
from trust.enrollment.messages.create_token import CreateToken
from trust.enrollment.messages.envelope import Method, Request, Response
from trust.enrollment.messages.member_ids import MemberIds
from trust.enrollment.messages.member_list import MemberList
from trust.enrollment.messages.one_time_code import OneTimeCode
from trust.enrollment.messages.revocation_list import SignedRevocationList
from trust.enrollment.ticket import EnrollmentTicket
from trust.errors import DecodeError, RemoteProtocolError
from trust.identities.identity import Identity
from trust.models.credential import CredentialAndPurposeKey
from trust.routing import Route, RouteLike

if TYPE_CHECKING:
    from trust.channels.workers import SecureChannel
    from trust.node.node import Node

__all__ = ["DEFAULT_TIMEOUT", "IN_FLIGHT", "AuthorityClient"]

DEFAULT_TIMEOUT = 30.0
"""Seconds a request waits for the authority's answer."""
IN_FLIGHT = DEFAULT_MAX_IN_FLIGHT // DEFAULT_PEER_SHARE
"""Requests one client has in progress at most (more wait their turn here): an authority's
default share per peer, beyond which it refuses requests with ``too_many_requests``."""


class AuthorityClient:
    """Requests to the authority at the far end of ``channel`` (a secure channel whose peer is
    the authority). Use :meth:`connect` to open the channel too."""

    def __init__(self, node: Node, channel: SecureChannel, *, timeout: float = DEFAULT_TIMEOUT,
                 owns_channel: bool = False) -> None:
        self.node = node
        self.channel = channel
        self.route: Route = channel.route
        self.authority = channel.peer.identifier
        self.timeout = timeout
        self._owns_channel = owns_channel
        self._in_flight = asyncio.Semaphore(IN_FLIGHT)

    @classmethod
    async def connect(cls, node: Node, identity: Any, route: RouteLike,
                      authority: Identity | str, *, identities: Any = None,
                      credentials: Iterable[Any] = (), timeout: float = DEFAULT_TIMEOUT
                      ) -> AuthorityClient:
        """Open a secure channel as ``identity`` (a ``ChannelIdentity``, or a local identity
        with ``identities``, its ``IdentityManager``) to the authority's listener at ``route``,
        accepting only ``authority`` (its identity or identifier) at the other end."""
        from trust.channels import TrustIdentifier

        ident = authority if isinstance(authority, str) else authority.identifier
        channel = await node.create_secure_channel(identity, route, trust=TrustIdentifier(ident),
                                                   identities=identities,
                                                   credentials=credentials, timeout=timeout)
        return cls(node, channel, timeout=timeout, owns_channel=True)

    async def close(self) -> None:
        """Close the channel when :meth:`connect` opened it."""
        if self._owns_channel and not self.channel.closed:
            await self.channel.close()

    async def __aenter__(self) -> AuthorityClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the envelope ---------------------------------------------------------------------------
    async def request(self, service: str, method: Method, path: str = "/",
                      body: bytes | None = None) -> bytes | None:
        """Send one request to ``service``; return the body of a 200 answer (or ``None``)."""
        req = Request.of(method, path, body)
        async with self._in_flight:  # (within the authority's share per peer)
            reply = await self.node.ctx.request(self.route / service, req.encode(),
                                                timeout=self.timeout)
        info = channel_info(reply)
        if info is None or info.identifier != self.authority:
            raise RemoteProtocolError("the answer did not come through the authority's channel")
        try:
            resp = Response.decode(reply.payload)
            if resp.header.re != req.id:
                raise RemoteProtocolError("the authority answered another request")
            if resp.is_ok:
                return resp.body
            err = resp.error_body()
        except DecodeError as e:
            raise RemoteProtocolError(f"malformed answer from the authority: {e}") from None
        status = int(resp.status) if resp.status is not None else 500
        raise error_for(status, err.code, err.message or f"request failed ({status})")

    @staticmethod
    def _decode(decoder: Any, body: bytes | None, what: str) -> Any:
        if body is None:
            raise RemoteProtocolError(f"the authority's answer has no {what}")
        try:
            return decoder(body)
        except (DecodeError, ValueError) as e:
            raise RemoteProtocolError(f"malformed {what} from the authority: {e}") from None

    # -- enrolling --------------------------------------------------------------------------------
    async def redeem(self, ticket: EnrollmentTicket | OneTimeCode | bytes
                     ) -> CredentialAndPurposeKey | None:
        """Present a ticket's one-time code: this identity becomes a member with the ticket's
        attributes (Ockam's ``present_token``). Returns the credential a truststack authority
        sends along (``None`` from an authority that sends none, as Ockam's)."""
        if isinstance(ticket, EnrollmentTicket):
            code = ticket.code
        elif isinstance(ticket, OneTimeCode):
            code = ticket
        else:
            code = OneTimeCode(bytes(ticket))
        body = await self.request(ACCEPTOR, Method.POST, "/", OneTimeCode(code.code).encode())
        if body is None:
            return None
        cred: CredentialAndPurposeKey = self._decode(CredentialAndPurposeKey.decode, body,
                                                     "credential")
        return cred

    async def get_credential(self) -> CredentialAndPurposeKey:
        """A fresh credential for this identity (members and admins)."""
        body = await self.request(CREDENTIAL_ISSUER, Method.POST, "/")
        cred: CredentialAndPurposeKey = self._decode(CredentialAndPurposeKey.decode, body,
                                                     "credential")
        return cred

    async def enroll(self, ticket: EnrollmentTicket | OneTimeCode | bytes
                     ) -> CredentialAndPurposeKey:
        """Redeem the ticket and return the credential (the one sent along with the
        redemption's answer, else one fetched from ``credential_issuer``)."""
        credential = await self.redeem(ticket)
        return credential if credential is not None else await self.get_credential()

    # -- members ----------------------------------------------------------------------------------
    async def add_member(self, identifier: str, attributes: Mapping[str, str] | None = None
                         ) -> None:
        await self.request(AUTHENTICATOR, Method.POST, "/members",
                           AddMember(identifier, dict(attributes or {})).encode())

    async def list_members(self) -> dict[str, AttributesEntry]:
        body = await self.request(AUTHENTICATOR, Method.GET, "/members")
        members: MemberList = self._decode(MemberList.decode, body, "member list")
        return dict(members.members)

    async def member_ids(self) -> list[str]:
        body = await self.request(AUTHENTICATOR, Method.GET, "/member_ids")
        ids: MemberIds = self._decode(MemberIds.decode, body, "member list")
        return list(ids.identifiers)

    async def show_member(self, identifier: str) -> AttributesEntry:
        body = await self.request(AUTHENTICATOR, Method.GET, f"/members/{identifier}")
        entry: AttributesEntry = self._decode(AttributesEntry.decode, body, "member")
        return entry

    async def delete_member(self, identifier: str) -> None:
        await self.request(AUTHENTICATOR, Method.DELETE, f"/members/{identifier}")

    async def delete_all_members(self) -> None:
        await self.request(AUTHENTICATOR, Method.DELETE, "/members")

    # -- tickets, audit, revocation ---------------------------------------------------------------
    async def create_ticket(self, attributes: Mapping[str, str] | None = None, *,
                            ttl: int | None = None, usage_count: int | None = None
                            ) -> OneTimeCode:
        """A new one-time code (with its ``reference`` and ``expires_at``); build the ticket
        with :meth:`EnrollmentTicket.for_authority`."""
        body = await self.request(ISSUER, Method.POST, "/tokens",
                                  CreateToken(dict(attributes or {}), ttl, usage_count).encode())
        code: OneTimeCode = self._decode(OneTimeCode.decode, body, "one-time code")
        return code

    async def audit(self, *, after: int = 0, limit: int | None = None) -> list[AuditEntry]:
        """The audit entries after ``after``, at most ``limit`` (the authority's default when
        ``None``: 1000). A reply holds what fits in one message; while one may have been cut,
        the rest is asked for after its last entry."""
        want = DEFAULT_AUDIT_LIMIT if limit is None else limit
        out: list[AuditEntry] = []
        while True:
            ask = limit if not out else want - len(out)
            body = await self.request(AUTHENTICATOR, Method.GET, "/audit",
                                      AuditQuery(after or None, ask).encode())
            log: AuditLog = self._decode(AuditLog.decode, body, "audit log")
            if out and log.entries and log.entries[0].seq <= out[-1].seq:
                raise RemoteProtocolError("the authority sent audit entries out of order")
            out.extend(log.entries)
            if not log.entries or len(out) >= want or not may_be_cut(len(body or b"")):
                return out
            after = out[-1].seq

    async def revocation_list(self) -> SignedRevocationList:
        """The signed revocation list, decoded but not verified (see
        :func:`trust.enrollment.revocation.verify_revocation_list`)."""
        body = await self.request(REVOCATION_LIST, Method.GET, "/")
        signed: SignedRevocationList = self._decode(SignedRevocationList.decode, body,
                                                    "revocation list")
        return signed
