"""Parse policy text in either form: the boolean form is tried first, then the s-expression form
(as Ockam does). When both fail, the error of the form the text most looks like is reported, with
its line and column."""

from __future__ import annotations

import re
from typing import Literal

from policies.boolean import parse_boolean
from policies.errors import PolicyError
from policies.expr import Expr, canonical_operator
from policies.lexer import IDCHARS, MAX_POLICY_CHARS, Source, read_string, skip_space
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
    raise _mixed(src) or _choose(src, boolean_error, sexpr_error)


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


# -- mixing the two forms --------------------------------------------------------------------

_INFIX = frozenset({"and", "or"})


def _loose_tokens(src: Source) -> list[tuple[str, str, int]]:
    """(kind, text, offset) of words, brackets and strings, skipping space and comments; stops
    quietly at the first lexical error (this only looks for a form's landmarks)."""
    text = src.text
    n = len(text)
    out: list[tuple[str, str, int]] = []
    try:
        i = skip_space(src, 0)
        while i < n:
            c = text[i]
            if c in "()[],":
                out.append((c, c, i))
                i += 1
            elif c == '"':
                value, j = read_string(src, i)
                out.append(("str", value, i))
                i = j
            elif c in IDCHARS:
                j = i + 1
                while j < n and text[j] in IDCHARS:
                    j += 1
                out.append(("word", text[i:j], i))
                i = j
            else:
                break
            i = skip_space(src, i)
    except PolicyError:
        pass
    return out


def _is_call(tokens: list[tuple[str, str, int]], k: int) -> bool:
    """Whether tokens[k] is '(' followed by an operator other than ``not`` (s-expression only)."""
    if tokens[k][0] != "(" or k + 1 >= len(tokens) or tokens[k + 1][0] != "word":
        return False
    word = tokens[k + 1][1]
    return word != "not" and canonical_operator(word) is not None


def _ends_operand(tok: tuple[str, str, int]) -> bool:
    kind, word, _ = tok
    return kind in (")", "]", "str") or (kind == "word" and canonical_operator(word) is None)


def _starts_operand(tok: tuple[str, str, int]) -> bool:
    kind, word, _ = tok
    return kind in ("(", "[", "str") or (kind == "word" and canonical_operator(word) is None)


def _landmarks(tokens: list[tuple[str, str, int]]) -> list[tuple[str, int, str]]:
    """(form, offset, what) of the pieces only one form has, in order."""
    out: list[tuple[str, int, str]] = []
    for k, (kind, word, offset) in enumerate(tokens):
        if _is_call(tokens, k):
            out.append(("s-expression", offset, f"an s-expression ({tokens[k + 1][1]} ...)"))
        elif kind == "[":
            out.append(("s-expression", offset, "a sequence [...]"))
        elif kind != "word":
            continue
        elif k == 0 and word != "not" and canonical_operator(word) is not None:
            out.append(("s-expression", offset, f"an s-expression ({word} ...)"))
        elif (word in _INFIX and k > 0 and _ends_operand(tokens[k - 1])
              and k + 1 < len(tokens) and _starts_operand(tokens[k + 1])):
            out.append(("boolean", offset, f"'{word}' between two expressions"))
        elif (word.endswith("=") and canonical_operator(word) is None and k + 1 < len(tokens)
              and tokens[k + 1][0] == "str" and tokens[k + 1][2] == offset + len(word)):
            out.append(("boolean", offset, f'{word}"..."'))
    return out


def _mixed(src: Source) -> PolicyError | None:
    """The error for a policy that mixes the two forms, at the first piece of the form it did
    not start in; None when it does not look mixed."""
    marks = _landmarks(_loose_tokens(src))
    if not marks:
        return None
    first = marks[0][0]
    for form, offset, what in marks:
        if form != first:
            if form == "boolean":
                fix = ("write (and a b)" if "'and'" in what else "write (or a b)" if "'or'" in what
                       else f'write (= subject.{what[:-6]} "...")')
            else:
                fix = "write the whole policy in one form"
            return src.error(offset, f"this policy mixes the two forms: it is written in the "
                                     f"{first} form, and {what} belongs to the {form} form; {fix}")
    return None
