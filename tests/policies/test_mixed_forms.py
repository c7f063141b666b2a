"""Mixing the two policy forms is named as such, at the first piece of the other form
(issue 10, item 7)."""

from __future__ import annotations

import pytest

from policies import Policy, PolicyError
from tests.conftest import Cli, assert_one_line_error


@pytest.mark.parametrize(("text", "line", "column", "needle"), [
    ('web and (= subject.role "admin")', 1, 9, "an s-expression (= ...)"),
    ('(= subject.role "admin") and web', 1, 26, "'and' between two expressions"),
    ('(and web role="admin")', 1, 10, 'role="..." belongs to the boolean form'),
    ('role="admin" or (member? subject.x ["a"])', 1, 17, "(member? ...)"),
    ('(and (= subject.a "x")\n     (b or c))', 2, 9, "'or' between two expressions"),
    ("web and [1]", 1, 9, "a sequence"),
    ('= subject.a "b" and web', 1, 17, "'and'"),
])
def test_mixed_forms_are_named_at_the_right_column(text: str, line: int, column: int,
                                                   needle: str) -> None:
    with pytest.raises(PolicyError) as e:
        Policy.parse(text)
    assert (e.value.line, e.value.column) == (line, column), str(e.value)
    assert "mixes the two forms" in e.value.message and needle in e.value.message


@pytest.mark.parametrize("text", ["(not (= a))", "(and and)", "web and", '(and (= a "b")',
                                  "(and (= subject.x 1) ;; a or b\n true)"])
def test_other_errors_are_not_called_mixing(text: str) -> None:
    try:
        Policy.parse(text)
    except PolicyError as e:
        assert "mixes" not in e.message


def test_the_cli_says_so_in_one_line(cli: Cli) -> None:
    r = cli("policy", "lint", '(= subject.role "admin") and web', ok=False)
    assert_one_line_error(r, "1:26", "mixes the two forms")
