"""Parser of the s-expression form: ``(and (= subject.role "admin") (member? resource.env ["dev",
"prod"]))``.

As in Ockam, several top-level values that start with an operator form one application
(``= subject.role "admin"`` is ``(= subject.role "admin")``). Sequences take their elements
separated by spaces or by commas.
"""

from __future__ import annotations

from policies.atoms import classify
from policies.check import check_call, check_policy, check_seq
from policies.errors import PolicyError
from policies.expr import Call, Expr, Name, Str, canonical_operator
from policies.lexer import MAX_DEPTH, Source, Token, tokenize

__all__ = ["parse_sexpr"]

_EXPECTED = "a string, a number, true, false, a name, '(' or '['"


def parse_sexpr(src: Source) -> Expr:
    return _Parser(src).parse()


class _Parser:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.tokens = tokenize(src)
        self.i = 0

    def fail(self, tok: Token, message: str) -> PolicyError:
        return self.src.error(tok.offset, message)

    def parse(self) -> Expr:
        toks = self.tokens
        first = toks[0]
        if first.kind == "eof":
            raise self.fail(first, "empty policy: expected an expression such as "
                                   "(= subject.role \"admin\"), or true or false")
        op = canonical_operator(first.value) if first.kind == "atom" else None
        if op is not None and toks[1].kind != "eof":
            # Ockam's shorthand: `= a b` is `(= a b)`.
            self.i = 1
            args: list[Expr] = []
            while toks[self.i].kind != "eof":
                args.append(self.expr(1))
            return check_policy(check_call(op, tuple(args), self.src.pos(first.offset)))
        e = self.expr(0)
        end = toks[self.i]
        if end.kind != "eof":
            raise self.fail(end, "expected the end of the policy after one expression "
                                 "(combine expressions with (and ...) or (or ...))")
        return check_policy(e)

    def expr(self, depth: int) -> Expr:
        tok = self.tokens[self.i]
        self.i += 1
        kind = tok.kind
        if kind == "str":
            return Str(tok.value, self.src.pos(tok.offset))
        if kind == "atom":
            e = classify(tok.value, self.src.pos(tok.offset))
            if isinstance(e, Name) and canonical_operator(e.name) is not None:
                raise self.fail(tok, f"'{e.name}' is an operator: write ({e.name} ...)")
            return e
        if kind == "(":
            return self.call(tok, depth + 1)
        if kind == "[":
            return self.seq(tok, depth + 1)
        if kind == ")":
            raise self.fail(tok, "unexpected ')' without a matching '('")
        if kind == "]":
            raise self.fail(tok, "unexpected ']' without a matching '['")
        if kind == ",":
            raise self.fail(tok, "a comma may only separate the elements of a sequence")
        raise self.fail(tok, f"unexpected end of the policy: expected {_EXPECTED}")

    def _deep(self, tok: Token, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(tok, f"the policy nests deeper than {MAX_DEPTH} levels")

    def call(self, open_tok: Token, depth: int) -> Call:
        self._deep(open_tok, depth)
        head = self.tokens[self.i]
        opened = "{}:{}".format(*self.src.pos(open_tok.offset))
        if head.kind == ")":
            raise self.fail(head, "empty list '()': expected an operator such as and, or, =")
        if head.kind != "atom":
            raise self.fail(head, "expected an operator (and, or, not, if, =, !=, <, >, <=, >=, "
                                  "member?, exists?, ...) after '('")
        op = canonical_operator(head.value)
        if op is None:
            raise self.fail(head, f"unknown operator {head.value!r}: expected one of and, or, "
                                  "not, if, =, !=, <, >, <=, >=, member? (in), exists?, "
                                  "starts-with?, ends-with?, contains?, subset?")
        self.i += 1
        args: list[Expr] = []
        while True:
            tok = self.tokens[self.i]
            if tok.kind == ")":
                self.i += 1
                break
            if tok.kind == "eof":
                raise self.fail(tok, f"expected ')' to close the '(' at {opened}")
            if tok.kind == "]":
                raise self.fail(tok, f"expected ')' to close the '(' at {opened}, found ']'")
            args.append(self.expr(depth))
        return check_call(op, tuple(args), self.src.pos(open_tok.offset))

    def seq(self, open_tok: Token, depth: int) -> Expr:
        self._deep(open_tok, depth)
        opened = "{}:{}".format(*self.src.pos(open_tok.offset))
        items: list[Expr] = []
        while True:
            tok = self.tokens[self.i]
            if tok.kind == "]":
                self.i += 1
                break
            if tok.kind == "eof":
                raise self.fail(tok, f"expected ']' to close the '[' at {opened}")
            if tok.kind == ")":
                raise self.fail(tok, f"expected ']' to close the '[' at {opened}, found ')'")
            if tok.kind == ",":
                raise self.fail(tok, "expected a sequence element before ','")
            items.append(self.expr(depth))
            nxt = self.tokens[self.i]
            if nxt.kind == ",":
                self.i += 1
                if self.tokens[self.i].kind in ("]", ",", "eof"):
                    raise self.fail(self.tokens[self.i], "expected a sequence element after ','")
        return check_seq(tuple(items), self.src.pos(open_tok.offset))
