""":class:`RecordSession`: both directions of an open channel, messages in, records out and
back (the record layer of :mod:`trust.channels.records` with the message codec of
:mod:`trust.channels.messages`)."""

from __future__ import annotations

from typing import Final

from trust.channels.messages.padded import MAX_PLAINTEXT_SIZE, ChannelMessage, decode_message
from trust.channels.messages.payload import encode_payload
from trust.channels.noise import SplitKeys
from trust.channels.records import RECORD_OVERHEAD, Decryptor, Encryptor
from trust.errors import DecodeError, UsageError
from trust.routing.route import Route

__all__ = ["RecordSession"]

_LARGE: Final = 16 * 1024
"""Records at least this large are decrypted into a reused buffer."""


class RecordSession:
    """Encrypts messages for the peer and decrypts the peer's records, from the keys of a
    completed handshake."""

    __slots__ = ("_buf", "decryptor", "encryptor")

    def __init__(self, keys: SplitKeys) -> None:
        if not isinstance(keys, SplitKeys):
            raise UsageError("keys must be the SplitKeys of a completed handshake")
        self.encryptor = Encryptor(keys.encrypt_key)
        self.decryptor = Decryptor(keys.decrypt_key)
        self._buf = bytearray()

    def encrypt_payload(self, onward_route: Route, return_route: Route, payload: bytes) -> bytes:
        """The record of a Payload message (the common case)."""
        return self.encryptor.encrypt(encode_payload(onward_route, return_route, payload))

    def encrypt(self, message: ChannelMessage) -> bytes:
        """The record of any channel message (Payload, RefreshCredentials, Close)."""
        return self.encryptor.encrypt(message.encode())

    def decrypt(self, record: bytes | bytearray | memoryview) -> ChannelMessage:
        """The message in ``record``; typed errors (nothing changes) for a replayed, forged or
        malformed record."""
        size = len(record) - RECORD_OVERHEAD
        if size < _LARGE:
            return decode_message(self.decryptor.decrypt(record))
        if size > MAX_PLAINTEXT_SIZE:
            raise DecodeError(f"a record of {len(record)} bytes is larger than the "
                              f"{MAX_PLAINTEXT_SIZE}-byte limit", field="record")
        buf = self._buf
        if len(buf) < size:
            self._buf = buf = bytearray(size)
        n = self.decryptor.decrypt_into(record, buf)
        try:
            return decode_message(buf, n)
        finally:
            if len(buf) > 4 * _LARGE and n < len(buf) // 4:
                self._buf = bytearray()  # do not keep a large buffer for small records
