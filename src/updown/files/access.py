"""THE gate: every file operation, the data plane's and the CDN's included, asks here and nowhere else.

It turns (principal, action, key, object facts) into a policy request for the principal's roles
and raises :class:`~updown.errors.AccessDenied` on Deny. A denial never says whether the object
exists: callers ask the gate *before* they look the object up, except for the owner fact of an
existing object, which the gate turns into a plain Deny like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime

from updown.auth.principal import Principal
from updown.clock import Clock
from updown.errors import AccessDenied
from updown.policy import Decision, PolicyStore, Request

GET = "s3:GetObject"
PUT = "s3:PutObject"
DELETE = "s3:DeleteObject"
LIST = "s3:ListBucket"
# The multipart family: create, parts and complete are s3:PutObject on the key, as in IAM.
ABORT_MULTIPART = "s3:AbortMultipartUpload"
LIST_PARTS = "s3:ListMultipartUploadParts"
LIST_UPLOADS = "s3:ListBucketMultipartUploads"
SIMULATE_POLICY = "updown:SimulatePolicy"
API_ARN = "arn:updown:::"


class AccessGate:
    """Decides, for one bucket, what a principal may do with a key."""

    def __init__(self, policies: PolicyStore, *, bucket: str, clock: Clock) -> None:
        self.policies = policies
        self.bucket = bucket
        self.clock = clock
        self._arn = f"arn:aws:s3:::{bucket}"

    def decide(
        self,
        principal: Principal,
        action: str,
        key: str | None = None,
        *,
        object_owner: str | None = None,
        content_length: int | None = None,
        content_type: str | None = None,
        prefix: str | None = None,
        max_keys: int | None = None,
        delimiter: str | None = None,
        source_ip: str | None = None,
        secure_transport: bool | None = None,
    ) -> Decision:
        """The decision without raising (for ``/policy/simulate`` and listings that filter).

        Args:
            principal: who asks; anonymous principals hold no role and are always denied.
            action: an ``s3:*`` action.
            key: the object key; None for bucket-level actions (``s3:ListBucket``).
            prefix, max_keys, delimiter: a listing's ``s3:prefix``, ``s3:max-keys`` and
                ``s3:delimiter`` (absent when None, as IAM leaves keys a request does not carry).
            object_owner: identity id of the existing object's owner; None for a new object.
                Writes to ``public/`` are allowed only when it is None or the caller's own.
        """
        resource = self._arn if key is None else f"{self._arn}/{key}"
        request = Request(
            action=action,
            resource=resource,
            identity_id=principal.identity_id,
            user_sub=principal.sub,
            username=principal.email,
            groups=principal.groups,
            source_ip=source_ip,
            secure_transport=secure_transport,
            current_time=datetime.fromtimestamp(self.clock.now(), tz=UTC),
            object_owner=object_owner,
            content_length=content_length,
            content_type=content_type,
            prefix=prefix,
            max_keys=max_keys,
            context=None if delimiter is None else {"s3:delimiter": delimiter},
        )
        return self.policies.evaluate(principal.roles, request)

    def check(
        self,
        principal: Principal,
        action: str,
        key: str | None = None,
        **facts: object,
    ) -> Decision:
        """Like :meth:`decide`, but raises AccessDenied on Deny.

        Raises:
            AccessDenied: the policies do not allow it (the detail never says whether the key exists).
        """
        decision = self.decide(principal, action, key, **facts)  # type: ignore[arg-type]
        if not decision.allowed:
            raise AccessDenied("access denied")
        return decision

    def check_api(self, principal: Principal, action: str, resource: str) -> Decision:
        """Guards a non-storage API action (e.g. ``updown:SimulatePolicy`` on ``policy``) with the same engine.

        Raises:
            AccessDenied: no policy of the principal's roles allows it.
        """
        decision = self.decide_api(principal, action, resource)
        if not decision.allowed:
            raise AccessDenied("access denied")
        return decision

    def decide_api(self, principal: Principal, action: str, resource: str) -> Decision:
        """Like :meth:`check_api`, without raising (for answers that depend on it, e.g. whether
        drafts are shown)."""
        request = Request(
            action=action,
            resource=f"{API_ARN}{resource}",
            identity_id=principal.identity_id,
            user_sub=principal.sub,
            username=principal.email,
            groups=principal.groups,
            current_time=datetime.fromtimestamp(self.clock.now(), tz=UTC),
        )
        return self.policies.evaluate(principal.roles, request)
