"""ExportedEnrollmentTicket text: Ockam's layout (hex of the comma-separated fields), our
authority in the project places, strict decoding that never quotes the ticket."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.enrollment.helpers import world
from trust.enrollment.messages import OneTimeCode
from trust.enrollment.ticket import EnrollmentTicket, authority_route_text
from trust.errors import DecodeError

CODE = OneTimeCode(bytes(range(32)))
ROUTE = "/dnsaddr/127.0.0.1/tcp/4000/service/api"


def make() -> EnrollmentTicket:
    return EnrollmentTicket.for_authority(CODE, ROUTE, world().signer.identity, "company")


def test_layout_is_ockams() -> None:
    t = make()
    history = world().signer.identity.export_hex()
    plain = bytes.fromhex(t.encode()).decode()
    assert plain == ",".join([ROUTE, t.identifier, "company", CODE.hex(), history, history,
                              ROUTE])
    assert t.encode() == t.encode().lower()
    back = EnrollmentTicket.decode(t.encode())
    assert back.code == CODE and back.identifier == world().signer.identifier
    assert back.route_text == ROUTE and back.project_name == "company"
    assert back.authority == world().signer.identity
    # the plain comma text and surrounding white space are accepted too
    assert EnrollmentTicket.decode(f"  {plain}\n").code == CODE
    # without the optional 7th field the project route is the authority route
    six = ",".join(plain.split(",")[:6])
    assert EnrollmentTicket.decode(six.encode().hex()).route_text == ROUTE
    assert [a.name for a in back.route().addresses] == ["127.0.0.1:4000", "api"]


def test_route_text_of_addresses() -> None:
    assert authority_route_text("127.0.0.1:4000") == ROUTE
    assert authority_route_text("[::1]:4000") == "/ip6/::1/tcp/4000/service/api"
    with pytest.raises(DecodeError):
        authority_route_text("nowhere")


def _fields(**change: str) -> str:
    fields = bytes.fromhex(make().encode()).decode().split(",")
    names = ["route", "identifier", "name", "code", "project", "authority", "authority_route"]
    for k, v in change.items():
        fields[names.index(k)] = v
    return ",".join(fields).encode().hex()


@pytest.mark.parametrize("text, field", [
    ("", "ticket"),
    ("zz", "ticket"),
    ("abc", "ticket"),
    (b"a,b".hex(), "at least 6"),
    (_fields(route="not a route"), "ticket.project_route"),
    (_fields(route="/node/n1/service/api"), "ticket.project_route"),
    (_fields(identifier="I" + "00" * 32), "ticket.project_identifier"),
    (_fields(name="bad name"), "ticket.project_name"),
    (_fields(code="00" * 31), "ticket.one_time_code"),
    (_fields(project="00ff"), "ticket.project_change_history"),
    (_fields(authority="zz"), "ticket.authority_change_history"),
    (_fields(authority_route="/service"), "ticket.authority_route"),
    (_fields(authority_route=ROUTE + "," + ROUTE), "at most 7"),
    (b'{"one_time_code": "00"}'.hex(), "legacy"),
])
def test_malformed_tickets_are_refused_without_quoting_them(text: str, field: str) -> None:
    with pytest.raises(DecodeError, match=field) as e:
        EnrollmentTicket.decode(text)
    assert CODE.hex() not in str(e.value) and (not text or text[:80] not in str(e.value))


def test_a_tampered_history_does_not_verify() -> None:
    history = world().signer.identity.export_hex()
    tampered = history[:-4] + ("00" if history[-4:-2] != "00" else "11") + history[-2:]
    with pytest.raises(DecodeError, match="change_history"):
        EnrollmentTicket.decode(_fields(project=tampered, authority=tampered))


def test_the_code_is_never_shown() -> None:
    t = make()
    assert CODE.hex() not in repr(t) and CODE.hex() not in str(t)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(bytes.hex)))
def test_any_text_decodes_or_raises_decode_error(text: str) -> None:
    try:
        EnrollmentTicket.decode(text)
    except DecodeError:
        pass
