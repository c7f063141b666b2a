"""``IndexGet`` = ``[name: text, group: text, partition: uint]`` (operation 4): the index a
consumer group saved for one partition. Reply: ``[index: uint | null]`` (null: never saved)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_array, enc_text, enc_uint
from trust.streams.messages.common import (
    MAX_INDEX,
    MAX_PARTITIONS,
    check_group,
    check_name,
    read_group,
    read_name,
)

__all__ = ["IndexGet", "decode_index_reply", "encode_index_reply"]


@dataclass(frozen=True, slots=True)
class IndexGet:
    name: str
    group: str
    partition: int = 0
    op: ClassVar[int] = 4

    def __post_init__(self) -> None:
        check_name(self.name)
        check_group(self.group)
        if not 0 <= self.partition < MAX_PARTITIONS:
            raise DecodeError("partition out of range", field="partition")

    def encode(self) -> bytes:
        return enc_array([enc_text(self.name), enc_text(self.group), enc_uint(self.partition)])

    @classmethod
    def read(cls, r: Reader) -> IndexGet:
        r.array("index_get", 3)
        name = read_name(r)
        group = read_group(r)
        return cls(name, group, r.uint("partition", max_value=MAX_PARTITIONS - 1))


def encode_index_reply(index: int | None) -> bytes:
    return b"\x81" + (b"\xf6" if index is None else enc_uint(index))


def decode_index_reply(r: Reader) -> int | None:
    r.array("index_reply", 1)
    return None if r.peek_null() else r.uint("index", max_value=MAX_INDEX)
