"""The composition root: builds every service from Settings, once per process, and nothing else does.

Services receive their collaborators and their settings section through their constructors; this is
the only module that knows how the pieces fit together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from updown.clock import Clock, SystemClock
from updown.core import secrets as secret_files
from updown.db.engine import Database
from updown.errors import ConfigError, ServiceUnavailable
from updown.policy import PolicyStore
from updown.settings import Settings

SECRETS_FILE = "secrets.json"


@dataclass(frozen=True)
class ServiceSecrets:
    """Secrets the service signs with; from settings, else generated under the data dir (0600)."""

    s3_access_key_id: str
    s3_secret_access_key: str = field(repr=False)
    code_hmac_key: str = field(repr=False)


def load_secrets(settings: Settings) -> ServiceSecrets:
    """Configured secrets win; missing ones are generated once into ``<data>/secrets.json``."""
    stored = secret_files.load_or_create_json(
        settings.data_dir / SECRETS_FILE,
        lambda: {
            "s3_access_key_id": secret_files.new_access_key_id(),
            "s3_secret_access_key": secret_files.new_secret_access_key(),
            "code_hmac_key": secret_files.new_hmac_key(),
        },
    )
    return ServiceSecrets(
        s3_access_key_id=settings.s3.access_key_id or stored["s3_access_key_id"],
        s3_secret_access_key=settings.s3.secret_access_key or stored["s3_secret_access_key"],
        code_hmac_key=stored["code_hmac_key"],
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

    def check_ready(self) -> list[str]:
        """Names of the dependencies that do not answer (empty when ready)."""
        failures: list[str] = []
        try:
            self.database.ping()
        except ServiceUnavailable:
            failures.append("database")
        return failures

    def close(self) -> None:
        self.database.dispose()


def build(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """Builds the runtime for one process."""
    return Runtime(settings, clock=clock)
