"""The composition root: builds every service from Settings, once per process, and nothing else does.

Services receive their collaborators and their settings section through their constructors; this is
the only module that knows how the pieces fit together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import inspect

from updown.apps.events import UPLOAD_PREFIX, Events
from updown.apps.photos import EventPhotoStep
from updown.apps.products import Products
from updown.auth import service_secrets
from updown.auth.keyring import Keyring
from updown.auth.sealing import Sealer
from updown.auth.throttle import Throttle
from updown.auth.tokens import TokenService
from updown.clock import Clock, SystemClock
from updown.core import secrets as secret_files
from updown.core.sigv4 import Credentials, Signer
from updown.db.engine import Database
from updown.db.models.cluster import ServiceSecretRow, SigningKeyRow
from updown.errors import ConfigError, ServiceUnavailable
from updown.files.access import AccessGate
from updown.files.objects import Objects
from updown.files.presign import Presigner
from updown.files.records import Records
from updown.files.uploads import Uploads
from updown.identity.service import IdentityPool
from updown.mail.base import Mailer
from updown.mail.outbox import Outbox
from updown.mail.smtp import SmtpMailer
from updown.policy import PolicyStore
from updown.policy.defaults import EVENT_UPLOADER_ROLE
from updown.processing import images
from updown.processing.cleanup import Cleanup
from updown.processing.jobs import JobQueue
from updown.processing.pipeline import Pipeline
from updown.processing.queue import JobInfo, JobWorker, Queue, Registry, RetryPolicy, WorkerOptions
from updown.processing.triggers import OBJECT_CREATED_JOB, RECONCILE_JOB, ObjectTriggers
from updown.settings import Settings
from updown.storage.base import StorageBackend
from updown.storage.local import LocalBackend
from updown.userpool.admin import UserAdmin
from updown.userpool.service import UserPool

SECRETS_FILE = "secrets.json"
PROCESS_JOB = "process-upload"
CLEANUP_JOB = "cleanup"


@dataclass(frozen=True)
class ServiceSecrets:
    """Secrets the service signs with; from settings, else generated once into the database."""

    s3_access_key_id: str
    s3_secret_access_key: str = field(repr=False)
    code_hmac_key: str = field(repr=False)
    credentials_key: str = field(repr=False)


def load_secrets(settings: Settings, database: Database, clock: Clock, sealer: Sealer) -> ServiceSecrets:
    """Configured secrets win; missing ones come from the ``service_secrets`` table, shared by every
    process (made once, or imported once from a pre-0006 ``<data>/secrets.json``).

    The generated S3 service credentials are also written to ``<data>/secrets.json`` (0600) when it
    does not exist, where a person finds the keys to give S3 tools; nothing reads them back from there.
    """
    configured = {
        "s3_access_key_id": settings.s3.access_key_id,
        "s3_secret_access_key": settings.s3.secret_access_key,
        "code_hmac_key": settings.auth.code_hmac_key,
        "credentials_key": settings.identity.credentials_key,
    }
    fresh: dict[str, Callable[[], str]] = {
        "s3_access_key_id": secret_files.new_access_key_id,
        "s3_secret_access_key": secret_files.new_secret_access_key,
        "code_hmac_key": secret_files.new_hmac_key,
        "credentials_key": secret_files.new_hmac_key,
    }
    legacy = settings.data_dir / SECRETS_FILE
    stored = service_secrets.load_or_create(
        database,
        clock,
        sealer,
        {name: make for name, make in fresh.items() if not configured[name]},
        import_from=legacy,
    )
    values = {name: configured[name] or stored[name] for name in fresh}
    s3_names = ("s3_access_key_id", "s3_secret_access_key")
    if not legacy.exists() and all(name in stored for name in s3_names):
        secret_files.write_private_file(legacy, json.dumps({n: stored[n] for n in s3_names}, indent=2).encode())
    return ServiceSecrets(**values)


def _ensure_shared_state_schema(database: Database) -> None:
    """The runtime reads its secrets and signing keys from the database while it is built, so a
    database without their tables (a first start, an upgrade from before 0006) is migrated first.
    `updown migrate` run beforehand makes this a check that imports nothing (Alembic costs ~9 MiB)."""
    present = set(inspect(database.engine).get_table_names())
    if not {SigningKeyRow.__tablename__, ServiceSecretRow.__tablename__} <= present:
        database.migrate()


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
    """SMTP when a host is configured, else the development outbox (``mail.outbox``, else in the data dir)."""
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
    return Outbox.of(settings, clock)


def build_storage(settings: Settings) -> StorageBackend:
    """The object store: local disk under the storage root, or an S3-compatible service."""
    if settings.storage.backend == "s3":
        # Imported here: only the s3 backend pulls in boto3.
        from updown.storage.s3 import S3Backend

        s3 = settings.s3
        backend = S3Backend(
            settings.storage.bucket,
            endpoint_url=s3.endpoint_url or None,
            region=s3.region,
            access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key,
            path_style=s3.path_style,
            probe_prefixes=s3.probe_prefixes,
            offload=settings.storage.offload,
            offload_prefix=settings.storage.offload_prefix,
        )
        backend.min_part_size = settings.uploads.min_part_size
        return backend
    return LocalBackend(
        settings.storage_root,
        min_part_size=settings.uploads.min_part_size,
        offload=settings.storage.offload,
        offload_prefix=settings.storage.offload_prefix,
    )


def build_queue(settings: Settings, db: Database, clock: Clock) -> Queue:
    """The job queue: the ``jobs`` table, or procrastinate on the same PostgreSQL."""
    p, q = settings.processing, settings.queue
    if q.backend == "procrastinate":
        # Imported here: only this backend pulls in procrastinate.
        from updown.processing.queue_procrastinate import ProcrastinateQueue

        return ProcrastinateQueue(db, stalled_worker_timeout=q.stalled_worker_timeout)
    return JobQueue(db, clock, lease=p.lease, max_attempts=p.max_attempts)


def build_presigner(settings: Settings, service: Credentials, clock: Clock) -> Presigner:
    """Presigned URLs point at the local backend's ``/s3`` data plane, or at the S3 service itself
    as clients reach it (``s3.public_endpoint_url``; the signature binds that host)."""
    if settings.storage.backend == "s3":
        s3 = settings.s3
        endpoint = s3.public_endpoint_url or s3.endpoint_url or f"https://s3.{s3.region}.amazonaws.com"
        signer = Signer(Credentials(s3.access_key_id, s3.secret_access_key), s3.region)
        return Presigner(signer, endpoint=endpoint, bucket=settings.storage.bucket, clock=clock)
    signer = Signer(service, settings.s3.region)
    return Presigner(signer, endpoint=f"{settings.public_url}/s3", bucket=settings.storage.bucket, clock=clock)


class Runtime:
    """Everything one process needs, built from Settings. Create with :func:`build`."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.policies = load_policies(settings)
        self.database = Database(
            settings.database_url, pool_size=settings.database.pool_size, echo=settings.database.echo
        )
        _ensure_shared_state_schema(self.database)
        auth = settings.auth
        sealer = Sealer.from_setting(auth.key_encryption_key)
        self.secrets = load_secrets(settings, self.database, self.clock, sealer)
        # Old keys verify until every token they signed has expired. Keys of a pre-0006 data dir
        # (<data>/keys/*.pem) become the ring once, when the table has none.
        self.keyring = Keyring.load_or_create(
            self.database,
            self.clock,
            alg="ES256" if auth.signing_alg == "ES256" else "EdDSA",
            retire_after=max(auth.access_token_ttl, settings.identity.guest_token_ttl) + 300,
            sealer=sealer,
            import_from=settings.data_dir / "keys",
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
            service_roles=(EVENT_UPLOADER_ROLE,),
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
        self.service_credentials = Credentials(self.secrets.s3_access_key_id, self.secrets.s3_secret_access_key)
        self.presigner = build_presigner(settings, self.service_credentials, self.clock)
        p = settings.processing
        self.jobs = build_queue(settings, self.database, self.clock)
        # ObjectCreated steps for direct writes: queued by the data plane's writes and by reconcile.
        self.triggers = ObjectTriggers(self.database, self.storage, self.jobs, self.clock)
        self.records = Records(
            self.database,
            self.storage,
            self.gate,
            self.presigner,
            self.clock,
            default_expires=settings.storage.presign_expires,
            max_expires=settings.storage.presign_max_expires,
        )
        self.uploads = Uploads(
            self.database,
            self.storage,
            self.gate,
            self.presigner,
            self.clock,
            settings.uploads,
            queue_processing=lambda s, upload_id, etag: self.jobs.enqueue(
                s, PROCESS_JOB, f"{upload_id}:{etag}", {"uploadId": upload_id}
            ),
        )
        self.objects = Objects(
            self.storage,
            self.gate,
            self.uploads,
            self.records,
            self.clock,
            max_object_size=settings.storage.max_object_size,
            object_created=self.triggers.created,
        )
        self.pipeline = Pipeline(
            self.database,
            self.storage,
            self.records,
            self.clock,
            work_dir=settings.data_dir / "work",
            limits=images.ImageLimits(max_pixels=p.max_pixels),
            thumbnail_size=p.thumbnail_size,
            allow_executables=p.allow_executables,
        )
        self._build_apps(settings)
        self.cleanup = Cleanup(
            self.database,
            self.storage,
            self.jobs,
            self.clock,
            expire_guests=self.identity.expire_guests,
            multipart_lifetime=settings.uploads.multipart_expires,
        )

    def _build_apps(self, settings: Settings) -> None:
        """The seeds' apps: events (photos presigned for the event-uploader role, processed by an
        ObjectCreated step on uploads/) and the product catalogue."""
        a, p = settings.apps, settings.processing
        uploader = self.identity.role_credentials(EVENT_UPLOADER_ROLE)
        self.events = Events(self.database, self.gate, build_presigner(settings, uploader, self.clock), self.clock, a)
        self.objects.bind(UPLOAD_PREFIX, self.events.bound_write)
        self.event_photos = EventPhotoStep(
            self.database,
            self.storage,
            self.records,
            self.clock,
            work_dir=settings.data_dir / "work",
            limits=images.ImageLimits(max_pixels=p.max_pixels),
            thumbnail_size=p.thumbnail_size,
            photo_size=a.event_photo_size,
            max_size=a.event_photo_max_size,
        )
        self.triggers.register(UPLOAD_PREFIX, self.event_photos)
        self.products = Products(self.database, self.gate, self.records, self.clock)

    def job_registry(self) -> Registry:
        """The one list of job kinds: processing, cleanup and the ObjectCreated steps (and reconcile)."""
        p = self.settings.processing
        retry = RetryPolicy(max_attempts=p.max_attempts)

        async def process(payload: Mapping[str, Any]) -> None:
            await self.pipeline.process(str(payload["uploadId"]))

        async def cleanup(_payload: Mapping[str, Any]) -> None:
            await self.cleanup.run(older_than=p.cleanup_older_than)

        registry = Registry()
        registry.register(PROCESS_JOB, process, retry)
        registry.register(CLEANUP_JOB, cleanup, retry)
        registry.register(OBJECT_CREATED_JOB, self.triggers.run, retry)
        registry.register(RECONCILE_JOB, self.triggers.reconcile_job, retry)
        return registry

    def worker(self, *, concurrency: int | None = None) -> JobWorker:
        """A worker for this process's queue: the registry's jobs, and cleanup and reconcile queued
        every ``cleanup_interval`` and ``reconcile_interval``."""
        p = self.settings.processing

        def periodic() -> None:
            # One cleanup (and one reconcile) per interval across every process: the dedupe key is
            # the interval's number.
            now = self.clock.now()
            for kind, interval in ((CLEANUP_JOB, p.cleanup_interval), (RECONCILE_JOB, p.reconcile_interval)):
                if interval > 0:
                    with self.database.session() as s:
                        self.jobs.enqueue(s, kind, str(int(now // interval)), {})

        options = WorkerOptions(
            concurrency=concurrency or p.concurrency,
            poll_interval=p.poll_interval,
            shutdown_timeout=self.settings.queue.shutdown_timeout,
            periodic=periodic,
            periodic_interval=max(p.poll_interval, 5.0),
        )
        return self.jobs.worker(self.job_registry(), options)

    def processing_state(self, upload_id: str, etag: str | None) -> JobInfo | None:
        """The processing job of an upload's landed bytes (for its state: dead-lettered or not)."""
        return None if etag is None else self.jobs.get(PROCESS_JOB, f"{upload_id}:{etag}")

    def migrate(self) -> None:
        """The database schema, then what the job queue needs of its own (procrastinate's tables)."""
        self.database.migrate()
        self.jobs.migrate()

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
