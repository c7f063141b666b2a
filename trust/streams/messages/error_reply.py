"""``ErrorReply`` = ``[code: uint, message: text]``: the body of a response whose status is not 0.
Codes: 1 malformed request, 2 not found, 3 conflict, 4 busy (too many requests in flight),
5 backend unavailable, 6 denied, 7 internal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from trust.models.cbor import Reader, enc_array, enc_text, enc_uint

__all__ = ["CODES", "MAX_ERROR_TEXT", "ErrorReply"]

CODES: Final = {1: "malformed", 2: "not_found", 3: "conflict", 4: "busy", 5: "unavailable",
                6: "denied", 7: "internal"}
MAX_ERROR_TEXT: Final = 512


@dataclass(frozen=True, slots=True)
class ErrorReply:
    code: int
    message: str

    def encode(self) -> bytes:
        return enc_array([enc_uint(self.code), enc_text(self.message[:MAX_ERROR_TEXT])])

    @classmethod
    def read(cls, r: Reader) -> ErrorReply:
        r.array("error", 2)
        code = r.uint("code", max_value=255)
        return cls(code, r.text("message")[:MAX_ERROR_TEXT])

    @property
    def kind(self) -> str:
        return CODES.get(self.code, "unknown")
