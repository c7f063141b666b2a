"""``Pull`` = ``[name: text, partition: uint, from_index: uint, limit: uint, timeout_ms: uint]``
(operation 3): up to ``limit`` records of one partition from ``from_index`` on; when there are
none yet, wait up to ``timeout_ms`` for some (long poll). Reply:
:class:`~trust.streams.messages.pulled.Pulled`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_array, enc_text, enc_uint
from trust.streams.messages.common import (
    MAX_INDEX,
    MAX_PARTITIONS,
    MAX_PULL_LIMIT,
    MAX_TIMEOUT_MS,
    check_name,
    read_name,
)

__all__ = ["Pull"]


@dataclass(frozen=True, slots=True)
class Pull:
    name: str
    from_index: int = 0
    limit: int = 100
    timeout_ms: int = 0
    partition: int = 0
    op: ClassVar[int] = 3

    def __post_init__(self) -> None:
        check_name(self.name)
        if not 0 <= self.partition < MAX_PARTITIONS:
            raise DecodeError("partition out of range", field="partition")
        if not 0 <= self.from_index <= MAX_INDEX:
            raise DecodeError("from_index out of range", field="from_index")
        if not 1 <= self.limit <= MAX_PULL_LIMIT:
            raise DecodeError(f"limit is 1 to {MAX_PULL_LIMIT}", field="limit")
        if not 0 <= self.timeout_ms <= MAX_TIMEOUT_MS:
            raise DecodeError(f"timeout_ms is 0 to {MAX_TIMEOUT_MS}", field="timeout_ms")

    def encode(self) -> bytes:
        return enc_array([enc_text(self.name), enc_uint(self.partition), enc_uint(self.from_index),
                          enc_uint(self.limit), enc_uint(self.timeout_ms)])

    @classmethod
    def read(cls, r: Reader) -> Pull:
        r.array("pull", 5)
        name = read_name(r)
        partition = r.uint("partition", max_value=MAX_PARTITIONS - 1)
        from_index = r.uint("from_index", max_value=MAX_INDEX)
        limit = r.uint("limit", max_value=MAX_PULL_LIMIT)
        timeout_ms = r.uint("timeout_ms", max_value=MAX_TIMEOUT_MS)
        return cls(name, from_index, limit, timeout_ms, partition)
