"""Policy variables: tokens, escapes and resolution."""

from __future__ import annotations

import pytest

from updown.errors import PolicyError
from updown.policy.variables import Literal, Text, Variable, resolve, tokenize, variables_in


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", (Text(""),)),
        ("plain", (Text("plain"),)),
        ("$ {x}", (Text("$ {x}"),)),
        ("a/${aws:username}/b", (Text("a/"), Variable("aws:username"), Text("/b"))),
        ("${ JWT:Sub }", (Variable("jwt:sub"),)),
        ("${*}${?}${$}", (Literal("*"), Literal("?"), Literal("$"))),
        ("${identity-id}${identity-id}", (Variable("identity-id"), Variable("identity-id"))),
    ],
)
def test_tokenize_splits_text_escapes_and_variables(text: str, tokens: tuple[object, ...]) -> None:
    assert tokenize(text, "$", variables_allowed=True) == tokens


def test_tokenize_variable_in_2008_policy_raises_policy_error() -> None:
    with pytest.raises(PolicyError, match=r'\$\.X: policy variables need "Version": "2012-10-17"'):
        tokenize("${*}", "$.X", variables_allowed=False)


def test_resolve_substitutes_values_and_reports_missing_ones() -> None:
    tokens = tokenize("p/${aws:username}/${*}", "$", variables_allowed=True)
    assert variables_in(tokens) == frozenset({"aws:username"})
    assert resolve(tokens, {"aws:username": "bob"}) == "p/bob/*"
    assert resolve(tokens, {}) is None
