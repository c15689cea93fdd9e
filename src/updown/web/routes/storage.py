"""``/storage``: upload intents and file records. Thin: parse, call one service, shape the answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from updown.auth.principal import Principal
from updown.errors import UploadRejected
from updown.files.records import FileInfo
from updown.files.uploads import Grant, UploadRequest, UploadState
from updown.runtime import Runtime
from updown.web.deps import RuntimeDep, requires

router = APIRouter(prefix="/storage", tags=["storage"])
CallerDep = Annotated[Principal, Depends(requires("storage"))]

# How long `complete` waits for processing before answering 202 (the client then polls the state).
COMPLETE_WAIT = 15.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Initiate(_Strict):
    accessLevel: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=1024)
    contentType: str = Field(max_length=255)
    size: int = Field(ge=0)
    metadata: dict[str, str] | None = None
    mode: str = "put"
    partSize: int | None = None
    cacheControl: str | None = Field(default=None, max_length=255)


class Part(_Strict):
    partNumber: int = Field(ge=1, le=10_000)
    etag: str = Field(max_length=80)


class Complete(_Strict):
    parts: list[Part] | None = Field(default=None, max_length=10_000)


class UrlRequest(_Strict):
    expiresIn: int | None = None
    download: bool = False


class CopyRequest(_Strict):
    source: str = Field(max_length=1100)
    destination: str = Field(max_length=1100)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def file_json(runtime: Runtime, info: FileInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": info.key,
        "accessLevel": info.access_level,
        "identityId": info.identity_id,
        "size": info.size,
        "contentType": info.content_type,
        "etag": info.etag,
        "lastModified": iso(info.last_modified),
        "metadata": dict(info.metadata),
        "status": info.status,
        "variants": {v.name: v.key for v in info.variants},
    }
    if info.width is not None:
        out["width"], out["height"] = info.width, info.height
    if info.cache_control:
        out["cacheControl"] = info.cache_control
    if info.key.startswith("public/"):
        base = f"{runtime.settings.public_url}/cdn/"
        out["publicUrl"] = base + quote(info.key[len("public/") :])
        out["variantUrls"] = {v.name: base + quote(v.key[len("public/") :]) for v in info.variants}
    return out


def grant_json(grant: Grant) -> dict[str, Any]:
    out: dict[str, Any] = {"uploadId": grant.upload_id, "key": grant.key, "expiresAt": iso(grant.expires_at)}
    if grant.put is not None:
        out["put"] = {"url": grant.put.url, "method": "PUT", "headers": grant.put.headers}
    if grant.post is not None:
        out["post"] = {"url": grant.post.url, "fields": grant.post.fields}
    if grant.multipart is not None:
        out["multipart"] = {
            "partSize": grant.multipart.part_size,
            "parts": [{"partNumber": n, "url": url} for n, url in grant.multipart.parts],
            "completeUrl": f"/storage/uploads/{grant.upload_id}/complete",
        }
    return out


def state_json(state: UploadState) -> dict[str, Any]:
    out: dict[str, Any] = {"uploadId": state.upload_id, "key": state.key, "status": state.status}
    if state.reason:
        out["reason"] = state.reason
    if state.etag:
        out["etag"] = state.etag
    if state.parts is not None:
        out["parts"] = [{"partNumber": p.part_number, "etag": p.etag, "size": p.size} for p in state.parts]
    return out


@router.post("/uploads", status_code=201)
async def initiate(body: Initiate, runtime: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    request = UploadRequest(
        access_level=body.accessLevel,
        content_type=body.contentType,
        size=body.size,
        name=body.name,
        metadata=body.metadata or {},
        mode=body.mode,
        part_size=body.partSize,
        cache_control=body.cacheControl,
    )
    return grant_json(await runtime.uploads.initiate(caller, request))


@router.post("/uploads/{upload_id}/complete")
async def complete(
    upload_id: str, runtime: RuntimeDep, caller: CallerDep, body: Annotated[Complete | None, Body()] = None
) -> Response:
    parts = [(p.partNumber, p.etag) for p in body.parts] if body and body.parts else None
    state = await runtime.uploads.complete(caller, upload_id, parts)
    deadline = anyio.current_time() + COMPLETE_WAIT
    while state.status in ("uploaded", "processing") and anyio.current_time() < deadline:
        await anyio.sleep(0.05)
        state = await runtime.uploads.state(caller, upload_id)
    return await _answer(runtime, caller, state)


@router.get("/uploads/{upload_id}")
async def upload_state(upload_id: str, runtime: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    state = await runtime.uploads.state(caller, upload_id)
    out = state_json(state)
    if state.status in ("uploaded", "processing"):
        # Its processing job: queued, running, or dead-lettered (failed for good, with why).
        job = await anyio.to_thread.run_sync(runtime.processing_state, state.upload_id, state.etag)
        if job is not None:
            out["processing"] = {"status": job.status, "attempts": job.attempts}
            if job.error_type:
                out["processing"]["lastError"] = job.error_type
    if state.status == "ready":
        info = await anyio.to_thread.run_sync(runtime.records.ready, state.key)
        if info is not None:
            out["file"] = file_json(runtime, info)
    return out


async def _answer(runtime: Runtime, caller: Principal, state: UploadState) -> Response:
    if state.status == "rejected":
        raise UploadRejected(state.reason or "the upload was rejected")
    if state.status == "ready":
        info = await anyio.to_thread.run_sync(runtime.records.get, caller, state.key)
        return JSONResponse({**file_json(runtime, info), "uploadId": state.upload_id})
    return JSONResponse(state_json(state), status_code=202)


@router.get("/files")
def list_files(
    runtime: RuntimeDep,
    caller: CallerDep,
    accessLevel: str = Query(max_length=16),
    identityId: str | None = Query(default=None, max_length=80),
    prefix: str = Query(default="", max_length=1024),
    limit: int = Query(default=100),
    cursor: str | None = Query(default=None, max_length=2000),
) -> dict[str, Any]:
    page = runtime.records.page(
        caller, access_level=accessLevel, identity_id=identityId, prefix=prefix, limit=limit, cursor=cursor
    )
    return {"items": [file_json(runtime, i) for i in page.items], "nextCursor": page.next_cursor}


@router.post("/files/{key:path}/url")
def file_url(
    key: str, runtime: RuntimeDep, caller: CallerDep, body: Annotated[UrlRequest | None, Body()] = None
) -> dict[str, Any]:
    req = body or UrlRequest()
    signed = runtime.records.url(caller, key, expires_in=req.expiresIn, download=req.download)
    return {"url": signed.url, "expiresAt": iso(signed.expires_at)}


@router.get("/files/{key:path}")
def get_file(key: str, runtime: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    return file_json(runtime, runtime.records.get(caller, key))


@router.delete("/files/{key:path}", status_code=204)
async def delete_file(key: str, runtime: RuntimeDep, caller: CallerDep) -> Response:
    await runtime.records.delete(caller, key)
    return Response(status_code=204)


@router.post("/copy", status_code=201)
async def copy(body: CopyRequest, runtime: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    return file_json(runtime, await runtime.records.copy(caller, body.source, body.destination))
