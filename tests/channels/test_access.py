"""The enforcement core: resources, the environment of a channel's peer, every default branch,
the in-memory snapshot and the per-worker access control (pure, no node)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from policies import InMemoryPolicyRepository, Policy
from tests.channels.helpers import NOW, world
from trust.channels import PeerAuthenticator, VerifiedPeer
from trust.channels.access import (
    NodeAccess,
    PolicySnapshot,
    ResourceRegistry,
    Subject,
    decide,
    decision_request,
    default_policy,
    subject_of,
)
from trust.channels.local_info import SecureChannelLocalInfo
from trust.errors import PolicyError, UsageError
from trust.node.access_control import RelayMessage
from trust.node.flow_control import FLOW_CONTROL_LOCAL_INFO
from trust.routing import Address, LocalInfo, LocalMessage, Route

AUTH = "I" + "a" * 64
ALICE = "I" + "1" * 64
BOB = "I" + "2" * 64


def _snapshot(resources: dict[str, str] | None = None,
              types: dict[str, str] | None = None) -> PolicySnapshot:
    repo = InMemoryPolicyRepository()

    async def fill() -> None:
        for name, text in (resources or {}).items():
            await repo.set_policy(text, resource=name, scope="n1")
        for name, text in (types or {}).items():
            await repo.set_policy(text, resource_type=name, scope="n1")
        await repo.set_policy("false", resource="echo", scope="other-node")

    asyncio.run(fill())
    snap = PolicySnapshot("n1")
    assert asyncio.run(snap.reload(repo)) == len(resources or {}) + len(types or {})
    return snap


def test_registry_defaults_and_add() -> None:
    reg = ResourceRegistry()
    assert reg.type_of("echo") == "echoer" and reg.type_of("hop") == "hop"
    assert reg.is_open("echo") and reg.is_open("hop") and reg.type_of("outlet") is None
    reg.add("outlet", "tcp-outlet")
    assert reg.type_of("outlet") == "tcp-outlet" and not reg.is_open("outlet")
    with pytest.raises(PolicyError):
        reg.add("bad name", "x")
    with pytest.raises(UsageError):
        ResourceRegistry({"a": "t"}, open_resources=["b"])


def test_stored_resource_policy_wins_over_type_and_sets_ockam_names() -> None:
    snap = _snapshot({"echo": '(and (= subject.role "admin") (= resource.id "echo") '
                              '(= resource.type "echoer") (= action.id "handle_message"))'},
                     {"echoer": "false"})
    admin = Subject(ALICE, True, {"role": "admin"})
    d = decide("echo", "echoer", admin, snapshot=snap, open_=True)
    assert d.allowed and d.policy_source == "resource" and "resource echo" in d.reason
    d = decide("echo", "echoer", Subject(BOB, True, {"role": "dev"}), snapshot=snap, open_=True)
    assert not d.allowed and d.policy_source == "resource"
    assert "subject.role" in d.reason and d.expression is not None


def test_type_policy_when_no_resource_policy() -> None:
    snap = _snapshot(types={"echoer": f'(= subject.identifier "{ALICE}")'})
    assert decide("echo", "echoer", Subject(ALICE), snapshot=snap).policy_source == "type"
    d = decide("echo", "echoer", Subject(BOB), snapshot=snap, open_=True)
    assert not d.allowed and d.policy_source == "type" and "resource type echoer" in d.reason


def test_stored_policy_over_plain_tcp_has_no_subject() -> None:
    snap = _snapshot({"echo": "(= subject.has_credential true)", "hop": "true"})
    d = decide("echo", "echoer", None, snapshot=snap, open_=True)
    assert not d.allowed and "without a secure channel" in d.reason
    assert "unknown" in d.reason  # the explain outcome: subject.has_credential is missing
    assert decide("hop", "hop", None, snapshot=snap, open_=True).allowed


def test_open_resources_until_a_policy_is_stored() -> None:
    empty = PolicySnapshot("n1")
    for subject in (None, Subject(ALICE)):
        for auth in (frozenset(), frozenset({AUTH})):
            d = decide("echo", "echoer", subject, snapshot=empty, open_=True, authorities=auth)
            assert d.allowed and d.policy_source == "default" and "open" in d.reason


def test_default_with_authority() -> None:
    empty = PolicySnapshot("n1")
    auth = frozenset({AUTH})
    d = decide("outlet", "tcp-outlet", None, snapshot=empty, authorities=auth)
    assert not d.allowed and d.policy_source == "default" and "no subject" in d.reason
    assert decide("outlet", "tcp-outlet", Subject(ALICE, True, {"x": "y"}), snapshot=empty,
                  authorities=auth).allowed
    d = decide("outlet", "tcp-outlet", Subject(ALICE, False), snapshot=empty, authorities=auth)
    assert not d.allowed and "subject.has_credential" in d.reason
    # the authority itself holds no credential from itself, and is trusted
    assert decide("outlet", "tcp-outlet", Subject(AUTH), snapshot=empty, authorities=auth).allowed
    assert default_policy([AUTH]).evaluate({"subject.identifier": AUTH})
    with pytest.raises(UsageError):
        default_policy([])


def test_default_without_authority() -> None:
    empty = PolicySnapshot("n1")
    d = decide("outlet", "tcp-outlet", None, snapshot=empty)
    assert not d.allowed and "plain TCP" in d.reason and d.policy_source == "default"
    d = decide("outlet", "tcp-outlet", Subject(ALICE), snapshot=empty)
    assert d.allowed and "listener admitted" in d.reason


def test_reserved_attributes_cannot_forge_identity() -> None:
    snap = _snapshot({"svc": f'(= subject.identifier "{BOB}")'})
    forged = Subject(ALICE, True, {"identifier": BOB, "has_credential": "true"})
    assert not decide("svc", None, forged, snapshot=snap).allowed


def test_snapshot_replace_and_scope() -> None:
    snap = _snapshot({"echo": "true"}, {"hop": "false"})
    assert len(snap) == 2 and snap.policy_for("echo", "echoer") is not None
    assert snap.policy_for("x", None) is None
    version = snap.version
    snap.replace([])
    assert len(snap) == 0 and snap.version == version + 1


def _peer(credentials: tuple[str, ...], authorities: tuple[str, ...]) -> VerifiedPeer:
    w = world()
    creds = {"own": w.alice_credential, "foreign": w.alice_foreign_credential}
    ident = w.alice.channel_identity(tuple(creds[c] for c in credentials))
    by = {"own": w.authority, "foreign": w.other_authority}
    auth = PeerAuthenticator(authorities=[by[a] for a in authorities])
    return auth.authenticate(ident.payload_bytes, w.alice.static.public, now=NOW)


def test_subject_of_peer_counts_only_the_nodes_authorities() -> None:
    w = world()
    peer = _peer(("own", "foreign"), ("own", "foreign"))
    mine = frozenset({w.authority.identifier})
    s = subject_of(peer, mine, now=NOW)
    assert s.identifier == w.alice.identity.identifier and s.has_credential
    assert s.attributes == {"role": "admin", "team": "blue"}
    s = subject_of(peer, frozenset({"I" + "f" * 64}), now=NOW)
    assert not s.has_credential and s.attributes == {}
    s = subject_of(peer, frozenset(), now=NOW)  # no authority: what the channel verified
    assert s.has_credential and s.attributes["role"] == "admin"
    # a credential that expired while the channel is open no longer counts
    assert not subject_of(peer, mine, now=NOW + 10 * 86_400).has_credential
    bare = subject_of(_peer((), ()), mine, now=NOW)
    assert not bare.has_credential and bare.attributes == {}


def _relay(*info: object) -> RelayMessage:
    msg = LocalMessage(Route(["echo"]), Route(["0#x"]), b"hi", tuple(info))  # type: ignore[arg-type]
    return RelayMessage(Address.local("x"), Address.local("echo"), msg)


def test_access_control_local_tcp_and_channel(caplog: pytest.LogCaptureFixture) -> None:
    w = world()
    tcp = LocalInfo(FLOW_CONTROL_LOCAL_INFO, b"fc-1")
    access = NodeAccess("n1", authorities=[w.authority.identifier])
    echo = access.access_control("echo")
    outlet_reg = access.registry
    outlet_reg.add("outlet", "tcp-outlet")
    outlet = access.access_control("outlet")
    assert echo(_relay()) and outlet(_relay())  # local: never checked
    assert echo(_relay(tcp))  # open until a policy is stored
    with caplog.at_level(logging.WARNING, logger="trust.channels.access"):
        assert not outlet(_relay(tcp))
    assert "no subject" in caplog.text and access.denied == 1
    info = SecureChannelLocalInfo(Address.local("dec"), _peer(("own",), ("own",)))
    assert outlet(_relay(tcp, info))
    bare = SecureChannelLocalInfo(Address.local("dec"), _peer((), ("own",)))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trust.channels.access"):
        assert not outlet(_relay(tcp, bare))
    assert "subject.has_credential" in caplog.text and bare.identifier in caplog.text
    # a stored policy governs the next message once the snapshot is reloaded
    access.snapshot.replace([])
    repo = InMemoryPolicyRepository()
    asyncio.run(repo.set_policy("false", resource="echo", scope="n1"))
    assert asyncio.run(access.reload(repo)) == 1
    assert not echo(_relay(tcp)) and echo(_relay())
    assert access.decide("echo", None).expression == Policy.deny_all().text


def test_access_control_denies_when_decision_fails(caplog: pytest.LogCaptureFixture) -> None:
    access = NodeAccess("n1")

    def broken(*a: object, **k: object) -> object:
        raise RuntimeError("boom")

    access.decide = broken  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.ERROR, logger="trust.channels.access"):
        assert not access.access_control("svc")(_relay(LocalInfo(FLOW_CONTROL_LOCAL_INFO, b"f")))
    assert "denying" in caplog.text


def test_decision_request_refuses_hostile_params() -> None:
    good = {"resource": "echo", "identifier": ALICE, "attributes": {"role": "admin"}}
    assert decision_request(good) == ("echo", None, Subject(ALICE, True, {"role": "admin"}), None)
    assert decision_request({"resource": "echo"}) == ("echo", None, None, None)
    assert decision_request({"resource": "x", "resource_type": "t", "identifier": ALICE,
                             "time": 5})[1:] == ("t", Subject(ALICE), 5)
    for bad in ({}, {"resource": 5}, {"resource": "a b"}, {"resource": "x" * 300},
                {"resource": "echo", "identifier": "I00"},
                {"resource": "echo", "identifier": "I" + "A" * 64},
                {"resource": "echo", "identifier": 7},
                {"resource": "echo", "attributes": {"role": "x"}},
                {"resource": "echo", "identifier": ALICE, "attributes": ["role"]},
                {"resource": "echo", "identifier": ALICE, "attributes": {"r": 1}},
                {"resource": "echo", "identifier": ALICE,
                 "attributes": {f"a{i}": "v" for i in range(300)}},
                {"resource": "echo", "identifier": ALICE, "has_credential": "yes"},
                {"resource": "echo", "identifier": ALICE, "has_credential": False,
                 "attributes": {"r": "x"}},
                {"resource": "echo", "time": -1}, {"resource": "echo", "time": True},
                {"resource": "echo", "resource_type": 3}):
        with pytest.raises((UsageError, PolicyError)):
            decision_request(bad)
