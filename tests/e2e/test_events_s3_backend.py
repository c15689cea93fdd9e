"""Event photos on the S3 backend (a moto server): the presigned PUT goes straight to the store,
which keeps the metadata hoisted into the URL's signed query; the data plane never sees the write,
so the periodic reconcile of uploads/ finds the object and the ObjectCreated step runs as on the
local backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.apps_helpers import admin, has_gps, jpeg, sub_of, wait_for
from tests.e2e.files_helpers import Caller, guest, user
from tests.e2e.s3_helpers import moto_backend_env
from tests.e2e.test_files_s3_backend import BUCKET, moto_endpoint, s3  # noqa: F401
from tests.support.processes import Server, clean_env

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, s3: S3Client) -> Iterator[Server]:  # noqa: F811
    root = tmp_path_factory.mktemp("serve-s3-events")
    env = clean_env(
        moto_backend_env(
            moto_endpoint,
            BUCKET,
            {"UPDOWN_PROCESSING__RECONCILE_INTERVAL": "1", "UPDOWN_PROCESSING__POLL_INTERVAL": "0.1"},
        )
    )
    srv = Server(data_dir=root / "data", env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_seed_flow_on_the_s3_backend(
    client: httpx.Client,
    server: Server,
    moto_endpoint: str,  # noqa: F811
    s3: S3Client,  # noqa: F811
) -> None:
    boss, attendee = admin(client, server), user(client, server)
    event = client.post("/events", headers=boss.headers, json={"name": "On S3", "startsAt": "2026-06-01T18:00:00Z"})
    assert event.status_code == 201, event.text
    event_id = event.json()["id"]
    added = client.post(
        f"/events/{event_id}/attendees", headers=boss.headers, json={"userSub": sub_of(client, attendee)}
    )
    assert added.status_code == 201, added.text
    r = client.post(
        f"/events/{event_id}/photos/initiate-upload",
        headers=attendee.headers,
        json={"title": "Café", "description": "On the store", "contentType": "image/jpeg"},
    )
    assert r.status_code == 201, r.text
    grant: dict[str, Any] = r.json()
    assert grant["s3PutObjectUrl"].startswith(f"{moto_endpoint}/{BUCKET}/uploads/event_{event_id}/")
    sent = httpx.put(grant["s3PutObjectUrl"], content=jpeg(seed=21), headers={"Content-Type": "image/jpeg"})
    assert sent.status_code == 200, sent.text
    key = urlsplit(grant["s3PutObjectUrl"]).path.removeprefix(f"/{BUCKET}/")
    stored = s3.head_object(Bucket=BUCKET, Key=key)
    assert stored["Metadata"]["photoid"] == grant["photoId"]
    viewer: Caller = guest(client)

    def listed() -> dict[str, Any] | None:
        found = client.get(f"/events/{event_id}/photos", headers=viewer.headers).json()
        return next((p for p in found if p["id"] == grant["photoId"]), None)

    photo = wait_for(listed, what="reconcile to find the object and the step to publish it")
    assert photo["title"] == "Café"
    served = httpx.get(photo["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"
    assert not has_gps(served.content)
    assert httpx.get(f"{server.url}/cdn/{key}").status_code == 404
