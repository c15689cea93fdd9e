"""``/.well-known``: the public signing keys (JWKS) and the OpenID discovery document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse

from updown.web.deps import RuntimeDep

router = APIRouter(prefix="/.well-known", tags=["user pool"])


@router.get("/jwks.json")
def jwks(runtime: RuntimeDep) -> JSONResponse:
    # Short cache: a rotated key must reach verifiers before it signs for long.
    return JSONResponse(runtime.tokens.jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.get("/openid-configuration")
def openid_configuration(runtime: RuntimeDep) -> dict[str, Any]:
    issuer = runtime.tokens.issuer
    base = runtime.settings.public_url
    return {
        "issuer": issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/auth/signin",
        "userinfo_endpoint": f"{base}/auth/me",
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA", "ES256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "jti",
            "email",
            "email_verified",
            "cognito:groups",
            "token_use",
        ],
    }
