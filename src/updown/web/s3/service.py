"""Bucket-level and service-level verbs: ListBuckets, HeadBucket, CreateBucket, GetBucketLocation.

updown serves one bucket (``storage.bucket``); these answer about it as S3 would."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Receive, Send

from updown.auth.principal import Principal
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import NotImplementedHere

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange


async def list_buckets(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("ListBuckets is not implemented yet")


async def head_bucket(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("HeadBucket is not implemented yet")


async def create_bucket(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("CreateBucket is not implemented yet")


async def location(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("GetBucketLocation is not implemented yet")
