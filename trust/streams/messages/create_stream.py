"""``CreateStream`` = ``[name: text, partitions: uint]`` (operation 1). Reply: the stream's
:class:`~trust.streams.messages.stream_info.StreamInfo`. Creating a stream that exists with the
same partition count succeeds (idempotent); with another count it is a conflict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_array, enc_text, enc_uint
from trust.streams.messages.common import MAX_PARTITIONS, check_name, read_name

__all__ = ["CreateStream"]


@dataclass(frozen=True, slots=True)
class CreateStream:
    name: str
    partitions: int = 1
    op: ClassVar[int] = 1

    def __post_init__(self) -> None:
        check_name(self.name)
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise DecodeError(f"a stream has 1 to {MAX_PARTITIONS} partitions", field="partitions")

    def encode(self) -> bytes:
        return enc_array([enc_text(self.name), enc_uint(self.partitions)])

    @classmethod
    def read(cls, r: Reader) -> CreateStream:
        r.array("create_stream", 2)
        name = read_name(r)
        return cls(name, r.uint("partitions", max_value=MAX_PARTITIONS))
