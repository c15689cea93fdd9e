"""POST policies: the same fields as boto3's generate_presigned_post, and S3's checks of a form."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.auth
import botocore.signers
import pytest
from botocore.config import Config

from updown.core.postpolicy import presign_post, verify_post
from updown.core.sigv4 import Credentials, Signer
from updown.errors import (
    AccessDenied,
    EntityTooLarge,
    InvalidAccessKeyId,
    InvalidArgument,
    SignatureDoesNotMatch,
)

REGION = "eu-local-1"
ENDPOINT = "http://127.0.0.1:8123/s3"
FROZEN = datetime(2026, 1, 2, 3, 4, 5)
AKID = "AKIDPOSTPOLICY"
SECRET = "post-policy-secret"
TOKEN = "session/token+=="
CONDITIONS: list[Any] = [
    ["content-length-range", 1, 1000],
    ["eq", "$Content-Type", "image/png"],
    ["starts-with", "$x-amz-meta-title", ""],
    {"x-amz-meta-event": "42"},
]
FIELDS = {"Content-Type": "image/png", "x-amz-meta-title": "Sunset", "x-amz-meta-event": "42"}


@pytest.fixture(autouse=True)
def frozen_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FROZEN)
    monkeypatch.setattr(botocore.signers, "get_current_datetime", lambda *a, **k: FROZEN)


def boto_post(key: str, token: str | None = None, expires: int = 900) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    return client.generate_presigned_post(
        "files", key, Fields=dict(FIELDS), Conditions=list(CONDITIONS), ExpiresIn=expires
    )


def ours(key: str, token: str | None = None, expires: int = 900) -> dict[str, str]:
    signer = Signer(Credentials(AKID, SECRET, token), REGION)
    post = presign_post(
        signer, f"{ENDPOINT}/files", "files", key, now=FROZEN, expires=expires, fields=FIELDS, conditions=CONDITIONS
    )
    assert post.url == f"{ENDPOINT}/files"
    return post.fields


def check(form: dict[str, str], *, token: str | None = None, now: datetime = FROZEN, bucket: str = "files") -> Any:
    creds = Credentials(AKID, SECRET, token)
    return verify_post(form, bucket=bucket, credentials=lambda a: creds if a == AKID else None, now=now, region=REGION)


def resign(form: dict[str, str], document: dict[str, Any]) -> dict[str, str]:
    """The form with another policy document, properly signed (to reach the condition checks)."""
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signature = Signer(Credentials(AKID, SECRET), REGION).sign(policy, form["x-amz-date"][:8])
    return {**form, "policy": policy, "x-amz-signature": signature}


def document_of(form: dict[str, str]) -> dict[str, Any]:
    doc = json.loads(base64.b64decode(form["policy"]))
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("key", ["uploads/photo 1.png", "uploads/${filename}", "ü/é+%~=//x"])
@pytest.mark.parametrize("token", [None, TOKEN])
def test_presign_post_same_fields_as_boto3(key: str, token: str | None) -> None:
    boto = boto_post(key, token)
    assert boto["url"] == f"{ENDPOINT}/files"
    assert ours(key, token) == boto["fields"]


@pytest.mark.parametrize("token", [None, TOKEN])
def test_verify_post_boto3_form_accepted(token: str | None) -> None:
    form = boto_post("uploads/${filename}", token)["fields"]
    verified = check(form, token=token, now=FROZEN + timedelta(seconds=900))
    assert verified.access_key_id == AKID
    assert verified.key_for("cat.png") == "uploads/cat.png"
    assert (verified.min_length, verified.max_length) == (1, 1000)
    assert verified.fields["content-type"] == "image/png"
    assert verified.expiration == datetime(2026, 1, 2, 3, 19, 5, tzinfo=UTC)
    verified.check_length(1)
    verified.check_length(1000)


def test_verify_post_too_large_or_small_refused() -> None:
    verified = check(ours("k"))
    with pytest.raises(EntityTooLarge):
        verified.check_length(1001)
    with pytest.raises(InvalidArgument, match="smaller than the minimum"):
        verified.check_length(0)


def test_verify_post_no_length_range_accepts_any_size() -> None:
    signer = Signer(Credentials(AKID, SECRET), REGION)
    form = presign_post(signer, ENDPOINT, "files", "k", now=FROZEN, expires=60).fields
    verified = check(form)
    assert verified.max_length is None
    verified.check_length(10**12)


def test_verify_post_expired_refused() -> None:
    with pytest.raises(AccessDenied, match="Policy expired"):
        check(ours("k"), now=FROZEN + timedelta(seconds=901))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Content-Type", "text/html"),
        ("x-amz-meta-event", "43"),
        ("key", "other"),
    ],
)
def test_verify_post_condition_failed_refused(field: str, value: str) -> None:
    form = {**ours("k"), field: value}
    with pytest.raises(AccessDenied, match="Policy Condition failed"):
        check(form)


def test_verify_post_starts_with_key_prefix_enforced() -> None:
    form = {**ours("uploads/${filename}"), "key": "private/someone-else/x"}
    with pytest.raises(AccessDenied, match=r'\["starts-with", "\$key", "uploads/"\]'):
        check(form)
    assert check({**form, "key": "uploads/a/b.png"}).key == "uploads/a/b.png"


def test_verify_post_extra_field_refused() -> None:
    form = {**ours("k"), "x-amz-meta-unbound": "1", "acl": "public-read"}
    with pytest.raises(AccessDenied, match="Extra input fields: acl, x-amz-meta-unbound"):
        check(form)


def test_verify_post_field_names_case_insensitive_and_ignored_fields_allowed() -> None:
    form = {k.upper() if k.startswith("x-amz-meta") else k: v for k, v in ours("k").items()}
    form["x-ignore-tracking"] = "anything"
    assert check(form).fields["x-amz-meta-event"] == "42"


def test_verify_post_tampered_policy_refused() -> None:
    form = ours("k")
    doc = document_of(form)
    doc["conditions"][0] = ["content-length-range", 1, 10**9]
    tampered = {**form, "policy": base64.b64encode(json.dumps(doc).encode()).decode()}
    with pytest.raises(SignatureDoesNotMatch):
        check(tampered)
    with pytest.raises(SignatureDoesNotMatch):
        check({**form, "x-amz-signature": "0" * 64})


def test_verify_post_other_bucket_refused() -> None:
    with pytest.raises(AccessDenied, match="Policy Condition failed"):
        check(ours("k"), bucket="other")
    with pytest.raises(AccessDenied, match="bucket field"):
        check({**ours("k"), "bucket": "other"})


def test_verify_post_unknown_key_or_wrong_token_refused() -> None:
    form = ours("k", TOKEN)
    with pytest.raises(InvalidAccessKeyId):
        verify_post(form, bucket="files", credentials=lambda a: None, now=FROZEN, region=REGION)
    with pytest.raises(InvalidAccessKeyId, match="token"):
        check({**form, "x-amz-security-token": "forged"}, token=TOKEN)
    with pytest.raises(InvalidAccessKeyId, match="token"):
        check({k: v for k, v in form.items() if k != "x-amz-security-token"}, token=TOKEN)


@pytest.mark.parametrize(
    "missing", ["key", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"]
)
def test_verify_post_missing_field_refused(missing: str) -> None:
    form = {k: v for k, v in ours("k").items() if k != missing}
    with pytest.raises(InvalidArgument, match=f"field named '{missing}'"):
        check(form)


def test_verify_post_repeated_field_refused() -> None:
    pairs = [*ours("k").items(), ("KEY", "other")]
    with pytest.raises(InvalidArgument, match="exactly one value"):
        verify_post(pairs, bucket="files", credentials=Credentials(AKID, SECRET), now=FROZEN, region=REGION)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("x-amz-algorithm", "AWS4-HMAC-SHA1", "only supports"),
        ("x-amz-credential", "AKIDPOSTPOLICY/20260102/eu-local-1/s3", "mal-formed"),
        ("x-amz-credential", "AKIDPOSTPOLICY/20260102/us-east-1/s3/aws4_request", "region 'us-east-1' is wrong"),
        ("x-amz-date", "2026-01-02T03:04:05Z", "ISO8601"),
        ("x-amz-date", "20260103T030405Z", "credential date"),
    ],
)
def test_verify_post_bad_credential_fields_refused(field: str, value: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check({**ours("k"), field: value})


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("not base64!", "Invalid JSON"),
        (base64.b64encode(b"{nope").decode(), "Invalid JSON"),
        (base64.b64encode(b"[]").decode(), "Invalid JSON"),
        (base64.b64encode(b'{"conditions": []}').decode(), "missing expiration"),
        (base64.b64encode(b'{"expiration": "2030-01-01T00:00:00Z"}').decode(), "missing conditions"),
        (base64.b64encode(b'{"expiration": "soon", "conditions": []}').decode(), "Invalid 'expiration'"),
        (base64.b64encode(b'{"expiration": "2030-01-01T00:00:00", "conditions": []}').decode(), "Invalid 'expiration'"),
    ],
)
def test_verify_post_malformed_policy_refused(policy: str, message: str) -> None:
    form = ours("k")
    signature = Signer(Credentials(AKID, SECRET), REGION).sign(policy, form["x-amz-date"][:8])
    with pytest.raises(InvalidArgument, match=message):
        check({**form, "policy": policy, "x-amz-signature": signature})


@pytest.mark.parametrize(
    "condition",
    [
        ["content-length-range", 10, 1],
        ["content-length-range", "1", 10],
        ["content-length-range", True, 10],
        ["in", "$key", "k"],
        ["eq", "key", "k"],
        ["eq", "$key", 5],
        ["eq", "$key"],
        {"a": "1", "b": "2"},
        "key",
    ],
)
def test_verify_post_invalid_condition_refused(condition: Any) -> None:
    form = ours("k")
    doc = document_of(form)
    doc["conditions"].append(condition)
    with pytest.raises(InvalidArgument, match="Invalid"):
        check(resign(form, doc))


def test_verify_post_length_ranges_intersect() -> None:
    form = ours("k")
    doc = document_of(form)
    doc["conditions"].append(["CONTENT-LENGTH-RANGE", 5, 2000])
    verified = check(resign(form, doc))
    assert (verified.min_length, verified.max_length) == (5, 1000)


@pytest.mark.parametrize("expires", [0, 604_801])
def test_presign_post_lifetime_out_of_range_refused(expires: int) -> None:
    with pytest.raises(InvalidArgument):
        presign_post(Signer(Credentials(AKID, SECRET), REGION), ENDPOINT, "files", "k", now=FROZEN, expires=expires)
