"""The entry point server workers import: loads settings from the environment pinned by the CLI."""

from __future__ import annotations

from starlette.types import ASGIApp

from updown import runtime, settings
from updown.web.app import create_app


def factory() -> ASGIApp:
    """Builds the app in a server worker (``granian --factory updown.web.asgi:factory``)."""
    return create_app(runtime.build(settings.load()))
