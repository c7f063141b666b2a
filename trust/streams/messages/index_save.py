"""``IndexSave`` = ``[name: text, group: text, partition: uint, index: uint]`` (operation 5):
a consumer group's position in one partition (the index of the next record it wants).
Reply: ``[]``."""

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

__all__ = ["IndexSave"]


@dataclass(frozen=True, slots=True)
class IndexSave:
    name: str
    group: str
    index: int
    partition: int = 0
    op: ClassVar[int] = 5

    def __post_init__(self) -> None:
        check_name(self.name)
        check_group(self.group)
        if not 0 <= self.partition < MAX_PARTITIONS:
            raise DecodeError("partition out of range", field="partition")
        if not 0 <= self.index <= MAX_INDEX:
            raise DecodeError("index out of range", field="index")

    def encode(self) -> bytes:
        return enc_array([enc_text(self.name), enc_text(self.group), enc_uint(self.partition),
                          enc_uint(self.index)])

    @classmethod
    def read(cls, r: Reader) -> IndexSave:
        r.array("index_save", 4)
        name = read_name(r)
        group = read_group(r)
        partition = r.uint("partition", max_value=MAX_PARTITIONS - 1)
        return cls(name, group, r.uint("index", max_value=MAX_INDEX), partition)
