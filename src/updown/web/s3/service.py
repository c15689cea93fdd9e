"""Bucket-level and service-level verbs: ListBuckets, HeadBucket, CreateBucket, GetBucketLocation.

updown serves one bucket (``storage.bucket``); these answer about it as S3 would, each through
the gate:

- HeadBucket: 200 (with ``x-amz-bucket-region``) for a caller the policies allow ``s3:ListBucket``
  on the bucket, 403 otherwise (as S3: HeadBucket needs ``s3:ListBucket``); another bucket is 404.
- ListBuckets: the one bucket, for a caller allowed ``s3:ListAllMyBuckets`` or ``s3:ListBucket``
  on it; 403 otherwise. Its CreationDate is the epoch (updown does not record one).
- GetBucketLocation: the region (empty for us-east-1, as S3 answers), for a caller allowed
  ``s3:GetBucketLocation`` or ``s3:ListBucket``.
- CreateBucket: of the bucket updown serves, ``409 BucketAlreadyOwnedByYou`` (clients such as
  rclone create the bucket before their first upload and take that answer as success); of any
  other name, ``403 AccessDenied``: updown serves one configured bucket and creates none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from starlette.types import Receive, Send

from updown.auth.principal import SERVICE, Principal
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import AccessDenied, BucketAlreadyOwnedByYou
from updown.files import access
from updown.web.s3 import xml as s3xml

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange

LIST_ALL_MY_BUCKETS: Final = "s3:ListAllMyBuckets"
GET_BUCKET_LOCATION: Final = "s3:GetBucketLocation"
# The region S3 names with an empty LocationConstraint.
US_EAST_1: Final = "us-east-1"


def _owner(principal: Principal) -> str:
    owner = s3xml.el("ID", principal.identity_id or "updown") + s3xml.el(
        "DisplayName", "updown" if principal is SERVICE or principal.identity_id is None else principal.identity_id
    )
    return f"<Owner>{owner}</Owner>"


async def _answer(plane: DataPlane, ex: Exchange, send: Send, doc: bytes) -> None:
    headers = [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(doc)).encode())]
    await plane.start(ex, send, 200, headers)
    await send({"type": "http.response.body", "body": doc})


async def list_buckets(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """ListBuckets (``GET /``): the one bucket (``prefix`` and ``bucket-region`` filter it)."""
    plane.objects.check_bucket(principal, LIST_ALL_MY_BUCKETS, access.LIST, **plane.facts(ex))
    q = ex.query
    shown = plane.bucket.startswith(q.get("prefix", "")) and q.get("bucket-region", plane.region) == plane.region
    buckets = ""
    if shown:
        buckets = (
            "<Bucket>"
            + s3xml.el("Name", plane.bucket)
            + s3xml.el("CreationDate", s3xml.iso8601(0))
            + s3xml.el("BucketRegion", plane.region)
            + "</Bucket>"
        )
    doc = s3xml.document("ListAllMyBucketsResult", _owner(principal), f"<Buckets>{buckets}</Buckets>")
    await _answer(plane, ex, send, doc)


async def head_bucket(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """HeadBucket."""
    plane.objects.check_bucket(principal, access.LIST, **plane.facts(ex))
    headers = [(b"x-amz-bucket-region", plane.region.encode()), (b"x-amz-access-point-alias", b"false")]
    await plane.empty(ex, send, 200, headers)


async def create_bucket(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """CreateBucket: see the module docstring."""
    if ex.bucket == plane.bucket:
        raise BucketAlreadyOwnedByYou()
    raise AccessDenied("updown serves one configured bucket and creates no other")


async def location(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """GetBucketLocation."""
    plane.objects.check_bucket(principal, GET_BUCKET_LOCATION, access.LIST, **plane.facts(ex))
    region = "" if plane.region == US_EAST_1 else plane.region
    await _answer(plane, ex, send, s3xml.document("LocationConstraint", region))
