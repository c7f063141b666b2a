"""``StreamInfo`` = ``[name: text, partitions: uint, backend: text]``: the reply to create,
and the elements of the reply to list."""

from __future__ import annotations

from dataclasses import dataclass

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_array, enc_text, enc_uint
from trust.streams.messages.common import MAX_PARTITIONS, check_name, read_name

__all__ = ["MAX_BACKEND", "StreamInfo"]

MAX_BACKEND = 200


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    partitions: int
    backend: str

    def __post_init__(self) -> None:
        check_name(self.name)
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise DecodeError(f"a stream has 1 to {MAX_PARTITIONS} partitions", field="partitions")
        if len(self.backend) > MAX_BACKEND:
            raise DecodeError("backend description too long", field="backend")

    def encode(self) -> bytes:
        return enc_array([enc_text(self.name), enc_uint(self.partitions), enc_text(self.backend)])

    @classmethod
    def read(cls, r: Reader, field: str = "stream_info") -> StreamInfo:
        r.array(field, 3)
        name = read_name(r)
        partitions = r.uint("partitions", max_value=MAX_PARTITIONS)
        return cls(name, partitions, r.text("backend"))
