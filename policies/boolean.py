"""Parser of the boolean form: ``web and not (db or ops)``, ``role="admin"``, ``I<64 hex>``.

Grammar (precedence ``not`` > ``and`` > ``or``, both binary operators left-associative)::

    or_expr  = and_expr , { "or" , and_expr } ;
    and_expr = not_expr , { "and" , not_expr } ;
    not_expr = "not" , not_expr | "(" , or_expr , ")" | term ;
    term     = name , [ "=" , string ] ;
    name     = ( ALPHA | "_" | "-" ) , { ALNUM | "." | "_" | "-" } ;

A bare ``name`` means ``(= subject.name "true")`` (as in Ockam), ``name="v"`` means
``(= subject.name "v")`` and a bare identifier ``I…`` (64 hex digits) means
``(= subject.identifier "I…")``. Two differences from Ockam make the language consistent (and
every canonical s-expression read back as itself): ``true`` and ``false`` are the literals, and a
full name (``subject.has_credential``, ``resource.enabled``: one that starts with ``subject.``,
``resource.``, ``action.`` or ``env.``) is that attribute read as a boolean, not prefixed again
(``subject.admin="yes"`` is ``(= subject.admin "yes")``). Keywords are whole words: ``nota`` is a
name, not ``not a``.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from policies.check import check_call
from policies.errors import PolicyError
from policies.expr import Bool, Call, Expr, Name, Pos, Str, is_qualified
from policies.lexer import MAX_DEPTH, Source, read_string, skip_space

__all__ = ["parse_boolean"]

_WORD_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_IDENTIFIER: Final = re.compile(r"I[0-9a-fA-F]{64}")
_KEYWORDS: Final = frozenset({"and", "or", "not"})


class _Tok(NamedTuple):
    kind: str  # word ( ) = str eof
    value: str
    offset: int


def _tokenize(src: Source) -> list[_Tok]:
    text = src.text
    n = len(text)
    out: list[_Tok] = []
    i = skip_space(src, 0)
    while i < n:
        c = text[i]
        if c in "()=":
            out.append(_Tok(c, c, i))
            i += 1
        elif c == '"':
            value, j = read_string(src, i)
            out.append(_Tok("str", value, i))
            i = j
        elif c in _WORD_CHARS:
            j = i + 1
            while j < n and text[j] in _WORD_CHARS:
                j += 1
            out.append(_Tok("word", text[i:j], i))
            i = j
        else:
            raise src.error(i, f"unexpected character {c!r}: expected a name, 'and', 'or', "
                               "'not', '(' or ')'")
        i = skip_space(src, i)
    out.append(_Tok("eof", "", n))
    return out


def _show(tok: _Tok) -> str:
    if tok.kind == "eof":
        return "the end of the policy"
    if tok.kind == "str":
        return "a string"
    return repr(tok.value)


def parse_boolean(src: Source) -> Expr:
    return _Parser(src).parse()


class _Parser:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.toks = _tokenize(src)
        self.i = 0

    def fail(self, tok: _Tok, message: str) -> PolicyError:
        return self.src.error(tok.offset, message)

    def pos(self, tok: _Tok) -> Pos:
        return self.src.pos(tok.offset)

    def parse(self) -> Expr:
        toks = self.toks
        if toks[0].kind == "eof":
            raise self.fail(toks[0], "empty policy: expected a name, 'not' or '('")
        e = self.or_expr(0)
        end = toks[self.i]
        if end.kind != "eof":
            raise self.fail(end, f"expected 'and', 'or' or the end of the policy, found {_show(end)}")
        return e

    def _chain(self, op: str, depth: int) -> Expr:
        sub = self.and_expr if op == "or" else self.not_expr
        first_tok = self.toks[self.i]
        items = [sub(depth)]
        while self.toks[self.i].kind == "word" and self.toks[self.i].value == op:
            self.i += 1
            items.append(sub(depth))
        if len(items) == 1:
            return items[0]
        return check_call(op, tuple(items), self.pos(first_tok))

    def or_expr(self, depth: int) -> Expr:
        return self._chain("or", depth)

    def and_expr(self, depth: int) -> Expr:
        return self._chain("and", depth)

    def not_expr(self, depth: int) -> Expr:
        tok = self.toks[self.i]
        if tok.kind == "word" and tok.value == "not":
            self._deep(tok, depth + 1)
            self.i += 1
            return check_call("not", (self.not_expr(depth + 1),), self.pos(tok))
        if tok.kind == "(":
            self._deep(tok, depth + 1)
            self.i += 1
            e = self.or_expr(depth + 1)
            close = self.toks[self.i]
            if close.kind != ")":
                where = "{}:{}".format(*self.pos(tok))
                raise self.fail(close, f"expected 'and', 'or' or ')' to close the '(' at {where}, "
                                       f"found {_show(close)}")
            self.i += 1
            return e
        if tok.kind == "word" and tok.value not in _KEYWORDS:
            return self.term(tok)
        raise self.fail(tok, f"expected a name, 'not' or '(', found {_show(tok)}")

    def _deep(self, tok: _Tok, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(tok, f"the policy nests deeper than {MAX_DEPTH} levels")

    def term(self, tok: _Tok) -> Expr:
        word = tok.value
        if word[0].isdigit() or word[0] == ".":
            raise self.fail(tok, "expected a name made of letters, digits, '.', '-' and '_'; "
                                 "the first character cannot be a digit or a '.'")
        self.i += 1
        pos = self.pos(tok)
        nxt = self.toks[self.i]
        name = word if is_qualified(word) else "subject." + word
        if nxt.kind == "=":
            self.i += 1
            value = self.toks[self.i]
            if value.kind != "str":
                raise self.fail(value, f"expected a quoted string after '=', found {_show(value)}")
            self.i += 1
            return Call("=", (Name(name, pos), Str(value.value, self.pos(value))), pos)
        if word in ("true", "false"):
            return Bool(word == "true", pos)
        if is_qualified(word):
            return Name(word, pos)
        if _IDENTIFIER.fullmatch(word):
            return Call("=", (Name("subject.identifier", pos), Str("I" + word[1:].lower(), pos)),
                        pos)
        return Call("=", (Name(name, pos), Str("true", pos)), pos)
