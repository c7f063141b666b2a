"""The newest change history seen of each identity, as Ockam's change-history repository keeps
them (``identities_verification.rs``: a known identity's history may only grow).

A peer that presents a history **older** than one seen before (its changes a prefix of the
known ones) or one that **conflicts** with it (another change at some position) is refused:
otherwise a key the identity rotated away from (say, after it leaked) could speak for it again,
with the history as it was before the rotation. A newer history replaces the known one.

The store is bounded (:data:`DEFAULT_CAPACITY` identities, least recently seen dropped first)
and held in memory; a node process keeps it in its database too
(:mod:`trust.node.known_histories_store`: loaded at start, each new or grown history saved), so
it outlives a restart.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

from trust.errors import UsageError, VerificationError
from trust.identities.identity import Identity

__all__ = ["DEFAULT_CAPACITY", "KnownHistories"]

DEFAULT_CAPACITY: Final = 100_000
"""Identities a store remembers at most (each costs its change hashes: 32 bytes a change)."""


class KnownHistories:
    """Identifier -> the change hashes of the newest history seen (see the module docstring)."""

    __slots__ = ("_known", "capacity", "on_change")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise UsageError("a history store holds at least one identity")
        self.capacity = capacity
        self._known: OrderedDict[bytes, tuple[bytes, ...]] = OrderedDict()
        self.on_change: Callable[[bytes, tuple[bytes, ...]], object] | None = None
        """Called with (identifier, change hashes) when a new or newer history is accepted."""

    def load(self, entries: Iterable[tuple[bytes, tuple[bytes, ...]]]) -> None:
        """Remember stored histories (least recently seen first), without :attr:`on_change`;
        one known already is kept when it is as long or longer."""
        for key, hashes in entries:
            known = self._known.get(key)
            if known is None or len(hashes) > len(known):
                self._known[key] = hashes
            self._known.move_to_end(key)
        self._trim()

    def _trim(self) -> None:
        """Forget the least recently seen beyond :attr:`capacity`."""
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)

    def __len__(self) -> int:
        return len(self._known)

    def check(self, identity: Identity) -> None:
        """Raise :class:`VerificationError` when ``identity``'s history is older than the one
        seen of it, or conflicts with it; change nothing."""
        self._check(identity, tuple(c.change_hash for c in identity.changes))

    def _check(self, identity: Identity, mine: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
        """:meth:`check` of the change hashes ``mine``; return the known ones (``None``)."""
        known = self._known.get(identity.identifier_bytes)
        if known is None or mine[:len(known)] == known:  # new, equal or newer
            return known
        if known[:len(mine)] == mine:
            raise VerificationError(f"the change history of {identity.identifier} is older than "
                                    "one seen before (a rotated-away key cannot speak for it)")
        raise VerificationError(f"the change history of {identity.identifier} conflicts with "
                                "one seen before")

    def accept(self, identity: Identity) -> None:
        """:meth:`check` ``identity``, then remember its history if it is newer (or new)."""
        mine = tuple(c.change_hash for c in identity.changes)
        known = self._check(identity, mine)
        key = identity.identifier_bytes
        if known is None or len(mine) > len(known):
            self._known[key] = mine
            if self.on_change is not None:
                self.on_change(key, mine)
        self._known.move_to_end(key)
        self._trim()
