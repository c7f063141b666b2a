"""``ListStreams`` = ``[]`` (operation 6). Reply: ``[StreamInfo, ...]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trust.models.cbor import Reader

__all__ = ["ListStreams"]


@dataclass(frozen=True, slots=True)
class ListStreams:
    op: ClassVar[int] = 6

    def encode(self) -> bytes:
        return b"\x80"

    @classmethod
    def read(cls, r: Reader) -> ListStreams:
        r.array("list_streams", 0)
        return cls()
