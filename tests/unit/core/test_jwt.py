"""core.jwt: round trips, and every token the verifier must refuse (Wycheproof-style JWS edge cases)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from updown.clock import FrozenClock
from updown.core import jwt
from updown.core.jwt import Claims, SigningKey, VerifyingKey
from updown.errors import ConfigError, NotAuthorized, ServerError

ISS = "http://localhost:8000"
NOW = 1_700_000_000


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj).encode())


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def claims(**over: Any) -> dict[str, Any]:
    base = Claims.issue(sub="user-1", iss=ISS, token_use="access", now=NOW, lifetime=3600, client_id="web")
    out = base.to_dict()
    out.update(over)
    return {k: v for k, v in out.items() if v is not None}


def lookup(*keys: SigningKey | VerifyingKey) -> jwt.KeyLookup:
    table = {k.kid: (k.verifying if isinstance(k, SigningKey) else k) for k in keys}
    return table.get


def check(token: str, key: SigningKey | VerifyingKey, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"keys": lookup(key), "issuer": ISS, "token_use": "access", "now": NOW + 10}
    args.update(kw)
    return jwt.verify(token, **args)


def refused(token: str, key: SigningKey | VerifyingKey, detail: str, **kw: Any) -> None:
    with pytest.raises(NotAuthorized) as info:
        check(token, key, **kw)
    assert detail in info.value.detail
    assert "\n" not in info.value.detail


def raw_sign(key: SigningKey, signing_input: str) -> bytes:
    assert isinstance(key.private_key, Ed25519PrivateKey)
    return key.private_key.sign(signing_input.encode())


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    return f"{b64json(header)}.{b64json(payload)}.{b64(signature)}"


@pytest.fixture(scope="module")
def ed() -> SigningKey:
    return SigningKey.generate("EdDSA")


@pytest.fixture(scope="module")
def es() -> SigningKey:
    return SigningKey.generate("ES256")


# --- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_verify_valid_token_returns_claims(alg: jwt.Algorithm) -> None:
    key = SigningKey.generate(alg)
    token = jwt.sign(claims(groups=["admin"]), key)
    header = json.loads(unb64(token.split(".")[0]))
    assert header == {"alg": alg, "kid": key.kid, "typ": "JWT"}
    got = check(token, key, audience="web")
    assert got["sub"] == "user-1"
    assert got["groups"] == ["admin"]
    assert got["exp"] == NOW + 3600


def test_sign_claims_dataclass_includes_aud_and_extra(ed: SigningKey) -> None:
    c = Claims.issue(sub="s", iss=ISS, token_use="id", now=NOW + 0.9, lifetime=60, aud="web", extra={"email": "a@b.c"})
    got = check(jwt.sign(c, ed), ed, token_use="id", audience="web")
    assert got == {**c.extra, "sub": "s", "iss": ISS, "token_use": "id", "iat": NOW, "exp": NOW + 60,
                   "jti": c.jti, "aud": "web"}  # fmt: skip
    assert len(c.jti) >= 16


def test_claims_issue_jti_is_unique() -> None:
    a = Claims.issue(sub="s", iss=ISS, token_use="access", now=NOW, lifetime=1)
    b = Claims.issue(sub="s", iss=ISS, token_use="access", now=NOW, lifetime=1)
    assert a.jti != b.jti


def test_sign_missing_required_claim_raises_server_error(ed: SigningKey) -> None:
    payload = claims()
    del payload["jti"]
    with pytest.raises(ServerError, match="jti"):
        jwt.sign(payload, ed)


def test_verify_audience_list_matches(ed: SigningKey) -> None:
    token = jwt.sign(claims(client_id=None, aud=["other", "web"]), ed)
    assert check(token, ed, audience="web")["aud"] == ["other", "web"]


def test_verify_leeway_out_of_range_raises_config_error(ed: SigningKey) -> None:
    with pytest.raises(ConfigError):
        check(jwt.sign(claims(), ed), ed, leeway=61)


# --- header and algorithm refusals ------------------------------------------------------------------


def test_verify_alg_none_refused(ed: SigningKey) -> None:
    token = f"{b64json({'alg': 'none', 'kid': ed.kid})}.{b64json(claims())}."
    refused(token, ed, "algorithm 'none' is not accepted")


def test_verify_hs256_with_public_key_as_secret_refused(ed: SigningKey) -> None:
    public_pem = ed.verifying.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, payload = b64json({"alg": "HS256", "kid": ed.kid, "typ": "JWT"}), b64json(claims())
    for secret in (public_pem, unb64(ed.verifying.jwk()["x"])):
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        refused(f"{header}.{payload}.{b64(mac)}", ed, "algorithm 'HS256' is not accepted")


def test_verify_alg_mismatch_with_key_refused(ed: SigningKey, es: SigningKey) -> None:
    # An ES256 signature presented under the EdDSA key's kid.
    token = pyjwt.encode(claims(), es.private_key, algorithm="ES256", headers={"kid": ed.kid})
    refused(token, ed, "algorithm 'ES256' does not match its key")


def test_verify_unknown_kid_refused(ed: SigningKey) -> None:
    other = SigningKey.generate()
    refused(jwt.sign(claims(), other), ed, "signing key is unknown")


@pytest.mark.parametrize("kid", [None, "", 7])
def test_verify_missing_or_bad_kid_refused(ed: SigningKey, kid: Any) -> None:
    header = {"alg": "EdDSA"} if kid is None else {"alg": "EdDSA", "kid": kid}
    refused(forge(header, claims(), b"\0" * 64), ed, "has no kid")


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c", "crit", "b64", "zip"])
def test_verify_dangerous_header_refused(ed: SigningKey, name: str) -> None:
    value: Any = {"crit": ["exp"], "jwk": ed.verifying.jwk(), "b64": False}.get(name, "https://evil/x")
    header = b64json({"alg": "EdDSA", "kid": ed.kid, name: value})
    payload = b64json(claims())
    token = f"{header}.{payload}.{b64(raw_sign(ed, f'{header}.{payload}'))}"
    refused(token, ed, f"parameter {name!r} is not accepted")


def test_verify_header_without_alg_refused(ed: SigningKey) -> None:
    refused(forge({"kid": ed.kid}, claims(), b"\0" * 64), ed, "has no alg")


def test_verify_wrong_typ_refused(ed: SigningKey) -> None:
    token = pyjwt.encode(claims(), ed.private_key, algorithm="EdDSA", headers={"kid": ed.kid, "typ": "at+jwt"})
    refused(token, ed, "typ is not JWT")


# --- malformed tokens -------------------------------------------------------------------------------


def test_verify_truncated_tokens_refused(ed: SigningKey) -> None:
    token = jwt.sign(claims(), ed)
    for cut in range(0, len(token), 7):
        with pytest.raises(NotAuthorized):
            check(token[:cut], ed)


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        ("", "missing"),
        ("a.b", "not a compact JWS"),
        ("a.b.c.d", "not a compact JWS"),
        ("x" * 9000, "too long"),
        ("é.b.c", "header is not base64url"),
        ("ab$c.b.c", "header is not base64url"),
        ("eyJ=.b.c", "header is not canonical base64url"),
        (f"{b64(b'not json')}.b.c", "header is not valid JSON"),
        (f"{b64(b'[1]')}.b.c", "header is not a JSON object"),
        (f"{b64(bytes([0xFF, 0xFE]))}.b.c", "header is not valid JSON"),
        (b64(b'{"alg":"EdDSA","alg":"none"}') + ".b.c", "header is not valid JSON"),
    ],
)
def test_verify_malformed_token_refused(ed: SigningKey, token: str, detail: str) -> None:
    refused(token, ed, detail)


def test_verify_non_str_token_refused(ed: SigningKey) -> None:
    refused(b"abc", ed, "missing")  # type: ignore[arg-type]


def test_verify_bit_flipped_signature_refused(ed: SigningKey, es: SigningKey) -> None:
    for key in (ed, es):
        head, body, sig = jwt.sign(claims(), key).split(".")
        raw = bytearray(unb64(sig))
        for i in (0, len(raw) // 2, len(raw) - 1):
            flipped = bytearray(raw)
            flipped[i] ^= 0x01
            refused(f"{head}.{body}.{b64(bytes(flipped))}", key, "signature is invalid")


def test_verify_bit_flipped_payload_refused(ed: SigningKey) -> None:
    head, _, sig = jwt.sign(claims(), ed).split(".")
    refused(f"{head}.{b64json(claims(sub='admin'))}.{sig}", ed, "signature is invalid")


@pytest.mark.parametrize("length", [0, 1, 63, 65, 128])
def test_verify_signature_of_wrong_length_refused(ed: SigningKey, es: SigningKey, length: int) -> None:
    for key in (ed, es):
        head, body, sig = jwt.sign(claims(), key).split(".")
        raw = (unb64(sig) * 3)[:length]
        refused(f"{head}.{body}.{b64(raw)}", key, "signature is invalid")


def test_verify_non_canonical_signature_encoding_refused(ed: SigningKey) -> None:
    head, body, sig = jwt.sign(claims(), ed).split(".")
    # 64 bytes → 86 characters with 4 unused low bits in the last one; setting them keeps the bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(sig[-1]) | 0b1111]
    assert last != sig[-1]
    assert unb64(sig[:-1] + last) == unb64(sig)
    refused(f"{head}.{body}.{sig[:-1]}{last}", ed, "signature is not canonical")


def test_verify_ecdsa_zero_signature_refused(es: SigningKey) -> None:
    head, body, _ = jwt.sign(claims(), es).split(".")
    refused(f"{head}.{body}.{b64(bytes(64))}", es, "signature is invalid")


def test_verify_ecdsa_signature_with_s_above_order_refused(es: SigningKey) -> None:
    head, body, sig = jwt.sign(claims(), es).split(".")
    raw = unb64(sig)
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    s = int.from_bytes(raw[32:], "big") + n
    if s < 2**256:
        refused(f"{head}.{body}.{b64(raw[:32] + s.to_bytes(32, 'big'))}", es, "signature is invalid")
    r_plus_n = (int.from_bytes(raw[:32], "big") + n) % 2**256
    refused(f"{head}.{body}.{b64(r_plus_n.to_bytes(32, 'big') + raw[32:])}", es, "signature is invalid")


def test_verify_ed25519_s_not_reduced_refused(ed: SigningKey) -> None:
    # Wycheproof: S + L must not verify (signature malleability).
    head, body, sig = jwt.sign(claims(), ed).split(".")
    raw = unb64(sig)
    big_l = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(raw[32:], "little") + big_l
    refused(f"{head}.{body}.{b64(raw[:32] + s.to_bytes(32, 'little'))}", ed, "signature is invalid")


def test_verify_payload_not_json_refused(ed: SigningKey) -> None:
    header = b64json({"alg": "EdDSA", "kid": ed.kid, "typ": "JWT"})
    for payload in (b64(b"nope"), b64(b'"a string"')):
        sig = raw_sign(ed, f"{header}.{payload}")
        refused(f"{header}.{payload}.{b64(sig)}", ed, "payload is not")


# --- keys in a JWKS ---------------------------------------------------------------------------------


def test_jwks_export_matches_rfc8037(ed: SigningKey, es: SigningKey) -> None:
    doc = jwt.jwks([ed.verifying, es.verifying])
    okp, ecj = doc["keys"]
    assert set(okp) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (okp["kty"], okp["crv"], okp["alg"], okp["use"], okp["kid"]) == (
        "OKP",
        "Ed25519",
        "EdDSA",
        "sig",
        ed.kid,
    )
    raw = ed.verifying.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert unb64(okp["x"]) == raw
    assert (ecj["kty"], ecj["crv"], ecj["alg"]) == ("EC", "P-256", "ES256")
    assert "d" not in okp
    assert "d" not in ecj


def test_thumbprint_matches_rfc7638_example() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
    x = unb64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    key = SigningKey.from_private_key(
        Ed25519PrivateKey.from_private_bytes(unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"))
    )
    assert key.verifying.jwk()["x"] == b64(x)
    assert key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize("key", ["EdDSA", "ES256"])
def test_key_from_jwk_round_trip_verifies(key: jwt.Algorithm) -> None:
    sk = SigningKey.generate(key)
    vk = jwt.key_from_jwk(sk.verifying.jwk())
    assert vk.kid == sk.kid
    assert check(jwt.sign(claims(), sk), vk)["sub"] == "user-1"


def _ed_jwk(x: bytes) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "k1", "x": b64(x)}


P = 2**255 - 19
Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022


@pytest.mark.parametrize("y", [0, 1, P - 1, Y8, P - Y8, P, P + 1])
@pytest.mark.parametrize("sign_bit", [0, 1])
def test_key_from_jwk_small_order_or_noncanonical_point_refused(y: int, sign_bit: int) -> None:
    with pytest.raises(ConfigError, match="small order"):
        jwt.key_from_jwk(_ed_jwk((y | sign_bit << 255).to_bytes(32, "little")))


def test_verify_forgery_under_identity_key_refused() -> None:
    # Why the small-order check exists: under the identity point, R=identity, S=0 "signs" anything.
    identity = (1).to_bytes(32, "little")
    forged = identity + bytes(32)
    Ed25519PublicKey.from_public_bytes(identity).verify(forged, b"anything")  # OpenSSL accepts it
    with pytest.raises(ConfigError):
        jwt.key_from_jwk(_ed_jwk(identity))
    trusting = VerifyingKey(
        kid="k1", alg="EdDSA", public_key=Ed25519PublicKey.from_public_bytes((2).to_bytes(32, "little"))
    )
    refused(forge({"alg": "EdDSA", "kid": "k1"}, claims(), forged), trusting, "signature is invalid")


def test_verify_invalid_ed25519_point_in_jwks_refuses_every_token(ed: SigningKey) -> None:
    # y=2 has no x on the curve: the key loads, but nothing can verify under it.
    vk = jwt.key_from_jwk({**_ed_jwk((2).to_bytes(32, "little")), "kid": ed.kid})
    refused(jwt.sign(claims(), ed), vk, "signature is invalid")


def test_key_from_jwk_p256_point_off_curve_refused(es: SigningKey) -> None:
    good = es.verifying.jwk()
    y = int.from_bytes(unb64(good["y"]), "big") ^ 1
    with pytest.raises(ConfigError, match="not on the curve"):
        jwt.key_from_jwk({**good, "y": b64(y.to_bytes(32, "big"))})


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"d": "AAAA"}, "private"),
        ({"kid": ""}, "no kid"),
        ({"use": "enc"}, "not a signature key"),
        ({"crv": "Ed448"}, "must be OKP"),
        ({"alg": "HS256"}, "must be OKP"),
        ({"kty": "oct"}, "must be OKP"),
        ({"x": 5}, "no x"),
        ({"x": "a+b/"}, "not base64url"),
        ({"x": b64(bytes(31))}, "32 bytes"),
    ],
)
def test_key_from_jwk_bad_members_refused(ed: SigningKey, change: dict[str, Any], detail: str) -> None:
    with pytest.raises(ConfigError, match=detail):
        jwt.key_from_jwk({**ed.verifying.jwk(), **change})


def test_key_from_jwk_p256_with_ed_alg_refused(es: SigningKey) -> None:
    with pytest.raises(ConfigError):
        jwt.key_from_jwk({**es.verifying.jwk(), "alg": "EdDSA"})


def test_verifying_key_alg_must_match_key_type(ed: SigningKey, es: SigningKey) -> None:
    with pytest.raises(ConfigError):
        VerifyingKey(kid="k", alg="ES256", public_key=ed.verifying.public_key)
    with pytest.raises(ConfigError):
        SigningKey(kid="k", alg="EdDSA", private_key=es.private_key)


def test_signing_key_pem_round_trip(es: SigningKey, ed: SigningKey) -> None:
    for key in (ed, es):
        again = SigningKey.from_pem(key.to_pem())
        assert (again.kid, again.alg) == (key.kid, key.alg)
        assert "PRIVATE" not in repr(again)


def test_signing_key_from_pem_refuses_other_keys() -> None:
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        SigningKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigError, match="Ed25519 or EC P-256"):
        SigningKey.from_pem(rsa_pem)
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigError, match="Ed25519 or EC P-256"):
        SigningKey.from_pem(p384)


# --- claims -----------------------------------------------------------------------------------------


def test_verify_expired_refused_with_and_without_leeway(ed: SigningKey) -> None:
    token = jwt.sign(claims(), ed)
    exp = NOW + 3600
    refused(token, ed, "expired", now=exp, leeway=0)
    assert check(token, ed, now=exp - 1, leeway=0)["exp"] == exp
    assert check(token, ed, now=exp + 29, leeway=30)["exp"] == exp
    refused(token, ed, "expired", now=exp + 30, leeway=30)


def test_verify_iat_in_future_refused(ed: SigningKey) -> None:
    token = jwt.sign(claims(iat=NOW + 100, exp=NOW + 3700), ed)
    refused(token, ed, "issued in the future", now=NOW + 10, leeway=60)
    assert check(token, ed, now=NOW + 41, leeway=60)["iat"] == NOW + 100


def test_verify_nbf_in_future_refused(ed: SigningKey) -> None:
    token = jwt.sign(claims(nbf=NOW + 100), ed)
    refused(token, ed, "not valid yet", now=NOW + 10)
    assert check(token, ed, now=NOW + 99)["nbf"] == NOW + 100


def test_verify_with_frozen_clock_expires_after_advance(ed: SigningKey) -> None:
    clock = FrozenClock(NOW)
    token = jwt.sign(claims(), ed)
    assert check(token, ed, now=clock.now())["sub"] == "user-1"
    clock.advance(3600 + 30)
    refused(token, ed, "expired", now=clock.now())


def test_verify_wrong_issuer_refused(ed: SigningKey) -> None:
    refused(jwt.sign(claims(iss="https://evil"), ed), ed, "issuer is wrong")


@pytest.mark.parametrize("use", ["id", "refresh", "guest", "ACCESS", ""])
def test_verify_wrong_token_use_refused(ed: SigningKey, use: str) -> None:
    refused(jwt.sign(claims(token_use=use), ed), ed, "token_use" if use else "not a string")


def test_verify_wrong_audience_refused(ed: SigningKey) -> None:
    refused(jwt.sign(claims(), ed), ed, "audience is wrong", audience="mobile")
    refused(jwt.sign(claims(client_id=None), ed), ed, "audience is wrong", audience="web")


@pytest.mark.parametrize("name", ["sub", "iss", "iat", "exp", "jti", "token_use"])
def test_verify_missing_claim_refused(ed: SigningKey, name: str) -> None:
    payload = claims()
    del payload[name]
    token = pyjwt.encode(payload, ed.private_key, algorithm="EdDSA", headers={"kid": ed.kid})
    refused(token, ed, f"has no {name} claim")


@pytest.mark.parametrize(
    ("over", "detail"),
    [
        ({"sub": 5}, "sub is not a string"),
        ({"jti": ""}, "jti is not a string"),
        ({"exp": "9999999999"}, "exp is not a number"),
        ({"exp": True}, "exp is not a number"),
        ({"iat": None}, "iat is not a number"),
        ({"nbf": [1]}, "nbf is not a number"),
    ],
)
def test_verify_mistyped_claim_refused(ed: SigningKey, over: dict[str, Any], detail: str) -> None:
    payload = {**claims(), **over}
    token = pyjwt.encode(payload, ed.private_key, algorithm="EdDSA", headers={"kid": ed.kid})
    refused(token, ed, detail)


def test_verify_infinite_exp_refused(ed: SigningKey) -> None:
    header = b64json({"alg": "EdDSA", "kid": ed.kid})
    payload = b64(json.dumps(claims(exp=float("inf"))).encode())  # json.dumps writes Infinity
    sig = raw_sign(ed, f"{header}.{payload}")
    refused(f"{header}.{payload}.{b64(sig)}", ed, "exp is not a number")


def test_verify_lifetime_over_max_refused(ed: SigningKey) -> None:
    token = jwt.sign(claims(exp=NOW + 7200), ed)
    refused(token, ed, "lifetime is too long", max_lifetime=3600)
    assert check(token, ed, max_lifetime=7200)["exp"] == NOW + 7200


def test_verify_old_key_after_rotation_still_verifies() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    keys = lookup(old, new)
    old_token, new_token = jwt.sign(claims(), old), jwt.sign(claims(), new)
    for token in (old_token, new_token):
        assert jwt.verify(token, keys=keys, issuer=ISS, token_use="access", now=NOW)["sub"] == "user-1"
    with pytest.raises(NotAuthorized, match="unknown"):
        jwt.verify(old_token, keys=lookup(new), issuer=ISS, token_use="access", now=NOW)
