"""Streams in a node process: the stream service at ``stream_service`` (a policy resource of
type ``stream-service``) over the node's streams (:class:`~trust.streams.catalog.StreamCatalog`:
the home's database by default, Kafka per stream), and the ``stream.*`` control methods the
``truststack stream`` commands call."""

from __future__ import annotations

import logging
from typing import Any

from trust.errors import UsageError
from trust.streams.messages.common import (
    MAX_BATCH_RECORDS,
    MAX_INDEX,
    MAX_PARTITIONS,
    check_group,
    check_name,
)

__all__ = ["ADDRESS", "RESOURCE_TYPE", "register", "start", "stop"]

log = logging.getLogger("trust.node.stream_feature")

ADDRESS = "stream_service"
RESOURCE_TYPE = "stream-service"
MAX_PULL_WAIT = 30.0
MAX_CONTROL_BYTES = 256 * 1024
"""Record bytes one `stream.pull` control call returns at most (beyond its first record)."""


async def start(runtime: Any) -> None:
    from trust.storage import storage_url
    from trust.storage.sql import database
    from trust.storage.streams import SqlStreamLocations, SqlStreams
    from trust.streams.catalog import StreamCatalog
    from trust.streams.service import StreamService

    db = database(storage_url(runtime.paths.home))
    catalog = StreamCatalog(SqlStreams(db), SqlStreamLocations(db))
    service = StreamService(catalog)
    runtime.access.registry.add(ADDRESS, RESOURCE_TYPE)
    await runtime.node.start_worker(ADDRESS, service,
                                    incoming=runtime.access.access_control(ADDRESS))
    runtime.features[__name__] = {"db": db, "catalog": catalog, "service": service}


async def stop(runtime: Any) -> None:
    state = runtime.features.pop(__name__, None)
    if state is not None:
        await state["catalog"].close()
        await state["db"].close()


def _str(params: dict[str, Any], key: str, method: str) -> str:
    value = params.get(key)
    if not isinstance(value, str):
        raise UsageError(f"{method}: {key} must be a string")
    return value


def _int(params: dict[str, Any], key: str, default: int, lo: int, hi: int, method: str) -> int:
    value = params.get(key, default)
    if type(value) is not int or not lo <= value <= hi:
        raise UsageError(f"{method}: {key} must be an integer from {lo} to {hi}")
    return value


def register(server: Any, runtime: Any) -> None:
    def catalog() -> Any:
        return runtime.features[__name__]["catalog"]

    def info_dict(info: Any) -> dict[str, Any]:
        return {"name": info.name, "partitions": info.partitions, "backend": info.backend}

    async def create(params: dict[str, Any]) -> dict[str, Any]:
        name = check_name(_str(params, "name", "stream.create"))
        partitions = _int(params, "partitions", 1, 1, MAX_PARTITIONS, "stream.create")
        backend = params.get("backend")
        if backend is not None and not isinstance(backend, str):
            raise UsageError("stream.create: backend must be a string")
        return info_dict(await catalog().create(name, partitions, backend))

    async def push(params: dict[str, Any]) -> dict[str, Any]:
        from trust.streams.messages.push import check_records

        name = check_name(_str(params, "name", "stream.push"))
        partition = _int(params, "partition", 0, 0, MAX_PARTITIONS - 1, "stream.push")
        messages = params.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
            raise UsageError("stream.push: messages must be a list of strings")
        records = tuple(m.encode("utf-8") for m in messages)
        check_records(records)
        first = await catalog().append(name, partition, records)
        return {"name": name, "partition": partition, "first_index": first,
                "count": len(records)}

    async def pull(params: dict[str, Any]) -> dict[str, Any]:
        import asyncio
        import time

        name = check_name(_str(params, "name", "stream.pull"))
        partition = _int(params, "partition", 0, 0, MAX_PARTITIONS - 1, "stream.pull")
        limit = _int(params, "limit", 100, 1, MAX_BATCH_RECORDS, "stream.pull")
        wait = params.get("wait", 0)
        if not isinstance(wait, (int, float)) or isinstance(wait, bool) or \
                not 0 <= wait <= MAX_PULL_WAIT:
            raise UsageError(f"stream.pull: wait must be 0 to {MAX_PULL_WAIT:g} seconds")
        group = params.get("group")
        if group is not None:
            group = check_group(_str(params, "group", "stream.pull"))
        cat = catalog()
        if params.get("from_index") is not None:
            index = _int(params, "from_index", 0, 0, MAX_INDEX, "stream.pull")
        elif group is not None:
            index = await cat.get_index(name, group, partition) or 0
        else:
            index = 0
        deadline = time.monotonic() + float(wait)
        while True:
            records = await cat.read(name, partition, index, limit, MAX_CONTROL_BYTES)
            if records or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        next_index = records[-1][0] + 1 if records else index
        if group is not None and records:
            await cat.save_index(name, group, partition, next_index)
        return {"name": name, "partition": partition, "next_index": next_index,
                "records": [{"index": i, "data": d.hex()} for i, d in records]}

    async def list_(params: dict[str, Any]) -> dict[str, Any]:
        return {"streams": [info_dict(i) for i in await catalog().streams()]}

    async def show(params: dict[str, Any]) -> dict[str, Any]:
        from trust.errors import NotFoundError

        name = check_name(_str(params, "name", "stream.show"))
        info = await catalog().info(name)
        if info is None:
            raise NotFoundError(f"no stream named {name}")
        service = runtime.features[__name__]["service"]
        return {**info_dict(info), "service": ADDRESS, "served": service.served,
                "refused": service.refused}

    async def delete(params: dict[str, Any]) -> dict[str, Any]:
        name = check_name(_str(params, "name", "stream.delete"))
        await catalog().delete(name)
        return {"name": name}

    server.register("stream.create", create)
    server.register("stream.push", push)
    server.register("stream.pull", pull)
    server.register("stream.list", list_)
    server.register("stream.show", show)
    server.register("stream.delete", delete)
