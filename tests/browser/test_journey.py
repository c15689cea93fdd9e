"""The newcomer's journey in a real browser: sign up, confirm with the mailed code, upload an image
with the file input, see its thumbnail in the gallery, make it the profile photo, sign out and in
again: the photo is still there."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Shot
from tests.browser.ui import sign_in, sign_out, upload_row, wait_image_loaded, wait_ready
from tests.e2e.files_helpers import png
from tests.e2e.userpool_helpers import latest_code, new_email, new_password
from tests.support.processes import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_journey_sign_up_confirm_upload_gallery_profile_photo_kept_after_sign_in(
    page: Page, server: Server, shot: Shot
) -> None:
    email, password = new_email("ui"), new_password()
    page.goto("/")
    shot("sign-in-page")

    page.get_by_role("tab", name="Create account").click()
    signup = page.locator("#form-signup")
    signup.get_by_label("Email").fill(email)
    signup.get_by_label("Password", exact=True).fill(password)
    signup.get_by_label("Confirm password").fill(password)
    shot("sign-up-filled")
    signup.get_by_role("button", name="Sign up").click()

    confirm = page.locator("#form-confirm")
    expect(confirm).to_be_visible()
    # The page says where a development server's code is: the outbox, read with `updown mail list`.
    expect(confirm.locator("[data-dev-outbox]")).to_contain_text("updown mail list")
    confirm.get_by_label("Confirmation code").fill(latest_code(server, email))
    shot("confirm-code")
    confirm.get_by_role("button", name="Confirm").click()

    # As Amplify's Authenticator does, confirming right after signing up signs in.
    expect(page.locator("[data-workspace]")).to_be_visible()
    expect(page.locator("[data-account-email]")).to_have_text(email)
    shot("signed-in")

    uploader = page.locator("#home-uploader")
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": "cat.png", "mimeType": "image/png", "buffer": png(320, 240, seed=7)}]
    )
    row = upload_row(uploader, "cat.png")
    key = wait_ready(row)
    assert key.startswith("private/")
    assert key.endswith("/cat.png")
    expect(row.locator("progress")).to_have_attribute("data-percent", "100")
    shot("uploaded")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Files").click()
    expect(page).to_have_url(f"{server.url}/files?level=private")
    thumb = f'img[data-key="{key}"]'
    # The gallery shows the thumbnail variant (256 px on its longest side), not the 320 px original.
    assert wait_image_loaded(page, thumb) == 256
    card = page.locator(".file-card", has=page.locator(thumb))
    expect(card).to_contain_text("cat.png")
    expect(card.locator(".file-facts")).to_contain_text("KB")
    shot("gallery")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    expect(page.locator("[data-attributes]")).to_contain_text(email)
    page.locator(f'[data-choices] button[data-choice="{key}"]').click()
    photo = page.locator("[data-profile-photo]")
    expect(photo).to_have_attribute("data-key", key)
    wait_image_loaded(page, "[data-profile-photo]")
    expect(page.locator("[data-attributes]")).to_contain_text(key)
    shot("profile-photo-set")

    sign_out(page)
    shot("signed-out")
    sign_in(page, email, password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    expect(photo).to_have_attribute("data-key", key)
    assert wait_image_loaded(page, "[data-profile-photo]") == 256
    shot("profile-photo-after-sign-in")
