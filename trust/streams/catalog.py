"""A node's streams across backends: each stream lives in the node's default backend (the
embedded SQLite database) or in a Kafka cluster chosen when it was created (``stream create
--backend kafka://HOST:PORT``); the catalog remembers where, and routes every call there.

Only the node's operator picks a backend (through the control endpoint): streams created by
remote peers through the stream protocol go to the default backend, so no peer can make the
node connect anywhere.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from trust.errors import ConflictError, NotFoundError, UsageError
from trust.streams.backend import StreamBackend
from trust.streams.messages.stream_info import StreamInfo

__all__ = ["MAX_KAFKA_CLUSTERS", "StreamCatalog", "StreamLocations", "parse_backend"]

MAX_KAFKA_CLUSTERS = 16
_BOOTSTRAP = re.compile(r"[A-Za-z0-9.-]{1,253}:[0-9]{1,5}(,[A-Za-z0-9.-]{1,253}:[0-9]{1,5}){0,7}")


class StreamLocations(Protocol):
    """Which streams live outside the default backend (name -> backend URL)."""

    async def all(self) -> dict[str, str]: ...

    async def set(self, name: str, url: str) -> None: ...

    async def delete(self, name: str) -> None: ...


def parse_backend(text: str | None) -> str | None:
    """``None`` for the default backend (``None``, ``""``, ``sqlite``, ``default``), else a
    normalised ``kafka://HOST:PORT[,HOST:PORT]`` URL; a :class:`UsageError` otherwise."""
    if text is None or text in ("", "sqlite", "default"):
        return None
    if text.startswith("kafka://"):
        bootstrap = text[len("kafka://"):].rstrip("/")
        if _BOOTSTRAP.fullmatch(bootstrap) and all(
                0 < int(p.rsplit(":", 1)[1]) < 65536 for p in bootstrap.split(",")):
            return "kafka://" + bootstrap
    raise UsageError("a stream backend is sqlite (the default) or kafka://HOST:PORT")


class StreamCatalog:
    """A :class:`~trust.streams.backend.StreamBackend` over the default backend and the Kafka
    clusters some streams live in."""

    def __init__(self, default: StreamBackend, locations: StreamLocations) -> None:
        self.default = default
        self.locations = locations
        self._where: dict[str, str] | None = None
        self._kafka: dict[str, Any] = {}

    @property
    def description(self) -> str:
        return self.default.description

    async def _map(self) -> dict[str, str]:
        if self._where is None:
            self._where = await self.locations.all()
        return self._where

    def _cluster(self, url: str) -> StreamBackend:
        backend = self._kafka.get(url)
        if backend is None:
            if len(self._kafka) >= MAX_KAFKA_CLUSTERS:
                raise UsageError(f"a node uses at most {MAX_KAFKA_CLUSTERS} Kafka clusters")
            from trust.streams.kafka import KafkaStreams

            backend = self._kafka[url] = KafkaStreams(url[len("kafka://"):])
        return backend  # type: ignore[no-any-return]

    async def backend_of(self, name: str) -> StreamBackend:
        url = (await self._map()).get(name)
        return self.default if url is None else self._cluster(url)

    async def create(self, name: str, partitions: int, backend: str | None = None) -> StreamInfo:
        url = parse_backend(backend)
        where = await self._map()
        current = where.get(name)
        if current is None and url is not None and await self.default.info(name) is not None:
            raise ConflictError(f"stream {name} exists in the node's database")
        if current is not None and url != current:
            raise ConflictError(f"stream {name} exists in {current}")
        if url is None:
            return await self.default.create(name, partitions)
        info = await self._cluster(url).create(name, partitions)
        if current is None:
            await self.locations.set(name, url)
            where[name] = url
        return info

    async def info(self, name: str) -> StreamInfo | None:
        return await (await self.backend_of(name)).info(name)

    async def streams(self) -> list[StreamInfo]:
        out = {i.name: i for i in await self.default.streams()}
        for name, url in (await self._map()).items():
            info = await self._cluster(url).info(name)
            if info is not None:
                out[name] = info
        return [out[n] for n in sorted(out)]

    async def delete(self, name: str) -> None:
        where = await self._map()
        url = where.get(name)
        if url is None:
            await self.default.delete(name)
            return
        try:
            await self._cluster(url).delete(name)
        except NotFoundError:
            pass
        await self.locations.delete(name)
        where.pop(name, None)

    async def append(self, name: str, partition: int, records: tuple[bytes, ...]) -> int:
        return await (await self.backend_of(name)).append(name, partition, records)

    async def read(self, name: str, partition: int, from_index: int, limit: int,
                   max_bytes: int) -> list[tuple[int, bytes]]:
        return await (await self.backend_of(name)).read(name, partition, from_index, limit,
                                                       max_bytes)

    async def get_index(self, name: str, group: str, partition: int) -> int | None:
        return await (await self.backend_of(name)).get_index(name, group, partition)

    async def save_index(self, name: str, group: str, partition: int, index: int) -> None:
        await (await self.backend_of(name)).save_index(name, group, partition, index)

    async def close(self) -> None:
        for backend in self._kafka.values():
            await backend.close()
        self._kafka.clear()
        await self.default.close()
