"""The one error vocabulary of updown: every API ``code`` is a class here.

    UpdownError                      base; never shown to a client as is
    ├── ConfigError                  settings refused at load (not an HTTP error; the CLI prints it)
    ├── PolicyError                  a malformed policy document, with the JSON path of the fault
    ├── ClientError (4xx)            the caller can fix the request
    │   ├── InvalidRequest (400)     malformed JSON, missing or mistyped fields
    │   │   ├── InvalidKey           a storage key or name that fails validation
    │   │   ├── InvalidContentType   a content type that is not allowed here
    │   │   ├── InvalidPassword      the password policy refuses the new password
    │   │   ├── InvalidArgument      S3 data plane: a bad argument (S3's own code)
    │   │   ├── IncompleteBody       a body shorter or longer than its declared Content-Length
    │   │   ├── AuthorizationQueryParametersError  S3: malformed presigned query fields
    │   │   ├── XAmzContentSHA256Mismatch  S3: the body's SHA-256 is not the signed one
    │   │   ├── BadDigest, InvalidDigest, MissingContentMD5  S3: Content-MD5 / x-amz-checksum-*
    │   │   ├── MalformedXML         S3: an XML request body that does not parse or validate
    │   │   └── MalformedTrailerError, InvalidChunkSizeError  S3: aws-chunked bodies
    │   ├── CodeMismatch (400)       a confirmation or reset code is wrong
    │   ├── ExpiredCode (400)        a confirmation or reset code is too old or used up
    │   ├── NotAuthorized (401)      no, bad, expired or revoked credentials; wrong password
    │   ├── UserNotConfirmed (403)   sign-in before the email is confirmed
    │   ├── AccessDenied (403)       the policy engine said Deny (never tells whether a thing exists)
    │   ├── SignatureDoesNotMatch (403)  SigV4 signature wrong for this request
    │   ├── InvalidAccessKeyId (403)  S3: the SigV4 access key id (or its session token) is unknown
    │   ├── RequestExpired (403)     a presigned URL past its lifetime
    │   ├── NotFound (404)           no such route or record
    │   │   ├── NoSuchKey            no such object
    │   │   └── NoSuchBucket         S3 data plane: a bucket other than the configured one
    │   ├── MethodNotAllowed (405)
    │   ├── MissingContentLength (411)  S3 data plane: a PUT with neither length nor chunked body
    │   ├── Conflict (409)           the thing exists already (e.g. UsernameExists)
    │   │   ├── UsernameExists
    │   │   └── BucketAlreadyOwnedByYou  S3: CreateBucket of the bucket updown serves
    │   ├── PreconditionFailed (412)
    │   ├── EntityTooLarge (413)     a body over the configured maximum
    │   ├── InvalidRange (416)       a byte range that starts past the end of the object
    │   ├── RequestHeaderFieldsTooLarge (431)
    │   └── TooManyRequests (429)    rate limited; ``retry_after`` seconds
    └── ServerError (5xx)            our fault; the detail is logged, never sent
        ├── NotImplementedHere (501) S3 data plane: an operation or subresource updown does not offer
        └── ServiceUnavailable (503) a dependency (database, storage) is unreachable

Each class carries ``status``, ``code`` and ``title``; an instance carries a one-line ``detail``
that is safe to show (no paths, no stack traces, no secrets).
"""

from __future__ import annotations

from typing import ClassVar


class UpdownError(Exception):
    """Base of every error updown raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class ConfigError(UpdownError):
    """A setting is unknown, missing or has a bad value. Raised at load, before anything starts."""

    code = "ConfigError"
    title = "Invalid configuration"


class PolicyError(UpdownError):
    """A policy document is malformed; ``detail`` names the JSON path of the fault."""

    code = "MalformedPolicy"
    title = "Malformed policy"


class ClientError(UpdownError):
    """The request cannot be served as sent; the caller can fix it."""

    status = 400
    code = "BadRequest"
    title = "Bad request"


class InvalidRequest(ClientError):
    """Malformed JSON, a missing or mistyped field, a value out of range."""

    code = "InvalidRequest"
    title = "Invalid request"


class InvalidKey(InvalidRequest):
    """A storage key or name fails validation (``..``, control characters, too long, ...)."""

    code = "InvalidKey"
    title = "Invalid key"


class InvalidContentType(InvalidRequest):
    """A content type that is not allowed for this upload."""

    code = "InvalidContentType"
    title = "Invalid content type"


class InvalidPassword(InvalidRequest):
    """The password policy refuses the password."""

    code = "InvalidPassword"
    title = "Password does not meet the policy"


class InvalidArgument(InvalidRequest):
    """S3 data plane: an argument is invalid (S3's ``InvalidArgument``)."""

    code = "InvalidArgument"
    title = "Invalid argument"


class IncompleteBody(InvalidRequest):
    """The body ended before (or ran past) its declared Content-Length; nothing was stored."""

    code = "IncompleteBody"
    title = "You did not provide the number of bytes specified by the Content-Length HTTP header"


class InvalidPart(InvalidRequest):
    """Completing a multipart upload: a listed part was not received, or its ETag does not match."""

    code = "InvalidPart"
    title = "One or more of the specified parts could not be found"


class InvalidPartOrder(InvalidRequest):
    """Completing a multipart upload: the part list is not in ascending part-number order."""

    code = "InvalidPartOrder"
    title = "The list of parts was not in ascending order"


class EntityTooSmall(InvalidRequest):
    """Completing a multipart upload: a part other than the last is under the minimum part size."""

    code = "EntityTooSmall"
    title = "Your proposed upload is smaller than the minimum allowed object size"


class AuthorizationQueryParametersError(InvalidRequest):
    """S3 data plane: the presigned query parameters are missing or malformed."""

    code = "AuthorizationQueryParametersError"
    title = "Malformed authorization query parameters"

    def __init__(self, detail: str | None = None, *, forbidden: bool = False) -> None:
        super().__init__(detail)
        # S3 answers a malformed or out-of-range X-Amz-Expires with 403, the rest with 400.
        self.forbidden = forbidden


class XAmzContentSHA256Mismatch(InvalidRequest):
    """S3 data plane: a header-signed body's SHA-256 differs from its signed ``x-amz-content-sha256``."""

    code = "XAmzContentSHA256Mismatch"
    title = "The provided 'x-amz-content-sha256' header does not match what was computed."


class BadDigest(InvalidRequest):
    """S3 data plane: the body does not match its ``Content-MD5`` or ``x-amz-checksum-*``; nothing was stored."""

    code = "BadDigest"
    title = "The Content-MD5 or checksum you specified did not match what we received."


class InvalidDigest(InvalidRequest):
    """S3 data plane: a ``Content-MD5`` header that is not the base64 of 16 bytes."""

    code = "InvalidDigest"
    title = "The Content-MD5 you specified was invalid."


class MissingContentMD5(InvalidRequest):
    """S3 data plane: a request S3 requires an integrity header for (DeleteObjects) came without one."""

    code = "MissingContentMD5"
    title = "Missing required header for this request: Content-MD5"


class MalformedXML(InvalidRequest):
    """S3 data plane: an XML request body that is not well formed or not of S3's schema."""

    code = "MalformedXML"
    title = "The XML you provided was not well-formed or did not validate against our published schema."


class MalformedTrailerError(InvalidRequest):
    """S3 data plane: an aws-chunked body whose trailer is missing, malformed or not the announced one."""

    code = "MalformedTrailerError"
    title = "The request contained trailing data that was not well-formed or did not conform to our published schema."


class InvalidChunkSizeError(InvalidRequest):
    """S3 data plane: an aws-chunked body whose framing is malformed (chunk sizes, separators)."""

    code = "InvalidChunkSizeError"
    title = "The aws-chunked body is not well formed."


class CodeMismatch(ClientError):
    """A confirmation or reset code does not match."""

    code = "CodeMismatch"
    title = "Invalid verification code"


class ExpiredCode(ClientError):
    """A confirmation or reset code expired, was used, or ran out of tries."""

    code = "ExpiredCode"
    title = "Verification code expired"


class NotAuthorized(ClientError):
    """Credentials are missing, malformed, expired or revoked, or the password is wrong."""

    status = 401
    code = "NotAuthorized"
    title = "Not authorized"


class UserNotConfirmed(ClientError):
    """The user has not confirmed their email yet."""

    status = 403
    code = "UserNotConfirmed"
    title = "User is not confirmed"


class AccessDenied(ClientError):
    """The policy engine denied the action. Says nothing about whether the target exists."""

    status = 403
    code = "AccessDenied"
    title = "Access denied"


class SignatureDoesNotMatch(ClientError):
    """The SigV4 signature does not match the request."""

    status = 403
    code = "SignatureDoesNotMatch"
    title = "The request signature we calculated does not match the signature you provided"


class InvalidAccessKeyId(ClientError):
    """S3 data plane: the access key id of a SigV4 request is unknown, or its session token is wrong."""

    status = 403
    code = "InvalidAccessKeyId"
    title = "The AWS Access Key Id you provided does not exist in our records."


class RequestExpired(ClientError):
    """A presigned URL or signed request is past its lifetime."""

    status = 403
    code = "RequestExpired"
    title = "Request has expired"


class NotFound(ClientError):
    """No such route or record."""

    status = 404
    code = "NotFound"
    title = "Not found"


class NoSuchKey(NotFound):
    """No object under that key."""

    code = "NoSuchKey"
    title = "The specified key does not exist"


class NoSuchBucket(NotFound):
    """S3 data plane: the bucket named in the path is not the configured one."""

    code = "NoSuchBucket"
    title = "The specified bucket does not exist"


class NoSuchUpload(NotFound):
    """No upload intent of the caller has that id; or no open multipart upload with that id."""

    code = "NoSuchUpload"
    title = "The specified upload does not exist"


class MethodNotAllowed(ClientError):
    """The method is not served on this path."""

    status = 405
    code = "MethodNotAllowed"
    title = "Method not allowed"


class MissingContentLength(ClientError):
    """S3 data plane: an upload without Content-Length that is not chunked either."""

    status = 411
    code = "MissingContentLength"
    title = "You must provide the Content-Length HTTP header."


class Conflict(ClientError):
    """The target exists already or is in a state that forbids the change."""

    status = 409
    code = "Conflict"
    title = "Conflict"


class UsernameExists(Conflict):
    """A user with that email exists already (only where telling is safe, e.g. the admin CLI)."""

    code = "UsernameExists"
    title = "User already exists"


class BucketAlreadyOwnedByYou(Conflict):
    """S3 data plane: CreateBucket of the bucket updown serves (it exists, and it is the caller's)."""

    code = "BucketAlreadyOwnedByYou"
    title = "Your previous request to create the named bucket succeeded and you already own it."


class QuotaExceeded(ClientError):
    """The identity's storage quota cannot hold the upload (ready files and open intents count)."""

    status = 403
    code = "QuotaExceeded"
    title = "Storage quota exceeded"


class UploadRejected(ClientError):
    """Processing refused the uploaded bytes (not what was declared, a forbidden type, a bomb)."""

    status = 422
    code = "UploadRejected"
    title = "The upload was rejected"


class UploadNotReady(Conflict):
    """The upload intent is in a state that forbids the call (expired, already used, not yet landed)."""

    code = "UploadNotReady"
    title = "The upload is not in a state for this"


class PreconditionFailed(ClientError):
    """A conditional request's precondition does not hold."""

    status = 412
    code = "PreconditionFailed"
    title = "Precondition failed"


class EntityTooLarge(ClientError):
    """The body is larger than the configured maximum."""

    status = 413
    code = "EntityTooLarge"
    title = "Your proposed upload exceeds the maximum allowed size"


class InvalidRange(ClientError):
    """The requested byte range cannot be satisfied (it starts at or past the object's end)."""

    status = 416
    code = "InvalidRange"
    title = "The requested range is not satisfiable"


class TooManyRequests(ClientError):
    """Rate limited; retry after ``retry_after`` seconds."""

    status = 429
    code = "TooManyRequests"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class RequestHeaderFieldsTooLarge(ClientError):
    """A header (or all headers) is over the limit."""

    status = 431
    code = "RequestHeaderFieldsTooLarge"
    title = "Request header fields too large"


class ServerError(UpdownError):
    """Our fault. The detail goes to the log; the client sees only the title."""

    status = 500
    code = "InternalError"
    title = "Internal error"


class NotImplementedHere(ServerError):
    """An S3 operation or subresource the data plane does not offer (S3's ``NotImplemented``).

    A server error by status only: the request is well formed, and the detail is safe to show."""

    status = 501
    code = "NotImplemented"
    title = "A header or query you provided implies functionality that is not implemented"


class ServiceUnavailable(ServerError):
    """A dependency (database, object store) is unreachable."""

    status = 503
    code = "ServiceUnavailable"
    title = "Service unavailable"


def all_client_errors() -> list[type[ClientError]]:
    """Every concrete client error class, for docs and tests."""
    seen: list[type[ClientError]] = []
    stack: list[type[ClientError]] = [ClientError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: (c.status, c.code))
