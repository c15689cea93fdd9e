"""Secrets at rest in the database: sealed with AES-256-GCM under ``auth.key_encryption_key``, or
stored as they are when no key is configured (then the database holds them in the clear).

A sealed value is ``sealed:v1:`` + base64url(nonce ‖ ciphertext ‖ tag); the row's identity (e.g.
``signing_key:<kid>``) is the associated data, so a sealed value copied into another row does not open.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from updown.errors import ConfigError

PREFIX = "sealed:v1:"
_NONCE = 12


class Sealer:
    """Seals and opens secrets stored in database rows. ``key`` None: values pass through unchanged."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and len(key) != 32:
            raise ConfigError("bad value for auth.key_encryption_key: need 64 hex characters (256 bits)")
        self._aead = AESGCM(key) if key is not None else None

    @classmethod
    def from_setting(cls, value: str) -> Sealer:
        """From the ``auth.key_encryption_key`` setting: hex, or empty for no encryption."""
        if not value:
            return cls(None)
        try:
            return cls(bytes.fromhex(value))
        except ValueError:
            raise ConfigError("bad value for auth.key_encryption_key: need 64 hex characters (256 bits)") from None

    @property
    def enabled(self) -> bool:
        return self._aead is not None

    def __repr__(self) -> str:
        return f"Sealer(enabled={self.enabled})"

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def seal(self, secret: str, *, context: str) -> str:
        """The text to store for ``secret`` in the row named by ``context``."""
        if self._aead is None:
            return secret
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, secret.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, *, context: str) -> str:
        """The secret in a stored value (sealed or not).

        Raises:
            ConfigError: the value is sealed and no key is configured, or it does not open with the
                configured key (another key, or a value moved from another row).
        """
        if not self.is_sealed(stored):
            return stored
        if self._aead is None:
            raise ConfigError(f"{context} is encrypted in the database but auth.key_encryption_key is not set")
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (InvalidTag, ValueError):
            raise ConfigError(
                f"{context} in the database does not decrypt with auth.key_encryption_key (another key?)"
            ) from None
