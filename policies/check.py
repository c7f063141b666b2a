"""Static checks applied while a policy is built: arity, operand shapes and nesting depth.

Every tree that reaches the compiler went through these checks, so malformed policies never reach
evaluation. Only what is certain from the text is rejected: a literal where a boolean is needed,
``member?`` on a literal that is not a sequence, ``exists?`` of something that is not a name.
Attribute names are typed only at evaluation time (a mismatch there is *unknown*).
"""

from __future__ import annotations

import math
from typing import Final

from policies.atoms import INT_MAX, INT_MIN, classify
from policies.errors import PolicyError
from policies.expr import (
    BOOLEAN_OPERATORS,
    OPERATORS,
    Bool,
    Call,
    Expr,
    Float,
    Int,
    Name,
    Pos,
    Seq,
    Str,
    arity_text,
    canonical_operator,
    is_qualified,
)
from policies.lexer import MAX_DEPTH

__all__ = ["check_call", "check_policy", "check_seq", "describe", "kind", "name_ok", "validate"]


def _error(pos: Pos | None, message: str) -> PolicyError:
    if pos is None:
        return PolicyError(message)
    return PolicyError(message, line=pos[0], column=pos[1])


def kind(e: Expr) -> str:
    """The static type of ``e``: bool, str, num, seq or any (not known before evaluation)."""
    if isinstance(e, Call):
        if e.op in BOOLEAN_OPERATORS:
            return "bool"
        a, b = kind(e.args[1]), kind(e.args[2])
        return a if a == b else "any"
    if isinstance(e, Name):
        return "any"
    if isinstance(e, Bool):
        return "bool"
    if isinstance(e, Str):
        return "str"
    if isinstance(e, Int | Float):
        return "num"
    return "seq"


_KIND_WORDS: Final = {"bool": "a boolean", "str": "a string", "num": "a number",
                      "seq": "a sequence", "any": "a value"}


def describe(e: Expr) -> str:
    from policies.printer import render

    text = render(e)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{_KIND_WORDS[kind(e)]} {text}"


def _expect_bool(e: Expr, where: str) -> None:
    if isinstance(e, Call) and e.op == "if":
        _expect_bool(e.args[1], where)
        _expect_bool(e.args[2], where)
        return
    k = kind(e)
    if k not in ("bool", "any"):
        raise _error(e.pos, f"{where} expects a boolean, found {describe(e)}")


def _expect(e: Expr, allowed: tuple[str, ...], message: str) -> None:
    if kind(e) not in allowed and kind(e) != "any":
        raise _error(e.pos, f"{message}, found {describe(e)}")


def check_call(op: str, args: tuple[Expr, ...], pos: Pos | None) -> Call:
    """Check an application of the canonical operator ``op``; return the node."""
    low, high = OPERATORS[op]
    n = len(args)
    if n < low or (high is not None and n > high):
        raise _error(pos, f"'{op}' takes {arity_text(op)}, got {n}")
    if op in ("and", "or", "not"):
        for a in args:
            _expect_bool(a, f"'{op}'")
    elif op == "if":
        _expect_bool(args[0], "the condition of 'if'")
    elif op == "member?":
        _expect(args[1], ("seq",), "'member?' expects a sequence as its second argument")
    elif op == "exists?":
        for a in args:
            if not isinstance(a, Name):
                raise _error(a.pos, f"'exists?' expects attribute names, found {describe(a)}")
    elif op in ("starts-with?", "ends-with?"):
        for a in args:
            _expect(a, ("str",), f"'{op}' expects strings")
    elif op == "contains?":
        _expect(args[0], ("str", "seq"), "'contains?' expects a string or a sequence first")
        if kind(args[0]) == "str":
            _expect(args[1], ("str",), "'contains?' on a string expects a string to find")
    elif op == "subset?":
        for a in args:
            _expect(a, ("seq",), "'subset?' expects sequences")
    return Call(op, args, pos)


def check_seq(items: tuple[Expr, ...], pos: Pos | None) -> Seq:
    """Literal elements of a sequence must have one type (integers and floats are numbers)."""
    first: Expr | None = None
    for item in items:
        k = kind(item)
        if k == "any":
            continue
        if first is None:
            first = item
        elif kind(first) != k:
            raise _error(item.pos, "the elements of a sequence must have one type: "
                                   f"{describe(first)} and {describe(item)}")
    return Seq(items, pos)


def check_policy(e: Expr) -> Expr:
    """The whole policy must be an operation, ``true``/``false`` or a full attribute name, and
    yield a boolean."""
    if isinstance(e, Bool):
        return e
    if not isinstance(e, Call | Name) or (isinstance(e, Name) and not is_qualified(e.name)):
        raise _error(e.pos, "a policy must be an operation such as (= subject.role \"admin\"), "
                            f"or true or false; found {describe(e)}")
    _expect_bool(e, "a policy")
    return e


def name_ok(name: str) -> bool:
    """Whether ``name`` prints as an atom that reads back as this attribute name."""
    try:
        parsed = classify(name)
    except PolicyError:
        return False
    return isinstance(parsed, Name) and canonical_operator(name) is None


def validate(e: Expr) -> Expr:
    """Check a tree built by hand (not parsed): every node well formed, depth bounded.

    Returns a tree equal to ``e`` that has passed the same checks as a parsed one.
    """
    return check_policy(_validate(e, 0))


def _validate(e: Expr, depth: int) -> Expr:
    if isinstance(e, Call | Seq):
        if depth >= MAX_DEPTH:
            raise _error(e.pos, f"the policy nests deeper than {MAX_DEPTH} levels")
        if isinstance(e, Call):
            op = canonical_operator(e.op) if isinstance(e.op, str) else None
            if op is None:
                raise _error(e.pos, f"unknown operator {e.op!r}")
            return check_call(op, tuple(_validate(a, depth + 1) for a in e.args), e.pos)
        return check_seq(tuple(_validate(a, depth + 1) for a in e.items), e.pos)
    if isinstance(e, Str):
        if not isinstance(e.value, str):
            raise _error(e.pos, "a Str holds a str")
        try:
            e.value.encode("utf-8")
        except UnicodeEncodeError:
            raise _error(e.pos, "a string holds a lone surrogate") from None
    elif isinstance(e, Int):
        if type(e.value) is not int or not INT_MIN <= e.value <= INT_MAX:
            raise _error(e.pos, "an Int holds a 64-bit signed integer")
    elif isinstance(e, Float):
        if type(e.value) is not float:
            raise _error(e.pos, "a Float holds a float")
        if math.isnan(e.value):
            return Float(math.nan, e.pos)
    elif isinstance(e, Bool):
        if type(e.value) is not bool:
            raise _error(e.pos, "a Bool holds a bool")
    elif isinstance(e, Name):
        if not isinstance(e.name, str) or not name_ok(e.name):
            raise _error(e.pos, f"invalid attribute name {e.name!r}")
    else:
        raise PolicyError(f"not a policy expression: {type(e).__name__}")
    return e
