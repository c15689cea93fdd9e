"""The request a policy is asked about: action, resource, who asks, and the request's context keys.

Resources are canonical as S3 ARNs: a plain ``bucket/key`` (no ``arn:`` prefix) is read as
``arn:aws:s3:::bucket/key``, both in policies and in requests. Time comes from the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from updown.policy.variables import PRINCIPAL_KEYS

S3_ARN_PREFIX = "arn:aws:s3:::"

ContextValue = str | bool | int | float | datetime | Sequence[str] | None
KeyValue = str | bool | int | float | datetime


def to_arn(resource: str) -> str:
    """The canonical form of a resource: ARNs and ``*`` as given, ``bucket/key`` as an S3 ARN."""
    if resource.startswith("arn:") or resource == "*":
        return resource
    return S3_ARN_PREFIX + resource


def has_dot_segment(path: str) -> bool:
    """Whether a "/"-separated path holds a ``.`` or ``..`` segment."""
    # Fast path (most keys have a dot, as in a file name): a dot segment starts the path or follows a "/".
    if "/." not in path and not path.startswith("."):
        return False
    return any(seg in (".", "..") for seg in path.split("/"))


def as_text(value: KeyValue) -> str:
    """A key value as IAM compares strings: booleans as ``true``/``false``, times in ISO 8601 UTC."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _principal_value(value: str | None) -> str | None:
    # Empty or "/"-holding identity values would widen a path pattern: treat them as absent.
    if not value or "/" in value:
        return None
    return value


_IDENTITY_KEYS = frozenset({"cognito-identity.amazonaws.com:sub", "identity-id"})
_SIMPLE_FIELDS = {
    "aws:sourceip": "source_ip",
    "aws:securetransport": "secure_transport",
    "updown:objectowner": "object_owner",
    "updown:contentlength": "content_length",
    "updown:contenttype": "content_type",
    "s3:prefix": "prefix",
    "s3:max-keys": "max_keys",
}


def _context_values(key: str, value: ContextValue) -> tuple[KeyValue, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if key in PRINCIPAL_KEYS and _principal_value(value) is None:
            return None
        return (value,)
    if isinstance(value, bool | int | float | datetime):
        return (value,)
    values = tuple(str(v) for v in value)
    if key in PRINCIPAL_KEYS:
        values = tuple(v for v in values if _principal_value(v) is not None)
    return values


@dataclass(frozen=True, init=False)
class Request:
    """One question for the policy engine.

    ``identity_id`` fills ``${cognito-identity.amazonaws.com:sub}`` and ``${identity-id}``;
    ``user_sub`` fills ``${jwt:sub}``; ``aws:userid`` is the user sub, or the identity id for a
    guest. ``context`` adds or overrides any key by name (case-insensitive), e.g. from
    ``updown policy simulate --context k=v``; a None value removes the key.
    """

    action: str
    resource: str
    identity_id: str | None = None
    user_sub: str | None = None
    username: str | None = None
    groups: Sequence[str] = ()
    source_ip: str | None = None
    secure_transport: bool | None = None
    current_time: datetime | None = None
    object_owner: str | None = None
    content_length: int | None = None
    content_type: str | None = None
    prefix: str | None = None
    max_keys: int | None = None
    context: Mapping[str, ContextValue] | None = None

    # Derived once in __init__: every evaluation needs them.
    action_key: str = field(init=False, repr=False, compare=False)
    arn: str = field(init=False, repr=False, compare=False)
    dotted: bool = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        action: str,
        resource: str,
        identity_id: str | None = None,
        user_sub: str | None = None,
        username: str | None = None,
        groups: Sequence[str] = (),
        source_ip: str | None = None,
        secure_transport: bool | None = None,
        current_time: datetime | None = None,
        object_owner: str | None = None,
        content_length: int | None = None,
        content_type: str | None = None,
        prefix: str | None = None,
        max_keys: int | None = None,
        context: Mapping[str, ContextValue] | None = None,
    ) -> None:
        # Written out rather than generated: a frozen dataclass's __init__ sets each field through
        # object.__setattr__, which was half the cost of a decision (bench/bench_policy.py). The
        # instance dict is filled directly, once; nothing assigns to it afterwards (frozen).
        arn = to_arn(resource)
        d = self.__dict__
        d["action"] = action
        d["resource"] = resource
        d["identity_id"] = identity_id
        d["user_sub"] = user_sub
        d["username"] = username
        d["groups"] = groups
        d["source_ip"] = source_ip
        d["secure_transport"] = secure_transport
        d["current_time"] = current_time
        d["object_owner"] = object_owner
        d["content_length"] = content_length
        d["content_type"] = content_type
        d["prefix"] = prefix
        d["max_keys"] = max_keys
        d["context"] = context
        # Caches of its own fields, derived once: every evaluation needs them.
        d["action_key"] = action.lower()
        d["arn"] = arn
        dotted = has_dot_segment(arn)
        if not dotted and (prefix is not None or context is not None):
            values = self.values_of("s3:prefix")
            dotted = values is not None and any(has_dot_segment(as_text(p)) for p in values)
        d["dotted"] = dotted

    @cached_property
    def keys(self) -> Mapping[str, tuple[KeyValue, ...]]:
        """Every key present in this request (lower-cased name → its values)."""
        table: dict[str, tuple[KeyValue, ...]] = {}
        identity = _principal_value(self.identity_id)
        sub = _principal_value(self.user_sub)
        if identity is not None:
            table["cognito-identity.amazonaws.com:sub"] = table["identity-id"] = (identity,)
        if sub is not None:
            table["jwt:sub"] = (sub,)
        userid = sub or identity
        if userid is not None:
            table["aws:userid"] = (userid,)
        username = _principal_value(self.username)
        if username is not None:
            table["aws:username"] = (username,)
        if self.groups:
            table["updown:groups"] = tuple(self.groups)
        if self.source_ip is not None:
            table["aws:sourceip"] = (self.source_ip,)
        if self.secure_transport is not None:
            table["aws:securetransport"] = (self.secure_transport,)
        if self.current_time is not None:
            table["aws:currenttime"] = (self.current_time,)
            aware = self.current_time
            if aware.tzinfo is None:
                aware = aware.replace(tzinfo=UTC)
            table["aws:epochtime"] = (int(aware.timestamp()),)
        if self.object_owner is not None:
            table["updown:objectowner"] = (self.object_owner,)
        if self.content_length is not None:
            table["updown:contentlength"] = (self.content_length,)
        if self.content_type is not None:
            table["updown:contenttype"] = (self.content_type,)
        if self.prefix is not None:
            table["s3:prefix"] = (self.prefix,)
        if self.max_keys is not None:
            table["s3:max-keys"] = (self.max_keys,)
        for name, value in (self.context or {}).items():
            key = name.lower()
            values = _context_values(key, value)
            if values is None:
                table.pop(key, None)
            else:
                table[key] = values
        return table

    def values_of(self, key: str) -> tuple[KeyValue, ...] | None:
        """The values of a (lower-cased) key, or None when the request does not carry it."""
        if self.context is None:
            # Fast path for the hot keys that map to one field; the table handles the rest.
            attribute = _SIMPLE_FIELDS.get(key)
            if attribute is not None:
                value = getattr(self, attribute)
                return None if value is None else (value,)
        values = self.keys.get(key)
        return values if values else None

    def variable(self, name: str) -> str | None:
        """The value of ``${name}``: the key's single value as text, or None."""
        if self.context is None and name in _IDENTITY_KEYS:
            return _principal_value(self.identity_id)
        values = self.keys.get(name)
        if values is None or len(values) != 1:
            return None
        return as_text(values[0])
