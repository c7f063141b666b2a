"""Parser and printer: both forms, canonical text, errors with line and column, limits."""

from __future__ import annotations

import math

import pytest

from policies import Policy, PolicyError
from policies.expr import Bool, Call, Float, Int, Name, Seq, Str
from policies.lexer import MAX_DEPTH, MAX_POLICY_CHARS

ID = "I" + "3f" * 32

# Every example policy of the spec (§1.15 and the grammar sections) and its canonical text.
SPEC_EXAMPLES = [
    ("(= subject.has_credential true)", "(= subject.has_credential true)"),
    ('(= subject.component "global_value")', '(= subject.component "global_value")'),
    ("component.db or component.web",
     '(or (= subject.component.db "true") (= subject.component.web "true"))'),
    ("component.web", '(= subject.component.web "true")'),
    ("component.NOT_web", '(= subject.component.NOT_web "true")'),
    ('(= subject.component "edge")', '(= subject.component "edge")'),
    ('(= subject.component "control")', '(= subject.component "control")'),
    ('(= subject.component "telegraf")', '(= subject.component "telegraf")'),
    ('(= subject.component "influxdb")', '(= subject.component "influxdb")'),
    ('(= subject.app "app1")', '(= subject.app "app1")'),
    (f'(= subject.identifier "{ID}")', f'(= subject.identifier "{ID}")'),
    (f'(or (= subject.identifier "{ID}") (= subject.has_credential true))',
     f'(or (= subject.identifier "{ID}") (= subject.has_credential true))'),
    ('(and subject.has_credential (= subject.ockam-role "enroller"))',
     '(and subject.has_credential (= subject.ockam-role "enroller"))'),
    ('(and (= resource.version 1) (= subject.name "John") (member? "John" resource.admins))',
     '(and (= resource.version 1) (= subject.name "John") (member? "John" resource.admins))'),
    ('(or (= subject.component "web") (= subject.component "database"))',
     '(or (= subject.component "web") (= subject.component "database"))'),
    ('(or (= subject.application "Smart Factory") (and (= subject.department "Field Engineering")'
     ' (= subject.city "San Francisco")))',
     '(or (= subject.application "Smart Factory") (and (= subject.department "Field Engineering")'
     ' (= subject.city "San Francisco")))'),
    ("(web or not database) and analytics",
     '(and (or (= subject.web "true") (not (= subject.database "true"))) '
     '(= subject.analytics "true"))'),
    ("(a and b) or (b or (not c))",
     '(or (and (= subject.a "true") (= subject.b "true")) '
     '(or (= subject.b "true") (not (= subject.c "true"))))'),
    ("external.db-production", '(= subject.external.db-production "true")'),
    ('(= subject.trust_context_id "1b5e4e1c")', '(= subject.trust_context_id "1b5e4e1c")'),
    ("(= resource.trust_context_id subject.trust_context_id)",
     "(= resource.trust_context_id subject.trust_context_id)"),
    ('(= subject.has_credential "true")', '(= subject.has_credential "true")'),
    ('= subject.a "b"', '(= subject.a "b")'),
    ("and (or a b) (not c)", "(and (or a b) (not c))"),
    ('name="string value"', '(= subject.name "string value")'),
    (ID, f'(= subject.identifier "{ID}")'),
    ('(member? subject.db ["db1", "db2"])', '(member? subject.db ["db1" "db2"])'),
    ("(= 1 1)", "(= 1 1)"),
    ("(and)", "(and)"),
]


@pytest.mark.parametrize(("text", "canonical"), SPEC_EXAMPLES)
def test_spec_examples_parse_to_canonical_text(text: str, canonical: str) -> None:
    policy = Policy.parse(text)
    assert policy.text == canonical
    assert Policy.parse(canonical) == policy
    assert Policy.parse(canonical).text == canonical


@pytest.mark.parametrize(("text", "grammar"), [
    ("web and db", "boolean"),
    ("true", "boolean"),
    ("(not a)", "boolean"),
    ('(= subject.a "x")', "s-expression"),
    ("(and)", "s-expression"),
])
def test_the_boolean_form_is_tried_first(text: str, grammar: str) -> None:
    assert Policy.parse(text).grammar == grammar


@pytest.mark.parametrize(("text", "canonical"), [
    ("true", "true"),
    ("  false  ", "false"),
    (";; allow everyone\ntrue", "true"),
    ("true and web", '(and true (= subject.web "true"))'),
    ("not false", "(not false)"),
    ("subject.has_credential", "subject.has_credential"),
    ("subject.has_credential and not resource.locked",
     "(and subject.has_credential (not resource.locked))"),
    ('resource.env="prod"', '(= resource.env "prod")'),
    ("subject.a?", "subject.a?"),
    ("a and b and c", '(and (= subject.a "true") (= subject.b "true") (= subject.c "true"))'),
    ("a or b or c", '(or (= subject.a "true") (= subject.b "true") (= subject.c "true"))'),
    ("a or b and c", '(or (= subject.a "true") (and (= subject.b "true") (= subject.c "true")))'),
    ("not a and b", '(and (not (= subject.a "true")) (= subject.b "true"))'),
    ("not(a)", '(not (= subject.a "true"))'),
    ("-a and _b", '(and (= subject.-a "true") (= subject._b "true"))'),
    ("nota", '(= subject.nota "true")'),
    ('role="admin" or role = "ops"', '(or (= subject.role "admin") (= subject.role "ops"))'),
    ("I" + "AB" * 32, f'(= subject.identifier "I{"ab" * 32}")'),
    ('(in subject.r ["a" "b"])', '(member? subject.r ["a" "b"])'),
    ("(= subject.x 1.5)", "(= subject.x 1.5)"),
    ("(= subject.x 1.)", "(= subject.x 1.0)"),
    ("(= subject.x 1e3)", "(= subject.x 1000.0)"),
    ("(= subject.x 1e20)", "(= subject.x 1e+20)"),
    ("(= subject.x 0x1p3)", "(= subject.x 8.0)"),
    ("(= subject.x -0x10)", "(= subject.x -16)"),
    ("(= subject.x +5)", "(= subject.x 5)"),
    ("(= subject.x inf -inf nan nan:0x1)", "(= subject.x +inf -inf nan nan)"),
    ('(= subject.x "tab\\there \\"q\\" back\\\\slash \\u{1}")',
     '(= subject.x "tab\\there \\"q\\" back\\\\slash \\u{1}")'),
    ('(= subject.x "\\\'")', '(= subject.x "\'")'),
    ('(= subject.x "\\0")', '(= subject.x "\\u{0}")'),
    ('(member? 1 [1, 2,3])', "(member? 1 [1 2 3])"),
    ("(member? subject.x [[1 2] [3]])", "(member? subject.x [[1 2] [3]])"),
    ("(< 1 2.5)", "(< 1 2.5)"),
    ("(= $x 1)", "(= $x 1)"),
    ("(and\n  ;; first\n  (= subject.a \"x\")  (; second ;)\n  (= subject.b \"y\"))",
     '(and (= subject.a "x") (= subject.b "y"))'),
])
def test_canonical_text(text: str, canonical: str) -> None:
    assert Policy.parse(text).text == canonical
    assert Policy.parse(canonical).text == canonical


@pytest.mark.parametrize(("text", "line", "column", "needle"), [
    ('(= subject.role "admin"', 1, 24, "expected ')' to close the '(' at 1:1"),
    ("(and (= subject.a 1)\n     (foo 2))", 2, 7, "unknown operator 'foo'"),
    ('(and\n  (= subject.a "x")\n  (not))', 3, 3, "'not' takes exactly 1 argument, got 0"),
    ("web and", 1, 8, "expected a name, 'not' or '('"),
    ("web or or db", 1, 8, "found 'or'"),
    ("(web and db", 1, 12, "to close the '(' at 1:1"),
    ("web and db)", 1, 11, "expected 'and', 'or' or the end of the policy"),
    ("a andb", 1, 3, "found 'andb'"),
    ('"abc"', 1, 1, "a policy must be an operation"),
    ("42", 1, 1, "a policy must be an operation"),
    ('(= subject.a "x\\q")', 1, 16, "invalid escape"),
    ('(= subject.a "x', 1, 14, "unclosed string"),
    ("(= subject.a 99999999999999999999)", 1, 14, "out of the 64-bit range"),
    ("(= subject.a #x)", 1, 14, "invalid token '#x'"),
    ('(member? subject.a ["x",, "y"])', 1, 25, "expected a sequence element"),
    ('(member? subject.a ["x", ])', 1, 26, "expected a sequence element after ','"),
    ("(member? subject.a [, 1])", 1, 21, "expected a sequence element before ','"),
    ("(= a 1) (= b 2)", 1, 9, "expected the end of the policy"),
    ("()", 1, 2, "empty list '()'"),
    ("(= and 1)", 1, 4, "'and' is an operator"),
    ("and", 1, 1, "'and' is an operator"),
    ("[1 2]", 1, 1, "a policy must be an operation"),
    ("(= subject.a {})", 1, 14, "unexpected character '{'"),
    ("role=admin", 1, 6, "expected a quoted string after '='"),
    ("1abc", 1, 1, "invalid token '1abc'"),
    (".abc", 1, 1, "the first character cannot be a digit or a '.'"),
    ("(; unclosed", 1, 1, "unclosed block comment"),
    ("; x", 1, 1, "a comment starts with ';;'"),
    ('(exists? "a")', 1, 10, "'exists?' expects attribute names"),
    ("(and 1)", 1, 6, "'and' expects a boolean, found a number 1"),
    ("foo.bar?", 1, 8, "unexpected character '?'"),
    ("(if 1 true false)", 1, 5, "the condition of 'if' expects a boolean"),
    ('(not "x")', 1, 6, "'not' expects a boolean"),
    ('(starts-with? 1 "a")', 1, 15, "'starts-with?' expects strings"),
    ('(subset? "a" [1])', 1, 10, "'subset?' expects sequences"),
    ("(contains? 1 2)", 1, 12, "'contains?' expects a string or a sequence"),
    ('(contains? "ab" 2)', 1, 17, "expects a string to find"),
    ('(member? subject.a "x")', 1, 20, "'member?' expects a sequence"),
    ('(= subject.a [1 "a"])', 1, 17, "the elements of a sequence must have one type"),
    ('(= subject.a "\\u{d800}")', 1, 15, "not a Unicode scalar value"),
    ('(= subject.a "\\ff")', 1, 14, "not valid UTF-8"),
    ("(if true 1 2)", 1, 10, "expects a boolean, found a number 1"),
    ("(= x 1]", 1, 7, "found ']'"),
    ("[1 2", 1, 5, "expected ']' to close the '[' at 1:1"),
    ("(= subject.a [1 2)", 1, 18, "expected ']' to close the '[' at 1:14, found ')'"),
    ("(!= subject.a)", 1, 1, "'!=' takes 2 or more arguments, got 1"),
    ("(= subject.a)", 1, 1, "'=' takes 2 or more arguments"),
    ("(member? 1 [1] [2])", 1, 1, "'member?' takes exactly 2 arguments, got 3"),
    ("(if true false)", 1, 1, "'if' takes exactly 3 arguments"),
    ('(= subject.a"x")', 1, 13, "expected a space between"),
    ('(= "x"subject.a)', 1, 7, "expected a space or a bracket after the string"),
    ("(not (= a))", 1, 6, "'=' takes 2 or more arguments"),
    ("", 1, 1, "empty policy"),
    ("  \n ;; only a comment\n", 3, 1, "empty policy"),
    ('(= subject.a "line\nbreak")', 1, 19, "control character"),
    ("(and\t(= subject.a\u00a0\"x\"))", 1, 18, "unexpected character"),
])
def test_errors_carry_line_and_column(text: str, line: int, column: int, needle: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.parse(text)
    e = info.value
    assert (e.line, e.column) == (line, column), str(e)
    assert needle in e.message, e.message
    assert str(e).startswith(f"{line}:{column}: ")


def nest(depth: int) -> str:
    return "(not " * (depth - 1) + "(and)" + ")" * (depth - 1)


def test_nesting_limit_is_a_clean_error() -> None:
    deep_ok = Policy.parse(nest(MAX_DEPTH))
    assert deep_ok.truth({}) is (MAX_DEPTH % 2 == 1)
    assert deep_ok.explain({}).result is deep_ok.truth({})
    assert Policy.parse(deep_ok.text) == deep_ok
    with pytest.raises(PolicyError, match="nests deeper than"):
        Policy.parse(nest(MAX_DEPTH + 1))
    with pytest.raises(PolicyError, match="nests deeper than"):
        Policy.parse("(member? 1 " + "[" * 2000 + "]" * 2000 + ")")
    with pytest.raises(PolicyError, match="nests deeper than"):
        Policy.parse("not " * 2000 + "a")
    with pytest.raises(PolicyError, match="nests deeper than"):
        Policy.parse("(" * 5000 + "a" + ")" * 5000)


def test_size_limit() -> None:
    big = '(member? subject.r [' + ' '.join(['"x"'] * (MAX_POLICY_CHARS // 4)) + '])'
    assert len(big) > MAX_POLICY_CHARS
    with pytest.raises(PolicyError, match="longer than"):
        Policy.parse(big)
    fits = '(member? subject.r [' + ' '.join(f'"{i}"' for i in range(5000)) + '])'
    assert Policy.parse(fits).truth({"subject.r": "4999"}) is True


def test_bytes_and_non_text() -> None:
    assert Policy.parse(b'(= subject.a "\xc3\xa9")').truth({"subject.a": "é"}) is True
    with pytest.raises(PolicyError, match="not valid UTF-8"):
        Policy.parse(b'(= subject.a "\xff")')
    with pytest.raises(PolicyError, match="lone surrogate"):
        Policy.parse('(= subject.a "\ud800")')
    with pytest.raises(PolicyError, match="a policy is text"):
        Policy.parse(42)  # type: ignore[arg-type]


def test_trees_built_by_hand_are_checked() -> None:
    p = Policy(Call("and", (Call("=", (Name("subject.role"), Str("admin"))),
                            Call("member?", (Name("resource.env"), Seq((Str("a"), Str("b"))))))))
    assert p.text == '(and (= subject.role "admin") (member? resource.env ["a" "b"]))'
    assert Policy(Call("in", (Int(1), Seq((Int(1),))))).text == "(member? 1 [1])"
    assert Policy(Call("=", (Float(math.nan), Float(1.0)))).text == "(= nan 1.0)"
    assert Policy(Name("subject.has_credential")).grammar == "boolean"
    assert Policy(Call("and", (Name("x"), Bool(True)))).text == "(and x true)"
    bad = [
        Call("nope", ()),
        Call("not", ()),
        Call("and", (Int(1),)),
        Call("=", (Name("has space"), Int(1))),
        Call("=", (Name("true"), Int(1))),
        Call("=", (Name("and"), Int(1))),
        Call("=", (Name("inf"), Int(1))),
        Call("=", (Int(2**63), Int(1))),
        Call("=", (Int(True), Int(1))),
        Call("=", (Str("\ud800"), Str("x"))),
        Call("=", (Seq((Int(1), Str("a"))), Int(1))),
        Call("not", (Name("x"),)),
        Call("not", (Call("not", (Name("web"),)),)),
        Str("x"),
        Name("web"),
    ]
    for tree in bad:
        with pytest.raises(PolicyError):
            Policy(tree)  # type: ignore[arg-type]
    with pytest.raises(PolicyError):
        Policy("(= 1 1)")  # type: ignore[arg-type]
    deep: Call | Bool = Bool(True)
    for _ in range(MAX_DEPTH + 1):
        deep = Call("not", (deep,))
    with pytest.raises(PolicyError, match="nests deeper"):
        Policy(deep)


def test_policy_value_semantics() -> None:
    a = Policy.parse("web and db")
    b = Policy.parse('(and (= subject.web "true") (= subject.db "true"))')
    assert a == b and hash(a) == hash(b) and str(a) == b.text
    assert repr(a) == f"Policy({a.text!r})"
    assert a.names == {"subject.web", "subject.db"}
    assert Policy.allow_all().evaluate({}) is True
    assert Policy.deny_all().evaluate({}) is False


@pytest.mark.parametrize(("text", "needle"), [
    ('(= foo.bar "x")', "unknown attribute namespace in 'foo.bar'"),
    ('(= role "x")', "unknown attribute namespace in 'role'"),
    ('(= subject.subject.admin "true")', "doubled namespace"),
    ("(= 1 1)", "compares constants only"),
    ("(!= subject.a subject.b subject.c)", "not all equal"),
    ("(and)", "(and) with 0 arguments is true"),
    ("(or (= subject.a 1))", "(or) with 1 argument is its only argument"),
    ("(exists?)", "without names is always true"),
])
def test_lint_warnings(text: str, needle: str) -> None:
    warnings = Policy.parse(text).lint()
    assert any(needle in w.message for w in warnings), warnings
    assert all(w.line is not None and w.column is not None for w in warnings)


def test_clean_policies_have_no_warnings() -> None:
    for text in ['(and (= subject.role "admin") (= resource.env "prod"))', "web and not db",
                 "(< env.now 1800000000)", '(= action.id "handle_message")', "true"]:
        assert Policy.parse(text).lint() == []


def test_lint_warning_positions() -> None:
    (w,) = Policy.parse('(and\n  (= subject.a "x")\n  (= wrong.b "y"))').lint()
    assert (w.line, w.column) == (3, 6)
    assert str(w).startswith("3:6: ")
    assert w.to_dict() == {"line": 3, "column": 6, "message": w.message}
