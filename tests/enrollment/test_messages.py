"""The authority's wire types: Ockam's bytes for the envelope and its bodies, round trips, and
property tests: any bytes in (random or mutated valid messages) give a value or a DecodeError,
and whatever decodes re-encodes to the same bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.enrollment.helpers import world
from tests.strategies import mutations_of
from trust.enrollment.messages import (
    AddMember,
    AttributesEntry,
    AuditEntry,
    AuditLog,
    AuditQuery,
    CreateToken,
    ErrorBody,
    MemberIds,
    MemberList,
    Method,
    OneTimeCode,
    Request,
    RequestHeader,
    Response,
    ResponseHeader,
    Revoked,
    SignedRevocationList,
    Status,
)
from trust.enrollment.revocation import build_revocation_list, sign_revocation_list
from trust.errors import DecodeError

SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
A = "I" + "aa" * 32
B = "I" + "bb" * 32


def test_request_header_is_ockams_map() -> None:
    h = RequestHeader(7, "/members", Method.POST, True)
    # {1: 7, 2: "/members", 3: 1, 4: true}
    assert h.encode().hex() == "a4010702682f6d656d626572730301" + "04f5"
    r = Request(h, AddMember(B, {"role": "db"}).encode())
    assert Request.decode(r.encode()) == r
    assert RequestHeader(1, "/", None, False).encode().hex() == "a30101026" + "12f04f4"


def test_response_header_and_error_body_are_ockams() -> None:
    h = ResponseHeader(5, 7, Status.FORBIDDEN, True)
    assert h.encode().hex() == "a40105020703190193" + "04f5"
    e = ErrorBody("/", Method.POST, "Non-enroller is trying to issue an enrollment token")
    resp = Response(h, e.encode())
    got = Response.decode(resp.encode())
    assert got.error_body() == e and not got.is_ok and got.status is Status.FORBIDDEN
    # Ockam may send a bare string as the error
    text = Response(h, b"\x62no")
    assert text.error_body().message == "no"
    # our code key (5) is optional: Ockam's decoder skips it, ours reads it
    assert ErrorBody.decode(ErrorBody(message="x", code="ticket_used").encode()).code == \
        "ticket_used"


def test_bodies_match_ockams_layout() -> None:
    assert OneTimeCode(b"\x01" * 32).encode() == b"\xa1\x01\x58\x20" + b"\x01" * 32
    assert CreateToken({"b": "2", "a": "1"}).encode().hex() == "a101a2616161316162613" + "2"
    assert CreateToken({}, 600, 1).encode().hex() == "a301a00219025803" + "01"
    assert AddMember(B, {}).encode() == b"\xa2\x01\x58\x20" + b"\xbb" * 32 + b"\x02\xa0"
    entry = AttributesEntry({"k": "v"}, 10, None, A)
    assert entry.encode() == (b"\xa3\x01\xa1\x41k\x41v\x02\x0a\x04\x58\x20" + b"\xaa" * 32)


def _signed() -> bytes:
    w = world()

    async def go() -> bytes:
        data = build_revocation_list(w.signer.identity, 3, [Revoked(A, 5), Revoked(B, 6)], now=9)
        return (await sign_revocation_list(data, w.signer)).encode()

    return asyncio.run(go())


SEEDS: dict[str, tuple[Callable[[bytes], Any], list[bytes]]] = {
    "request": (Request.decode, [Request.of(Method.GET, "/members", request_id=3).encode(),
                                 Request.of(Method.POST, "/", OneTimeCode(b"\x02" * 32).encode(),
                                            request_id=9).encode()]),
    "response": (Response.decode, [Response.ok(3, MemberIds((A, B)).encode()).encode(),
                                   Response.error(4, Status.NOT_FOUND, ErrorBody(
                                       "/x", Method.GET, "gone", ErrorBody(message="why"),
                                       "member_not_found")).encode()]),
    "error": (ErrorBody.decode, [ErrorBody("/", Method.DELETE, "m", None, "c").encode()]),
    "add_member": (AddMember.decode, [AddMember(A, {"x": "1", "y": "é"}).encode()]),
    "create_token": (CreateToken.decode, [CreateToken({"a": "b"}, 60, 2).encode(),
                                          CreateToken().encode()]),
    "one_time_code": (OneTimeCode.decode, [OneTimeCode(b"\x03" * 32, "ref_1", 99).encode()]),
    "attributes_entry": (AttributesEntry.decode, [
        AttributesEntry({"a": "1"}, 5, 9, B, True).encode(), AttributesEntry().encode()]),
    "member_list": (MemberList.decode, [MemberList({A: AttributesEntry({"a": "1"}, 1, None, B),
                                                    B: AttributesEntry()}).encode()]),
    "member_ids": (MemberIds.decode, [MemberIds((A, B)).encode()]),
    "audit_query": (AuditQuery.decode, [AuditQuery(5, 10).encode(), AuditQuery().encode()]),
    "audit_entry": (AuditEntry.decode, [AuditEntry(1, 2, A, "ticket.redeem", B, "ref1",
                                                   {"x": "y"}).encode()]),
    "audit_log": (AuditLog.decode, [AuditLog((AuditEntry(1, 2, A, "member.add"),
                                              AuditEntry(2, 3, A, "member.delete", B))).encode()]),
}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seeds_round_trip(name: str) -> None:
    decode, seeds = SEEDS[name]
    for raw in seeds:
        value = decode(raw)
        assert value.encode() == raw


def test_signed_revocation_list_round_trips() -> None:
    raw = _signed()
    srl = SignedRevocationList.decode(raw)
    assert srl.encode() == raw and srl.content.version == 3 and A in srl.content


def _check(decode: Callable[[bytes], Any], data: bytes) -> None:
    try:
        value = decode(data)
    except DecodeError:
        return
    assert value.encode() == data


@pytest.mark.parametrize("name", sorted(SEEDS))
@SETTINGS
@given(data=st.data())
def test_any_bytes_decode_or_raise_decode_error(name: str, data: st.DataObject) -> None:
    decode, seeds = SEEDS[name]
    raw = data.draw(st.one_of(st.binary(max_size=200), mutations_of(seeds)))
    _check(decode, raw)


def test_signed_revocation_list_any_bytes() -> None:
    raw = _signed()

    @SETTINGS
    @given(mutations_of([raw]))
    def check(data: bytes) -> None:
        _check(SignedRevocationList.decode, data)

    check()


@pytest.mark.parametrize("bad, why", [
    (b"\xa2\x02\x61/\x01\x01" + b"\x04\xf4", "increasing"),           # keys out of order
    (b"\xa4\x01\x01\x02\x61/\x03\x01\x05\xf4", "unknown field"),      # unknown key
    (b"\xa2\x01\x01\x04\xf4", "missing field 2"),                      # no path
    (b"\xa4\x01\x01\x02\x61/\x03\x09\x04\xf4", "unknown method"),
    (b"\xa4\x01\x18\x01\x02\x61/\x03\x01\x04\xf4", "shortest"),       # non-canonical id
    (b"\xa3\x01\x01\x02\x61/\x04\xf5", "truncated"),                   # has_body, no body
    (b"\xa3\x01\x01\x02\x61/\x04\xf4\x00", "trailing"),               # body not announced
])
def test_strict_request_decoding(bad: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        Request.decode(bad)


def test_attribute_limits() -> None:
    with pytest.raises(DecodeError, match="attribute name"):
        AddMember(A, {"bad name": "x"})
    with pytest.raises(DecodeError, match="at most 1024 bytes"):
        AddMember(A, {"a": "x" * 1025})
    with pytest.raises(DecodeError, match="more than the 64"):
        CreateToken({f"a{i}": "x" for i in range(65)})
    with pytest.raises(DecodeError, match="identifier"):
        AddMember("Ixyz", {})
    # text maps must come sorted (BTreeMap order), each name once
    unsorted = b"\xa1\x01\xa2\x61b\x61x\x61a\x61y"
    with pytest.raises(DecodeError, match="increasing order"):
        CreateToken.decode(unsorted)


def test_one_time_code_never_shows_itself() -> None:
    code = OneTimeCode(bytes(range(32)))
    assert code.hex() not in repr(code) and code.hex() not in str(code)
    assert str(code) == "{ONE_TIME_CODE}"
    with pytest.raises(DecodeError) as e:
        OneTimeCode.from_hex(code.hex()[:-2] + "zz")
    assert code.hex()[:-2] not in str(e.value)
