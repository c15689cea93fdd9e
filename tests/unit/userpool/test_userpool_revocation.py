"""Revocation reaches access tokens: at once in the process that revoked and for ``fresh`` checks, and
in another process within ``auth.revocation_cache_ttl``; runs on SQLite and, when configured, PostgreSQL.

Two Runtimes on one database stand for two server processes; an injected clock moves time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from updown import settings as settings_mod
from updown.auth.revocation import MAX_ENTRIES, SessionState
from updown.clock import FrozenClock
from updown.errors import NotAuthorized
from updown.runtime import Runtime
from updown.userpool.service import TokenSet

PASSWORD = "correct-horse-battery-staple-9"
TTL = 60


@pytest.fixture
def pair(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, Runtime, FrozenClock]]:
    clock = FrozenClock(1_800_000_000.0)
    env = {"UPDOWN_DATABASE__URL": database_url, "UPDOWN_AUTH__REVOCATION_CACHE_TTL": str(TTL)}
    settings = settings_mod.load(data_dir=tmp_path / "data", environ=env)
    one, two = Runtime(settings, clock=clock), Runtime(settings, clock=clock)
    one.database.migrate()
    yield one, two, clock
    one.close()
    two.close()


def _signed_in(runtime: Runtime, email: str) -> TokenSet:
    runtime.userpool.sign_up(email, PASSWORD)
    lines = (runtime.settings.data_dir / "outbox.jsonl").read_text().splitlines()
    code = [json.loads(x)["code"] for x in lines if json.loads(x)["to"] == email][-1]
    runtime.userpool.confirm(email, code)
    tokens = runtime.userpool.sign_in(email, PASSWORD, client_address="127.0.0.1")
    assert isinstance(tokens, TokenSet)
    return tokens


def test_revocation_other_process_sees_it_within_ttl_fresh_at_once(
    pair: tuple[Runtime, Runtime, FrozenClock],
) -> None:
    one, two, clock = pair
    tokens = _signed_in(one, "a@example.com")
    access = tokens.access_token
    assert two.tokens.verify_access(access).email == "a@example.com"  # cached in "two" now
    clock.advance(1)
    one.user_admin.set_enabled("a@example.com", False)
    with pytest.raises(NotAuthorized):
        one.tokens.verify_access(access)  # the revoking process forgot its cache
    with pytest.raises(NotAuthorized):
        two.tokens.verify_access(access, fresh=True)
    # The fresh read refreshed two's cache as well.
    with pytest.raises(NotAuthorized):
        two.tokens.verify_access(access)


def test_revocation_cached_answer_lasts_at_most_ttl(pair: tuple[Runtime, Runtime, FrozenClock]) -> None:
    one, two, clock = pair
    access = _signed_in(one, "b@example.com").access_token
    two.tokens.verify_access(access)
    clock.advance(1)
    one.user_admin.set_enabled("b@example.com", False)
    clock.advance(TTL - 2)
    assert two.tokens.verify_access(access).email == "b@example.com"  # still within the cache's time
    clock.advance(1)
    with pytest.raises(NotAuthorized):
        two.tokens.verify_access(access)


def test_change_password_refuses_tokens_issued_before_new_session_works(
    pair: tuple[Runtime, Runtime, FrozenClock],
) -> None:
    one, _, clock = pair
    before = _signed_in(one, "c@example.com")
    caller = one.identity.principal_for_bearer(before.access_token)
    clock.advance(0.4)  # same whole second as the sign-in: iat cannot tell them apart
    fresh = one.userpool.change_password(caller, PASSWORD, "another-long-passphrase-42")
    with pytest.raises(NotAuthorized):
        one.tokens.verify_access(before.access_token)
    with pytest.raises(NotAuthorized):
        one.userpool.refresh(before.refresh_token)
    assert one.tokens.verify_access(fresh.access_token).email == "c@example.com"
    assert isinstance(one.userpool.refresh(fresh.refresh_token), TokenSet)


def test_session_state_refuses_by_iat_against_tokens_valid_after() -> None:
    state = SessionState("u", "e", revoked=False, enabled=True, tokens_valid_after=100.7, read_at=0)
    assert state.refuses(99) is not None
    assert state.refuses(100) is None  # the second of the revocation: fresh tokens of new sessions
    assert state.refuses(101) is None
    assert SessionState("u", "e", True, True, None, 0).refuses(200) == "token has been revoked"
    assert SessionState("u", "e", False, False, None, 0).refuses(200) == "user is disabled"
    assert SessionState("u", "e", False, True, None, 0).refuses(0) is None


def test_session_states_cache_bounded(
    pair: tuple[Runtime, Runtime, FrozenClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    one, _, _ = pair
    monkeypatch.setattr("updown.auth.revocation.MAX_ENTRIES", 2)
    tokens = [_signed_in(one, f"m{i}@example.com").access_token for i in range(3)]
    for t in tokens:
        one.tokens.verify_access(t)
    assert len(one.tokens.sessions._entries) <= 2
    assert MAX_ENTRIES == 10_000
