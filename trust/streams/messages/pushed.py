"""``Pushed`` = ``[first_index: uint, count: uint]``: the reply to a push; the records got the
indexes ``first_index`` … ``first_index + count - 1`` in their partition."""

from __future__ import annotations

from dataclasses import dataclass

from trust.models.cbor import Reader, enc_array, enc_uint
from trust.streams.messages.common import MAX_BATCH_RECORDS, MAX_INDEX

__all__ = ["Pushed"]


@dataclass(frozen=True, slots=True)
class Pushed:
    first_index: int
    count: int

    def encode(self) -> bytes:
        return enc_array([enc_uint(self.first_index), enc_uint(self.count)])

    @classmethod
    def read(cls, r: Reader) -> Pushed:
        r.array("pushed", 2)
        first = r.uint("first_index", max_value=MAX_INDEX)
        return cls(first, r.uint("count", max_value=MAX_BATCH_RECORDS))
