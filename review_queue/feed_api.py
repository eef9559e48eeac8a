"""`GET /api/v1/feed` and `POST /api/v1/feed/ack`: the unified feed for a CRM that pulls.

See docs/feed.md for what a consumer may rely on; review_queue/feed.py for how the order is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from gateway.db import utcnow
from gateway.deps import ReadSessionDep, RuntimeDep
from gateway.runtime import Runtime
from review_queue import feed
from review_queue.auth import admin_for_token
from review_queue.feed import FeedReport
from review_queue.tables import AdminRole

router = APIRouter(prefix="/api/v1", tags=["feed"])

#: The `cursor` value that means "where this consumer last acknowledged".
SERVER_CURSOR = "server"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="FeedKeyBearer",
    description="A feed consumer's key (`kanal feed consumer create --name NAME`), or a superadmin's token.",
)
_key_header = APIKeyHeader(
    name="X-Kanal-Feed-Key",
    auto_error=False,
    scheme_name="FeedKeyHeader",
    description="A feed consumer's key, for clients that cannot set `Authorization`.",
)

_EXAMPLE_REPORT: dict[str, Any] = {
    "id": "019378a2-5c1e-7c3a-9b1f-2f0d4c8e6a11",
    "ticket_code": "K7F3Q-9Q2MX",
    "channel_id": "instagram:governor",
    "state": "forwarded",
    "version": 3,
    "text": "Jalan berlubang besar di depan Pasar Senen, hubungi saya di [telepon]",
    "masked_kinds": ["phone"],
    "service_code": "jalan-rusak",
    "category_code": "jalan_rusak",
    "agency_code": "bina_marga",
    "agency_unit": "Suku Dinas Bina Marga Jakarta Pusat",
    "kota_code": "31.71",
    "kecamatan_code": "31.71.03",
    "kelurahan_code": "31.71.03.1001",
    "place": {"kelurahan_name": "Senen", "street": "Jl. Kramat Raya", "precision": "street"},
    "location": {"lat": -6.1865, "lng": 106.8437, "address": "Jl. Kramat Raya, Senen"},
    "media": [{"url": "https://partner.example/photos/1.jpg", "content_type": "image/jpeg"}],
    "completeness": 100,
    "completeness_missing": [],
    "duplicate_of": None,
    "sender": {"id": "caller-17", "name": "B. S.", "phone": "0812****7890"},
    "crm_service_request_id": "SR-2026-000123",
    "crm_token": None,
    "received_at": "2026-11-27T01:15:00Z",
    "created_at": "2026-11-27T01:15:02Z",
    "updated_at": "2026-11-27T02:03:41Z",
}


class FeedEntryPublic(BaseModel):
    """One change of a validated report, and the report as it stood after it."""

    model_config = ConfigDict(from_attributes=True)

    #: Unique per entry, never reused: de-duplicate on it (delivery is at least once).
    id: str
    #: 1, 2, 3... in commit order. For ordering and logs; page with the cursors, not with this.
    position: int
    #: The cursor just after this entry: acknowledge it to record progress in the middle of a page.
    cursor: str
    #: What changed: "approved" (the report enters the feed), "forwarded", "crm_failed", "crm_retry", "edited"...
    kind: str
    report_id: str
    at: datetime
    report: FeedReport


class FeedPage(BaseModel):
    """A page of the feed, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": "019378b0-11aa-7d2e-8c44-5e9a0b1c2d3e",
                            "position": 42,
                            "cursor": "a2YxOjQy",
                            "kind": "forwarded",
                            "report_id": _EXAMPLE_REPORT["id"],
                            "at": "2026-11-27T02:03:41Z",
                            "report": _EXAMPLE_REPORT,
                        }
                    ],
                    "next_cursor": "a2YxOjQy",
                    "has_more": False,
                }
            ]
        }
    )

    items: list[FeedEntryPublic]
    #: Pass as `cursor` for the next page. Never null: on an empty page it is the cursor you sent, so
    #: polling with it again returns what has arrived since.
    next_cursor: str
    #: More entries are already waiting: ask again at once instead of waiting for the next poll.
    has_more: bool


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"cursor": "a2YxOjQy"}]})

    #: A `next_cursor` (or an entry's `cursor`) whose entries you have stored.
    cursor: str = Field(min_length=1, max_length=200)


class AckResponse(BaseModel):
    #: Where the server-side cursor now stands (`cursor=server` reads after it).
    cursor: str
    acked_at: datetime


class _Problem(BaseModel):
    detail: str


@dataclass(frozen=True)
class FeedReader:
    """Who is reading: a consumer (with its stored cursor) or a superadmin (no stored cursor)."""

    name: str
    consumer_id: str | None = None
    cursor_position: int = 0
    last_read_at: datetime | None = None


def feed_reader(
    session: ReadSessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_key_header)],
) -> FeedReader:
    key = header_key or (bearer.credentials if bearer else None)
    if key:
        consumer = feed.consumer_for_key(session, key)
        if consumer is not None:
            return FeedReader(
                name=consumer.name,
                consumer_id=consumer.id,
                cursor_position=consumer.cursor_position,
                last_read_at=consumer.last_read_at,
            )
        admin = admin_for_token(session, key)
        if admin is not None:
            if admin.role != AdminRole.SUPERADMIN:
                raise HTTPException(status.HTTP_403_FORBIDDEN, "only a superadmin's token may read the feed")
            return FeedReader(name=f"admin:{admin.username}")
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or unknown feed key: send `Authorization: Bearer <key>` or `X-Kanal-Feed-Key: <key>`; "
        "an operator creates a key with `kanal feed consumer create --name NAME`",
        headers={"WWW-Authenticate": "Bearer"},
    )


FeedReaderDep = Annotated[FeedReader, Depends(feed_reader)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": _Problem, "description": "A cursor this feed did not give out; the detail says what to do."},
    401: {"model": _Problem, "description": "No feed key, or one this deployment does not know."},
    403: {"model": _Problem, "description": "An admin token that is not a superadmin's."},
}


@router.get("/feed", response_model=FeedPage, responses=_ERRORS)
def read_feed(
    session: ReadSessionDep,
    runtime: RuntimeDep,
    reader: FeedReaderDep,
    background: BackgroundTasks,
    cursor: Annotated[
        str | None,
        Query(
            description="The `next_cursor` of the previous page; leave out to start at the beginning; "
            "`server` to read after this consumer's acknowledged position.",
            max_length=200,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(ge=1, le=1000, description="Entries per page (capped by the deployment's `feed.max_page_size`)."),
    ] = None,
    use_server_cursor: Annotated[
        bool, Query(description="Same as `cursor=server`, for clients that would rather not send a cursor.")
    ] = False,
) -> FeedPage:
    """Changes of validated reports after `cursor`, oldest first, in the order they were committed.

    Every approved report appears (as `approved`), then each later change of it. Pending and rejected
    reports never do. Delivery is at least once: store what you read, then move on with `next_cursor`
    (or acknowledge it with `POST /api/v1/feed/ack` when you use the server-side cursor), and
    de-duplicate entries by `id`. Text and sender are masked: no NIK, phone number or email.
    """
    if use_server_cursor and cursor not in (None, SERVER_CURSOR):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "pass either `cursor` or `use_server_cursor=true`, not both")
    try:
        if cursor == SERVER_CURSOR or use_server_cursor:
            if reader.consumer_id is None:
                raise feed.InvalidCursor(
                    "the server-side cursor belongs to a feed consumer's key; with an admin token pass the "
                    "`next_cursor` of the previous page, or leave `cursor` out"
                )
            position = reader.cursor_position
        else:
            position = feed.decode_cursor(cursor) if cursor else 0
            feed.check_position(session, position)
    except feed.InvalidCursor as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    settings = runtime.settings.feed
    size = min(limit or settings.default_page_size, settings.max_page_size)
    entries, more = feed.read_after(session, position, limit=size)
    if reader.consumer_id is not None and (
        reader.last_read_at is None or utcnow() - reader.last_read_at >= feed.LAST_READ_RESOLUTION
    ):
        background.add_task(_note_read, runtime, reader.consumer_id)
    return FeedPage(
        items=[
            FeedEntryPublic(
                id=e.id,
                position=e.position,
                cursor=feed.encode_cursor(e.position),
                kind=e.kind,
                report_id=e.report_id,
                at=e.at,
                report=FeedReport.model_validate(e.report),
            )
            for e in entries
        ],
        next_cursor=feed.encode_cursor(entries[-1].position if entries else position),
        has_more=more,
    )


async def _note_read(runtime: Runtime, consumer_id: str) -> None:
    # After the response is sent, at background priority: a consumer's poll never waits on this write.
    await runtime.writes.run(lambda: feed.note_read(runtime.engine, consumer_id=consumer_id))


@router.post("/feed/ack", response_model=AckResponse, responses=_ERRORS)
async def acknowledge(body: AckRequest, runtime: RuntimeDep, reader: FeedReaderDep) -> AckResponse:
    """Record that this consumer has stored everything up to `cursor`; `cursor=server` then reads after it.

    The stored cursor only moves forward: acknowledging an older cursor again changes nothing. Until you
    acknowledge, `cursor=server` keeps returning the same entries (at least once).
    """
    if reader.consumer_id is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "only a feed consumer's key has a server-side cursor to acknowledge"
        )
    consumer_id = reader.consumer_id
    try:
        position = feed.decode_cursor(body.cursor)
        stored = await runtime.writes.run(
            lambda: feed.acknowledge(runtime.engine, consumer_id=consumer_id, position=position), urgent=True
        )
    except feed.InvalidCursor as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return AckResponse(cursor=feed.encode_cursor(stored), acked_at=utcnow())
