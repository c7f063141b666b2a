"""Compile a checked policy tree into nested Python closures, once.

A compiled boolean node is ``fn(values) -> True | False | None`` (None: unknown); a compiled value
node returns the value or None. ``values`` is the flat ``dict`` of an :class:`Environment`
(``"subject.role" -> "admin"``). The common shapes (``(= name "literal")``, two-argument
``and``/``or``, ``member?`` of a literal sequence) get dedicated closures that do one dict lookup
and one comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from policies.expr import BOOLEAN_OPERATORS, Bool, Call, Expr, Float, Int, Name, Seq, Str
from policies.values import (
    UNORDERED,
    contains,
    ends_with,
    eq,
    member,
    order,
    starts_with,
    subset,
    truth,
)

__all__ = ["Fn", "compile_bool", "compile_value", "literal_value"]

Fn = Callable[[Mapping[str, Any]], Any]


def literal_value(e: Expr) -> tuple[bool, Any]:
    """(True, value) when ``e`` is a constant (a literal or a sequence of constants)."""
    if isinstance(e, Str | Int | Float | Bool):
        return True, e.value
    if isinstance(e, Seq):
        items = []
        for item in e.items:
            ok, v = literal_value(item)
            if not ok:
                return False, None
            items.append(v)
        return True, tuple(items)
    return False, None


def _const(v: Any) -> Fn:
    return lambda values: v


def compile_value(e: Expr) -> Fn:
    ok, v = literal_value(e)
    if ok:
        return _const(v)
    if isinstance(e, Name):
        name = e.name
        return lambda values: values.get(name)
    if isinstance(e, Seq):
        fns = tuple(compile_value(item) for item in e.items)
        return lambda values: tuple([f(values) for f in fns])
    assert isinstance(e, Call)
    if e.op in BOOLEAN_OPERATORS:
        return compile_bool(e)
    cond, then, other = compile_bool(e.args[0]), compile_value(e.args[1]), compile_value(e.args[2])

    def if_value(values: Mapping[str, Any]) -> Any:
        c = cond(values)
        if c is True:
            return then(values)
        if c is False:
            return other(values)
        return None

    return if_value


def compile_bool(e: Expr) -> Fn:
    if isinstance(e, Bool):
        return _const(e.value)
    if isinstance(e, Name):
        name = e.name

        def name_truth(values: Mapping[str, Any]) -> bool | None:
            v = values.get(name)
            if v is True or v is False:
                return v
            return truth(v)

        return name_truth
    assert isinstance(e, Call), e
    builder = _BUILDERS[e.op]
    return builder(e)


def _name_eq_str(e: Expr) -> tuple[str, str] | None:
    """(name, literal) when ``e`` is ``(= name "literal")`` or ``(= "literal" name)``."""
    if isinstance(e, Call) and e.op == "=" and len(e.args) == 2:
        a, b = e.args
        if isinstance(a, Name) and isinstance(b, Str):
            return a.name, b.value
        if isinstance(b, Name) and isinstance(a, Str):
            return b.name, a.value
    return None


def _fused(e: Call) -> Fn | None:
    """One closure for an ``and``/``or`` of string equalities (the shape of most policies):
    a loop over (name, literal) pairs instead of one closure call per comparison."""
    pairs = tuple(_name_eq_str(a) for a in e.args)
    if len(pairs) < 2 or any(p is None for p in pairs):
        return None
    checks: tuple[tuple[str, str], ...] = pairs  # type: ignore[assignment]
    if e.op == "and":
        def and_eq(values: Mapping[str, Any]) -> bool | None:
            unknown = False
            for name, lit in checks:
                v = values.get(name)
                if type(v) is str:
                    if v != lit:
                        return False
                else:
                    r = eq(v, lit)
                    if r is False:
                        return False
                    if r is None:
                        unknown = True
            return None if unknown else True

        return and_eq

    def or_eq(values: Mapping[str, Any]) -> bool | None:
        unknown = False
        for name, lit in checks:
            v = values.get(name)
            if type(v) is str:
                if v == lit:
                    return True
            else:
                r = eq(v, lit)
                if r is True:
                    return True
                if r is None:
                    unknown = True
        return None if unknown else False

    return or_eq


def _and(e: Call) -> Fn:
    fused = _fused(e)
    if fused is not None:
        return fused
    fns = tuple(compile_bool(a) for a in e.args)
    if not fns:
        return _const(True)
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        f1, f2 = fns

        def and2(values: Mapping[str, Any]) -> bool | None:
            a = f1(values)
            if a is False:
                return False
            b = f2(values)
            if b is False:
                return False
            return b if a is True else None

        return and2

    def and_n(values: Mapping[str, Any]) -> bool | None:
        unknown = False
        for f in fns:
            r = f(values)
            if r is False:
                return False
            if r is None:
                unknown = True
        return None if unknown else True

    return and_n


def _or(e: Call) -> Fn:
    fused = _fused(e)
    if fused is not None:
        return fused
    fns = tuple(compile_bool(a) for a in e.args)
    if not fns:
        return _const(False)
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        f1, f2 = fns

        def or2(values: Mapping[str, Any]) -> bool | None:
            a = f1(values)
            if a is True:
                return True
            b = f2(values)
            if b is True:
                return True
            return b if a is False else None

        return or2

    def or_n(values: Mapping[str, Any]) -> bool | None:
        unknown = False
        for f in fns:
            r = f(values)
            if r is True:
                return True
            if r is None:
                unknown = True
        return None if unknown else False

    return or_n


def _not(e: Call) -> Fn:
    f = compile_bool(e.args[0])

    def not_(values: Mapping[str, Any]) -> bool | None:
        r = f(values)
        if r is True:
            return False
        if r is False:
            return True
        return None

    return not_


def _if(e: Call) -> Fn:
    cond, then, other = (compile_bool(a) for a in e.args)

    def if_(values: Mapping[str, Any]) -> bool | None:
        c = cond(values)
        if c is True:
            return then(values)
        if c is False:
            return other(values)
        return None

    return if_


# -- comparisons -----------------------------------------------------------------------------

def _pair_eq(a: Any, b: Any) -> bool | None:
    return eq(a, b)


def _ordered(test: Callable[[int], bool]) -> Callable[[Any, Any], bool | None]:
    def pair(a: Any, b: Any) -> bool | None:
        r = order(a, b)
        if r is None:
            return None
        if r == UNORDERED:
            return False
        return test(r)

    return pair


_PAIRS: dict[str, Callable[[Any, Any], bool | None]] = {
    "=": _pair_eq,
    "<": _ordered(lambda r: r < 0),
    ">": _ordered(lambda r: r > 0),
    "<=": _ordered(lambda r: r <= 0),
    ">=": _ordered(lambda r: r >= 0),
}


def chain(pair: Callable[[Any, Any], bool | None], vals: list[Any]) -> bool | None:
    """Kleene conjunction of ``pair`` over adjacent values."""
    unknown = False
    for i in range(len(vals) - 1):
        r = pair(vals[i], vals[i + 1])
        if r is False:
            return False
        if r is None:
            unknown = True
    return None if unknown else True


def _negate(f: Fn) -> Fn:
    def ne(values: Mapping[str, Any]) -> bool | None:
        r = f(values)
        if r is True:
            return False
        if r is False:
            return True
        return None

    return ne


def _comparison(e: Call) -> Fn:
    if e.op == "!=":
        return _negate(_comparison(Call("=", e.args, e.pos)))
    pair = _PAIRS[e.op]
    args = e.args
    if len(args) == 2:
        fast = _name_vs_literal(e.op, args[0], args[1])
        if fast is not None:
            return fast
        fa, fb = compile_value(args[0]), compile_value(args[1])
        return lambda values: pair(fa(values), fb(values))
    fns = tuple(compile_value(a) for a in args)
    return lambda values: chain(pair, [f(values) for f in fns])


_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


class _NoFastPath:
    """A type no value has: a literal whose comparisons always take the general path."""


def _name_vs_literal(op: str, left: Expr, right: Expr) -> Fn | None:
    """A closure for ``(op name literal)`` with one dict lookup and a same-type fast path."""
    if isinstance(left, Name) and isinstance(right, Str | Int | Float | Bool):
        name, lit = left.name, right.value
        swapped = False
    elif isinstance(right, Name) and isinstance(left, Str | Int | Float | Bool):
        name, lit = right.name, left.value
        swapped = True
    else:
        return None
    pair = _PAIRS[op]
    if op == "=":
        if isinstance(lit, str):
            def eq_str(values: Mapping[str, Any]) -> bool | None:
                v = values.get(name)
                if type(v) is str:
                    return v == lit
                return eq(v, lit)

            return eq_str
        if isinstance(lit, bool):
            def eq_bool(values: Mapping[str, Any]) -> bool | None:
                v = values.get(name)
                if v is True or v is False:
                    return v is lit
                return eq(v, lit)

            return eq_bool
    lit_type: type = type(lit)
    if isinstance(lit, float) and math.isnan(lit):
        # No fast path: order() and eq() decide (NaN is unordered, a missing value unknown).
        lit_type = _NoFastPath
    py_op = _PY_OPS[op]
    if swapped:
        def swapped_cmp(values: Mapping[str, Any]) -> bool | None:
            v = values.get(name)
            if type(v) is lit_type:
                return py_op(lit, v)
            return pair(lit, v)

        return swapped_cmp

    def cmp(values: Mapping[str, Any]) -> bool | None:
        v = values.get(name)
        if type(v) is lit_type:
            return py_op(v, lit)
        return pair(v, lit)

    return cmp


def _member(e: Call) -> Fn:
    needle, seq = e.args
    f = compile_value(needle)
    ok, items = literal_value(seq)
    if ok:
        types = {type(x) for x in items}
        hashable = len(types) == 1 and next(iter(types)) in (str, int, bool, float)
        if hashable and not any(type(x) is float and math.isnan(x) for x in items):
            elem_type = next(iter(types))
            as_set = frozenset(items)

            def member_set(values: Mapping[str, Any]) -> bool | None:
                v = f(values)
                if type(v) is elem_type:
                    return v in as_set
                return member(v, items)

            return member_set
        return lambda values: member(f(values), items)
    g = compile_value(seq)
    return lambda values: member(f(values), g(values))


def _exists(e: Call) -> Fn:
    names = tuple(a.name for a in e.args if isinstance(a, Name))
    if len(names) == 1:
        only = names[0]
        return lambda values: values.get(only) is not None
    return lambda values: all(values.get(n) is not None for n in names)


def _binary(fn: Callable[[Any, Any], bool | None]) -> Callable[[Call], Fn]:
    def build(e: Call) -> Fn:
        fa, fb = compile_value(e.args[0]), compile_value(e.args[1])
        return lambda values: fn(fa(values), fb(values))

    return build


_BUILDERS: dict[str, Callable[[Call], Fn]] = {
    "and": _and,
    "or": _or,
    "not": _not,
    "if": _if,
    "=": _comparison,
    "!=": _comparison,
    "<": _comparison,
    ">": _comparison,
    "<=": _comparison,
    ">=": _comparison,
    "member?": _member,
    "exists?": _exists,
    "starts-with?": _binary(starts_with),
    "ends-with?": _binary(ends_with),
    "contains?": _binary(contains),
    "subset?": _binary(subset),
}
