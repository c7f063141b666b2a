"""Property tests: printer/parser round trip on generated trees, evaluation of generated
policies on generated environments never raises (and explain agrees), any input parses or raises
PolicyError, and Kleene-logic identities hold."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Environment, Policy, PolicyError
from policies.check import name_ok
from policies.expr import Bool, Call, Expr, Float, Int, Name, Seq, Str
from policies.values import eq, order

NAMES = ["subject.a", "subject.b", "subject.role", "subject.age", "subject.groups",
         "resource.id", "resource.env", "action.id", "env.now", "subject.has_credential"]

names = st.one_of(
    st.sampled_from(NAMES),
    st.from_regex(r"(subject|resource|action|env)\.[a-zA-Z_][a-zA-Z0-9_.\-?!]{0,12}",
                  fullmatch=True).filter(name_ok),
).map(Name)

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
strs = texts.map(Str)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int)
floats = st.floats(allow_nan=True, allow_infinity=True).map(Float)
bools = st.booleans().map(Bool)
scalars = st.one_of(strs, ints, floats, bools)


def seqs_of(elements: st.SearchStrategy[Expr]) -> st.SearchStrategy[Seq]:
    return st.lists(elements, max_size=4).map(lambda xs: Seq(tuple(xs)))


# A sequence's literal elements have one type; names may mix in.
seqs = st.one_of(
    seqs_of(st.one_of(strs, names)),
    seqs_of(st.one_of(ints, floats, names)),
    seqs_of(bools),
    seqs_of(seqs_of(ints)),
)


def _extend(sub: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    values = st.one_of(scalars, names, seqs, sub)
    return st.one_of(
        st.lists(sub, max_size=4).map(lambda xs: Call("and", tuple(xs))),
        st.lists(sub, max_size=4).map(lambda xs: Call("or", tuple(xs))),
        sub.map(lambda x: Call("not", (x,))),
        st.tuples(sub, sub, sub).map(lambda t: Call("if", t)),
        st.tuples(st.sampled_from(["=", "!=", "<", ">", "<=", ">="]),
                  st.lists(values, min_size=2, max_size=3)).map(
            lambda t: Call(t[0], tuple(t[1]))),
        st.tuples(values, st.one_of(seqs, names)).map(lambda t: Call("member?", t)),
        st.tuples(st.one_of(seqs, names), values).map(lambda t: Call("contains?", t)),
        st.tuples(st.one_of(seqs, names), st.one_of(seqs, names)).map(
            lambda t: Call("subset?", t)),
    )


_leaves = st.one_of(
    bools,
    names,
    st.tuples(names, scalars).map(lambda t: Call("=", t)),
    st.lists(names, max_size=3).map(lambda xs: Call("exists?", tuple(xs))),
    st.tuples(st.sampled_from(["starts-with?", "ends-with?", "contains?"]),
              st.one_of(strs, names), st.one_of(strs, names)).map(
        lambda t: Call(t[0], (t[1], t[2]))),
)


def trees() -> st.SearchStrategy[Expr]:
    """Boolean-valued trees that pass the checks."""
    return st.recursive(_leaves, _extend, max_leaves=12)


policies = trees().map(Policy)

env_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        texts,
        st.sampled_from(["true", "false", "1", "-2.5", "1e3", "admin", ""]),
        st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    ),
    lambda inner: st.lists(inner, max_size=4).map(tuple),
    max_leaves=6,
)
environments = st.dictionaries(st.sampled_from(NAMES), env_values, max_size=8).map(
    Environment.of)


@settings(max_examples=300, deadline=None)
@given(trees())
def test_printer_parser_round_trip(tree: Expr) -> None:
    policy = Policy(tree)
    again = Policy.parse(policy.text)
    assert again.expr == policy.expr
    assert again.text == policy.text
    assert again.grammar == policy.grammar


@settings(max_examples=250, deadline=None)
@given(policies, environments)
def test_evaluation_never_raises_and_explain_agrees(policy: Policy, env: Environment) -> None:
    result = policy.truth(env)
    assert result in (True, False, None)
    assert policy.evaluate(env) is (result is True)
    why = policy.explain(env)
    assert why.result is result
    assert why.to_dict()["result"] == why.outcome
    assert isinstance(why.render(), str)


@settings(max_examples=150, deadline=None)
@given(policies, policies, environments)
def test_kleene_identities(p: Policy, q: Policy, env: Environment) -> None:
    a, b = p.expr, q.expr
    not_ = lambda x: Call("not", (x,))  # noqa: E731
    def truth(tree: Expr) -> bool | None:
        return Policy(tree).truth(env)

    assert truth(not_(not_(a))) is p.truth(env)
    assert truth(not_(Call("and", (a, b)))) is truth(Call("or", (not_(a), not_(b))))
    assert truth(not_(Call("or", (a, b)))) is truth(Call("and", (not_(a), not_(b))))
    assert truth(Call("and", (a, b))) is truth(Call("and", (b, a)))
    assert truth(Call("or", (a, b))) is truth(Call("or", (b, a)))
    assert truth(Call("or", (a, not_(a)))) in (True, None)


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_policy_error(text: str) -> None:
    _parse_or_policy_error(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_policy_error(data: bytes) -> None:
    _parse_or_policy_error(data)


TOKENS = ["(", ")", "[", "]", ",", "and", "or", "not", "if", "=", "!=", "<", ">=", "member?",
          "in", "exists?", "contains?", "subset?", "starts-with?", "subject.a", "resource.b",
          "web", '"x"', '"a\\"b"', "1", "-2", "1.5", "nan", "0x1f", "true", "false", ";; c\n",
          "(; c ;)", "I" + "ab" * 32, "role=", '"', "\\", "#", "$x"]


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", "", "\n"]))
def test_token_soup_parses_or_raises_policy_error(tokens: list[str], sep: str) -> None:
    policy = _parse_or_policy_error(sep.join(tokens))
    if policy is not None:
        assert Policy.parse(policy.text) == policy
        assert policy.truth({"subject.a": "x"}) in (True, False, None)


def _parse_or_policy_error(text: str | bytes) -> Policy | None:
    try:
        policy = Policy.parse(text)
    except PolicyError as e:
        assert e.message
        assert (e.line is None) == (e.column is None)
        return None
    assert Policy.parse(policy.text) == policy
    return policy


@settings(max_examples=400, deadline=None)
@given(env_values, env_values)
def test_comparisons_are_symmetric(a: Any, b: Any) -> None:
    assert eq(a, b) is eq(b, a)
    ab, ba = order(a, b), order(b, a)
    if ab is None:
        assert ba is None
    elif ab in (-1, 0, 1):
        assert ba == -ab
    if eq(a, b) is True and not _has_nan(a):
        assert order(a, b) == 0


def _has_nan(v: Any) -> bool:
    if isinstance(v, tuple):
        return any(_has_nan(x) for x in v)
    return isinstance(v, float) and math.isnan(v)
