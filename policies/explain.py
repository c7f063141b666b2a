"""``explain``: evaluate a policy and keep the tree of sub-results, each with why it is false or
unknown. Slower than the compiled closures (it is for people, not for the hot path); it gives the
same result: every operand of ``and``/``or`` is evaluated (so every failing clause shows), only
``if`` skips the branch it does not take.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.atoms import format_float
from policies.compiler import _PAIRS, chain, literal_value
from policies.expr import Bool, Call, Expr, Float, Int, Name, Seq, Str
from policies.lexer import escape_string
from policies.printer import render
from policies.values import (
    contains,
    ends_with,
    member,
    starts_with,
    subset,
    truth,
    type_name,
)

__all__ = ["Explanation", "explain", "show_value"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """One node of an explanation.

    ``result`` is True, False or None (unknown) for a boolean node. A value node (an attribute,
    or an ``if`` that yields a value) has ``is_value`` set and its value in ``value`` (None when
    missing). ``reason`` says why a boolean node is false or unknown.
    """

    expression: str
    result: bool | None
    reason: str | None = None
    children: tuple[Explanation, ...] = ()
    value: Any = None
    is_value: bool = False
    dropped: tuple[str, ...] = ()
    """On the root: the names the environment dropped (``Environment.dropped``)."""

    @property
    def allowed(self) -> bool:
        return self.result is True

    @property
    def outcome(self) -> str:
        """``"true"``, ``"false"`` or ``"unknown"``."""
        return "unknown" if self.result is None else ("true" if self.result else "false")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (sequences as lists, non-finite floats as strings)."""
        d: dict[str, Any] = {"expression": self.expression}
        if self.is_value:
            d["value"] = json_value(self.value)
            d["missing"] = self.value is None
        else:
            d["result"] = self.outcome
            d["reason"] = self.reason
        if self.children:
            d["children"] = [c.to_dict() for c in self.children]
        if self.dropped:
            d["dropped"] = list(self.dropped)
        return d

    def render(self, indent: str = "  ") -> str:
        """An indented text tree, one node per line."""
        lines: list[str] = []
        self._render(lines, 0, indent)
        if self.dropped:
            lines.append("dropped from the environment (not UTF-8, reserved or not a policy "
                         "value): " + ", ".join(_printable(_short(d)) for d in self.dropped))
        return "\n".join(lines)

    def _render(self, lines: list[str], depth: int, indent: str) -> None:
        pad = indent * depth
        if self.is_value:
            shown = "missing" if self.value is None else show_value(self.value)
            lines.append(f"{pad}{self.expression} = {shown}")
        else:
            line = f"{pad}{self.outcome:<7} {self.expression}"
            if self.reason:
                line += f"  -- {self.reason}"
            lines.append(line)
        for c in self.children:
            c._render(lines, depth + 1, indent)

    def __str__(self) -> str:
        return self.render()


def json_value(v: Any) -> Any:
    if type(v) is tuple:
        return [json_value(x) for x in v]
    if type(v) is float and (v != v or v in (float("inf"), float("-inf"))):
        return format_float(v)
    return v


def show_value(v: Any) -> str:
    """A value as policy text: strings quoted, sequences in brackets."""
    if v is None:
        return "missing"
    t = type(v)
    if t is str:
        return escape_string(v)
    if t is bool:
        return "true" if v else "false"
    if t is float:
        return format_float(v)
    if t is tuple:
        return "[" + " ".join(show_value(x) for x in v) + "]"
    return json.dumps(v) if t is int else repr(v)


def explain(e: Expr, values: Mapping[str, Any], dropped: tuple[str, ...] = ()) -> Explanation:
    """The explanation of ``e`` in ``values``; ``dropped``: the names the environment left out
    (a reason that rests on one of them says so)."""
    root = _Explainer(values, frozenset(dropped)).boolean(e)
    if dropped:
        root = dataclasses.replace(root, dropped=tuple(dropped))
    return root


def _printable(text: str) -> str:
    """``text`` with control and other unprintable characters as ``\\u{hex}``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\u{{{ord(c):x}}}" for c in text)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _list(indices: list[int], state: str) -> str:
    """``argument 2 is false`` / ``arguments 1 and 3 are false``."""
    words = [str(i) for i in indices]
    if len(words) == 1:
        return f"argument {words[0]} is {state}"
    return "arguments " + ", ".join(words[:-1]) + " and " + words[-1] + f" are {state}"


def _why(kids: tuple[Explanation, ...], which: list[int]) -> str:
    """The reason of the one argument that decided, appended (``: subject.a is missing``)."""
    if len(which) == 1:
        reason = kids[which[0] - 1].reason
        if reason:
            return f": {reason}"
    return ""


class _Explainer:
    def __init__(self, values: Mapping[str, Any], dropped: frozenset[str] = frozenset()) -> None:
        self.values = values
        self.dropped = dropped

    def missing(self, name: str) -> str:
        """Why ``name`` has no value: missing, or dropped by the environment."""
        if name in self.dropped:
            return f"{name} is missing: the environment dropped it (not UTF-8, reserved or not a " \
                   "policy value)"
        return f"{name} is missing"

    # Each method returns (Explanation or None for a literal, the value).
    def value(self, e: Expr) -> tuple[Explanation | None, Any]:
        ok, v = literal_value(e)
        if ok:
            return None, v
        if isinstance(e, Name):
            v = self.values.get(e.name)
            return Explanation(e.name, None, value=v, is_value=True), v
        if isinstance(e, Seq):
            parts = [self.value(item) for item in e.items]
            v = tuple(p[1] for p in parts)
            kids = tuple(p[0] for p in parts if p[0] is not None)
            return Explanation(render(e), None, children=kids, value=v, is_value=True), v
        assert isinstance(e, Call)
        if e.op != "if":
            node = self.boolean(e)
            return node, node.result
        cond = self.boolean(e.args[0])
        if cond.result is None:
            node = Explanation(render(e), None, children=(cond,), is_value=True)
            return node, None
        chosen, v = self.value(e.args[1] if cond.result else e.args[2])
        kids = (cond,) if chosen is None else (cond, chosen)
        return Explanation(render(e), None, children=kids, value=v, is_value=True), v

    def describe(self, e: Expr, v: Any) -> str:
        """How an operand reads in a reason: ``subject.role ("user")`` or a literal."""
        if isinstance(e, Str | Int | Float | Bool | Seq) and literal_value(e)[0]:
            return _short(show_value(v))
        text = _short(render(e))
        if v is None:
            return f"{text} (missing)" if isinstance(e, Name) else f"{text} (unknown)"
        return f"{text} (the {type_name(v)} {_short(show_value(v), 80)})"

    def boolean(self, e: Expr) -> Explanation:
        text = render(e)
        if isinstance(e, Bool):
            return Explanation(text, e.value, None if e.value else "the literal false")
        if isinstance(e, Name):
            v = self.values.get(e.name)
            r = truth(v)
            reason = None
            if v is None:
                reason = self.missing(e.name)
            elif r is None:
                reason = f"{e.name} is the {type_name(v)} {_short(show_value(v), 80)}, not a boolean"
            elif r is False:
                reason = f"{e.name} is false"
            return Explanation(text, r, reason, value=v)
        assert isinstance(e, Call), e
        return getattr(self, "op_" + _METHOD[e.op])(e, text)

    def op_and(self, e: Call, text: str) -> Explanation:
        kids = tuple(self.boolean(a) for a in e.args)
        false = [i + 1 for i, k in enumerate(kids) if k.result is False]
        unknown = [i + 1 for i, k in enumerate(kids) if k.result is None]
        if false:
            return Explanation(text, False, _list(false, "false") + _why(kids, false), kids)
        if unknown:
            return Explanation(text, None, _list(unknown, "unknown") + _why(kids, unknown), kids)
        return Explanation(text, True, None, kids)

    def op_or(self, e: Call, text: str) -> Explanation:
        kids = tuple(self.boolean(a) for a in e.args)
        if any(k.result is True for k in kids):
            return Explanation(text, True, None, kids)
        unknown = [i + 1 for i, k in enumerate(kids) if k.result is None]
        if unknown:
            return Explanation(text, None, "no argument is true and " + _list(unknown, "unknown")
                               + _why(kids, unknown), kids)
        reason = "no argument is true" if kids else "(or) without arguments is false"
        return Explanation(text, False, reason, kids)

    def op_not(self, e: Call, text: str) -> Explanation:
        kid = self.boolean(e.args[0])
        if kid.result is None:
            return Explanation(text, None, "its argument is unknown" + _why((kid,), [1]), (kid,))
        if kid.result:
            return Explanation(text, False, "its argument is true", (kid,))
        return Explanation(text, True, None, (kid,))

    def op_if(self, e: Call, text: str) -> Explanation:
        cond = self.boolean(e.args[0])
        if cond.result is None:
            return Explanation(text, None, "the condition is unknown", (cond,))
        branch = self.boolean(e.args[1] if cond.result else e.args[2])
        which = "then" if cond.result else "else"
        reason = None
        if branch.result is not True:
            reason = f"the condition is {cond.outcome} and the {which} branch is {branch.outcome}"
        return Explanation(text, branch.result, reason, (cond, branch))

    def _operands(self, e: Call) -> tuple[tuple[Explanation, ...], list[Any]]:
        parts = [self.value(a) for a in e.args]
        kids = tuple(p[0] for p in parts if p[0] is not None)
        return kids, [p[1] for p in parts]

    def op_compare(self, e: Call, text: str) -> Explanation:
        kids, vals = self._operands(e)
        op = "=" if e.op == "!=" else e.op
        pair = _PAIRS[op]
        result = chain(pair, vals)
        reason = None
        if e.op == "!=":
            result = None if result is None else not result
        if result is not True:
            reason = self._compare_reason(e, vals, pair, result)
        return Explanation(text, result, reason, kids)

    def _compare_reason(self, e: Call, vals: list[Any], pair: Any, result: bool | None) -> str:
        args = e.args
        if e.op == "!=" and result is False:
            shown = ", ".join(self.describe(a, v) for a, v in zip(args, vals, strict=True))
            return f"all are equal: {shown}"
        # `!=` is unknown exactly when `=` is; either way look for the pair that decided it.
        wanted = None if result is None else False
        op = "=" if e.op == "!=" else e.op
        for i in range(len(vals) - 1):
            if pair(vals[i], vals[i + 1]) is not wanted:
                continue
            left = self.describe(args[i], vals[i])
            right = self.describe(args[i + 1], vals[i + 1])
            if wanted is False:
                first = args[i]
                if op == "=" and isinstance(first, Name) and literal_value(args[i + 1])[0]:
                    return (f"{first.name} is {_short(show_value(vals[i]), 80)}, "
                            f"not {_short(show_value(vals[i + 1]), 80)}")
                return f"{left} {op} {right} is false"
            missing = [a.name for a, v in ((args[i], vals[i]), (args[i + 1], vals[i + 1]))
                       if v is None and isinstance(a, Name)]
            if missing:
                return self.missing(missing[0])
            return f"cannot compare {left} with {right}"
        return "an operand is unknown"

    def op_member(self, e: Call, text: str) -> Explanation:
        kids, (x, seq) = self._operands(e)
        r = member(x, seq)
        reason = None
        if r is False:
            reason = f"{self.describe(e.args[0], x)} is not in {self.describe(e.args[1], seq)}"
        elif r is None:
            reason = self._unknown_reason(e, [x, seq], "a value and a sequence")
        return Explanation(text, r, reason, kids)

    def _unknown_reason(self, e: Call, vals: list[Any], wants: str) -> str:
        for a, v in zip(e.args, vals, strict=True):
            if v is None and isinstance(a, Name):
                return self.missing(a.name)
        shown = ", ".join(self.describe(a, v) for a, v in zip(e.args, vals, strict=True))
        return f"'{e.op}' expects {wants}, got {shown}"

    def op_exists(self, e: Call, text: str) -> Explanation:
        kids, vals = self._operands(e)
        missing = [a.name for a, v in zip(e.args, vals, strict=True)
                   if v is None and isinstance(a, Name)]
        if missing:
            if len(missing) == 1:
                return Explanation(text, False, self.missing(missing[0]), kids)
            return Explanation(text, False, ", ".join(missing) + " are missing", kids)
        return Explanation(text, True, None, kids)

    def op_strings(self, e: Call, text: str) -> Explanation:
        kids, (a, b) = self._operands(e)
        fn = starts_with if e.op == "starts-with?" else ends_with
        r = fn(a, b)
        reason = None
        if r is False:
            verb = "start" if e.op == "starts-with?" else "end"
            reason = f"{self.describe(e.args[0], a)} does not {verb} with {self.describe(e.args[1], b)}"
        elif r is None:
            reason = self._unknown_reason(e, [a, b], "two strings")
        return Explanation(text, r, reason, kids)

    def op_contains(self, e: Call, text: str) -> Explanation:
        kids, (a, b) = self._operands(e)
        r = contains(a, b)
        reason = None
        if r is False:
            reason = f"{self.describe(e.args[0], a)} does not contain {self.describe(e.args[1], b)}"
        elif r is None:
            reason = self._unknown_reason(e, [a, b], "a string and a string, or a sequence and a value")
        return Explanation(text, r, reason, kids)

    def op_subset(self, e: Call, text: str) -> Explanation:
        kids, (a, b) = self._operands(e)
        r = subset(a, b)
        reason = None
        if r is False:
            outside = [x for x in a if member(x, b) is False]
            reason = (f"{show_value(outside[0])} of {self.describe(e.args[0], a)} is not in "
                      f"{self.describe(e.args[1], b)}")
        elif r is None:
            reason = self._unknown_reason(e, [a, b], "two sequences")
        return Explanation(text, r, reason, kids)


_METHOD = {
    "and": "and", "or": "or", "not": "not", "if": "if",
    "=": "compare", "!=": "compare", "<": "compare", ">": "compare", "<=": "compare",
    ">=": "compare", "member?": "member", "exists?": "exists", "starts-with?": "strings",
    "ends-with?": "strings", "contains?": "contains", "subset?": "subset",
}
