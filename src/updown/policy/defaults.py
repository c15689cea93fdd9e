"""The default policies, as data: Amplify's access levels (public/, protected/<id>/, private/<id>/)
on one bucket, and which policies each role holds. Settings may override both."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from updown.errors import ConfigError

DEFAULT_BUCKET = "files"
ME = "${cognito-identity.amazonaws.com:sub}"

GUEST_POLICY = "guest-storage"
AUTHENTICATED_POLICY = "authenticated-storage"
ADMIN_POLICY = "admin-storage"
SERVICE_POLICY = "service-storage"
CDN_POLICY = "cdn-public-read"
ADMIN_API_POLICY = "admin-api"
EVENT_UPLOADER_POLICY = "event-uploader-storage"
# The narrow service role event photo uploads are presigned for (apps/events.py): PUT under uploads/.
EVENT_UPLOADER_ROLE = "event-uploader"
# Non-storage resources the API guards with the same engine (e.g. POST /policy/simulate).
API_ARN = "arn:updown:::"

DEFAULT_ROLE_POLICIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "guest": (GUEST_POLICY,),
        "authenticated": (AUTHENTICATED_POLICY,),
        "admin": (ADMIN_POLICY, ADMIN_API_POLICY),
        "service": (SERVICE_POLICY,),
        "cdn": (CDN_POLICY,),
        EVENT_UPLOADER_ROLE: (EVENT_UPLOADER_POLICY,),
    }
)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def default_documents(bucket: str = DEFAULT_BUCKET) -> dict[str, dict[str, Any]]:
    """The default policy documents for ``bucket``, by policy name (fresh dicts each call).

    Raises:
        ConfigError: ``bucket`` is not a plain S3 bucket name.
    """
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"storage bucket {bucket!r} is not a valid bucket name")
    arn = f"arn:aws:s3:::{bucket}"
    return {
        GUEST_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"{arn}/public/*",
                },
                {
                    # As Amplify's guest role: list public/, nothing else.
                    "Sid": "ListPublic",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": arn,
                    "Condition": {"StringLike": {"s3:prefix": ["public/", "public/*"]}},
                },
            ],
        },
        AUTHENTICATED_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"{arn}/public/*",
                },
                {
                    # Stricter than Amplify on purpose: writing or deleting an existing public
                    # object needs its owner to be the caller. The caller passes the owner of an
                    # existing object as updown:ObjectOwner; a new object has none. Aborting or
                    # listing a multipart upload passes none either: its upload id is known to its
                    # uploader alone (nobody lists public/ uploads: see ListOwnUploads).
                    "Sid": "PublicWriteOwnOrNew",
                    "Effect": "Allow",
                    "Action": [
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": f"{arn}/public/*",
                    "Condition": {"StringEqualsIfExists": {"updown:ObjectOwner": ME}},
                },
                {
                    "Sid": "ProtectedRead",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"{arn}/protected/*",
                },
                {
                    "Sid": "OwnFiles",
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": [f"{arn}/protected/{ME}/*", f"{arn}/private/{ME}/*"],
                },
                {
                    "Sid": "ListVisible",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": arn,
                    "Condition": {
                        "StringLike": {
                            "s3:prefix": [
                                "public/",
                                "public/*",
                                "protected/",
                                "protected/*",
                                f"private/{ME}/",
                                f"private/{ME}/*",
                            ]
                        }
                    },
                },
                {
                    # Open multipart uploads name their upload ids: only under the caller's own
                    # prefixes (public/ uploads are known to their uploader alone).
                    "Sid": "ListOwnUploads",
                    "Effect": "Allow",
                    "Action": "s3:ListBucketMultipartUploads",
                    "Resource": arn,
                    "Condition": {
                        "StringLike": {
                            "s3:prefix": [
                                f"protected/{ME}/",
                                f"protected/{ME}/*",
                                f"private/{ME}/",
                                f"private/{ME}/*",
                            ]
                        }
                    },
                },
            ],
        },
        ADMIN_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AdminAll",
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                },
            ],
        },
        ADMIN_API_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AdminApi",
                    "Effect": "Allow",
                    "Action": "updown:*",
                    "Resource": f"{API_ARN}*",
                },
            ],
        },
        # The role of anyone reading through /cdn: public/ only, read only.
        CDN_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"{arn}/public/*",
                },
            ],
        },
        # The role event photo uploads are presigned for: it may only put images under uploads/
        # (the events app's ObjectCreated step reads them from there; nothing serves uploads/).
        EVENT_UPLOADER_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PutEventUploads",
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": f"{arn}/uploads/*",
                    "Condition": {"StringLike": {"updown:ContentType": "image/*"}},
                },
            ],
        },
        # The role of requests presigned with the service credentials: the control plane decided
        # who may do what when it signed the URL; the signature binds the method and the key.
        SERVICE_POLICY: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ServiceObjects",
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": f"{arn}/*",
                },
                {
                    "Sid": "ServiceList",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    "Resource": arn,
                },
            ],
        },
    }
