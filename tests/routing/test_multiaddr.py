"""The route syntax users type: every form, and errors that point at the bad segment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust.errors import UsageError
from trust.routing import Address, Route, RouteSyntaxError, parse_multiaddr


def route(text: str, nodes: dict[str, str] | None = None) -> Route:
    return parse_multiaddr(text).to_route((nodes or {}).__getitem__)


def test_forms() -> None:
    assert route("/service/echo") == Route(["echo"])
    assert route("/worker/0123abcd") == Route(["0123abcd"])
    assert route("/secure/api/service/echo") == Route(["api", "echo"])
    assert route("/ip4/127.0.0.1/tcp/4000/service/echo") == Route(["1#127.0.0.1:4000", "echo"])
    assert route("/dnsaddr/localhost/tcp/4000/service/echo") == Route(
        ["1#localhost:4000", "echo"])
    assert route("/ip6/::1/tcp/4000/service/echo") == Route([Address.tcp("[::1]:4000"), "echo"])
    assert route("/node/n2/service/echo", {"n2": "127.0.0.1:5000"}) == Route(
        ["1#127.0.0.1:5000", "echo"])
    assert route("/ip4/10.0.0.1/tcp/1/service/hop/ip4/10.0.0.2/tcp/2/service/echo") == Route(
        ["1#10.0.0.1:1", "hop", "1#10.0.0.2:2", "echo"])
    assert route("/service/echo/") == Route(["echo"])


def test_canonical_text_and_segments() -> None:
    m = parse_multiaddr("/ip4/127.0.0.1/tcp/4000/service/echo")
    assert str(m) == "/ip4/127.0.0.1/tcp/4000/service/echo"
    assert [(s.protocol, s.value, s.offset) for s in m.segments] == [
        ("ip4", "127.0.0.1", 0), ("tcp", "4000", 14), ("service", "echo", 23)]
    assert parse_multiaddr("/node/a/service/hop/node/b").node_names == ("a", "b")


@pytest.mark.parametrize(("text", "segment", "offset", "reason"), [
    ("service/echo", "", 0, "starts with '/'"),
    ("/ip4/1.2.3/tcp/4000", "/ip4/1.2.3", 0, "not an IPv4 address"),
    ("/service/echo/ip4/1.2.3.4/tcp/99999", "/tcp/99999", 25, "not a TCP port"),
    ("/ip4/1.2.3.4/service/echo", "/ip4/1.2.3.4", 0, "must be followed by /tcp/PORT"),
    ("/service/a/ip4/1.2.3.4", "/ip4/1.2.3.4", 10, "must be followed by /tcp/PORT"),
    ("/tcp/4000", "/tcp/4000", 0, "must follow /ip4"),
    ("/service/x/foo/bar", "/foo", 10, "unknown protocol 'foo'"),
    ("/service", "/service", 0, "needs a value"),
    ("/service//x", "/service", 0, "needs a value"),
    ("/worker/XYZ", "/worker/XYZ", 0, "lowercase hex"),
    ("/ip6/1.2.3.4/tcp/1", "/ip6/1.2.3.4", 0, "not an IPv6 address"),
    ("/dnsaddr/-bad-/tcp/1", "/dnsaddr/-bad-", 0, "not a host name"),
    ("/", "/", 0, "empty"),
    ("/service/a b", "/service/a b", 0, "not a valid service name"),
])
def test_errors_point_at_the_segment(text: str, segment: str, offset: int, reason: str) -> None:
    with pytest.raises(RouteSyntaxError) as e:
        parse_multiaddr(text)
    assert e.value.segment == segment and e.value.offset == offset
    assert reason in str(e.value) and isinstance(e.value, UsageError)
    if segment:
        assert text[offset:].startswith(segment)


def test_node_needs_a_resolver() -> None:
    with pytest.raises(RouteSyntaxError, match="cannot be resolved"):
        parse_multiaddr("/node/n1/service/echo").to_route()


@given(st.text(max_size=60))
def test_any_text_parses_or_is_a_usage_error(text: str) -> None:
    try:
        m = parse_multiaddr(text)
    except UsageError:
        return
    # printing and parsing again gives the same segments, and printing is stable
    again = parse_multiaddr(str(m))
    assert again == m
    assert str(again) == str(m)
    m.to_route(lambda name: "127.0.0.1:1")


@pytest.mark.parametrize("text", ["/dnsaddr/localhost\n/tcp/4000", "/ip4/127.0.0.1/tcp/4000\n",
                                  "/node/ab\n", "/service/echo\n", "/secure/api\n"])
def test_a_trailing_newline_in_a_segment_is_refused(text: str) -> None:
    """(A regular expression's ``$`` also matches before a final newline.)"""
    with pytest.raises(RouteSyntaxError):
        parse_multiaddr(text)


def test_names_and_identifiers_with_a_trailing_newline_are_refused() -> None:
    from trust.node.files import validate_node_name

    with pytest.raises(UsageError):
        validate_node_name("ab\n")
