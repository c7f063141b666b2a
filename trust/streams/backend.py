"""What the stream service needs from a backend (stream storage + index storage), as a Protocol.

Implementations: :class:`trust.streams.memory.MemoryStreams` (tests, ephemeral nodes),
:class:`trust.streams.sqlite.SqliteStreams` (the embedded default, on the node's database) and
:class:`trust.streams.kafka.KafkaStreams` (a Kafka cluster, through ``aiokafka``). Every method
raises :class:`~trust.errors.NotFoundError` for an unknown stream,
:class:`~trust.errors.ConflictError` for a create that disagrees with what exists, and
:class:`~trust.errors.StorageError` when the backend cannot serve (full, unreachable).
"""

from __future__ import annotations

from typing import Protocol

from trust.streams.messages.stream_info import StreamInfo

__all__ = ["StreamBackend"]


class StreamBackend(Protocol):
    @property
    def description(self) -> str:
        """What the backend is, for ``stream show`` (``sqlite``, ``kafka://host:port``...)."""
        ...

    async def create(self, name: str, partitions: int) -> StreamInfo:
        """Create the stream, or return it when it exists with the same partition count."""
        ...

    async def info(self, name: str) -> StreamInfo | None: ...

    async def streams(self) -> list[StreamInfo]: ...

    async def delete(self, name: str) -> None:
        """Delete the stream, its records and its groups' indexes."""
        ...

    async def append(self, name: str, partition: int, records: tuple[bytes, ...]) -> int:
        """Append in order, atomically; return the index of the first record."""
        ...

    async def read(self, name: str, partition: int, from_index: int, limit: int,
                   max_bytes: int) -> list[tuple[int, bytes]]:
        """Records with index ≥ ``from_index`` in index order: at most ``limit`` of them and,
        beyond the first, at most ``max_bytes`` of data. Never waits for new records."""
        ...

    async def get_index(self, name: str, group: str, partition: int) -> int | None: ...

    async def save_index(self, name: str, group: str, partition: int, index: int) -> None: ...

    async def close(self) -> None: ...
