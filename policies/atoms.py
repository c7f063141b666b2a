"""Classify an s-expression atom (a run of idchars): number, boolean, identifier or error."""

from __future__ import annotations

import math
import re
from typing import Final

from policies.errors import PolicyError
from policies.expr import Bool, Expr, Float, Int, Name, Pos
from policies.lexer import is_identifier

__all__ = ["INT_MAX", "INT_MIN", "classify", "format_float"]

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1

_DEC = r"[0-9](?:_?[0-9])*"
_HEXN = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_INT_DEC = re.compile(rf"[+-]?{_DEC}")
_INT_HEX = re.compile(rf"([+-]?)0x({_HEXN})")
_FLOAT_DEC = re.compile(rf"[+-]?{_DEC}(?:\.(?:{_DEC})?)?(?:[eE][+-]?{_DEC})?")
_FLOAT_HEX = re.compile(rf"[+-]?0x{_HEXN}(?:\.(?:{_HEXN})?)?(?:[pP][+-]?{_DEC})?")
_FLOAT_SPECIAL = re.compile(rf"([+-]?)(inf|nan(?::0x{_HEXN})?)")


def classify(word: str, pos: Pos | None = None) -> Expr:
    """The literal or :class:`Name` that ``word`` denotes; PolicyError when it is neither."""
    if word == "true":
        return Bool(True, pos)
    if word == "false":
        return Bool(False, pos)
    if _INT_DEC.fullmatch(word):
        return _int(int(word.replace("_", ""), 10), word, pos)
    m = _INT_HEX.fullmatch(word)
    if m:
        return _int(int(m.group(1) + m.group(2).replace("_", ""), 16), word, pos)
    if _FLOAT_DEC.fullmatch(word):
        return Float(float(word.replace("_", "")), pos)
    if _FLOAT_HEX.fullmatch(word):
        return Float(float.fromhex(word.replace("_", "")), pos)
    m = _FLOAT_SPECIAL.fullmatch(word)
    if m:
        if m.group(2).startswith("nan"):
            return Float(math.nan, pos)
        return Float(-math.inf if m.group(1) == "-" else math.inf, pos)
    if is_identifier(word):
        return Name(word, pos)
    raise PolicyError(
        f"invalid token {word!r}: expected a number, true, false or a name such as subject.role",
        line=pos[0] if pos else None, column=pos[1] if pos else None)


def _int(value: int, word: str, pos: Pos | None) -> Int:
    if not INT_MIN <= value <= INT_MAX:
        raise PolicyError(f"integer {word} is out of the 64-bit range",
                          line=pos[0] if pos else None, column=pos[1] if pos else None)
    return Int(value, pos)


def format_float(value: float) -> str:
    """Canonical text of a float; it always reads back as a float (``1.0``, ``1e+20``, ``+inf``)."""
    if value != value:
        return "nan"
    if value == math.inf:
        return "+inf"
    if value == -math.inf:
        return "-inf"
    return repr(value)
