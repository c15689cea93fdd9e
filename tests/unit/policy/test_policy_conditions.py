"""Every condition operator, its negation, ...IfExists and the set qualifiers, as one table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from updown.policy import Request, evaluate, parse_policy
from updown.policy.conditions import compile_condition

T2025 = datetime(2025, 1, 1, tzinfo=UTC)  # epoch 1735689600
ME = "eu-local:aaa"

# condition block, request fields, condition holds (→ Allow)
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # String
    ({"StringEquals": {"updown:ContentType": "image/png"}}, {"content_type": "image/png"}, True),
    ({"StringEquals": {"updown:ContentType": "image/png"}}, {"content_type": "image/PNG"}, False),
    ({"StringEquals": {"updown:ContentType": "image/png"}}, {}, False),
    ({"StringEquals": {"updown:ContentType": ["image/png", "image/jpeg"]}}, {"content_type": "image/jpeg"}, True),
    ({"StringEquals": {"updown:ContentType": "image/*"}}, {"content_type": "image/png"}, False),
    ({"StringEquals": {"updown:ContentType": "image/*"}}, {"content_type": "image/*"}, True),
    ({"StringNotEquals": {"updown:ContentType": ["image/png", "image/jpeg"]}}, {"content_type": "image/gif"}, True),
    ({"StringNotEquals": {"updown:ContentType": ["image/png", "image/jpeg"]}}, {"content_type": "image/png"}, False),
    ({"StringNotEquals": {"updown:ContentType": "image/png"}}, {}, True),
    ({"StringEqualsIgnoreCase": {"updown:ContentType": "IMAGE/png"}}, {"content_type": "image/PNG"}, True),
    ({"StringEqualsIgnoreCase": {"updown:ContentType": "image/png"}}, {"content_type": "image/gif"}, False),
    ({"StringNotEqualsIgnoreCase": {"updown:ContentType": "image/png"}}, {"content_type": "IMAGE/PNG"}, False),
    ({"StringNotEqualsIgnoreCase": {"updown:ContentType": "image/png"}}, {"content_type": "image/gif"}, True),
    ({"StringLike": {"updown:ContentType": "image/*"}}, {"content_type": "image/png"}, True),
    ({"StringLike": {"updown:ContentType": "image/*"}}, {"content_type": "text/plain"}, False),
    ({"StringLike": {"updown:ContentType": "image/?ng"}}, {"content_type": "image/png"}, True),
    ({"StringLike": {"updown:ContentType": "image/?ng"}}, {"content_type": "image/apng"}, False),
    ({"StringLike": {"updown:ContentType": "a${*}"}}, {"content_type": "a*"}, True),
    ({"StringLike": {"updown:ContentType": "a${*}"}}, {"content_type": "ab"}, False),
    ({"StringLike": {"updown:ContentType": "${?}${$}"}}, {"content_type": "?$"}, True),
    ({"StringLike": {"updown:ContentType": "${?}${$}"}}, {"content_type": "x$"}, False),
    ({"StringNotLike": {"updown:ContentType": "image/*"}}, {"content_type": "text/plain"}, True),
    ({"StringNotLike": {"updown:ContentType": "image/*"}}, {"content_type": "image/png"}, False),
    ({"StringNotLike": {"updown:ContentType": "image/*"}}, {}, True),
    ({"StringEqualsIfExists": {"updown:ContentType": "image/png"}}, {}, True),
    ({"StringEqualsIfExists": {"updown:ContentType": "image/png"}}, {"content_type": "text/plain"}, False),
    ({"StringLikeIfExists": {"updown:ContentType": "image/*"}}, {"content_type": "image/png"}, True),
    ({"StringNotEqualsIfExists": {"updown:ContentType": "image/png"}}, {"content_type": "image/png"}, False),
    # String with policy variables
    ({"StringEquals": {"updown:ObjectOwner": "${identity-id}"}}, {"object_owner": ME}, True),
    ({"StringEquals": {"updown:ObjectOwner": "${identity-id}"}}, {"object_owner": "eu-local:bbb"}, False),
    ({"StringEqualsIgnoreCase": {"updown:ObjectOwner": "${identity-id}"}}, {"object_owner": ME.upper()}, True),
    ({"StringEqualsIgnoreCase": {"updown:ObjectOwner": "${identity-id}"}}, {"object_owner": "x"}, False),
    ({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}, {"prefix": "home/bob/x", "username": "bob"}, True),
    ({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}, {"prefix": "home/bob/x"}, False),
    ({"StringEquals": {"aws:userid": "${jwt:sub}"}}, {"user_sub": "sub-1"}, True),
    ({"StringEquals": {"aws:userid": "${jwt:sub}"}}, {}, False),
    ({"StringEquals": {"updown:contenttype": "${s3:prefix}"}}, {"content_type": "x", "prefix": "x"}, True),
    # Numeric
    ({"NumericEquals": {"updown:ContentLength": "10"}}, {"content_length": 10}, True),
    ({"NumericEquals": {"updown:ContentLength": "10"}}, {"context": {"updown:ContentLength": "10.0"}}, True),
    ({"NumericEquals": {"updown:ContentLength": 10}}, {"content_length": 11}, False),
    ({"NumericEquals": {"updown:ContentLength": "10"}}, {"context": {"updown:ContentLength": "ten"}}, False),
    ({"NumericEquals": {"updown:ContentLength": "10"}}, {"context": {"updown:ContentLength": True}}, False),
    ({"NumericNotEquals": {"updown:ContentLength": "10"}}, {"content_length": 11}, True),
    ({"NumericNotEquals": {"updown:ContentLength": "10"}}, {"content_length": 10}, False),
    ({"NumericNotEquals": {"updown:ContentLength": "10"}}, {"context": {"updown:ContentLength": "ten"}}, True),
    ({"NumericLessThan": {"updown:ContentLength": "1000"}}, {"content_length": 999}, True),
    ({"NumericLessThan": {"updown:ContentLength": "1000"}}, {"content_length": 1000}, False),
    ({"NumericLessThan": {"updown:ContentLength": "1000"}}, {}, False),
    ({"NumericLessThanEquals": {"updown:ContentLength": "1000"}}, {"content_length": 1000}, True),
    ({"NumericLessThanEquals": {"updown:ContentLength": "1000"}}, {"content_length": 1001}, False),
    ({"NumericGreaterThan": {"updown:ContentLength": "0"}}, {"content_length": 0}, False),
    ({"NumericGreaterThan": {"updown:ContentLength": "0.5"}}, {"content_length": 1}, True),
    ({"NumericGreaterThanEquals": {"updown:ContentLength": "1"}}, {"content_length": 1}, True),
    ({"NumericGreaterThanEquals": {"updown:ContentLength": "1"}}, {"content_length": 0}, False),
    ({"NumericLessThanEquals": {"s3:max-keys": "100"}}, {"max_keys": 50}, True),
    ({"NumericLessThanEquals": {"s3:max-keys": "100"}}, {"max_keys": 1000}, False),
    ({"NumericLessThanIfExists": {"s3:max-keys": "100"}}, {}, True),
    ({"NumericLessThan": {"aws:EpochTime": "1735689601"}}, {"current_time": T2025}, True),
    ({"NumericLessThan": {"aws:EpochTime": "1735689600"}}, {"current_time": T2025}, False),
    ({"NumericLessThan": {"aws:CurrentTime": "1"}}, {"current_time": T2025}, False),
    # Date
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"current_time": T2025}, True),
    ({"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {"current_time": T2025}, False),
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {}, False),
    ({"DateLessThanEquals": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}}, {"current_time": T2025}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}}, {"current_time": T2025}, False),
    ({"DateGreaterThan": {"aws:CurrentTime": "2024-12-31"}}, {"current_time": T2025}, True),
    ({"DateGreaterThanEquals": {"aws:CurrentTime": "1735689600"}}, {"current_time": T2025}, True),
    ({"DateEquals": {"aws:CurrentTime": "1735689600"}}, {"current_time": T2025}, True),
    ({"DateEquals": {"aws:CurrentTime": "2025-01-01T01:00:00+01:00"}}, {"current_time": T2025}, True),
    ({"DateEquals": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}}, {"current_time": datetime(2025, 1, 1)}, True),
    ({"DateNotEquals": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}}, {"current_time": T2025}, False),
    ({"DateNotEquals": {"aws:CurrentTime": "2025-01-01T00:00:01Z"}}, {"current_time": T2025}, True),
    (
        {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
        {"context": {"aws:CurrentTime": "2025-06-01T00:00:00Z"}},
        True,
    ),
    (
        {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
        {"context": {"aws:CurrentTime": "1735689600"}},
        True,
    ),
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"context": {"aws:CurrentTime": "soon"}}, False),
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"context": {"aws:CurrentTime": True}}, False),
    ({"DateLessThanIfExists": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}, {}, True),
    # Bool
    ({"Bool": {"aws:SecureTransport": "true"}}, {"secure_transport": True}, True),
    ({"Bool": {"aws:SecureTransport": True}}, {"secure_transport": False}, False),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"secure_transport": False}, True),
    ({"Bool": {"aws:SecureTransport": "TRUE"}}, {"context": {"aws:SecureTransport": "true"}}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"context": {"aws:SecureTransport": "yes"}}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"context": {"aws:SecureTransport": 1}}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {}, False),
    ({"BoolIfExists": {"aws:SecureTransport": "true"}}, {}, True),
    ({"BoolIfExists": {"aws:SecureTransport": "true"}}, {"secure_transport": False}, False),
    # IP
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"source_ip": "203.0.113.7"}, True),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"source_ip": "198.51.100.1"}, False),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}, {"source_ip": "203.0.113.7"}, True),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"source_ip": "::1"}, False),
    ({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}, {"source_ip": "2001:db8::1"}, True),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"source_ip": "not-an-ip"}, False),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"context": {"aws:SourceIp": 5}}, False),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {}, False),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "203.0.113.7"}, True),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "10.1.2.3"}, False),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, True),
    ({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {}, True),
    # ARN (any key may carry an ARN; updown:ObjectOwner stands in here)
    ({"ArnLike": {"updown:ObjectOwner": "arn:aws:s3:::files/*"}}, {"object_owner": "arn:aws:s3:::files/a"}, True),
    ({"ArnLike": {"updown:ObjectOwner": "arn:aws:s3:::files/*"}}, {"object_owner": "files/a"}, True),
    ({"ArnLike": {"updown:ObjectOwner": "files/*"}}, {"object_owner": "arn:aws:s3:::other/a"}, False),
    ({"ArnLike": {"updown:ObjectOwner": "arn:aws:s3:::files/*"}}, {"object_owner": "arn:aws:s3:::FILES/a"}, False),
    ({"ArnEquals": {"updown:ObjectOwner": "arn:aws:s3:::files/a"}}, {"object_owner": "arn:aws:s3:::files/a"}, True),
    ({"ArnNotLike": {"updown:ObjectOwner": "arn:aws:s3:::files/*"}}, {"object_owner": "arn:aws:s3:::files/a"}, False),
    ({"ArnNotLike": {"updown:ObjectOwner": "arn:aws:s3:::files/*"}}, {"object_owner": "arn:aws:s3:::x/a"}, True),
    ({"ArnNotEquals": {"updown:ObjectOwner": "arn:aws:s3:::files/a"}}, {}, True),
    (
        {"ArnLike": {"updown:ObjectOwner": "arn:aws:s3:::files/${identity-id}/*"}},
        {"object_owner": f"files/{ME}/x"},
        True,
    ),
    # Null
    ({"Null": {"updown:ObjectOwner": "true"}}, {}, True),
    ({"Null": {"updown:ObjectOwner": "true"}}, {"object_owner": "x"}, False),
    ({"Null": {"updown:ObjectOwner": False}}, {"object_owner": "x"}, True),
    ({"Null": {"updown:ObjectOwner": "false"}}, {}, False),
    ({"Null": {"updown:groups": "true"}}, {"groups": ()}, True),
    # Set qualifiers on the multi-valued updown:groups
    ({"ForAnyValue:StringEquals": {"updown:groups": ["admin", "editors"]}}, {"groups": ("users", "editors")}, True),
    ({"ForAnyValue:StringEquals": {"updown:groups": ["admin", "editors"]}}, {"groups": ("users",)}, False),
    ({"ForAnyValue:StringEquals": {"updown:groups": "admin"}}, {}, False),
    ({"ForAnyValue:StringEqualsIfExists": {"updown:groups": "admin"}}, {}, True),
    ({"ForAllValues:StringLike": {"updown:groups": "team-*"}}, {"groups": ("team-a", "team-b")}, True),
    ({"ForAllValues:StringLike": {"updown:groups": "team-*"}}, {"groups": ("team-a", "x")}, False),
    # IAM's trap, kept: ForAllValues over an absent key holds
    ({"ForAllValues:StringLike": {"updown:groups": "team-*"}}, {}, True),
    ({"ForAnyValue:StringNotEquals": {"updown:groups": "admin"}}, {"groups": ("admin",)}, False),
    ({"ForAnyValue:StringNotEquals": {"updown:groups": "admin"}}, {"groups": ("admin", "x")}, True),
    ({"ForAllValues:StringNotEquals": {"updown:groups": "admin"}}, {"groups": ("x", "y")}, True),
    ({"ForAllValues:StringNotEquals": {"updown:groups": "admin"}}, {"groups": ("x", "admin")}, False),
    ({"StringEquals": {"updown:groups": "admin"}}, {"groups": ("x", "admin")}, True),
    ({"StringNotEquals": {"updown:groups": "admin"}}, {"groups": ("x", "admin")}, False),
    ({"StringEquals": {"updown:groups": "admin"}}, {"context": {"updown:groups": ["a", "admin"]}}, True),
    # Several operators and several keys are AND-ed
    (
        {"StringLike": {"updown:ContentType": "image/*"}, "NumericLessThan": {"updown:ContentLength": "100"}},
        {"content_type": "image/png", "content_length": 99},
        True,
    ),
    (
        {"StringLike": {"updown:ContentType": "image/*"}, "NumericLessThan": {"updown:ContentLength": "100"}},
        {"content_type": "image/png", "content_length": 100},
        False,
    ),
    (
        {"StringEquals": {"updown:ContentType": "image/png", "aws:SourceIp": "10.0.0.1"}},
        {"content_type": "image/png"},
        False,
    ),
]


def _holds(condition: dict[str, Any], fields: dict[str, Any]) -> bool:
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "files/*", "Condition": condition},
        },
        "t",
    )
    request = Request("s3:PutObject", "files/a", **{"identity_id": ME, **fields})
    return evaluate([policy], request).allowed


@pytest.mark.parametrize(("condition", "fields", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_condition_table_row_holds_as_listed(condition: dict[str, Any], fields: dict[str, Any], expected: bool) -> None:
    assert _holds(condition, fields) is expected


def test_condition_variable_without_value_makes_statement_not_match() -> None:
    condition = {"StringNotEquals": {"updown:ObjectOwner": "${aws:username}"}}
    # Negated, so it would hold for any owner; but ${aws:username} has no value.
    assert _holds(condition, {"object_owner": "x"}) is False
    assert _holds(condition, {"object_owner": "x", "username": "bob"}) is True


def test_condition_holds_without_a_variable_value_is_false() -> None:
    condition = compile_condition(
        "StringEquals", "updown:objectowner", ["${aws:username}"], "$", value_paths=["$"], variables_allowed=True
    )
    request = Request("s3:PutObject", "files/a", object_owner="bob", username="bob")
    assert condition.holds(request, {"aws:username": "bob"}) is True
    assert condition.holds(request, {}) is False
