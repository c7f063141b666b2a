"""Noise XX with X25519, AES-256-GCM and SHA-256, as Ockam runs it (wire spec §3.1-3.3).

* Protocol name ``OCKAM_XX_25519_AES256_GCM_SHA256`` (32 bytes: ``h = ck = name``), then
  ``MixHash(prologue)`` with an empty prologue.
* HKDF = HKDF-SHA256 with the chaining key as salt, empty info, two 32-byte outputs.
* Handshake AEAD nonce ``00000000 || n`` (big-endian u64), AAD = ``h``.
* ``-> e``; ``<- e, ee, s, es``; ``-> s, se``; messages at most 65,535 bytes.
* **Split:** ``k1, k2 = HKDF(ck, "")``; the initiator encrypts with ``k2`` and decrypts with
  ``k1`` (the reverse of the Noise specification; Ockam's choice).

This module is the bare key exchange: payloads are opaque bytes. :mod:`trust.channels.handshake`
builds Ockam's authenticated handshake on it. A name other than Ockam's may be given (the
upstream machinery vectors use ``Noise_XX_25519_AESGCM_SHA256``).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trust.channels.errors import DecryptionError
from trust.channels.keys import DhKey, X25519KeyPair, peer_public_key
from trust.errors import RemoteProtocolError, UsageError

__all__ = [
    "DH_SIZE",
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_NAME",
    "TAG_SIZE",
    "NoiseInitiator",
    "NoiseResponder",
    "SplitKeys",
    "SymmetricState",
]

PROTOCOL_NAME = b"OCKAM_XX_25519_AES256_GCM_SHA256"
MAX_MESSAGE_SIZE = 65535
"""The largest handshake message (``NOISE_MAX_MESSAGE_SIZE``)."""
DH_SIZE = 32
TAG_SIZE = 16

_sha256 = hashlib.sha256
_SHA256 = hashes.SHA256()
_ZERO4 = bytes(4)


def hkdf2(ck: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """Noise's ``HKDF(ck, ikm)`` with two outputs."""
    okm = HKDF(algorithm=_SHA256, length=64, salt=ck, info=b"").derive(ikm)
    return okm[:32], okm[32:]


@dataclass(frozen=True, slots=True)
class SplitKeys:
    """The transport keys of one side: ``encrypt_key`` for what it sends, ``decrypt_key`` for
    what it receives."""

    encrypt_key: bytes = field(repr=False)
    decrypt_key: bytes = field(repr=False)


_INITIAL: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}
"""(ck, h) after InitializeSymmetric and MixHash(prologue), by protocol name and prologue."""


class SymmetricState:
    """Noise's SymmetricState (with its CipherState): ``h``, ``ck``, the key and its nonce."""

    __slots__ = ("_aead", "ck", "h", "n")

    def __init__(self, protocol_name: bytes = PROTOCOL_NAME, prologue: bytes = b"") -> None:
        start = _INITIAL.get((protocol_name, prologue))
        if start is None:
            h = protocol_name.ljust(32, b"\0") if len(protocol_name) <= 32 else \
                _sha256(protocol_name).digest()
            start = (h, _sha256(h + prologue).digest())
            if len(_INITIAL) < 16:
                _INITIAL[(protocol_name, prologue)] = start
        self.ck, self.h = start
        self._aead: AESGCM | None = None
        self.n = 0

    @property
    def has_key(self) -> bool:
        return self._aead is not None

    def mix_hash(self, data: bytes) -> None:
        self.h = _sha256(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, k = hkdf2(self.ck, ikm)
        self._aead = AESGCM(k)
        self.n = 0

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        aead = self._aead
        if aead is None:
            self.mix_hash(plaintext)
            return plaintext
        ct = aead.encrypt(_ZERO4 + self.n.to_bytes(8, "big"), plaintext, self.h)
        self.n += 1
        self.h = _sha256(self.h + ct).digest()
        return ct

    def decrypt_and_hash(self, ciphertext: bytes, what: str) -> bytes:
        aead = self._aead
        if aead is None:
            self.mix_hash(ciphertext)
            return ciphertext
        try:
            pt = aead.decrypt(_ZERO4 + self.n.to_bytes(8, "big"), ciphertext, self.h)
        except InvalidTag:
            raise DecryptionError(f"handshake: the {what} does not decrypt (changed bytes, or "
                                  "not meant for this handshake)") from None
        self.n += 1
        self.h = _sha256(self.h + ciphertext).digest()
        return pt

    def split(self) -> tuple[bytes, bytes]:
        """``(k1, k2)``."""
        return hkdf2(self.ck, b"")

    def wipe(self) -> None:
        self._aead = None
        self.ck = self.h = b""


class _Step(enum.Enum):
    START = "start"
    WAIT_2 = "waiting for message 2"
    WAIT_3 = "waiting for message 3"
    SEND_3 = "message 3 to send"
    DONE = "done"
    FAILED = "failed"


def _check_size(data: bytes, what: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UsageError(f"a handshake message is bytes, not {type(data).__name__}")
    if len(data) > MAX_MESSAGE_SIZE:
        raise RemoteProtocolError(f"handshake {what} of {len(data)} bytes is larger than the "
                                  f"{MAX_MESSAGE_SIZE}-byte limit")
    return bytes(data)


class _Noise:
    __slots__ = ("_e", "_re", "_re_key", "_rs", "_s", "_ss", "_step")

    def __init__(self, static: DhKey, ephemeral: DhKey | None, protocol_name: bytes,
                 prologue: bytes) -> None:
        self._s = static
        self._e = ephemeral
        self._ss = SymmetricState(protocol_name, prologue)
        self._re: bytes | None = None
        self._re_key: X25519PublicKey | None = None
        self._rs: bytes | None = None
        self._step = _Step.START

    @property
    def handshake_hash(self) -> bytes:
        return self._ss.h

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key once it has been decrypted (authenticated by Noise)."""
        return self._rs

    def _fail(self) -> None:
        self._step = _Step.FAILED
        self._ss.wipe()
        self._e = None
        self._re_key = None

    def _expect(self, step: _Step, what: str) -> None:
        if self._step is not step:
            if self._step is _Step.FAILED:
                raise RemoteProtocolError(f"handshake {what}: this handshake has failed")
            if self._step is _Step.DONE:
                raise RemoteProtocolError(f"handshake {what} after the handshake completed "
                                          "(replayed?)")
            raise RemoteProtocolError(f"unexpected handshake {what} ({self._step.value})")


class NoiseInitiator(_Noise):
    """The initiator's side of the bare Noise XX exchange."""

    __slots__ = ()

    def __init__(self, static: DhKey, *, ephemeral: DhKey | None = None,
                 protocol_name: bytes = PROTOCOL_NAME, prologue: bytes = b"") -> None:
        super().__init__(static, ephemeral, protocol_name, prologue)

    def write_message1(self, payload: bytes = b"") -> bytes:
        if self._step is not _Step.START:
            raise UsageError("message 1 was already written")
        if 32 + len(payload) > MAX_MESSAGE_SIZE:
            raise UsageError("the payload does not fit in a handshake message")
        if self._e is None:
            self._e = X25519KeyPair.generate()
        ss = self._ss
        e_pub = self._e.public
        ss.mix_hash(e_pub)
        ss.mix_hash(payload)
        self._step = _Step.WAIT_2
        return e_pub + payload

    def read_message2(self, data: bytes) -> bytes:
        """Process message 2; return its payload (authenticate it before writing message 3)."""
        self._expect(_Step.WAIT_2, "message 2")
        try:
            data = _check_size(data, "message 2")
            if len(data) < 32 + 48 + TAG_SIZE:
                raise RemoteProtocolError(f"handshake message 2 of {len(data)} bytes is too short "
                                          f"({32 + 48 + TAG_SIZE} at least)")
            ss = self._ss
            e = self._e
            assert e is not None
            re_bytes = data[:32]
            re = peer_public_key(re_bytes)
            ss.mix_hash(re_bytes)
            ss.mix_key(e.dh(re))
            rs_bytes = ss.decrypt_and_hash(data[32:80], "static key of message 2")
            rs = peer_public_key(rs_bytes)
            ss.mix_key(e.dh(rs))
            payload = ss.decrypt_and_hash(data[80:], "payload of message 2")
        except BaseException:
            self._fail()
            raise
        self._re = re_bytes
        self._re_key = re
        self._rs = rs_bytes
        self._step = _Step.SEND_3
        return payload

    def write_message3(self, payload: bytes) -> tuple[bytes, SplitKeys]:
        """Message 3 and this side's transport keys (encrypt with k2, decrypt with k1)."""
        if self._step is not _Step.SEND_3:
            raise UsageError(f"message 3 cannot be written now ({self._step.value})")
        if 48 + len(payload) + TAG_SIZE > MAX_MESSAGE_SIZE:
            self._fail()
            raise UsageError("the payload does not fit in a handshake message")
        ss = self._ss
        assert self._re_key is not None
        enc_s = ss.encrypt_and_hash(self._s.public)
        ss.mix_key(self._s.dh(self._re_key))
        enc_p = ss.encrypt_and_hash(payload)
        k1, k2 = ss.split()
        self._step = _Step.DONE
        self._e = None
        return enc_s + enc_p, SplitKeys(encrypt_key=k2, decrypt_key=k1)

    def abort(self) -> None:
        """Give up (e.g. the peer's payload did not authenticate): no keys, nothing more."""
        self._fail()


class NoiseResponder(_Noise):
    """The responder's side of the bare Noise XX exchange."""

    __slots__ = ("keys_of_failed_message3",)

    def __init__(self, static: DhKey, *, ephemeral: DhKey | None = None,
                 protocol_name: bytes = PROTOCOL_NAME, prologue: bytes = b"") -> None:
        super().__init__(static, ephemeral, protocol_name, prologue)
        self.keys_of_failed_message3: SplitKeys | None = None
        """When message 3's static key decrypted (authentic: only the initiator could make it)
        but its payload did not (changed bytes), the transport keys the initiator derived:
        enough to tell it, with a Close record, that its channel does not exist."""

    def read_message1(self, data: bytes) -> bytes:
        """Process message 1; return its (plaintext) payload."""
        self._expect(_Step.START, "message 1")
        try:
            data = _check_size(data, "message 1")
            if len(data) < 32:
                raise RemoteProtocolError(f"handshake message 1 of {len(data)} bytes is too short "
                                          "(32 at least)")
            re_bytes = data[:32]
            self._re_key = peer_public_key(re_bytes)
            ss = self._ss
            ss.mix_hash(re_bytes)
            payload = data[32:]
            ss.mix_hash(payload)
        except BaseException:
            self._fail()
            raise
        self._re = re_bytes
        self._step = _Step.WAIT_3
        return payload

    def write_message2(self, payload: bytes) -> bytes:
        if self._step is not _Step.WAIT_3 or self._ss.has_key:
            raise UsageError(f"message 2 cannot be written now ({self._step.value})")
        if 32 + 48 + len(payload) + TAG_SIZE > MAX_MESSAGE_SIZE:
            self._fail()
            raise UsageError("the payload does not fit in a handshake message")
        if self._e is None:
            self._e = X25519KeyPair.generate()
        ss = self._ss
        e = self._e
        re = self._re_key
        assert re is not None
        try:
            ss.mix_hash(e.public)
            ss.mix_key(e.dh(re))
            enc_s = ss.encrypt_and_hash(self._s.public)
            ss.mix_key(self._s.dh(re))
            enc_p = ss.encrypt_and_hash(payload)
        except BaseException:
            self._fail()
            raise
        return e.public + enc_s + enc_p

    def read_message3(self, data: bytes) -> tuple[bytes, SplitKeys]:
        """Process message 3; return its payload and this side's transport keys (encrypt with
        k1, decrypt with k2). Authenticate the payload before using the keys."""
        self._expect(_Step.WAIT_3, "message 3")
        if not self._ss.has_key:
            raise UsageError("message 2 was not written yet")
        try:
            data = _check_size(data, "message 3")
            if len(data) < 48 + TAG_SIZE:
                raise RemoteProtocolError(f"handshake message 3 of {len(data)} bytes is too short "
                                          f"({48 + TAG_SIZE} at least)")
            ss = self._ss
            e = self._e
            assert e is not None
            rs_bytes = ss.decrypt_and_hash(data[:48], "static key of message 3")
            ss.mix_key(e.dh(peer_public_key(rs_bytes)))
            try:
                payload = ss.decrypt_and_hash(data[48:], "payload of message 3")
            except DecryptionError:  # (the split does not depend on the payload)
                k1, k2 = ss.split()
                self.keys_of_failed_message3 = SplitKeys(encrypt_key=k1, decrypt_key=k2)
                raise
            k1, k2 = ss.split()
        except BaseException:
            self._fail()
            raise
        self._rs = rs_bytes
        self._step = _Step.DONE
        self._e = None
        return payload, SplitKeys(encrypt_key=k1, decrypt_key=k2)

    def abort(self) -> None:
        self._fail()
