"""Requests in progress per peer, for a service whose capacity its peers share (the authority's
services, the stream service): each peer may have at most ``limit`` at once, so no peer can
take the capacity every other one needs. A peer is whatever the service names it by (its
channel's identifier, a connection, ``None`` for this node's own callers)."""

from __future__ import annotations

from typing import Final

from trust.errors import UsageError

__all__ = ["DEFAULT_PEER_SHARE", "PeerShares", "default_share"]

DEFAULT_PEER_SHARE: Final = 8
"""By default one peer may have ``max_in_flight // DEFAULT_PEER_SHARE`` requests in progress."""


def default_share(max_in_flight: int, max_per_peer: int = 0) -> int:
    """``max_per_peer``, or (0) the default share of ``max_in_flight``; at least 1."""
    if max_in_flight < 1 or max_per_peer < 0:
        raise UsageError("max_in_flight must be positive and max_per_peer not negative")
    return max_per_peer or max(1, max_in_flight // DEFAULT_PEER_SHARE)


class PeerShares:
    """How many requests each peer has in progress (peers with none are not kept)."""

    __slots__ = ("_counts", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise UsageError("a peer's share is one request at least")
        self.limit = limit
        self._counts: dict[str | None, int] = {}

    def full(self, peer: str | None) -> bool:
        """Has ``peer`` its whole share in progress?"""
        return self._counts.get(peer, 0) >= self.limit

    def take(self, peer: str | None) -> None:
        """One more request of ``peer`` in progress (check :meth:`full` first)."""
        self._counts[peer] = self._counts.get(peer, 0) + 1

    def give(self, peer: str | None) -> None:
        """One request of ``peer`` done."""
        n = self._counts.get(peer, 0) - 1
        if n > 0:
            self._counts[peer] = n
        else:
            self._counts.pop(peer, None)

    def __len__(self) -> int:
        """Peers with requests in progress."""
        return len(self._counts)
