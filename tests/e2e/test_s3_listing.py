"""ListObjects v1 and v2 against a real `updown serve`, on the local backend and on S3 (moto):
prefix, delimiter and CommonPrefixes, max-keys, v1 markers, v2 continuation tokens and start-after,
encoding-type=url, fetch-owner, the paginators past 1000 keys; and who may list what —
``s3:ListBucket`` with ``s3:prefix`` as IAM evaluates it, for users and for guests (who list
``public/`` as Amplify's guest role does, through ``/s3`` and ``GET /storage/files``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.files_helpers import Caller
from tests.e2e.s3_helpers import (
    BACKENDS,
    BUCKET,
    Creds,
    error_code,
    guest_creds,
    s3_client,
    serve,
    service_creds,
    signed,
    texts,
    user_creds,
    xml_of,
)
from tests.e2e.userpool_helpers import bearer
from tests.support.processes import Server

pytestmark = pytest.mark.e2e

TREE = [
    "public/tree/a.txt",
    "public/tree/b/1.txt",
    "public/tree/b/2.txt",
    "public/tree/b/c/3.txt",
    "public/tree/d/4.txt",
    "public/tree/e.txt",
    "public/tree/f/5.txt",
]


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp(f"s3-listing-{request.param}"), request.param) as srv:
        yield srv


@pytest.fixture(scope="module")
def service(server: Server) -> Any:
    s3 = s3_client(server, service_creds(server))
    for key in TREE:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    return s3


def _keys(answer: dict[str, Any]) -> list[str]:
    return [c["Key"] for c in answer.get("Contents", [])]


def _prefixes(answer: dict[str, Any]) -> list[str]:
    return [p["Prefix"] for p in answer.get("CommonPrefixes", [])]


def _on_s3(server: Server) -> bool:
    return server.env.get("UPDOWN_STORAGE__BACKEND") == "s3"


# --------------------------------------------------------------------------- listings


@pytest.mark.parametrize("version", [1, 2])
def test_s3_listing_delimiter_gives_common_prefixes(service: Any, version: int) -> None:
    call = service.list_objects_v2 if version == 2 else service.list_objects
    answer = call(Bucket=BUCKET, Prefix="public/tree/", Delimiter="/")
    assert _keys(answer) == ["public/tree/a.txt", "public/tree/e.txt"]
    assert _prefixes(answer) == ["public/tree/b/", "public/tree/d/", "public/tree/f/"]
    assert answer["Delimiter"] == "/"
    assert answer["IsTruncated"] is False
    if version == 2:
        assert answer["KeyCount"] == 5
    inner = call(Bucket=BUCKET, Prefix="public/tree/b/", Delimiter="/")
    assert _keys(inner) == ["public/tree/b/1.txt", "public/tree/b/2.txt"]
    assert _prefixes(inner) == ["public/tree/b/c/"]
    top = call(Bucket=BUCKET, Prefix="public/tr", Delimiter="/")
    assert _keys(top) == []
    assert _prefixes(top) == ["public/tree/"]
    # Without a delimiter, everything under the prefix.
    assert _keys(call(Bucket=BUCKET, Prefix="public/tree/")) == sorted(TREE)


def test_s3_listing_v1_marker_pages_and_next_marker_only_with_a_delimiter(service: Any) -> None:
    first = service.list_objects(Bucket=BUCKET, Prefix="public/tree/", Delimiter="/", MaxKeys=2)
    assert _keys(first) == ["public/tree/a.txt"]
    assert _prefixes(first) == ["public/tree/b/"]
    assert first["IsTruncated"] is True
    assert first["NextMarker"] == "public/tree/b/"
    second = service.list_objects(
        Bucket=BUCKET, Prefix="public/tree/", Delimiter="/", MaxKeys=2, Marker=first["NextMarker"]
    )
    assert second["Marker"] == "public/tree/b/"
    assert _prefixes(second) == ["public/tree/d/"]
    assert _keys(second) == ["public/tree/e.txt"]
    assert second["NextMarker"] == "public/tree/e.txt"
    third = service.list_objects(
        Bucket=BUCKET, Prefix="public/tree/", Delimiter="/", MaxKeys=2, Marker=second["NextMarker"]
    )
    assert _prefixes(third) == ["public/tree/f/"]
    assert third["IsTruncated"] is False
    assert "NextMarker" not in third
    # Without a delimiter there is no NextMarker: the last key is the next marker.
    plain = service.list_objects(Bucket=BUCKET, Prefix="public/tree/", MaxKeys=3)
    assert plain["IsTruncated"] is True
    assert "NextMarker" not in plain
    rest = service.list_objects(Bucket=BUCKET, Prefix="public/tree/", Marker=_keys(plain)[-1])
    assert _keys(plain) + _keys(rest) == sorted(TREE)


def test_s3_listing_v2_start_after_and_continuation_tokens(service: Any) -> None:
    after = service.list_objects_v2(Bucket=BUCKET, Prefix="public/tree/", StartAfter="public/tree/b/2.txt")
    assert after["StartAfter"] == "public/tree/b/2.txt"
    assert _keys(after) == [k for k in sorted(TREE) if k > "public/tree/b/2.txt"]
    rolled = service.list_objects_v2(Bucket=BUCKET, Prefix="public/tree/", Delimiter="/", StartAfter="public/tree/b/")
    assert _prefixes(rolled) == ["public/tree/d/", "public/tree/f/"]
    seen: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = service.list_objects_v2(Bucket=BUCKET, Prefix="public/tree/", Delimiter="/", MaxKeys=1, **token)
        assert page["KeyCount"] == 1
        seen += _keys(page) + _prefixes(page)
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            break
        token = {"ContinuationToken": page["NextContinuationToken"]}
    assert seen == ["public/tree/a.txt", "public/tree/b/", "public/tree/d/", "public/tree/e.txt", "public/tree/f/"]


def test_s3_listing_url_encoding_round_trips_odd_keys(server: Server, service: Any) -> None:
    odd = ["public/enc/a b+c.txt", "public/enc/é/ü.txt", "public/enc/100%.txt", "public/enc/q?x&y=z<>.txt"]
    for key in odd:
        service.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    # boto3 asks for encoding-type=url and decodes: the keys come back as they are.
    assert _keys(service.list_objects_v2(Bucket=BUCKET, Prefix="public/enc/")) == sorted(odd)
    assert _keys(service.list_objects(Bucket=BUCKET, Prefix="public/enc/")) == sorted(odd)
    answer = service.list_objects_v2(Bucket=BUCKET, Prefix="public/enc/", Delimiter="/")
    assert _prefixes(answer) == ["public/enc/é/"]
    # On the wire: percent-encoded with encoding-type=url, XML-escaped text without.
    creds = service_creds(server)
    encoded = xml_of(signed(server, creds, "GET", None, "list-type=2&prefix=public%2Fenc%2F&encoding-type=url"))
    assert texts(encoded, "EncodingType") == ["url"]
    assert texts(encoded, "Contents/Key") == [quote(k, safe="/~") for k in sorted(odd)]
    plain = signed(server, creds, "GET", None, "list-type=2&prefix=public%2Fenc%2F")
    assert b"q?x&amp;y=z&lt;&gt;.txt" in plain.content
    assert texts(xml_of(plain), "Contents/Key") == sorted(odd)
    assert texts(xml_of(plain), "EncodingType") == []


def test_s3_listing_fetch_owner_and_v1_owner(service: Any) -> None:
    without = service.list_objects_v2(Bucket=BUCKET, Prefix="public/tree/a")
    assert "Owner" not in without["Contents"][0]
    owned = service.list_objects_v2(Bucket=BUCKET, Prefix="public/tree/a", FetchOwner=True)
    owner = owned["Contents"][0]["Owner"]
    assert len(owner["ID"]) == 64
    assert owner["DisplayName"]
    assert service.list_objects(Bucket=BUCKET, Prefix="public/tree/a")["Contents"][0]["Owner"] == owner


def test_s3_listing_max_keys_zero_and_bad_arguments(server: Server, service: Any) -> None:
    none = service.list_objects_v2(Bucket=BUCKET, Prefix="public/tree/", MaxKeys=0)
    assert _keys(none) == []
    assert none["KeyCount"] == 0
    assert none["IsTruncated"] is False
    big = service.list_objects_v2(Bucket=BUCKET, Prefix="public/tree/", MaxKeys=5000)
    assert big["MaxKeys"] == 1000
    assert _keys(big) == sorted(TREE)
    creds = service_creds(server)
    for query in ("list-type=2&max-keys=abc", "max-keys=-1", "list-type=2&encoding-type=base64", "list-type=3"):
        r = signed(server, creds, "GET", None, query)
        assert r.status_code == 400, (query, r.text)
        assert b"<Code>InvalidArgument</Code>" in r.content, query
    if not _on_s3(server):  # moto answers a token it never issued with a server error
        assert (
            error_code(service.list_objects_v2, Bucket=BUCKET, Prefix="public/", ContinuationToken="!!not-ours!!")
            == "InvalidArgument"
        )


@pytest.mark.slow
def test_s3_listing_paginators_past_1000_keys(service: Any) -> None:
    keys = [f"public/many/{n:04d}" for n in range(1003)]

    def put(key: str) -> None:
        service.put_object(Bucket=BUCKET, Key=key, Body=b"")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))
    for operation in ("list_objects_v2", "list_objects"):
        pages = list(service.get_paginator(operation).paginate(Bucket=BUCKET, Prefix="public/many/"))
        assert [len(p.get("Contents", [])) for p in pages] == [1000, 3], operation
        assert [k for p in pages for k in _keys(p)] == keys, operation
        small = list(
            service.get_paginator(operation).paginate(
                Bucket=BUCKET, Prefix="public/", Delimiter="/", PaginationConfig={"PageSize": 2}
            )
        )
        rolled = [e for p in small for e in _keys(p) + _prefixes(p)]
        assert "public/many/" in rolled, operation
        assert len(rolled) == len(set(rolled)), operation


# --------------------------------------------------------------------------- who may list


@pytest.fixture(scope="module")
def alice(server: Server) -> tuple[Caller, Creds]:
    return user_creds(server)


@pytest.fixture(scope="module")
def bob(server: Server) -> tuple[Caller, Creds]:
    return user_creds(server)


def test_s3_listing_temporary_credentials_by_prefix(
    server: Server, service: Any, alice: tuple[Caller, Creds], bob: tuple[Caller, Creds]
) -> None:
    _, a = alice
    _, b = bob
    s3a = s3_client(server, a)
    s3a.put_object(Bucket=BUCKET, Key=f"private/{a.identity_id}/docs/x.txt", Body=b"x")
    s3a.put_object(Bucket=BUCKET, Key=f"protected/{a.identity_id}/y.txt", Body=b"y")
    own = s3a.list_objects_v2(Bucket=BUCKET, Prefix=f"private/{a.identity_id}/", Delimiter="/")
    assert _prefixes(own) == [f"private/{a.identity_id}/docs/"]
    assert _keys(s3a.list_objects(Bucket=BUCKET, Prefix=f"private/{a.identity_id}/docs/")) == [
        f"private/{a.identity_id}/docs/x.txt"
    ]
    assert f"protected/{a.identity_id}/" in _prefixes(
        s3_client(server, b).list_objects_v2(Bucket=BUCKET, Prefix="protected/", Delimiter="/")
    )
    for prefix in (f"private/{b.identity_id}/", "private/", "", f"private/{a.identity_id}"):
        assert error_code(s3a.list_objects_v2, Bucket=BUCKET, Prefix=prefix) == "AccessDenied", prefix
        assert error_code(s3a.list_objects, Bucket=BUCKET, Prefix=prefix) == "AccessDenied", prefix
    assert error_code(s3a.list_objects_v2, Bucket=BUCKET) == "AccessDenied"
    assert _keys(s3a.list_objects_v2(Bucket=BUCKET, Prefix="public/tree/")) == sorted(TREE)


def test_s3_listing_guests_list_public_only(server: Server, service: Any) -> None:
    caller, g = guest_creds(server)
    s3g = s3_client(server, g)
    answer = s3g.list_objects_v2(Bucket=BUCKET, Prefix="public/", Delimiter="/")
    assert "public/tree/" in _prefixes(answer)
    assert _keys(s3g.list_objects(Bucket=BUCKET, Prefix="public/tree/b/", Delimiter="/")) == [
        "public/tree/b/1.txt",
        "public/tree/b/2.txt",
    ]
    for prefix in ("protected/", f"protected/{g.identity_id}/", "private/", f"private/{g.identity_id}/", "", "public"):
        assert error_code(s3g.list_objects_v2, Bucket=BUCKET, Prefix=prefix) == "AccessDenied", prefix
    assert error_code(s3g.list_objects, Bucket=BUCKET) == "AccessDenied"
    assert error_code(s3g.list_multipart_uploads, Bucket=BUCKET, Prefix="public/") == "AccessDenied"
    # The files API lists the same for a guest bearer token: public/ yes, other levels no.
    with httpx.Client(base_url=server.url, timeout=30) as c:
        files = c.get(
            "/storage/files", headers=bearer(caller.token), params={"accessLevel": "public", "prefix": "tree/"}
        )
        assert files.status_code == 200, files.text
        assert [i["key"] for i in files.json()["items"]] == sorted(TREE)
        for level in ("protected", "private"):
            refused = c.get(
                "/storage/files",
                headers=bearer(caller.token),
                params={"accessLevel": level, "identityId": g.identity_id},
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "AccessDenied"
