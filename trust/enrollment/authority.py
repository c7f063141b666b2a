"""The authority's services as node workers, reached only through secure channels.

:func:`start_authority` starts, on a node that already has (or will get) a secure-channel
listener:

==============================  ===============================================================
``direct_authenticator``        members: ``POST /`` or ``/members`` (AddMember), ``GET /`` or
                                ``/members``, ``GET /member_ids``, ``GET /<id>`` or
                                ``/members/<id>``, ``DELETE /<id>`` or ``/members/<id>``,
                                ``DELETE /members``; ours: ``GET /audit`` (AuditQuery body
                                optional)
``enrollment_token_issuer``     ``POST /`` or ``/tokens`` (CreateToken) → OneTimeCode
``enrollment_token_acceptor``   ``POST /`` or ``/credential`` (OneTimeCode) → 200 with the
                                new member's credential (ours: Ockam sends no body, and its
                                clients ignore one; it saves the second round trip)
``credential_issuer``           ``POST /`` or ``/credential`` → CredentialAndPurposeKey
``revocation_list``             ours: ``GET /`` → SignedRevocationList
==============================  ===============================================================

Every request and response uses Ockam's envelope (:mod:`trust.enrollment.messages.envelope`).
The caller is the peer of the secure channel the request came through (its local info), never
anything in the body; a request that did not come through a channel gets ``400 secure channel
required``. Errors are ``ErrorBody`` responses with Ockam's status codes and our ``code``.
Requests are served concurrently (at most ``max_in_flight`` at once; beyond, the workers stop
taking messages, and the channels behind them wait). One peer (one channel identity) has at most
``max_per_peer`` requests in progress; beyond, its requests are refused at once with
``too_many_requests``, so no peer can hold the capacity every peer shares. Replies never wait:
a reply to a peer that does not read (its channel or connection full) is dropped and counted
(``stats["replies_dropped"]``), and the request's slot is free again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from trust.channels.local_info import channel_info
from trust.enrollment.errors import (
    AuthorityError,
    BadRequestError,
    SecureChannelRequiredError,
    TooManyRequestsError,
    UnknownPathError,
)
from trust.enrollment.messages.add_member import AddMember
from trust.enrollment.messages.attributes_entry import AttributesEntry
from trust.enrollment.messages.audit_log import AuditLog, fit_entries
from trust.enrollment.messages.audit_query import DEFAULT_AUDIT_LIMIT, AuditQuery
from trust.enrollment.messages.common import MAX_MESSAGE_SIZE
from trust.enrollment.messages.create_token import CreateToken
from trust.enrollment.messages.envelope import ErrorBody, Method, Request, Response, Status
from trust.enrollment.messages.member_ids import MemberIds
from trust.enrollment.messages.member_list import MemberList
from trust.enrollment.messages.one_time_code import OneTimeCode
from trust.enrollment.repositories import AuthorityRepository, Member
from trust.enrollment.service import AuthorityOptions, AuthorityService
from trust.enrollment.signer import AuthoritySigner
from trust.errors import ConflictError, DecodeError, StorageError, TrustError
from trust.logsafe import safe_text, warn_limited
from trust.models.cbor import Reader
from trust.node.peer_shares import DEFAULT_PEER_SHARE, PeerShares, default_share
from trust.node.worker import Worker

if TYPE_CHECKING:
    from trust.channels.peer import VerifiedPeer
    from trust.node.access_control import AccessControl
    from trust.node.context import Context
    from trust.node.node import Node
    from trust.routing import LocalMessage

__all__ = [
    "ACCEPTOR",
    "AUTHENTICATOR",
    "CREDENTIAL_ISSUER",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_PEER_SHARE",
    "ISSUER",
    "REVOCATION_LIST",
    "SERVICES",
    "Authority",
    "Call",
    "start_authority",
]

log = logging.getLogger("trust.enrollment.authority")

AUTHENTICATOR: Final = "direct_authenticator"
ISSUER: Final = "enrollment_token_issuer"
ACCEPTOR: Final = "enrollment_token_acceptor"
CREDENTIAL_ISSUER: Final = "credential_issuer"
REVOCATION_LIST: Final = "revocation_list"
SERVICES: Final = (AUTHENTICATOR, ISSUER, ACCEPTOR, CREDENTIAL_ISSUER, REVOCATION_LIST)
"""The authority's worker addresses (Ockam's, plus ``revocation_list``)."""
DEFAULT_MAX_IN_FLIGHT: Final = 256
HOUSEKEEPING_INTERVAL: Final = 60.0


@dataclass(frozen=True, slots=True)
class Call:
    """One request, with the verified peer of the channel it came through."""

    request: Request
    peer: VerifiedPeer
    now: int

    @property
    def caller(self) -> str:
        return self.peer.identifier

    def body(self, what: str) -> bytes:
        if self.request.body is None:
            raise BadRequestError(f"the request needs a body ({what})")
        return self.request.body


Handler = Callable[[Call], Awaitable[bytes | None]]


def _entry(m: Member) -> AttributesEntry:
    return AttributesEntry(m.attributes, m.added_at, None, m.added_by, m.pre_trusted)


def _decode(decoder: Callable[[bytes], Any], data: bytes) -> Any:
    try:
        return decoder(data)
    except DecodeError as e:
        raise BadRequestError(f"malformed request body: {e}") from None
    except ValueError as e:
        raise BadRequestError(f"invalid request body: {e}") from None


class _Routes:
    """The request handlers of every service, by (service, method, path)."""

    def __init__(self, service: AuthorityService) -> None:
        self.service = service

    def find(self, name: str, method: Method | None, path: str) -> Handler:
        p = path.strip("/")
        parts = p.split("/") if p else []
        if name == AUTHENTICATOR:
            if parts and parts[0] == "members":
                parts = parts[1:]
                root_members = True
            else:
                root_members = False
            if not parts:
                if method is Method.POST:
                    return self.add_member
                if method is Method.GET:
                    return self.list_members
                if method is Method.DELETE and root_members:
                    return self.delete_all
            elif len(parts) == 1:
                if parts[0] == "member_ids" and not root_members and method is Method.GET:
                    return self.member_ids
                if parts[0] == "audit" and not root_members and method is Method.GET:
                    return self.audit
                if parts[0].startswith("I") and method is Method.GET:
                    ident = parts[0]
                    return lambda call: self.show_member(call, ident)
                if parts[0].startswith("I") and method is Method.DELETE:
                    ident = parts[0]
                    return lambda call: self.delete_member(call, ident)
        elif name == ISSUER:
            if p in ("", "tokens") and method is Method.POST:
                return self.create_token
        elif name == ACCEPTOR:
            if p in ("", "credential") and method is Method.POST:
                return self.redeem
        elif name == CREDENTIAL_ISSUER:
            if p in ("", "credential") and method is Method.POST:
                return self.credential
        elif name == REVOCATION_LIST and p == "" and method is Method.GET:
            return self.revocations
        raise UnknownPathError("unknown path")

    # -- direct_authenticator -----------------------------------------------------------------
    async def add_member(self, call: Call) -> bytes | None:
        req = _decode(AddMember.decode, call.body("AddMember"))
        await self.service.add_member(call.caller, req.member, req.attributes, now=call.now)
        return None

    async def list_members(self, call: Call) -> bytes | None:
        members = await self.service.list_members(call.caller)
        return _fitting(MemberList({m.identifier: _entry(m) for m in members}).encode(),
                        "the member list")

    async def member_ids(self, call: Call) -> bytes | None:
        members = await self.service.list_members(call.caller)
        return MemberIds(tuple(m.identifier for m in members)).encode()

    # (a member id list of MAX_LISTED_MEMBERS always fits: 35 bytes each)

    async def show_member(self, call: Call, identifier: str) -> bytes | None:
        return _entry(await self.service.show_member(call.caller, _identifier(identifier))
                      ).encode()

    async def delete_member(self, call: Call, identifier: str) -> bytes | None:
        await self.service.delete_member(call.caller, _identifier(identifier), now=call.now)
        return None

    async def delete_all(self, call: Call) -> bytes | None:
        await self.service.delete_all_members(call.caller, now=call.now)
        return None

    async def audit(self, call: Call) -> bytes | None:
        q = AuditQuery() if call.request.body is None else _decode(AuditQuery.decode,
                                                                   call.request.body)
        entries = await self.service.audit(call.caller, after=q.after or 0,
                                           limit=DEFAULT_AUDIT_LIMIT if q.limit is None else q.limit)
        # (as many as fit; the caller asks again after the last one: audit_log.may_be_cut)
        return AuditLog(fit_entries(entries)).encode()

    # -- tickets and credentials --------------------------------------------------------------
    async def create_token(self, call: Call) -> bytes | None:
        req = _decode(CreateToken.decode, call.body("CreateToken"))
        code, _ = await self.service.create_ticket(call.caller, req.attributes, ttl=req.ttl_secs,
                                                   usage_count=req.ttl_count, now=call.now)
        return code.encode()

    async def redeem(self, call: Call) -> bytes | None:
        code = _decode(OneTimeCode.decode, call.body("OneTimeCode"))
        _, credential = await self.service.enroll(call.peer.identity, code, now=call.now)
        return credential.encode()

    async def credential(self, call: Call) -> bytes | None:
        return (await self.service.issue_credential(call.peer.identity, now=call.now)).encode()

    async def revocations(self, call: Call) -> bytes | None:
        return (await self.service.revocation_list(now=call.now)).encode()


def _fitting(body: bytes, what: str) -> bytes:
    """``body``, when a response with it fits in :data:`MAX_MESSAGE_SIZE`."""
    if len(body) > MAX_MESSAGE_SIZE - 64:
        raise BadRequestError(f"{what} is too large to send ({len(body)} bytes); list the "
                              "identifiers (member_ids) and show members one by one")
    return body


def _identifier(text: str) -> str:
    from trust.enrollment.messages.common import check_identifier

    try:
        return check_identifier(text, "member")
    except DecodeError:
        raise BadRequestError("a member is named by its identifier, 'I' and 64 hex digits") \
            from None


def _request_id(payload: bytes) -> tuple[int, str | None, Method | None]:
    """The id (and path, method) of a request whose whole decoding failed, when its header
    decodes (0 otherwise, as Ockam's ``bad_request_no_request``)."""
    from trust.enrollment.messages.envelope import RequestHeader

    try:
        h = RequestHeader.read(Reader(bytes(payload)))
    except (DecodeError, ValueError):
        return 0, None, None
    return h.id, h.path, h.method


class _ServiceWorker(Worker):
    def __init__(self, authority: Authority, name: str) -> None:
        self.authority = authority
        self.name = name

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        a = self.authority
        info = channel_info(msg)
        peer = None if info is None else info.peer.identifier
        if a._per_peer.full(peer):
            # (refused before taking a slot: a peer's flood waits for nothing)
            a.stats["refused_busy"] += 1
            warn_limited(log, "busy", "%s: %s has %d requests in progress, its limit; refused",
                         self.name, "a peer without a channel" if peer is None else peer,
                         a.max_per_peer)
            await self._reply(ctx, msg, _busy(msg.payload, a.max_per_peer))
            return
        await a._slots.acquire()
        a._per_peer.take(peer)
        try:
            task = asyncio.get_running_loop().create_task(self._serve(ctx, msg))
        except BaseException:
            a._finished(peer)
            raise
        a._tasks.add(task)
        task.add_done_callback(lambda t: a._done(t, peer))

    async def _serve(self, ctx: Context, msg: LocalMessage) -> None:
        response = await self.authority.respond(self.name, msg)
        if response is not None:
            await self._reply(ctx, msg, response)

    async def _reply(self, ctx: Context, msg: LocalMessage, response: Response) -> None:
        """Send ``response`` back without ever waiting: a peer that does not read loses it."""
        if not msg.return_route.addresses:
            return
        try:
            sent = await ctx.send(msg.return_route, response.encode(), drop_when_full=True)
        except TrustError as e:
            warn_limited(log, "reply", "%s: the reply could not be sent (%s)", self.name,
                         safe_text(str(e)))
            return
        if not sent:
            self.authority.stats["replies_dropped"] += 1
            warn_limited(log, "reply-dropped", "%s: a reply was dropped (the requester's "
                         "channel or connection is full, or its route refused it)", self.name)


def _busy(payload: bytes, limit: int) -> Response:
    rid, path, method = _request_id(payload)
    return Response.error(rid, Status.CONFLICT, ErrorBody(
        path, method, f"too many requests in progress (at most {limit} per peer); retry once "
        "some are answered", code=TooManyRequestsError.code))


@dataclass
class Authority:
    """A running authority (see :func:`start_authority`)."""

    node: Node
    service: AuthorityService
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    addresses: tuple[str, ...] = SERVICES
    stats: dict[str, int] = field(default_factory=lambda: {
        "requests": 0, "errors": 0, "no_channel": 0, "refused_busy": 0, "replies_dropped": 0})
    max_per_peer: int = 0
    """Requests one peer may have in progress (0: ``max_in_flight // DEFAULT_PEER_SHARE``)."""
    _slots: asyncio.Semaphore = field(init=False)
    _per_peer: PeerShares = field(init=False)
    """Requests in progress by peer identifier (``None``: no channel); bounded by the slots."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _routes: _Routes = field(init=False)
    _housekeeping: asyncio.Task[None] | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.max_per_peer = default_share(self.max_in_flight, self.max_per_peer)
        self._per_peer = PeerShares(self.max_per_peer)
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._routes = _Routes(self.service)

    @property
    def identifier(self) -> str:
        return self.service.identifier

    def _finished(self, peer: str | None) -> None:
        self._per_peer.give(peer)
        self._slots.release()

    def _done(self, task: asyncio.Task[None], peer: str | None) -> None:
        self._tasks.discard(task)
        self._finished(peer)
        if not task.cancelled() and task.exception() is not None:
            log.error("authority request failed", exc_info=task.exception())

    async def respond(self, name: str, msg: LocalMessage) -> Response | None:
        """The response of service ``name`` to ``msg`` (also usable without a node)."""
        self.stats["requests"] += 1
        try:
            request = Request.decode(msg.payload)
        except DecodeError as e:
            self.stats["errors"] += 1
            rid, path, method = _request_id(msg.payload)
            warn_limited(log, "malformed", "%s: malformed request (%s)", name, safe_text(str(e)))
            return Response.error(rid, Status.BAD_REQUEST, ErrorBody(
                path, method, f"malformed request: {e}", code=BadRequestError.code))
        info = channel_info(msg)
        try:
            if info is None:
                self.stats["no_channel"] += 1
                raise SecureChannelRequiredError("secure channel required")
            handler = self._routes.find(name, request.method, request.path)
            body = await handler(Call(request, info.peer, int(self.clock())))
        except AuthorityError as e:
            self.stats["errors"] += 1
            return Response.error(request, Status(e.status), ErrorBody(
                request.path, request.method, str(e), code=e.code))
        except StorageError as e:
            self.stats["errors"] += 1
            warn_limited(log, "storage", "%s: storage failed: %s", name, safe_text(str(e)))
            return Response.error(request, Status.INTERNAL_SERVER_ERROR, ErrorBody(
                request.path, request.method, "the authority's storage failed", code="storage"))
        except TrustError as e:
            # a typed refusal from below (e.g. a usage or conflict error): the caller's problem
            self.stats["errors"] += 1
            status = Status.CONFLICT if isinstance(e, ConflictError) else Status.BAD_REQUEST
            return Response.error(request, status, ErrorBody(
                request.path, request.method, str(e),
                code="conflict" if status is Status.CONFLICT else BadRequestError.code))
        except Exception:
            self.stats["errors"] += 1
            log.exception("%s: internal error serving %s", name, safe_text(request.path))
            return Response.error(request, Status.INTERNAL_SERVER_ERROR, ErrorBody(
                request.path, request.method, "internal error", code="internal"))
        return Response.ok(request, body)

    async def _housekeep(self, interval: float) -> None:
        while True:
            try:
                purged, dropped = await self.service.housekeeping(now=int(self.clock()))
                await _sign_revocations(self.service, int(self.clock()))
                if purged or dropped:
                    log.info("housekeeping: %d expired tickets purged, %d revocations dropped",
                             purged, dropped)
            except TrustError as e:
                warn_limited(log, "housekeeping", "housekeeping failed: %s", safe_text(str(e)))
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Stop the workers and every request in progress (the repository stays open)."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
            self._housekeeping = None
        for address in self.addresses:
            with contextlib.suppress(TrustError):
                await self.node.stop_worker(address)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def start_authority(node: Node, signer: AuthoritySigner, repository: AuthorityRepository,
                          options: AuthorityOptions | None = None, *,
                          listeners: Iterable[Any] | None = None,
                          incoming: Callable[[str], AccessControl | None] | None = None,
                          max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                          max_per_peer: int = 0,
                          housekeeping_interval: float | None = HOUSEKEEPING_INTERVAL,
                          clock: Callable[[], float] = time.time) -> Authority:
    """Start the authority's services on ``node`` and return the running :class:`Authority`.

    ``signer``: the authority's identity and credential-signing key. ``repository``: where
    members, tickets, the audit log and revocations live (shared by replicas). The
    pre-trusted members of ``options`` replace the stored ones. The services become consumers
    of ``listeners`` (secure-channel listeners; default: every one the node has now, and the
    node's ``listener_consumers`` for later ones): messages reach them only out of those
    channels. ``incoming(address)`` may add an access control per service (e.g. the node's
    policies). At most ``max_in_flight`` requests are served at once, at most ``max_per_peer``
    of one peer (0: ``max_in_flight // DEFAULT_PEER_SHARE``). Housekeeping (purging expired
    tickets and old revocations) runs every ``housekeeping_interval`` seconds (``None``:
    never)."""
    service = AuthorityService(signer, repository, options)
    now = int(clock())
    signer.check(now)
    await service.load_pre_trusted(now=now)
    await service.housekeeping(now=now)
    await _sign_revocations(service, now)
    authority = Authority(node, service, max_in_flight, clock=clock, max_per_peer=max_per_peer)
    started: list[str] = []
    try:
        for name in SERVICES:
            await node.start_worker(name, _ServiceWorker(authority, name),
                                    incoming=None if incoming is None else incoming(name))
            started.append(name)
    except BaseException:
        for name in started:
            with contextlib.suppress(TrustError):
                await node.stop_worker(name)
        raise
    chosen = list(node.secure_channel_listeners() if listeners is None else listeners)
    for listener in chosen:
        for name in SERVICES:
            node.flow_controls.add_consumer(name, listener.flow_control_id)
    if listeners is None:
        node.listener_consumers.update(SERVICES)
    if housekeeping_interval is not None:
        authority._housekeeping = asyncio.get_running_loop().create_task(
            _sleep_then(housekeeping_interval, authority._housekeep(housekeeping_interval)))
    log.info("authority %s serving %s", service.identifier, ", ".join(SERVICES))
    return authority


async def _sign_revocations(service: AuthorityService, now: int) -> None:
    """Sign the current revocation list (it is then served from memory); a list that cannot
    be signed is logged."""
    try:
        await service.revocation_list(now=now)
    except AuthorityError as e:
        warn_limited(log, "revocations", "the revocation list cannot be signed: %s",
                     safe_text(str(e)))


async def _sleep_then(delay: float, then: Awaitable[None]) -> None:
    try:
        await asyncio.sleep(delay)
    except asyncio.CancelledError:
        if asyncio.iscoroutine(then):
            then.close()
        raise
    await then
