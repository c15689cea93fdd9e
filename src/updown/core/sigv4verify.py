"""Checking an AWS SigV4 request, presigned or header-signed: the X-Amz-* parameters and the
``Authorization`` header parsed, then S3's checks in S3's order with S3's messages. Pure: stdlib only.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from updown.core.sigv4 import (
    ALGORITHM,
    MAX_EXPIRES,
    MAX_SKEW,
    TERMINATOR,
    UNSIGNED_PAYLOAD,
    Credentials,
    Now,
    canonical_query,
    canonical_request,
    canonical_uri,
    epoch,
    header_value,
    parse_amz_date,
    query_pairs,
    signature,
    signing_key,
    string_to_sign,
)
from updown.errors import (
    AccessDenied,
    AuthorizationQueryParametersError,
    ClientError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestExpired,
    SignatureDoesNotMatch,
)

RawHeaders = Iterable[tuple[str | bytes, str | bytes]]

_DATESTAMP = re.compile(r"[0-9]{8}")
_INTEGER = re.compile(r"-?[0-9]+")
_PRESIGN_KEYS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)


@dataclass(frozen=True, slots=True)
class RequestParts:
    """What an ASGI server hands over: method, raw path, raw query and header pairs as received."""

    method: str
    raw_path: str | bytes
    query_string: str | bytes = b""
    headers: Sequence[tuple[str | bytes, str | bytes]] = ()


@dataclass(frozen=True, slots=True)
class Scope:
    """The parsed ``<akid>/<date>/<region>/<service>/aws4_request`` credential."""

    access_key_id: str
    datestamp: str
    region: str
    service: str

    @property
    def text(self) -> str:
        return f"{self.datestamp}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True, slots=True)
class PresignedParams:
    """The X-Amz-* query parameters of a presigned URL, checked for form (not yet for truth)."""

    scope: Scope
    amz_date: str
    timestamp: int
    expires: int
    signed_headers: tuple[str, ...]
    signature: str
    security_token: str | None
    content_sha256: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationHeader:
    """The parsed ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``."""

    scope: Scope
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request whose signature holds: who signed it, what they bound, and until when."""

    access_key_id: str
    credentials: Credentials
    presigned: bool
    signed_headers: tuple[tuple[str, str], ...]  # (lower-case name, canonical value), as signed
    timestamp: int  # epoch seconds of X-Amz-Date
    expires_at: int | None  # presigned URLs only
    payload_hash: str  # UNSIGNED-PAYLOAD or the hex SHA-256 the body must have
    region: str
    service: str
    signature: str = ""  # the request's own signature: the seed of an aws-chunked body's chain

    def header(self, name: str) -> str | None:
        """The signed value of a header (lower-case name), or None if it was not signed."""
        for n, v in self.signed_headers:
            if n == name:
                return v
        return None


CredentialSource = Credentials | Callable[[str], Credentials | None]


def _decode(v: str) -> str:
    return unquote_to_bytes(v).decode("utf-8", "replace") if "%" in v else v


def parse_credential(credential: str, err: type[ClientError], prefix: str) -> Scope:
    """Parse ``<akid>/<YYYYMMDD>/<region>/<service>/aws4_request``, raising ``err(prefix + why)``."""
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0]:
        raise err(
            f'{prefix} the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    akid, datestamp, region, service, terminal = parts
    if not _DATESTAMP.fullmatch(datestamp):
        raise err(
            f'{prefix} incorrect date format "{datestamp}". '
            'This date in the credential must be in the format "yyyyMMdd".'
        )
    if terminal != TERMINATOR:
        raise err(f'{prefix} incorrect terminal "{terminal}". This endpoint uses "{TERMINATOR}".')
    return Scope(akid, datestamp, region, service)


def check_scope(scope: Scope, amz: str, region: str, service: str, err: type[ClientError], prefix: str) -> None:
    """Refuse a scope for another region or service, or for another day than ``amz`` (X-Amz-Date)."""
    if scope.region != region:
        raise err(f"{prefix} the region '{scope.region}' is wrong; expecting '{region}'")
    if scope.service != service:
        raise err(f'{prefix} incorrect service "{scope.service}". This endpoint belongs to "{service}".')
    if amz[:8] != scope.datestamp:
        raise err(f"{prefix} Invalid credential date. Date is not the same as X-Amz-Date.")


def parse_presigned(query: str | bytes | Mapping[str, str]) -> PresignedParams:
    """The X-Amz-* parameters of a raw query string (or of already decoded parameters).

    Raises:
        AuthorizationQueryParametersError: a parameter is missing or malformed (S3's messages).
    """
    if isinstance(query, Mapping):
        params = dict(query)
    else:
        params = {_decode(k): _decode(v) for k, v in query_pairs(query) if k.startswith("X-Amz-")}
    err = AuthorizationQueryParametersError
    if any(k not in params for k in _PRESIGN_KEYS):
        raise err(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise err(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    scope = parse_credential(params["X-Amz-Credential"], err, "Error parsing the X-Amz-Credential parameter;")
    amz = params["X-Amz-Date"]
    timestamp = parse_amz_date(amz)
    if timestamp is None:
        raise err("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    raw_expires = params["X-Amz-Expires"]
    if not _INTEGER.fullmatch(raw_expires):
        raise err("X-Amz-Expires should be a number", forbidden=True)
    # Past 18 digits the value is out of range anyway; int() of a huge string is not free.
    expires = int(raw_expires) if len(raw_expires) <= 18 else -1 if raw_expires[0] == "-" else 10**18
    if expires < 0:
        raise err("X-Amz-Expires must be non-negative", forbidden=True)
    if expires == 0:
        raise err("X-Amz-Expires must be greater than 0", forbidden=True)
    signed = tuple(params["X-Amz-SignedHeaders"].split(";"))
    if "host" not in signed:
        raise err("X-Amz-SignedHeaders must include host")
    return PresignedParams(
        scope,
        amz,
        timestamp,
        expires,
        signed,
        params["X-Amz-Signature"],
        params.get("X-Amz-Security-Token"),
        params.get("X-Amz-Content-Sha256"),
    )


def parse_authorization_header(value: str) -> AuthorizationHeader:
    """Parse a SigV4 ``Authorization`` header value.

    Raises:
        InvalidArgument: another scheme, or a missing or malformed component.
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise InvalidArgument("Unsupported Authorization Type")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, val = item.strip().partition("=")
        if eq:
            fields[name] = val
    prefix = "The authorization header is malformed;"
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise InvalidArgument(f"{prefix} the {name} component is missing.")
    scope = parse_credential(fields["Credential"], InvalidArgument, prefix)
    return AuthorizationHeader(scope, tuple(fields["SignedHeaders"].split(";")), fields["Signature"])


def _headers_by_name(headers: RawHeaders) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        n = name.decode("latin-1").lower() if isinstance(name, bytes) else name.lower()
        # Header bytes pass through unchanged: decoded and re-encoded with the same codec.
        v = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
        by_name.setdefault(n, []).append(v)
    return by_name


@dataclass(frozen=True, slots=True)
class _Claim:
    """What either form of signature claims, parsed and checked for form."""

    scope: Scope
    amz_date: str
    timestamp: int
    signed_headers: tuple[str, ...]
    signature: str
    token: str | None
    payload_hash: str | None
    query: str
    expires_at: int | None


def verify(
    parts: RequestParts,
    *,
    credentials: CredentialSource,
    now: Now,
    region: str,
    service: str = "s3",
    max_expires: int = MAX_EXPIRES,
    max_skew: int = MAX_SKEW,
    payload_hash: str | None = None,
    normalize_path: bool = False,
) -> VerifiedRequest:
    """Check a presigned or header-signed request against the credentials that signed it.

    Args:
        parts: the request as received.
        credentials: the signer's credentials, or a lookup from access key id to them.
        now: the current time.
        region, service: what the credential scope must name.
        max_expires: the longest lifetime accepted for a presigned URL.
        max_skew: how far ahead of ``now`` a request date may be (and, for signed headers, behind).
        payload_hash: the payload hash to sign with, overriding S3's rules (``X-Amz-Content-Sha256``
            or ``UNSIGNED-PAYLOAD`` for presigned URLs, the ``x-amz-content-sha256`` header else);
            for services other than S3.
        normalize_path: remove dot segments first (never for S3).

    Raises:
        AccessDenied: neither form of signature; ``x-amz-*`` headers outside the signature.
        InvalidArgument: both forms at once; a malformed ``Authorization`` header.
        InvalidRequest: a header-signed request without ``x-amz-content-sha256``.
        AuthorizationQueryParametersError: malformed or out-of-range presigned parameters.
        RequestExpired: past the lifetime, or dated too far from ``now``.
        InvalidAccessKeyId: unknown access key, or a wrong session token.
        SignatureDoesNotMatch: anything signed was changed.
    """
    pairs = query_pairs(parts.query_string)
    by_name = _headers_by_name(parts.headers)
    t = epoch(now)
    if any(k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature") for k, _ in pairs):
        if "authorization" in by_name:
            raise InvalidArgument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified"
            )
        claim = _presigned_claim(pairs, t, region, service, max_expires, max_skew)
    elif "authorization" in by_name:
        claim = _header_claim(pairs, by_name, t, region, service, max_skew)
    else:
        raise AccessDenied("Anonymous access is not allowed here")
    creds = credentials(claim.scope.access_key_id) if callable(credentials) else credentials
    if creds is None or creds.access_key_id != claim.scope.access_key_id:
        raise InvalidAccessKeyId()
    # A session token binds short-lived keys: the request must carry the very token issued.
    if creds.session_token is not None and (
        claim.token is None or not hmac.compare_digest(claim.token.encode(), creds.session_token.encode())
    ):
        raise InvalidAccessKeyId("The provided token is malformed or otherwise invalid.")
    # S3 refuses x-amz-* headers outside the signature: they would change the object unsigned.
    if any(n.startswith("x-amz-") and n not in claim.signed_headers for n in by_name):
        raise AccessDenied("There were headers present in the request which were not signed")
    signed = []
    for n in claim.signed_headers:
        values = by_name.get(n)
        if values is None:
            raise SignatureDoesNotMatch(f"The signed header {n!r} is missing from the request")
        signed.append((n, ",".join([header_value(v) for v in values])))
    payload = payload_hash or claim.payload_hash
    if payload is None:
        raise InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    creq = canonical_request(
        parts.method,
        canonical_uri(parts.raw_path, normalize=normalize_path),
        claim.query,
        "".join([f"{n}:{v}\n" for n, v in signed]),
        ";".join(claim.signed_headers),
        payload,
    )
    scope = claim.scope
    key = signing_key(creds.secret_access_key, scope.datestamp, scope.region, scope.service)
    expected = signature(key, string_to_sign(claim.amz_date, scope.text, creq))
    if not hmac.compare_digest(expected.encode(), claim.signature.encode()):
        raise SignatureDoesNotMatch()
    return VerifiedRequest(
        creds.access_key_id,
        creds,
        claim.expires_at is not None,
        tuple(signed),
        claim.timestamp,
        claim.expires_at,
        payload,
        region,
        service,
        claim.signature,
    )


def _presigned_claim(
    pairs: list[tuple[str, str]], now: int, region: str, service: str, max_expires: int, max_skew: int
) -> _Claim:
    p = parse_presigned({_decode(k): _decode(v) for k, v in pairs if k.startswith("X-Amz-")})
    err = AuthorizationQueryParametersError
    check_scope(p.scope, p.amz_date, region, service, err, "Error parsing the X-Amz-Credential parameter;")
    if p.expires > max_expires:
        raise err(f"X-Amz-Expires must be less than a week (in seconds) that is; {max_expires}", forbidden=True)
    if p.timestamp - now > max_skew:
        raise RequestExpired("Request is not yet valid")
    if now > p.timestamp + p.expires:
        raise RequestExpired("Request has expired")
    return _Claim(
        p.scope,
        p.amz_date,
        p.timestamp,
        p.signed_headers,
        p.signature,
        p.security_token,
        p.content_sha256 or UNSIGNED_PAYLOAD,
        canonical_query([kv for kv in pairs if kv[0] != "X-Amz-Signature"]),
        p.timestamp + p.expires,
    )


def _header_claim(
    pairs: list[tuple[str, str]],
    by_name: dict[str, list[str]],
    now: int,
    region: str,
    service: str,
    max_skew: int,
) -> _Claim:
    auth = parse_authorization_header(by_name["authorization"][0])
    amz = by_name.get("x-amz-date", [""])[0]
    timestamp = parse_amz_date(amz)
    if timestamp is None or "x-amz-date" not in auth.signed_headers:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    check_scope(auth.scope, amz, region, service, InvalidArgument, "The authorization header is malformed;")
    if abs(timestamp - now) > max_skew:
        raise RequestExpired("The difference between the request time and the current time is too large.")
    return _Claim(
        auth.scope,
        amz,
        timestamp,
        auth.signed_headers,
        auth.signature,
        by_name.get("x-amz-security-token", [None])[0],
        by_name.get("x-amz-content-sha256", [None])[0],
        canonical_query(pairs),
        None,
    )
