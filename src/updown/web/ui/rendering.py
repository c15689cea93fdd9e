"""Server-rendered pages: the Jinja2 environment and what every template is given.

The uploader's limits (types, sizes, part size) are rendered from the same settings that
``POST /storage/uploads`` enforces, so the page refuses early what the server would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import jinja2
from starlette.responses import HTMLResponse

from updown import __version__
from updown.settings import Settings
from updown.web.ui.assets import TEMPLATES_DIR
from updown.web.ui.csp import page_headers

MIB: Final = 1024 * 1024
# Files above this go multipart (parts in parallel, resumable); below, one PUT is quicker.
MULTIPART_THRESHOLD: Final = 8 * MIB
# The part size the browser asks for: S3's smallest, so even mid-size files upload in parallel.
BROWSER_PART_SIZE: Final = 5 * MIB
MAX_FILES: Final = 10
LEVEL_LABELS: Final = {
    "private": "Private: only you",
    "protected": "Protected: you write, signed-in users read",
    "public": "Public: everyone reads",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class LevelLimits:
    """What one access level accepts."""

    level: str
    label: str
    accept: tuple[str, ...]
    max_size: int


@dataclass(frozen=True)
class UploadLimits:
    """What the uploader is rendered with."""

    levels: tuple[LevelLimits, ...]
    max_files: int
    multipart_threshold: int
    part_size: int

    def level(self, name: str) -> LevelLimits:
        return next(limits for limits in self.levels if limits.level == name)


def upload_limits(settings: Settings) -> UploadLimits:
    u = settings.uploads
    levels = tuple(
        LevelLimits(
            level=level,
            label=LEVEL_LABELS[level],
            accept=tuple(u.level_types.get(level, u.allowed_types)),
            max_size=u.max_size[level],
        )
        for level in LEVEL_LABELS
    )
    return UploadLimits(
        levels=levels,
        max_files=MAX_FILES,
        multipart_threshold=min(MULTIPART_THRESHOLD, u.max_single_size),
        part_size=max(u.min_part_size, BROWSER_PART_SIZE),
    )


def render(settings: Settings, template: str, *, redoc: bool = False, **context: Any) -> HTMLResponse:
    """A page with its security headers."""
    html = _env.get_template(template).render(
        version=__version__,
        dev_outbox=not settings.mail.smtp_host,
        limits=upload_limits(settings),
        **context,
    )
    return HTMLResponse(html, headers=page_headers(settings, redoc=redoc))
