"""Render a policy tree as canonical s-expression text.

Canonical text: operators in their canonical spelling (``in`` prints as ``member?``), one space
between elements, sequences without commas, strings with minimal escapes, floats that read back
as floats. ``parse(render(e)) == e`` for every valid tree.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.atoms import format_float
from policies.expr import Bool, Call, Expr, Float, Int, Name, Seq, Str
from policies.lexer import escape_string

__all__ = ["render"]


def render(e: Expr) -> str:
    parts: list[str] = []
    _render(e, parts.append)
    return "".join(parts)


def _render(e: Expr, out: Callable[[str], object]) -> None:
    if isinstance(e, Call):
        out("(")
        out(e.op)
        for a in e.args:
            out(" ")
            _render(a, out)
        out(")")
    elif isinstance(e, Name):
        out(e.name)
    elif isinstance(e, Str):
        out(escape_string(e.value))
    elif isinstance(e, Bool):
        out("true" if e.value else "false")
    elif isinstance(e, Int):
        out(str(e.value))
    elif isinstance(e, Float):
        out(format_float(e.value))
    elif isinstance(e, Seq):
        out("[")
        for i, a in enumerate(e.items):
            if i:
                out(" ")
            _render(a, out)
        out("]")
    else:
        raise TypeError(f"not a policy expression: {type(e).__name__}")
