"""The S3-compatible data plane, ``/s3/{bucket}/{key}``: plain ASGI, bytes streamed both ways.

This module authenticates and routes; the verbs live beside it (`objects`, `bucket`, `multipart`,
`cors`), S3's XML in `xml`, browser forms in `form`.

Every request is SigV4-signed (presigned URL, or an ``Authorization`` header from temporary
credentials); the signer decides the principal: the service credentials make `SERVICE`, temporary
ones the principal `resolve_temporary` returns. Every read and write then goes through
`files.objects.Objects` (the gate, the owner rule, reserved metadata, upload intents), which asks
before the object is looked up. This module does protocol work only. Errors are S3 XML documents,
mapped in `web.s3.xml`.

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

import secrets
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import quote, unquote_to_bytes

import anyio.to_thread
from starlette.types import Message, Receive, Scope, Send

from updown.auth.principal import SERVICE, Principal
from updown.clock import Clock
from updown.core.keys import validate_key
from updown.core.sigv4 import Credentials
from updown.core.sigv4verify import RequestParts, VerifiedRequest, verify
from updown.errors import InvalidArgument, MethodNotAllowed, NoSuchBucket, NotImplementedHere
from updown.files.objects import Objects
from updown.web import s3http
from updown.web.s3 import batch, bucket, cors, multipart, objects, service
from updown.web.s3 import xml as s3xml

ResolveTemporary = Callable[[str], tuple[Credentials, Principal] | None]
Handler = Callable[["DataPlane", "Exchange", Principal, VerifiedRequest, Receive, Send], Awaitable[None]]

# Subresources S3 has that updown does not offer: 501 NotImplemented, never the object's bytes or
# a listing in their place. (Offered: location, uploads, uploadId, partNumber, delete, list-type.)
UNSUPPORTED: Final = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "encryption", "intelligent-tiering",
        "inventory", "legal-hold", "lifecycle", "logging", "metrics", "notification", "object-lock",
        "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "replication",
        "requestPayment", "restore", "retention", "select", "tagging", "torrent", "versioning",
        "versions", "website",
    }
)  # fmt: skip


class Exchange:
    """One request: what was parsed from it, and whether the answer has started."""

    __slots__ = (
        "body_read", "bucket", "headers", "key", "method", "origin", "query", "raw_path", "request_id", "scope",
        "started",
    )  # fmt: skip

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.request_id = secrets.token_hex(8).upper()
        self.started = False
        # Whether the request body has been read to its end (bodies come with PUT and POST only).
        self.body_read = self.method not in ("PUT", "POST")
        self.key: str | None = None
        self.bucket: str | None = None
        self.headers: dict[str, str] = {}
        self.query: dict[str, str] = {}
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
        virtual_hosts: bool = False,
    ) -> None:
        self.objects = objects
        self.bucket = bucket
        self.region = region
        self.max_object_size = max_object_size
        self.clock = clock
        self._service = service_credentials
        self._resolve_temporary = resolve_temporary
        self.cors_origins = frozenset(cors_origins)
        self._prefix = prefix.encode()
        # At the root of an origin, ``{bucket}.{host}`` addresses the bucket (virtual-hosted style).
        self._virtual_host = f"{bucket}.".encode() if virtual_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        ex = Exchange(scope)
        try:
            await self._handle(ex, receive if ex.body_read else _tracking(ex, receive), send)
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
                headers.append((b"allow", ", ".join(cors.METHODS).encode()))
            if not ex.body_read:
                # Refused before its body was read (a failed condition, a bad header): the rest of
                # the body may still be on its way, so this connection cannot carry another request.
                headers.append((b"connection", b"close"))
            try:
                await self.start(ex, send, status, headers)
                await send({"type": "http.response.body", "body": body})
            except OSError:
                return  # nobody is listening any more

    async def start(self, ex: Exchange, send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        headers.append((b"x-amz-request-id", ex.request_id.encode()))
        if ex.origin is not None and cors.origin_allowed(self, ex.origin):
            headers += [
                (b"access-control-allow-origin", ex.origin.encode("latin-1")),
                (b"access-control-expose-headers", cors.EXPOSED),
                (b"vary", b"Origin"),
            ]
        ex.started = True
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def empty(self, ex: Exchange, send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await self.start(ex, send, status, [*headers, (b"content-length", b"0")])
        await send({"type": "http.response.body", "body": b""})

    # ------------------------------------------------------------------ routing and authentication

    async def _handle(self, ex: Exchange, receive: Receive, send: Send) -> None:
        ex.headers = s3http.request_headers(ex.scope["headers"])
        ex.origin = ex.headers.get("origin")
        ex.query = s3http.query_params(ex.scope.get("query_string", b""))
        raw = ex.raw_path  # the path as signed; routing may see the bucket of the Host header before it
        if self._virtual_host is not None and ex.headers.get("host", "").encode().startswith(self._virtual_host):
            raw = b"/" + self._virtual_host[:-1] + raw
        if raw in (self._prefix, self._prefix + b"/"):
            handler = _service_handler(ex)
        else:
            if not raw.startswith(self._prefix + b"/"):
                raise NoSuchBucket()
            bucket_raw, _, key_raw = raw[len(self._prefix) + 1 :].partition(b"/")
            ex.bucket = unquote_to_bytes(bucket_raw).decode("utf-8", "replace")
            if ex.method == "OPTIONS":
                if ex.bucket != self.bucket:
                    raise NoSuchBucket()
                await cors.preflight(self, ex, send)
                return
            if not key_raw:
                if ex.method == "POST" and "delete" not in ex.query:
                    if ex.bucket != self.bucket:
                        raise NoSuchBucket()
                    await bucket.post_form(self, ex, receive, send)  # authenticated by its policy
                    return
                handler = _bucket_handler(ex)
            else:
                try:
                    key = unquote_to_bytes(key_raw).decode("utf-8")
                except UnicodeDecodeError:
                    raise InvalidArgument("the key is not valid UTF-8") from None
                ex.key = validate_key(key)  # only a valid key is echoed in error documents
                handler = _object_handler(ex)
            # CreateBucket answers about any name; everything else is about the one bucket.
            if ex.bucket != self.bucket and handler is not service.create_bucket:
                raise NoSuchBucket()
        principal, verified = await self.authenticate(ex)
        await handler(self, ex, principal, verified, receive, send)

    async def lookup(self, access_key_id: str | None) -> tuple[list[Principal], Callable[[str], Credentials | None]]:
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

    async def authenticate(self, ex: Exchange) -> tuple[Principal, VerifiedRequest]:
        scope = ex.scope
        parts = RequestParts(ex.method, ex.raw_path, scope.get("query_string", b""), scope["headers"])
        principals, lookup = await self.lookup(_claimed_key_id(scope))
        verified = verify(parts, credentials=lookup, now=self.clock.now(), region=self.region)
        return principals[-1], verified

    def facts(self, ex: Exchange) -> dict[str, object]:
        client = ex.scope.get("client")
        return {
            "source_ip": client[0] if client else None,
            "secure_transport": ex.scope.get("scheme") == "https",
        }


def _tracking(ex: Exchange, receive: Receive) -> Receive:
    """``receive`` noting in ``ex.body_read`` when the body's last message has arrived."""

    async def tracked() -> Message:
        message = await receive()
        if not message.get("more_body", False):
            ex.body_read = True
        return message

    return tracked


def _unsupported(ex: Exchange) -> str | None:
    """The first subresource of the query that S3 has and updown does not offer."""
    return next((name for name in ex.query if name in UNSUPPORTED), None)


def _not_implemented(ex: Exchange, what: str) -> Handler:
    raise NotImplementedHere(f"{what} is not implemented")


def _service_handler(ex: Exchange) -> Handler:
    if ex.method != "GET":
        raise MethodNotAllowed("The specified method is not allowed against this resource.")
    return service.list_buckets


def _bucket_handler(ex: Exchange) -> Handler:
    q, method = ex.query, ex.method
    if (sub := _unsupported(ex)) is not None:
        return _not_implemented(ex, f"the bucket subresource ?{sub}")
    if method == "GET":
        if "location" in q:
            return service.location
        if "uploads" in q:
            return multipart.list_uploads
        return bucket.list_objects
    if method == "HEAD":
        return service.head_bucket
    if method == "PUT":
        return service.create_bucket
    if method == "POST":  # ?delete; form uploads are routed before
        return batch.delete_objects
    if method == "DELETE":
        return _not_implemented(ex, "DeleteBucket")
    raise MethodNotAllowed("The specified method is not allowed against this resource.")


def _object_handler(ex: Exchange) -> Handler:
    q, method = ex.query, ex.method
    if (sub := _unsupported(ex)) is not None:
        return _not_implemented(ex, f"the object subresource ?{sub}")
    copying = "x-amz-copy-source" in ex.headers
    if method == "PUT":
        if "uploadId" in q or "partNumber" in q:
            return multipart.upload_part_copy if copying else multipart.upload_part
        return objects.copy if copying else objects.put
    if method == "POST":
        if "uploads" in q:
            return multipart.create
        if "uploadId" in q:
            return multipart.complete
    elif method == "DELETE":
        return multipart.abort if "uploadId" in q else objects.delete
    elif method == "GET":
        return multipart.list_parts if "uploadId" in q else objects.get
    elif method == "HEAD":
        return objects.get
    raise MethodNotAllowed("The specified method is not allowed against this resource.")


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
