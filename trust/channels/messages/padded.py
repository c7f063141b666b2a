"""``SecureChannelPaddedMessage = [message: SecureChannelMessage, padding: bstr]`` (wire spec
§4.2): the plaintext of every record. ``SecureChannelMessage`` is ``[0, [Payload]]``,
``[1, [RefreshCredentials]]`` or ``[2, []]`` (Close).

:func:`decode_message` is strict: definite lengths, shortest heads, exact array lengths, a known
variant, no trailing bytes, at most :data:`MAX_PLAINTEXT_SIZE` bytes; anything else is a
:class:`~trust.errors.DecodeError`. Ockam sends an empty padding today; any padding is accepted.
"""

from __future__ import annotations

from typing import Final

from trust.channels.messages.close import CLOSE_VARIANT, Close
from trust.channels.messages.payload import (
    PAYLOAD_VARIANT,
    Payload,
    decode_payload_fast,
)
from trust.channels.messages.refresh_credentials import REFRESH_CREDENTIALS_VARIANT, RefreshCredentials
from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_bytes

__all__ = ["MAX_PLAINTEXT_SIZE", "ChannelMessage", "decode_message", "encode_message", "pad"]

MAX_PLAINTEXT_SIZE: Final = 16 * 1024 * 1024
"""The largest plaintext accepted (a record travels in one TCP frame of at most 16 MiB)."""

ChannelMessage = Payload | RefreshCredentials | Close


def pad(message: bytes, padding: bytes = b"") -> bytes:
    """``[message, padding]`` from an encoded ``SecureChannelMessage`` item."""
    return b"\x82" + message + enc_bytes(padding)


def encode_message(message: ChannelMessage, padding: bytes = b"") -> bytes:
    """The padded plaintext of ``message``."""
    return message.encode(padding)


def decode_message(data: bytes | bytearray, end: int | None = None) -> ChannelMessage:
    """Decode the padded message in ``data[:end]`` (all of ``data`` by default)."""
    f = "secure_channel_message"
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", field=f)
    if end is None:
        end = len(data)
    if not 0 <= end <= len(data):
        raise DecodeError("end is outside the data", field=f)
    if end > MAX_PLAINTEXT_SIZE:
        raise DecodeError(f"{end} bytes is larger than the {MAX_PLAINTEXT_SIZE}-byte limit", field=f)
    fast = decode_payload_fast(data, end)
    if fast is not None:
        return fast
    r = Reader(bytes(data[:end]) if end != len(data) or type(data) is not bytes else data)
    r.array(f, 2)
    r.array(f"{f}.message", 2)
    variant = r.uint(f"{f}.message.variant")
    message: ChannelMessage
    if variant == PAYLOAD_VARIANT:
        message = Payload.read_fields(r, "payload")
    elif variant == REFRESH_CREDENTIALS_VARIANT:
        message = RefreshCredentials.read_fields(r, "refresh_credentials")
    elif variant == CLOSE_VARIANT:
        message = Close.read_fields(r, "close")
    else:
        raise DecodeError(f"unknown message variant {variant}", field=f"{f}.message.variant")
    r.bytes(f"{f}.padding")
    r.end(f)
    return message
