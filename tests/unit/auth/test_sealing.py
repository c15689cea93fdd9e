"""auth.sealing: AES-256-GCM at rest, bound to the row, pass-through without a key."""

from __future__ import annotations

import secrets

import pytest

from updown.auth.sealing import Sealer
from updown.errors import ConfigError


def test_seal_open_round_trip_not_plain() -> None:
    sealer = Sealer(secrets.token_bytes(32))
    sealed = sealer.seal("top secret", context="service_secret:x")
    assert sealed.startswith("sealed:v1:")
    assert "top secret" not in sealed
    assert sealer.seal("top secret", context="service_secret:x") != sealed  # fresh nonce
    assert sealer.open(sealed, context="service_secret:x") == "top secret"


def test_open_other_context_or_key_or_tampered_refused() -> None:
    sealer = Sealer(secrets.token_bytes(32))
    sealed = sealer.seal("top secret", context="service_secret:x")
    with pytest.raises(ConfigError, match="does not decrypt"):
        sealer.open(sealed, context="service_secret:y")
    with pytest.raises(ConfigError, match="does not decrypt"):
        Sealer(secrets.token_bytes(32)).open(sealed, context="service_secret:x")
    with pytest.raises(ConfigError, match="does not decrypt"):
        sealer.open(sealed[:-4] + "AAAA", context="service_secret:x")
    with pytest.raises(ConfigError, match="does not decrypt"):
        sealer.open("sealed:v1:!!", context="service_secret:x")


def test_no_key_passes_through_and_refuses_sealed() -> None:
    plain = Sealer()
    assert not plain.enabled
    assert plain.seal("v", context="c") == "v"
    assert plain.open("v", context="c") == "v"
    with pytest.raises(ConfigError, match="not set"):
        plain.open(Sealer(secrets.token_bytes(32)).seal("v", context="c"), context="c")


def test_from_setting_hex_only_and_key_not_in_repr() -> None:
    key = secrets.token_hex(32)
    assert Sealer.from_setting(key).enabled
    assert not Sealer.from_setting("").enabled
    assert key not in repr(Sealer.from_setting(key))
    with pytest.raises(ConfigError, match="64 hex"):
        Sealer.from_setting("nothex")
    with pytest.raises(ConfigError, match="64 hex"):
        Sealer.from_setting("ab" * 16)
