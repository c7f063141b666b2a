"""Credential schemas and typed attribute values.

Values stay bytes on the wire; a schema says how to read them. The encodings (``docs/credentials.md``):

========  ==================================================================================
string    UTF-8 text
int       canonical decimal ASCII, ``-?(0|[1-9][0-9]*)``, a signed 64-bit integer
float     Python ``repr`` of a finite float (``1.5``, ``3.0``, ``1e+300``)
bool      ``true`` or ``false``
list      the CBOR array (definite length) of its UTF-8 text strings
========  ==================================================================================

Issuers validate what they sign (:meth:`Schema.encode_attributes`, a :class:`UsageError` names
the attribute); verifiers read typed values (:meth:`Schema.read`, a :class:`VerificationError`
names it). With no schema every value is a string.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trust.errors import DecodeError, UsageError, VerificationError
from trust.models.cbor import Reader, enc_array, enc_text

U64_MAX = (1 << 64) - 1
_I64 = (-(1 << 63), (1 << 63) - 1)
_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
_INT_INPUT_RE = re.compile(r"[+-]?[0-9]{1,40}", re.ASCII)
_FLOAT_INPUT_RE = re.compile(r"[+-]?([0-9]{1,400}(\.[0-9]{0,400})?|\.[0-9]{1,400})([eE][+-]?[0-9]{1,5})?",
                             re.ASCII)
_SCHEMA_ID_RE = re.compile(r"[0-9]{1,20}", re.ASCII)
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", re.ASCII)
MAX_LIST_TEXT = 1 << 20
MAX_SCHEMA_ATTRIBUTES = 1024
MAX_DESCRIPTION = 4096

TypedValue = str | int | float | bool | list[str]


class AttributeType(enum.StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    LIST = "list"

    @classmethod
    def parse(cls, text: str) -> AttributeType:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise UsageError(f"unknown attribute type {text!r} (use string, int, float, bool or "
                             "list)") from None


def _short(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:40] + "..." if len(text) > 40 else text)


def check_schema_id(value: int | str) -> int:
    """A schema identifier: an unsigned 64-bit integer (ASCII digits when given as text)."""
    if isinstance(value, bool):
        raise UsageError(f"a schema identifier is an unsigned integer, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and _SCHEMA_ID_RE.fullmatch(value.strip()):
        n = int(value.strip())
    else:
        raise UsageError(f"a schema identifier is an unsigned integer, got {_short(value)}")
    if not 0 <= n <= U64_MAX:
        raise UsageError(f"a schema identifier is an unsigned 64-bit integer, got {_short(value)}")
    return n


def check_attribute_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise UsageError(f"invalid attribute name {_short(name)} (up to 128 ASCII letters, digits, "
                         "'_', '.', '-')")
    return name


def text_of(raw: bytes) -> str:
    """Bytes shown as text: UTF-8, or ``hex:`` and the hex digits when they are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + raw.hex()


# ---------------------------------------------------------------------------------------------
# value codecs


def encode_value(kind: AttributeType, value: Any, name: str = "value") -> bytes:
    """The wire bytes of ``value`` (a Python value, or the text a user typed) as ``kind``."""
    try:
        return _encode(kind, value)
    except (ValueError, TypeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise UsageError(f"attribute {name!r} must be {_article(kind)}: {reason}") from None


def _article(kind: AttributeType) -> str:
    return {"int": "an int", "float": "a float", "bool": "a bool", "list": "a list of strings",
            "string": "a string"}[kind.value]


def _encode(kind: AttributeType, value: Any) -> bytes:
    if kind is AttributeType.STRING:
        if not isinstance(value, str):
            raise TypeError(f"got {type(value).__name__}")
        return value.encode("utf-8")
    if kind is AttributeType.BOOL:
        if isinstance(value, bool):
            return b"true" if value else b"false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower().encode()
        raise ValueError(f"{value!r} is not true or false")
    if kind is AttributeType.INT:
        if isinstance(value, bool):
            raise TypeError("got a bool")
        if isinstance(value, int):
            n = value
        else:
            text = str(value).strip()
            if not _INT_INPUT_RE.fullmatch(text):
                raise ValueError(f"{_short(text)} is not a decimal integer (ASCII digits)")
            n = int(text, 10)
        if not _I64[0] <= n <= _I64[1]:
            raise ValueError(f"{_short(str(n))} does not fit in 64 bits")
        return str(n).encode()
    if kind is AttributeType.FLOAT:
        if isinstance(value, bool):
            raise TypeError("got a bool")
        if isinstance(value, str):
            if not _FLOAT_INPUT_RE.fullmatch(value.strip()):
                raise ValueError(f"{_short(value)} is not a decimal number (ASCII digits)")
            x = float(value.strip())
        elif isinstance(value, (int, float)):
            x = float(value)
        else:
            raise TypeError(f"got {type(value).__name__}")
        if not math.isfinite(x):
            raise ValueError(f"{_short(value)} is not a finite number")
        return repr(x).encode()
    items: list[str]
    if isinstance(value, str):
        t = value.strip()
        if t.startswith("["):
            if len(t) > MAX_LIST_TEXT:
                raise ValueError("the list is too long")
            parsed = json.loads(t)
            if not isinstance(parsed, list) or not all(isinstance(i, str) for i in parsed):
                raise ValueError("a JSON list must hold only strings")
            items = parsed
        else:
            items = [] if not t else [i.strip() for i in t.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(i, str) for i in value):
        items = list(value)
    else:
        raise TypeError(f"got {type(value).__name__}")
    return enc_array([enc_text(i) for i in items])


def decode_value(kind: AttributeType, raw: bytes) -> TypedValue:
    """The typed value of ``raw``; ``ValueError`` if it is not the canonical encoding."""
    if kind is AttributeType.STRING:
        return raw.decode("utf-8")
    if kind is AttributeType.BOOL:
        if raw == b"true":
            return True
        if raw == b"false":
            return False
        raise ValueError("not 'true' or 'false'")
    if kind is AttributeType.INT:
        t = raw.decode("ascii")
        if not _INT_RE.fullmatch(t):
            raise ValueError("not a canonical decimal integer")
        n = int(t)
        if not _I64[0] <= n <= _I64[1]:
            raise ValueError("does not fit in 64 bits")
        return n
    if kind is AttributeType.FLOAT:
        t = raw.decode("ascii")
        x = float(t)
        if not math.isfinite(x) or repr(x) != t:
            raise ValueError("not a canonical finite float")
        return x
    r = Reader(raw)
    try:
        n = r.array("list")
        if n > len(raw):
            raise ValueError("array longer than the data")
        items = [r.text("list.item") for _ in range(n)]
        r.end("list")
    except DecodeError as e:
        raise ValueError(str(e)) from None
    return items


# ---------------------------------------------------------------------------------------------
# schemas


@dataclass(frozen=True)
class Schema:
    """A numbered schema: attribute names and their types. Attributes a schema does not name
    are refused by issuers and read as strings by verifiers."""

    id: int
    attributes: tuple[tuple[str, AttributeType], ...]
    description: str = ""

    @classmethod
    def create(cls, schema_id: int | str, attributes: Mapping[str, str | AttributeType] | list[str],
               description: str = "") -> Schema:
        """From ``{"name": "type"}`` or ``["name:type", ...]`` (what the CLI takes)."""
        sid = check_schema_id(schema_id)
        pairs: list[tuple[str, AttributeType]] = []
        if isinstance(attributes, Mapping):
            pairs = [(check_attribute_name(k), AttributeType.parse(str(v)))
                     for k, v in attributes.items()]
        else:
            for spec in attributes:
                name, sep, kind = spec.rpartition(":")
                if not sep:
                    raise UsageError(f"an attribute is NAME:TYPE, got {spec!r}")
                pairs.append((check_attribute_name(name.strip(" ")), AttributeType.parse(kind)))
        names = [n for n, _ in pairs]
        if len(set(names)) != len(names):
            raise UsageError("an attribute is named twice in the schema")
        if not pairs:
            raise UsageError("a schema names at least one attribute")
        if len(pairs) > MAX_SCHEMA_ATTRIBUTES:
            raise UsageError(f"a schema names at most {MAX_SCHEMA_ATTRIBUTES} attributes")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise UsageError(f"a schema description is text of at most {MAX_DESCRIPTION} "
                             "characters")
        return cls(sid, tuple(pairs), description)

    @property
    def types(self) -> dict[str, AttributeType]:
        return dict(self.attributes)

    def type_of(self, name: str) -> AttributeType | None:
        for n, t in self.attributes:
            if n == name:
                return t
        return None

    def encode_attributes(self, values: Mapping[str, Any]) -> dict[str, bytes]:
        """Check (and canonically encode) what an issuer is about to sign."""
        out: dict[str, bytes] = {}
        for name, value in values.items():
            kind = self.type_of(name)
            if kind is None:
                raise UsageError(f"attribute {name!r} is not in schema {self.id} (it has: "
                                 f"{', '.join(n for n, _ in self.attributes)})")
            if isinstance(value, bytes):
                try:
                    decode_value(kind, value)
                except (ValueError, UnicodeDecodeError) as e:
                    raise UsageError(f"attribute {name!r} must be {_article(kind)}: {e}") from None
                out[name] = value
            else:
                out[name] = encode_value(kind, value, name)
        return out

    def read(self, name: bytes, raw: bytes) -> TypedValue:
        """The typed value of one signed attribute (a verifier's view)."""
        key = text_of(name)
        kind = self.type_of(key)
        if kind is None:
            return text_of(raw)
        try:
            return decode_value(kind, raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise VerificationError(f"attribute {key!r} is not {_article(kind)} as schema "
                                    f"{self.id} requires ({e})") from None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "attributes": {n: t.value for n, t in self.attributes},
                "description": self.description}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schema:
        return cls.create(data["id"], data["attributes"], data.get("description", ""))


def typed_attributes(attributes: Mapping[bytes, bytes], schema: Schema | None) -> dict[str, Any]:
    """Attributes as ``{name: typed value}``: through ``schema``, or all strings without one."""
    if schema is None:
        return {text_of(k): text_of(v) for k, v in attributes.items()}
    return {text_of(k): schema.read(k, v) for k, v in attributes.items()}


def prepare_attributes(values: Mapping[str, Any], schema: Schema | None) -> dict[bytes, bytes]:
    """What an issuer signs: through ``schema`` (refusing what does not match), or each value as
    UTF-8 text (bytes kept as they are) without one."""
    if schema is not None:
        return {k.encode(): v for k, v in schema.encode_attributes(values).items()}
    out: dict[bytes, bytes] = {}
    for k, v in values.items():
        if not isinstance(k, str):
            raise UsageError(f"an attribute name is a string, got {type(k).__name__}")
        try:
            name = k.encode("utf-8")
            if isinstance(v, bytes):
                out[name] = v
            elif isinstance(v, str):
                out[name] = v.encode("utf-8")
            else:
                raise UsageError(f"attribute {_short(k)}: without a schema, values are strings")
        except UnicodeEncodeError:
            raise UsageError(f"attribute {_short(k)} is not valid UTF-8 text") from None
    return out
