"""Runtime values and the three-valued comparisons shared by the compiler and ``explain``.

Values are ``str``, ``int``, ``float``, ``bool`` and ``tuple`` (a sequence). ``None`` stands for
*unknown*: a missing attribute, or a comparison whose operands cannot be compared.

Comparison rules (a superset of Ockam's, which errors on any type mismatch):

- same types compare as usual; ``int`` and ``float`` compare numerically;
- a string compares with a number when it reads as a decimal number (``"42"``, ``"-1.5e3"``) and
  with a boolean when it is ``"true"`` or ``"false"``, else the comparison is unknown;
- sequences are equal when they have the same length and equal elements; a shorter sequence
  orders before a longer one, equal lengths order element by element (as Ockam does);
- NaN is unordered: every ordering comparison with NaN is false, ``=`` is false, ``!=`` true;
- anything else (a sequence with a string, a boolean with a number) is unknown.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "UNORDERED",
    "Value",
    "as_number",
    "contains",
    "ends_with",
    "eq",
    "member",
    "order",
    "starts_with",
    "subset",
    "truth",
    "type_name",
]

Value = str | int | float | bool | tuple["Value", ...]

UNORDERED: Final = 2  # result of order() when NaN is involved

_INT_TEXT = re.compile(r"[+-]?[0-9]{1,300}")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]{1,300}(?:\.[0-9]{0,300})?|\.[0-9]{1,300})"
                         r"(?:[eE][+-]?[0-9]{1,4})?")

_NUMBERS: Final = (int, float)


def as_number(s: str) -> int | float | None:
    """The number a string spells in decimal, else None (no ``nan``, ``inf`` or ``_``)."""
    if _INT_TEXT.fullmatch(s):
        return int(s)
    if _FLOAT_TEXT.fullmatch(s):
        return float(s)
    return None


def _as_bool(s: str) -> bool | None:
    if s == "true":
        return True
    if s == "false":
        return False
    return None


def truth(v: object) -> bool | None:
    """A value in a boolean position: a bool, or the strings ``"true"``/``"false"``; else unknown."""
    if v is True or v is False:
        return v
    if type(v) is str:
        return _as_bool(v)
    return None


def _coerce(s: str, other: object) -> object:
    """``s`` read as the type of ``other`` (number or bool), or None."""
    t = type(other)
    if t is int or t is float:
        return as_number(s)
    if t is bool:
        return _as_bool(s)
    return None


def eq(a: object, b: object) -> bool | None:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is tuple:
            return _seq_eq(a, b)  # type: ignore[arg-type]
        if a is None:
            return None
        return a == b
    if a is None or b is None:
        return None
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a == b
    if ta is str:
        a = _coerce(a, b)  # type: ignore[arg-type]
        return None if a is None else a == b
    if tb is str:
        b = _coerce(b, a)  # type: ignore[arg-type]
        return None if b is None else a == b
    return None


def _seq_eq(a: tuple[object, ...], b: tuple[object, ...]) -> bool | None:
    if len(a) != len(b):
        return False
    unknown = False
    for x, y in zip(a, b, strict=True):
        r = eq(x, y)
        if r is False:
            return False
        if r is None:
            unknown = True
    return None if unknown else True


def order(a: object, b: object) -> int | None:
    """-1, 0 or 1; :data:`UNORDERED` when NaN is involved; None when not comparable."""
    ta, tb = type(a), type(b)
    if a is None or b is None:
        return None
    if ta is not tb:
        if (ta is int or ta is float) and (tb is int or tb is float):
            pass
        elif ta is str:
            a = _coerce(a, b)  # type: ignore[arg-type]
            if a is None:
                return None
        elif tb is str:
            b = _coerce(b, a)  # type: ignore[arg-type]
            if b is None:
                return None
        else:
            return None
    elif ta is tuple:
        return _seq_order(a, b)  # type: ignore[arg-type]
    if a < b:  # type: ignore[operator]
        return -1
    if a > b:  # type: ignore[operator]
        return 1
    if a == b:
        return 0
    return UNORDERED


def _seq_order(a: tuple[object, ...], b: tuple[object, ...]) -> int | None:
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    for x, y in zip(a, b, strict=True):
        r = order(x, y)
        if r != 0:
            return r
    return 0


def member(x: object, seq: object) -> bool | None:
    """Whether ``x`` equals an element of ``seq`` (unknown when ``seq`` is not a sequence)."""
    if type(seq) is not tuple or x is None:
        return None
    unknown = False
    for y in seq:
        r = eq(x, y)
        if r is True:
            return True
        if r is None:
            unknown = True
    return None if unknown else False


def contains(haystack: object, needle: object) -> bool | None:
    """Substring of a string, or element of a sequence."""
    if type(haystack) is str:
        return needle in haystack if type(needle) is str else None
    if type(haystack) is tuple:
        return member(needle, haystack)
    return None


def starts_with(s: object, prefix: object) -> bool | None:
    if type(s) is str and type(prefix) is str:
        return s.startswith(prefix)
    return None


def ends_with(s: object, suffix: object) -> bool | None:
    if type(s) is str and type(suffix) is str:
        return s.endswith(suffix)
    return None


def subset(a: object, b: object) -> bool | None:
    """Every element of the sequence ``a`` is in the sequence ``b``."""
    if type(a) is not tuple or type(b) is not tuple:
        return None
    unknown = False
    for x in a:
        r = member(x, b)
        if r is False:
            return False
        if r is None:
            unknown = True
    return None if unknown else True


_TYPE_NAMES: Final = {str: "string", int: "int", float: "float", bool: "bool", tuple: "sequence"}


def type_name(v: object) -> str:
    return "missing" if v is None else _TYPE_NAMES.get(type(v), type(v).__name__)
