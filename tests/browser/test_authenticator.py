"""The authenticator in a real browser: API errors in words next to their field, forgot and reset
password with the mailed code, the new-password challenge of an admin-created user, a guest
browsing public files without signing in, and tokens refreshed silently before they expire."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Shot
from tests.browser.ui import new_user, sign_in, sign_out, wait_image_loaded
from tests.browser.watch import Watch
from tests.e2e.files_helpers import png, upload, user
from tests.e2e.userpool_helpers import latest_code, new_email, new_password
from tests.support.processes import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _error_of(page: Page, input_id: str) -> str:
    """The text of the error the input's aria-describedby points at (the one next to it)."""
    described = page.locator(f"#{input_id}").get_attribute("aria-describedby") or ""
    error_id = described.split()[-1]
    return page.locator(f"#{error_id}").inner_text()


def test_authenticator_api_errors_shown_next_to_their_field(
    page: Page, server: Server, shot: Shot, watch: Watch
) -> None:
    watch.allow(r"status of (401|409|400)")
    existing = new_user(server)
    page.goto("/")
    signin = page.locator("#form-signin")
    signin.get_by_label("Email").fill(existing.email)
    signin.get_by_label("Password", exact=True).fill(existing.password + "-wrong")
    signin.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-password-error")).to_be_visible()
    assert "Incorrect username or password" in _error_of(page, "signin-password")
    expect(page.locator("#signin-password")).to_have_attribute("aria-invalid", "true")
    shot("wrong-password")

    page.get_by_role("tab", name="Create account").click()
    signup = page.locator("#form-signup")
    signup.get_by_label("Email").fill(existing.email)
    signup.get_by_label("Password", exact=True).fill(new_password())
    signup.get_by_label("Confirm password").fill("something else")
    signup.get_by_role("button", name="Sign up").click()
    expect(page.locator("#signup-confirm-error")).to_have_text("The passwords do not match.")

    signup.get_by_label("Email").fill(new_email("weak"))
    signup.get_by_label("Password", exact=True).fill("password")
    signup.get_by_label("Confirm password").fill("password")
    signup.get_by_role("button", name="Sign up").click()
    expect(page.locator("#signup-password-error")).to_be_visible()
    expect(page.locator("#signup-password")).to_have_attribute("aria-invalid", "true")
    assert _error_of(page, "signup-password").strip()
    shot("weak-password")

    password = new_password()
    signup.get_by_label("Password", exact=True).fill(password)
    signup.get_by_label("Confirm password").fill(password)
    signup.get_by_role("button", name="Sign up").click()
    confirm = page.locator("#form-confirm")
    confirm.get_by_label("Confirmation code").fill("000000")
    confirm.get_by_role("button", name="Confirm").click()
    expect(page.locator("#confirm-code-error")).to_be_visible()
    assert "code" in _error_of(page, "confirm-code").lower()
    expect(page.locator("#confirm-code")).to_have_attribute("aria-invalid", "true")
    shot("wrong-code")


def test_authenticator_forgot_and_reset_password_with_the_mailed_code(page: Page, server: Server, shot: Shot) -> None:
    someone = new_user(server)
    page.goto("/")
    page.get_by_role("button", name="Forgot your password?").click()
    forgot = page.locator("#form-forgot")
    forgot.get_by_label("Email").fill(someone.email)
    forgot.get_by_role("button", name="Send code").click()
    reset = page.locator("#form-reset")
    expect(reset).to_be_visible()
    expect(reset.get_by_label("Email")).to_have_value(someone.email)
    reset.get_by_label("Confirmation code").fill(latest_code(server, someone.email))
    chosen = new_password()
    reset.get_by_label("New password").fill(chosen)
    shot("reset-filled")
    reset.get_by_role("button", name="Reset password").click()
    signin = page.locator("#form-signin")
    expect(signin.locator("[data-form-notice]")).to_contain_text("password has been changed")
    sign_in(page, someone.email, chosen)
    shot("signed-in-with-new-password")


def test_authenticator_new_password_challenge_of_admin_created_user(page: Page, server: Server, shot: Shot) -> None:
    email, temporary = new_email("admin-made"), new_password()
    server.cli("user", "create", email, "--password", temporary, "--temporary")
    page.goto("/")
    signin = page.locator("#form-signin")
    signin.get_by_label("Email").fill(email)
    signin.get_by_label("Password", exact=True).fill(temporary)
    signin.get_by_role("button", name="Sign in").click()
    challenge = page.locator("#form-newpassword")
    expect(challenge).to_be_visible()
    chosen = new_password()
    challenge.get_by_label("New password").fill(chosen)
    challenge.get_by_label("Confirm password").fill(chosen)
    shot("new-password")
    challenge.get_by_role("button", name="Change password").click()
    expect(page.locator("[data-account-email]")).to_have_text(email)
    sign_out(page)
    sign_in(page, email, chosen)


def test_authenticator_guest_browses_public_files_without_signing_in(page: Page, server: Server, shot: Shot) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        owner = user(client, server)
        record = upload(
            client, owner, png(400, 240, seed=11), accessLevel="public", name=f"{owner.identity_id[-8:]}.png"
        )
    page.goto("/")
    page.get_by_role("link", name="Browse public files as a guest").click()
    expect(page.locator("[data-guest-note]")).to_be_visible()
    expect(page.get_by_role("tab", name="Private")).to_be_hidden()
    selector = f'img[data-key="{record["key"]}"]'
    assert wait_image_loaded(page, selector) == 256
    # Public thumbnails come straight from the CDN, no presigning.
    assert "/cdn/" in (page.locator(selector).get_attribute("src") or "")
    expect(page.locator("[data-account]")).to_be_hidden()
    shot("guest-gallery")


def test_authenticator_refreshes_tokens_silently_before_expiry(page: Page, server: Server) -> None:
    someone = new_user(server)
    page.clock.install()
    sign_in(page, someone.email, someone.password)
    before = page.evaluate("JSON.parse(localStorage.getItem('updown.session'))")
    # Just before the access token's hour is up, the page rotates the refresh token by itself.
    with page.expect_response(lambda r: r.url.endswith("/auth/refresh") and r.status == 200):
        page.clock.fast_forward("59:30")
    page.wait_for_function(
        "old => JSON.parse(localStorage.getItem('updown.session')).refreshToken !== old", arg=before["refreshToken"]
    )
    after = page.evaluate("JSON.parse(localStorage.getItem('updown.session'))")
    assert after["accessToken"] != before["accessToken"]
    # The new tokens work (presenting the old refresh token again would revoke the session).
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    expect(page.locator("[data-attributes]")).to_contain_text(someone.email)


def test_authenticator_profile_sends_to_sign_in_and_back(page: Page, server: Server) -> None:
    someone = new_user(server)
    page.goto("/profile")
    expect(page).to_have_url(f"{server.url}/?next=%2Fprofile")
    form = page.locator("#form-signin")
    form.get_by_label("Email").fill(someone.email)
    form.get_by_label("Password", exact=True).fill(someone.password)
    form.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/profile")
    expect(page.locator("[data-attributes]")).to_contain_text(someone.email)
