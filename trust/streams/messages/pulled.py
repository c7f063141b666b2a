"""``Pulled`` = ``[next_index: uint, records: [[index: uint, data: bytes], ...]]``: the reply to
a pull. Indexes increase strictly; ``next_index`` is where the next pull should start (one past
the last record, or the pull's ``from_index`` when none came)."""

from __future__ import annotations

from dataclasses import dataclass

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_array, enc_bytes, enc_uint, head
from trust.streams.messages.common import MAX_BATCH_RECORDS, MAX_INDEX

__all__ = ["Pulled"]


@dataclass(frozen=True, slots=True)
class Pulled:
    next_index: int
    records: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        items = b"".join(b"\x82" + enc_uint(i) + enc_bytes(d) for i, d in self.records)
        return enc_array([enc_uint(self.next_index), head(4, len(self.records)) + items])

    @classmethod
    def read(cls, r: Reader) -> Pulled:
        r.array("pulled", 2)
        next_index = r.uint("next_index", max_value=MAX_INDEX)
        n = r.array("records", max_len=MAX_BATCH_RECORDS)
        records = []
        last = -1
        for i in range(n):
            r.array(f"records[{i}]", 2)
            index = r.uint(f"records[{i}].index", max_value=MAX_INDEX)
            if index <= last:
                raise DecodeError("record indexes must increase", field=f"records[{i}].index")
            last = index
            records.append((index, r.bytes(f"records[{i}].data")))
        if records and next_index <= last:
            raise DecodeError("next_index must follow the last record", field="next_index")
        return cls(next_index, tuple(records))
