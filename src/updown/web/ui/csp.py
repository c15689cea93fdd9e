"""The security headers of the UI's pages: a strict Content-Security-Policy and its companions.

Pages run only scripts from ``'self'`` (no inline script, no eval) and may be framed by nobody.
Images and uploads also reach the data plane: same origin (``/s3``, ``/cdn``) for the local
backend, plus the public URL's origin and, for the S3 backend, the S3 endpoint that presigned URLs
point at (``s3.public_endpoint_url``, else ``s3.endpoint_url``). Swagger UI (``/docs``) runs
under the same policy; only the ReDoc page relaxes two directives, as its bundle needs:
``style-src 'unsafe-inline'`` (styled-components injects ``<style>`` elements) and
``worker-src blob:`` (its search index runs in a blob worker).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from updown.settings import Settings

# AWS's default endpoints when the S3 backend has no endpoint_url (virtual-hosted or path style).
_AWS_S3: tuple[str, ...] = ("https://*.amazonaws.com",)


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def data_plane_origins(settings: Settings) -> tuple[str, ...]:
    """Origins besides ``'self'`` that presigned and CDN URLs may point at."""
    found: list[str] = []
    public = origin(settings.public_url)
    if public:
        found.append(public)
    if settings.storage.backend == "s3":
        # The endpoint presigned URLs point at: the public one clients reach, else endpoint_url.
        public_endpoint = settings.s3.public_endpoint_url or settings.s3.endpoint_url
        endpoint = origin(public_endpoint) if public_endpoint else None
        found.extend([endpoint] if endpoint else _AWS_S3)
    return tuple(dict.fromkeys(found))


def content_security_policy(settings: Settings, *, redoc: bool = False) -> str:
    """The CSP of a UI page; ``redoc`` for the ReDoc page."""
    extra = " ".join(data_plane_origins(settings))
    plane = f" {extra}" if extra else ""
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'" if redoc else "style-src 'self'",
        f"img-src 'self' blob: data:{plane}",
        f"connect-src 'self'{plane}",
        "font-src 'self'",
        "worker-src 'self' blob:" if redoc else "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def page_headers(settings: Settings, *, redoc: bool = False) -> dict[str, str]:
    """Every header a UI page is sent with."""
    return {
        "Content-Security-Policy": content_security_policy(settings, redoc=redoc),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-cache",
    }
