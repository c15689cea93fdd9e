"""auth.throttle token buckets (``take``): a burst, then one per interval, Retry-After, keys apart."""

from __future__ import annotations

import pytest

from updown.auth.throttle import Throttle
from updown.clock import FrozenClock
from updown.db.engine import Database
from updown.errors import TooManyRequests


@pytest.fixture
def throttle(database: Database) -> tuple[Throttle, FrozenClock]:
    clock = FrozenClock(1_800_000_000.0)
    return Throttle(database, clock), clock


def _taken(t: Throttle, key: str, n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            t.take(key, per_minute=30, burst=10)
            ok += 1
        except TooManyRequests:
            pass
    return ok


def test_take_burst_then_refused_with_retry_after(throttle: tuple[Throttle, FrozenClock]) -> None:
    t, _ = throttle
    assert _taken(t, "guest:a", 10) == 10
    with pytest.raises(TooManyRequests) as refused:
        t.take("guest:a", per_minute=30, burst=10)
    assert refused.value.retry_after == 2  # one token every 60/30 s


def test_take_refills_at_rate(throttle: tuple[Throttle, FrozenClock]) -> None:
    t, clock = throttle
    assert _taken(t, "guest:b", 20) == 10
    clock.advance(2)
    assert _taken(t, "guest:b", 5) == 1
    clock.advance(60)
    assert _taken(t, "guest:b", 40) == 10  # refilled, but never past the burst


def test_take_keys_independent(throttle: tuple[Throttle, FrozenClock]) -> None:
    t, _ = throttle
    assert _taken(t, "guest:c", 15) == 10
    assert _taken(t, "guest:d", 3) == 3


def test_take_burst_one_is_plain_rate(throttle: tuple[Throttle, FrozenClock]) -> None:
    t, clock = throttle
    t.take("k", per_minute=60, burst=1)
    with pytest.raises(TooManyRequests):
        t.take("k", per_minute=60, burst=1)
    clock.advance(1)
    t.take("k", per_minute=60, burst=1)


def test_take_sustained_rate_over_ten_minutes(throttle: tuple[Throttle, FrozenClock]) -> None:
    t, clock = throttle
    ok = 0
    for _ in range(600):  # one attempt a second for 10 minutes
        ok += _taken(t, "guest:e", 1)
        clock.advance(1)
    assert 300 <= ok <= 310  # 30 a minute, plus the initial burst
