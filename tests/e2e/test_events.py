"""Events e2e: admins create events and register attendees; only attendees get a presigned PUT; the
seed's client flow (PUT with only Content-Type) ends in a listed photo whose optimized copy and
thumbnail /cdn serves without GPS, while the raw upload stays unreachable; a redelivered or
repeated ObjectCreated writes one row."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from tests.e2e.apps_helpers import admin, has_gps, jobs_done, jpeg, sub_of, wait_for
from tests.e2e.files_helpers import Caller, guest, png, user
from tests.e2e.userpool_helpers import assert_problem
from tests.support.processes import Server, clean_env

START = "2026-06-01T18:00:00Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose reconcile of uploads/ runs every second (so tests see it run)."""
    root: Path = tmp_path_factory.mktemp("serve")
    env = clean_env({"UPDOWN_PROCESSING__RECONCILE_INTERVAL": "1", "UPDOWN_PROCESSING__POLL_INTERVAL": "0.1"})
    srv = Server(data_dir=root / "data", env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def boss(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return admin(c, server)


@pytest.fixture(scope="module")
def attendee(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return user(c, server)


@pytest.fixture(scope="module")
def outsider(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return user(c, server)


@pytest.fixture(scope="module")
def event(server: Server, boss: Caller, attendee: Caller) -> dict[str, Any]:
    with httpx.Client(base_url=server.url) as c:
        r = c.post("/events", headers=boss.headers, json={"name": "Launch party", "startsAt": START})
        assert r.status_code == 201, r.text
        made: dict[str, Any] = r.json()
        r = c.post(f"/events/{made['id']}/attendees", headers=boss.headers, json={"userSub": sub_of(c, attendee)})
        assert r.status_code == 201, r.text
        return made


def initiate(client: httpx.Client, caller: Caller | None, event_id: str, **body: Any) -> httpx.Response:
    payload = {"title": "Sunset", "description": "From the pier", "contentType": "image/jpeg", **body}
    headers = caller.headers if caller else {}
    return client.post(f"/events/{event_id}/photos/initiate-upload", headers=headers, json=payload)


def granted(client: httpx.Client, caller: Caller, event_id: str, **body: Any) -> dict[str, Any]:
    r = initiate(client, caller, event_id, **body)
    assert r.status_code == 201, r.text
    grant: dict[str, Any] = r.json()
    return grant


def seed_put(url: str, data: bytes, content_type: str = "image/jpeg") -> httpx.Response:
    """What the seed's frontend does: PUT the file with its Content-Type, and no other header."""
    return httpx.put(url, content=data, headers={"Content-Type": content_type}, timeout=30)


def photos(client: httpx.Client, caller: Caller, event_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/events/{event_id}/photos", headers=caller.headers)
    assert r.status_code == 200, r.text
    listed: list[dict[str, Any]] = r.json()
    return listed


def photo(client: httpx.Client, caller: Caller, event_id: str, photo_id: str) -> dict[str, Any] | None:
    return next((p for p in photos(client, caller, event_id) if p["id"] == photo_id), None)


def s3_for(client: httpx.Client, caller: Caller, server: Server) -> Any:
    """boto3 on the data plane with the caller's temporary credentials."""
    creds = client.post("/identity/credentials", headers=caller.headers).json()
    return boto3.client(
        "s3",
        endpoint_url=f"{server.url}/s3",
        region_name="us-east-1",
        aws_access_key_id=creds["accessKeyId"],
        aws_secret_access_key=creds["secretAccessKey"],
        aws_session_token=creds["sessionToken"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


# --- events and attendees ----------------------------------------------------------------------


def test_events_create_admin_only(client: httpx.Client, boss: Caller, outsider: Caller) -> None:
    body = {"name": "Board meeting", "startsAt": START, "endsAt": "2026-06-01T20:00:00+00:00"}
    assert_problem(client.post("/events", headers=outsider.headers, json=body), 403, "AccessDenied")
    assert_problem(client.post("/events", headers=guest(client).headers, json=body), 403, "AccessDenied")
    assert_problem(client.post("/events", json=body), 401, "NotAuthorized")
    r = client.post("/events", headers=boss.headers, json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["name"] == "Board meeting"
    assert made["startsAt"] == "2026-06-01T18:00:00.000Z"
    assert made["endsAt"] == "2026-06-01T20:00:00.000Z"
    assert made["id"]
    backwards = {**body, "endsAt": "2026-06-01T17:00:00Z"}
    assert_problem(client.post("/events", headers=boss.headers, json=backwards), 400, "InvalidRequest")
    assert_problem(client.post("/events", headers=boss.headers, json={"name": "x"}), 400, "InvalidRequest")


def test_events_read_by_users_and_guests_not_anonymous(
    client: httpx.Client, event: dict[str, Any], attendee: Caller, outsider: Caller
) -> None:
    for caller in (attendee, outsider, guest(client)):
        listed = client.get("/events", headers=caller.headers)
        assert listed.status_code == 200, listed.text
        assert event["id"] in [e["id"] for e in listed.json()]
        one = client.get(f"/events/{event['id']}", headers=caller.headers)
        assert one.status_code == 200, one.text
        assert one.json()["name"] == "Launch party"
    assert client.get(f"/events/{event['id']}", headers=attendee.headers).json()["attending"] is True
    assert client.get(f"/events/{event['id']}", headers=outsider.headers).json()["attending"] is False
    assert_problem(client.get("/events"), 401, "NotAuthorized")
    assert_problem(client.get(f"/events/{event['id']}/photos"), 401, "NotAuthorized")
    assert_problem(client.get("/events/no-such-event", headers=outsider.headers), 404, "NotFound")
    assert_problem(client.get("/events/no-such-event/photos", headers=outsider.headers), 404, "NotFound")


def test_events_attendees_admin_only(
    client: httpx.Client, server: Server, event: dict[str, Any], boss: Caller, outsider: Caller
) -> None:
    someone = sub_of(client, user(client, server))
    path = f"/events/{event['id']}/attendees"
    assert_problem(client.post(path, headers=outsider.headers, json={"userSub": someone}), 403, "AccessDenied")
    assert_problem(client.post(path, headers=guest(client).headers, json={"userSub": someone}), 403, "AccessDenied")
    assert_problem(client.get(path, headers=outsider.headers), 403, "AccessDenied")
    assert_problem(
        client.post(path, headers=boss.headers, json={"userSub": "00000000-0000-4000-8000-000000000000"}),
        404,
        "NotFound",
    )
    assert_problem(
        client.post("/events/no-such-event/attendees", headers=boss.headers, json={"userSub": someone}),
        404,
        "NotFound",
    )
    for _ in range(2):  # registering twice is the same as once
        r = client.post(path, headers=boss.headers, json={"userSub": someone})
        assert r.status_code == 201, r.text
        assert r.json()["userSub"] == someone
    listed = client.get(path, headers=boss.headers).json()
    assert [a["userSub"] for a in listed].count(someone) == 1


# --- initiate-upload ---------------------------------------------------------------------------


def test_initiate_upload_only_for_attendees(
    client: httpx.Client, event: dict[str, Any], attendee: Caller, outsider: Caller, boss: Caller
) -> None:
    assert_problem(initiate(client, outsider, event["id"]), 403, "AccessDenied")
    assert_problem(initiate(client, boss, event["id"]), 403, "AccessDenied")  # admins are not attendees
    assert_problem(initiate(client, guest(client), event["id"]), 403, "AccessDenied")
    assert_problem(initiate(client, None, event["id"]), 401, "NotAuthorized")
    assert_problem(initiate(client, attendee, "no-such-event"), 404, "NotFound")


@pytest.mark.parametrize("content_type", ["text/plain", "application/pdf", "image/svg+xml", "text/html", "video/mp4"])
def test_initiate_upload_non_image_refused(
    client: httpx.Client, event: dict[str, Any], attendee: Caller, content_type: str
) -> None:
    assert_problem(initiate(client, attendee, event["id"], contentType=content_type), 400, "InvalidContentType")


def test_initiate_upload_binds_key_type_and_metadata_for_the_narrow_role(
    client: httpx.Client, server: Server, event: dict[str, Any], attendee: Caller
) -> None:
    grant = granted(client, attendee, event["id"], contentType="image/png", title="Café ☕")
    assert set(grant) >= {"photoId", "s3PutObjectUrl"}
    url = urlsplit(grant["s3PutObjectUrl"])
    assert url.path == f"/s3/files/uploads/event_{event['id']}/{grant['photoId']}.png"
    query = parse_qs(url.query)
    assert query["X-Amz-SignedHeaders"] == ["content-type;host"]
    assert query["x-amz-meta-eventid"] == [event["id"]]
    assert query["x-amz-meta-photoid"] == [grant["photoId"]]
    assert query["x-amz-meta-contenttype"] == ["image/png"]
    assert query["x-amz-meta-title"] == ["Caf%C3%A9 %E2%98%95"]
    assert query["x-amz-meta-description"] == ["From the pier"]
    # Signed for the event-uploader role's derived key, not with the service's credentials.
    secrets = json.loads((server.data_dir / "secrets.json").read_text())
    key_id = query["X-Amz-Credential"][0].split("/")[0]
    assert key_id.startswith("AKIA")
    assert key_id != secrets["s3_access_key_id"]


def test_presigned_put_binds_what_it_says(client: httpx.Client, event: dict[str, Any], attendee: Caller) -> None:
    grant = granted(client, attendee, event["id"])
    url = grant["s3PutObjectUrl"]
    data = jpeg(seed=9)
    # Another content type, an unsigned metadata header, changed metadata or another key: refused.
    assert seed_put(url, data, "image/png").status_code == 403
    sneaky = httpx.put(url, content=data, headers={"Content-Type": "image/jpeg", "x-amz-meta-title": "x"})
    assert sneaky.status_code == 403
    assert seed_put(url.replace("x-amz-meta-title=Sunset", "x-amz-meta-title=Other"), data).status_code == 403
    other_key = url.replace(f"/{grant['photoId']}.jpg", "/someone-else.jpg")
    assert seed_put(other_key, data).status_code == 403
    assert seed_put(url.replace("/uploads/", "/public/"), data).status_code == 403


def test_s3_writes_to_uploads_need_a_grant_even_for_admins(
    client: httpx.Client, server: Server, event: dict[str, Any], boss: Caller
) -> None:
    s3 = s3_for(client, boss, server)
    with pytest.raises(ClientError) as refused:
        s3.put_object(
            Bucket="files",
            Key=f"uploads/event_{event['id']}/00000000-0000-4000-8000-000000000000.jpg",
            Body=jpeg(),
            ContentType="image/jpeg",
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


# --- the seed's client flow --------------------------------------------------------------------


def test_seed_flow_put_with_content_type_only_lists_the_photo_served_by_cdn(
    client: httpx.Client, server: Server, event: dict[str, Any], attendee: Caller, boss: Caller
) -> None:
    grant = granted(client, attendee, event["id"], title="Café ☕", description="Line 1\nLine 2 — 100%")
    original = jpeg(1600, 1200, seed=3)
    assert has_gps(original)
    sent = seed_put(grant["s3PutObjectUrl"], original)
    assert sent.status_code == 200, sent.text
    viewer = guest(client)
    listed = wait_for(lambda: photo(client, viewer, event["id"], grant["photoId"]), what="the photo to be listed")
    assert set(listed) == {
        "id",
        "eventId",
        "title",
        "description",
        "contentType",
        "url",
        "thumbnailUrl",
        "uploadedBy",
        "createdAt",
    }
    assert listed["eventId"] == event["id"]
    assert listed["title"] == "Café ☕"
    assert listed["description"] == "Line 1\nLine 2 — 100%"
    assert listed["contentType"] == "image/jpeg"
    assert listed["uploadedBy"] == sub_of(client, attendee)
    assert listed["url"].startswith(f"{server.url}/cdn/events/{event['id']}/")
    assert listed["thumbnailUrl"].startswith(f"{server.url}/cdn/events/{event['id']}/")
    # Both served by /cdn to anyone: images, GPS gone, the copy optimized, the thumbnail small.
    full = httpx.get(listed["url"])
    assert full.status_code == 200
    assert full.headers["content-type"] == "image/webp"
    assert "immutable" in full.headers["cache-control"]
    thumb = httpx.get(listed["thumbnailUrl"])
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/webp"
    for data, longest in ((full.content, 1600), (thumb.content, 256)):
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "WEBP"
            assert max(im.size) <= longest
        assert not has_gps(data)
    # The object itself carries the bound metadata (what the step read back).
    s3 = s3_for(client, boss, server)
    raw_key = f"uploads/event_{event['id']}/{grant['photoId']}.jpg"
    head = s3.head_object(Bucket="files", Key=raw_key)
    assert head["ContentType"] == "image/jpeg"
    assert head["Metadata"] == {
        "title": "Caf%C3%A9 %E2%98%95",
        "description": "Line 1%0ALine 2 %E2%80%94 100%25",
        "eventid": event["id"],
        "photoid": grant["photoId"],
        "contenttype": "image/jpeg",
    }
    # The raw upload is never reachable through /cdn, however the path is spelt.
    for path in (
        f"/cdn/{raw_key}",
        f"/cdn/../{raw_key}",
        f"/cdn/%2e%2e/{raw_key}",
        f"/cdn/..%2f{raw_key}",
        f"/cdn/%2E%2E%2F{raw_key.replace('/', '%2F')}",
    ):
        assert httpx.get(f"{server.url}{path}").status_code == 404, path


def test_published_copies_cannot_be_replaced_or_deleted_by_users(
    client: httpx.Client, server: Server, event: dict[str, Any], attendee: Caller, outsider: Caller
) -> None:
    grant = granted(client, attendee, event["id"], title="mine")
    assert seed_put(grant["s3PutObjectUrl"], jpeg(seed=13)).status_code == 200
    listed = wait_for(lambda: photo(client, attendee, event["id"], grant["photoId"]), what="the photo")
    for url in (listed["url"], listed["thumbnailUrl"]):
        name = url.removeprefix(f"{server.url}/cdn/")
        for caller in (attendee, outsider):  # not even the attendee: the copies are the app's
            deleted = client.delete(f"/storage/files/public/{name}", headers=caller.headers)
            assert deleted.status_code in (403, 404), deleted.text  # a thumbnail is no file of its own
            replace = {"accessLevel": "public", "name": name, "contentType": "image/webp", "size": 10}
            assert_problem(client.post("/storage/uploads", headers=caller.headers, json=replace), 403, "AccessDenied")
        assert httpx.get(url).status_code == 200
    name = listed["url"].removeprefix(f"{server.url}/cdn/")
    assert_problem(client.delete(f"/storage/files/public/{name}", headers=outsider.headers), 403, "AccessDenied")
    # Nor through the S3 API with a user's temporary credentials.
    s3 = s3_for(client, outsider, server)
    for url in (listed["url"], listed["thumbnailUrl"]):
        key = "public/" + url.removeprefix(f"{server.url}/cdn/")
        for attempt in (
            lambda: s3.put_object(Bucket="files", Key=key, Body=b"defaced", ContentType="image/webp"),  # noqa: B023
            lambda: s3.delete_object(Bucket="files", Key=key),  # noqa: B023
        ):
            with pytest.raises(ClientError) as refused:
                attempt()
            assert refused.value.response["Error"]["Code"] == "AccessDenied"
        assert httpx.get(url).status_code == 200


def test_photos_newest_first_and_only_ready(client: httpx.Client, event: dict[str, Any], attendee: Caller) -> None:
    pending = granted(client, attendee, event["id"], title="never sent")
    first = granted(client, attendee, event["id"], title="first")
    second = granted(client, attendee, event["id"], title="second", contentType="image/png")
    assert seed_put(first["s3PutObjectUrl"], jpeg(seed=5)).status_code == 200
    assert seed_put(second["s3PutObjectUrl"], png(80, 60, seed=2), "image/png").status_code == 200
    wait_for(lambda: photo(client, attendee, event["id"], second["photoId"]), what="the second photo")
    wait_for(lambda: photo(client, attendee, event["id"], first["photoId"]), what="the first photo")
    ids = [p["id"] for p in photos(client, attendee, event["id"])]
    assert ids.index(second["photoId"]) < ids.index(first["photoId"])
    assert pending["photoId"] not in ids


def test_not_an_image_is_never_listed(
    client: httpx.Client, server: Server, event: dict[str, Any], attendee: Caller
) -> None:
    liar = granted(client, attendee, event["id"], title="liar")
    good = granted(client, attendee, event["id"], title="after the liar")
    assert seed_put(liar["s3PutObjectUrl"], b"<html><script>alert(1)</script></html>").status_code == 200
    assert seed_put(good["s3PutObjectUrl"], jpeg(seed=7)).status_code == 200
    # Jobs run in order: once the later photo is listed, the liar's job has run (and refused it).
    wait_for(lambda: photo(client, attendee, event["id"], good["photoId"]), what="the good photo")
    assert photo(client, attendee, event["id"], liar["photoId"]) is None


# --- ObjectCreated, redelivered ----------------------------------------------------------------


def test_object_created_again_writes_one_row(
    client: httpx.Client, server: Server, event: dict[str, Any], attendee: Caller
) -> None:
    grant = granted(client, attendee, event["id"], title="twice")
    data = jpeg(seed=11)
    assert seed_put(grant["s3PutObjectUrl"], data).status_code == 200
    first = wait_for(lambda: photo(client, attendee, event["id"], grant["photoId"]), what="the photo")
    # The same bytes again, and reconcile listing uploads/ (every second here) at least twice more.
    assert seed_put(grant["s3PutObjectUrl"], data).status_code == 200
    done = jobs_done(server)
    wait_for(lambda: True if jobs_done(server) >= done + 2 else None, what="two more reconciles")
    listed = [p for p in photos(client, attendee, event["id"]) if p["id"] == grant["photoId"]]
    assert listed == [first]
    # New bytes to the same URL (S3 allows it while the URL lives): still one row, the new copy.
    assert seed_put(grant["s3PutObjectUrl"], jpeg(seed=12)).status_code == 200

    def replaced() -> dict[str, Any] | None:
        now = photo(client, attendee, event["id"], grant["photoId"])
        return now if now is not None and now["url"] != first["url"] else None

    second = wait_for(replaced, what="the new version")
    assert [p["id"] for p in photos(client, attendee, event["id"])].count(grant["photoId"]) == 1
    assert httpx.get(second["url"]).status_code == 200
    # The old copies are gone from /cdn.
    deadline = time.monotonic() + 10
    while httpx.get(first["url"]).status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(first["url"]).status_code == 404
    assert httpx.get(first["thumbnailUrl"]).status_code == 404
