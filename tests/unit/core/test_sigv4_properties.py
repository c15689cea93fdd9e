"""Properties of presigned URLs: they verify as made, and any change to what they bind breaks them."""

from __future__ import annotations

import string
from urllib.parse import quote, unquote_to_bytes

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from updown.core.sigv4 import (
    Credentials,
    Signer,
    amz_date,
    canonical_uri,
    header_value,
    object_url,
    query_pairs,
    uri_encode,
)
from updown.core.sigv4verify import RequestParts, verify
from updown.errors import AuthorizationQueryParametersError, RequestExpired, SignatureDoesNotMatch

REGION = "eu-local-1"
ENDPOINT = "http://127.0.0.1:8123/s3"
CREDS = Credentials("AKIDPROPERTY", "property-secret", "session/token+=")
SIGNER = Signer(CREDS, REGION)
NOW = 1_767_323_045  # 2026-01-02T03:04:05Z
BROKEN = (SignatureDoesNotMatch, RequestExpired, AuthorizationQueryParametersError)

methods = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"])
keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
header_values = st.text(string.ascii_letters + string.digits + string.punctuation + " \t", max_size=30)
meta = st.dictionaries(
    st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12).map(lambda s: f"x-amz-meta-{s}"),
    header_values,
    max_size=3,
)
queries = st.dictionaries(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(lambda k: not k.startswith("X-Amz-")),
    st.text(st.characters(codec="utf-8"), max_size=12),
    max_size=3,
)
times = st.integers(min_value=946_684_800, max_value=4_102_444_800)  # 2000 to 2100
fast = settings(max_examples=60, deadline=None)


def presign(
    method: str, key: str, headers: dict[str, str], query: dict[str, str], now: int = NOW, expires: int = 900
) -> str:
    return SIGNER.presign(
        method, object_url(ENDPOINT, "files", key), expires=expires, now=now, headers=headers, query=query
    )


def request(method: str, url: str, headers: dict[str, str]) -> RequestParts:
    target = url.split("://", 1)[1].partition("/")[2]
    path, _, query = f"/{target}".partition("?")
    raw = [(b"host", b"127.0.0.1:8123")] + [(k.encode(), v.encode()) for k, v in headers.items()]
    return RequestParts(method, path.encode(), query.encode(), raw)


def check(parts: RequestParts, now: int = NOW) -> None:
    verify(parts, credentials=CREDS, now=now, region=REGION)


@fast
@given(methods, keys, meta, queries, times)
def test_presigned_url_round_trip_verifies(
    method: str, key: str, headers: dict[str, str], query: dict[str, str], now: int
) -> None:
    url = presign(method, key, headers, query, now)
    verified = verify(request(method, url, headers), credentials=CREDS, now=now + 900, region=REGION)
    assert verified.signed_headers == tuple(
        sorted([("host", "127.0.0.1:8123"), *((k, header_value(v)) for k, v in headers.items())])
    )


@fast
@given(methods, methods, keys, meta)
def test_presigned_url_other_method_breaks(method: str, other: str, key: str, headers: dict[str, str]) -> None:
    assume(method != other)
    url = presign(method, key, headers, {})
    with pytest.raises(SignatureDoesNotMatch):
        check(request(other, url, headers))


@fast
@given(keys, keys, meta)
def test_presigned_url_other_key_breaks(key: str, other: str, headers: dict[str, str]) -> None:
    assume(key != other)
    url = presign("PUT", key, headers, {})
    query = url.partition("?")[2]
    moved = f"{object_url(ENDPOINT, 'files', other)}?{query}"
    with pytest.raises(SignatureDoesNotMatch):
        check(request("PUT", moved, headers))


@fast
@given(meta.filter(bool), header_values, st.data())
def test_presigned_url_changed_signed_header_breaks(headers: dict[str, str], new: str, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(headers)))
    assume(header_value(new) != header_value(headers[name]))
    url = presign("PUT", "k", headers, {})
    with pytest.raises(SignatureDoesNotMatch):
        check(request("PUT", url, {**headers, name: new}))


@fast
@given(meta.filter(bool), st.data())
def test_presigned_url_dropped_signed_header_breaks(headers: dict[str, str], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(headers)))
    url = presign("PUT", "k", headers, {})
    with pytest.raises(SignatureDoesNotMatch):
        check(request("PUT", url, {k: v for k, v in headers.items() if k != name}))


@fast
@given(queries.filter(bool), st.text(min_size=1, max_size=8), st.data())
def test_presigned_url_changed_query_param_breaks(query: dict[str, str], new: str, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(query)))
    assume(new != query[name])
    url = presign("GET", "k", {}, query)
    old = f"{uri_encode(name)}={uri_encode(query[name])}&"
    assert old in url
    for changed in (url.replace(old, f"{uri_encode(name)}={uri_encode(new)}&", 1), url.replace(old, "", 1)):
        with pytest.raises(SignatureDoesNotMatch):
            check(request("GET", changed, {}))


@fast
@given(queries, st.text(string.ascii_letters, min_size=1, max_size=8))
def test_presigned_url_added_query_param_breaks(query: dict[str, str], name: str) -> None:
    url = presign("GET", "k", {}, query)
    with pytest.raises(SignatureDoesNotMatch):
        check(request("GET", f"{url}&{name}=1", {}))


@fast
@given(st.integers(min_value=-86_400, max_value=86_400).filter(bool))
def test_presigned_url_changed_date_breaks(delta: int) -> None:
    url = presign("GET", "k", {}, {})
    changed = url.replace(f"X-Amz-Date={amz_date(NOW)}", f"X-Amz-Date={amz_date(NOW + delta)}")
    assert changed != url
    with pytest.raises(BROKEN):
        check(request("GET", changed, {}), now=NOW + 1)


@fast
@given(st.integers(min_value=1, max_value=604_800).filter(lambda e: e != 900))
def test_presigned_url_changed_expiry_breaks(expires: int) -> None:
    url = presign("GET", "k", {}, {})
    changed = url.replace("X-Amz-Expires=900&", f"X-Amz-Expires={expires}&")
    with pytest.raises(SignatureDoesNotMatch):
        check(request("GET", changed, {}))


def _reference_uri(path: str) -> str:
    """The canonical URI by definition: each segment decoded, then re-encoded (no shortcuts)."""
    return "/".join(quote(unquote_to_bytes(seg), safe="-_.~") for seg in path.split("/")) or "/"


@settings(max_examples=300, deadline=None)
@given(keys, st.text(string.ascii_letters + string.digits + "%/-_.~+ aFf", max_size=30))
def test_encoding_fast_paths_agree_with_definition(key: str, raw: str) -> None:
    assert object_url("http://h/s3", "files", key) == f"http://h/s3/files/{quote(key, safe='/~')}"
    assert uri_encode(key) == quote(key, safe="-_.~")
    for path in (f"/{quote(key, safe='/~')}", f"/{raw}", raw):
        assert canonical_uri(path) == _reference_uri(path)
        assert canonical_uri(path.encode()) == _reference_uri(path)
    part = raw.replace("/", "%2F")
    if part:
        assert query_pairs(f"{part}={part}") == [(_reference_uri(part), _reference_uri(part))]
