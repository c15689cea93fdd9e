"""The composition root: builds every service from Settings, once per process, and nothing else does.

Services receive their collaborators and their settings section through their constructors; this is
the only module that knows how the pieces fit together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from updown.auth.keyring import Keyring
from updown.auth.throttle import Throttle
from updown.auth.tokens import TokenService
from updown.clock import Clock, SystemClock
from updown.core import secrets as secret_files
from updown.db.engine import Database
from updown.errors import ConfigError, ServiceUnavailable
from updown.files.access import AccessGate
from updown.identity.service import IdentityPool
from updown.mail.base import Mailer
from updown.mail.outbox import Outbox
from updown.mail.smtp import SmtpMailer
from updown.policy import PolicyStore
from updown.settings import Settings
from updown.storage.base import StorageBackend
from updown.storage.local import LocalBackend
from updown.userpool.admin import UserAdmin
from updown.userpool.service import UserPool

SECRETS_FILE = "secrets.json"


@dataclass(frozen=True)
class ServiceSecrets:
    """Secrets the service signs with; from settings, else generated under the data dir (0600)."""

    s3_access_key_id: str
    s3_secret_access_key: str = field(repr=False)
    code_hmac_key: str = field(repr=False)
    credentials_key: str = field(repr=False)


def load_secrets(settings: Settings) -> ServiceSecrets:
    """Configured secrets win; missing ones are generated once into ``<data>/secrets.json``."""
    stored = secret_files.load_or_create_json(
        settings.data_dir / SECRETS_FILE,
        lambda: {
            "s3_access_key_id": secret_files.new_access_key_id(),
            "s3_secret_access_key": secret_files.new_secret_access_key(),
            "code_hmac_key": secret_files.new_hmac_key(),
            "credentials_key": secret_files.new_hmac_key(),
        },
    )
    return ServiceSecrets(
        s3_access_key_id=settings.s3.access_key_id or stored["s3_access_key_id"],
        s3_secret_access_key=settings.s3.secret_access_key or stored["s3_secret_access_key"],
        code_hmac_key=stored["code_hmac_key"],
        credentials_key=stored["credentials_key"],
    )


def load_policies(settings: Settings) -> PolicyStore:
    """The default policies, with the documents of ``policy.files`` and the ``policy.roles`` mapping over them."""
    documents = {}
    for name in settings.policy.files:
        path = Path(name)
        try:
            documents[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"bad value for policy.files: {path} cannot be read ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"bad value for policy.files: {path} is not JSON ({exc.msg}, line {exc.lineno})"
            ) from None
    return PolicyStore.from_settings(settings.policy.roles, documents, bucket=settings.storage.bucket)


def build_mailer(settings: Settings, clock: Clock) -> Mailer:
    """SMTP when a host is configured, else the development outbox under the data dir."""
    m = settings.mail
    if m.smtp_host:
        return SmtpMailer(
            host=m.smtp_host,
            port=m.smtp_port,
            from_address=m.from_address,
            username=m.smtp_username or None,
            password=m.smtp_password or None,
            starttls=m.smtp_starttls,
        )
    return Outbox(settings.data_dir, clock)


def build_storage(settings: Settings) -> StorageBackend:
    """The object store: local disk under the storage root, or an S3-compatible service."""
    if settings.storage.backend == "s3":
        # Imported here: only the s3 backend pulls in boto3.
        from updown.storage.s3 import S3Backend

        s3 = settings.s3
        return S3Backend(
            settings.storage.bucket,
            endpoint_url=s3.endpoint_url or None,
            region=s3.region,
            access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key,
            path_style=s3.path_style,
        )
    return LocalBackend(settings.storage_root)


class Runtime:
    """Everything one process needs, built from Settings. Create with :func:`build`."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.secrets = load_secrets(settings)
        self.policies = load_policies(settings)
        self.database = Database(
            settings.database_url, pool_size=settings.database.pool_size, echo=settings.database.echo
        )
        auth = settings.auth
        # Old keys verify until every token they signed has expired.
        self.keyring = Keyring.load_or_create(
            settings.data_dir / "keys",
            self.clock,
            alg="ES256" if auth.signing_alg == "ES256" else "EdDSA",
            retire_after=max(auth.access_token_ttl, settings.identity.guest_token_ttl) + 300,
        )
        self.tokens = TokenService(
            self.keyring,
            self.database,
            self.clock,
            issuer=auth.issuer or settings.public_url,
            client_id=auth.client_id,
            access_ttl=auth.access_token_ttl,
            guest_ttl=settings.identity.guest_token_ttl,
            revocation_cache_ttl=auth.revocation_cache_ttl,
        )
        self.throttle = Throttle(self.database, self.clock)
        self.mailer = build_mailer(settings, self.clock)
        self.identity = IdentityPool(
            self.database,
            self.tokens,
            self.throttle,
            self.clock,
            settings.identity,
            credentials_key=bytes.fromhex(self.secrets.credentials_key),
        )
        self.userpool = UserPool(
            self.database,
            self.tokens,
            self.mailer,
            self.throttle,
            self.clock,
            auth,
            code_secret=bytes.fromhex(self.secrets.code_hmac_key),
            identity_for_user=self.identity.identity_for_user,
        )
        self.user_admin = UserAdmin(
            self.database,
            self.clock,
            identity_for_user=self.identity.identity_for_user,
            forget_user=self.tokens.sessions.forget_user,
        )
        self.storage = build_storage(settings)
        self.gate = AccessGate(self.policies, bucket=settings.storage.bucket, clock=self.clock)

    async def check_ready(self) -> list[str]:
        """Names of the dependencies that do not answer (empty when ready)."""
        failures: list[str] = []
        try:
            await anyio.to_thread.run_sync(self.database.ping)
        except ServiceUnavailable:
            failures.append("database")
        try:
            await self.storage.check()
        except ServiceUnavailable:
            failures.append("storage")
        return failures

    def close(self) -> None:
        self.database.dispose()


def build(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """Builds the runtime for one process."""
    return Runtime(settings, clock=clock)
