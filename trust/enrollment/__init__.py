"""Enrollment and the authority: one-time tickets, members and roles, credentials, a signed
revocation list, an audit log (see ``docs/enrollment.md``).

* :mod:`.messages` — the wire types; :mod:`.ticket` — ``ExportedEnrollmentTicket`` text;
* :mod:`.service` — the rules (roles, reserved attributes, tickets, credentials);
* :mod:`.authority` — the services as node workers (:func:`start_authority`);
* :mod:`.client` — :class:`AuthorityClient` over a secure channel;
* :mod:`.revocation` — build, sign, verify revocation lists;
* :mod:`.repositories` — the storage Protocol and an in-memory implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trust.lazy_exports import lazy_getattr

if TYPE_CHECKING:
    from trust.enrollment.authority import SERVICES, Authority, start_authority
    from trust.enrollment.client import AuthorityClient
    from trust.enrollment.repositories import AuthorityRepository, MemoryAuthorityRepository
    from trust.enrollment.revocation import verify_revocation_list
    from trust.enrollment.service import AuthorityOptions, AuthorityService, Role
    from trust.enrollment.signer import AuthoritySigner
    from trust.enrollment.ticket import EnrollmentTicket

_EXPORTS = {
    **dict.fromkeys(("SERVICES", "Authority", "start_authority"), "trust.enrollment.authority"),
    "AuthorityClient": "trust.enrollment.client",
    **dict.fromkeys(("AuthorityRepository", "MemoryAuthorityRepository"),
                    "trust.enrollment.repositories"),
    "verify_revocation_list": "trust.enrollment.revocation",
    **dict.fromkeys(("AuthorityOptions", "AuthorityService", "Role"), "trust.enrollment.service"),
    "AuthoritySigner": "trust.enrollment.signer",
    "EnrollmentTicket": "trust.enrollment.ticket",
}
"""Loaded on first use (:mod:`trust.lazy_exports`): a member node, which needs only the
credential refresher and the revocation client, does not import the authority (~60 ms of
its start)."""

__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())

__all__ = [
    "SERVICES",
    "Authority",
    "AuthorityClient",
    "AuthorityOptions",
    "AuthorityRepository",
    "AuthorityService",
    "AuthoritySigner",
    "EnrollmentTicket",
    "MemoryAuthorityRepository",
    "Role",
    "start_authority",
    "verify_revocation_list",
]
