"""The Kafka stream backend, through ``aiokafka`` (install ``truststack[kafka]``).

A stream is a topic (``prefix + name``), a partition a partition, an index an offset, and a
group's saved index the group's committed offset, so Kafka tools see what truststack does.
Appends go out as one record batch per call when it fits (ordered, acks from all in-sync
replicas); reads use one consumer per partition being read (at most ``max_readers``, least
recently used closed first), so sequential pulls never seek.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Final

from trust.errors import ConflictError, MissingExtraError, NotFoundError, StorageError
from trust.streams.messages.common import MAX_BATCH_BYTES, MAX_RECORD
from trust.streams.messages.stream_info import StreamInfo

__all__ = ["KafkaStreams"]

FETCH_WAIT_MS: Final = 100
"""How long one read lets a consumer fetch before answering (the service polls again)."""


def _kafka() -> Any:
    try:
        import aiokafka
    except ImportError:
        raise MissingExtraError("the Kafka stream backend", "kafka") from None
    return aiokafka


class _Reader:
    __slots__ = ("consumer", "lock", "position")

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.lock = asyncio.Lock()
        self.position = -1


class _Enqueuing:
    """The appends of one partition taking turns to hand their batches to the producer."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KafkaStreams:
    """Streams as topics of the cluster at ``bootstrap`` (``host:port[,host:port]``)."""

    def __init__(self, bootstrap: str, *, prefix: str = "", max_readers: int = 64,
                 max_groups: int = 64, request_timeout_ms: int = 10_000) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.max_readers = max_readers
        self.max_groups = max_groups
        self.request_timeout_ms = request_timeout_ms
        self._producer: Any = None
        self._admin: Any = None
        self._readers: OrderedDict[tuple[str, int], _Reader] = OrderedDict()
        self._groups: OrderedDict[str, Any] = OrderedDict()
        self._known: dict[str, int] = {}
        """Partition counts of streams seen to exist (bounded; forgotten on delete)."""
        self._start_lock = asyncio.Lock()
        self._enqueuing: dict[tuple[str, int], _Enqueuing] = {}
        """A lock per partition being appended to (see :meth:`_enqueue`): as many entries as
        partitions with appends in progress."""

    @property
    def description(self) -> str:
        return f"kafka://{self.bootstrap}"

    def _topic(self, name: str) -> str:
        return self.prefix + name

    async def _started(self) -> None:
        if self._producer is not None:
            return
        async with self._start_lock:
            if self._producer is not None:
                return
            aiokafka = _kafka()
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap,
                                        request_timeout_ms=self.request_timeout_ms)
            producer = aiokafka.AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=0,
                max_batch_size=MAX_BATCH_BYTES + 64 * 1024,
                max_request_size=MAX_BATCH_BYTES + 128 * 1024,
                request_timeout_ms=self.request_timeout_ms)
            try:
                await admin.start()
                await producer.start()
            except Exception as e:
                await _quietly(admin.close())
                await _quietly(producer.stop())
                raise StorageError(f"cannot reach Kafka at {self.bootstrap}: {e}") from None
            self._admin, self._producer = admin, producer

    async def _partitions(self, name: str) -> int | None:
        await self._started()
        try:
            # list first: describing a missing topic may create it (auto-create brokers)
            if self._topic(name) not in await self._admin.list_topics():
                return None
            described = await self._admin.describe_topics([self._topic(name)])
        except Exception as e:
            raise StorageError(f"Kafka at {self.bootstrap}: {e}") from None
        for topic in described:
            if topic.get("topic") == self._topic(name) and not topic.get("error_code"):
                n = len(topic.get("partitions") or ()) or None
                if n is not None:
                    if len(self._known) >= 10_000:
                        self._known.clear()
                    self._known[name] = n
                return n
        return None

    async def create(self, name: str, partitions: int) -> StreamInfo:
        from aiokafka.admin import NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        await self._started()
        try:
            await self._admin.create_topics(
                [NewTopic(self._topic(name), num_partitions=partitions, replication_factor=1)])
        except TopicAlreadyExistsError:
            pass
        except Exception as e:
            raise StorageError(f"Kafka at {self.bootstrap}: cannot create {name}: {e}") from None
        have = await self._partitions(name)
        if have is None:
            raise StorageError(f"Kafka at {self.bootstrap} did not create {name}")
        if have != partitions:
            raise ConflictError(f"stream {name} exists with {have} partitions")
        return StreamInfo(name, partitions, self.description)

    async def info(self, name: str) -> StreamInfo | None:
        n = await self._partitions(name)
        return None if n is None else StreamInfo(name, n, self.description)

    async def streams(self) -> list[StreamInfo]:
        await self._started()
        try:
            topics = await self._admin.list_topics()
        except Exception as e:
            raise StorageError(f"Kafka at {self.bootstrap}: {e}") from None
        names = sorted(t[len(self.prefix):] for t in topics
                       if t.startswith(self.prefix) and not t.startswith("__"))
        out = []
        for name in names:
            info = await self.info(name)
            if info is not None:
                out.append(info)
        return out

    async def delete(self, name: str) -> None:
        self._known.pop(name, None)
        if await self._partitions(name) is None:
            raise NotFoundError(f"no stream named {name}")
        for key in [k for k in self._readers if k[0] == name]:
            await _quietly(self._readers.pop(key).consumer.stop())
        try:
            await self._admin.delete_topics([self._topic(name)])
        except Exception as e:
            raise StorageError(f"Kafka at {self.bootstrap}: cannot delete {name}: {e}") from None

    async def _check(self, name: str, partition: int) -> None:
        n = self._known.get(name)
        if n is None or partition >= n:
            n = await self._partitions(name)
        if n is None:
            raise NotFoundError(f"no stream named {name}")
        if partition >= n:
            raise NotFoundError(f"stream {name} has no partition {partition}")

    async def append(self, name: str, partition: int, records: tuple[bytes, ...]) -> int:
        await self._started()
        await self._check(name, partition)
        producer = self._producer
        topic = self._topic(name)
        if any(len(rec) > MAX_RECORD for rec in records):
            raise StorageError("record too large")
        key = (topic, partition)
        entry = self._enqueuing.get(key)
        if entry is None:
            entry = self._enqueuing[key] = _Enqueuing()
        entry.users += 1
        try:
            async with entry.lock:
                futures = await self._enqueue(producer, topic, partition, records)
            metas = await asyncio.gather(*futures)
        except StorageError:
            raise
        except Exception as e:
            raise StorageError(f"Kafka at {self.bootstrap}: cannot append to {name}: {e}") from None
        finally:
            entry.users -= 1
            if entry.users == 0 and self._enqueuing.get(key) is entry:
                del self._enqueuing[key]
        return int(metas[0].offset)

    @staticmethod
    async def _enqueue(producer: Any, topic: str, partition: int,
                       records: tuple[bytes, ...]) -> list[Any]:
        """Hand ``records`` to the producer as batches for ``topic``/``partition``; the futures
        of their delivery. The caller holds that partition's lock: aiokafka's ``send_batch``
        waits while a batch of the partition is pending and counts that wait against its
        timeout wrongly (the time since it began, again at every turn), so with several
        appends waiting their turn inside it one failed with ``KafkaTimeoutError`` after about
        a second on a loaded machine; taking turns here, each waits for one batch at most."""
        futures = []
        batch = producer.create_batch()
        for rec in records:
            if batch.append(key=None, value=rec, timestamp=None) is None:
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=None, value=rec, timestamp=None) is None:
                    raise StorageError("a record does not fit a Kafka batch")
        batch.close()
        futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def _reader(self, name: str, partition: int) -> _Reader:
        key = (name, partition)
        reader = self._readers.get(key)
        if reader is not None:
            self._readers.move_to_end(key)
            return reader
        await self._check(name, partition)
        aiokafka = _kafka()
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=MAX_BATCH_BYTES,
            request_timeout_ms=self.request_timeout_ms)
        try:
            await consumer.start()
            consumer.assign([aiokafka.TopicPartition(self._topic(name), partition)])
        except Exception as e:
            await _quietly(consumer.stop())
            raise StorageError(f"Kafka at {self.bootstrap}: {e}") from None
        reader = self._readers[key] = _Reader(consumer)
        while len(self._readers) > self.max_readers:
            _, old = self._readers.popitem(last=False)
            await _quietly(old.consumer.stop())
        return reader

    async def read(self, name: str, partition: int, from_index: int, limit: int,
                   max_bytes: int) -> list[tuple[int, bytes]]:
        aiokafka = _kafka()
        reader = await self._reader(name, partition)
        tp = aiokafka.TopicPartition(self._topic(name), partition)
        async with reader.lock:
            consumer = reader.consumer
            if reader.position != from_index:
                consumer.seek(tp, from_index)
                reader.position = from_index
            try:
                got = await consumer.getmany(tp, timeout_ms=FETCH_WAIT_MS, max_records=limit)
            except Exception as e:
                reader.position = -1
                raise StorageError(f"Kafka at {self.bootstrap}: cannot read {name}: {e}") from None
            out: list[tuple[int, bytes]] = []
            total = 0
            for m in got.get(tp, ()):
                if m.offset < from_index:
                    continue
                data = m.value or b""
                if out and total + len(data) > max_bytes:
                    break
                out.append((int(m.offset), data))
                total += len(data)
            if out and len(out) == len(got.get(tp, ())):
                reader.position = out[-1][0] + 1
            else:
                reader.position = -1  # some fetched records were not returned: seek next time
            return out

    async def _group(self, group: str) -> Any:
        consumer = self._groups.get(group)
        if consumer is not None:
            self._groups.move_to_end(group)
            return consumer
        aiokafka = _kafka()
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False,
            request_timeout_ms=self.request_timeout_ms)
        try:
            await consumer.start()
        except Exception as e:
            await _quietly(consumer.stop())
            raise StorageError(f"Kafka at {self.bootstrap}: {e}") from None
        self._groups[group] = consumer
        while len(self._groups) > self.max_groups:
            _, old = self._groups.popitem(last=False)
            await _quietly(old.stop())
        return consumer

    async def get_index(self, name: str, group: str, partition: int) -> int | None:
        aiokafka = _kafka()
        await self._check(name, partition)
        consumer = await self._group(group)
        try:
            offset = await consumer.committed(aiokafka.TopicPartition(self._topic(name), partition))
        except Exception as e:
            raise StorageError(f"Kafka at {self.bootstrap}: {e}") from None
        return None if offset is None or offset < 0 else int(offset)

    async def save_index(self, name: str, group: str, partition: int, index: int) -> None:
        aiokafka = _kafka()
        from aiokafka.structs import OffsetAndMetadata

        await self._check(name, partition)
        consumer = await self._group(group)
        tp = aiokafka.TopicPartition(self._topic(name), partition)
        try:
            if tp not in consumer.assignment():
                consumer.assign([*consumer.assignment(), tp])
            await consumer.commit({tp: OffsetAndMetadata(index, "")})
        except Exception as e:
            raise StorageError(f"Kafka at {self.bootstrap}: {e}") from None

    async def close(self) -> None:
        for reader in self._readers.values():
            await _quietly(reader.consumer.stop())
        for consumer in self._groups.values():
            await _quietly(consumer.stop())
        self._readers.clear()
        self._groups.clear()
        if self._producer is not None:
            await _quietly(self._producer.stop())
            await _quietly(self._admin.close())
            self._producer = self._admin = None


async def _quietly(aw: Any) -> None:
    try:
        await aw
    except Exception:  # closing a client that failed: nothing more to do
        return
