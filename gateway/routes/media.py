"""`GET /media/{message_id}/{index}`: a file that arrived inside a delivery, for the CRM and admins."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from sqlmodel import col, select

from adapters.contract import InboundMessage, RawRequest
from gateway.db import read_session
from gateway.deps import RuntimeDep
from gateway.inbox import InboundMessageRow, RawDelivery
from gateway.media import INLINE_PREFIX
from gateway.runtime import Runtime

router = APIRouter(tags=["media"])

_NOT_FOUND = Response(b'{"detail": "no such file, or the link is not valid"}', 404, media_type="application/json")


@router.get("/media/{message_id}/{index}", include_in_schema=False)
async def inline_media(message_id: str, index: int, sig: str, runtime: RuntimeDep) -> Response:
    """The file, when the signature is ours; the same 404 for a bad link and a missing file."""
    if not runtime.media.check(message_id, index, sig):
        return _NOT_FOUND
    found = await asyncio.to_thread(_load, runtime, message_id, index)
    if found is None:
        return _NOT_FOUND
    content_type, data = found
    return Response(
        data,
        media_type=content_type,
        headers={
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


def _load(runtime: Runtime, message_id: str, index: int) -> tuple[str, bytes] | None:
    with read_session(runtime.engine) as session:
        row = session.exec(select(InboundMessageRow).where(col(InboundMessageRow.id) == message_id)).first()
        delivery = session.get(RawDelivery, row.delivery_id) if row is not None else None
    channel = runtime.channels.get(row.channel_id) if row is not None else None
    if row is None or delivery is None or channel is None:
        return None
    media = InboundMessage.model_validate(row.message).media
    if not 0 <= index < len(media) or not media[index].url.startswith(INLINE_PREFIX):
        return None
    raw = RawRequest(
        method="POST",
        url="",
        headers=delivery.headers,
        query={},
        body=delivery.body,
        client_ip="",
        received_at=delivery.received_at,
    )
    try:
        return channel.adapter.inline_attachment(raw, media[index].url)
    except LookupError:
        return None
