"""Presigned URL rate of core.sigv4 beside boto3's generate_presigned_url, and the verify rate.

Both sign the same PUT (a content type and two metadata fields, a key with a space and a colon,
an endpoint with a path prefix); the URLs are checked equal before timing. The verify row has no
reference (boto3 has no verifier): it reports presigned PUTs checked per second, as the data
plane does on every upload, from the ASGI-style request parts to a VerifiedRequest.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import boto3
from botocore.config import Config

from bench.common import Row, rate
from updown.core.sigv4 import Credentials, Signer, object_url
from updown.core.sigv4verify import RequestParts, verify

GOAL = 10.0
REGION = "eu-local-1"
ENDPOINT = "http://127.0.0.1:8000/s3"
BUCKET = "files"
KEY = "protected/eu-local:5f0c2b7e-0000-4000-8000-000000000001/holiday photo.jpg"
CREDS = Credentials("AKIDBENCHMARK", "bench/secret+key", None)
HEADERS = {"Content-Type": "image/jpeg", "x-amz-meta-title": "Sunset", "x-amz-meta-event": "42"}
PARAMS = {
    "Bucket": BUCKET,
    "Key": KEY,
    "ContentType": "image/jpeg",
    "Metadata": {"title": "Sunset", "event": "42"},
}


def _client() -> object:
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=CREDS.access_key_id,
        aws_secret_access_key=CREDS.secret_access_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _parts(url: str) -> RequestParts:
    target = url.split("://", 1)[1].partition("/")[2]
    path, _, query = f"/{target}".partition("?")
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"Mozilla/5.0"), (b"content-length", b"2097152")]
    headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
    return RequestParts("PUT", path.encode(), query.encode(), headers)


def run(quick: bool = False) -> list[Row]:
    seconds, repeats = (0.2, 3) if quick else (0.5, 5)
    client = _client()
    signer = Signer(CREDS, REGION)
    generate = client.generate_presigned_url  # type: ignore[attr-defined]

    def boto_presign() -> str:
        return str(generate("put_object", Params=PARAMS, ExpiresIn=900))

    def our_presign() -> str:
        return signer.presign("PUT", object_url(ENDPOINT, BUCKET, KEY), expires=900, now=time.time(), headers=HEADERS)

    # Same second, same URL: the comparison is of equal work.
    now = datetime.now(UTC).replace(microsecond=0)
    expected = signer.presign("PUT", object_url(ENDPOINT, BUCKET, KEY), expires=900, now=now, headers=HEADERS)
    got = boto_presign()
    if got.rpartition("X-Amz-Date=")[2][:16] == expected.rpartition("X-Amz-Date=")[2][:16]:
        assert got == expected, (got, expected)

    boto_rate = rate(boto_presign, seconds=seconds, repeats=repeats)
    our_rate = rate(our_presign, seconds=seconds, repeats=repeats)

    parts = _parts(our_presign())
    verified = verify(parts, credentials=CREDS, now=time.time(), region=REGION)
    assert verified.header("x-amz-meta-event") == "42"

    def our_verify() -> object:
        return verify(parts, credentials=CREDS, now=time.time(), region=REGION)

    verify_rate = rate(our_verify, seconds=seconds, repeats=repeats)
    return [
        Row(
            "sigv4 presign PUT (content type + 2 metadata)",
            our_rate,
            boto_rate,
            "URLs/s",
            reference_name="boto3",
            goal=GOAL,
        ),
        Row(
            "sigv4 verify presigned PUT",
            verify_rate,
            None,
            "checks/s",
            note="no reference: boto3 does not verify",
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(row.line())
