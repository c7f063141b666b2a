"""The syntax tree of a policy and the table of operators.

A policy is an :data:`Expr`: literals (:class:`Str`, :class:`Int`, :class:`Float`, :class:`Bool`),
sequences (:class:`Seq`), attribute names (:class:`Name`, e.g. ``subject.role``) and operator
applications (:class:`Call`). Nodes are frozen; ``pos`` (1-based line and column in the source,
when parsed) takes no part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "BOOLEAN_OPERATORS",
    "COMPARISONS",
    "NAMESPACES",
    "OPERATORS",
    "Bool",
    "Call",
    "Expr",
    "Float",
    "Int",
    "Name",
    "Pos",
    "Seq",
    "Str",
    "arity_text",
    "canonical_operator",
    "is_qualified",
]

Pos = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    pos: Pos | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Int:
    value: int
    pos: Pos | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Float:
    value: float
    pos: Pos | None = field(default=None, compare=False, repr=False)

    def __eq__(self, other: object) -> bool:
        # NaN equals NaN here: two trees are equal when they print the same.
        if not isinstance(other, Float):
            return NotImplemented
        a, b = self.value, other.value
        return a == b or (a != a and b != b)

    def __hash__(self) -> int:
        return hash(("float", repr(self.value)))


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    pos: Pos | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[Expr, ...]
    pos: Pos | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Name:
    """An attribute of the environment, e.g. ``subject.role`` or ``resource.id``."""

    name: str
    pos: Pos | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Call:
    """An operator applied to arguments: ``(op arg ...)``. ``op`` is the canonical name."""

    op: str
    args: tuple[Expr, ...]
    pos: Pos | None = field(default=None, compare=False, repr=False)


Expr = Str | Int | Float | Bool | Seq | Name | Call

# operator -> (minimum arity, maximum arity or None for unbounded)
OPERATORS: Final[dict[str, tuple[int, int | None]]] = {
    "and": (0, None),
    "or": (0, None),
    "not": (1, 1),
    "if": (3, 3),
    "=": (2, None),
    "!=": (2, None),
    "<": (2, None),
    ">": (2, None),
    "<=": (2, None),
    ">=": (2, None),
    "member?": (2, 2),
    "exists?": (0, None),
    "starts-with?": (2, 2),
    "ends-with?": (2, 2),
    "contains?": (2, 2),
    "subset?": (2, 2),
}

ALIASES: Final[dict[str, str]] = {"in": "member?"}

COMPARISONS: Final[frozenset[str]] = frozenset({"=", "!=", "<", ">", "<=", ">="})

# Operators whose result is always true, false or unknown (every operator but `if`).
BOOLEAN_OPERATORS: Final[frozenset[str]] = frozenset(OPERATORS) - {"if"}


NAMESPACES: Final = ("subject", "resource", "action", "env")


def is_qualified(name: str) -> bool:
    """Whether ``name`` is ``<namespace>.<attribute>`` with a namespace of :data:`NAMESPACES`."""
    ns, dot, rest = name.partition(".")
    return bool(dot and rest) and ns in NAMESPACES


def canonical_operator(word: str) -> str | None:
    """The canonical operator for ``word`` (an operator or an alias), else None."""
    if word in OPERATORS:
        return word
    return ALIASES.get(word)


def arity_text(op: str) -> str:
    low, high = OPERATORS[op]
    if high is None:
        return f"{low} or more arguments" if low else "any number of arguments"
    word = "argument" if high == 1 else "arguments"
    return f"exactly {high} {word}"
