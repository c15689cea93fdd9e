"""core.sigv4: canonical forms, and every way a signed request is refused, with S3's messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from updown.core.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    Signer,
    amz_date,
    canonical_uri,
    parse_amz_date,
    query_pairs,
    signing_key,
)
from updown.core.sigv4verify import (
    CredentialSource,
    RequestParts,
    VerifiedRequest,
    parse_authorization_header,
    parse_presigned,
    verify,
)
from updown.errors import (
    AccessDenied,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestExpired,
    SignatureDoesNotMatch,
)

REGION = "eu-local-1"
CREDS = Credentials("AKIDVERIFY", "verify-secret")
NOW = 1_767_323_045  # 2026-01-02T03:04:05Z
HOST = "127.0.0.1:8123"
URL = f"http://{HOST}/s3/files/a%20b.png"


def parts_for(url: str, method: str = "PUT", headers: dict[str, str] | None = None) -> RequestParts:
    target = url.split("://", 1)[1].partition("/")[2]
    path, _, query = f"/{target}".partition("?")
    raw = [(b"host", HOST.encode())] + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return RequestParts(method, path.encode(), query.encode(), raw)


def presigned() -> RequestParts:
    url = Signer(CREDS, REGION).presign("PUT", URL, expires=900, now=NOW, headers={"content-type": "image/png"})
    return parts_for(url, headers={"content-type": "image/png"})


def check(
    parts: RequestParts,
    *,
    credentials: CredentialSource = CREDS,
    now: float = NOW,
    max_expires: int = 604_800,
    payload_hash: str | None = None,
) -> VerifiedRequest:
    return verify(
        parts, credentials=credentials, now=now, region=REGION, max_expires=max_expires, payload_hash=payload_hash
    )


# ----------------------------------------------------------------- canonical forms


@pytest.mark.parametrize(
    ("raw", "normalize", "expected"),
    [
        ("", False, "/"),
        (b"", False, "/"),
        ("/a b/ü", False, "/a%20b/%C3%BC"),
        ("/a b/ü".encode(), False, "/a%20b/%C3%BC"),
        (b"/already%20fine/x~y", False, "/already%20fine/x~y"),
        ("/lower%2fcase%7e%41", False, "/lower%2Fcase~A"),
        ("/bad%zz%", False, "/bad%25zz%25"),
        ("/a+b=c", False, "/a%2Bb%3Dc"),
        ("//a//b/", False, "//a//b/"),
        ("//a//b/", True, "/a/b/"),
        ("/a/b/../c/./d", True, "/a/c/d"),
        ("/a/b/..", True, "/a/"),
        ("/a/b/.", True, "/a/b/"),
        ("/..", True, "/"),
        ("/a/%2E%2E/b", True, "/b"),
    ],
)
def test_canonical_uri_encodes_segments_as_s3(raw: str | bytes, normalize: bool, expected: str) -> None:
    assert canonical_uri(raw, normalize=normalize) == expected


def test_query_pairs_str_and_bytes_same_canonical_pairs() -> None:
    raw = "b=2&&a=x+y&flag&%7e=%2f&c=%E1%88%B4&d=ሴ"
    expected = [("b", "2"), ("a", "x%2By"), ("flag", ""), ("~", "%2F"), ("c", "%E1%88%B4"), ("d", "%E1%88%B4")]
    assert query_pairs(raw) == expected
    assert query_pairs(raw.encode()) == expected


def test_parse_amz_date_refuses_malformed_and_impossible_dates() -> None:
    assert parse_amz_date("20260102T030405Z") == NOW
    assert amz_date(NOW) == "20260102T030405Z"
    assert amz_date(datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))) == "20260102T030405Z"
    for bad in ("20260230T000000Z", "2026-01-02T03:04:05Z", "20260102T030405", "٢٠٢٦0102T030405Z"):
        assert parse_amz_date(bad) is None


def test_signing_key_cached_and_day_specific() -> None:
    a = signing_key("s", "20260102", REGION, "s3")
    assert a is signing_key("s", "20260102", REGION, "s3")
    assert a != signing_key("s", "20260103", REGION, "s3")


# ----------------------------------------------------------------- signing


def test_signer_day_change_new_scope() -> None:
    signer = Signer(CREDS, REGION)
    assert signer.stamp(NOW) == ("20260102T030405Z", "AKIDVERIFY/20260102/eu-local-1/s3/aws4_request")
    assert signer.stamp(NOW + 86_400)[1] == "AKIDVERIFY/20260103/eu-local-1/s3/aws4_request"
    assert signer.sign("x", "20260102") != signer.sign("x", "20260103")


@pytest.mark.parametrize("expires", [0, -1, 604_801])
def test_presign_expires_out_of_range_refused(expires: int) -> None:
    with pytest.raises(InvalidArgument):
        Signer(CREDS, REGION).presign("GET", URL, expires=expires, now=NOW)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Files.Example:443/k", "files.example"),
        ("http://files.example:80/k", "files.example"),
        ("http://user:pw@files.example:8080/k", "files.example:8080"),
        ("http://[::1]:80/k", "[::1]:80"),
        ("http://files.example", "files.example"),
    ],
)
def test_presign_signed_host_as_botocore(url: str, host: str) -> None:
    signed = Signer(CREDS, REGION).presign_explained("GET", url, expires=60, now=NOW)
    assert f"\nhost:{host}\n" in signed.canonical_request


def test_presign_url_with_query_and_fragment_keeps_query_first() -> None:
    url = Signer(CREDS, REGION).presign("GET", f"{URL}?uploadId=u%2B1&partNumber=2#frag", expires=60, now=NOW)
    assert url.startswith(f"{URL}?uploadId=u%2B1&partNumber=2&X-Amz-Algorithm=")
    assert "#" not in url
    assert check(parts_for(url, "GET")) is not None


def test_sign_headers_url_query_signed_and_verified() -> None:
    signed = Signer(CREDS, REGION).sign_headers(
        "POST", f"{URL}?uploads", now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), headers=[("X-Amz-Meta-A", "1")]
    )
    assert "\nuploads=\n" in signed.canonical_request
    headers = {k.lower(): v for k, v in signed.headers.items()} | {"x-amz-meta-a": "1"}
    verified = check(parts_for(f"{URL}?uploads", "POST", headers))
    assert verified.payload_hash == EMPTY_SHA256


# ----------------------------------------------------------------- presigned: parsing


def test_parse_presigned_bytes_and_mapping_forms_agree() -> None:
    parts = presigned()
    from_bytes = parse_presigned(parts.query_string)
    assert from_bytes.scope.access_key_id == "AKIDVERIFY"
    assert from_bytes.signed_headers == ("content-type", "host")
    assert from_bytes.expires == 900
    assert from_bytes.security_token is None
    mapping = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": from_bytes.scope.access_key_id + "/" + from_bytes.scope.text,
        "X-Amz-Date": from_bytes.amz_date,
        "X-Amz-Expires": "900",
        "X-Amz-SignedHeaders": "content-type;host",
        "X-Amz-Signature": from_bytes.signature,
    }
    assert parse_presigned(mapping) == from_bytes


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("X-Amz-Signature=", "X-Amz-Sig=", "requires the X-Amz-Algorithm"),
        ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1", 'only supports "AWS4-HMAC-SHA256"'),
        ("%2Faws4_request", "", "the Credential is mal-formed"),
        ("AKIDVERIFY%2F", "%2F", "the Credential is mal-formed"),
        ("%2F20260102%2F", "%2F2026-01-02%2F", 'incorrect date format "2026-01-02"'),
        ("aws4_request", "aws4_reques", 'incorrect terminal "aws4_reques"'),
        ("X-Amz-Date=20260102T030405Z", "X-Amz-Date=20260102", "ISO8601 Long Format"),
        ("X-Amz-Expires=900", "X-Amz-Expires=soon", "should be a number"),
        ("X-Amz-Expires=900", "X-Amz-Expires=-5", "must be non-negative"),
        ("X-Amz-Expires=900", "X-Amz-Expires=-" + "9" * 30, "must be non-negative"),
        ("X-Amz-Expires=900", "X-Amz-Expires=0", "greater than 0"),
        ("X-Amz-Expires=900", "X-Amz-Expires=604801", "less than a week"),
        ("X-Amz-Expires=900", "X-Amz-Expires=" + "9" * 30, "less than a week"),
        ("content-type%3Bhost", "content-type", "must include host"),
        ("eu-local-1", "us-east-1", "the region 'us-east-1' is wrong; expecting 'eu-local-1'"),
        ("%2Fs3%2F", "%2Fs4%2F", 'incorrect service "s4". This endpoint belongs to "s3".'),
        ("X-Amz-Date=20260102T", "X-Amz-Date=20260101T", "Date is not the same as X-Amz-Date"),
    ],
)
def test_verify_presigned_malformed_parameter_refused(old: str, new: str, message: str) -> None:
    parts = _replaced(old, new)
    with pytest.raises(AuthorizationQueryParametersError) as info:
        check(parts)
    assert message in info.value.detail
    # S3 answers X-Amz-Expires faults with 403, the other malformed fields with 400.
    assert info.value.forbidden == old.startswith("X-Amz-Expires")


def _replaced(old: str, new: str) -> RequestParts:
    parts = presigned()
    query = parts.query_string
    assert isinstance(query, bytes)
    assert old.encode() in query
    return RequestParts(parts.method, parts.raw_path, query.replace(old.encode(), new.encode(), 1), parts.headers)


# ----------------------------------------------------------------- presigned: verdicts


def test_verify_presigned_time_window() -> None:
    assert check(presigned(), now=NOW - 900) is not None  # clocks 15 minutes apart still agree
    assert check(presigned(), now=NOW + 900) is not None
    with pytest.raises(RequestExpired, match="not yet valid"):
        check(presigned(), now=NOW - 901)
    with pytest.raises(RequestExpired, match="Request has expired"):
        check(presigned(), now=NOW + 901)


def test_verify_presigned_max_expires_lowered_refused() -> None:
    with pytest.raises(AuthorizationQueryParametersError, match="less than a week"):
        check(presigned(), max_expires=600)


def test_verify_presigned_unknown_key_refused() -> None:
    with pytest.raises(InvalidAccessKeyId, match="does not exist"):
        check(presigned(), credentials=lambda akid: None)
    with pytest.raises(InvalidAccessKeyId):
        check(presigned(), credentials=Credentials("AKIDOTHER", "verify-secret"))


def test_verify_presigned_session_token_bound() -> None:
    creds = Credentials("AKIDVERIFY", "verify-secret", "tok")
    url = Signer(creds, REGION).presign("GET", URL, expires=60, now=NOW)
    assert check(parts_for(url, "GET"), credentials=creds) is not None
    with pytest.raises(InvalidAccessKeyId, match="token"):
        check(parts_for(url.replace("X-Amz-Security-Token=tok", "X-Amz-Security-Token=tak"), "GET"), credentials=creds)
    plain = Signer(CREDS, REGION).presign("GET", URL, expires=60, now=NOW)
    with pytest.raises(InvalidAccessKeyId, match="token"):
        check(parts_for(plain, "GET"), credentials=creds)


def test_verify_presigned_unsigned_amz_header_refused() -> None:
    parts = presigned()
    extra = RequestParts(parts.method, parts.raw_path, parts.query_string, [*parts.headers, (b"x-amz-meta-x", b"1")])
    with pytest.raises(AccessDenied, match="not signed"):
        check(extra)


def test_verify_presigned_missing_signed_header_refused() -> None:
    parts = presigned()
    bare = RequestParts(parts.method, parts.raw_path, parts.query_string, [(b"host", HOST.encode())])
    with pytest.raises(SignatureDoesNotMatch, match="content-type"):
        check(bare)


def test_verify_presigned_str_parts_and_header_case_accepted() -> None:
    parts = presigned()
    assert isinstance(parts.raw_path, bytes)
    assert isinstance(parts.query_string, bytes)
    as_str = RequestParts(
        "PUT", parts.raw_path.decode(), parts.query_string.decode(), [("Host", HOST), ("Content-Type", "image/png")]
    )
    verified = check(as_str)
    assert verified.header("content-type") == "image/png"
    assert verified.header("x-amz-meta-none") is None


def test_verify_presigned_content_sha256_query_param_signed() -> None:
    body_hash = "a" * 64
    url = Signer(CREDS, REGION).presign(
        "PUT", URL, expires=60, now=NOW, query={"X-Amz-Content-Sha256": body_hash}, payload_hash=body_hash
    )
    assert check(parts_for(url)).payload_hash == body_hash


def test_verify_both_auth_forms_refused() -> None:
    parts = presigned()
    both = RequestParts(parts.method, parts.raw_path, parts.query_string, [*parts.headers, (b"authorization", b"x")])
    with pytest.raises(InvalidArgument, match="Only one auth mechanism"):
        check(both)


def test_verify_anonymous_refused() -> None:
    with pytest.raises(AccessDenied, match="Anonymous"):
        check(parts_for(URL))


# ----------------------------------------------------------------- header-signed


def header_signed(override: dict[str, str] | None = None) -> RequestParts:
    signed = Signer(CREDS, REGION).sign_headers("PUT", URL, now=NOW, headers={"content-type": "image/png"})
    headers = {k.lower(): v for k, v in signed.headers.items()} | {"content-type": "image/png"} | (override or {})
    return parts_for(URL, headers={k: v for k, v in headers.items() if v != "-"})


def test_verify_header_signed_keeps_the_seed_signature() -> None:
    # An aws-chunked body's chunk signatures chain from the request's own signature.
    signed = Signer(CREDS, REGION).sign_headers("PUT", URL, now=NOW, headers={"content-type": "image/png"})
    assert check(header_signed()).signature == signed.signature
    assert check(presigned()).signature == presigned().query_string.decode().rpartition("X-Amz-Signature=")[2]  # type: ignore[union-attr]


def test_verify_header_signed_accepted_within_skew() -> None:
    assert check(header_signed(), now=NOW + 900) is not None
    assert check(header_signed(), now=NOW - 900) is not None
    with pytest.raises(RequestExpired, match="too large"):
        check(header_signed(), now=NOW + 901)


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ({"authorization": "Bearer x"}, InvalidArgument, "Unsupported Authorization Type"),
        ({"authorization": "AWS4-HMAC-SHA256 Credential=a/b"}, InvalidArgument, "SignedHeaders component"),
        (
            {
                "authorization": "AWS4-HMAC-SHA256 Credential=AKIDVERIFY/20260102/us-east-1/s3/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=00"
            },
            InvalidArgument,
            "the region 'us-east-1' is wrong",
        ),
        ({"x-amz-date": "-"}, AccessDenied, "x-amz-date header"),
        ({"x-amz-date": "yesterday"}, AccessDenied, "x-amz-date header"),
        ({"x-amz-content-sha256": "-"}, SignatureDoesNotMatch, "'x-amz-content-sha256' is missing"),
        ({"x-amz-meta-extra": "1"}, AccessDenied, "not signed"),
        ({"content-type": "text/html"}, SignatureDoesNotMatch, "signature we calculated"),
    ],
)
def test_verify_header_signed_bad_request_refused(
    override: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        check(header_signed(override))


def test_parse_authorization_header_components() -> None:
    auth = parse_authorization_header(
        "AWS4-HMAC-SHA256 Credential=AKID/20260102/r/s/aws4_request,SignedHeaders=host;x-amz-date,Signature=ab"
    )
    assert (auth.scope.access_key_id, auth.scope.region, auth.scope.service) == ("AKID", "r", "s")
    assert auth.signed_headers == ("host", "x-amz-date")
    assert auth.signature == "ab"


def test_verify_header_signed_without_content_sha256_refused() -> None:
    signer = Signer(CREDS, REGION)
    signed = signer.sign_headers("GET", URL, now=NOW, add_content_sha256=False)
    parts = parts_for(URL, "GET", {k.lower(): v for k, v in signed.headers.items()})
    with pytest.raises(InvalidRequest, match="x-amz-content-sha256"):
        check(parts)
    assert check(parts, payload_hash=EMPTY_SHA256) is not None
