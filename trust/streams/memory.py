"""A stream backend in memory, bounded in bytes (records of deleted streams are freed)."""

from __future__ import annotations

from trust.errors import ConflictError, NotFoundError, StorageError
from trust.streams.messages.stream_info import StreamInfo

__all__ = ["DEFAULT_MAX_BYTES", "MAX_GROUPS", "MAX_STREAMS", "MemoryStreams"]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_STREAMS = 10_000
MAX_GROUPS = 100_000


class _Stream:
    __slots__ = ("indexes", "info", "partitions")

    def __init__(self, info: StreamInfo) -> None:
        self.info = info
        self.partitions: list[list[bytes]] = [[] for _ in range(info.partitions)]
        self.indexes: dict[tuple[str, int], int] = {}


class MemoryStreams:
    """Streams kept in this process, at most ``max_bytes`` of record data in all."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._streams: dict[str, _Stream] = {}
        self._groups = 0

    @property
    def description(self) -> str:
        return "memory"

    def _get(self, name: str) -> _Stream:
        s = self._streams.get(name)
        if s is None:
            raise NotFoundError(f"no stream named {name}")
        return s

    async def create(self, name: str, partitions: int) -> StreamInfo:
        s = self._streams.get(name)
        if s is not None:
            if s.info.partitions != partitions:
                raise ConflictError(f"stream {name} exists with {s.info.partitions} partitions")
            return s.info
        if len(self._streams) >= MAX_STREAMS:
            raise StorageError(f"at most {MAX_STREAMS} streams in memory")
        info = StreamInfo(name, partitions, self.description)
        self._streams[name] = _Stream(info)
        return info

    async def info(self, name: str) -> StreamInfo | None:
        s = self._streams.get(name)
        return None if s is None else s.info

    async def streams(self) -> list[StreamInfo]:
        return [self._streams[n].info for n in sorted(self._streams)]

    async def delete(self, name: str) -> None:
        s = self._get(name)
        del self._streams[name]
        self.used -= sum(len(r) for p in s.partitions for r in p)
        self._groups -= len(s.indexes)

    def _partition(self, name: str, partition: int) -> tuple[_Stream, list[bytes]]:
        s = self._get(name)
        if partition >= s.info.partitions:
            raise NotFoundError(f"stream {name} has no partition {partition}")
        return s, s.partitions[partition]

    async def append(self, name: str, partition: int, records: tuple[bytes, ...]) -> int:
        _, part = self._partition(name, partition)
        size = sum(len(r) for r in records)
        if self.used + size > self.max_bytes:
            raise StorageError(f"the memory backend is full ({self.max_bytes} bytes)")
        first = len(part)
        part.extend(records)
        self.used += size
        return first

    async def read(self, name: str, partition: int, from_index: int, limit: int,
                   max_bytes: int) -> list[tuple[int, bytes]]:
        _, part = self._partition(name, partition)
        out: list[tuple[int, bytes]] = []
        total = 0
        for i in range(from_index, min(len(part), from_index + limit)):
            rec = part[i]
            if out and total + len(rec) > max_bytes:
                break
            out.append((i, rec))
            total += len(rec)
        return out

    async def get_index(self, name: str, group: str, partition: int) -> int | None:
        s, _ = self._partition(name, partition)
        return s.indexes.get((group, partition))

    async def save_index(self, name: str, group: str, partition: int, index: int) -> None:
        s, _ = self._partition(name, partition)
        if (group, partition) not in s.indexes:
            if self._groups >= MAX_GROUPS:
                raise StorageError(f"at most {MAX_GROUPS} saved indexes in memory")
            self._groups += 1
        s.indexes[(group, partition)] = index

    async def close(self) -> None:
        return None
