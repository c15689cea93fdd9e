"""The S3 API's bucket-level verbs against a real `updown serve`: HeadBucket, ListBuckets,
GetBucketLocation and CreateBucket, with service credentials and a signed-in user's temporary
credentials, each decided by the caller's policies; subresources updown does not offer are 501."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.e2e.s3_helpers import BUCKET, REGION, error_code, s3_client, serve, service_creds, user_creds
from tests.support.processes import Server
from updown.core.sigv4 import Credentials, Signer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("s3buckets")
    with serve(root, "local") as server:
        yield server


@pytest.fixture(scope="module")
def svc(srv: Server) -> Any:
    return s3_client(srv, service_creds(srv))


@pytest.fixture(scope="module")
def user(srv: Server) -> Any:
    _, creds = user_creds(srv)
    return s3_client(srv, creds)


def _status(call: Any, **kwargs: Any) -> int:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return int(caught.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_head_bucket(svc: Any, user: Any) -> None:
    answer = svc.head_bucket(Bucket=BUCKET)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["BucketRegion"] == REGION
    # A signed-in user may list only under the prefixes of its policy: no s3:ListBucket on the
    # bucket as such, so 403 (as S3 answers a role whose s3:ListBucket is prefix-conditioned).
    assert _status(user.head_bucket, Bucket=BUCKET) == 403
    assert _status(svc.head_bucket, Bucket="other") == 404


def test_list_buckets(svc: Any, user: Any) -> None:
    answer = svc.list_buckets()
    assert [b["Name"] for b in answer["Buckets"]] == [BUCKET]
    assert answer["Owner"]["ID"]
    assert svc.list_buckets(Prefix="nothing-like-it")["Buckets"] == []
    assert error_code(user.list_buckets) == "AccessDenied"


def test_get_bucket_location(svc: Any, user: Any) -> None:
    assert svc.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] is None  # us-east-1: empty
    assert error_code(user.get_bucket_location, Bucket=BUCKET) == "AccessDenied"
    assert error_code(svc.get_bucket_location, Bucket="other") == "NoSuchBucket"


def test_create_bucket(svc: Any, user: Any) -> None:
    assert error_code(svc.create_bucket, Bucket=BUCKET) == "BucketAlreadyOwnedByYou"
    assert _status(svc.create_bucket, Bucket=BUCKET) == 409
    assert error_code(user.create_bucket, Bucket=BUCKET) == "BucketAlreadyOwnedByYou"
    assert error_code(svc.create_bucket, Bucket="another-bucket") == "AccessDenied"
    # The bucket is as it was.
    assert svc.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_bucket_and_object_tagging_are_501(svc: Any) -> None:
    svc.put_object(Bucket=BUCKET, Key="public/tagged", Body=b"t")
    assert error_code(svc.get_object_tagging, Bucket=BUCKET, Key="public/tagged") == "NotImplemented"
    assert error_code(svc.get_bucket_tagging, Bucket=BUCKET) == "NotImplemented"
    assert error_code(svc.get_object_attributes, Bucket=BUCKET, Key="public/tagged", ObjectAttributes=["ETag"]) == (
        "NotImplemented"
    )


def test_list_buckets_raw_document(srv: Server) -> None:
    creds = service_creds(srv)
    signer = Signer(Credentials(creds.access_key_id, creds.secret_access_key), REGION)
    signed = signer.sign_headers("GET", f"{srv.url}/s3/", now=time.time())
    r = httpx.get(f"{srv.url}/s3/", headers=signed.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/xml"
    assert b"<ListAllMyBucketsResult" in r.content
    assert f"<Name>{BUCKET}</Name>".encode() in r.content
