"""``OneTimeCode``: ``{1: bytes[32]}`` (Ockam's ``authenticator/one_time_code.rs``), sent to
``enrollment_token_acceptor`` and returned by ``enrollment_token_issuer``.

The issuer's reply also carries, from us, ``2: reference`` (the ticket's loggable name) and
``3: expires_at`` (Ockam's decoder skips keys it does not know). The code is a secret: its
``repr`` never shows it (as Ockam's ``Debug`` prints ``{ONE_TIME_CODE}``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Final

from trust.enrollment.messages.common import U64_MAX, encode_struct, read_struct
from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_bytes, enc_text, enc_uint

__all__ = ["CODE_SIZE", "MAX_REFERENCE", "OneTimeCode", "check_reference"]

CODE_SIZE: Final = 32
MAX_REFERENCE: Final = 64
_REFERENCE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


def check_reference(value: object, field_name: str = "reference") -> str:
    """A ticket reference: 1-64 ASCII letters, digits, ``_``, ``-``."""
    if not isinstance(value, str) or not _REFERENCE.fullmatch(value):
        raise DecodeError("a ticket reference is 1-64 ASCII letters, digits, '_' or '-'",
                          field=field_name)
    return value


def _read_code(r: Reader, f: str) -> bytes:
    return r.bytes(f, CODE_SIZE)


def _read_reference(r: Reader, f: str) -> str:
    at = r.pos
    text = r.text(f)
    try:
        return check_reference(text, f)
    except DecodeError as e:
        raise DecodeError(e.message, field=f, offset=at) from None


def _read_u64(r: Reader, f: str) -> int:
    return r.uint(f, max_value=U64_MAX)


@dataclass(frozen=True, slots=True)
class OneTimeCode:
    code: bytes = field(repr=False)
    reference: str | None = None
    expires_at: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, bytes) or len(self.code) != CODE_SIZE:
            raise DecodeError(f"a one-time code is {CODE_SIZE} bytes", field="one_time_code")
        if self.reference is not None:
            check_reference(self.reference)

    @classmethod
    def random(cls) -> OneTimeCode:
        return cls(secrets.token_bytes(CODE_SIZE))

    @classmethod
    def from_hex(cls, text: str) -> OneTimeCode:
        """From 64 hex digits (Ockam's text form)."""
        t = text.strip() if isinstance(text, str) else ""
        if len(t) != 2 * CODE_SIZE:
            raise DecodeError(f"a one-time code is {2 * CODE_SIZE} hex digits",
                              field="one_time_code")
        try:
            return cls(bytes.fromhex(t))
        except ValueError:
            raise DecodeError("a one-time code is hex digits", field="one_time_code") from None

    def hex(self) -> str:
        return self.code.hex()

    def __str__(self) -> str:
        return "{ONE_TIME_CODE}"

    def encode(self) -> bytes:
        return encode_struct([
            (1, enc_bytes(self.code)),
            (2, None if self.reference is None else enc_text(self.reference)),
            (3, None if self.expires_at is None else enc_uint(self.expires_at)),
        ])

    @classmethod
    def read(cls, r: Reader, f: str = "one_time_code") -> OneTimeCode:
        v = read_struct(r, f, {1: _read_code, 2: _read_reference, 3: _read_u64}, required={1})
        return cls(v[1], v.get(2), v.get(3))

    @classmethod
    def decode(cls, data: bytes) -> OneTimeCode:
        check_size(bytes(data), "one_time_code", 1024)
        r = Reader(bytes(data))
        out = cls.read(r)
        r.end("one_time_code")
        return out
