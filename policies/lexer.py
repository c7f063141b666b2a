"""Lexical pieces shared by both grammars: positions, whitespace and comments, string literals,
and the tokenizer of the s-expression form.

The s-expression lexer follows the WebAssembly text lexer that Ockam uses (whitespace, ``;;``
line comments, nestable ``(; ... ;)`` block comments, strings with ``\\t \\n \\r \\" \\' \\\\
\\u{hex}`` and ``\\XX`` byte escapes, runs of "idchars" for numbers, keywords and identifiers),
with one addition: a comma separates the elements of a sequence.
"""

from __future__ import annotations

import bisect
import re
from typing import Final, NamedTuple

from policies.errors import PolicyError

__all__ = [
    "IDCHARS",
    "MAX_DEPTH",
    "MAX_POLICY_CHARS",
    "Source",
    "Token",
    "escape_string",
    "is_identifier",
    "read_string",
    "skip_space",
    "tokenize",
]

MAX_POLICY_CHARS: Final = 256 * 1024
MAX_DEPTH: Final = 128

WHITESPACE: Final = frozenset(" \t\n\r")
IDCHARS: Final = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&'*+-./:<=>?@\\^_`|~"
)
# Ockam's identifier pattern (parser.rs); `+-@` in its class is the range `+,-./0-9:;<=>?@`.
_IDENT = re.compile(r"[a-zA-Z!$%&*/<=>?~_^][a-zA-Z0-9!$%&*/<=>?~_^.+,\-/:;<=>?@]*")
_HEX = frozenset("0123456789abcdefABCDEF")


def is_identifier(word: str) -> bool:
    return _IDENT.fullmatch(word) is not None


class Source:
    """The policy text with offset -> (line, column) mapping (both 1-based)."""

    __slots__ = ("_starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        find = text.find
        i = find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self._starts = starts

    def pos(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1

    def error(self, offset: int, message: str) -> PolicyError:
        line, column = self.pos(offset)
        return PolicyError(message, line=line, column=column)

    def show(self, offset: int, limit: int = 20) -> str:
        """A short quotation of the text at ``offset`` for error messages."""
        if offset >= len(self.text):
            return "the end of the policy"
        piece = self.text[offset : offset + limit]
        piece = piece.split("\n", 1)[0]
        return repr(piece) if piece else repr(self.text[offset])


def skip_space(src: Source, i: int) -> int:
    """Skip whitespace, ``;;`` line comments and nestable ``(; ... ;)`` block comments."""
    text = src.text
    n = len(text)
    while i < n:
        c = text[i]
        if c in WHITESPACE:
            i += 1
        elif c == ";":
            if text.startswith(";;", i):
                j = text.find("\n", i)
                i = n if j < 0 else j + 1
            else:
                raise src.error(i, "unexpected ';' (a comment starts with ';;')")
        elif c == "(" and text.startswith("(;", i):
            start = i
            depth = 0
            while True:
                if i >= n:
                    raise src.error(start, "unclosed block comment: expected ';)'")
                if text.startswith("(;", i):
                    depth += 1
                    i += 2
                elif text.startswith(";)", i):
                    depth -= 1
                    i += 2
                    if depth == 0:
                        break
                else:
                    i += 1
        else:
            break
    return i


def read_string(src: Source, i: int) -> tuple[str, int]:
    """Read the string literal starting at ``i`` (a ``"``); return (value, offset after it)."""
    text = src.text
    n = len(text)
    start = i
    i += 1
    out = bytearray()
    while True:
        if i >= n:
            raise src.error(start, "unclosed string: expected '\"'")
        c = text[i]
        if c == '"':
            i += 1
            break
        if c == "\\":
            if i + 1 >= n:
                raise src.error(start, "unclosed string: expected '\"'")
            e = text[i + 1]
            simple = _SIMPLE_ESCAPES.get(e)
            if simple is not None:
                out += simple
                i += 2
            elif e == "u":
                i = _read_unicode_escape(src, i, out)
            elif e in _HEX and i + 2 < n and text[i + 2] in _HEX:
                out.append(int(text[i + 1 : i + 3], 16))
                i += 3
            else:
                raise src.error(
                    i, "invalid escape in string: expected one of \\t \\n \\r \\\" \\' \\\\ "
                    "\\u{hex} or \\ followed by two hex digits")
        else:
            o = ord(c)
            if o < 0x20 or o == 0x7F:
                raise src.error(i, f"control character {o:#04x} in a string: write it as \\u{{{o:x}}}")
            if 0xD800 <= o <= 0xDFFF:
                raise src.error(i, "a lone surrogate is not a character")
            out += c.encode("utf-8")
            i += 1
    try:
        return out.decode("utf-8"), i
    except UnicodeDecodeError:
        raise src.error(start, "the string's \\XX byte escapes are not valid UTF-8") from None


_SIMPLE_ESCAPES: Final = {
    "t": b"\t", "n": b"\n", "r": b"\r", '"': b'"', "'": b"'", "\\": b"\\", "0": b"\0",
}


def _read_unicode_escape(src: Source, i: int, out: bytearray) -> int:
    text = src.text
    if not text.startswith("u{", i + 1):
        raise src.error(i, "invalid escape in string: expected \\u{hex}")
    j = text.find("}", i + 3)
    digits = text[i + 3 : j] if j >= 0 else ""
    if j < 0 or not digits or len(digits) > 6 or any(d not in _HEX for d in digits):
        raise src.error(i, "invalid escape in string: expected \\u{1 to 6 hex digits}")
    cp = int(digits, 16)
    if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
        raise src.error(i, f"\\u{{{digits}}} is not a Unicode scalar value")
    out += chr(cp).encode("utf-8")
    return j + 1


def escape_string(value: str) -> str:
    """The canonical literal of ``value``: ``"..."`` with ``\\" \\\\ \\n \\r \\t`` escaped and
    other control characters as ``\\u{hex}``."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    parts = ['"']
    for c in value:
        o = ord(c)
        if c == '"':
            parts.append('\\"')
        elif c == "\\":
            parts.append("\\\\")
        elif c == "\n":
            parts.append("\\n")
        elif c == "\r":
            parts.append("\\r")
        elif c == "\t":
            parts.append("\\t")
        elif o < 0x20 or o == 0x7F:
            parts.append(f"\\u{{{o:x}}}")
        else:
            parts.append(c)
    parts.append('"')
    return "".join(parts)


class Token(NamedTuple):
    kind: str  # one of ( ) [ ] , str atom eof
    value: str
    offset: int


def tokenize(src: Source) -> list[Token]:
    """The tokens of the s-expression form, ending with an ``eof`` token."""
    text = src.text
    n = len(text)
    tokens: list[Token] = []
    append = tokens.append
    i = skip_space(src, 0)
    while i < n:
        c = text[i]
        if c in "()[],":
            append(Token(c, c, i))
            i += 1
        elif c == '"':
            value, j = read_string(src, i)
            append(Token("str", value, i))
            if j < n and (text[j] in IDCHARS or text[j] == '"'):
                raise src.error(j, "expected a space or a bracket after the string")
            i = j
        elif c in IDCHARS:
            j = i + 1
            while j < n and text[j] in IDCHARS:
                j += 1
            append(Token("atom", text[i:j], i))
            if j < n and text[j] == '"':
                raise src.error(j, f"expected a space between {text[i:j]!r} and the string")
            i = j
        else:
            raise src.error(i, f"unexpected character {c!r}")
        i = skip_space(src, i)
    append(Token("eof", "", n))
    return tokens
