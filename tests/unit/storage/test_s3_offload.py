"""The S3 backend's offload header: a presigned GET of the version updown saw, which the store
accepts only as nginx's location forwards it (the path decoded once, If-Match and Range as
updown resolved them); bad settings refused."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from updown.core import sigv4verify
from updown.core.keys import validate_key
from updown.core.sigv4 import Credentials, object_url
from updown.errors import ConfigError, InvalidKey, SignatureDoesNotMatch
from updown.storage.base import ObjectInfo
from updown.storage.offload import PRESIGN_SECONDS, PresignedOffload
from updown.storage.s3 import S3Backend

STORE = Credentials("AKIASTORE0000000001", "store-secret-0123456789")
NOW = 1_700_000_000.0
ENDPOINT = "http://seaweedfs:8333"
PREFIX = "/_updown_objects/"
# Space, "+", sub-delims, "@", ":", non-ASCII, "#", "?", a literal "%41", "//" and "~".
ODD_KEY = "public/a b+c!'()*@:ü#x?%41//~.bin"


def _offload(*, path_style: bool = True) -> PresignedOffload:
    return PresignedOffload(
        PREFIX, endpoint=ENDPOINT, bucket="files", path_style=path_style, credentials=STORE, region="us-east-1",
        clock=lambda: NOW,
    )  # fmt: skip


def _info(key: str = ODD_KEY, etag: str = "0123456789abcdef0123456789abcdef") -> ObjectInfo:
    return ObjectInfo(key, 1000, etag, "image/png")


def _as_nginx_sends(accel: bytes) -> tuple[str, str]:
    """The path and query nginx's location sends to the store for this X-Accel-Redirect: the
    header's path decoded once (``$uri``), the prefix cut off, the query as it came (``$args``)."""
    text = accel.decode("ascii")
    assert text.startswith(PREFIX)
    path, _, query = text.partition("?")
    return unquote(path)[len(PREFIX) - 1 :], query


def _store_checks(path: str, query: str, headers: dict[str, str], *, host: str = "seaweedfs:8333") -> None:
    """What the store does with nginx's request: verify its signature."""
    sigv4verify.verify(
        sigv4verify.RequestParts("GET", path, query, [("host", host), *headers.items()]),
        credentials=STORE,
        now=NOW + 1,
        region="us-east-1",
    )


def test_the_redirect_is_a_presigned_get_of_that_version_the_store_accepts_from_nginx() -> None:
    headers = _offload().headers(_info(), None)
    assert [name for name, _ in headers] == [b"x-accel-redirect"]  # no range: no range header
    path, query = _as_nginx_sends(headers[0][1])
    # Byte for byte the path that was signed: the key encoded once, as S3 encodes it.
    assert path == object_url("", "files", ODD_KEY)
    assert f"X-Amz-Expires={PRESIGN_SECONDS}&" in query
    assert "X-Amz-SignedHeaders=host%3Bif-match&" in query
    _store_checks(path, query, {"if-match": '"0123456789abcdef0123456789abcdef"'})


def test_the_version_is_pinned_a_request_without_that_if_match_is_refused() -> None:
    path, query = _as_nginx_sends(_offload().headers(_info(), None)[0][1])
    with pytest.raises(SignatureDoesNotMatch):
        _store_checks(path, query, {})
    with pytest.raises(SignatureDoesNotMatch):
        _store_checks(path, query, {"if-match": '"ffffffffffffffffffffffffffffffff"'})
    with pytest.raises(SignatureDoesNotMatch):  # signed for the store's host, not nginx's
        _store_checks(path, query, {"if-match": '"0123456789abcdef0123456789abcdef"'}, host="127.0.0.1:8080")
    with pytest.raises(SignatureDoesNotMatch):  # another key under the same signature
        _store_checks(path + "x", query, {"if-match": '"0123456789abcdef0123456789abcdef"'})


def test_a_range_is_the_one_updown_resolved_signed_and_handed_to_nginx() -> None:
    headers = dict(_offload().headers(_info(), (10, 19)))
    assert headers[b"x-updown-range"] == b"bytes=10-19"
    path, query = _as_nginx_sends(headers[b"x-accel-redirect"])
    assert "X-Amz-SignedHeaders=host%3Bif-match%3Brange&" in query
    etag = '"0123456789abcdef0123456789abcdef"'
    _store_checks(path, query, {"if-match": etag, "range": "bytes=10-19"})
    with pytest.raises(SignatureDoesNotMatch):  # the client's own range never reaches the store
        _store_checks(path, query, {"if-match": etag, "range": "bytes=0-"})
    with pytest.raises(SignatureDoesNotMatch):
        _store_checks(path, query, {"if-match": etag})


def test_virtual_hosted_buckets_are_signed_for_the_buckets_host() -> None:
    path, query = _as_nginx_sends(_offload(path_style=False).headers(_info(), None)[0][1])
    assert path == object_url("", "files", ODD_KEY).removeprefix("/files")
    _store_checks(path, query, {"if-match": '"0123456789abcdef0123456789abcdef"'}, host="files.seaweedfs:8333")


def _valid_key(text: str) -> bool:
    try:
        validate_key(text)
    except InvalidKey:
        return False
    return text == validate_key(text)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60).filter(_valid_key))
def test_any_valid_key_reaches_the_store_as_signed(key: str) -> None:
    headers = _offload().headers(_info(key), (0, 0))
    path, query = _as_nginx_sends(headers[0][1])
    assert path == object_url("", "files", key)
    _store_checks(path, query, {"if-match": '"0123456789abcdef0123456789abcdef"', "range": "bytes=0-0"})


@pytest.mark.parametrize(
    ("prefix", "credentials", "endpoint"),
    [
        ("_o/", STORE, ENDPOINT),
        ("/_o", STORE, ENDPOINT),
        ("/a b/", STORE, ENDPOINT),
        (PREFIX, Credentials("", ""), ENDPOINT),
        (PREFIX, STORE, "seaweedfs:8333"),
        (PREFIX, STORE, "http://seaweedfs:8333/under/a/path"),
    ],
)
def test_bad_settings_are_refused(prefix: str, credentials: Credentials, endpoint: str) -> None:
    with pytest.raises(ConfigError):
        PresignedOffload(
            prefix, endpoint=endpoint, bucket="files", path_style=True, credentials=credentials, region="r"
        )


def _s3(offload: str = "none", *, signed: bool = True) -> S3Backend:
    key, secret = (STORE.access_key_id, STORE.secret_access_key) if signed else (None, None)
    return S3Backend("files", endpoint_url=ENDPOINT, access_key_id=key, secret_access_key=secret, offload=offload)


def test_the_s3_backend_offloads_by_reference_only_when_asked_and_never_by_file_name() -> None:
    assert _s3().reference_offload is None
    assert isinstance(_s3("x-accel-redirect").reference_offload, PresignedOffload)
    with pytest.raises(ConfigError, match="x-sendfile"):
        _s3("x-sendfile")
    with pytest.raises(ConfigError):
        _s3("nginx")
    with pytest.raises(ConfigError, match="access_key_id"):
        _s3("x-accel-redirect", signed=False)
