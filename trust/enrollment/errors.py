"""Typed errors of enrollment and the authority.

Each error has a stable ``code`` (sent on the wire in the error body, key 5, so a client raises
the same type without matching message text; Ockam clients ignore the key) and an HTTP-like
``status`` (the response status, as Ockam's authority uses them). Every one is a child of a
:mod:`trust.errors` class, so the CLI prints it as one line.
"""

from __future__ import annotations

from typing import ClassVar

from trust.errors import (
    ConflictError,
    NotFoundError,
    RemoteProtocolError,
    TrustError,
    UntrustedError,
    UsageError,
)

__all__ = [
    "ERROR_TYPES",
    "AuthorityError",
    "BadRequestError",
    "ConflictingRequestError",
    "ForbiddenError",
    "MemberNotFoundError",
    "NotMemberError",
    "PreTrustedError",
    "SecureChannelRequiredError",
    "TicketError",
    "TicketExpiredError",
    "TicketRevokedError",
    "TicketUnknownError",
    "TicketUsedError",
    "TooManyRequestsError",
    "UnknownPathError",
    "error_for",
]


class AuthorityError(TrustError):
    """Base class of the errors an authority answers with (each also a :mod:`trust.errors`
    child through a second base)."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500


class BadRequestError(AuthorityError, UsageError):
    """The request was malformed or asked for something impossible (400)."""

    code = "bad_request"
    status = 400


class UnknownPathError(BadRequestError):
    """No such path or method at this service (Ockam: ``unknown path``)."""

    code = "unknown_path"


class SecureChannelRequiredError(AuthorityError, UntrustedError):
    """The request did not come through a secure channel (Ockam: 400)."""

    code = "secure_channel_required"
    status = 400


class ForbiddenError(AuthorityError, UntrustedError):
    """The caller's role does not allow this (403)."""

    code = "forbidden"
    status = 403


class NotMemberError(ForbiddenError):
    """The caller is not a member (no credential for it)."""

    code = "not_member"


class PreTrustedError(ForbiddenError):
    """Pre-trusted members change only through the trusted-identities file."""

    code = "pre_trusted"


class MemberNotFoundError(AuthorityError, NotFoundError):
    """No member with this identifier (404)."""

    code = "member_not_found"
    status = 404


class TicketError(AuthorityError, UntrustedError):
    """A ticket (one-time code) was refused (403). Its text never contains the code."""

    code = "ticket"
    status = 403


class TicketUnknownError(TicketError):
    """No ticket has this code (never issued, forged, or purged after it expired)."""

    code = "ticket_unknown"


class TicketExpiredError(TicketError):
    """The ticket expired."""

    code = "ticket_expired"


class TicketUsedError(TicketError):
    """The ticket was already used as many times as it allows."""

    code = "ticket_used"


class TicketRevokedError(TicketError):
    """The ticket's creator is no longer an enroller or an admin (deleted, or its role
    removed): its tickets enroll nobody."""

    code = "ticket_revoked"


class ConflictingRequestError(AuthorityError, ConflictError):
    """The request conflicts with the authority's state (409)."""

    code = "conflict"
    status = 409


class TooManyRequestsError(ConflictingRequestError):
    """The caller already has as many requests in progress as one peer may (409: Ockam's
    status codes have no 429); retry once some are answered."""

    code = "too_many_requests"


ERROR_TYPES: dict[str, type[AuthorityError]] = {
    cls.code: cls for cls in (
        AuthorityError, BadRequestError, UnknownPathError, SecureChannelRequiredError,
        ForbiddenError, NotMemberError, PreTrustedError, MemberNotFoundError, TicketError,
        TicketUnknownError, TicketExpiredError, TicketUsedError, TicketRevokedError,
        ConflictingRequestError,
        TooManyRequestsError)
}
"""Error classes by their wire ``code``."""


def error_for(status: int, code: str | None, message: str) -> TrustError:
    """The typed error for an error response from an authority: by ``code`` when it is one we
    know, else by ``status`` (403 forbidden, 404 not found, 400 bad request, others: the peer
    failed)."""
    cls = ERROR_TYPES.get(code or "")
    if cls is not None and cls is not AuthorityError:
        return cls(message)
    if status in (401, 403):
        return ForbiddenError(message)
    if status == 404:
        return MemberNotFoundError(message)
    if status in (400, 405):
        return BadRequestError(message)
    if status == 409:
        return ConflictingRequestError(message)
    return RemoteProtocolError(f"the authority failed ({status}): {message}")
