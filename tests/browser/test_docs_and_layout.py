"""Offline API docs and the pages' reach: Swagger UI and ReDoc render from updown's own assets with
every other host cut off; every page fits a phone's width; the authenticator works by keyboard
alone with a visible focus. Screenshots of /, /files and /profile at desktop and phone width."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, Shot
from tests.browser.ui import new_user, sign_in
from tests.browser.watch import Watch
from tests.e2e.files_helpers import png
from tests.support.processes import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_docs_swagger_ui_and_redoc_render_offline(page: Page, watch: Watch, shot: Shot) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("updown")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert page.locator(".swagger-ui .opblock").count() >= 20
    expect(page.locator(".swagger-ui .opblock-summary-path", has_text="/storage/uploads").first).to_be_visible()
    shot("swagger-ui")

    page.goto("/redoc")
    expect(page.locator("redoc h1").first).to_contain_text("updown")
    expect(page.get_by_text("/storage/uploads").first).to_be_attached()
    shot("redoc")
    # Nothing was even attempted outside 127.0.0.1 (the watch aborts and records any such request).
    assert watch.external_requests == []
    assert requested
    assert all(u.startswith(("http://127.0.0.1:", "blob:", "data:")) for u in requested), requested


def _no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page is {width[0]} px wide in a {width[1]} px window"


@pytest.mark.parametrize(("size", "label"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_layout_pages_fit_the_window_desktop_and_phone(
    browser: Browser, server: Server, artifacts: Path, size: dict[str, int], label: str, watch: Watch
) -> None:
    folder = artifacts / f"pages-{label}"
    folder.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        viewport=size, base_url=server.url, is_mobile=label == "phone", has_touch=label == "phone"
    )
    watch.attach(context)
    try:
        page = context.new_page()
        page.goto("/")
        _no_horizontal_scroll(page)
        page.screenshot(path=str(folder / "01-sign-in.png"), full_page=True)
        someone = new_user(server)
        sign_in(page, someone.email, someone.password)
        page.locator("#home-uploader input[type=file]").set_input_files(
            files=[{"name": "view.png", "mimeType": "image/png", "buffer": png(480, 320, seed=40)}]
        )
        expect(page.locator("#home-uploader .upload")).to_have_attribute("data-state", "ready", timeout=30_000)
        _no_horizontal_scroll(page)
        page.screenshot(path=str(folder / "02-upload.png"), full_page=True)
        page.goto("/files")
        page.wait_for_function(
            "() => { const i = document.querySelector('img[data-key]'); return i && i.naturalWidth > 0 }"
        )
        _no_horizontal_scroll(page)
        page.screenshot(path=str(folder / "03-files.png"), full_page=True)
        page.get_by_role("button", name="Use as profile photo").click()
        expect(page.locator(".card-status")).to_have_text("This is now your profile photo.")
        page.goto("/profile")
        expect(page.locator("[data-attributes]")).to_contain_text(someone.email)
        page.wait_for_function("() => document.querySelector('[data-profile-photo]').naturalWidth > 0")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-choices] img')].every(i => i.naturalWidth > 0)"
        )
        _no_horizontal_scroll(page)
        page.screenshot(path=str(folder / "04-profile.png"), full_page=True)
    finally:
        context.close()
    problems = watch.problems()
    assert not problems, "\n".join(problems)


def test_layout_keyboard_alone_signs_in_with_a_visible_focus(page: Page, server: Server, shot: Shot) -> None:
    someone = new_user(server)
    page.goto("/")
    focused: list[str] = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()"))
        if focused[-1] == "signin-email":
            break
    assert focused[0] == "Skip to content", focused
    assert focused[-1] == "signin-email", focused
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); "
        "return [document.activeElement.matches(':focus-visible'), s.outlineStyle, s.outlineWidth] }"
    )
    assert outline[0] is True, outline
    assert outline[1] != "none", outline
    assert outline[2] != "0px", outline
    shot("focus-on-email")
    page.keyboard.type(someone.email)
    page.keyboard.press("Tab")
    page.keyboard.type(someone.password)
    page.keyboard.press("Enter")
    expect(page.locator("[data-account-email]")).to_have_text(someone.email)
    # The file picker is reachable too, and its button shows the focus.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.type === 'file'"):
            break
    assert page.evaluate("() => document.activeElement.type") == "file"
    outline = page.evaluate("() => getComputedStyle(document.activeElement.closest('label')).outlineStyle")
    assert outline != "none"
    shot("focus-on-file-picker")
