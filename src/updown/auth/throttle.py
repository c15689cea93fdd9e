"""Rate limits in the database, shared by every worker: fixed-window counters (failed sign-ins, code
guesses, mails) and token buckets (new guest identities per client address)."""

from __future__ import annotations

import math

from sqlalchemy.exc import IntegrityError

from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.users import Throttle as ThrottleRow
from updown.errors import TooManyRequests


class Throttle:
    """Counts events per key in windows of ``window`` seconds and refuses past a limit."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def check(self, key: str, limit: int, window: int) -> None:
        """Raises TooManyRequests (with Retry-After) if ``key`` has reached ``limit`` in this window."""
        now = self.clock.now()
        with self.db.session() as s:
            row = s.get(ThrottleRow, key)
            if row is not None and now - row.window_start < window and row.count >= limit:
                raise TooManyRequests(
                    "too many attempts; try again later",
                    retry_after=math.ceil(row.window_start + window - now),
                )

    def hit(self, key: str, window: int) -> int:
        """Counts one event for ``key``; returns the count in the current window."""
        now = self.clock.now()
        for _ in range(3):
            try:
                with self.db.session() as s:
                    row = s.get(ThrottleRow, key, with_for_update=True)
                    if row is None:
                        s.add(ThrottleRow(key=key, window_start=now, count=1))
                        return 1
                    if now - row.window_start >= window:
                        row.window_start, row.count = now, 1
                    else:
                        row.count += 1
                    return row.count
            except IntegrityError:  # another worker inserted the same key first: count again
                continue
        return 0  # pragma: no cover - three concurrent first inserts in a row

    def consume(self, key: str, limit: int, window: int) -> None:
        """Counts one event and refuses it if it goes over ``limit`` (for things that cost us: mail)."""
        self.check(key, limit, window)
        self.hit(key, window)

    def take(self, key: str, per_minute: int, burst: int) -> None:
        """Takes one token from ``key``'s bucket (``burst`` deep, refilled at ``per_minute``).

        A generic cell rate algorithm: the row keeps only the bucket's theoretical arrival time (in
        ``window_start``), so a bucket is one row and one locked read-modify-write.

        Raises:
            TooManyRequests: the bucket is empty; ``retry_after`` is when the next token comes.
        """
        interval = 60.0 / per_minute
        tolerance = interval * (burst - 1)
        for _ in range(3):
            now = self.clock.now()
            try:
                with self.db.session() as s:
                    row = s.get(ThrottleRow, key, with_for_update=True)
                    due = now if row is None else max(row.window_start, now)
                    if due - now > tolerance:
                        raise TooManyRequests(
                            "too many requests from this address; try again later",
                            retry_after=math.ceil(due - tolerance - now),
                        )
                    if row is None:
                        s.add(ThrottleRow(key=key, window_start=due + interval, count=0))
                    else:
                        row.window_start = due + interval
                    return
            except IntegrityError:  # another worker inserted the same key first: take again
                continue

    def reset(self, key: str) -> None:
        with self.db.session() as s:
            row = s.get(ThrottleRow, key)
            if row is not None:
                s.delete(row)
