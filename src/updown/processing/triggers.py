"""ObjectCreated triggers for direct writes: steps registered by key prefix, run by the worker.

Objects written straight to a key (a presigned PUT to the data plane, or to the S3 service itself)
do not pass through an upload intent, so nothing else would process them. Two ways in, one job:

- the data plane's write (``files.objects.Objects.put``) calls :meth:`ObjectTriggers.created` in the
  transaction that records the object, which queues an ``object-created`` job for a watched key;
- :meth:`ObjectTriggers.reconcile` (a periodic job) lists every watched prefix and queues the same
  job for each object, for writes the data plane never saw (the S3 backend, where PUTs go straight
  to the store) and for a process that died between the bytes and the job.

Jobs are deduplicated on ``(key, etag)``: one version of one object is queued once, however often
it is written or listed (a step must be idempotent anyway). Reconcile looks only at objects
modified within ``window`` (6 days: less than the 7 days finished jobs are kept, so every object it
looks at still has its job row when it was queued before); older ones were listed by earlier runs.
The job HEADs the object and runs the steps with what it finds; a job whose version was replaced
or deleted meanwhile does nothing (the newer version has its own job).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import anyio.to_thread
from sqlalchemy.orm import Session

from updown.clock import Clock
from updown.db.engine import Database
from updown.errors import NoSuchKey
from updown.processing.queue import Queue
from updown.storage.base import ObjectInfo, StorageBackend

log = logging.getLogger("updown.processing")

OBJECT_CREATED_JOB: Final = "object-created"
RECONCILE_JOB: Final = "reconcile"
_PAGE: Final = 1000
RECONCILE_WINDOW: Final = 6 * 86_400.0

ObjectStep = Callable[[ObjectInfo], Awaitable[None]]


class ObjectTriggers:
    """Steps for objects created under watched prefixes, queued in the database."""

    def __init__(
        self, db: Database, storage: StorageBackend, jobs: Queue, clock: Clock, *, window: float = RECONCILE_WINDOW
    ) -> None:
        self.db = db
        self.storage = storage
        self.jobs = jobs
        self.clock = clock
        self.window = window
        self._steps: list[tuple[str, ObjectStep]] = []

    def register(self, prefix: str, step: ObjectStep) -> None:
        """Runs ``step`` (at least once) for every object version created under ``prefix``."""
        if not prefix or not prefix.endswith("/"):
            raise ValueError("a trigger prefix is a non-empty folder, ending in '/'")
        self._steps.append((prefix, step))

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(prefix for prefix, _ in self._steps))

    def watches(self, key: str) -> bool:
        return any(key.startswith(prefix) for prefix, _ in self._steps)

    def created(self, s: Session, info: ObjectInfo) -> bool:
        """Queues the object's job in the caller's transaction; False when not watched or queued already."""
        if not self.watches(info.key):
            return False
        return self._enqueue(s, info.key, info.etag)

    def _enqueue(self, s: Session, key: str, etag: str) -> bool:
        return self.jobs.enqueue(s, OBJECT_CREATED_JOB, _dedupe(key, etag), {"key": key, "etag": etag})

    async def run(self, payload: Mapping[str, Any]) -> None:
        """The ``object-created`` job: HEAD the object, then run the steps of its prefix."""
        key, etag = str(payload["key"]), str(payload["etag"])
        try:
            info = await self.storage.head(key)
        except NoSuchKey:
            log.info("object-created %s: the object is gone", key)
            return
        if info.etag != etag:
            log.info("object-created %s: replaced since (etag %s, now %s)", key, etag, info.etag)
            return
        for prefix, step in self._steps:
            if key.startswith(prefix):
                await step(info)

    async def reconcile_job(self, _payload: Mapping[str, Any]) -> None:
        """The periodic ``reconcile`` job."""
        await self.reconcile()

    async def reconcile(self) -> int:
        """Lists every watched prefix and queues each object version not queued before; returns how many."""
        queued = 0
        since = self.clock.now() - self.window
        for prefix in self.prefixes:
            token: str | None = None
            while True:
                page = await self.storage.list(prefix, limit=_PAGE, continuation_token=token)
                items = [(item.key, item.etag) for item in page.items if item.last_modified >= since]
                if items:
                    queued += await anyio.to_thread.run_sync(self._enqueue_all, items)
                if page.next_token is None:
                    break
                token = page.next_token
        if queued:
            log.info("reconcile: queued %s object-created jobs", queued)
        return queued

    def _enqueue_all(self, items: list[tuple[str, str]]) -> int:
        """Queues the versions of one listed page that have no job yet: one query for the page,
        then an insert for each new one only."""
        wanted = {_dedupe(key, etag): (key, etag) for key, etag in items}
        with self.db.session() as s:
            known = self.jobs.known(s, OBJECT_CREATED_JOB, list(wanted))
            return sum(
                1 for dedupe, (key, etag) in wanted.items() if dedupe not in known and self._enqueue(s, key, etag)
            )


def _dedupe(key: str, etag: str) -> str:
    return f"{etag}:{key}"
