"""The push route every channel instance gets: `POST` deliveries and `GET` challenges or pages."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response

from adapters.contract import AdapterResponse, RawRequest
from gateway.db import utcnow
from gateway.deps import RuntimeDep

router = APIRouter(tags=["channels"])


@router.get("/channels/{channel_id}/inbound", include_in_schema=False)
async def channel_get(channel_id: str, request: Request, runtime: RuntimeDep) -> Response:
    channel = runtime.channels.get(channel_id)
    if channel is None:
        return _unknown_channel()
    raw = _raw(request, b"", utcnow())
    return _to_response(channel.adapter.answer_get(raw))


@router.post("/channels/{channel_id}/inbound", include_in_schema=False)
async def channel_post(channel_id: str, request: Request, runtime: RuntimeDep) -> Response:
    received_at = utcnow()
    channel = runtime.channels.get(channel_id)
    if channel is None:
        return _unknown_channel()
    limit = channel.adapter.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _to_response(
            await runtime.ingestor.reject_oversized(channel, _raw(request, b"", received_at), int(declared))
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            # Stop reading: a sender that lies about (or omits) Content-Length still cannot make us buffer more.
            raw = _raw(request, bytes(body[:limit]), received_at)
            return _to_response(await runtime.ingestor.reject_oversized(channel, raw, len(body)))
    return _to_response(await runtime.ingestor.deliver(channel, _raw(request, bytes(body), received_at)))


def _raw(request: Request, body: bytes, received_at: datetime) -> RawRequest:
    return RawRequest(
        method=request.method,
        url=str(request.url),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
        client_ip=request.client.host if request.client else "",
        received_at=received_at,
    )


def _to_response(answer: AdapterResponse) -> Response:
    return Response(
        content=answer.body,
        status_code=answer.status_code,
        media_type=answer.content_type,
        headers=dict(answer.headers),
    )


def _unknown_channel() -> Response:
    return Response(
        content=b'{"detail": "no such channel; check the channel id in the URL"}',
        status_code=404,
        media_type="application/json",
    )
