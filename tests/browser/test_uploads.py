"""The upload widget in a real browser: a 12 MiB file goes multipart with parts in parallel and its
progress bar reaches 100 %; an interrupted multipart upload resumes after a reload without sending
the parts that arrived; a disallowed type is refused in words; a lie about the type is rejected by
processing with its reason."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.browser.conftest import Shot
from tests.browser.ui import MIB, new_user, sign_in, upload_row, wait_ready, zip_bytes
from tests.browser.watch import Watch
from tests.support.processes import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PART_URL = re.compile(r"/s3/files/_uploads/[0-9a-f]{32}\?.*partNumber=(\d+)")


class PartLog:
    """Which part PUTs the page sent, and how many were in flight at once."""

    def __init__(self, page: Page) -> None:
        self.sent: list[int] = []
        self.in_flight = 0
        self.most_at_once = 0
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    def _start(self, request: Request) -> None:
        match = PART_URL.search(request.url)
        if match and request.method == "PUT":
            self.sent.append(int(match.group(1)))
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)

    def _end(self, request: Request) -> None:
        if PART_URL.search(request.url) and request.method == "PUT":
            self.in_flight -= 1


def _throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Slows the browser's uploads so that progress can be watched between 0 and 100 %."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


def test_upload_12_mib_multipart_parallel_parts_progress_reaches_100(
    page: Page, server: Server, shot: Shot, tmp_path: Path
) -> None:
    user = new_user(server)
    sign_in(page, user.email, user.password)
    big = tmp_path / "archive.zip"
    big.write_bytes(zip_bytes(12 * MIB))
    parts = PartLog(page)
    _throttle_uploads(page, 8 * MIB)
    uploader = page.locator("#home-uploader")
    uploader.locator("input[type=file]").set_input_files(str(big))
    row = upload_row(uploader, "archive.zip")
    progress = row.locator("progress")
    seen: set[int] = set()
    middle_shot = False
    deadline = time.monotonic() + 60
    while row.get_attribute("data-state") in ("queued", "uploading") and time.monotonic() < deadline:
        seen.add(int(progress.evaluate("p => Math.floor(100 * p.value / p.max)")))
        if not middle_shot and 30 <= max(seen) < 100:
            middle_shot = True
            shot("multipart-in-progress")
        page.wait_for_timeout(40)
    key = wait_ready(row)
    shot("multipart-ready")
    assert key.endswith("/archive.zip")
    expect(row).to_have_attribute("data-mode", "multipart")
    # 12 MiB in the browser's 5 MiB parts: three, sent at once, each exactly once.
    expect(row).to_have_attribute("data-parts", "3")
    assert sorted(parts.sent) == [1, 2, 3]
    assert parts.most_at_once >= 2
    # Real upload events moved the bar through the middle, and it ends full.
    assert any(0 < p < 100 for p in seen), seen
    assert progress.evaluate("p => p.value === p.max")
    expect(progress).to_have_attribute("data-percent", "100")
    expect(row.locator(".upload-status")).to_have_text("Ready")


def test_upload_multipart_resumes_after_reload_skipping_parts_received(
    page: Page, server: Server, shot: Shot, tmp_path: Path, watch: Watch
) -> None:
    watch.allow(r"ERR_CONNECTION_RESET .*partNumber=3&")
    user = new_user(server)
    sign_in(page, user.email, user.password)
    big = tmp_path / "resume.zip"
    big.write_bytes(zip_bytes(11 * MIB, seed=2))

    # The connection drops for every try of part 3; parts 1 and 2 arrive.
    def drop(route: Route) -> None:
        route.abort("connectionreset")

    page.route(re.compile(r".*partNumber=3(&.*)?$"), drop)
    uploader = page.locator("#home-uploader")
    uploader.locator("input[type=file]").set_input_files(str(big))
    row = upload_row(uploader, "resume.zip")
    expect(row).to_have_attribute("data-state", "failed", timeout=30_000)
    expect(row.locator(".upload-status")).to_contain_text("connection")
    expect(row.get_by_role("button", name="Retry")).to_be_visible()
    shot("part-3-failed")
    page.unroute(re.compile(r".*partNumber=3(&.*)?$"))

    page.reload()
    pending = uploader.locator("[data-role=resumable]")
    expect(pending).to_be_visible()
    expect(pending).to_contain_text("resume.zip")
    expect(pending).to_contain_text("2 of 3 parts sent")
    shot("unfinished-after-reload")
    parts = PartLog(page)
    uploader.locator("input[type=file]").set_input_files(str(big))
    row = upload_row(uploader, "resume.zip")
    wait_ready(row)
    shot("resumed-ready")
    expect(row).to_have_attribute("data-resumed-parts", "2")
    assert parts.sent == [3]
    expect(pending).to_be_hidden()


def test_upload_disallowed_type_refused_in_words_and_lie_rejected_with_reason(
    page: Page, server: Server, shot: Shot, watch: Watch
) -> None:
    user = new_user(server)
    sign_in(page, user.email, user.password)
    initiated: list[str] = []
    page.on("request", lambda r: initiated.append(r.url) if r.url.endswith("/storage/uploads") else None)
    uploader = page.locator("#home-uploader")
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": "page.html", "mimeType": "text/html", "buffer": b"<!doctype html><title>x</title>"}]
    )
    row = upload_row(uploader, "page.html")
    expect(row).to_have_attribute("data-state", "refused")
    status = row.get_by_role("alert")
    expect(status).to_contain_text("“page.html” is not accepted here")
    expect(status).to_contain_text("text/html files are not allowed")
    expect(status).to_contain_text("Accepted: JPEG, PNG")
    assert initiated == []
    shot("type-refused")

    # A text file that claims to be a PNG passes the page's check; processing rejects it, in words.
    watch.allow(r"status of 422")
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": "fake.png", "mimeType": "image/png", "buffer": b"this is plain text, not an image at all"}]
    )
    row = upload_row(uploader, "fake.png")
    expect(row).to_have_attribute("data-state", "rejected", timeout=30_000)
    expect(row.get_by_role("alert")).to_contain_text("Rejected:")
    expect(row.get_by_role("alert")).to_contain_text("PNG")
    shot("lie-rejected")


def test_upload_cancel_then_retry_completes(page: Page, server: Server, shot: Shot, tmp_path: Path) -> None:
    user = new_user(server)
    sign_in(page, user.email, user.password)
    big = tmp_path / "cancel.zip"
    big.write_bytes(zip_bytes(9 * MIB, seed=3))
    _throttle_uploads(page, 2 * MIB)
    uploader = page.locator("#home-uploader")
    uploader.locator("input[type=file]").set_input_files(str(big))
    row = upload_row(uploader, "cancel.zip")
    page.wait_for_function(
        "() => { const p = document.querySelector('#home-uploader .upload progress'); return p && p.value > 0 }"
    )
    row.get_by_role("button", name="Cancel").click()
    expect(row).to_have_attribute("data-state", "cancelled")
    expect(row.locator(".upload-status")).to_have_text("Cancelled.")
    shot("cancelled")
    _throttle_uploads(page, -1)
    row.get_by_role("button", name="Retry").click()
    wait_ready(row)
    shot("retried-ready")
