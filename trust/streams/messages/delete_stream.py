"""``DeleteStream`` = ``[name: text]`` (operation 7): delete a stream, its records and its groups'
indexes. Reply: ``[]``; an unknown stream is an error reply (code ``not_found``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trust.models.cbor import Reader, enc_array, enc_text
from trust.streams.messages.common import check_name, read_name

__all__ = ["DeleteStream"]


@dataclass(frozen=True, slots=True)
class DeleteStream:
    name: str
    op: ClassVar[int] = 7

    def __post_init__(self) -> None:
        check_name(self.name)

    def encode(self) -> bytes:
        return enc_array([enc_text(self.name)])

    @classmethod
    def read(cls, r: Reader) -> DeleteStream:
        r.array("delete_stream", 1)
        return cls(read_name(r))
