"""Helpers for the apps' e2e tests: an admin made by the CLI, users' subs, photos with GPS, polling."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
from PIL import ExifTags, Image

from tests.e2e.files_helpers import Caller
from tests.e2e.userpool_helpers import bearer, new_email, new_password
from tests.support.processes import Server

T = TypeVar("T")

GPS = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (13.0, 24.0, 36.0),
}


def admin(client: httpx.Client, server: Server) -> Caller:
    """A user of the ``admin`` group, created with `updown user create --group admin`."""
    email, password = new_email("admin"), new_password()
    server.cli("user", "create", email, "--password", password, "--group", "admin")
    r = client.post("/auth/signin", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    token = r.json()["accessToken"]
    me = client.get("/identity/me", headers=bearer(token)).json()
    return Caller(token, me["identityId"])


def sub_of(client: httpx.Client, caller: Caller) -> str:
    r = client.get("/auth/me", headers=caller.headers)
    assert r.status_code == 200, r.text
    sub: str = r.json()["sub"]
    return sub


def jpeg(width: int = 640, height: int = 480, *, seed: int = 1, gps: bool = True) -> bytes:
    """A camera-like JPEG with EXIF (make, model and, unless told otherwise, a GPS position)."""
    im = Image.new("RGB", (width, height), ((seed * 70) % 256, 120, 200))
    for x in range(0, width, 16):
        im.paste(((x * seed) % 256, (x * 3) % 256, 40), (x, 0, x + 8, height))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Acme"
    exif[ExifTags.Base.Model] = "Pinhole 1"
    if gps:
        exif[ExifTags.IFD.GPSInfo] = dict(GPS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90, exif=exif)
    return buf.getvalue()


def has_gps(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as im:
        return bool(im.getexif().get_ifd(ExifTags.IFD.GPSInfo))


def wait_for(probe: Callable[[], T | None], *, timeout: float = 20.0, what: str = "the condition") -> T:
    """Polls ``probe`` until it answers something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def jobs_done(server: Server) -> int:
    """How many jobs the server's queue has finished (`updown jobs list`)."""
    counts = dict(line.split("\t") for line in server.cli("jobs", "list").stdout.splitlines() if "\t" in line)
    return int(counts.get("done", 0))
