"""The apps' pages in a real browser: an admin uploads a product image on /admin and creates a live
product with it, which a guest then sees in /shop with its image from /cdn; an admin creates an
event and registers an attendee on /admin, the attendee adds a photo with a title and description
through the upload widget on /events/{id}, and a guest sees its thumbnail there. Guests browse at a
phone's width, and the admin works at one in the second test."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, Shot
from tests.browser.ui import new_user, sign_in, sign_out, upload_row, wait_image_loaded, wait_ready
from tests.browser.watch import Watch
from tests.e2e.apps_helpers import jpeg
from tests.e2e.files_helpers import png
from tests.e2e.userpool_helpers import bearer, new_email, new_password
from tests.support.processes import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _admin(server: Server) -> tuple[str, str]:
    """An admin made the operator's way: `updown user create EMAIL --password P --group admin`."""
    email, password = new_email("admin"), new_password()
    server.cli("user", "create", email, "--password", password, "--group", "admin")
    return email, password


@contextmanager
def _guest_page(browser: Browser, server: Server, watch: Watch) -> Iterator[Page]:
    """A fresh context with no session, at a phone's width, watched like the test's own page."""
    context = browser.new_context(viewport=PHONE, base_url=server.url, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    watch.attach(context)
    try:
        yield context.new_page()
    finally:
        context.close()


def _screenshot(page: Page, artifacts: Path, request: pytest.FixtureRequest, name: str) -> None:
    folder = artifacts / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"guest-{name}.png"), full_page=True)


def _no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page is {width[0]} px wide in a {width[1]} px window"


def _served_from_cdn(page: Page, selector: str) -> None:
    assert wait_image_loaded(page, selector) > 0
    path = page.locator(selector).evaluate("i => new URL(i.currentSrc || i.src).pathname")
    assert path.startswith("/cdn/"), path


def test_apps_admin_creates_live_product_with_uploaded_image_guest_sees_it_in_shop(
    browser: Browser,
    page: Page,
    server: Server,
    shot: Shot,
    watch: Watch,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    email, password = _admin(server)
    sign_in(page, email, password)
    admin_link = page.get_by_role("link", name="Admin")
    expect(admin_link).to_be_visible()
    admin_link.click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    expect(page.locator("[data-admin-body]")).to_be_visible()
    expect(page.locator("[data-admins-only]")).to_be_hidden()

    form = page.locator("[data-product-form]")
    uploader = page.locator("#product-uploader")
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": "mug.png", "mimeType": "image/png", "buffer": png(320, 240, seed=51)}]
    )
    key = wait_ready(upload_row(uploader, "mug.png"))
    assert key.startswith("public/"), key
    assert key.endswith("/mug.png"), key
    expect(form.get_by_label("Image key")).to_have_value(key)
    expect(form.locator("[data-product-preview]")).to_be_visible()
    name = f"Mug {uuid.uuid4().hex[:8]}"
    form.get_by_label("Name").fill(name)
    form.get_by_label("Price").fill("9.50")
    form.get_by_label("Description").fill("Holds a pint of coffee.")
    expect(form.get_by_label(re.compile(r"^Live"))).to_be_checked()
    shot("product-form-filled")
    form.get_by_role("button", name="Create product").click()
    expect(form.locator("[data-form-notice]")).to_have_text(f"Created “{name}”.")
    row = page.locator("[data-admin-products] .admin-item", has_text=name)
    expect(row).to_contain_text("Live")
    product_id = row.get_attribute("data-product-id")
    assert product_id
    # The form starts over for the next product, uploader included.
    expect(form.get_by_label("Image key")).to_have_value("")
    expect(uploader.locator(".upload")).to_have_count(0)
    shot("product-created")

    with _guest_page(browser, server, watch) as guest:
        guest.goto("/shop")
        card = guest.locator(f'.product-card[data-product-id="{product_id}"]')
        expect(card).to_be_visible()
        expect(card.get_by_role("heading", name=name)).to_be_visible()
        expect(card).to_contain_text("9.50")
        expect(card).to_contain_text("Holds a pint of coffee.")
        _served_from_cdn(guest, f'.product-card[data-product-id="{product_id}"] img')
        expect(guest.get_by_role("link", name="Admin")).to_be_hidden()
        _no_horizontal_scroll(guest)
        _screenshot(guest, artifacts, request, "shop-phone")

        # Made a draft, it leaves the shop; the admin still lists it, and can delete it.
        row.get_by_role("button", name=f"Edit {name}").click()
        expect(form.get_by_label("Image key")).to_have_value(key)
        form.get_by_label(re.compile(r"^Live")).uncheck()
        form.get_by_role("button", name="Save changes").click()
        expect(form.locator("[data-form-notice]")).to_have_text(f"Saved “{name}” (a draft).")
        expect(row).to_contain_text("Draft")
        guest.reload()
        expect(guest.locator("[data-shop-state]")).not_to_have_text("Loading products…")
        expect(card).to_have_count(0)
        row.get_by_role("button", name=f"Delete {name}").click()
        page.locator("[data-confirm-dialog]").get_by_role("button", name="Delete").click()
        expect(row).to_have_count(0)


def test_apps_attendee_uploads_event_photo_guest_sees_its_thumbnail(
    browser: Browser,
    page: Page,
    server: Server,
    shot: Shot,
    watch: Watch,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    email, password = _admin(server)
    attendee = new_user(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        # What the attendee reads off their profile page and tells the admin.
        sub = client.get("/auth/me", headers=bearer(attendee.signin(client)["accessToken"])).json()["sub"]

    # The admin works at a phone's width here, the attendee at a desktop's.
    page.set_viewport_size(PHONE)
    sign_in(page, email, password)
    page.goto("/admin")
    events = page.locator("[data-event-form]")
    name = f"Launch party {uuid.uuid4().hex[:6]}"
    events.get_by_label("Name").fill(name)
    events.get_by_label("Starts").fill("2026-06-01T18:00")
    events.get_by_label("Ends").fill("2026-06-01T23:30")
    events.get_by_role("button", name="Create event").click()
    expect(events.locator("[data-form-notice]")).to_contain_text(f"Created “{name}”")
    event_row = page.locator("[data-admin-events] .admin-item", has_text=name)
    expect(event_row).to_be_visible()
    event_id = event_row.get_attribute("data-event-id")
    assert event_id

    attendees = page.locator("[data-attendee-form]")
    expect(attendees.get_by_label("Event")).to_have_value(event_id)
    attendees.get_by_label("User ID of the attendee").fill(sub)
    attendees.get_by_role("button", name="Register attendee").click()
    expect(attendees.locator("[data-form-notice]")).to_have_text(f"Registered {attendee.email}.")
    expect(page.locator(f'[data-attendees] [data-user-sub="{sub}"]')).to_contain_text(attendee.email)
    _no_horizontal_scroll(page)
    shot("attendee-registered-phone")
    sign_out(page)
    page.set_viewport_size(DESKTOP)

    sign_in(page, attendee.email, attendee.password)
    expect(page.get_by_role("link", name="Admin")).to_be_hidden()
    page.goto("/admin")
    expect(page.locator("[data-admins-only]")).to_contain_text("Admins only")
    expect(page.locator("[data-admin-body]")).to_be_hidden()
    page.goto(f"/events/{event_id}")
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    uploader = page.locator("#event-uploader")
    expect(uploader).to_be_visible()
    initiated: list[str] = []
    page.on("request", lambda r: initiated.append(r.url) if r.url.endswith("/initiate-upload") else None)
    photo = {"name": "pier.jpg", "mimeType": "image/jpeg", "buffer": jpeg(800, 600, seed=7)}

    # A photo picked before it has a title is refused next to the Title field, and nothing is sent.
    uploader.locator("input[type=file]").set_input_files(files=[photo])
    expect(uploader.locator("#photo-title-error")).to_have_text("Give the photo a title first, then choose it.")
    expect(uploader.locator(".upload")).to_have_count(0)
    assert initiated == []

    uploader.get_by_label("Title").fill("Sunset from the pier")
    uploader.get_by_label("Description").fill("Everyone on the pier at nine.")
    uploader.locator("input[type=file]").set_input_files(files=[photo])
    row = upload_row(uploader, "pier.jpg")
    expect(row).to_have_attribute("data-state", "ready", timeout=60_000)
    photo_id = row.get_attribute("data-photo-id")
    assert photo_id
    assert len(initiated) == 1
    expect(row.locator(".upload-caption")).to_have_text("Sunset from the pier")
    expect(row.locator("progress")).to_have_attribute("data-percent", "100")
    _served_from_cdn(page, f'img[data-photo-id="{photo_id}"]')
    shot("photo-uploaded")

    with _guest_page(browser, server, watch) as guest:
        guest.goto(f"/events/{event_id}")
        expect(guest.get_by_role("heading", name=name, level=1)).to_be_visible()
        selector = f'img[data-photo-id="{photo_id}"]'
        _served_from_cdn(guest, selector)
        card = guest.locator(".event-photo", has=guest.locator(selector))
        expect(card.get_by_role("heading", name="Sunset from the pier")).to_be_visible()
        expect(card).to_contain_text("Everyone on the pier at nine.")
        expect(guest.locator("[data-photo-upload]")).to_be_hidden()
        expect(guest.locator("[data-upload-note]")).to_contain_text("as a registered attendee")
        _no_horizontal_scroll(guest)
        _screenshot(guest, artifacts, request, "event-phone")
