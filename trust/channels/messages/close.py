"""``SecureChannelMessage::Close`` = ``[2, []]`` (wire spec §4.2): the sender stops its channel;
the receiver stops its own without answering. Padded, it is ``82 82 02 80 40``."""

from __future__ import annotations

from typing import ClassVar, Final

from trust.errors import DecodeError
from trust.models.cbor import Reader

__all__ = ["CLOSE_VARIANT", "Close"]

CLOSE_VARIANT: Final = 2


class Close:
    """The Close message (no fields; every instance is equal)."""

    __slots__ = ()
    variant: ClassVar[int] = CLOSE_VARIANT

    def encode_message(self) -> bytes:
        """The ``SecureChannelMessage`` item (``82 02 80``)."""
        return b"\x82\x02\x80"

    def encode(self, padding: bytes = b"") -> bytes:
        """The padded message (``82 82 02 80 40`` without padding)."""
        from trust.channels.messages.padded import pad

        return pad(self.encode_message(), padding)

    @classmethod
    def read_fields(cls, r: Reader, field: str = "close") -> Close:
        """Read the fields array (after the variant index): it must be empty."""
        n = r.array(field)
        if n:
            raise DecodeError(f"Close has no fields, found {n}", field=field)
        return cls()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Close)

    def __hash__(self) -> int:
        return hash(Close)

    def __repr__(self) -> str:
        return "Close()"
