"""The development outbox: mail appended as JSON lines to a file instead of sent.

The file is ``mail.outbox``, else ``<data_dir>/outbox.jsonl``; ``updown mail list`` prints it.
Several processes may append at once, server workers or the processes of a cluster that share
one file: each line is appended (``O_APPEND``) under an exclusive ``flock``, so lines never
interleave, and a reader takes a shared lock, so it never sees half a line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from updown.clock import Clock, utc
from updown.errors import ServiceUnavailable
from updown.mail.base import Mailer, MailMessage
from updown.settings import Settings

FILENAME = "outbox.jsonl"


def location(settings: Settings) -> Path:
    """The outbox file: ``mail.outbox`` (relative to the working directory), else in the data dir."""
    if settings.mail.outbox:
        return Path(settings.mail.outbox).expanduser().absolute()
    return settings.data_dir / FILENAME


class Outbox(Mailer):
    """A mailer that records ``{to, subject, code, sentAt}`` per message, for development and tests."""

    def __init__(self, data_dir: Path | str, clock: Clock, *, path: Path | str | None = None) -> None:
        """The outbox ``<data_dir>/outbox.jsonl``, or the file ``path`` when given."""
        self.path = Path(path) if path is not None else Path(data_dir) / FILENAME
        self._clock = clock

    @classmethod
    def of(cls, settings: Settings, clock: Clock) -> Outbox:
        """The outbox the settings name (:func:`location`): what serve, worker and `mail list` share."""
        return cls(settings.data_dir, clock, path=location(settings))

    def send(self, message: MailMessage) -> None:
        record = {
            "to": message.to,
            "subject": message.subject,
            "code": message.code,
            "sentAt": utc(self._clock.now()).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 0600: the codes in here sign people in.
            with self._locked(os.O_WRONLY | os.O_APPEND | os.O_CREAT, fcntl.LOCK_EX) as fd:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
        except OSError as exc:
            raise ServiceUnavailable(f"the development outbox cannot be written: {exc.strerror}") from exc

    def read(self) -> list[dict[str, Any]]:
        """Every recorded message, oldest first; lines that are not JSON objects are skipped."""
        if not self.path.exists():
            return []
        with self._locked(os.O_RDONLY, fcntl.LOCK_SH) as fd, os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
        records: list[dict[str, Any]] = []
        for raw in data.splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # e.g. a line cut short by a crash mid-write; the others are still good
            if isinstance(record, dict):
                records.append(record)
        return records

    @contextlib.contextmanager
    def _locked(self, flags: int, operation: int) -> Iterator[int]:
        fd = os.open(self.path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, operation)
            yield fd
        finally:
            os.close(fd)
