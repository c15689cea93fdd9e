"""The gallery at /files in a real browser: pages of files with "Load more", open, download,
copy between levels, delete after a confirmation, another user's protected files, and the empty
and error states."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.conftest import Shot
from tests.browser.ui import sign_in, wait_image_loaded
from tests.browser.watch import Watch
from tests.e2e.files_helpers import Caller, png, upload, user
from tests.e2e.userpool_helpers import User, confirmed_user
from tests.support.processes import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _owner_with_files(server: Server) -> tuple[User, Caller, list[dict[str, Any]], dict[str, Any]]:
    """A user with three private images, and another user with one protected image."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        owner = confirmed_user(client, server)
        tokens = owner.signin(client)
        me = client.get("/identity/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}).json()
        caller = Caller(tokens["accessToken"], me["identityId"])
        mine = [
            upload(client, caller, png(300, 200, seed=20 + n), accessLevel="private", name=f"photo-{n}.png")
            for n in range(3)
        ]
        theirs = upload(
            client, user(client, server), png(300, 200, seed=30), accessLevel="protected", name="shared.png"
        )
    return owner, caller, mine, theirs


def _card(page: Page, key: str) -> Locator:
    return page.locator(".file-card", has=page.locator(f'[data-key="{key}"]'))


def test_gallery_pages_open_download_copy_delete_and_other_users(page: Page, server: Server, shot: Shot) -> None:
    owner, caller, mine, theirs = _owner_with_files(server)
    sign_in(page, owner.email, owner.password)
    page.goto("/files?level=private&limit=2")
    expect(page.locator(".file-card")).to_have_count(2)
    more = page.get_by_role("button", name="Load more")
    expect(more).to_be_visible()
    shot("first-page")
    more.click()
    expect(page.locator(".file-card")).to_have_count(3)
    expect(more).to_be_hidden()
    for record in mine:
        assert wait_image_loaded(page, f'img[data-key="{record["key"]}"]') == 256
    shot("all-pages")

    first = mine[0]
    card = _card(page, first["key"])
    card.get_by_role("button", name="Open", exact=True).click()
    viewer = page.locator("[data-viewer]")
    expect(viewer).to_be_visible()
    assert wait_image_loaded(page, "[data-viewer-image]") == 300  # the original, not the thumbnail
    shot("viewer")
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()

    with page.expect_download() as download:
        card.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename == "photo-0.png"

    card.get_by_text("Copy to…").click()
    card.get_by_role("button", name="Protected").click()
    expect(card.locator(".card-status")).to_contain_text("Copied to protected")
    page.get_by_role("tab", name="Protected").click()
    copied = f"protected/{caller.identity_id}/photo-0.png"
    # A copy has no thumbnail variant: the gallery shows the image itself.
    assert wait_image_loaded(page, f'img[data-key="{copied}"]') == 300
    shot("copied-to-protected")

    page.get_by_role("tab", name="Private").click()
    last = mine[1]
    card = _card(page, last["key"])
    card.get_by_role("button", name="Delete").click()
    dialog = page.locator("[data-confirm-dialog]")
    expect(dialog).to_contain_text("photo-1.png")
    shot("confirm-delete")
    dialog.get_by_role("button", name="Cancel").click()
    expect(card).to_be_visible()
    card.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(card).to_have_count(0)
    expect(page.locator("[data-gallery-state]")).to_contain_text("Deleted photo-1.png")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        gone = client.get(f"/storage/files/{last['key']}", headers=caller.headers)
        assert gone.status_code == 404

    page.get_by_role("tab", name="Other users").click()
    page.get_by_label("Identity ID of another user").fill(theirs["identityId"])
    page.get_by_role("button", name="Show their files").click()
    assert wait_image_loaded(page, f'img[data-key="{theirs["key"]}"]') == 256
    theirs_card = _card(page, theirs["key"])
    expect(theirs_card.get_by_role("button", name="Delete")).to_have_count(0)
    shot("other-users-files")


def test_gallery_empty_and_error_states(page: Page, server: Server, shot: Shot, watch: Watch) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        someone = confirmed_user(client, server)
    sign_in(page, someone.email, someone.password)
    page.goto("/files?level=private")
    expect(page.locator("[data-gallery-state]")).to_contain_text("No private files yet")
    shot("empty")

    watch.allow(r"status of 503")

    def unavailable(route: Route) -> None:
        route.fulfill(
            status=503,
            content_type="application/problem+json",
            body='{"type":"x","title":"Service Unavailable","status":503,"detail":"the database is not reachable","code":"ServiceUnavailable"}',
        )

    page.route(re.compile(r".*/storage/files\?.*"), unavailable)
    page.get_by_role("tab", name="Protected").click()
    state = page.locator("[data-gallery-state]")
    expect(state).to_contain_text("Could not load the files: the database is not reachable")
    shot("error")
    page.unroute(re.compile(r".*/storage/files\?.*"))
    state.get_by_role("button", name="Try again").click()
    expect(state).to_contain_text("No protected files yet")
