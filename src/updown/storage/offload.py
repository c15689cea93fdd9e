"""Download offload settings, and the S3 backend's offload: a presigned GET the front server sends.

``storage.offload`` lets a front server send the bytes of a GET updown has decided (signature,
policy, conditionals, range). The local backend names the version file (``local.offload``); the
S3 backend names a short-lived presigned GET of the same key in the store, which nginx's
``internal`` location fetches itself (deploy/nginx/updown.conf.template):

``X-Accel-Redirect: <offload_prefix><path>?<query>`` — the presigned URL's path, percent-encoded
once more (nginx decodes the header's path once, and the location sends the result as it is: the
exact path that was signed), and its query as signed (nginx never decodes it).

The bytes are exactly the object updown described, or none: the URL signs ``If-Match`` with the
ETag updown answered, so the store sends that version or ``412``; a front server that does not send
that header (or another value) gets ``403`` from the store, which checks the signature. A range is
the one updown resolved (``bytes=<first>-<last>`` against the size it saw), signed as ``Range`` and
handed to nginx in ``X-Updown-Range``: several, malformed or open ranges are never re-read by the
store its own way. The front server turns the store's errors into its own (a replaced object:
``503``, asked again; a refused signature: ``502``), so a client never sees a mix or the store's
error body. Pure: signs with ``core.sigv4``, no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from updown.core.sigv4 import Credentials, Signer, object_url, uri_encode
from updown.errors import ConfigError
from updown.storage.base import ObjectInfo

MODES: Final = ("none", "x-accel-redirect", "x-sendfile")
# How long the front server has to start the store's GET (it is sent at once; a download may run
# longer: the store checks the expiry when the request arrives).
PRESIGN_SECONDS: Final = 60
RANGE_HEADER: Final = b"x-updown-range"
_PREFIX_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")


def check_settings(mode: str, prefix: str) -> None:
    """``storage.offload`` and ``storage.offload_prefix`` as both backends need them.

    Raises:
        ConfigError: an unknown mode, or (x-accel-redirect) a prefix that is no URI path that
            starts and ends with ``/``.
    """
    if mode not in MODES:
        raise ConfigError(f"storage.offload: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "x-accel-redirect" and (
        len(prefix) < 3 or not prefix.startswith("/") or not prefix.endswith("/") or not set(prefix) <= _PREFIX_CHARS
    ):
        raise ConfigError("storage.offload_prefix: a URI path that starts and ends with / (e.g. /_updown_objects/)")


class PresignedOffload:
    """The offload headers of the S3 backend: `headers` of one decided GET."""

    def __init__(
        self,
        prefix: str,
        *,
        endpoint: str,
        bucket: str,
        path_style: bool,
        credentials: Credentials,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``endpoint`` is the store's ``scheme://host[:port]`` that nginx proxies to (the S3
        backend's); objects are addressed path-style (``/<bucket>/<key>``) or on the bucket's
        virtual host (``<bucket>.<host>``, then nginx's Host must be that name).

        Raises:
            ConfigError: a bad prefix (`check_settings`), or no store credentials to sign with.
        """
        check_settings("x-accel-redirect", prefix)
        if not credentials.access_key_id or not credentials.secret_access_key:
            raise ConfigError(
                "storage.offload on the s3 backend signs the store's GETs: set s3.access_key_id and s3.secret_access_key"
            )
        scheme, sep, host = endpoint.rstrip("/").partition("://")
        if not sep or not host or "/" in host:
            raise ConfigError(f"storage.offload: the s3 endpoint must be scheme://host[:port], got {endpoint!r}")
        self._origin = f"{scheme}://{host}" if path_style else f"{scheme}://{bucket}.{host}"
        self._bucket = bucket if path_style else ""
        self._prefix = prefix.rstrip("/")
        self._signer = Signer(credentials, region)
        self._clock = clock

    def headers(self, info: ObjectInfo, span: tuple[int, int] | None) -> list[tuple[bytes, bytes]]:
        """``X-Accel-Redirect`` (and ``X-Updown-Range`` for a range) for ``span`` of the version
        ``info`` describes; ``span`` is resolved (`resolve_range`), None for the whole object."""
        signed: dict[str, str] = {"if-match": f'"{info.etag}"'}
        if span is not None:
            signed["range"] = f"bytes={span[0]}-{span[1]}"
        if self._bucket:
            url = object_url(self._origin, self._bucket, info.key)
        else:
            url = f"{self._origin}/{uri_encode(info.key).replace('%2F', '/')}"
        presigned = self._signer.presign("GET", url, expires=PRESIGN_SECONDS, now=self._clock(), headers=signed)
        path, _, query = presigned[len(self._origin) :].partition("?")
        # The path holds only unreserved characters, "/" and escapes: escaping each "%" once more
        # is a second percent-encoding, which nginx's one decode undoes.
        out = [(b"x-accel-redirect", f"{self._prefix}{path.replace('%', '%25')}?{query}".encode("ascii"))]
        if span is not None:
            out.append((RANGE_HEADER, signed["range"].encode("ascii")))
        return out
