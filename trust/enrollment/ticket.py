"""Enrollment tickets: Ockam's current ``ExportedEnrollmentTicket`` text layout
(``ockam_api/src/cli_state/enrollments.rs``).

A ticket is the lowercase hex of the UTF-8 text::

    <project route>,<project identifier>,<project name>,<one-time code hex>,
    <project change history hex>,<authority change history hex>[,<authority route>]

(one line, no spaces). A truststack authority fills the project places with itself: its route
(``/dnsaddr/HOST/tcp/PORT/service/api``, the secure-channel listener), its identifier, its
name, and its change history in both history places, so the ticket carries the authority's full
change history: the enrollee's trust anchor. :meth:`EnrollmentTicket.decode` also takes the
plain comma text, verifies both change histories, and checks that the project identifier is
the project history's.

The one-time code is a secret: ``repr`` and ``str`` of a ticket never show it, and no error
message quotes the ticket's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from trust.enrollment.messages.one_time_code import OneTimeCode
from trust.errors import DecodeError, TrustError
from trust.identities.identity import Identity, verify_change_history
from trust.routing import Route
from trust.routing.multiaddr import MultiAddr, parse_multiaddr

__all__ = ["MAX_TICKET_TEXT", "EnrollmentTicket", "authority_route_text"]

MAX_TICKET_TEXT: Final = 512 * 1024
"""Characters of a ticket (hex) at most."""
_NAME: Final = re.compile(r"[A-Za-z0-9_.\-]{1,128}", re.ASCII)
_HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2})+", re.ASCII)
_MAX_ROUTE: Final = 4096
MANDATORY_FIELDS: Final = 6


def authority_route_text(host_port: str, listener: str = "api") -> str:
    """The route text of an authority listening on TCP ``host:port`` (a host name, an IPv4
    address, or ``[IPv6]``), its secure-channel listener ``listener``."""
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit():
        raise DecodeError("expected HOST:PORT", field="authority address")
    if host.startswith("[") and host.endswith("]"):
        return f"/ip6/{host[1:-1]}/tcp/{port}/service/{listener}"
    return f"/dnsaddr/{host}/tcp/{port}/service/{listener}"


def _route(text: str, field_name: str) -> MultiAddr:
    if not text or len(text) > _MAX_ROUTE:
        raise DecodeError(f"a route of 1-{_MAX_ROUTE} characters", field=field_name)
    try:
        addr = parse_multiaddr(text)
    except TrustError as e:
        raise DecodeError(f"not a route ({e})", field=field_name) from None
    if not addr.segments or addr.segments[0].protocol not in ("dnsaddr", "ip4", "ip6"):
        raise DecodeError("a route must start with /dnsaddr, /ip4 or /ip6", field=field_name)
    if addr.node_names:
        raise DecodeError("a ticket's route cannot name a local node (/node)", field=field_name)
    return addr


def _history(text: str, field_name: str) -> Identity:
    if not _HEX.fullmatch(text):
        raise DecodeError("a change history is hex digits", field=field_name)
    try:
        return verify_change_history(bytes.fromhex(text))
    except DecodeError as e:
        raise DecodeError(e.message, field=f"{field_name}.{e.field}" if e.field else field_name,
                          offset=e.offset) from None
    except TrustError as e:
        raise DecodeError(f"the change history does not verify ({e})", field=field_name) from None


@dataclass(frozen=True)
class EnrollmentTicket:
    """A decoded ticket. ``project_*`` are the authority's in our tickets."""

    code: OneTimeCode = field(repr=False)
    project_route: str
    project_identifier: str
    project_name: str
    project: Identity = field(repr=False)
    authority: Identity = field(repr=False)
    authority_route_text: str | None = None

    @classmethod
    def for_authority(cls, code: OneTimeCode, route: str, authority: Identity,
                      name: str) -> EnrollmentTicket:
        """A ticket for the authority ``authority`` (named ``name``) at route text ``route``
        (see :func:`authority_route_text`)."""
        _route(route, "route")
        if not _NAME.fullmatch(name):
            raise DecodeError("a name is 1-128 ASCII letters, digits, '_', '.', '-'",
                              field="name")
        return cls(OneTimeCode(code.code), route, authority.identifier, name, authority,
                   authority, route)

    @property
    def identifier(self) -> str:
        """The authority's identifier."""
        return self.authority.identifier

    @property
    def route_text(self) -> str:
        """The route to the authority's secure-channel listener."""
        return self.authority_route_text or self.project_route

    def route(self) -> Route:
        """:attr:`route_text` as a :class:`~trust.routing.Route`."""
        return _route(self.route_text, "route").to_route()

    def text(self) -> str:
        """The comma-separated fields (this contains the code: handle as a secret)."""
        fields = [self.project_route, self.project_identifier, self.project_name,
                  self.code.hex(), self.project.export_hex(), self.authority.export_hex()]
        if self.authority_route_text is not None:
            fields.append(self.authority_route_text)
        return ",".join(fields)

    def encode(self) -> str:
        """The ticket as one copy-pasteable line (lowercase hex)."""
        return self.text().encode("utf-8").hex()

    def __str__(self) -> str:
        return f"enrollment ticket for {self.project_name} ({self.identifier})"

    @classmethod
    def decode(cls, text: str | bytes) -> EnrollmentTicket:
        """Parse a ticket: its hex (what ``ticket create`` prints) or the comma text. Raises
        :class:`~trust.errors.DecodeError` naming the field; never quotes the input."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("ascii")
            except UnicodeDecodeError:
                raise DecodeError("a ticket is ASCII text", field="ticket") from None
        if not isinstance(text, str):
            raise DecodeError("a ticket is text", field="ticket")
        t = text.strip()
        if not t:
            raise DecodeError("the ticket is empty", field="ticket")
        if len(t) > MAX_TICKET_TEXT:
            raise DecodeError(f"a ticket is at most {MAX_TICKET_TEXT} characters", field="ticket")
        if "," not in t:
            if not _HEX.fullmatch(t):
                raise DecodeError("a ticket is hex digits (or the comma-separated fields)",
                                  field="ticket")
            try:
                t = bytes.fromhex(t).decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("the ticket's hex is not UTF-8 text", field="ticket") from None
        if t.lstrip().startswith("{"):
            raise DecodeError("legacy JSON tickets (one_time_code + project) are not supported; "
                              "create a new ticket", field="ticket")
        values = t.split(",")
        if len(values) < MANDATORY_FIELDS:
            raise DecodeError(f"a ticket has at least {MANDATORY_FIELDS} comma-separated fields, "
                              f"found {len(values)}", field="ticket")
        if len(values) > MANDATORY_FIELDS + 1:
            raise DecodeError(f"a ticket has at most {MANDATORY_FIELDS + 1} comma-separated "
                              f"fields, found {len(values)}", field="ticket")
        route, identifier, name, code_hex, project_hex, authority_hex = values[:6]
        _route(route, "ticket.project_route")
        if not _NAME.fullmatch(name):
            raise DecodeError("a name is 1-128 ASCII letters, digits, '_', '.', '-'",
                              field="ticket.project_name")
        try:
            code = OneTimeCode.from_hex(code_hex)
        except DecodeError:
            raise DecodeError("the one-time code is 64 hex digits",
                              field="ticket.one_time_code") from None
        project = _history(project_hex, "ticket.project_change_history")
        authority = project if authority_hex == project_hex else \
            _history(authority_hex, "ticket.authority_change_history")
        if identifier != project.identifier:
            raise DecodeError("the project identifier is not the project change history's",
                              field="ticket.project_identifier")
        authority_route = values[6] if len(values) > 6 else None
        if authority_route is not None:
            _route(authority_route, "ticket.authority_route")
        return cls(code, route, identifier, name, project, authority, authority_route)
