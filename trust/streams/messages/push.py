"""``Push`` = ``[name: text, partition: uint, records: [bytes, ...]]`` (operation 2): append the
records, in order, to one partition. Reply: :class:`~trust.streams.messages.pushed.Pushed`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_array, enc_bytes, enc_text, enc_uint, head
from trust.streams.messages.common import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_PARTITIONS,
    MAX_RECORD,
    check_name,
    read_name,
)

__all__ = ["Push", "check_records"]


def check_records(records: tuple[bytes, ...]) -> None:
    if not 1 <= len(records) <= MAX_BATCH_RECORDS:
        raise DecodeError(f"a batch holds 1 to {MAX_BATCH_RECORDS} records, not {len(records)}",
                          field="records")
    total = 0
    for rec in records:
        if len(rec) > MAX_RECORD:
            raise DecodeError(f"a record of {len(rec)} bytes is over the {MAX_RECORD}-byte limit",
                              field="records")
        total += len(rec)
    if total > MAX_BATCH_BYTES:
        raise DecodeError(f"a batch of {total} bytes is over the {MAX_BATCH_BYTES}-byte limit",
                          field="records")


@dataclass(frozen=True, slots=True)
class Push:
    name: str
    records: tuple[bytes, ...]
    partition: int = 0
    op: ClassVar[int] = 2

    def __post_init__(self) -> None:
        check_name(self.name)
        if not 0 <= self.partition < MAX_PARTITIONS:
            raise DecodeError("partition out of range", field="partition")
        check_records(self.records)

    def encode(self) -> bytes:
        return enc_array([enc_text(self.name), enc_uint(self.partition),
                          head(4, len(self.records)) + b"".join(enc_bytes(x) for x in self.records)])

    @classmethod
    def read(cls, r: Reader) -> Push:
        r.array("push", 3)
        name = read_name(r)
        partition = r.uint("partition", max_value=MAX_PARTITIONS - 1)
        n = r.array("records", min_len=1, max_len=MAX_BATCH_RECORDS)
        records = tuple(r.bytes(f"records[{i}]") for i in range(n))
        return cls(name, records, partition)
