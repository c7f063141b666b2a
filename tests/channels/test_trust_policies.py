"""Trust policies, pure: each one and the combinators, on verified peers."""

from __future__ import annotations

import pytest

from tests.channels.helpers import NOW, world
from trust.channels import (
    PeerAuthenticator,
    TrustAuthority,
    TrustEveryone,
    TrustIdentifier,
    TrustIdentifiers,
    TrustPolicy,
    VerifiedPeer,
)
from trust.errors import PolicyError, UntrustedError, UsageError


def _peer(with_credential: bool) -> VerifiedPeer:
    w = world()
    ident = w.alice.channel_identity((w.alice_credential,) if with_credential else ())
    auth = PeerAuthenticator(authorities=[w.authority])
    return auth.authenticate(ident.payload_bytes, w.alice.static.public, now=NOW)


def test_everyone_and_identifiers() -> None:
    w = world()
    peer = _peer(False)
    assert TrustEveryone().allows(peer)
    assert TrustIdentifier(w.alice.identity.identifier).allows(peer)
    assert TrustIdentifier(w.alice.identity).allows(peer)
    assert TrustIdentifier(w.alice.identity.identifier_bytes).allows(peer)
    assert TrustIdentifiers(w.bob.identity, w.alice.identity).allows(peer)
    assert not TrustIdentifier(w.bob.identity).allows(peer)
    with pytest.raises(UntrustedError, match=w.alice.identity.identifier):
        TrustIdentifier(w.bob.identity).check(peer)
    for bad in ("I00", "not an identifier", 42):
        with pytest.raises(UsageError):
            TrustIdentifier(bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        TrustIdentifier()


def test_authority() -> None:
    w = world()
    assert TrustAuthority(w.authority).allows(_peer(True))
    assert not TrustAuthority(w.authority).allows(_peer(False))
    assert not TrustAuthority(w.other_authority).allows(_peer(True))
    assert TrustAuthority(w.authority).authorities == (w.authority,)
    with pytest.raises(UsageError):
        TrustAuthority("I" + "00" * 32)  # type: ignore[arg-type]


def test_policy_over_attributes() -> None:
    peer = _peer(True)
    assert peer.attributes == {"role": "admin", "team": "blue"}
    assert TrustPolicy('(= subject.role "admin")').allows(peer)
    assert TrustPolicy('role = "admin" and team = "blue"').allows(peer)
    assert TrustPolicy("(= subject.has_credential true)").allows(peer)
    assert TrustPolicy(f'(= subject.identifier "{peer.identifier}")').allows(peer)
    assert not TrustPolicy('(= subject.role "dev")').allows(peer)
    assert not TrustPolicy("(= subject.has_credential true)").allows(_peer(False))
    # a missing attribute is unknown, and unknown denies
    assert not TrustPolicy('(= subject.level "3")').allows(peer)
    assert not TrustPolicy('(not (= subject.level "3"))').allows(peer)
    with pytest.raises(UntrustedError, match="refused by the policy"):
        TrustPolicy('(= subject.role "dev")').check(peer)
    with pytest.raises(PolicyError):
        TrustPolicy("(= subject.role")


def test_policy_environment_reserves_names() -> None:
    # an attribute called "identifier" never replaces the real identifier
    env = _peer(True).environment(now=NOW)
    assert env["subject.identifier"] == _peer(True).identifier
    assert env["subject.has_credential"] is True and env["env.now"] == NOW


def test_combinators() -> None:
    w = world()
    peer = _peer(True)
    alice, bob = TrustIdentifier(w.alice.identity), TrustIdentifier(w.bob.identity)
    admin = TrustPolicy('(= subject.role "admin")')
    assert (alice & admin).allows(peer)
    assert not (bob & admin).allows(peer)
    assert (bob | admin).allows(peer)
    assert not (bob | TrustPolicy('(= subject.role "dev")')).allows(peer)
    with pytest.raises(UntrustedError, match=r"not a trusted identifier.*refused by the policy"):
        (bob | TrustPolicy('(= subject.role "dev")')).check(peer)
    both = TrustAuthority(w.authority) & alice
    assert both.authorities == (w.authority,)
    assert PeerAuthenticator(both).authorities == (w.authority,)
    assert "TrustIdentifier" in repr(bob | admin)


def test_authenticator_configuration() -> None:
    with pytest.raises(UsageError):
        PeerAuthenticator(require_credential=True)
    with pytest.raises(UsageError):
        PeerAuthenticator("everyone")  # type: ignore[arg-type]
