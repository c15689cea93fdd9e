"""The user pool's lifetimes, checked by moving an injected clock instead of sleeping.

Codes (confirm 24 h, reset 1 h), access and guest tokens (1 h, 30 s leeway), refresh sessions and
NEW_PASSWORD_REQUIRED challenges all expire; runs on SQLite and, when configured, PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from updown import settings as settings_mod
from updown.clock import FrozenClock
from updown.db.models.identities import Identity
from updown.errors import ExpiredCode, NotAuthorized, TooManyRequests
from updown.runtime import Runtime
from updown.userpool.service import Challenge, TokenSet

PASSWORD = "correct-horse-battery-staple-9"
HOUR = 3600


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, FrozenClock]]:
    clock = FrozenClock(1_800_000_000.0)
    settings = settings_mod.load(data_dir=tmp_path / "data", environ={"UPDOWN_DATABASE__URL": database_url})
    runtime = Runtime(settings, clock=clock)
    runtime.database.migrate()
    yield runtime, clock
    runtime.close()


def _last_code(runtime: Runtime, email: str) -> str:
    lines = (runtime.settings.data_dir / "outbox.jsonl").read_text().splitlines()
    codes = [json.loads(line)["code"] for line in lines if json.loads(line)["to"] == email]
    return str(codes[-1])


def _confirmed(runtime: Runtime, email: str) -> None:
    runtime.userpool.sign_up(email, PASSWORD)
    runtime.userpool.confirm(email, _last_code(runtime, email))


def test_userpool_confirm_code_after_24h_expired(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    runtime.userpool.sign_up("late@example.com", PASSWORD)
    code = _last_code(runtime, "late@example.com")
    clock.advance(24 * HOUR)
    with pytest.raises(ExpiredCode):
        runtime.userpool.confirm("late@example.com", code)


def test_userpool_confirm_code_just_before_24h_works(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    runtime.userpool.sign_up("ontime@example.com", PASSWORD)
    clock.advance(24 * HOUR - 1)
    assert runtime.userpool.confirm("ontime@example.com", _last_code(runtime, "ontime@example.com")) == {
        "confirmed": True
    }


def test_userpool_reset_code_after_1h_expired(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    _confirmed(runtime, "reset@example.com")
    runtime.userpool.forgot_password("reset@example.com")
    code = _last_code(runtime, "reset@example.com")
    clock.advance(HOUR)
    with pytest.raises(ExpiredCode):
        runtime.userpool.reset_password("reset@example.com", code, "another-long-passphrase-42")


def test_userpool_access_token_expires_after_1h_with_30s_leeway(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    _confirmed(runtime, "tok@example.com")
    tokens = runtime.userpool.sign_in("tok@example.com", PASSWORD, client_address="127.0.0.1")
    assert isinstance(tokens, TokenSet)
    access = tokens.access_token
    clock.advance(HOUR + 29)
    assert runtime.tokens.verify_access(access).email == "tok@example.com"
    clock.advance(2)
    with pytest.raises(NotAuthorized, match="expired"):
        runtime.tokens.verify_access(access)


def test_userpool_refresh_after_session_lifetime_refused(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    _confirmed(runtime, "old@example.com")
    tokens = runtime.userpool.sign_in("old@example.com", PASSWORD, client_address="127.0.0.1")
    assert isinstance(tokens, TokenSet)
    refresh = tokens.refresh_token
    clock.advance(runtime.settings.auth.refresh_token_ttl - 10)
    fresh = runtime.userpool.refresh(refresh)
    clock.advance(20)
    with pytest.raises(NotAuthorized, match="expired"):
        runtime.userpool.refresh(fresh.refresh_token)


def test_userpool_challenge_session_expires(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    runtime.user_admin.create_user("temp@example.com", PASSWORD, temporary=True)
    challenge = runtime.userpool.sign_in("temp@example.com", PASSWORD, client_address="127.0.0.1")
    assert isinstance(challenge, Challenge)
    session = challenge.session
    clock.advance(runtime.settings.auth.challenge_ttl)
    with pytest.raises(NotAuthorized, match="expired"):
        runtime.userpool.respond_new_password(session, "brand-new-passphrase-77")


def test_identity_guest_token_expires_after_ttl(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    token = runtime.identity.create_guest(client_address="127.0.0.1")["token"]
    assert runtime.identity.principal_for_bearer(token).kind == "guest"
    clock.advance(runtime.settings.identity.guest_token_ttl + 31)
    with pytest.raises(NotAuthorized):
        runtime.identity.principal_for_bearer(token)


def test_identity_temporary_credentials_expire(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    guest = runtime.identity.principal_for_bearer(runtime.identity.create_guest(client_address="127.0.0.1")["token"])
    issued = runtime.identity.issue_credentials(guest)
    key_id = issued.credentials.access_key_id
    found = runtime.identity.resolve_temporary(key_id)
    assert found is not None
    assert found[0] == issued.credentials
    assert found[1].identity_id == guest.identity_id
    clock.advance(runtime.settings.identity.credentials_ttl)
    assert runtime.identity.resolve_temporary(key_id) is None


def _guest_rows(runtime: Runtime) -> int:
    with runtime.database.session() as s:
        return int(s.scalar(select(func.count()).select_from(Identity).where(Identity.kind == "guest")) or 0)


def test_identity_guests_expire_once_no_token_or_credential_reaches_them(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    pool = runtime.identity
    old = pool.principal_for_bearer(pool.create_guest(client_address="10.0.0.1")["token"])
    pool.issue_credentials(old)
    lifetime = runtime.settings.identity.guest_token_ttl + runtime.settings.identity.credentials_ttl
    clock.advance(lifetime)
    assert pool.expire_guests() == 0  # its last credentials may still be alive (clock leeway)
    clock.advance(121)
    young = pool.create_guest(client_address="10.0.0.2")  # each new guest also sweeps dead ones
    assert _guest_rows(runtime) == 1
    assert pool.principal_for_bearer(young["token"]).kind == "guest"
    assert pool.expire_guests() == 0


def test_identity_guest_creation_bounded_per_address(rt: tuple[Runtime, FrozenClock]) -> None:
    runtime, clock = rt
    burst = runtime.settings.identity.guest_burst
    for _ in range(burst):
        runtime.identity.create_guest(client_address="10.0.0.3")
    with pytest.raises(TooManyRequests):
        runtime.identity.create_guest(client_address="10.0.0.3")
    runtime.identity.create_guest(client_address="10.0.0.4")
    clock.advance(60 / runtime.settings.identity.guest_rate_per_minute)
    runtime.identity.create_guest(client_address="10.0.0.3")
    assert _guest_rows(runtime) == burst + 2
