"""Node feature: a node that relies on an authority (``node create --ticket`` or
``--authority-route``) keeps its credential fresh and enforces the authority's revocations.

With ``authority_route`` in the node's record (the ticket's authority route, or
``--authority-route``), at start:

* **Revocation.** The last list accepted (``nodes/NAME/revocation.bin``) is verified and
  enforced at once; then the authority's ``revocation_list`` service is pulled every
  ``revocation_refresh`` seconds (default 30) over a secure channel to the authority (one of the
  node's authorities; the channel is reopened when it breaks). Each newer list that verifies
  replaces :attr:`~trust.channels.access.NodeAccess.revoked`: messages on open channels from a
  revoked identifier are dropped (logged), its open portal connections are closed (the portal
  feature listens: :func:`trust.portals.policy.enforce_revocations`) and the node's
  secure-channel listeners refuse its new channels (their trust policy gets
  :meth:`~trust.channels.access.NodeAccess.revocation_trust`; listeners created later are
  guarded at the next pull). A refused list (older version, bad signature) or a failed pull is
  logged and the last list stays enforced.
* **Credential** (``credential_refresh``: the node enrolled with a ticket). The node's credential
  comes from the authority's ``credential_issuer``: fetched at start when missing or about to
  expire, then refreshed in the background before expiry
  (:class:`~trust.enrollment.credential_refresh.CredentialRefresher`). Each new credential is
  recorded in ``node.json``, presented on the node's open channels (RefreshCredentials) and in
  every channel opened or accepted afterwards.

Control methods: ``enrollment.show`` (the authority, the list held, the credential held, the
counters), ``revocation.refresh`` and ``credential.refresh`` (pull now; a failure is the
method's error and changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from trust.enrollment.credential_refresh import CredentialRefresher
from trust.enrollment.revocation_client import (
    DEFAULT_REFRESH,
    MAX_LIST_BYTES,
    RevocationPoller,
    RevocationSnapshot,
    RevocationState,
)
from trust.errors import StorageError, TrustError, UsageError
from trust.logsafe import safe_text, warn_limited
from trust.node.files import read_record, write_json

if TYPE_CHECKING:
    from trust.channels.workers import SecureChannel, SecureChannelListener
    from trust.enrollment.client import AuthorityClient
    from trust.enrollment.ticket import EnrollmentTicket
    from trust.identities.identity import Identity
    from trust.models.credential import CredentialAndPurposeKey
    from trust.node.control_server import ControlServer
    from trust.node.daemon import NodeRuntime

__all__ = ["REVOCATION_FILE", "EnrollmentState", "enroll_identity", "register", "start", "stop"]

log = logging.getLogger("trust.node.enrollment")

REVOCATION_FILE: Final = "revocation.bin"
"""The last revocation list a node accepted, in its node directory."""
MAX_SHOWN: Final = 100
"""Revoked identifiers ``enrollment.show`` lists at most (``revoked_count`` counts them all)."""
CHANNEL_TIMEOUT: Final = 10.0
"""Seconds opening the secure channel to the authority may take."""


class EnrollmentState:
    """The feature's state in ``runtime.features[__name__]``."""

    def __init__(self, runtime: NodeRuntime, route_text: str) -> None:
        if not runtime.authorities:
            raise StorageError(f"node {runtime.name}: an authority route is recorded but no "
                               "authority; create the node again")
        self.runtime = runtime
        self.route_text = route_text
        self.authorities: list[Identity] = list(runtime.authorities)
        self._channel: SecureChannel | None = None
        self._channel_lock = asyncio.Lock()
        self._guarded: weakref.WeakSet[SecureChannelListener] = weakref.WeakSet()
        config = runtime.config
        interval = config.get("revocation_refresh") or DEFAULT_REFRESH
        self.revocations = RevocationState(self.authorities)
        self.poller = RevocationPoller(self.revocations, self._fetch_revocation_list,
                                       float(interval), on_update=self._enforce,
                                       name=runtime.name)
        self.refresher: CredentialRefresher | None = None
        if config.get("credential_refresh"):
            self.refresher = CredentialRefresher(self._fetch_credential, self._verify_credential,
                                                 current=runtime.credential, name=runtime.name)
            self.refresher.subscribe(self._present)

    @property
    def revocation_path(self) -> Path:
        return self.runtime.paths.dir / REVOCATION_FILE

    # -- the channel to the authority ------------------------------------------------------------
    async def channel(self) -> SecureChannel:
        """An open secure channel to the authority (as the node's identity, presenting its
        credential; the peer must be one of the node's authorities)."""
        async with self._channel_lock:
            ch = self._channel
            if ch is not None and not ch.closed:
                return ch
            from trust.node.resolve import route_from_text

            route = route_from_text(self.route_text, self.runtime.paths.home)
            ch = await self.runtime.open_channel(
                route, authorized=[a.identifier for a in self.authorities],
                timeout=CHANNEL_TIMEOUT)
            self._channel = ch
            return ch

    async def _drop_channel(self) -> None:
        ch, self._channel = self._channel, None
        if ch is not None and not ch.closed:
            with contextlib.suppress(TrustError, OSError):
                await ch.close()

    async def _call(self, op: Callable[[AuthorityClient], Awaitable[Any]]) -> Any:
        """``await op(client)`` with an :class:`AuthorityClient` on the authority channel; a
        failure closes the channel (the next call opens a new one) and is raised."""
        from trust.enrollment.client import AuthorityClient

        try:
            ch = await self.channel()
            return await op(AuthorityClient(self.runtime.node, ch, timeout=CHANNEL_TIMEOUT))
        except (TrustError, OSError, TimeoutError):
            await self._drop_channel()
            raise

    async def _fetch_revocation_list(self) -> bytes:
        self.guard_listeners()  # (listeners created since the last pull)

        async def pull(client: AuthorityClient) -> bytes:
            return (await client.revocation_list()).encode()

        data: bytes = await self._call(pull)
        return data

    async def _fetch_credential(self) -> CredentialAndPurposeKey:
        async def fetch(client: AuthorityClient) -> CredentialAndPurposeKey:
            return await client.get_credential()

        cred: CredentialAndPurposeKey = await self._call(fetch)
        return cred

    def _verify_credential(self, credential: CredentialAndPurposeKey) -> Any:
        from trust.credentials.verification import verify_credential

        return verify_credential(credential, self.authorities,
                                 expected_subject=self.runtime.identity)

    # -- revocation ------------------------------------------------------------------------------
    def guard_listeners(self) -> None:
        """Add the revocation check to the trust policy of every secure-channel listener of the
        node not guarded yet."""
        access = self.runtime.access
        for listener in self.runtime.node.secure_channel_listeners():
            if listener in self._guarded:
                continue
            auth = listener.authenticator
            auth.trust = access.revocation_trust() & auth.trust
            self._guarded.add(listener)

    def _enforce(self, snapshot: RevocationSnapshot) -> None:
        self.runtime.access.revoked = dict(snapshot.revoked)
        self.guard_listeners()
        if snapshot.revoked:
            log.warning("node %s: enforcing revocation list version %d: %s", self.runtime.name,
                        snapshot.version, safe_text(", ".join(sorted(snapshot.revoked)), 2000))
        self._save()

    def _save(self) -> None:
        """Keep the list accepted (atomically, 0600) so a restart enforces it at once and never
        goes back to an older one."""
        data = self.revocations.raw
        if data is None:
            return
        path = self.revocation_path
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            warn_limited(log, "revocation_save", "node %s: cannot keep the revocation list in "
                         "%s: %s", self.runtime.name, path, safe_text(e))

    def _load_saved(self) -> None:
        try:
            data = read_record(self.revocation_path, limit=MAX_LIST_BYTES)
        except StorageError as e:
            log.warning("node %s: the kept revocation list is not used: %s", self.runtime.name,
                        safe_text(e))
            return
        if data is None:
            return
        try:
            self.revocations.apply(data)
        except (TrustError, ValueError) as e:
            log.warning("node %s: the kept revocation list is not used: %s", self.runtime.name,
                        safe_text(e))
            return
        snap = self.revocations.snapshot
        if snap is not None:
            self.runtime.access.revoked = dict(snap.revoked)

    # -- credential ------------------------------------------------------------------------------
    async def _present(self, credential: CredentialAndPurposeKey) -> None:
        """Use ``credential`` from now on: in new channels (the node's own and its listeners'),
        on the open channels of the node's identity (RefreshCredentials), and in node.json."""
        from trust.channels.handshake import ChannelIdentity
        from trust.channels.messages import IdentityAndCredentials

        runtime = self.runtime
        runtime.credential = credential
        history = runtime.identity.export()
        for listener in runtime.node.secure_channel_listeners():
            p = listener.identity.payload
            if p.change_history_raw == history:
                listener.identity = ChannelIdentity(listener.identity.static,
                                                    IdentityAndCredentials.of(
                                                        p.change_history_raw,
                                                        p.purpose_key_attestation, (credential,)))
        for channel in runtime.node.secure_channels():
            if channel.closed or channel.identity.payload.change_history_raw != history:
                continue
            try:
                await channel.refresh_credentials([credential])
            except (TrustError, OSError) as e:
                warn_limited(log, "present", "node %s: channel %s did not take the new "
                             "credential: %s", runtime.name, channel.address, safe_text(e))
        runtime.config["credential"] = credential.encode().hex()
        try:
            write_json(runtime.paths.config, runtime.config)
        except StorageError as e:
            log.warning("node %s: the new credential is not recorded: %s", runtime.name, e)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._load_saved()
        self.guard_listeners()
        # in the background: an authority that is slow or down does not hold the node's start
        # up (the kept list is enforced already; the recorded credential is presented)
        if self.refresher is not None:
            await self.refresher.start(wait=False)
        await self.poller.start(wait=False)

    async def stop(self) -> None:
        await self.poller.stop()
        if self.refresher is not None:
            await self.refresher.stop()
        await self._drop_channel()

    def show(self) -> dict[str, Any]:
        snap = self.revocations.snapshot
        poller = self.poller
        out: dict[str, Any] = {
            "authorities": [a.identifier for a in self.authorities],
            "route": self.route_text,
            "revocation": {
                "interval": poller.interval, "version": None if snap is None else snap.version,
                "authority": None if snap is None else snap.authority,
                "revoked_count": 0 if snap is None else len(snap.revoked),
                "revoked": [] if snap is None else sorted(snap.revoked)[:MAX_SHOWN],
                "refreshes": poller.refreshes, "updates": poller.updates,
                "failures": poller.failures, "refused": poller.refused,
                "last_error": poller.last_error},
            "credential": None,
        }
        r = self.refresher
        if r is not None:
            v = r.verified
            out["credential"] = {
                "issuer": None if v is None else v.issuer,
                "created_at": None if v is None else v.created_at,
                "expires_at": None if v is None else v.expires_at,
                "refreshes": r.refreshes, "failures": r.failures, "last_error": r.last_error}
        return out


async def enroll_identity(ticket: EnrollmentTicket, identity: str, *,
                          home: str | os.PathLike[str] | None = None, create: bool = False,
                          timeout: float = CHANNEL_TIMEOUT * 3) -> CredentialAndPurposeKey:
    """Enroll the local identity ``identity`` of ``home`` with the ticket's authority (what
    ``node create --ticket`` does before it records the node): open a secure channel to the
    ticket's authority route, accepting only the authority the ticket names (its change history
    is the trust anchor), redeem the ticket and fetch the credential, verified. ``create``: a
    missing identity is created (and deleted again when the enrollment fails)."""
    from trust.credentials.verification import verify_credential
    from trust.enrollment.client import AuthorityClient
    from trust.errors import NotFoundError
    from trust.node.node import Node
    from trust.services import open_identities

    manager = open_identities(home)
    created = False
    try:
        try:
            named = await manager.get(identity)
        except NotFoundError:
            if not create:
                raise
            named = await manager.get_or_create(identity)
            created = True
        try:
            async with Node(f"enroll-{identity}"[:63]) as node:
                client = await AuthorityClient.connect(node, named, ticket.route(),
                                                       ticket.authority, identities=manager,
                                                       timeout=timeout)
                async with client:
                    credential = await client.enroll(ticket)
            verify_credential(credential, [ticket.authority], expected_subject=named)
        except BaseException:
            if created:
                with contextlib.suppress(Exception):
                    await manager.delete(identity)
            raise
        log.info("identity %s enrolled with authority %s (%s)", safe_text(identity),
                 ticket.identifier, safe_text(ticket.route_text))
        return credential
    finally:
        await manager.close()


def _state(runtime: NodeRuntime) -> EnrollmentState:
    state = runtime.features.get(__name__)
    if state is None:
        raise UsageError(f"node {runtime.name} relies on no authority route (node create "
                         "--ticket or --authority-route)")
    return state  # type: ignore[no-any-return]


async def start(runtime: NodeRuntime) -> None:
    route = runtime.config.get("authority_route")
    if not route:
        return
    state = EnrollmentState(runtime, route)
    runtime.features[__name__] = state
    await state.start()


async def stop(runtime: NodeRuntime) -> None:
    state = runtime.features.pop(__name__, None)
    if state is not None:
        await state.stop()


def register(server: ControlServer, runtime: NodeRuntime) -> None:
    async def show(params: dict[str, Any]) -> dict[str, Any]:
        return _state(runtime).show()

    async def refresh_revocations(params: dict[str, Any]) -> dict[str, Any]:
        state = _state(runtime)
        await state.poller.refresh()
        return state.show()["revocation"]  # type: ignore[no-any-return]

    async def refresh_credential(params: dict[str, Any]) -> dict[str, Any]:
        state = _state(runtime)
        if state.refresher is None:
            raise UsageError(f"node {runtime.name} did not enroll with a ticket: its credential "
                             "is not refreshed from the authority")
        await state.refresher.refresh()
        return state.show()["credential"]  # type: ignore[no-any-return]

    server.register("enrollment.show", show)
    server.register("revocation.refresh", refresh_revocations)
    server.register("credential.refresh", refresh_credential)
