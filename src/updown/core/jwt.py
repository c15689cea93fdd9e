"""JSON Web Tokens: registered claims, signing, and the one strict verifier (compact JWS, asymmetric only).

EdDSA over Ed25519 is the default algorithm (small keys, deterministic signatures, no nonce to get
wrong, no curve-point validation left to the caller); ES256 over P-256 is supported for clients that
cannot verify EdDSA. HMAC algorithms and ``none`` are never accepted: a key carries its algorithm,
and a token's header ``alg`` must equal it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from updown.errors import ConfigError, NotAuthorized, ServerError

Algorithm = Literal["EdDSA", "ES256"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey

# Claims every updown token carries; a token missing one is refused, not defaulted.
REQUIRED_CLAIMS: tuple[str, ...] = ("sub", "iss", "iat", "exp", "jti", "token_use")
# The only header parameters we ever write. Anything else (jku, x5u, jwk, x5c, crit, b64, ...) asks
# the verifier to fetch, trust or interpret something the key does not pin, so it is refused.
ALLOWED_HEADERS: frozenset[str] = frozenset({"alg", "kid", "typ"})
MAX_LEEWAY = 60
MAX_TOKEN_CHARS = 8192  # far above any token we issue; bounds the work an attacker can ask for

# Encodings (y coordinate mod p; the sign bit does not matter) of the 8 points of small order on
# edwards25519. OpenSSL accepts the signature R=identity, S=0 on *any* message under the identity
# public key, so such a key must never enter the key set.
_P25519 = 2**255 - 19
_Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_SMALL_ORDER_Y = frozenset({0, 1, _P25519 - 1, _Y8, _P25519 - _Y8})

_EDDSA = OKPAlgorithm()
_ES256 = ECAlgorithm(ECAlgorithm.SHA256)


@dataclass(frozen=True)
class Claims:
    """The registered claims of an updown token (Cognito's names), plus any extra claims.

    ``token_use`` is ``access``, ``id``, ``refresh`` or ``guest``; ``aud`` is set on ID tokens and
    ``client_id`` on access tokens, as Cognito does.
    """

    sub: str
    iss: str
    token_use: str
    iat: int
    exp: int
    jti: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    aud: str | None = None
    client_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def issue(
        cls,
        *,
        sub: str,
        iss: str,
        token_use: str,
        now: float,
        lifetime: int,
        aud: str | None = None,
        client_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Claims:
        """Claims for a new token valid for ``lifetime`` seconds from ``now``, with a fresh jti."""
        iat = int(now)
        return cls(
            sub=sub,
            iss=iss,
            token_use=token_use,
            iat=iat,
            exp=iat + int(lifetime),
            aud=aud,
            client_id=client_id,
            extra=dict(extra or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(sub=self.sub, iss=self.iss, token_use=self.token_use, iat=self.iat, exp=self.exp)
        out["jti"] = self.jti
        if self.aud is not None:
            out["aud"] = self.aud
        if self.client_id is not None:
            out["client_id"] = self.client_id
        return out


@dataclass(frozen=True)
class VerifyingKey:
    """A public key pinned to one algorithm, named by ``kid``."""

    kid: str
    alg: Algorithm
    public_key: PublicKey = field(repr=False)

    def __post_init__(self) -> None:
        if _alg_for(self.public_key) != self.alg:
            raise ConfigError(f"key {self.kid!r} is not an {self.alg} key")

    def jwk(self) -> dict[str, str]:
        """The public JWK (RFC 7517; RFC 8037 for OKP) with kid, alg and use."""
        return {**_public_members(self.public_key), "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True)
class SigningKey:
    """A private key pinned to one algorithm; ``kid`` is the RFC 7638 thumbprint of its public key."""

    kid: str
    alg: Algorithm
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if _alg_for(self.private_key.public_key()) != self.alg:
            raise ConfigError(f"key {self.kid!r} is not an {self.alg} key")

    @classmethod
    def generate(cls, alg: Algorithm = "EdDSA") -> SigningKey:
        key: PrivateKey = Ed25519PrivateKey.generate() if alg == "EdDSA" else _new_p256()
        return cls.from_private_key(key)

    @classmethod
    def from_private_key(cls, key: PrivateKey) -> SigningKey:
        alg = _alg_for(key.public_key())
        return cls(kid=thumbprint(key.public_key()), alg=alg, private_key=key)

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM private key (Ed25519 or P-256); ConfigError otherwise."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError("signing key is not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigError("signing key must be Ed25519 or EC P-256")
        return cls.from_private_key(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def verifying(self) -> VerifyingKey:
        return VerifyingKey(kid=self.kid, alg=self.alg, public_key=self.private_key.public_key())


KeyLookup = Callable[[str], VerifyingKey | None]


def sign(claims: Claims | Mapping[str, Any], key: SigningKey) -> str:
    """Sign ``claims`` as a compact JWS with ``key``; the header carries ``alg``, ``kid`` and ``typ``.

    Raises:
        ServerError: the claims lack a required claim (a bug in the caller, never the client's fault).
    """
    payload = claims.to_dict() if isinstance(claims, Claims) else dict(claims)
    missing = [name for name in REQUIRED_CLAIMS if name not in payload]
    if missing:
        raise ServerError(f"refusing to sign a token without {', '.join(missing)}")
    return pyjwt.encode(payload, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"})


def verify(
    token: str,
    *,
    keys: KeyLookup,
    issuer: str,
    token_use: str,
    now: float,
    audience: str | None = None,
    leeway: int = 30,
    max_lifetime: int | None = None,
) -> dict[str, Any]:
    """Verify a compact JWS and return its claims.

    Order: shape → header (allow-list, kid known, ``alg`` equal to the key's) → signature → claims
    (iss, token_use, audience, exp/nbf/iat against ``now`` ± ``leeway``, lifetime). Revocation
    (signed-out sessions) is the caller's next step, on the returned ``jti``/``sub``.

    Args:
        keys: returns the verifying key for a kid, or None.
        audience: when given, the token's ``aud`` (ID tokens) or ``client_id`` (access tokens) must equal it.
        leeway: clock skew allowed on exp/nbf/iat, 0..60 seconds.
        max_lifetime: when given, tokens whose ``exp - iat`` exceeds it are refused.

    Raises:
        NotAuthorized: with a one-line detail naming the first check that failed.
        ConfigError: ``leeway`` out of range.
    """
    if not 0 <= leeway <= MAX_LEEWAY:
        raise ConfigError(f"token leeway must be 0..{MAX_LEEWAY} seconds")
    if not isinstance(token, str) or not token:
        raise NotAuthorized("token is missing")
    if len(token) > MAX_TOKEN_CHARS:
        raise NotAuthorized("token is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise NotAuthorized("token is not a compact JWS")
    header_b64, payload_b64, sig_b64 = parts
    header = _json_object(_b64decode(header_b64, "header"), "header")
    key = _pinned_key(header, keys)
    signature = _b64decode(sig_b64, "signature")
    if not _signature_ok(key, f"{header_b64}.{payload_b64}".encode("ascii"), signature):
        raise NotAuthorized("token signature is invalid")
    claims = _json_object(_b64decode(payload_b64, "payload"), "payload")
    _check_claims(claims, issuer, token_use, now, audience, leeway, max_lifetime)
    return claims


def _signature_ok(key: VerifyingKey, signing_input: bytes, signature: bytes) -> bool:
    # PyJWT's algorithm objects do the cryptography calls (and turn a wrong-length ES256 signature
    # into False); the choice of algorithm is ours: VerifyingKey guarantees alg matches the key type.
    if isinstance(key.public_key, Ed25519PublicKey):
        return _EDDSA.verify(signing_input, key.public_key, signature)
    return _ES256.verify(signing_input, key.public_key, signature)


def _pinned_key(header: Mapping[str, Any], keys: KeyLookup) -> VerifyingKey:
    extra = sorted(set(header) - ALLOWED_HEADERS)
    if extra:
        raise NotAuthorized(f"token header parameter {extra[0]!r} is not accepted")
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise NotAuthorized("token header has no alg")
    if alg not in ALGORITHMS:
        raise NotAuthorized(f"token algorithm {alg!r} is not accepted")
    if header.get("typ", "JWT") != "JWT":
        raise NotAuthorized("token typ is not JWT")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise NotAuthorized("token header has no kid")
    key = keys(kid)
    if key is None:
        raise NotAuthorized("token signing key is unknown")
    if key.alg != alg:
        # The algorithm comes from the key, never from the token: this is what stops
        # "HS256 with the public key as secret" and every other algorithm-confusion trick.
        raise NotAuthorized(f"token algorithm {alg!r} does not match its key")
    return key


def _check_claims(
    claims: Mapping[str, Any],
    issuer: str,
    token_use: str,
    now: float,
    audience: str | None,
    leeway: int,
    max_lifetime: int | None,
) -> None:
    for name in REQUIRED_CLAIMS:
        if name not in claims:
            raise NotAuthorized(f"token has no {name} claim")
    for name in ("sub", "iss", "jti", "token_use"):
        if not isinstance(claims[name], str) or not claims[name]:
            raise NotAuthorized(f"token claim {name} is not a string")
    if claims["iss"] != issuer:
        raise NotAuthorized("token issuer is wrong")
    if claims["token_use"] != token_use:
        raise NotAuthorized(f"token_use is {claims['token_use']!r}, expected {token_use!r}")
    if audience is not None and audience not in _audiences(claims):
        raise NotAuthorized("token audience is wrong")
    exp = _numeric_date(claims, "exp")
    iat = _numeric_date(claims, "iat")
    if now >= exp + leeway:
        raise NotAuthorized("token has expired")
    if iat > now + leeway:
        raise NotAuthorized("token is issued in the future")
    if "nbf" in claims and _numeric_date(claims, "nbf") > now + leeway:
        raise NotAuthorized("token is not valid yet")
    if max_lifetime is not None and exp - iat > max_lifetime:
        raise NotAuthorized("token lifetime is too long")


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    aud = claims.get("aud")
    if isinstance(aud, str):
        found.append(aud)
    elif isinstance(aud, list):
        found.extend(a for a in aud if isinstance(a, str))
    client_id = claims.get("client_id")
    if isinstance(client_id, str):
        found.append(client_id)
    return found


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    # bool is an int subclass; NaN/inf would make every comparison lie.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise NotAuthorized(f"token claim {name} is not a number")
    return float(value)


def _b64decode(segment: str, what: str) -> bytes:
    """Strict base64url: no padding, no stray characters, canonical trailing bits (one spelling per token)."""
    try:
        raw = base64.urlsafe_b64decode(segment.encode("ascii") + b"=" * (-len(segment) % 4))
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise NotAuthorized(f"token {what} is not base64url") from exc
    if _b64encode(raw) != segment:
        raise NotAuthorized(f"token {what} is not canonical base64url")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise ValueError("duplicate member")
        return obj

    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise NotAuthorized(f"token {what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise NotAuthorized(f"token {what} is not a JSON object")
    return value


# --- keys and JWKS ---------------------------------------------------------------------------------


def _new_p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _alg_for(public_key: object) -> Algorithm:
    if isinstance(public_key, Ed25519PublicKey):
        return "EdDSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        return "ES256"
    raise ConfigError("signing key must be Ed25519 or EC P-256")


def _public_members(public_key: PublicKey) -> dict[str, str]:
    """The required JWK members in RFC 7638 lexicographic order."""
    if isinstance(public_key, Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64encode(raw)}
    numbers = public_key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64encode(numbers.x.to_bytes(32, "big")),
        "y": _b64encode(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(public_key: PublicKey) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url: a stable kid derived from the key itself."""
    canonical = json.dumps(_public_members(public_key), separators=(",", ":"), sort_keys=True)
    return _b64encode(hashlib.sha256(canonical.encode("ascii")).digest())


def jwks(keys: Iterable[VerifyingKey]) -> dict[str, list[dict[str, str]]]:
    """The JWK Set document served at ``/.well-known/jwks.json``."""
    return {"keys": [key.jwk() for key in keys]}


def key_from_jwk(jwk: Mapping[str, Any]) -> VerifyingKey:
    """A verifying key from a public JWK; refuses private members, other curves and bad points.

    Raises:
        ConfigError: the JWK is not a usable Ed25519 or P-256 signature key.
    """
    if any(name in jwk for name in ("d", "k", "p", "q")):
        raise ConfigError("JWK carries private or symmetric key material")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ConfigError("JWK has no kid")
    if jwk.get("use", "sig") != "sig":
        raise ConfigError("JWK is not a signature key")
    kty, crv, alg = jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    public_key: PublicKey
    if (kty, crv, alg) == ("OKP", "Ed25519", "EdDSA"):
        x = _jwk_coordinate(jwk, "x")
        y = int.from_bytes(x, "little") & ((1 << 255) - 1)
        if y >= _P25519 or y in _SMALL_ORDER_Y:
            raise ConfigError("JWK Ed25519 point is non-canonical or of small order")
        public_key = Ed25519PublicKey.from_public_bytes(x)
    elif (kty, crv, alg) == ("EC", "P-256", "ES256"):
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(_jwk_coordinate(jwk, "x"), "big"),
            int.from_bytes(_jwk_coordinate(jwk, "y"), "big"),
            ec.SECP256R1(),
        )
        try:
            public_key = numbers.public_key()
        except ValueError as exc:  # cryptography checks the point is on the curve
            raise ConfigError("JWK P-256 point is not on the curve") from exc
    else:
        raise ConfigError("JWK must be OKP/Ed25519/EdDSA or EC/P-256/ES256")
    return VerifyingKey(kid=kid, alg=cast(Algorithm, alg), public_key=public_key)


def _jwk_coordinate(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ConfigError(f"JWK has no {name}")
    try:
        raw = _b64decode(value, name)
    except NotAuthorized as exc:
        raise ConfigError(f"JWK {name} is not base64url") from exc
    if len(raw) != 32:
        raise ConfigError(f"JWK {name} must be 32 bytes")
    return raw
