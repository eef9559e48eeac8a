"""The unified feed: every change of a validated report, in commit order, for a CRM that prefers to pull.

A report joins the feed when it is approved (by an admin, or at once on a trusted channel); from then
on every change to it (forwarded with its CRM ids, CRM failure and retry, edits) appends one more
entry. An entry holds the report as a consumer may see it: masked text, masked sender, no protected
fields. Entries are never changed after they are written, so a page read twice reads the same.

Commit order. A consumer pages by position ("everything after 41"), so a position must never become
visible after a higher one was already served: on PostgreSQL, two transactions that took numbers 41
and 42 from a sequence may commit 42 first, and a consumer reading between the two commits would
move past 41 for good. So appends are serialized: the appending transaction takes a transaction-level
advisory lock, numbers its entries `max(position) + 1, ...` and keeps the lock until it has
committed. The next appender gets the lock only after that commit is visible, so the committed
positions are always 1..N without holes, and a reader's snapshot always sees a prefix of the feed.
To keep the lock short, `record_change` only queues the entry on the session; it is written in the
session's `before_commit`, after everything else in the transaction has been flushed, so the lock
is the last one taken and is held only for one insert and the commit. (A watermark such as
`pg_snapshot_xmin` would let appenders run in parallel, but at 800 reports a day the lock costs
nothing measurable and is far easier to get right.) SQLite has one writer: the order is given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, BigInteger, Column, Connection, Engine, event, func, insert, select, text, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, Session, SQLModel, col

from gateway.db import UTCDateTime, utcnow, write_session
from gateway.ids import new_id
from normalizer.steps.masking import mask_personal_data
from review_queue.schemas import masked_sender
from review_queue.tables import Report, ReportState

#: States of a report that has been validated: it is in the feed, and so is each of its later changes.
FEED_STATES = frozenset(
    {
        ReportState.APPROVED,
        ReportState.FORWARDED,
        ReportState.CRM_FAILED,
        ReportState.IN_PROGRESS,  # the CRM's later steps (status sync) are changes a consumer follows too
        ReportState.RESOLVED,
    }
)
#: Any fixed number, the same for every process sharing one PostgreSQL (see the module docstring).
_PG_FEED_LOCK = 7_240_404
#: Where `record_change` leaves the entries its transaction will append when it commits.
_QUEUED = "kanal_feed_entries"
_CURSOR_PREFIX = "kf1:"
#: The key a consumer is given starts with this, so a leaked key is recognised (secret scanners, logs).
KEY_PREFIX = "kfeed_"
#: A consumer's last read is saved at most this often: every poll writing a row would cost more than it tells.
LAST_READ_RESOLUTION = timedelta(seconds=30)


class FeedEntry(SQLModel, table=True):
    """One change of a validated report, with the report as a consumer sees it after that change."""

    __tablename__ = "feed_entry"

    #: 1, 2, 3... in commit order, without holes (see the module docstring); cursors encode it.
    position: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    #: Unique per entry and never reused: what a consumer de-duplicates on.
    id: str = Field(default_factory=new_id, unique=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    #: The change: "approved", "forwarded", "crm_failed", "crm_retry", "edited"...
    kind: str = Field(max_length=50)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    report: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class FeedConsumer(SQLModel, table=True):
    """A system that reads the feed with its own key, and, if it wants, a cursor kept here for it."""

    __tablename__ = "feed_consumer"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(unique=True, max_length=100)
    #: SHA-256 of the key: the key itself is shown once, at creation, and never stored.
    key_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    #: The last position the consumer acknowledged; `cursor=server` reads after it.
    cursor_position: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    acked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class FeedReport(BaseModel):
    """A report as the feed shows it: what an agency needs, with personal data masked."""

    model_config = ConfigDict(extra="ignore")

    id: str
    ticket_code: str
    channel_id: str
    state: str
    #: Bumped on every change: a consumer that sees two entries of one report keeps the higher version.
    version: int
    #: The cleaned text with NIK, phone numbers and emails replaced by "[NIK]", "[telepon]", "[email]".
    text: str
    masked_kinds: list[str]
    service_code: str | None
    category_code: str | None
    agency_code: str | None
    agency_unit: str | None
    kota_code: str | None
    kecamatan_code: str | None
    kelurahan_code: str | None
    place: dict[str, Any] | None
    location: dict[str, Any] | None
    media: list[dict[str, Any]]
    completeness: int
    completeness_missing: list[str]
    duplicate_of: str | None
    #: Initials and partly hidden contacts ("0812****7890"); the sender's channel id is kept for follow-ups.
    sender: dict[str, Any] | None
    crm_service_request_id: str | None
    crm_token: str | None
    #: The CRM's own status word and note, as status sync last recorded them.
    crm_status: str | None
    crm_status_notes: str | None
    received_at: datetime
    created_at: datetime
    updated_at: datetime


def feed_snapshot(report: Report) -> dict[str, Any]:
    """The report as it goes into the feed (JSON-ready). Never the original or cleaned text."""
    return FeedReport(
        id=report.id,
        ticket_code=report.ticket_code,
        channel_id=report.channel_id,
        state=report.state,
        version=report.version,
        text=report.text_masked,
        masked_kinds=list(report.masked_kinds),
        service_code=report.service_code,
        category_code=report.category_code,
        agency_code=report.agency_code,
        agency_unit=report.agency_unit,
        kota_code=report.kota_code,
        kecamatan_code=report.kecamatan_code,
        kelurahan_code=report.kelurahan_code,
        place=_masked_strings(report.place),
        location=_masked_strings(report.location),
        media=list(report.media),
        completeness=report.completeness,
        completeness_missing=list(report.completeness_missing),
        duplicate_of=report.duplicate_of,
        sender=masked_sender(report.sender),
        crm_service_request_id=report.crm_service_request_id,
        crm_token=report.crm_token,
        crm_status=report.crm_status,
        crm_status_notes=report.crm_status_notes,
        received_at=report.received_at,
        created_at=report.created_at,
        updated_at=report.updated_at,
    ).model_dump(mode="json")


def _masked_strings(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Addresses and place evidence are the citizen's words: mask them as the text is (as the CRM push does)."""
    if value is None:
        return None
    shown: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, str):
            item = mask_personal_data(item)[0]
        elif isinstance(item, list):
            item = [mask_personal_data(i)[0] if isinstance(i, str) else i for i in item]
        shown[key] = item
    return shown


def new_entry(report: Report, kind: str) -> dict[str, Any]:
    """The row (without its position) for `report` as it is now; `append` numbers and stores it."""
    return {"id": new_id(), "report_id": report.id, "kind": kind, "at": utcnow(), "report": feed_snapshot(report)}


def queue_change(session: Session, report: Report, *, kind: str) -> None:
    """Queue a feed entry for this change if `report` is validated; it is written when `session` commits."""
    if report.state in FEED_STATES:
        session.info.setdefault(_QUEUED, []).append(new_entry(report, kind))


def append(connection: Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Number `entries` after the last position and insert them, holding the feed lock until commit.

    Call it as late as possible in the transaction: on PostgreSQL every other appender waits from here
    until this transaction ends.
    """
    if not entries:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_FEED_LOCK})
    last = connection.execute(select(func.coalesce(func.max(col(FeedEntry.position)), 0))).scalar_one()
    rows = [{**entry, "position": last + n} for n, entry in enumerate(entries, start=1)]
    connection.execute(insert(FeedEntry), rows)


@event.listens_for(OrmSession, "before_commit")
def _append_queued(session: OrmSession) -> None:
    entries = session.info.pop(_QUEUED, None)
    if not entries:
        return
    # Flush first: every row lock this transaction needs is taken before the feed lock, so a holder of
    # the feed lock never waits on anything, and appenders cannot deadlock on it.
    session.flush()
    append(session.connection(), entries)


@event.listens_for(OrmSession, "after_rollback")
def _forget_queued(session: OrmSession) -> None:
    session.info.pop(_QUEUED, None)


# --- reading --------------------------------------------------------------------------------------


class InvalidCursor(ValueError):
    """A cursor this feed did not give out, or one ahead of it; the message says what to do."""


def encode_cursor(position: int) -> str:
    """The opaque cursor for "after `position`"; stable: the same position always gives the same text."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position in a cursor from `encode_cursor`; `InvalidCursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    match = re.fullmatch(rf"{re.escape(_CURSOR_PREFIX)}(0|[1-9][0-9]{{0,17}})", raw)
    if match is None:
        raise InvalidCursor(
            f"cursor {cursor[:80]!r} is not a cursor of this feed: pass the `next_cursor` of a previous page "
            "exactly as given, or leave `cursor` out to read from the beginning"
        )
    return int(match.group(1))


def last_position(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.max(col(FeedEntry.position)), 0))).scalar_one())


def check_position(session: Session, position: int) -> None:
    """A cursor beyond the feed's end comes from another deployment or a restored database: say so."""
    if position > last_position(session):
        raise InvalidCursor(
            "this cursor is ahead of the feed (it comes from another Kanal deployment, or the database was "
            "restored from an older backup): leave `cursor` out to read from the beginning, and de-duplicate "
            "by entry id"
        )


def read_after(session: Session, position: int, *, limit: int) -> tuple[list[FeedEntry], bool]:
    """Up to `limit` entries after `position`, oldest first, and whether more follow."""
    rows = list(
        session.execute(
            select(FeedEntry)
            .where(col(FeedEntry.position) > position)
            .order_by(col(FeedEntry.position))
            .limit(limit + 1)
        ).scalars()
    )
    return rows[:limit], len(rows) > limit


# --- consumers ------------------------------------------------------------------------------------


class ConsumerError(ValueError):
    """The consumer cannot be created as asked; the message says why."""


def create_consumer(engine: Engine, *, name: str) -> tuple[str, FeedConsumer]:
    """A new consumer and its key. The key is returned once; only its SHA-256 is stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ConsumerError("the consumer name must be 1 to 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with write_session(engine) as session:
        if session.execute(select(FeedConsumer).where(col(FeedConsumer.name) == name)).scalar_one_or_none():
            raise ConsumerError(f"a feed consumer named {name!r} already exists")
        consumer = FeedConsumer(name=name, key_hash=key_digest(key))
        session.add(consumer)
    return key, consumer


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def consumer_for_key(session: Session, key: str) -> FeedConsumer | None:
    return session.execute(
        select(FeedConsumer).where(col(FeedConsumer.key_hash) == key_digest(key))
    ).scalar_one_or_none()


def acknowledge(engine: Engine, *, consumer_id: str, position: int) -> int:
    """Move the consumer's stored cursor forward to `position` (never back); return where it now stands."""
    now = utcnow()
    with write_session(engine) as session:
        check_position(session, position)
        session.execute(
            update(FeedConsumer)
            .where(col(FeedConsumer.id) == consumer_id, col(FeedConsumer.cursor_position) < position)
            .values(cursor_position=position, acked_at=now)
        )
        return int(
            session.execute(
                select(col(FeedConsumer.cursor_position)).where(col(FeedConsumer.id) == consumer_id)
            ).scalar_one()
        )


def note_read(engine: Engine, *, consumer_id: str) -> None:
    """Record that the consumer read the feed now (at most every `LAST_READ_RESOLUTION`)."""
    now = utcnow()
    last_read = col(FeedConsumer.last_read_at)
    with write_session(engine) as session:
        session.execute(
            update(FeedConsumer)
            .where(
                col(FeedConsumer.id) == consumer_id,
                last_read.is_(None) | (last_read < now - LAST_READ_RESOLUTION),
            )
            .values(last_read_at=now)
        )
