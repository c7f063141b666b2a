"""``CreateToken`` (``enrollment_token_issuer`` ``POST /tokens``): ``{1: {text: text}
attributes, 2: ttl_secs u64?, 3: ttl_count u64?}`` (Ockam's ``direct/types.rs``; absent
options are left out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trust.enrollment.messages.common import (
    MAX_MESSAGE_SIZE,
    U64_MAX,
    check_text_attributes,
    enc_text_map,
    encode_struct,
    read_struct,
    read_text_map,
)
from trust.models.cbor import Reader, check_size, enc_uint

__all__ = ["CreateToken"]


def _u64(r: Reader, f: str) -> int:
    return r.uint(f, max_value=U64_MAX)


@dataclass(frozen=True, slots=True)
class CreateToken:
    attributes: Mapping[str, str] = field(default_factory=dict)
    ttl_secs: int | None = None
    ttl_count: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes",
                           check_text_attributes(self.attributes, "create_token.attributes"))
        for name in ("ttl_secs", "ttl_count"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)
                                  or not 0 <= v <= U64_MAX):
                raise ValueError(f"{name} must be an unsigned 64-bit integer")

    def encode(self) -> bytes:
        return encode_struct([
            (1, enc_text_map(self.attributes)),
            (2, None if self.ttl_secs is None else enc_uint(self.ttl_secs)),
            (3, None if self.ttl_count is None else enc_uint(self.ttl_count)),
        ])

    @classmethod
    def read(cls, r: Reader, f: str = "create_token") -> CreateToken:
        v = read_struct(r, f, {1: read_text_map, 2: _u64, 3: _u64}, required={1})
        return cls(v[1], v.get(2), v.get(3))

    @classmethod
    def decode(cls, data: bytes) -> CreateToken:
        check_size(bytes(data), "create_token", MAX_MESSAGE_SIZE)
        r = Reader(bytes(data))
        out = cls.read(r)
        r.end("create_token")
        return out
