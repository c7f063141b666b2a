"""A small, strict CBOR codec for the subset Ockam's minicbor structures use.

Encoding produces exactly the bytes minicbor produces (shortest heads, definite lengths, maps in
the order given). Decoding accepts exactly that: definite lengths, shortest integer heads, no
indefinite items, no tags, no floats, no trailing bytes. Every failure is a :class:`DecodeError`
naming the field being read, saying what is wrong in words, with the byte offset where it is
(``offset``: from the start of the reader's data; decoders of nested objects :func:`relocate`
an inner error to the outer input).

:class:`Reader` is a cursor for hand-written, field-by-field decoders (fast, precise errors);
:func:`loads` decodes one generic item (ints, bytes, text, bool, null, arrays, maps).
"""

from __future__ import annotations

import builtins
from typing import Any

from trust.errors import DecodeError

MAX_OBJECT_SIZE = 1 << 20
"""Identity and credential objects larger than this are refused (1 MiB)."""

_MAX_DEPTH = 64

# ---------------------------------------------------------------------------------------------
# encoding


def head(major: int, n: int) -> bytes:
    """The shortest head of major type ``major`` with argument ``n``."""
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    if n < 0x10000000000000000:
        return bytes((mt | 27,)) + n.to_bytes(8, "big")
    raise ValueError("integer too large for CBOR")


def enc_uint(n: int) -> bytes:
    if n < 0:
        raise ValueError("negative integer where an unsigned one is required")
    return head(0, n)


def enc_int(n: int) -> bytes:
    return head(0, n) if n >= 0 else head(1, -1 - n)


def enc_bytes(b: bytes) -> bytes:
    return head(2, len(b)) + b


def enc_text(s: str) -> bytes:
    raw = s.encode("utf-8")
    return head(3, len(raw)) + raw


def enc_array(items: list[bytes] | tuple[bytes, ...]) -> bytes:
    """An array of already-encoded items."""
    return head(4, len(items)) + b"".join(items)


def enc_map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A map of already-encoded (key, value) pairs, in the order given."""
    return head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


def enc_bool(v: bool) -> bytes:
    return b"\xf5" if v else b"\xf4"


NULL = b"\xf6"


def dumps(value: Any) -> bytes:
    """Encode a generic value (int, bytes, str, bool, None, list/tuple, dict in insertion order)."""
    if value is None:
        return NULL
    if value is True or value is False:
        return enc_bool(value)
    if isinstance(value, int):
        return enc_int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return enc_bytes(bytes(value))
    if isinstance(value, str):
        return enc_text(value)
    if isinstance(value, (list, tuple)):
        return enc_array([dumps(v) for v in value])
    if isinstance(value, dict):
        return enc_map([(dumps(k), dumps(v)) for k, v in value.items()])
    raise TypeError(f"cannot CBOR-encode {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# decoding

_MAJOR_NAMES = ("unsigned integer", "negative integer", "byte string", "text string", "array",
                "map", "tag", "simple value")


class Reader:
    """A strict cursor over one CBOR item (or a sequence read field by field).

    Every method takes the name of the field being read, used in the error message.
    """

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    # -- heads ---------------------------------------------------------------------------------
    def _head(self, field: str) -> tuple[int, int]:
        data = self.data
        pos = self.pos
        if pos >= len(data):
            raise DecodeError("the data ends where this item should start (truncated)",
                              field=field, offset=pos)
        ib = data[pos]
        major = ib >> 5
        info = ib & 0x1F
        if info < 24:
            self.pos = pos + 1
            return major, info
        if info == 24:
            if pos + 2 > len(data):
                raise DecodeError("the data ends inside this item's head (truncated)",
                                  field=field, offset=pos)
            n = data[pos + 1]
            if n < 24:
                raise DecodeError("a length or integer is not in its shortest form (not the "
                                  "canonical encoding)", field=field, offset=pos)
            self.pos = pos + 2
            return major, n
        if info == 25:
            end, minimum = pos + 3, 0x100
        elif info == 26:
            end, minimum = pos + 5, 0x10000
        elif info == 27:
            end, minimum = pos + 9, 0x100000000
        elif info == 31:
            raise DecodeError(f"byte 0x{ib:02x} starts an indefinite-length item, which is not "
                              "allowed (malformed or not our encoding)", field=field, offset=pos)
        else:
            raise DecodeError(f"byte 0x{ib:02x} does not start any valid CBOR item (malformed "
                              "data)", field=field, offset=pos)
        if end > len(data):
            raise DecodeError("the data ends inside this item's head (truncated)",
                              field=field, offset=pos)
        n = int.from_bytes(data[pos + 1 : end], "big")
        if n < minimum:
            raise DecodeError("a length or integer is not in its shortest form (not the "
                              "canonical encoding)", field=field, offset=pos)
        self.pos = end
        return major, n

    def _expect(self, field: str, want: int) -> int:
        start = self.pos
        major, n = self._head(field)
        if major != want:
            self.pos = start
            if major == 7:
                raise DecodeError(f"expected {_MAJOR_NAMES[want]}, found {_simple_name(n)}",
                                  field=field, offset=start)
            raise DecodeError(f"expected {_MAJOR_NAMES[want]}, found {_MAJOR_NAMES[major]}",
                              field=field, offset=start)
        return n

    # -- typed reads ---------------------------------------------------------------------------
    def array(self, field: str, length: int | None = None, *,
              min_len: int | None = None, max_len: int | None = None) -> int:
        start = self.pos
        n = self._expect(field, 4)
        if length is not None and n != length:
            raise DecodeError(f"expected an array of {length} elements, found {n}", field=field,
                              offset=start)
        if min_len is not None and n < min_len:
            raise DecodeError(f"expected at least {min_len} elements, found {n}", field=field,
                              offset=start)
        if max_len is not None and n > max_len:
            raise DecodeError(f"expected at most {max_len} elements, found {n}", field=field,
                              offset=start)
        return n

    def map(self, field: str) -> int:
        return self._expect(field, 5)

    def uint(self, field: str, *, max_value: int | None = None) -> int:
        item = self.pos
        n = self._expect(field, 0)
        if max_value is not None and n > max_value:
            raise DecodeError(f"value {n} is larger than {max_value}", field=field, offset=item)
        return n

    def bytes(self, field: str, size: int | None = None) -> bytes:
        item = self.pos
        n = self._expect(field, 2)
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise DecodeError(f"a byte string of {n} bytes runs past the end of the data "
                              f"({len(self.data) - start} bytes left: truncated)", field=field,
                              offset=item)
        if size is not None and n != size:
            raise DecodeError(f"expected {size} bytes, found {n}", field=field, offset=item)
        self.pos = end
        return bytes(self.data[start:end])

    def text(self, field: str) -> str:
        item = self.pos
        n = self._expect(field, 3)
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise DecodeError(f"a text string of {n} bytes runs past the end of the data "
                              f"({len(self.data) - start} bytes left: truncated)", field=field,
                              offset=item)
        self.pos = end
        try:
            return bytes(self.data[start:end]).decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError("text string is not valid UTF-8", field=field,
                              offset=start + e.start) from None

    def bool(self, field: str) -> bool:
        pos = self.pos
        if pos >= len(self.data):
            raise DecodeError("the data ends where this item should start (truncated)",
                              field=field, offset=pos)
        b = self.data[pos]
        if b == 0xF4:
            self.pos = pos + 1
            return False
        if b == 0xF5:
            self.pos = pos + 1
            return True
        raise DecodeError(f"expected a boolean, found {self._describe()}", field=field, offset=pos)

    def peek_null(self) -> builtins.bool:
        """True (and consume it) when the next item is ``null``."""
        if self.pos < len(self.data) and self.data[self.pos] == 0xF6:
            self.pos += 1
            return True
        return False

    def at_end(self) -> builtins.bool:
        return self.pos >= len(self.data)

    def end(self, field: str) -> None:
        """Require that nothing follows."""
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} trailing bytes after the end of the "
                              "item", field=field, offset=self.pos)

    def raw_item(self, field: str) -> builtins.bytes:
        """Skip one well-formed item and return its bytes."""
        start = self.pos
        self.skip(field)
        return bytes(self.data[start : self.pos])

    def skip(self, field: str, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            raise DecodeError("nesting too deep", field=field)
        major, n = self._head(field)
        if major in (2, 3):
            if self.pos + n > len(self.data):
                raise DecodeError("string runs past the end of the data", field=field)
            self.pos += n
        elif major == 4:
            for _ in range(n):
                self.skip(field, depth + 1)
        elif major == 5:
            for _ in range(2 * n):
                self.skip(field, depth + 1)
        elif major == 6:
            raise DecodeError("tags are not allowed", field=field)
        elif major == 7 and n not in (20, 21, 22):
            raise DecodeError(f"{_simple_name(n)} is not allowed", field=field)

    def value(self, field: str, depth: int = 0) -> Any:
        """Decode one generic item."""
        if depth > _MAX_DEPTH:
            raise DecodeError("nesting too deep", field=field)
        major, n = self._head(field)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major in (2, 3):
            start = self.pos
            end = start + n
            if end > len(self.data):
                raise DecodeError("string runs past the end of the data", field=field)
            self.pos = end
            raw = bytes(self.data[start:end])
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("text string is not valid UTF-8", field=field) from None
        if major == 4:
            if n > len(self.data) - self.pos:
                raise DecodeError("array longer than the data", field=field)
            return [self.value(field, depth + 1) for _ in range(n)]
        if major == 5:
            if 2 * n > len(self.data) - self.pos:
                raise DecodeError("map longer than the data", field=field)
            out: dict[Any, Any] = {}
            for _ in range(n):
                k = self.value(field, depth + 1)
                if isinstance(k, (list, dict)):
                    raise DecodeError("map keys must be scalars", field=field)
                if k in out:
                    raise DecodeError("duplicate map key", field=field)
                out[k] = self.value(field, depth + 1)
            return out
        if major == 6:
            raise DecodeError("tags are not allowed", field=field)
        if n == 20:
            return False
        if n == 21:
            return True
        if n == 22:
            return None
        raise DecodeError(f"{_simple_name(n)} is not allowed", field=field)

    def _describe(self) -> str:
        b = self.data[self.pos]
        major = b >> 5
        if major == 7:
            return _simple_name(b & 0x1F)
        return _MAJOR_NAMES[major]


def _simple_name(n: int) -> str:
    return {20: "false", 21: "true", 22: "null", 23: "undefined", 25: "a float", 26: "a float",
            27: "a float"}.get(n, f"simple value {n}")


def relocate(e: DecodeError, field: str | None, base: int) -> DecodeError:
    """``e``, raised while decoding bytes that start at ``base`` in an outer input, as an error
    of that input: its field renamed to ``field`` and its offset moved by ``base`` (an error
    without an offset points at the start of the inner bytes)."""
    return DecodeError(e.message, field=field, offset=base + (e.offset or 0))


def check_size(data: bytes, what: str, limit: int = MAX_OBJECT_SIZE) -> None:
    if len(data) > limit:
        raise DecodeError(f"{len(data)} bytes is larger than the {limit}-byte limit", field=what)


def loads(data: bytes, field: str = "value", *, limit: int = MAX_OBJECT_SIZE) -> Any:
    """Decode exactly one generic item; trailing bytes are an error."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", field=field)
    check_size(bytes(data), field, limit)
    r = Reader(bytes(data))
    v = r.value(field)
    r.end(field)
    return v

