"""Portal policies from a node's enforcement point (:class:`trust.channels.access.NodeAccess`).

An inlet and an outlet are resources of the node (types ``tcp-inlet`` and ``tcp-outlet``):
the policy stored for the resource (``policy create --resource NAME``, or ``--allow`` when the
portal is created), else for its type, decides; without either, a node with an authority
requires a credential from it, and a node without one lets through only secure-channel
traffic (the peer of the channel is the subject, as for every resource).

Revocation comes first: a peer the node's revocation list names (and that shows no credential
created since) is refused on its Ping (at an outlet) or its Pong (at an inlet), whatever the
policies say. Portal connections are not checked per message (their data path stays free of
it); instead :func:`enforce_revocations` closes, the moment the list is replaced, every open
connection whose peer it revokes (:func:`close_revoked`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final

from trust.channels.access import subject_of
from trust.channels.local_info import channel_info
from trust.portals.portal import Authorize, TcpInlet, TcpOutlet

if TYPE_CHECKING:
    from trust.channels.access import NodeAccess
    from trust.channels.peer import VerifiedPeer
    from trust.routing import Address, LocalMessage

__all__ = ["INLET_TYPE", "OUTLET_TYPE", "close_revoked", "enforce_revocations",
           "resource_authorizer", "revoked_reason"]

log = logging.getLogger("trust.portals")

INLET_TYPE: Final = "tcp-inlet"
OUTLET_TYPE: Final = "tcp-outlet"


def revoked_reason(access: NodeAccess, msg: LocalMessage) -> str | None:
    """Why ``msg``'s channel peer is refused by the node's revocation list, or ``None`` (not
    revoked, or no channel)."""
    if not access.revoked or not msg.local_info:
        return None
    info = channel_info(msg)
    if info is None or not access.is_revoked(info.peer):
        return None
    return f"{info.identifier} is revoked by its authority"


def resource_authorizer(access: NodeAccess, resource: str, resource_type: str) -> Authorize:
    """Register ``resource`` (of ``resource_type``) with ``access`` and return the portal's
    ``authorize``: refused when the peer the message came from is revoked, else the node's
    decision for it (a message from this node's own workers, with no transport or channel
    behind it, is allowed)."""
    access.registry.add(resource, resource_type)

    def authorize(msg: LocalMessage) -> tuple[bool, str]:
        if not msg.local_info:
            return True, "a local message"
        revoked = revoked_reason(access, msg)
        if revoked is not None:
            access.denied += 1
            access.revoked_dropped += 1
            return False, revoked
        info = channel_info(msg)
        subject = None if info is None else subject_of(info.peer, access.authorities)
        decision = access.decide(resource, subject)
        if decision.allowed:
            access.allowed += 1
        else:
            access.denied += 1
        return decision.allowed, decision.reason

    return authorize


Portal = TcpInlet | TcpOutlet


def close_revoked(access: NodeAccess, portals: Iterable[Portal]) -> int:
    """Close every open connection of ``portals`` whose channel peer ``access`` says is revoked
    (:meth:`~trust.channels.access.NodeAccess.is_revoked`: a credential created after the
    revocation keeps it; the channel's latest verified peer counts, even when no message came
    since its credential refresh). Each is logged and counted as a deny of its portal (the
    other side is told: Disconnect); returns how many were closed."""
    if not access.revoked:
        return 0
    current: dict[Address, VerifiedPeer] | None = None
    closed = 0
    for portal in portals:
        for conn in list(portal.connections):
            info = conn.peer_channel
            if info is None or conn.closing:
                continue
            if current is None:  # the channels' peers now (refreshed credentials included)
                current = {ch.addresses.decryptor_api: ch.peer
                           for ch in portal.node.secure_channels() if not ch.closed}
            peer = current.get(info.channel, info.peer)
            if not access.is_revoked(peer):
                continue
            portal.deny(conn, f"{peer.identifier} is revoked by its authority")
            conn.disconnect_and_abort()
            closed += 1
    return closed


def enforce_revocations(access: NodeAccess, portals: Callable[[], Iterable[Portal]]
                        ) -> Callable[[], None]:
    """Each time ``access.revoked`` is replaced, close the connections of ``portals()`` (the
    node's inlets and outlets, as they are then) whose peer it revokes (:func:`close_revoked`);
    and have the outlets among them check the peer again once their target is connected (so a
    Ping allowed just before the list changed does not slip through). Returns the function that
    stops it."""
    def recheck(msg: LocalMessage) -> str | None:
        try:
            return revoked_reason(access, msg)
        except Exception:  # fail closed
            log.exception("the revocation check of a portal connection failed; refusing it")
            return "the revocation check failed"

    def changed(revoked: Mapping[str, int]) -> None:
        held = list(portals())
        for portal in held:
            if isinstance(portal, TcpOutlet) and portal.recheck is None:
                portal.recheck = recheck
        count = close_revoked(access, held)
        if count:
            log.warning("node %s: %d portal connection%s of revoked peers closed", access.scope,
                        count, "" if count == 1 else "s")

    return access.on_revocation(changed)
