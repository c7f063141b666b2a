"""Pieces shared by the authority's wire types: strict reading of minicbor ``#[cbor(map)]``
structs (integer keys in increasing order, absent optional fields omitted), attribute maps,
identifiers (a transparent 32-byte byte string, as Ockam's ``Identifier``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_bytes, enc_text, enc_uint, head
from trust.models.primitives import identifier_from_text, identifier_text

__all__ = [
    "IDENTIFIER_SIZE",
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_NAME",
    "MAX_ATTRIBUTE_VALUE",
    "MAX_MESSAGE_SIZE",
    "U64_MAX",
    "check_identifier",
    "check_text_attributes",
    "enc_identifier",
    "enc_text_map",
    "encode_struct",
    "read_identifier",
    "read_struct",
    "read_text_map",
]

U64_MAX: Final = (1 << 64) - 1
IDENTIFIER_SIZE: Final = 32
MAX_ATTRIBUTES: Final = 64
"""Attributes one member, ticket or request may carry."""
MAX_ATTRIBUTE_NAME: Final = 128
MAX_ATTRIBUTE_VALUE: Final = 1024
"""Bytes of an attribute value (UTF-8)."""
MAX_MESSAGE_SIZE: Final = 4 << 20
"""A request or response is at most 4 MiB (a member list of thousands fits)."""

_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", re.ASCII)
_ID_TEXT: Final = re.compile(r"I[0-9a-f]{64}", re.ASCII)


def enc_identifier(identifier: str) -> bytes:
    return enc_bytes(identifier_from_text(identifier))


def read_identifier(r: Reader, field: str) -> str:
    return identifier_text(r.bytes(field, IDENTIFIER_SIZE))


def check_identifier(value: object, field: str = "identifier") -> str:
    """``I`` + 64 lowercase hex digits (surrounding spaces and upper case are normalised)."""
    if isinstance(value, str):
        t = value.strip()
        if len(t) == 65 and t[0] == "I":
            t = "I" + t[1:].lower()
            if _ID_TEXT.fullmatch(t):
                return t
    raise DecodeError("an identifier is 'I' followed by 64 hex digits", field=field)


def check_text_attributes(attributes: Mapping[str, str], field: str = "attributes"
                          ) -> dict[str, str]:
    """Attribute names are 1-128 ASCII letters, digits, ``_ . -`` (not starting with ``.`` or
    ``-``); values are text of at most 1 KiB; at most 64 of them. Returns a sorted copy."""
    if not isinstance(attributes, Mapping):
        raise DecodeError("expected a map of text to text", field=field)
    if len(attributes) > MAX_ATTRIBUTES:
        raise DecodeError(f"{len(attributes)} attributes is more than the {MAX_ATTRIBUTES} "
                          "allowed", field=field)
    out: dict[str, str] = {}
    for k, v in attributes.items():
        if not isinstance(k, str) or not _NAME.fullmatch(k):
            raise DecodeError("an attribute name is 1-128 ASCII letters, digits, '_', '.', '-'",
                              field=field)
        if not isinstance(v, str) or len(v.encode("utf-8", "surrogatepass")) > MAX_ATTRIBUTE_VALUE:
            raise DecodeError(f"the value of attribute {k!r} must be text of at most "
                              f"{MAX_ATTRIBUTE_VALUE} bytes", field=field)
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise DecodeError(f"the value of attribute {k!r} is not valid text",
                              field=field) from None
        out[k] = v
    return dict(sorted(out.items()))


def enc_text_map(attributes: Mapping[str, str]) -> bytes:
    """A ``BTreeMap<String, String>``: keys in byte order."""
    items = sorted(attributes.items(), key=lambda kv: kv[0].encode())
    return head(5, len(items)) + b"".join(enc_text(k) + enc_text(v) for k, v in items)


def read_text_map(r: Reader, field: str) -> dict[str, str]:
    """A text→text map in key order, checked with :func:`check_text_attributes`."""
    start = r.pos
    n = r.map(field)
    if n > MAX_ATTRIBUTES:
        raise DecodeError(f"{n} attributes is more than the {MAX_ATTRIBUTES} allowed",
                          field=field, offset=start)
    out: dict[str, str] = {}
    last: bytes | None = None
    for _ in range(n):
        at = r.pos
        k = r.text(f"{field}.name")
        kb = k.encode()
        if last is not None and kb <= last:
            raise DecodeError("attribute names must be in increasing order, each once",
                              field=field, offset=at)
        last = kb
        out[k] = r.text(f"{field}[{k!r}]" if len(k) <= MAX_ATTRIBUTE_NAME else f"{field}.value")
    try:
        return check_text_attributes(out, field)
    except DecodeError as e:
        raise DecodeError(e.message, field=field, offset=start) from None


# -- minicbor #[cbor(map)] structs ---------------------------------------------------------------

FieldReader = Callable[[Reader, str], Any]


def encode_struct(fields: list[tuple[int, bytes | None]]) -> bytes:
    """A minicbor map struct: ``(index, encoded value)`` in index order; ``None`` values (absent
    options) are left out, as minicbor does."""
    present = [(k, v) for k, v in fields if v is not None]
    return head(5, len(present)) + b"".join(enc_uint(k) + v for k, v in present)


def read_struct(r: Reader, field: str, readers: Mapping[int, FieldReader],
                required: frozenset[int] | set[int] = frozenset()) -> dict[int, Any]:
    """Read a map struct: keys are unsigned integers in increasing order, each one of
    ``readers`` (key → ``reader(r, field_name)``); every key of ``required`` must be there."""
    start = r.pos
    n = r.map(field)
    if n > len(readers):
        raise DecodeError(f"expected at most {len(readers)} fields, found {n}", field=field,
                          offset=start)
    out: dict[int, Any] = {}
    last = -1
    data = r.data
    for _ in range(n):
        at = r.pos
        b = data[at] if at < len(data) else 0xFF
        if b < 24:  # a small key (every key we use): its one-byte head, read directly
            key = b
            r.pos = at + 1
        else:
            key = r.uint(_key_name(field))
        if key <= last:
            raise DecodeError("field keys must be in increasing order, each once", field=field,
                              offset=at)
        last = key
        reader = readers.get(key)
        if reader is None:
            raise DecodeError(f"unknown field {key}", field=field, offset=at)
        out[key] = reader(r, _field_name(field, key))
    if len(out) < len(required) or not required <= out.keys():
        missing = sorted(set(required) - set(out))
        raise DecodeError(f"missing field {missing[0]}", field=field, offset=start)
    return out


@functools.lru_cache(maxsize=1024)
def _field_name(field: str, key: int) -> str:
    return f"{field}.{key}"


@functools.lru_cache(maxsize=256)
def _key_name(field: str) -> str:
    return f"{field}.key"
