"""Portal policies from a node's enforcement point (:class:`trust.channels.access.NodeAccess`).

An inlet and an outlet are resources of the node (types ``tcp-inlet`` and ``tcp-outlet``):
the policy stored for the resource (``policy create --resource NAME``, or ``--allow`` when the
portal is created), else for its type, decides; without either, a node with an authority
requires a credential from it, and a node without one lets through only secure-channel
traffic (the peer of the channel is the subject, as for every resource).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from trust.channels.access import subject_of
from trust.channels.local_info import channel_info
from trust.portals.portal import Authorize

if TYPE_CHECKING:
    from trust.channels.access import NodeAccess
    from trust.routing import LocalMessage

__all__ = ["INLET_TYPE", "OUTLET_TYPE", "resource_authorizer"]

INLET_TYPE: Final = "tcp-inlet"
OUTLET_TYPE: Final = "tcp-outlet"


def resource_authorizer(access: NodeAccess, resource: str, resource_type: str) -> Authorize:
    """Register ``resource`` (of ``resource_type``) with ``access`` and return the portal's
    ``authorize``: the node's decision for the peer the message came from (a message from this
    node's own workers, with no transport or channel behind it, is allowed)."""
    access.registry.add(resource, resource_type)

    def authorize(msg: LocalMessage) -> tuple[bool, str]:
        if not msg.local_info:
            return True, "a local message"
        info = channel_info(msg)
        subject = None if info is None else subject_of(info.peer, access.authorities)
        decision = access.decide(resource, subject)
        if decision.allowed:
            access.allowed += 1
        else:
            access.denied += 1
        return decision.allowed, decision.reason

    return authorize
