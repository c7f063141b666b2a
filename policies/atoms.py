"""Classify an s-expression atom (a run of idchars): number, boolean, identifier or error."""

from __future__ import annotations

import math
import re
from typing import Final

from policies.errors import PolicyError
from policies.expr import Bool, Expr, Float, Int, Name, Pos
from policies.lexer import is_identifier

__all__ = ["INT_MAX", "INT_MIN", "MAX_NUMBER_CHARS", "classify", "format_float"]

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1

_DEC = r"[0-9](?:_?[0-9])*"
_HEXN = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_INT_DEC = re.compile(rf"[+-]?{_DEC}")
_INT_HEX = re.compile(rf"([+-]?)0x({_HEXN})")
_FLOAT_DEC = re.compile(rf"[+-]?{_DEC}(?:\.(?:{_DEC})?)?(?:[eE][+-]?{_DEC})?")
_FLOAT_HEX = re.compile(rf"[+-]?0x{_HEXN}(?:\.(?:{_HEXN})?)?(?:[pP][+-]?{_DEC})?")
_FLOAT_SPECIAL = re.compile(rf"([+-]?)(inf|nan(?::0x{_HEXN})?)")


MAX_NUMBER_CHARS: Final = 400
"""Longest numeric literal (characters, ``_`` included): enough for any 64-bit integer and any
float written out in full, short enough that reading it costs nothing."""


def _short(word: str) -> str:
    return word if len(word) <= 40 else f"{word[:20]}...{word[-8:]} ({len(word)} characters)"


def _error(message: str, pos: Pos | None) -> PolicyError:
    return PolicyError(message, line=pos[0] if pos else None, column=pos[1] if pos else None)


def classify(word: str, pos: Pos | None = None) -> Expr:
    """The literal or :class:`Name` that ``word`` denotes; PolicyError when it is neither."""
    if word == "true":
        return Bool(True, pos)
    if word == "false":
        return Bool(False, pos)
    numeric = (_INT_DEC.fullmatch(word) or _INT_HEX.fullmatch(word) or _FLOAT_DEC.fullmatch(word)
               or _FLOAT_HEX.fullmatch(word))
    if numeric and len(word) > MAX_NUMBER_CHARS:
        raise _error(f"number {_short(word)} is longer than {MAX_NUMBER_CHARS} characters", pos)
    if _INT_DEC.fullmatch(word):
        return _int(int(word.replace("_", ""), 10), word, pos)
    m = _INT_HEX.fullmatch(word)
    if m:
        return _int(int(m.group(1) + m.group(2).replace("_", ""), 16), word, pos)
    if _FLOAT_DEC.fullmatch(word):
        return _float(float(word.replace("_", "")), word, pos)
    if _FLOAT_HEX.fullmatch(word):
        try:
            value = float.fromhex(word.replace("_", ""))
        except OverflowError:
            value = math.inf
        return _float(value, word, pos)
    m = _FLOAT_SPECIAL.fullmatch(word)
    if m:
        if m.group(2).startswith("nan"):
            return Float(math.nan, pos)
        return Float(-math.inf if m.group(1) == "-" else math.inf, pos)
    if is_identifier(word):
        return Name(word, pos)
    raise _error(f"invalid token {_short(word)!r}: expected a number, true, false or a name such "
                 "as subject.role", pos)


def _int(value: int, word: str, pos: Pos | None) -> Int:
    if not INT_MIN <= value <= INT_MAX:
        raise _error(f"integer {_short(word)} is out of the 64-bit range", pos)
    return Int(value, pos)


def _float(value: float, word: str, pos: Pos | None) -> Float:
    if math.isinf(value):
        raise _error(f"float {_short(word)} is out of range (write inf or -inf for infinity)", pos)
    return Float(value, pos)


def format_float(value: float) -> str:
    """Canonical text of a float; it always reads back as a float (``1.0``, ``1e+20``, ``+inf``)."""
    if value != value:
        return "nan"
    if value == math.inf:
        return "+inf"
    if value == -math.inf:
        return "-inf"
    return repr(value)
