"""``/auth``: the user pool over HTTP. Thin: parse, call one service method, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from updown.userpool.service import TokenSet
from updown.web.deps import RuntimeDep, UserDep, client_address, no_store

router = APIRouter(prefix="/auth", tags=["user pool"], dependencies=[Depends(no_store)])

Email = Annotated[str, Field(min_length=1, max_length=320)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Code = Annotated[str, Field(min_length=1, max_length=32)]
Opaque = Annotated[str, Field(min_length=1, max_length=8192)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SignUp(_Strict):
    email: Email
    password: Password
    attributes: dict[str, str] | None = None


class EmailOnly(_Strict):
    email: Email


class Confirm(_Strict):
    email: Email
    code: Code


class SignIn(_Strict):
    email: Email
    password: Password


class ChallengeAnswer(_Strict):
    session: Opaque
    newPassword: Password


class Refresh(_Strict):
    refreshToken: Opaque


class SignOut(_Strict):
    refreshToken: Opaque | None = None
    global_: bool = Field(default=False, alias="global")


class Reset(_Strict):
    email: Email
    code: Code
    newPassword: Password


class ChangePassword(_Strict):
    oldPassword: Password
    newPassword: Password


@router.post("/signup", status_code=201)
def sign_up(body: SignUp, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.userpool.sign_up(body.email, body.password, body.attributes)


@router.post("/confirm")
def confirm(body: Confirm, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.userpool.confirm(body.email, body.code)


@router.post("/resend-code")
def resend_code(body: EmailOnly, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.userpool.resend_code(body.email)


@router.post("/signin")
def sign_in(body: SignIn, runtime: RuntimeDep, request: Request) -> dict[str, Any]:
    return runtime.userpool.sign_in(body.email, body.password, client_address=client_address(request)).as_dict()


@router.post("/challenge")
def challenge(body: ChallengeAnswer, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.userpool.respond_new_password(body.session, body.newPassword).as_dict()


@router.post("/refresh")
def refresh(body: Refresh, runtime: RuntimeDep) -> dict[str, Any]:
    tokens: TokenSet = runtime.userpool.refresh(body.refreshToken)
    return tokens.as_dict()


@router.post("/signout", status_code=204)
def sign_out(runtime: RuntimeDep, user: UserDep, body: Annotated[SignOut | None, Body()] = None) -> Response:
    body = body or SignOut()
    runtime.userpool.sign_out(user, refresh_token=body.refreshToken, everywhere=body.global_)
    return Response(status_code=204)


@router.post("/forgot-password")
def forgot_password(body: EmailOnly, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.userpool.forgot_password(body.email)


@router.post("/reset-password")
def reset_password(body: Reset, runtime: RuntimeDep) -> dict[str, Any]:
    runtime.userpool.reset_password(body.email, body.code, body.newPassword)
    return {"reset": True}


@router.post("/change-password")
def change_password(body: ChangePassword, runtime: RuntimeDep, user: UserDep) -> dict[str, Any]:
    # Every session of the user ends; the caller goes on in a new one, with the tokens answered.
    tokens = runtime.userpool.change_password(user, body.oldPassword, body.newPassword)
    return {"changed": True, **tokens.as_dict()}


@router.get("/me")
def me(runtime: RuntimeDep, user: UserDep) -> dict[str, Any]:
    return runtime.userpool.me(user)


@router.patch("/me/attributes")
def update_attributes(
    runtime: RuntimeDep, user: UserDep, changes: Annotated[dict[str, str | None], Body(max_length=64)]
) -> dict[str, Any]:
    return runtime.userpool.update_attributes(user, changes)
