"""The authority's wire types, one module each (Ockam's where Ockam has one):

* :mod:`.envelope` — the request/response envelope and the error body;
* :mod:`.add_member`, :mod:`.attributes_entry`, :mod:`.member_list`, :mod:`.member_ids` —
  ``direct_authenticator``;
* :mod:`.create_token`, :mod:`.one_time_code` — the ticket issuer and acceptor;
* credentials travel as :class:`trust.models.credential.CredentialAndPurposeKey`;
* :mod:`.audit_query`, :mod:`.audit_entry`, :mod:`.audit_log`, :mod:`.revocation_list` — ours.
"""

from trust.enrollment.messages.add_member import AddMember
from trust.enrollment.messages.attributes_entry import AttributesEntry
from trust.enrollment.messages.audit_entry import ACTIONS, AuditEntry
from trust.enrollment.messages.audit_log import AuditLog
from trust.enrollment.messages.audit_query import MAX_AUDIT_LIMIT, AuditQuery
from trust.enrollment.messages.create_token import CreateToken
from trust.enrollment.messages.envelope import (
    ErrorBody,
    Method,
    Request,
    RequestHeader,
    Response,
    ResponseHeader,
    Status,
)
from trust.enrollment.messages.member_ids import MemberIds
from trust.enrollment.messages.member_list import MAX_LISTED_MEMBERS, MemberList
from trust.enrollment.messages.one_time_code import CODE_SIZE, OneTimeCode
from trust.enrollment.messages.revocation_list import (
    REVOCATION_LIST_DATA_TYPE,
    RevocationListData,
    Revoked,
    SignedRevocationList,
)

__all__ = [
    "ACTIONS",
    "CODE_SIZE",
    "MAX_AUDIT_LIMIT",
    "MAX_LISTED_MEMBERS",
    "REVOCATION_LIST_DATA_TYPE",
    "AddMember",
    "AttributesEntry",
    "AuditEntry",
    "AuditLog",
    "AuditQuery",
    "CreateToken",
    "ErrorBody",
    "MemberIds",
    "MemberList",
    "Method",
    "OneTimeCode",
    "Request",
    "RequestHeader",
    "Response",
    "ResponseHeader",
    "RevocationListData",
    "Revoked",
    "SignedRevocationList",
    "Status",
]
