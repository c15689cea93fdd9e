"""The policy grammar: what loads, and every fault refused with the JSON path where it sits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from updown.errors import PolicyError
from updown.policy import parse_policy

V = "2012-10-17"


def _doc(*statements: Any, version: str | None = V) -> dict[str, Any]:
    doc: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        doc["Version"] = version
    return doc


def _ok(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "files/*", **extra}


BAD: list[tuple[Any, str]] = [
    ("{", "$: not valid JSON"),
    ([], "$: a policy must be a JSON object"),
    ({"Version": V, "Statement": [_ok()], "Foo": 1}, "$.Foo: unknown policy element"),
    ({"Version": "2020-01-01", "Statement": [_ok()]}, "$.Version"),
    ({"Version": V, "Id": 5, "Statement": [_ok()]}, "$.Id"),
    ({"Version": V}, "$.Statement: Statement must be"),
    ({"Version": V, "Statement": []}, "$.Statement: Statement must be"),
    ({"Version": V, "Statement": "x"}, "$.Statement: Statement must be"),
    (_doc(1), "$.Statement[0]: a statement must be a JSON object"),
    (_doc(_ok(), _ok(Principal="*")), "$.Statement[1]: a role policy names no Principal"),
    (_doc(_ok(NotPrincipal="*")), "$.Statement[0]: a role policy names no Principal"),
    (_doc(_ok(Actions="s3:*")), "$.Statement[0].Actions: unknown statement element"),
    (_doc(_ok(Sid="my sid")), "$.Statement[0].Sid"),
    (_doc(_ok(Sid=3)), "$.Statement[0].Sid"),
    (_doc(_ok(Effect="allow")), '$.Statement[0].Effect: Effect must be "Allow" or "Deny"'),
    (_doc({"Action": "s3:GetObject", "Resource": "*"}), "$.Statement[0].Effect"),
    (_doc(_ok(NotAction="s3:PutObject")), "$.Statement[0]: a statement needs exactly one of Action and NotAction"),
    (_doc({"Effect": "Allow", "Resource": "*"}), "$.Statement[0]: a statement needs exactly one of Action"),
    (_doc({"Effect": "Allow", "Action": "*"}), "$.Statement[0]: a statement needs exactly one of Resource"),
    (_doc(_ok(NotResource="*")), "$.Statement[0]: a statement needs exactly one of Resource and NotResource"),
    (_doc(_ok(Action=[])), "$.Statement[0].Action: action must be a string or a non-empty list"),
    (_doc(_ok(Action=5)), "$.Statement[0].Action: action must be"),
    (_doc(_ok(Action=["s3:GetObject", 5])), "$.Statement[0].Action[1]: each action must be a non-empty string"),
    (_doc(_ok(Action=["s3:GetObject", ""])), "$.Statement[0].Action[1]"),
    (_doc(_ok(Action="GetObject")), "$.Statement[0].Action: 'GetObject' is not an action"),
    (_doc(_ok(Action="s3:${aws:username}")), "$.Statement[0].Action"),
    (_doc(_ok(Action="s3:Get Object")), "$.Statement[0].Action"),
    (_doc(_ok(Resource=5)), "$.Statement[0].Resource: resource must be"),
    (_doc(_ok(Resource=["files/a", {}])), "$.Statement[0].Resource[1]"),
    (_doc(_ok(Resource="files/${nope}/*")), "$.Statement[0].Resource: unknown policy variable ${nope}"),
    (_doc(_ok(Resource=["files/a", "files/${aws:username"])), "$.Statement[0].Resource[1]: unterminated"),
    (_doc(_ok(Resource="files/${updown:groups}/*")), "$.Statement[0].Resource: ${updown:groups} holds a list"),
    (
        _doc(_ok(Resource="files/${aws:username}/*"), version=None),
        '$.Statement[0].Resource: policy variables need "Version"',
    ),
    (
        _doc(_ok(Resource="files/${aws:username}/*"), version="2008-10-17"),
        "$.Statement[0].Resource: policy variables need",
    ),
    (_doc(_ok(Condition=[])), "$.Statement[0].Condition: Condition must be a non-empty object"),
    (_doc(_ok(Condition={})), "$.Statement[0].Condition: Condition must be"),
    (_doc(_ok(Condition={"StringLike": "x"})), "$.Statement[0].Condition.StringLike: an operator takes"),
    (_doc(_ok(Condition={"StringLike": {}})), "$.Statement[0].Condition.StringLike: an operator takes"),
    (
        _doc(_ok(), _ok(Condition={"StringLikes": {"s3:prefix": "a"}})),
        "$.Statement[1].Condition.StringLikes[\"s3:prefix\"]: unknown condition operator 'StringLikes'",
    ),
    (
        _doc(_ok(Condition={"ForSomeValues:StringLike": {"s3:prefix": "a"}})),
        '$.Statement[0].Condition["ForSomeValues:StringLike"]["s3:prefix"]: unknown set qualifier',
    ),
    (
        _doc(_ok(Condition={"BinaryEquals": {"s3:prefix": "YQ=="}})),
        '$.Statement[0].Condition.BinaryEquals["s3:prefix"]: unknown condition operator',
    ),
    (_doc(_ok(Condition={"IfExists": {"s3:prefix": "a"}})), "unknown condition operator 'IfExists'"),
    (_doc(_ok(Condition={"NullIfExists": {"s3:prefix": "true"}})), "Null takes neither IfExists"),
    (_doc(_ok(Condition={"ForAnyValue:Null": {"s3:prefix": "true"}})), "Null takes neither IfExists"),
    (
        _doc(_ok(Condition={"Null": {"s3:prefix": "maybe"}})),
        '$.Statement[0].Condition.Null["s3:prefix"]: Null takes one value, true or false',
    ),
    (_doc(_ok(Condition={"Null": {"s3:prefix": ["true", "false"]}})), "Null takes one value"),
    (
        _doc(_ok(Condition={"StringLike": {"s3:Prefixx": "a"}})),
        "$.Statement[0].Condition.StringLike[\"s3:Prefixx\"]: unknown condition key 's3:Prefixx'",
    ),
    (
        _doc(_ok(Condition={"StringLike": {"s3:prefix": []}})),
        '$.Statement[0].Condition.StringLike["s3:prefix"]: a condition needs at least one value',
    ),
    (
        _doc(_ok(Condition={"StringLike": {"s3:prefix": ["a", {"b": 1}]}})),
        '$.Statement[0].Condition.StringLike["s3:prefix"][1]: a condition value must be',
    ),
    (_doc(_ok(Condition={"StringLike": {"s3:prefix": None}})), '$.Statement[0].Condition.StringLike["s3:prefix"]'),
    (
        _doc(_ok(Condition={"StringLike": {"s3:prefix": "${bogus}"}})),
        '$.Statement[0].Condition.StringLike["s3:prefix"]: unknown policy variable',
    ),
    (
        _doc(_ok(Condition={"NumericLessThan": {"updown:ContentLength": "abc"}})),
        "$.Statement[0].Condition.NumericLessThan[\"updown:ContentLength\"]: 'abc' is not a number",
    ),
    (
        _doc(_ok(Condition={"NumericLessThan": {"updown:ContentLength": ["1", "x"]}})),
        "$.Statement[0].Condition.NumericLessThan[\"updown:ContentLength\"][1]: 'x' is not a number",
    ),
    (
        _doc(_ok(Condition={"DateLessThan": {"aws:CurrentTime": "yesterday"}})),
        "is not an ISO 8601 date or epoch seconds",
    ),
    (_doc(_ok(Condition={"Bool": {"aws:SecureTransport": "yes"}})), "'yes' is not true or false"),
    (_doc(_ok(Condition={"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}})), "is not an IP address or CIDR block"),
    (_doc(_ok(Sid="A"), _ok(Sid="A")), "$.Statement: Sid 'A' is used twice"),
    ({"Version": V, "Statement": _ok(Effect="Maybe")}, "$.Statement.Effect"),
]


@pytest.mark.parametrize(("document", "where"), BAD, ids=[w for _, w in BAD])
def test_parse_policy_malformed_document_names_the_json_path(document: Any, where: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(document, "p")
    assert info.value.detail.startswith("policy 'p': ")
    assert where in info.value.detail


def test_parse_policy_single_statement_object_loads() -> None:
    policy = parse_policy({"Version": V, "Statement": _ok(Sid="One")}, "p")
    assert [s.label for s in policy.statements] == ["p#One"]


def test_parse_policy_statement_without_sid_is_labelled_by_index() -> None:
    policy = parse_policy(_doc(_ok(Sid="First"), _ok()), "p")
    assert [s.label for s in policy.statements] == ["p#First", "p#1"]
    assert policy.statements[1].decision.reason == "allowed by statement p#1"


def test_parse_policy_json_text_loads_like_the_object() -> None:
    document = _doc(
        _ok(Condition={"NumericLessThan": {"updown:ContentLength": 100}, "Bool": {"aws:SecureTransport": True}})
    )
    policy = parse_policy(json.dumps(document), "p")
    assert policy.document == document
    assert policy.version == V
    assert [c.values for c in policy.statements[0].conditions] == [("100",), ("true",)]


def test_parse_policy_short_resource_becomes_an_s3_arn() -> None:
    policy = parse_policy(_doc(_ok(Resource=["files/public/*", "arn:aws:s3:::x", "*"])), "p")
    assert [g.source for g in policy.statements[0].resources] == ["arn:aws:s3:::files/public/*", "arn:aws:s3:::x", "*"]


def test_parse_policy_missing_version_without_variables_loads_as_2008() -> None:
    policy = parse_policy(_doc(_ok(), version=None), "p")
    assert policy.version == "2008-10-17"


def test_parse_policy_statement_variables_collect_resources_and_conditions() -> None:
    statement = _ok(
        Resource="files/${identity-id}/*",
        Condition={"StringEquals": {"updown:ObjectOwner": "${aws:username}"}},
    )
    policy = parse_policy(_doc(statement), "p")
    assert policy.statements[0].variables == frozenset({"identity-id", "aws:username"})


def test_parse_policy_variable_names_are_case_insensitive() -> None:
    policy = parse_policy(_doc(_ok(Resource="files/${AWS:UserName}/*")), "p")
    assert policy.statements[0].variables == frozenset({"aws:username"})
