"""RFC 9457 problem+json: the one shape every JSON API error takes, mapped from ``updown.errors``."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from updown import errors

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger("updown.web")

_HTTP_STATUS_ERRORS: dict[int, type[errors.UpdownError]] = {
    400: errors.InvalidRequest,
    401: errors.NotAuthorized,
    403: errors.AccessDenied,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    409: errors.Conflict,
    412: errors.PreconditionFailed,
    413: errors.EntityTooLarge,
    429: errors.TooManyRequests,
    431: errors.RequestHeaderFieldsTooLarge,
}


def problem_body(err: errors.UpdownError, *, detail: str | None = None) -> dict[str, Any]:
    """The problem document for an error; server errors never show their detail."""
    shown = err.title if isinstance(err, errors.ServerError) else (detail or err.detail)
    return {
        "type": f"https://updown.dev/errors/{err.code}",
        "title": err.title,
        "status": err.status,
        "detail": shown,
        "code": err.code,
    }


def problem_response(err: errors.UpdownError, *, detail: str | None = None) -> Response:
    headers = {}
    if isinstance(err, errors.TooManyRequests):
        headers["Retry-After"] = str(err.retry_after)
    return Response(
        json.dumps(problem_body(err, detail=detail)).encode(),
        status_code=err.status,
        media_type=PROBLEM_TYPE,
        headers=headers,
    )


def install(app: FastAPI) -> None:
    """Maps every error the JSON API can meet to problem+json; nothing else escapes."""

    async def on_updown_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.UpdownError)
        if isinstance(exc, errors.ServerError):
            log.error("server error: %s", exc.detail, exc_info=exc)
        return problem_response(exc)

    async def on_validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(errors.InvalidRequest(_describe_validation(exc)))

    async def on_http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        cls = _HTTP_STATUS_ERRORS.get(exc.status_code)
        if cls is None:
            cls = errors.ServerError if exc.status_code >= 500 else errors.ClientError
        err = cls()
        response = problem_response(err)
        response.status_code = exc.status_code
        return response

    async def on_unexpected(_request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return problem_response(errors.ServerError())

    app.add_exception_handler(errors.UpdownError, on_updown_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def _describe_validation(exc: RequestValidationError) -> str:
    """One line naming the first fault, e.g. ``body.email: field required``; never echoes values."""
    errs = exc.errors()
    if not errs:
        return "invalid request"
    first = errs[0]
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON"
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    msg = str(first.get("msg", "invalid value"))
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{loc}: {msg}{more}"
