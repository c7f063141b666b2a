"""PeerShares: each peer's requests in progress, at most its share; peers with none dropped."""

from __future__ import annotations

import pytest

from trust.errors import UsageError
from trust.node.peer_shares import PeerShares, default_share


def test_a_peer_is_full_at_its_share_and_forgotten_when_done() -> None:
    shares = PeerShares(2)
    for _ in range(2):
        assert not shares.full("a")
        shares.take("a")
    assert shares.full("a") and not shares.full("b") and not shares.full(None)
    shares.give("a")
    assert not shares.full("a") and len(shares) == 1
    shares.give("a")
    assert len(shares) == 0
    shares.give("a")  # (more done than taken: nothing kept)
    assert len(shares) == 0


def test_the_default_share_and_bad_limits() -> None:
    assert default_share(256) == 32 and default_share(4) == 1 and default_share(256, 5) == 5
    for args in ((0,), (10, -1)):
        with pytest.raises(UsageError):
            default_share(*args)
    with pytest.raises(UsageError):
        PeerShares(0)
