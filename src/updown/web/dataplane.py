"""The S3-compatible data plane, ``/s3/{bucket}/{key}``: plain ASGI, bytes streamed both ways.

Every request is SigV4-signed (presigned URL, or an ``Authorization`` header from temporary
credentials); the signer decides the principal: the service credentials make `SERVICE`, temporary
ones the principal `resolve_temporary` returns. Every read and write then goes through
`files.objects.Objects` (the gate, the owner rule, reserved metadata, upload intents), which asks
before the object is looked up. This module does protocol work only. Errors are S3 XML documents,
mapped in `web.s3xml`.

Object ownership: when a temporary-credential principal writes, the data plane stores its identity
id as the reserved metadata ``updown-owner`` (`OWNER_METADATA`); clients may not send
``x-amz-meta-updown-owner`` (400 InvalidArgument) and it is never served back. A later write or
delete under ``public/`` by temporary credentials passes it to the gate as the object's owner.

Bodies stream from the backend in pieces of one pinned version, so a concurrent replace never
mixes versions. (ASGI ``pathsend`` was measured too, with bench/bench_dataplane.py: granian's
zero-copy path gave 0.51-0.73x nginx on a 1 GiB GET here, the streamed path 0.82-0.96x, so the
streamed path is the one way.) Pieces may be ``bytearray``s: granian copies a body out of any
bytes-like object before ``send`` returns.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Final
from urllib.parse import quote, unquote_to_bytes

import anyio.to_thread
from starlette.types import Message, Receive, Scope, Send

from updown.auth.principal import SERVICE, Principal
from updown.clock import Clock
from updown.core.keys import validate_key
from updown.core.postpolicy import verify_post
from updown.core.sigv4 import UNSIGNED_PAYLOAD, Credentials
from updown.core.sigv4verify import RequestParts, VerifiedRequest, verify
from updown.errors import (
    AccessDenied,
    EntityTooLarge,
    IncompleteBody,
    InvalidArgument,
    InvalidRequest,
    MethodNotAllowed,
    MissingContentLength,
    NoSuchBucket,
    XAmzContentSHA256Mismatch,
)
from updown.files import access
from updown.files.objects import HIDDEN, Objects
from updown.files.records import OWNER_METADATA
from updown.storage.base import MAX_LIST_LIMIT
from updown.web import s3http, s3xml, serving
from updown.web.postform import DISCONNECTED, FormStream, boundary_of

__all__ = ["OWNER_METADATA", "DataPlane"]
_ACTIONS: Final = {"GET": access.GET, "HEAD": access.GET, "PUT": access.PUT, "DELETE": access.DELETE}
_CORS_METHODS: Final = ("GET", "HEAD", "PUT", "POST", "DELETE")
_EXPOSED: Final = b"ETag, Content-Length, Content-Range, Accept-Ranges, Last-Modified, x-amz-request-id"
_SUCCESS_STATUS: Final = {"200": 200, "201": 201, "204": 204}

ResolveTemporary = Callable[[str], tuple[Credentials, Principal] | None]


class _Exchange:
    """One request: what was parsed from it, and whether the answer has started."""

    __slots__ = ("headers", "key", "method", "origin", "raw_path", "request_id", "scope", "started")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.request_id = secrets.token_hex(8).upper()
        self.started = False
        self.key: str | None = None
        self.headers: dict[str, str] = {}
        self.origin: str | None = None
        raw = scope.get("raw_path")
        self.raw_path: bytes = raw if raw else quote(scope["path"]).encode()


class DataPlane:
    """The ``/s3`` ASGI app for one bucket on one storage backend."""

    def __init__(
        self,
        objects: Objects,
        *,
        bucket: str,
        region: str,
        service_credentials: Credentials,
        max_object_size: int,
        clock: Clock,
        resolve_temporary: ResolveTemporary | None = None,
        cors_origins: tuple[str, ...] = (),
        prefix: str = "/s3",
    ) -> None:
        self.objects = objects
        self.bucket = bucket
        self.region = region
        self.max_object_size = max_object_size
        self.clock = clock
        self._service = service_credentials
        self._resolve_temporary = resolve_temporary
        self._cors_origins = frozenset(cors_origins)
        self._prefix = prefix.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        ex = _Exchange(scope)
        try:
            await self._handle(ex, receive, send)
        except Exception as exc:
            if ex.started:
                # Too late for an error document: the connection is dropped, so the client sees a
                # cut-off body. A client going away is routine; a store failing is not.
                if not isinstance(exc, OSError):
                    s3xml.log.warning("data plane: answer cut off: %s", type(exc).__name__)
                return
            status, code, message = s3xml.s3_error(exc)
            body = (
                b""
                if ex.method == "HEAD"
                else s3xml.error_document(code, message, request_id=ex.request_id, key=ex.key)
            )
            headers = [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(body)).encode())]
            if status == 405:
                headers.append((b"allow", ", ".join(_CORS_METHODS).encode()))
            try:
                await self._start(ex, send, status, headers)
                await send({"type": "http.response.body", "body": body})
            except OSError:
                return  # nobody is listening any more

    async def _start(self, ex: _Exchange, send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        headers.append((b"x-amz-request-id", ex.request_id.encode()))
        if ex.origin is not None and self._origin_allowed(ex.origin):
            headers += [
                (b"access-control-allow-origin", ex.origin.encode("latin-1")),
                (b"access-control-expose-headers", _EXPOSED),
                (b"vary", b"Origin"),
            ]
        ex.started = True
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def _empty(self, ex: _Exchange, send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await self._start(ex, send, status, [*headers, (b"content-length", b"0")])
        await send({"type": "http.response.body", "body": b""})

    # ------------------------------------------------------------------ routing and authentication

    async def _handle(self, ex: _Exchange, receive: Receive, send: Send) -> None:
        ex.headers = s3http.request_headers(ex.scope["headers"])
        ex.origin = ex.headers.get("origin")
        raw = ex.raw_path
        if not raw.startswith(self._prefix + b"/"):
            raise NoSuchBucket()
        bucket_raw, _, key_raw = raw[len(self._prefix) + 1 :].partition(b"/")
        if unquote_to_bytes(bucket_raw) != self.bucket.encode():
            raise NoSuchBucket()
        if ex.method == "OPTIONS":
            await self._preflight(ex, send)
            return
        if not key_raw:
            await self._bucket_request(ex, receive, send)
            return
        try:
            key = unquote_to_bytes(key_raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument("the key is not valid UTF-8") from None
        ex.key = validate_key(key)  # only a valid key is echoed in error documents
        if ex.method not in _ACTIONS:
            raise MethodNotAllowed("The specified method is not allowed against this resource.")
        principal, verified = await self._authenticate(ex)
        if ex.method == "PUT":
            await self._put(ex, principal, verified, receive, send)
        elif ex.method == "DELETE":
            await self.objects.delete(principal, ex.key, **self._facts(ex))
            await self._empty(ex, send, 204, [])
        else:
            self.objects.check_read(principal, ex.key, **self._facts(ex))
            await self._get(ex, send)

    async def _lookup(self, access_key_id: str | None) -> tuple[list[Principal], Callable[[str], Credentials | None]]:
        """Credentials by access key id; the principal they stand for is appended to the list.

        Temporary credentials are looked up in the database *before* verifying, in a worker thread,
        so the event loop never waits on the database.
        """
        principals: list[Principal] = []
        found: tuple[Credentials, Principal] | None = None
        if access_key_id and access_key_id != self._service.access_key_id and self._resolve_temporary is not None:
            found = await anyio.to_thread.run_sync(self._resolve_temporary, access_key_id)

        def lookup(key_id: str) -> Credentials | None:
            if key_id == self._service.access_key_id:
                principals.append(SERVICE)
                return self._service
            if found is None or key_id != access_key_id:
                return None
            principals.append(found[1])
            return found[0]

        return principals, lookup

    async def _authenticate(self, ex: _Exchange) -> tuple[Principal, VerifiedRequest]:
        scope = ex.scope
        parts = RequestParts(ex.method, ex.raw_path, scope.get("query_string", b""), scope["headers"])
        principals, lookup = await self._lookup(_claimed_key_id(scope))
        verified = verify(parts, credentials=lookup, now=self.clock.now(), region=self.region)
        return principals[-1], verified

    def _facts(self, ex: _Exchange) -> dict[str, object]:
        client = ex.scope.get("client")
        return {
            "source_ip": client[0] if client else None,
            "secure_transport": ex.scope.get("scheme") == "https",
        }

    # ------------------------------------------------------------------ GET and HEAD

    async def _get(self, ex: _Exchange, send: Send) -> None:
        assert ex.key is not None

        async def start(status: int, headers: list[tuple[bytes, bytes]]) -> None:
            await self._start(ex, send, status, headers)

        await serving.stream_object(
            self.objects.storage,
            ex.key,
            method=ex.method,
            request_headers=ex.headers,
            overrides=s3http.query_params(ex.scope.get("query_string", b"")),
            hidden=HIDDEN,
            start=start,
            send=send,
        )

    # ------------------------------------------------------------------ PUT

    async def _put(
        self, ex: _Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
    ) -> None:
        assert ex.key is not None
        h = ex.headers
        if "x-amz-copy-source" in h:
            raise InvalidRequest("CopyObject is not supported here; use POST /storage/copy")
        # The signer chose the content type: one the signature does not cover would be the
        # client's choice, which is what binding it is meant to prevent.
        if "content-type" in h and verified.header("content-type") is None:
            raise AccessDenied("There were headers present in the request which were not signed")
        length = s3http.content_length(h)
        if length is None and "chunked" not in h.get("transfer-encoding", "").lower():
            raise MissingContentLength()
        if length is not None and length > self.max_object_size:
            raise EntityTooLarge(f"the body is {length} bytes; the limit is {self.max_object_size}")
        metadata = {n[len(s3http.META_PREFIX) :]: v for n, v in h.items() if n.startswith(s3http.META_PREFIX)}
        body = _request_body(receive, verified.payload_hash)
        q = s3http.query_params(ex.scope.get("query_string", b""))
        if "uploadId" in q or "partNumber" in q:
            # UploadPart: never a whole-object write, whatever else the request says.
            number = q.get("partNumber", "")
            if not number.isdigit() or not 1 <= int(number) <= 10_000 or not q.get("uploadId"):
                raise InvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
            etag = await self.objects.put_part(
                principal, ex.key, q["uploadId"], int(number), body, content_length=length
            )
            await self._empty(ex, send, 200, [(b"etag", f'"{etag}"'.encode())])
            return
        info = await self.objects.put(
            principal,
            ex.key,
            body,
            content_type=h.get("content-type"),
            metadata=metadata,
            content_length=length,
            facts=self._facts(ex),
        )
        await self._empty(ex, send, 200, [(b"etag", f'"{info.etag}"'.encode())])

    # ------------------------------------------------------------------ bucket: list, form upload

    async def _bucket_request(self, ex: _Exchange, receive: Receive, send: Send) -> None:
        if ex.method == "POST":
            await self._post(ex, receive, send)
            return
        if ex.method != "GET":
            raise MethodNotAllowed("The specified method is not allowed against this resource.")
        principal, _ = await self._authenticate(ex)
        q = s3http.query_params(ex.scope.get("query_string", b""))
        if q.get("list-type") != "2":
            raise InvalidArgument("only ListObjectsV2 (list-type=2) is supported on the bucket")
        for unsupported in ("delimiter", "start-after", "fetch-owner"):
            if q.get(unsupported):
                raise InvalidArgument(f"{unsupported} is not supported")
        prefix = q.get("prefix", "")
        raw_max = q.get("max-keys", str(MAX_LIST_LIMIT))
        if not raw_max.isdigit():
            raise InvalidArgument("max-keys must be a non-negative integer")
        max_keys = min(int(raw_max), MAX_LIST_LIMIT)
        token = q.get("continuation-token") or None
        page = await self.objects.list(principal, prefix, limit=max_keys, continuation_token=token, **self._facts(ex))
        doc = s3xml.list_objects_v2(
            self.bucket,
            prefix=prefix,
            page=page,
            max_keys=max_keys,
            continuation_token=token,
            url_encode=q.get("encoding-type") == "url",
        )
        headers = [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(doc)).encode())]
        await self._start(ex, send, 200, headers)
        await send({"type": "http.response.body", "body": doc})

    async def _post(self, ex: _Exchange, receive: Receive, send: Send) -> None:
        form = FormStream(receive, boundary_of(ex.headers.get("content-type")))
        fields = await form.fields()
        claimed = next((v for n, v in fields if n.lower() == "x-amz-credential"), "").partition("/")[0]
        principals, lookup = await self._lookup(claimed or None)
        post = verify_post(fields, bucket=self.bucket, credentials=lookup, now=self.clock.now(), region=self.region)
        principal = principals[-1]
        ex.key = validate_key(post.key_for(form.filename))
        metadata = {n[len(s3http.META_PREFIX) :]: v for n, v in post.fields.items() if n.startswith(s3http.META_PREFIX)}
        ctype = post.fields.get("content-type")
        limit = self.max_object_size if post.max_length is None else min(post.max_length, self.max_object_size)

        async def checked() -> AsyncIterator[bytes]:
            total = 0
            async for chunk in form.file_chunks():
                total += len(chunk)
                yield chunk
            # Raised before the iterator ends, so the store keeps nothing (and the old object).
            post.check_length(total)

        info = await self.objects.put(
            principal,
            ex.key,
            checked(),
            content_type=ctype,
            metadata=metadata,
            content_length=None,
            max_size=limit,
            facts=self._facts(ex),
        )
        await form.drain()
        status = _SUCCESS_STATUS.get(post.fields.get("success_action_status", ""), 204)
        location = f"/{self.bucket}/{quote(info.key, safe='/~')}"
        headers = [(b"etag", f'"{info.etag}"'.encode()), (b"location", location.encode())]
        if status == 201:
            doc = s3xml.post_response(location, self.bucket, info.key, info.etag)
            headers += [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(doc)).encode())]
            await self._start(ex, send, 201, headers)
            await send({"type": "http.response.body", "body": doc})
            return
        await self._empty(ex, send, status, headers)

    # ------------------------------------------------------------------ CORS

    def _origin_allowed(self, origin: str) -> bool:
        return "*" in self._cors_origins or origin in self._cors_origins

    async def _preflight(self, ex: _Exchange, send: Send) -> None:
        method = ex.headers.get("access-control-request-method")
        if ex.origin is None or method is None:
            raise InvalidRequest("Insufficient information. Origin request header needed.")
        if not self._origin_allowed(ex.origin) or method not in _CORS_METHODS:
            raise AccessDenied("CORSResponse: This CORS request is not allowed.")
        headers = [
            (b"access-control-allow-methods", ", ".join(_CORS_METHODS).encode()),
            (b"access-control-max-age", b"3000"),
        ]
        requested = ex.headers.get("access-control-request-headers")
        if requested:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        await self._empty(ex, send, 200, headers)


async def _request_body(receive: Receive, payload_hash: str) -> AsyncIterator[bytes]:
    """The request body as it arrives; a disconnect (or a body not matching its signed SHA-256)
    raises inside the store's put, which then keeps nothing."""
    digest = None
    if payload_hash != UNSIGNED_PAYLOAD:
        if payload_hash.startswith("STREAMING-"):
            raise InvalidRequest("aws-chunked uploads are not supported; sign with UNSIGNED-PAYLOAD")
        digest = hashlib.sha256()
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody(DISCONNECTED)
        chunk: bytes = message.get("body", b"")
        if chunk:
            if digest is not None:
                digest.update(chunk)
            yield chunk
        if not message.get("more_body", False):
            if digest is not None and digest.hexdigest() != payload_hash:
                raise XAmzContentSHA256Mismatch()
            return


def _claimed_key_id(scope: Scope) -> str | None:
    """The access key id a request claims (presigned query or Authorization header), unverified."""
    query: bytes = scope.get("query_string", b"")
    marker = b"X-Amz-Credential="
    at = query.find(marker)
    if at >= 0:
        value = query[at + len(marker) :].split(b"&", 1)[0]
        return unquote_to_bytes(value).decode("utf-8", "replace").partition("/")[0] or None
    for name, value in scope["headers"]:
        if name == b"authorization":
            text = value.decode("latin-1")
            cred = text.find("Credential=")
            if cred >= 0:
                return text[cred + len("Credential=") :].split("/", 1)[0].strip() or None
    return None
