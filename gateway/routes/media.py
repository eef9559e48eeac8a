"""`GET /media/{message_id}/{index}?sig=`: a message's file, for the CRM and admins.

A file that came inside the delivery (`inline:`) is read from the stored raw delivery; a remote photo
from `media_file` once the media worker has downloaded it (gateway/media_fetch.py). Until then, or if
it never comes, the answer is a 404 that says which, with `Retry-After` while a download is pending.
A bad signature and a missing file get the same answer, so links cannot be probed.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass

from fastapi import APIRouter, Response
from sqlmodel import col, select

from adapters.contract import InboundMessage, MediaRef, RawRequest
from gateway import media_fetch
from gateway.db import read_session, utcnow
from gateway.deps import RuntimeDep
from gateway.inbox import InboundMessageRow, RawDelivery
from gateway.media import INLINE_PREFIX
from gateway.media_fetch import FileState, MediaState
from gateway.runtime import Runtime

router = APIRouter(tags=["media"])

#: A pending file is asked for again after at most this long, whatever its next attempt says.
MAX_RETRY_AFTER_SECONDS = 60

# Never let a browser guess: the bytes came from a stranger, whatever their type is said to be.
_SAFE_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


@dataclass(frozen=True)
class _File:
    content_type: str
    data: bytes
    displayable: bool


@dataclass(frozen=True)
class _Missing:
    detail: str
    state: str | None = None
    reason: str | None = None
    retry_after: int | None = None


_NO_SUCH_FILE = _Missing("no such file, or the link is not valid")


@router.get("/media/{message_id}/{index}", include_in_schema=False)
async def message_media(message_id: str, index: int, sig: str, runtime: RuntimeDep) -> Response:
    """The file, when the signature is ours; otherwise, or while it is not downloaded, a 404 saying why."""
    found: _File | _Missing = _NO_SUCH_FILE
    if runtime.media.check(message_id, index, sig):
        found = await asyncio.to_thread(_load, runtime, message_id, index)
    if isinstance(found, _Missing):
        body = {key: value for key, value in found.__dict__.items() if value is not None and key != "retry_after"}
        headers = {"Retry-After": str(found.retry_after)} if found.retry_after is not None else {}
        return Response(json.dumps(body).encode(), 404, headers=headers, media_type="application/json")
    return Response(
        found.data,
        media_type=found.content_type,
        headers={**_SAFE_HEADERS, "Content-Disposition": "inline" if found.displayable else "attachment"},
    )


def _load(runtime: Runtime, message_id: str, index: int) -> _File | _Missing:
    with read_session(runtime.engine) as session:
        row = session.exec(select(InboundMessageRow).where(col(InboundMessageRow.id) == message_id)).first()
        # Parts of a conversation put together into this message (gateway/assembly.py) brought their files.
        parts = (
            list(session.exec(select(InboundMessageRow).where(col(InboundMessageRow.merged_into) == message_id)))
            if row is not None
            else []
        )
    if row is None:
        return _NO_SUCH_FILE
    media = InboundMessage.model_validate(row.message).media
    if not 0 <= index < len(media):
        return _NO_SUCH_FILE
    ref = media[index]
    if ref.url.startswith(INLINE_PREFIX):
        return _inline(
            runtime, ref, [row, *[p for p in parts if ref in InboundMessage.model_validate(p.message).media]]
        )
    return _remote(runtime, row.id, index)


def _inline(runtime: Runtime, ref: MediaRef, holders: list[InboundMessageRow]) -> _File | _Missing:
    """The file from the raw delivery of the message that brought it."""
    for holder in holders:
        channel = runtime.channels.get(holder.channel_id)
        with read_session(runtime.engine) as session:
            delivery = session.get(RawDelivery, holder.delivery_id)
        if channel is None or delivery is None:
            continue
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
            content_type, data = channel.adapter.inline_attachment(raw, ref.url)
        except LookupError:
            continue
        # The adapter checked what it accepted (the form takes photos only); shown as such, sandboxed.
        return _File(content_type, data, displayable=True)
    return _NO_SUCH_FILE


def _remote(runtime: Runtime, message_id: str, index: int) -> _File | _Missing:
    """The downloaded copy of a remote photo (after a conversation is put together, its parts' files are
    re-keyed to the combined message's positions: `media_fetch.follow_merge`)."""
    found = media_fetch.file_at(runtime.engine, message_id, index)
    if found is None:
        return _Missing(
            "this file was never queued for download (its message was stored before Kanal downloaded media)",
            state="unknown",
        )
    if found.state == MediaState.STORED:
        data = media_fetch.file_data(runtime.engine, found.id)
        if data is not None:
            content_type = found.content_type or media_fetch.UNKNOWN_TYPE
            return _File(content_type, data, displayable=content_type in media_fetch.DISPLAYABLE_TYPES)
    if found.state == MediaState.UNAVAILABLE:
        return _Missing(
            "the file could not be downloaded from the platform and will not be",
            state=found.state,
            reason=found.last_error,
        )
    return _pending(runtime, found)


def _pending(runtime: Runtime, file: FileState) -> _Missing:
    if not runtime.settings.media.enabled:
        return _Missing("media downloads are switched off here (media.enabled: false); the file waits", state="pending")
    wait = (file.next_attempt_at - utcnow()).total_seconds()
    retry_after = max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(wait)))
    return _Missing(
        "the file has not been downloaded yet; ask again later",
        state=file.state,
        reason=file.last_error,
        retry_after=retry_after,
    )
