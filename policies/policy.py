""":class:`Policy`: a parsed, checked and compiled policy.

    policy = Policy.parse('(and (= subject.role "admin") (= resource.env "prod"))')
    env = Environment.build(subject={"role": "admin"}, resource={"env": "prod"})
    policy.evaluate(env)          # True: allowed
    policy.explain(env).render()  # why (each sub-expression with its result and reason)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from policies.check import validate
from policies.compiler import Fn, compile_bool
from policies.environment import Environment
from policies.errors import PolicyError
from policies.explain import Explanation, explain
from policies.expr import Bool, Expr, Name, Seq
from policies.expr import Call as _Call
from policies.lexer import MAX_DEPTH, MAX_POLICY_CHARS
from policies.lint import LintWarning, lint
from policies.parser import Grammar, parse
from policies.printer import render

__all__ = ["Policy"]

_log = logging.getLogger("policies")


def _depth(e: Expr) -> int:
    """Nesting of calls and sequences in ``e`` (what the s-expression parser bounds)."""
    deepest = 0
    stack: list[tuple[Expr, int]] = [(e, 0)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, _Call | Seq):
            d += 1
            deepest = max(deepest, d)
            stack.extend((child, d) for child in (node.args if isinstance(node, _Call)
                                                  else node.items))
    return deepest


def _check_canonical(expr: Expr, text: str) -> None:
    """Every policy's canonical text reads back: it is stored and shown as that text, which can
    be longer or nest deeper than what was written (``a`` is ``(= subject.a "true")``)."""
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError(f"the policy's canonical form is {len(text)} characters, longer than "
                          f"the {MAX_POLICY_CHARS} a policy may have")
    depth = _depth(expr)
    if depth > MAX_DEPTH:
        raise PolicyError(f"the policy's canonical form nests {depth} levels deep, deeper than "
                          f"the {MAX_DEPTH} a policy may have")


class Policy:
    """An immutable policy. Equal policies have equal canonical text."""

    __slots__ = ("_fn", "expr", "grammar", "text")

    expr: Expr
    text: str
    grammar: Grammar | None
    _fn: Fn

    def __init__(self, expr: Expr) -> None:
        """A policy from a syntax tree built by hand; the tree is checked as a parsed one is,
        and must read back from its canonical text (``(not x)`` with a short name ``x`` cannot:
        that text is the boolean form's ``(not (= subject.x "true"))``)."""
        self._init(validate(expr), None)
        again, grammar = parse(self.text)
        if again != self.expr:
            raise PolicyError(f"{self.text} reads back as {render(again)} ({grammar} form); "
                              "use full attribute names (subject.x) where a boolean is expected")
        self.grammar = grammar

    def _init(self, expr: Expr, grammar: Grammar | None) -> None:
        self.expr = expr
        self.grammar = grammar
        self.text = render(expr)
        _check_canonical(expr, self.text)
        self._fn = compile_bool(expr)

    @classmethod
    def parse(cls, text: str | bytes) -> Policy:
        """Parse the boolean form (``web and not db``) or the s-expression form
        (``(= subject.role "admin")``); :class:`PolicyError` with line and column otherwise."""
        expr, grammar = parse(text)
        policy = cls.__new__(cls)
        policy._init(expr, grammar)
        return policy

    @classmethod
    def allow_all(cls) -> Policy:
        return cls(Bool(True))

    @classmethod
    def deny_all(cls) -> Policy:
        return cls(Bool(False))

    def evaluate(self, env: Environment | Mapping[str, Any]) -> bool:
        """True only when the policy evaluates to true (false and unknown deny)."""
        values = env._values if type(env) is Environment else Environment.of(env)._values
        try:
            return self._fn(values) is True
        except Exception:  # never expected; an authorization check fails closed regardless
            _log.exception("policy evaluation failed; denying: %s", self.text)
            return False

    def truth(self, env: Environment | Mapping[str, Any]) -> bool | None:
        """The three-valued result: True, False or None (unknown)."""
        values = env._values if type(env) is Environment else Environment.of(env)._values
        result: bool | None = self._fn(values)
        return result

    def explain(self, env: Environment | Mapping[str, Any]) -> Explanation:
        """The tree of sub-results; ``.result`` equals :meth:`truth`, ``.allowed`` :meth:`evaluate`."""
        environment = env if type(env) is Environment else Environment.of(env)
        return explain(self.expr, environment._values, environment.dropped)

    def lint(self) -> list[LintWarning]:
        """Warnings: unknown attribute namespaces, comparisons of constants, ..."""
        return lint(self.expr)

    @property
    def names(self) -> frozenset[str]:
        """The attribute names the policy reads."""
        found: set[str] = set()
        stack: list[Expr] = [self.expr]
        while stack:
            e = stack.pop()
            if isinstance(e, Name):
                found.add(e.name)
            elif isinstance(e, Seq):
                stack.extend(e.items)
            elif isinstance(e, _Call):
                stack.extend(e.args)
        return frozenset(found)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Policy({self.text!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)
