"""The request: canonical resources, dot segments, and the keys it carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from updown.policy import Request, to_arn
from updown.policy.request import KeyValue, as_text, has_dot_segment

ME = "eu-local:aaa"


@pytest.mark.parametrize(
    ("resource", "arn"),
    [
        ("files/a.jpg", "arn:aws:s3:::files/a.jpg"),
        ("files", "arn:aws:s3:::files"),
        ("arn:aws:s3:::files/a", "arn:aws:s3:::files/a"),
        ("*", "*"),
    ],
)
def test_to_arn_plain_bucket_key_becomes_s3_arn(resource: str, arn: str) -> None:
    assert to_arn(resource) == arn
    assert Request("s3:GetObject", resource).arn == arn


@pytest.mark.parametrize(
    ("path", "dotted"),
    [
        ("a/../b", True),
        ("a/./b", True),
        ("a/..", True),
        ("../a", True),
        (".", True),
        ("a/...", False),
        ("a/..b", False),
        ("a/.hidden", False),
        ("a.b/c", False),
        ("abc", False),
    ],
)
def test_has_dot_segment_only_whole_dot_segments_count(path: str, dotted: bool) -> None:
    assert has_dot_segment(path) is dotted


def test_request_fields_fill_their_keys() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    request = Request(
        "S3:GetObject",
        "files/a",
        identity_id=ME,
        user_sub="sub-1",
        username="bob",
        groups=("admin", "x"),
        source_ip="10.0.0.1",
        secure_transport=True,
        current_time=now,
        object_owner="eu-local:bbb",
        content_length=10,
        content_type="image/png",
        prefix="public/",
        max_keys=5,
    )
    assert request.action_key == "s3:getobject"
    assert dict(request.keys) == {
        "cognito-identity.amazonaws.com:sub": (ME,),
        "identity-id": (ME,),
        "jwt:sub": ("sub-1",),
        "aws:userid": ("sub-1",),
        "aws:username": ("bob",),
        "updown:groups": ("admin", "x"),
        "aws:sourceip": ("10.0.0.1",),
        "aws:securetransport": (True,),
        "aws:currenttime": (now,),
        "aws:epochtime": (1735689600,),
        "updown:objectowner": ("eu-local:bbb",),
        "updown:contentlength": (10,),
        "updown:contenttype": ("image/png",),
        "s3:prefix": ("public/",),
        "s3:max-keys": (5,),
    }


def test_request_guest_userid_falls_back_to_identity() -> None:
    assert Request("a:b", "x", identity_id=ME).values_of("aws:userid") == (ME,)
    assert Request("a:b", "x").values_of("aws:userid") is None


@pytest.mark.parametrize("bad", ["", "eu-local:a/b", "/"])
def test_request_identity_empty_or_with_slash_counts_as_absent(bad: str) -> None:
    request = Request("a:b", "x", identity_id=bad, user_sub=bad, username=bad)
    assert request.variable("cognito-identity.amazonaws.com:sub") is None
    assert dict(request.keys) == {}
    via_context = Request("a:b", "x", context={"aws:username": bad, "identity-id": bad})
    assert via_context.variable("aws:username") is None
    assert via_context.variable("identity-id") is None
    as_list = Request("a:b", "x", context={"identity-id": [bad]})
    assert as_list.variable("identity-id") is None


def test_request_context_adds_overrides_and_removes_keys_case_insensitively() -> None:
    request = Request(
        "a:b",
        "x",
        identity_id=ME,
        content_type="text/plain",
        context={"UPDOWN:ContentType": "image/png", "identity-id": None, "updown:groups": ["a", "b"], "s3:max-keys": 7},
    )
    assert request.values_of("updown:contenttype") == ("image/png",)
    assert request.values_of("identity-id") is None
    assert request.values_of("cognito-identity.amazonaws.com:sub") == (ME,)
    assert request.values_of("updown:groups") == ("a", "b")
    assert request.variable("updown:groups") is None
    assert request.variable("s3:max-keys") == "7"


def test_request_fast_path_and_table_agree() -> None:
    plain = Request("a:b", "x", identity_id=ME, prefix="p/", object_owner="o", secure_transport=False)
    with_context = Request(
        "a:b", "x", identity_id=ME, prefix="p/", object_owner="o", secure_transport=False, context={}
    )
    for key in ("s3:prefix", "updown:objectowner", "aws:securetransport", "aws:sourceip"):
        assert plain.values_of(key) == with_context.values_of(key)
    assert plain.variable("identity-id") == with_context.variable("identity-id") == ME


def test_request_empty_groups_count_as_absent() -> None:
    assert Request("a:b", "x", groups=()).values_of("updown:groups") is None
    assert Request("a:b", "x", context={"updown:groups": []}).values_of("updown:groups") is None


def test_request_naive_current_time_is_read_as_utc() -> None:
    naive = Request("a:b", "x", current_time=datetime(2025, 1, 1))
    assert naive.values_of("aws:epochtime") == (1735689600,)
    assert naive.variable("aws:currenttime") == "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "x"),
        (True, "true"),
        (False, "false"),
        (5, "5"),
        (1.5, "1.5"),
        (datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "2025-01-01T00:00:00Z"),
    ],
)
def test_as_text_renders_values_as_iam_compares_them(value: KeyValue, text: str) -> None:
    assert as_text(value) == text
