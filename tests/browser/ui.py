"""What the browser tests do the way a person would: sign in through the form, pick files, wait."""

from __future__ import annotations

import hashlib

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.e2e.userpool_helpers import User, confirmed_user
from tests.support.processes import Server

MIB = 1024 * 1024


def new_user(server: Server) -> User:
    """A confirmed user made through the API (the sign-up form has its own test)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return confirmed_user(client, server)


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/")
    form = page.locator("#form-signin")
    expect(form).to_be_visible()
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign in").click()
    expect(page.locator("[data-workspace]")).to_be_visible()
    expect(page.locator("[data-account-email]")).to_have_text(email)


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#form-signin")).to_be_visible()


def upload_row(uploader: Locator, name: str) -> Locator:
    return uploader.locator(".upload", has=uploader.page.locator(".upload-name", has_text=name))


def wait_ready(row: Locator, timeout: float = 60_000) -> str:
    """Waits until the row's file is processed; returns its object key."""
    expect(row).to_have_attribute("data-state", "ready", timeout=timeout)
    key = row.get_attribute("data-key")
    assert key
    return key


def wait_image_loaded(page: Page, selector: str) -> int:
    """Waits until the image is decoded; returns its natural width."""
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0 }", arg=selector
    )
    width: int = page.locator(selector).evaluate("i => i.naturalWidth")
    return width


def zip_bytes(size: int, seed: int = 1) -> bytes:
    """``size`` bytes that sniff as a ZIP archive (the local header's magic, then noise)."""
    out = bytearray(b"PK\x03\x04")
    block = 0
    while len(out) < size:
        out += hashlib.shake_256(f"{seed}:{block}".encode()).digest(1 << 20)
        block += 1
    return bytes(out[:size])
