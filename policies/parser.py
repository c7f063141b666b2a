"""Parse policy text in either form: the boolean form is tried first, then the s-expression form
(as Ockam does). When both fail, the error of the form the text most looks like is reported, with
its line and column."""

from __future__ import annotations

import re
from typing import Literal

from policies.boolean import parse_boolean
from policies.errors import PolicyError
from policies.expr import Expr, canonical_operator
from policies.lexer import IDCHARS, MAX_POLICY_CHARS, Source, skip_space
from policies.sexpr import parse_sexpr

__all__ = ["Grammar", "parse"]

Grammar = Literal["boolean", "s-expression"]


def parse(text: str | bytes) -> tuple[Expr, Grammar]:
    """Parse ``text``; return the tree and the grammar that accepted it. PolicyError otherwise."""
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise PolicyError(f"the policy is not valid UTF-8 (byte {e.start})") from None
    if not isinstance(text, str):
        raise PolicyError(f"a policy is text, not {type(text).__name__}")
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError(f"the policy is longer than {MAX_POLICY_CHARS} characters")
    src = Source(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise src.error(e.start, "the policy holds a lone surrogate, not a character") from None
    try:
        return parse_boolean(src), "boolean"
    except PolicyError as e:
        boolean_error = e
    try:
        return parse_sexpr(src), "s-expression"
    except PolicyError as e:
        sexpr_error = e
    raise _choose(src, boolean_error, sexpr_error)


# `(` then an operator other than `not`: never valid in the boolean form.
_SEXPR_CALL = re.compile(
    r"\(\s*(?:and|or|if|=|!=|<|>|<=|>=|member\?|in|exists\?|starts-with\?|ends-with\?|"
    r"contains\?|subset\?)(?=[\s()\[\]\"]|$)")


def _first_word(src: Source, i: int) -> str:
    text = src.text
    j = i
    while j < len(text) and text[j] in IDCHARS:
        j += 1
    return text[i:j]


def _choose(src: Source, boolean: PolicyError, sexpr: PolicyError) -> PolicyError:
    text = src.text
    try:
        i = skip_space(src, 0)
    except PolicyError as e:
        return e
    if i >= len(text) or _SEXPR_CALL.search(text):
        return sexpr
    c = text[i]
    if c == "(":
        try:
            j = skip_space(src, i + 1)
        except PolicyError:
            return sexpr
        word = _first_word(src, j)
        if word and word != "not" and canonical_operator(word) is not None:
            return sexpr
    elif c in "[\"" or c.isdigit():
        return sexpr
    else:
        word = _first_word(src, i)
        if word and word != "not" and canonical_operator(word) is not None:
            return sexpr
    b = (boolean.line or 0, boolean.column or 0)
    s = (sexpr.line or 0, sexpr.column or 0)
    if c == "(":
        return sexpr if s >= b else boolean
    return sexpr if s > b else boolean
