"""A cache bounded by the bytes it holds, for the decoders' and verifiers' memos.

Decoding and verifying see the same bytes over and over (every credential of an issuer key
carries the same attestation, every presentation of a holder the same history), so they keep
immutable results keyed by those bytes. Input comes from peers, so the cache is bounded by an
estimate of the memory its entries take (the caller gives each entry's ``size``), not by their
number, and refuses entries larger than ``max_entry``: what has not been verified yet should
only be cached when it is small.

Lookups are a plain ``dict.get`` (the hot path); eviction is first-in, first-out (the sizes
are kept in an ``OrderedDict``: the oldest entry is popped at once, however many went before).
Every cache has a name and is listed by :func:`caches` (its figures by
:meth:`BoundedCache.info`); an operator or a test may :meth:`~BoundedCache.resize` one.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = ["DECODED_FACTOR", "ENTRY_OVERHEAD", "BoundedCache", "CacheInfo", "caches", "decoded_size"]

K = TypeVar("K")
V = TypeVar("V")

ENTRY_OVERHEAD = 1024
"""Bytes every entry is charged for beside its data (dict slot, tuple, small objects)."""

DECODED_FACTOR = 6
"""A decoded CBOR object takes up to about five times its encoded size (measured on change
histories: many small objects); with its key bytes, six."""


def decoded_size(*raw: bytes) -> int:
    """The size to charge for an entry keyed by ``raw`` whose value was decoded from it."""
    if len(raw) == 1:  # the usual case, without a generator
        return ENTRY_OVERHEAD + DECODED_FACTOR * len(raw[0])
    return ENTRY_OVERHEAD + DECODED_FACTOR * sum(len(r) for r in raw)


class CacheInfo(NamedTuple):
    name: str
    entries: int
    bytes: int
    max_bytes: int
    max_entry: int


class BoundedCache(Generic[K, V]):
    """Keys to values, holding at most ``max_bytes`` of accounted size."""

    __slots__ = ("__weakref__", "_data", "_sizes", "_total", "get", "max_bytes", "max_entry",
                 "name")

    def __init__(self, name: str, max_bytes: int, max_entry: int | None = None) -> None:
        self.name = name
        self._data: dict[K, V] = {}
        self._sizes: OrderedDict[K, int] = OrderedDict()
        self._total = 0
        self.get = self._data.get
        self.max_bytes = self.max_entry = 0
        self.resize(max_bytes, max_entry)
        _REGISTRY.add(self)

    def resize(self, max_bytes: int, max_entry: int | None = None) -> None:
        """Change the bounds (evicting what no longer fits)."""
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self.max_entry = max_bytes if max_entry is None else min(max_entry, max_bytes)
        for key in [k for k, size in self._sizes.items() if size > self.max_entry]:
            self._total -= self._sizes.pop(key)
            del self._data[key]
        self._evict(0)

    def _evict(self, room: int) -> None:
        sizes, data = self._sizes, self._data
        total = self._total
        while total + room > self.max_bytes and sizes:
            first, size = sizes.popitem(last=False)
            total -= size
            del data[first]
        self._total = total

    def put(self, key: K, value: V, size: int) -> bool:
        """Remember ``value`` (charged ``size`` bytes); False when it is too large to keep."""
        if size > self.max_entry:
            return False
        sizes = self._sizes
        old = sizes.pop(key, None)
        if old is not None:
            del self._data[key]
            self._total -= old
        if self._total + size > self.max_bytes:
            self._evict(size)
        self._data[key] = value
        sizes[key] = size
        self._total += size
        return True

    def clear(self) -> None:
        self._data.clear()
        self._sizes.clear()
        self._total = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    @property
    def size(self) -> int:
        """The accounted bytes of every entry held now."""
        return self._total

    def info(self) -> CacheInfo:
        return CacheInfo(self.name, len(self._data), self._total, self.max_bytes, self.max_entry)


_REGISTRY: weakref.WeakSet[BoundedCache[Any, Any]] = weakref.WeakSet()


def caches() -> dict[str, BoundedCache[Any, Any]]:
    """Every live cache by name (module-level caches and those of live objects)."""
    return {c.name: c for c in list(_REGISTRY)}
