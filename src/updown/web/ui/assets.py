"""The UI's static files under ``/static``: ES modules, the stylesheet and the vendored docs bundles.

There is no build step, so file names carry no content hash; ``Cache-Control: no-cache`` makes the
browser revalidate (a cheap 304 on the ETag) and an upgrade is seen on the next page load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

UI_DIR: Final = Path(__file__).parent
STATIC_DIR: Final = UI_DIR / "static"
TEMPLATES_DIR: Final = UI_DIR / "templates"


class StaticAssets(StaticFiles):
    """``StaticFiles`` that always revalidates and is never sniffed into another type."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def static_app() -> StaticAssets:
    return StaticAssets(directory=STATIC_DIR)
