"""Warnings about policies that parse but probably do not say what their author meant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policies.compiler import literal_value
from policies.expr import COMPARISONS, NAMESPACES, Call, Expr, Name, Seq

__all__ = ["NAMESPACES", "LintWarning", "lint"]

_TESTS = frozenset({"member?", "starts-with?", "ends-with?", "contains?", "subset?"})


@dataclass(frozen=True, slots=True)
class LintWarning:
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}: " if self.line is not None else ""
        return f"{where}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}


def lint(e: Expr) -> list[LintWarning]:
    out: list[LintWarning] = []
    _walk(e, out)
    return out


def _warn(out: list[LintWarning], e: Expr, message: str) -> None:
    line, column = e.pos if e.pos is not None else (None, None)
    out.append(LintWarning(line, column, message))


def _walk(e: Expr, out: list[LintWarning]) -> None:
    if isinstance(e, Name):
        _check_name(e, out)
    elif isinstance(e, Seq):
        for item in e.items:
            _walk(item, out)
    elif isinstance(e, Call):
        _check_call(e, out)
        for a in e.args:
            _walk(a, out)


def _check_name(e: Name, out: list[LintWarning]) -> None:
    name = e.name
    ns, dot, rest = name.partition(".")
    if not dot or ns not in NAMESPACES or not rest:
        _warn(out, e, f"unknown attribute namespace in {name!r}: attribute names start with "
                      "subject., resource., action. or env.; this one is always missing")
    elif name.startswith(tuple(f"subject.{ns}." for ns in NAMESPACES)):
        _warn(out, e, f"{name!r} looks like a doubled namespace (did you mean "
                      f"{name[len('subject.'):]!r}?)")


def _check_call(e: Call, out: list[LintWarning]) -> None:
    op, args = e.op, e.args
    compares = op in COMPARISONS or op in _TESTS
    if compares and args and all(literal_value(a)[0] for a in args):
        _warn(out, e, f"({op} ...) compares constants only: its result never changes")
    if op == "!=" and len(args) > 2:
        _warn(out, e, "(!= a b c) means 'not all equal', not 'all different'")
    if op in ("and", "or") and len(args) < 2:
        value = {"and": "true", "or": "false"}[op] if not args else "its only argument"
        _warn(out, e, f"({op}) with {len(args)} argument{'s' if len(args) != 1 else ''} "
                      f"is {value}")
    if op == "exists?" and not args:
        _warn(out, e, "(exists?) without names is always true")
