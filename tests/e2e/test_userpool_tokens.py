"""User pool e2e: JWKS and OpenID discovery, token claims checked with PyJWT, the keyring in the database, key
rotation across a restart, and forged or malformed tokens (Wycheproof-style JWS cases) refused with 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.e2e.userpool_helpers import (
    UUID_RE,
    assert_problem,
    assert_tokens,
    bearer,
    confirmed_user,
    me,
    new_email,
    new_password,
    signin,
)
from tests.support.processes import Server, clean_env

ED25519_L = 2**252 + 27742317777372353535851937790883648493


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(obj: Any) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    h, p, s = token.split(".")
    return json.loads(unb64u(h)), json.loads(unb64u(p)), unb64u(s)


def ed_sign(key: Ed25519PrivateKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{b64u(key.sign(signing_input.encode()))}"


def public_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}


@dataclass
class Real:
    """Genuine tokens from this server, the raw material of the forgeries."""

    access: str
    id: str
    refresh: str
    guest: str
    jwks: dict[str, Any]

    @property
    def header(self) -> dict[str, Any]:
        return parts(self.access)[0]

    @property
    def claims(self) -> dict[str, Any]:
        return parts(self.access)[1]

    @property
    def signature(self) -> bytes:
        return parts(self.access)[2]

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    @property
    def public_key_bytes(self) -> bytes:
        jwk = next(k for k in self.jwks["keys"] if k["kid"] == self.kid)
        return unb64u(jwk["x"])

    def with_signature(self, sig: bytes) -> str:
        h, p, _ = self.access.split(".")
        return f"{h}.{p}.{b64u(sig)}"


@pytest.fixture(scope="module")
def real(server: Server) -> Iterator[Real]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        tokens = confirmed_user(c, server).signin(c)
        guest = c.post("/identity/guest")
        assert guest.status_code == 201, guest.text
        yield Real(
            tokens["accessToken"],
            tokens["idToken"],
            tokens["refreshToken"],
            guest.json()["token"],
            c.get("/.well-known/jwks.json").json(),
        )


# --- discovery and claims -------------------------------------------------------------------------


def test_jwks_public_ed25519_keys_with_kid(client: httpx.Client) -> None:
    r = client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/")
    keys = r.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "OKP"
        assert key["crv"] == "Ed25519"
        assert key["alg"] == "EdDSA"
        assert key["use"] == "sig"
        assert key["kid"]
        assert len(unb64u(key["x"])) == 32
        assert "d" not in key  # never the private part
    assert len({k["kid"] for k in keys}) == len(keys)


def test_openid_configuration_issuer_jwks_uri_algs(client: httpx.Client) -> None:
    r = client.get("/.well-known/openid-configuration")
    assert r.status_code == 200
    conf = r.json()
    assert conf["issuer"].startswith("http")
    assert conf["jwks_uri"].endswith("/.well-known/jwks.json")
    assert "EdDSA" in conf["id_token_signing_alg_values_supported"]
    assert not {"none", "HS256"} & set(conf["id_token_signing_alg_values_supported"])


def _verify(client: httpx.Client, token: str, **kwargs: Any) -> dict[str, Any]:
    """Verify ``token`` the way an outside client would: JWKS + discovery + PyJWT."""
    jwks = client.get("/.well-known/jwks.json").json()
    issuer = client.get("/.well-known/openid-configuration").json()["issuer"]
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert header["alg"] == jwk["alg"]
    key = jwt.PyJWK(jwk)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[jwk["alg"]],
        issuer=issuer,
        options={"require": ["sub", "iss", "exp", "iat", "jti"]},
        **kwargs,
    )
    return claims


def test_access_token_verifies_with_jwks_cognito_claims(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    tokens = user.signin(client)
    claims = _verify(client, tokens["accessToken"])
    assert claims["token_use"] == "access"
    assert UUID_RE.fullmatch(claims["sub"])
    assert claims["client_id"]
    assert "aud" not in claims or claims["aud"] == claims["client_id"]
    assert 0 < claims["exp"] - claims["iat"] <= 3600
    assert abs(claims["iat"] - time.time()) < 120
    assert claims["jti"]
    groups = claims.get("cognito:groups", claims.get("groups"))
    assert groups == []
    assert me(client, tokens["accessToken"]).json()["sub"] == claims["sub"]
    # Each sign-in gets its own token id.
    assert _verify(client, user.signin(client)["accessToken"])["jti"] != claims["jti"]


def test_id_token_verifies_with_jwks_audience_and_email(client: httpx.Client, server: Server) -> None:
    user = confirmed_user(client, server)
    tokens = user.signin(client)
    access = _verify(client, tokens["accessToken"])
    claims = _verify(client, tokens["idToken"], audience=access["client_id"])
    assert claims["token_use"] == "id"
    assert claims["sub"] == access["sub"]
    assert claims["email"] == user.email
    assert claims["email_verified"] is True
    assert 0 < claims["exp"] - claims["iat"] <= 3600


@pytest.mark.embedded("reads the ring from the SQLite database of the data dir")
def test_keyring_in_database_not_under_data_dir(server: Server, client: httpx.Client, real: Real) -> None:
    # Every process on the database signs with one ring: nothing of it lives in the data dir.
    assert not (server.data_dir / "keys").exists()
    with sqlite3.connect(server.data_dir / "updown.db") as conn:
        stored = {kid for (kid,) in conn.execute("SELECT kid FROM signing_keys")}
    assert {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]} <= stored


# --- tokens of the wrong kind and forgeries -------------------------------------------------------


def _attacker_claims(real: Real, **changes: Any) -> dict[str, Any]:
    return {**real.claims, "cognito:groups": ["admin"], **changes}


def _hs256(real: Real, secret: bytes) -> str:
    header = {"alg": "HS256", "kid": real.kid, "typ": "JWT"}
    signing_input = f"{segment(header)}.{segment(_attacker_claims(real))}"
    return f"{signing_input}.{b64u(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _public_pem(real: Real) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    pub = Ed25519PublicKey.from_public_bytes(real.public_key_bytes)
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def _non_canonical_s(real: Real) -> str:
    # Ed25519 malleability: S + L verifies in lax implementations; RFC 8032 requires S < L.
    sig = real.signature
    s = int.from_bytes(sig[32:], "little") + ED25519_L
    return real.with_signature(sig[:32] + s.to_bytes(32, "little"))


_ATTACKER = Ed25519PrivateKey.generate()
# The identity point of edwards25519 (y = 1): small order, and R = identity, S = 0 "verifies" any
# message under the identity public key in implementations that skip the small-order check.
_IDENTITY = (1).to_bytes(32, "little")

FORGERIES: dict[str, Callable[[Real], str]] = {
    "id_token_as_access": lambda r: r.id,
    "refresh_token_as_access": lambda r: r.refresh,
    "guest_token_as_access": lambda r: r.guest,
    "alg_none_empty_signature": lambda r: f"{segment({**r.header, 'alg': 'none'})}.{segment(_attacker_claims(r))}.",
    "alg_none_no_kid": lambda r: f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(r.claims)}.",
    "alg_None_capitalised": lambda r: f"{segment({**r.header, 'alg': 'None'})}.{segment(r.claims)}.",
    "hs256_with_raw_public_key": lambda r: _hs256(r, r.public_key_bytes),
    "hs256_with_public_key_pem": lambda r: _hs256(r, _public_pem(r)),
    "hs256_with_jwk_x_string": lambda r: _hs256(r, b64u(r.public_key_bytes).encode()),
    "es256_alg_on_eddsa_key": lambda r: f"{segment({**r.header, 'alg': 'ES256'})}.{r.access.split('.', 1)[1]}",
    "jku_to_attacker_jwks": lambda r: ed_sign(
        _ATTACKER, {"alg": "EdDSA", "kid": "attacker", "jku": "http://127.0.0.1:9/jwks.json"}, _attacker_claims(r)
    ),
    "x5u_to_attacker_cert": lambda r: ed_sign(
        _ATTACKER, {"alg": "EdDSA", "kid": "attacker", "x5u": "http://127.0.0.1:9/cert.pem"}, _attacker_claims(r)
    ),
    "embedded_jwk_no_kid": lambda r: ed_sign(
        _ATTACKER, {"alg": "EdDSA", "jwk": public_jwk(_ATTACKER)}, _attacker_claims(r)
    ),
    "embedded_jwk_with_real_kid": lambda r: ed_sign(
        _ATTACKER, {"alg": "EdDSA", "kid": r.kid, "jwk": public_jwk(_ATTACKER)}, _attacker_claims(r)
    ),
    "real_kid_attacker_key": lambda r: ed_sign(_ATTACKER, {"alg": "EdDSA", "kid": r.kid}, _attacker_claims(r)),
    "unknown_kid_attacker_key": lambda r: ed_sign(_ATTACKER, {"alg": "EdDSA", "kid": "x" * 43}, _attacker_claims(r)),
    "no_kid_attacker_key": lambda r: ed_sign(_ATTACKER, {"alg": "EdDSA"}, _attacker_claims(r)),
    "kid_path_traversal": lambda r: ed_sign(_ATTACKER, {"alg": "EdDSA", "kid": "../../keys/../secrets"}, r.claims),
    "expired_attacker_key": lambda r: ed_sign(
        _ATTACKER, {"alg": "EdDSA", "kid": "attacker"}, {**r.claims, "iat": 1_000_000, "exp": 1_000_600}
    ),
    "crit_header": lambda r: f"{segment({**r.header, 'crit': ['exp']})}.{r.access.split('.', 1)[1]}",
    "payload_tampered_groups": lambda r: (
        f"{r.access.split('.')[0]}.{segment(_attacker_claims(r))}.{r.access.split('.')[2]}"
    ),
    "payload_tampered_exp": lambda r: (
        f"{r.access.split('.')[0]}.{segment({**r.claims, 'exp': r.claims['exp'] + 9e5})}.{r.access.split('.')[2]}"
    ),
    "signature_bit_flipped_first": lambda r: r.with_signature(_flip(r.signature, 0)),
    "signature_bit_flipped_last": lambda r: r.with_signature(_flip(r.signature, len(r.signature) - 1)),
    "signature_one_byte_short": lambda r: r.with_signature(r.signature[:-1]),
    "signature_one_byte_long": lambda r: r.with_signature(r.signature + b"\x00"),
    "signature_doubled": lambda r: r.with_signature(r.signature * 2),
    "signature_empty": lambda r: r.with_signature(b""),
    "signature_all_zero": lambda r: r.with_signature(bytes(64)),
    "signature_s_not_reduced": _non_canonical_s,
    "signature_small_order_r_zero_s": lambda r: r.with_signature(_IDENTITY + bytes(32)),
    "identity_public_key_embedded": lambda r: (
        f"{segment({'alg': 'EdDSA', 'jwk': {'kty': 'OKP', 'crv': 'Ed25519', 'x': b64u(_IDENTITY)}})}"
        f".{segment(_attacker_claims(r))}.{b64u(_IDENTITY + bytes(32))}"
    ),
    "truncated_last_char": lambda r: r.access[:-1],
    "truncated_half": lambda r: r.access[: len(r.access) // 2],
    "truncated_no_signature_segment": lambda r: r.access.rsplit(".", 1)[0],
    "truncated_header_only": lambda r: r.access.split(".")[0],
    "four_segments": lambda r: r.access + "." + r.access.split(".")[2],
    "padded_base64": lambda r: ".".join(p + "==" for p in r.access.split(".")),
    "standard_base64_alphabet": lambda r: r.access.replace("-", "+").replace("_", "/") + "+/",
    "header_not_json": lambda r: f"{b64u(b'not json')}.{r.access.split('.', 1)[1]}",
    "header_json_array": lambda r: f"{b64u(b'[]')}.{r.access.split('.', 1)[1]}",
    "payload_not_json": lambda r: f"{r.access.split('.')[0]}.{b64u(b'not json')}.{r.access.split('.')[2]}",
    "dots_only": lambda r: "..",
    "whitespace_inside": lambda r: r.access[:20] + " " + r.access[20:],
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_auth_me_forged_or_wrong_kind_token_401(client: httpx.Client, real: Real, forgery: str) -> None:
    token = FORGERIES[forgery](real)
    assert token != real.access
    r = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401, "NotAuthorized")
    # The genuine token still works: the refusal is about the forgery, not a broken server.
    assert me(client, real.access).status_code == 200


@pytest.mark.parametrize("forgery", sorted(set(FORGERIES) - {"guest_token_as_access"}))
def test_identity_me_forged_token_401(client: httpx.Client, real: Real, forgery: str) -> None:
    r = client.get("/identity/me", headers={"Authorization": f"Bearer {FORGERIES[forgery](real)}"})
    assert_problem(r, 401, "NotAuthorized")


def test_auth_me_oversized_token_refused_not_500(client: httpx.Client, real: Real) -> None:
    h, p, s = real.access.split(".")
    r = client.get("/auth/me", headers=bearer(f"{h}.{p + 'A' * 12000}.{s}"))
    assert r.status_code in (401, 431), r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_auth_me_token_in_other_scheme_or_query_refused(client: httpx.Client, real: Real) -> None:
    assert_problem(client.get("/auth/me", headers={"Authorization": f"Token {real.access}"}), 401, "NotAuthorized")
    assert_problem(client.get("/auth/me", params={"access_token": real.access}), 401, "NotAuthorized")


# --- rotation across a restart --------------------------------------------------------------------


def test_keyring_rotation_new_key_signs_old_tokens_still_verify_issuer_checked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    email, password = new_email("rot"), new_password()
    # The issuer defaults to the public URL, which names the port; pin it so the restart keeps it.
    issuer = {"UPDOWN_AUTH__ISSUER": "https://rotation.example"}
    first = Server(data_dir=data, env=clean_env(issuer)).start()
    try:
        first.cli("user", "create", email, "--password", password)
        with httpx.Client(base_url=first.url, timeout=30) as c:
            old = assert_tokens(signin(c, email, password))
        old_kid = jwt.get_unverified_header(old["accessToken"])["kid"]
    finally:
        first.stop()
    # A new signing algorithm makes a new current key; the old one keeps verifying its tokens.
    second = Server(data_dir=data, env=clean_env({**issuer, "UPDOWN_AUTH__SIGNING_ALG": "ES256"})).start()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as c:
            jwks = c.get("/.well-known/jwks.json").json()["keys"]
            assert {k["kid"] for k in jwks} >= {old_kid}
            assert len(jwks) == 2
            assert me(c, old["accessToken"]).status_code == 200
            new = assert_tokens(signin(c, email, password))
            header = jwt.get_unverified_header(new["accessToken"])
            assert header["alg"] == "ES256"
            assert header["kid"] != old_kid
            ec = next(k for k in jwks if k["kid"] == header["kid"])
            assert (ec["kty"], ec["crv"], ec["alg"]) == ("EC", "P-256", "ES256")
            claims = _verify(c, new["accessToken"])
            assert claims["token_use"] == "access"
            assert me(c, new["accessToken"]).status_code == 200
            # The old session's refresh token is still good, and now gets tokens from the new key.
            rotated = assert_tokens(c.post("/auth/refresh", json={"refreshToken": old["refreshToken"]}))
            assert jwt.get_unverified_header(rotated["accessToken"])["kid"] == header["kid"]
        assert not (data / "keys").exists()  # the ring is in the database
    finally:
        second.stop()
    # Same keys, another issuer: the verifier checks iss, so the old tokens are refused.
    third = Server(data_dir=data, env=clean_env({"UPDOWN_AUTH__ISSUER": "https://elsewhere.example"})).start()
    try:
        with httpx.Client(base_url=third.url, timeout=30) as c:
            assert_problem(me(c, old["accessToken"]), 401, "NotAuthorized")
            assert_problem(me(c, new["accessToken"]), 401, "NotAuthorized")
    finally:
        third.stop()
