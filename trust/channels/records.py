"""The record layer (wire spec §4.1, §4.4, §4.5): what travels after the handshake.

``record = nonce (u64 big-endian, 8 bytes) || AES-256-GCM(key_for(nonce), iv = 00000000 || nonce,
aad = "", plaintext)``. Each direction has its own key and a nonce counter starting at 0.

* **Rekey every 32:** the key for nonce ``n`` is ``REKEY^(n // 32)(k)``, with ``REKEY(k)`` the
  first 32 bytes of ``AES-256-GCM(k, iv = 00000000 || ffffffffffffffff, 32 zero bytes)``.
* **Window:** the :class:`Decryptor` accepts each nonce once, within 32 of the highest nonce it
  accepted (so records may arrive reordered by up to 32); it picks the previous, current or next
  key by the nonce's distance from the current key's first nonce. Its state (window, key
  rotation) changes **only after** the record decrypted: a forged record changes nothing.

Both are sans-IO objects over bytes. One ``AESGCM`` object is kept per key; the nonce bytes come
from one ``struct`` call. :class:`RecordSession` joins them with the message codec: messages in,
records out, and back.
"""

from __future__ import annotations

from struct import Struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trust.channels.errors import DecryptionError, ReplayError
from trust.channels.messages.padded import MAX_PLAINTEXT_SIZE, ChannelMessage, decode_message
from trust.channels.messages.payload import (
    PAYLOAD_PREFIX,
    Payload,
    bstr_head,
    payload_at,
    routes_prefix,
)
from trust.channels.noise import SplitKeys
from trust.errors import DecodeError, UsageError
from trust.routing.route import Route
from trust.routing.route_cbor import read_route

__all__ = [
    "KEY_RENEWAL_INTERVAL",
    "MAX_NONCE",
    "RECORD_OVERHEAD",
    "WINDOW",
    "Decryptor",
    "Encryptor",
    "RecordSession",
    "rekey",
]

KEY_RENEWAL_INTERVAL: Final = 32
WINDOW: Final = 32
"""How far (in nonces) a record may lie from the highest nonce accepted."""
NONCE_SIZE: Final = 8
TAG_SIZE: Final = 16
RECORD_OVERHEAD: Final = NONCE_SIZE + TAG_SIZE
MAX_NONCE: Final = (1 << 64) - 2
"""The last nonce a record may carry (``u64::MAX`` is never used)."""

_U64: Final = Struct(">Q")
_pack = _U64.pack
_unpack = _U64.unpack_from
_ZERO4: Final = bytes(4)
_REKEY_NONCE: Final = _ZERO4 + b"\xff" * 8
_ZEROS32: Final = bytes(32)
_MASK64: Final = (1 << 64) - 1
_REKEY_MASK: Final = KEY_RENEWAL_INTERVAL - 1
_MAX_START: Final = 1 << 20


def rekey(key: bytes) -> bytes:
    """Noise's ``REKEY``: the key that follows ``key``."""
    return AESGCM(key).encrypt(_REKEY_NONCE, _ZEROS32, None)[:32]


class Encryptor:
    """Turns plaintexts into records, one nonce after the other (from ``nonce``)."""

    __slots__ = ("_aead", "_key", "_nonce")

    def __init__(self, key: bytes, *, nonce: int = 0) -> None:
        if not isinstance(key, bytes) or len(key) != 32:
            raise UsageError("a record key is 32 bytes")
        if not 0 <= nonce <= _MAX_START:
            raise UsageError(f"a starting nonce is between 0 and {_MAX_START} (see resume())")
        for _ in range((nonce - 1) // KEY_RENEWAL_INTERVAL if nonce else 0):
            key = rekey(key)  # the key of nonce - 1; encrypt() rekeys at the next boundary
        self._key = key
        self._aead = AESGCM(key)
        self._nonce = nonce

    @classmethod
    def resume(cls, key: bytes, nonce: int) -> Encryptor:
        """Continue a channel: ``nonce`` is the next record's, ``key`` the key of the record
        before it (the current key of a saved encryptor, see :attr:`state`)."""
        if not 0 < nonce <= MAX_NONCE + 1:
            raise UsageError("nonce out of range")
        enc = cls(key)
        enc._nonce = nonce
        return enc

    @property
    def state(self) -> tuple[bytes, int]:
        """``(current key, next nonce)``, what :meth:`resume` takes."""
        return self._key, self._nonce

    @property
    def nonce(self) -> int:
        """The nonce of the next record."""
        return self._nonce

    def encrypt(self, plaintext: bytes) -> bytes:
        """The record of ``plaintext``."""
        n = self._nonce
        if n > MAX_NONCE:
            raise UsageError("this channel has used all its nonces (start a new one)")
        if n & _REKEY_MASK == 0 and n:
            self._key = key = rekey(self._key)
            self._aead = AESGCM(key)
        self._nonce = n + 1
        nb = _pack(n)
        return nb + self._aead.encrypt(_ZERO4 + nb, plaintext, None)

    def encrypt_into(self, plaintext: bytes, buf: bytearray | memoryview) -> int:
        """Write the record of ``plaintext`` into ``buf`` (``len(plaintext) + 24`` bytes at
        least); return its length. Saves a copy of large plaintexts."""
        n = self._nonce
        if n > MAX_NONCE:
            raise UsageError("this channel has used all its nonces (start a new one)")
        if n & _REKEY_MASK == 0 and n:
            self._key = key = rekey(self._key)
            self._aead = AESGCM(key)
        size = len(plaintext) + RECORD_OVERHEAD
        if len(buf) < size:
            raise UsageError(f"the buffer holds {len(buf)} bytes; the record needs {size}")
        self._nonce = n + 1
        nb = _pack(n)
        view = memoryview(buf)
        view[:8] = nb
        self._aead.encrypt_into(_ZERO4 + nb, plaintext, None, view[8:size])
        return size


class Decryptor:
    """Checks and decrypts records: each nonce once, within the window, keys rotated as the
    sender's. Raises :class:`~trust.channels.errors.ReplayError` (replayed, or outside the
    window), :class:`~trust.channels.errors.DecryptionError` (changed bytes, wrong key) or
    :class:`~trust.errors.DecodeError` (shorter than a record); after any of them its state is
    exactly as before."""

    __slots__ = ("_aead", "_bitmap", "_current", "_key", "_prev", "_prev_key", "_start")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != 32:
            raise UsageError("a record key is 32 bytes")
        self._key = key
        self._aead = AESGCM(key)
        self._prev: AESGCM | None = None
        self._prev_key: bytes | None = None
        self._start = 0
        """The first nonce of the current key."""
        self._current = 0
        """The highest nonce accepted (0 before any)."""
        self._bitmap = 0
        """Bit ``i``: nonce ``current - i`` was accepted."""

    @property
    def highest_nonce(self) -> int:
        return self._current

    def snapshot(self) -> tuple[bytes, bytes | None, int, int, int]:
        """The whole state, for :meth:`restore`: ``(current key, previous key, first nonce of
        the current key, highest nonce accepted, window bitmap)``. It holds keys: keep it as
        secret as a key (a channel persisted with its consumer's position, for instance)."""
        return self._key, self._prev_key, self._start, self._current, self._bitmap

    @classmethod
    def restore(cls, key: bytes, prev_key: bytes | None, start: int, current: int,
                bitmap: int) -> Decryptor:
        """A decryptor in the state :meth:`snapshot` returned (checked for consistency)."""
        if start % KEY_RENEWAL_INTERVAL or not 0 <= start <= MAX_NONCE or \
                not 0 <= current <= MAX_NONCE + 1 or not 0 <= bitmap <= _MASK64 or \
                (prev_key is None) != (start == 0) or current + 2 * WINDOW < start:
            raise UsageError("not a decryptor state")
        dec = cls(key)
        if prev_key is not None:
            if not isinstance(prev_key, bytes) or len(prev_key) != 32:
                raise UsageError("a record key is 32 bytes")
            dec._prev = AESGCM(prev_key)
            dec._prev_key = prev_key
        dec._start, dec._current, dec._bitmap = start, current, bitmap
        return dec

    def _check(self, n: int) -> tuple[AESGCM, bytes | None]:
        """The AEAD for nonce ``n`` (and the next key when it is a new one); nothing changes."""
        cur = self._current
        if n > cur:
            if n - cur > WINDOW:
                raise ReplayError(f"record {n} is more than {WINDOW} ahead of {cur}")
        elif cur - n > WINDOW:
            raise ReplayError(f"record {n} is more than {WINDOW} behind {cur}")
        elif (self._bitmap >> (cur - n)) & 1:
            raise ReplayError(f"record {n} was already received (replay)")
        start = self._start
        if n >= start:
            age = n - start
            if age < KEY_RENEWAL_INTERVAL:
                return self._aead, None
            if age < 2 * KEY_RENEWAL_INTERVAL:
                key = rekey(self._key)
                return AESGCM(key), key
            raise ReplayError(f"record {n} is too far ahead of the current key")
        if start - n <= KEY_RENEWAL_INTERVAL and self._prev is not None:
            return self._prev, None
        raise ReplayError(f"record {n} is too far behind the current key")

    def _commit(self, n: int, aead: AESGCM, key: bytes | None) -> None:
        if key is not None:
            self._prev = self._aead
            self._prev_key = self._key
            self._aead = aead
            self._key = key
            self._start += KEY_RENEWAL_INTERVAL
        cur = self._current
        if n > cur:
            self._bitmap = ((self._bitmap << (n - cur)) | 1) & _MASK64
            self._current = n
        else:
            self._bitmap |= 1 << (cur - n)

    def decrypt(self, record: bytes | bytearray | memoryview) -> bytes:
        """The plaintext of ``record``."""
        if len(record) < RECORD_OVERHEAD:
            raise DecodeError(f"a record has {RECORD_OVERHEAD} bytes at least, found "
                              f"{len(record)}", field="record")
        n = _unpack(record)[0]
        cur = self._current
        if cur < n <= cur + WINDOW and n - self._start < KEY_RENEWAL_INTERVAL:
            # the common case: a newer record under the current key (a large record is read
            # through a view, not copied)
            small = type(record) is bytes and len(record) < _LARGE
            return _decrypt_newer(self, n, cur, record[8:] if small else memoryview(record)[8:])
        aead, key = self._check(n)
        try:
            pt = aead.decrypt(_ZERO4 + bytes(record[:8]), memoryview(record)[8:], None)
        except InvalidTag:
            raise DecryptionError(f"record {n} does not decrypt (changed bytes, or another "
                                  "key)") from None
        self._commit(n, aead, key)
        return pt

    def decrypt_into(self, record: bytes | bytearray | memoryview, buf: bytearray) -> int:
        """Decrypt ``record`` into ``buf`` (``len(record) - 24`` bytes at least); return the
        plaintext's length. A reused buffer saves an allocation per large record."""
        size = len(record) - RECORD_OVERHEAD
        if size < 0:
            raise DecodeError(f"a record has {RECORD_OVERHEAD} bytes at least, found "
                              f"{len(record)}", field="record")
        if len(buf) < size:
            raise UsageError(f"the buffer holds {len(buf)} bytes; the plaintext needs {size}")
        n = _unpack(record)[0]
        aead, key = self._check(n)
        try:
            aead.decrypt_into(_ZERO4 + bytes(record[:8]), memoryview(record)[8:], None,
                              memoryview(buf)[:size])
        except InvalidTag:
            raise DecryptionError(f"record {n} does not decrypt (changed bytes, or another "
                                  "key)") from None
        self._commit(n, aead, key)
        return size


_LARGE: Final = 16 * 1024
"""Records at least this large are encrypted straight into the record, and decrypted into
their own plaintext, whose payload the session may hand out as a view (no copy)."""
_ROUTES_MAX: Final = 512
"""The longest encoded routes a session remembers."""
_NO_PADDING: Final = b"\x40"
_new_tuple = tuple.__new__


def _decrypt_newer(d: Decryptor, n: int, cur: int, body: bytes | bytearray | memoryview
                   ) -> bytes:
    """:meth:`Decryptor.decrypt` of the common record, for the session's hot path: record
    ``n`` (``body``: what follows its nonce) is newer than ``cur``, within the window and under
    the current key."""
    try:
        pt = d._aead.decrypt(_ZERO4 + _pack(n), body, None)
    except InvalidTag:
        raise DecryptionError(f"record {n} does not decrypt (changed bytes, or another "
                              "key)") from None
    d._bitmap = ((d._bitmap << (n - cur)) | 1) & _MASK64
    d._current = n
    return pt


class RecordSession:
    """Both directions of an open channel, from the keys of a completed handshake: encrypts
    messages for the peer, decrypts the peer's records into messages. A conversation keeps its
    routes: the session remembers the encoded routes of the last Payload each way and skips
    encoding or decoding them again. (The common record is handled inline: this is the hot
    path.)"""

    __slots__ = ("_dec", "_dec_last", "_enc", "_enc_on", "_enc_ret", "_enc_routes",
                 "_enc_size", "decryptor", "encryptor")

    def __init__(self, keys: SplitKeys) -> None:
        if not isinstance(keys, SplitKeys):
            raise UsageError("keys must be the SplitKeys of a completed handshake")
        self.encryptor = Encryptor(keys.encrypt_key)
        self.decryptor = Decryptor(keys.decrypt_key)
        self._enc_on: Route | None = None
        self._enc_ret: Route | None = None
        self._enc = b""
        self._enc_routes = b""
        self._enc_size = -1
        """The last Payload's routes (and their bytes) and size, and its bytes before the
        payload."""
        self._dec: tuple[bytes, Route, Route] | None = None
        """The last Payload received: its routes' bytes and routes."""
        self._dec_last: tuple[bytes, int, Route, Route] | None = None
        """The same with its length head: its bytes before the payload, and its size."""

    def _prefix(self, onward_route: Route, return_route: Route, size: int) -> bytes:
        """The bytes of a Payload's plaintext before its ``size``-byte payload (remembered)."""
        if onward_route is self._enc_on and return_route is self._enc_ret:
            if size != self._enc_size:
                self._enc = self._enc_routes + bstr_head(size)
                self._enc_size = size
            return self._enc
        routes = routes_prefix(onward_route, return_route)
        prefix = routes + bstr_head(size)
        if len(routes) <= _ROUTES_MAX:
            self._enc_on, self._enc_ret, self._enc_routes = onward_route, return_route, routes
            self._enc, self._enc_size = prefix, size
        return prefix

    def encrypt_payload_at(self, onward_route: Route, return_route: Route, buffer: memoryview,
                           start: int, size: int, headroom: int) -> bytearray | None:
        """The record of a Payload whose ``size``-byte payload is ``buffer[start:]`` (a
        writable ``memoryview``), made without copying it: the plaintext's head is written
        into the ``headroom`` bytes before the payload and its last byte over the one after it
        (restored before returning; see :class:`~trust.routing.message.HeadroomMessage`).
        ``None`` (nothing written) when that does not fit, or the payload is small, or no
        nonce is left: use :meth:`encrypt_payload` (which raises then)."""
        end = start + size
        if size < _LARGE or end >= len(buffer):
            return None
        prefix = self._prefix(onward_route, return_route, size)
        begin = start - len(prefix)
        enc = self.encryptor
        n = enc._nonce
        if len(prefix) > headroom or begin < 0 or n > MAX_NONCE:
            return None
        if n & _REKEY_MASK == 0 and n:  # the next key (as Encryptor.encrypt does)
            enc._key = key = rekey(enc._key)
            enc._aead = AESGCM(key)
        record = bytearray(end + 1 - begin + RECORD_OVERHEAD)
        enc._nonce = n + 1
        nb = _pack(n)
        view = memoryview(record)
        view[:8] = nb
        buffer[begin:start] = prefix
        after = buffer[end]
        buffer[end] = 0x40  # (_NO_PADDING)
        try:
            enc._aead.encrypt_into(_ZERO4 + nb, buffer[begin:end + 1], None, view[8:])
        finally:
            buffer[end] = after
        return record

    def encrypt_payload(self, onward_route: Route, return_route: Route,
                        payload: bytes) -> bytes | bytearray:
        """The record of a Payload message (the common case); a large one (16 KiB or more) is
        a new ``bytearray`` (encrypted in place: one copy less)."""
        size = len(payload)
        pt = b"".join((self._prefix(onward_route, return_route, size), payload, _NO_PADDING))
        enc = self.encryptor
        n = enc._nonce
        if size >= _LARGE:  # encrypt straight into the record (one copy of the payload less)
            record = bytearray(len(pt) + RECORD_OVERHEAD)
            if n & _REKEY_MASK == 0 or n > MAX_NONCE:
                enc.encrypt_into(pt, record)  # a new key, or no nonce left: the checking path
                return record
            enc._nonce = n + 1
            nb = _pack(n)
            view = memoryview(record)
            view[:8] = nb
            enc._aead.encrypt_into(_ZERO4 + nb, pt, None, view[8:])
            return record
        if n & _REKEY_MASK == 0 or n > MAX_NONCE:
            return enc.encrypt(pt)  # a new key, or no nonce left: the checking path
        enc._nonce = n + 1
        nb = _pack(n)
        return nb + enc._aead.encrypt(_ZERO4 + nb, pt, None)

    def encrypt(self, message: ChannelMessage) -> bytes:
        """The record of any channel message (Payload, RefreshCredentials, Close)."""
        return self.encryptor.encrypt(message.encode())

    def _decode(self, data: bytes | bytearray, end: int) -> ChannelMessage:
        known = self._dec
        if known is not None and data.startswith(known[0], 0, end):
            fast = payload_at(data, len(known[0]), end, known[1], known[2])
            if fast is not None:
                return fast
        elif end >= 9 and data.startswith(PAYLOAD_PREFIX):
            onward, pos = read_route(data, 5, end, "payload.onward_route")
            ret, pos = read_route(data, pos, end, "payload.return_route")
            fast = payload_at(data, pos, end, onward, ret)
            if fast is not None:
                if pos <= _ROUTES_MAX:
                    self._dec = (bytes(data[:pos]), onward, ret)
                return fast
        return decode_message(data, end)

    def decrypt(self, record: bytes | bytearray | memoryview, *,
                view: bool = False) -> ChannelMessage:
        """The message in ``record``; typed errors (and no change of state) for a replayed,
        forged or malformed record.

        ``view``: the payload of a large Payload (16 KiB or more) may be a read-only
        ``memoryview`` of the new plaintext (its own bytes, never reused) instead of a copy
        (a secure channel's decryptor does this; the node copies it for a consumer that
        takes only ``bytes``)."""
        size = len(record) - RECORD_OVERHEAD
        if size < _LARGE:
            d = self.decryptor
            if size >= 0 and type(record) is bytes:
                n = _unpack(record)[0]
                cur = d._current
                if cur < n <= cur + WINDOW and n - d._start < KEY_RENEWAL_INTERVAL:
                    pt = _decrypt_newer(d, n, cur, record[8:])
                else:
                    pt = d.decrypt(record)
            else:
                pt = d.decrypt(record)
            last = self._dec_last
            if last is not None and len(pt) == last[1] and pt.startswith(last[0]) and \
                    pt[-1] == 0x40:
                # the routes and size of the last Payload (its end checked by the length)
                return _new_tuple(Payload, (last[2], last[3], pt[len(last[0]) : -1]))
            message = self._decode(pt, len(pt))
            self._remember(message)
            return message
        if size > MAX_PLAINTEXT_SIZE:
            raise DecodeError(f"a record of {len(record)} bytes is larger than the "
                              f"{MAX_PLAINTEXT_SIZE}-byte limit", field="record")
        message = self._decrypt_view(record, size)
        if not view and type(message) is Payload and type(message.payload) is memoryview:
            return _new_tuple(Payload, (message.onward_route, message.return_route,
                                        bytes(message.payload)))
        return message

    def _decrypt_view(self, record: bytes | bytearray | memoryview, size: int) -> ChannelMessage:
        """:meth:`decrypt` of a large record, a Payload's payload a view of the plaintext."""
        pt = self.decryptor.decrypt(record)
        last = self._dec_last
        if last is not None and size == last[1] and pt.startswith(last[0]) and \
                pt[size - 1] == 0x40:
            return _new_tuple(Payload, (last[2], last[3],
                                        memoryview(pt)[len(last[0]) : size - 1]))
        message = self._decode(pt, size)
        self._remember(message)
        return message

    def _remember(self, message: ChannelMessage) -> None:
        """After a Payload: its routes and size, to recognise the next one at once."""
        if type(message) is Payload and self._dec is not None:
            prefix = self._dec[0] + bstr_head(len(message.payload))
            self._dec_last = (prefix, len(prefix) + len(message.payload) + 1, *self._dec[1:])
