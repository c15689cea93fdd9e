"""Files e2e, the rules around an upload: an intent is single use, GPS leaves images, active SVG is
refused, listings page stably, Cache-Control travels from initiate to the CDN, and an app on another
origin (the seeds' ``localhost:3000``) can sign in, initiate, PUT and read ``ETag`` through CORS."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from tests.conftest import PG_ENV, postgres_schema
from tests.e2e.files_helpers import Caller, complete, initiate, png, put_bytes, upload, user
from tests.e2e.userpool_helpers import assert_problem
from tests.support.processes import Server, clean_env

APP_ORIGIN = "http://localhost:3000"
GPS_IFD = 0x8825


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("rules")
    env = clean_env(
        {
            "UPDOWN_STORAGE__CORS_ORIGINS": APP_ORIGIN,
            # SVG allowed here, so that the pipeline's own check of active SVG is what refuses it.
            "UPDOWN_UPLOADS__ALLOWED_TYPES": "image/png,image/jpeg,image/svg+xml",
        }
    )
    srv = Server(data_dir=root / "data", env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def alice(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return user(c, server)


def _jpeg_with_gps() -> bytes:
    im = Image.new("RGB", (120, 90), (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def test_intent_is_single_use_once_processed(client: httpx.Client, alice: Caller) -> None:
    first = png(seed=21)
    grant = initiate(client, alice, accessLevel="private", name="once.png", contentType="image/png", size=len(first))
    grant_body = grant.json()
    assert put_bytes(grant_body, first).status_code == 200
    done = complete(client, alice, grant_body["uploadId"])
    assert done.status_code == 200, done.text
    # The same URL again, with other bytes of the same length: refused, the file keeps its bytes.
    other = bytearray(first)
    other[-20] ^= 0xFF
    assert put_bytes(grant_body, bytes(other)).status_code == 403
    url = client.post(f"/storage/files/{grant_body['key']}/url", headers=alice.headers).json()["url"]
    assert httpx.get(url).content == first
    # complete is idempotent: the same record again.
    again = complete(client, alice, grant_body["uploadId"])
    assert again.status_code == 200
    assert again.json()["etag"] == done.json()["etag"]


def test_gps_stripped_from_jpeg_other_exif_kept(client: httpx.Client, alice: Caller) -> None:
    data = _jpeg_with_gps()
    assert GPS_IFD in Image.open(io.BytesIO(data)).getexif()
    record = upload(client, alice, data, content_type="image/jpeg", accessLevel="private", name="trip.jpg")
    url = client.post(f"/storage/files/{record['key']}/url", headers=alice.headers).json()["url"]
    stored = httpx.get(url).content
    exif = Image.open(io.BytesIO(stored)).getexif()
    assert GPS_IFD not in exif
    assert exif[0x010F] == "CameraMaker"
    assert record["size"] == len(stored)
    assert (record["width"], record["height"]) == (120, 90)


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    ],
)
def test_svg_with_script_rejected(client: httpx.Client, server: Server, alice: Caller, svg: bytes) -> None:
    r = initiate(client, alice, accessLevel="private", contentType="image/svg+xml", size=len(svg))
    assert r.status_code == 201, r.text
    grant = r.json()
    assert put_bytes(grant, svg).status_code == 200
    body = assert_problem(complete(client, alice, grant["uploadId"]), 422, "UploadRejected")
    assert "svg" in body["detail"].lower()
    assert_problem(client.get(f"/storage/files/{grant['key']}", headers=alice.headers), 404, "NoSuchKey")


def test_plain_svg_accepted_when_allowed(client: httpx.Client, alice: Caller) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
    record = upload(client, alice, svg, content_type="image/svg+xml", accessLevel="private", name="box.svg")
    assert record["contentType"] == "image/svg+xml"
    url = client.post(f"/storage/files/{record['key']}/url", headers=alice.headers).json()["url"]
    got = httpx.get(url)
    # Never rendered inline from our origin: a sandboxed attachment.
    assert got.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in got.headers["content-security-policy"]


def test_listing_pages_with_cursor_in_stable_order(client: httpx.Client, alice: Caller) -> None:
    names = [f"pages/{i:02d}.png" for i in range(7)]
    for i, name in enumerate(names):
        upload(client, alice, png(8, 8, seed=100 + i), accessLevel="protected", name=name)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"accessLevel": "protected", "prefix": "pages/", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/storage/files", headers=alice.headers, params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 3
        seen += [i["key"] for i in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    prefix = f"protected/{alice.identity_id}/"
    assert seen == [prefix + n for n in names]
    assert pages == 3
    for bad in (0, 1001):
        assert_problem(
            client.get("/storage/files", headers=alice.headers, params={"accessLevel": "protected", "limit": bad}),
            400,
            "InvalidRequest",
        )


def test_cache_control_bound_at_initiate_and_served_by_cdn(client: httpx.Client, alice: Caller) -> None:
    data = png(seed=31)
    name = f"cc-{alice.identity_id[-8:]}.png"
    r = initiate(
        client,
        alice,
        accessLevel="public",
        name=name,
        contentType="image/png",
        size=len(data),
        cacheControl="max-age=31557600",
    )
    grant = r.json()
    headers = grant["put"]["headers"]
    assert headers["Cache-Control"] == "max-age=31557600"
    # Without the bound header the signature fails.
    plain = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "cache-control")}
    assert httpx.put(grant["put"]["url"], content=data, headers=plain).status_code == 403
    assert put_bytes(grant, data).status_code == 200
    assert complete(client, alice, grant["uploadId"]).status_code == 200
    served = client.get(f"/cdn/{name}")
    assert served.status_code == 200
    assert served.headers["cache-control"] == "max-age=31557600"


def test_cors_app_on_another_origin_signs_in_initiates_and_puts(
    client: httpx.Client, server: Server, alice: Caller
) -> None:
    origin = {"Origin": APP_ORIGIN}
    pre = client.options(
        "/storage/uploads",
        headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "access-control-allow-credentials" not in pre.headers
    data = png(seed=41)
    r = client.post(
        "/storage/uploads",
        headers={**alice.headers, **origin},
        json={"accessLevel": "private", "contentType": "image/png", "size": len(data)},
    )
    assert r.status_code == 201
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    grant = r.json()
    put_pre = httpx.options(
        grant["put"]["url"],
        headers={**origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"},
    )
    assert put_pre.status_code == 200
    assert put_pre.headers["access-control-allow-origin"] == APP_ORIGIN
    sent = httpx.put(
        grant["put"]["url"],
        content=data,
        headers={**{k: v for k, v in grant["put"]["headers"].items() if k.lower() != "content-length"}, **origin},
    )
    assert sent.status_code == 200
    assert sent.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "etag" in sent.headers["access-control-expose-headers"].lower()
    # Another origin is not let in.
    evil = client.options(
        "/storage/uploads", headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"}
    )
    assert evil.headers.get("access-control-allow-origin") != "http://evil.test"
    cdn = client.get("/cdn/nothing-here.png", headers=origin)
    assert cdn.headers["access-control-allow-origin"] == APP_ORIGIN


# --- quotas --------------------------------------------------------------------------------------

QUOTA = 20_000
INTENT_SECONDS = 4


@pytest.fixture(scope="module")
def quota_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a quota, on PostgreSQL when the tests have one (concurrent transactions there
    really overlap; SQLite's single writer hides a missing lock)."""
    root = tmp_path_factory.mktemp("quota")
    with contextlib.ExitStack() as stack:
        env = {"UPDOWN_UPLOADS__QUOTA_BYTES": str(QUOTA), "UPDOWN_UPLOADS__EXPIRES": str(INTENT_SECONDS)}
        if os.environ.get(PG_ENV):
            env["UPDOWN_DATABASE__URL"] = stack.enter_context(postgres_schema())
        srv = Server(data_dir=root / "data", env=clean_env(env)).start()
        stack.callback(srv.stop)
        yield srv


def test_quota_counts_open_intents_and_releases_a_rejected_one(quota_server: Server) -> None:
    with httpx.Client(base_url=quota_server.url, timeout=30) as client:
        owner = user(client, quota_server)

        def ask(name: str, size: int) -> httpx.Response:
            return initiate(client, owner, accessLevel="private", name=name, contentType="image/png", size=size)

        first = ask("one.png", 9_000)
        assert first.status_code == 201, first.text
        assert ask("two.png", 9_000).status_code == 201
        over = assert_problem(ask("three.png", 9_000), 403, "QuotaExceeded")
        assert "2000 of 20000" in over["detail"]
        # The first intent's bytes are not a PNG: rejected, and its 9,000 bytes are free again.
        grant = first.json()
        assert put_bytes(grant, b"<html>".ljust(9_000, b" ")).status_code == 200
        assert complete(client, owner, grant["uploadId"]).status_code == 422
        assert ask("three.png", 9_000).status_code == 201


def test_quota_holds_under_concurrent_initiates(quota_server: Server) -> None:
    with httpx.Client(base_url=quota_server.url, timeout=30) as client:
        owner = user(client, quota_server)

    def ask(i: int) -> int:
        with httpx.Client(base_url=quota_server.url, timeout=30) as c:
            r = initiate(c, owner, accessLevel="private", name=f"c{i}.png", contentType="image/png", size=9_000)
            return r.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert sorted(answers) == [201, 201] + [403] * 6


def test_quota_reservation_of_an_expired_intent_is_free_before_cleanup(quota_server: Server) -> None:
    with httpx.Client(base_url=quota_server.url, timeout=30) as client:
        owner = user(client, quota_server)

        def ask(name: str) -> httpx.Response:
            return initiate(client, owner, accessLevel="private", name=name, contentType="image/png", size=9_000)

        assert ask("a.png").status_code == 201
        assert ask("b.png").status_code == 201
        assert_problem(ask("c.png"), 403, "QuotaExceeded")
        time.sleep(INTENT_SECONDS + 0.5)  # both intents expire; no cleanup has run
        assert ask("c.png").status_code == 201
