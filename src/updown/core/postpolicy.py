"""S3 POST policies for browser form uploads: make the signed form fields, and check a submitted form
against its base64 policy document (signature, expiration, conditions). Pure: stdlib only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from updown.core.sigv4 import (
    ALGORITHM,
    MAX_EXPIRES,
    Now,
    Signer,
    epoch,
    parse_amz_date,
    signature,
    signing_key,
)
from updown.core.sigv4verify import CredentialSource, check_scope, parse_credential
from updown.errors import (
    AccessDenied,
    EntityTooLarge,
    InvalidAccessKeyId,
    InvalidArgument,
    SignatureDoesNotMatch,
)

Condition = Mapping[str, object] | Sequence[object]

# Fields S3 never asks a condition for: the signature, the policy itself and the file part.
_EXEMPT = frozenset({"x-amz-signature", "policy", "file"})
_REQUIRED = ("policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")


@dataclass(frozen=True, slots=True)
class PresignedPost:
    """The form a browser posts: its action URL and the hidden fields, like boto3's answer."""

    url: str
    fields: dict[str, str]


def presign_post(
    signer: Signer,
    url: str,
    bucket: str,
    key: str,
    *,
    now: Now,
    expires: int,
    fields: Mapping[str, str] | None = None,
    conditions: Sequence[Condition] = (),
) -> PresignedPost:
    """Signed form fields for a POST upload, the same as boto3's ``generate_presigned_post``.

    Args:
        signer: signs with its credentials, region and service.
        url: the form action, e.g. ``http://127.0.0.1:8000/s3/files``.
        bucket, key: where the object goes; a key ending in ``${filename}`` is bound by prefix only.
        now: signing time.
        expires: policy lifetime in seconds, 1 to 604800.
        fields: extra form fields (``Content-Type``, ``x-amz-meta-*``); each needs a condition.
        conditions: the policy conditions, e.g. ``["content-length-range", 1, 10485760]``; the
            bucket, key and credential conditions are added here.

    Raises:
        InvalidArgument: ``expires`` out of range.
    """
    if not 1 <= expires <= MAX_EXPIRES:
        raise InvalidArgument(f"The policy lifetime must be between 1 and {MAX_EXPIRES} seconds")
    t = epoch(now)
    amz, credential = signer.stamp(t)
    expiration = datetime.fromtimestamp(t, UTC) + timedelta(seconds=expires)
    out = dict(fields or {})
    conds: list[Condition] = [*conditions, {"bucket": bucket}]
    if key.endswith("${filename}"):
        conds.append(["starts-with", "$key", key[: -len("${filename}")]])
    else:
        conds.append({"key": key})
    out["key"] = key
    out["x-amz-algorithm"] = ALGORITHM
    out["x-amz-credential"] = credential
    out["x-amz-date"] = amz
    conds += [{"x-amz-algorithm": ALGORITHM}, {"x-amz-credential": credential}, {"x-amz-date": amz}]
    token = signer.credentials.session_token
    if token is not None:
        out["x-amz-security-token"] = token
        conds.append({"x-amz-security-token": token})
    # json.dumps with its default separators: byte for byte the document botocore signs.
    document = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"), "conditions": conds}
    out["policy"] = base64.b64encode(json.dumps(document).encode()).decode()
    out["x-amz-signature"] = signer.sign(out["policy"], amz[:8])
    return PresignedPost(url, out)


@dataclass(frozen=True, slots=True)
class VerifiedPost:
    """A form whose policy is signed, unexpired and satisfied, but for the file size."""

    access_key_id: str
    key: str  # as submitted; may end in ${filename}
    fields: dict[str, str]  # lower-case names
    expiration: datetime
    min_length: int
    max_length: int | None

    def key_for(self, filename: str) -> str:
        """The object key, with ``${filename}`` replaced by the submitted file's name, as S3 does."""
        return self.key.replace("${filename}", filename)

    def check_length(self, size: int) -> None:
        """Check the file size against ``content-length-range``.

        Raises:
            EntityTooLarge: above the maximum.
            InvalidArgument: below the minimum (S3's EntityTooSmall).
        """
        if self.max_length is not None and size > self.max_length:
            raise EntityTooLarge()
        if size < self.min_length:
            raise InvalidArgument("Your proposed upload is smaller than the minimum allowed size")


def verify_post(
    form: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    bucket: str,
    credentials: CredentialSource,
    now: Now,
    region: str,
    service: str = "s3",
) -> VerifiedPost:
    """Check a submitted form (its text fields, without the file) against its policy.

    Args:
        form: the fields as posted; names are matched case-insensitively, as S3 does.
        bucket: the bucket named by the URL the form was posted to.
        credentials: the signer's credentials, or a lookup from access key id to them.
        now: the current time.
        region, service: what the credential scope must name.

    Raises:
        InvalidArgument: a required field is missing or repeated, or the policy is malformed.
        InvalidAccessKeyId: unknown access key, or a wrong session token.
        SignatureDoesNotMatch: the policy was not signed by that key.
        AccessDenied: the policy expired, a condition fails, or a field has no condition.
    """
    fields: dict[str, str] = {}
    for name, value in form.items() if isinstance(form, Mapping) else form:
        n = name.lower()
        if n in fields:
            raise InvalidArgument(f"POST requires exactly one value for each form field: {name}")
        fields[n] = value
    for n in ("key", *_REQUIRED):
        if n not in fields:
            raise InvalidArgument(f"Bucket POST must contain a field named '{n}'.")
    if fields["x-amz-algorithm"] != ALGORITHM:
        raise InvalidArgument(f'The x-amz-algorithm field only supports "{ALGORITHM}"')
    prefix = "Error parsing the X-Amz-Credential parameter;"
    scope = parse_credential(fields["x-amz-credential"], InvalidArgument, prefix)
    amz = fields["x-amz-date"]
    if parse_amz_date(amz) is None:
        raise InvalidArgument("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    check_scope(scope, amz, region, service, InvalidArgument, prefix)
    creds = credentials(scope.access_key_id) if callable(credentials) else credentials
    if creds is None or creds.access_key_id != scope.access_key_id:
        raise InvalidAccessKeyId()
    token = fields.get("x-amz-security-token")
    if creds.session_token is not None and (
        token is None or not hmac.compare_digest(token.encode(), creds.session_token.encode())
    ):
        raise InvalidAccessKeyId("The provided token is malformed or otherwise invalid.")
    # The signature covers the policy text as posted; nothing in it is trusted before this check.
    key = signing_key(creds.secret_access_key, scope.datestamp, scope.region, scope.service)
    expected = signature(key, fields["policy"])
    if not hmac.compare_digest(expected.encode(), fields["x-amz-signature"].encode()):
        raise SignatureDoesNotMatch()
    expiration, conditions = _decode_policy(fields["policy"])
    if epoch(now) > expiration.timestamp():
        raise AccessDenied("Invalid according to Policy: Policy expired.")
    min_length, max_length = _check_conditions(conditions, fields, bucket)
    return VerifiedPost(scope.access_key_id, fields["key"], fields, expiration, min_length, max_length)


def _malformed(why: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid Policy: {why}")


def _decode_policy(policy: str) -> tuple[datetime, list[object]]:
    try:
        document = json.loads(base64.b64decode(policy, validate=True))
    except (binascii.Error, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _malformed("Invalid JSON.") from e
    if not isinstance(document, dict):
        raise _malformed("Invalid JSON.")
    raw_expiration = document.get("expiration")
    conditions = document.get("conditions")
    if not isinstance(raw_expiration, str):
        raise _malformed("Policy missing expiration.")
    if not isinstance(conditions, list):
        raise _malformed("Policy missing conditions.")
    try:
        expiration = datetime.fromisoformat(raw_expiration)
    except ValueError as e:
        raise _malformed("Invalid 'expiration' value: " + json.dumps(raw_expiration)) from e
    if expiration.tzinfo is None:
        raise _malformed("Invalid 'expiration' value: " + json.dumps(raw_expiration))
    return expiration, conditions


def _parse_condition(cond: object) -> tuple[str, object, object]:
    """``(operator, target, operand)`` of ``{"name": value}`` or ``[operator, target, operand]``."""
    if isinstance(cond, dict) and len(cond) == 1:
        [(name, expected)] = cond.items()
        return "eq", f"${name}", expected
    if isinstance(cond, list) and len(cond) == 3 and isinstance(cond[0], str):
        return cond[0].lower(), cond[1], cond[2]
    raise _malformed("Invalid Condition: " + json.dumps(cond))


def _check_conditions(conditions: list[object], fields: dict[str, str], bucket: str) -> tuple[int, int | None]:
    """Apply every condition; returns the content-length range. Every field must be covered."""
    covered = set(_EXEMPT)
    min_length, max_length = 0, None
    if fields.get("bucket", bucket) != bucket:
        raise AccessDenied("Invalid according to Policy: the bucket field does not name this bucket")
    values = {**fields, "bucket": bucket}
    for cond in conditions:
        op, target, expected = _parse_condition(cond)
        if op == "content-length-range":
            if not (type(target) is int and type(expected) is int and 0 <= target <= expected):
                raise _malformed("Invalid content-length-range: " + json.dumps(cond))
            min_length = max(min_length, target)
            max_length = expected if max_length is None else min(max_length, expected)
            continue
        if op not in ("eq", "starts-with") or not isinstance(target, str) or not target.startswith("$"):
            raise _malformed("Invalid Condition: " + json.dumps(cond))
        if not isinstance(expected, str):
            raise _malformed("Invalid Condition: " + json.dumps(cond))
        name = target[1:].lower()
        covered.add(name)
        value = values.get(name)
        ok = value == expected if op == "eq" else (value or "").startswith(expected)
        if not ok:
            raise AccessDenied("Invalid according to Policy: Policy Condition failed: " + json.dumps(cond))
    extra = sorted(n for n in fields if n not in covered and not n.startswith("x-ignore-"))
    if extra:
        raise AccessDenied("Invalid according to Policy: Extra input fields: " + ", ".join(extra))
    return min_length, max_length
