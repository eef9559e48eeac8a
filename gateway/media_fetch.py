"""Downloading citizens' photos after their message is stored: the `media_file` table and its loop.

A message is stored (and acknowledged, and normalized) with its photos only *referenced*. For each
remote ref of a newly stored message the inbox writer adds a pending `media_file` row in the same
transaction, so a ref is never forgotten, and a redelivery adds none. `MediaFetcher` then asks the
channel's adapter for the file (`Adapter.download_media`, host allowlist and size cap included) and
stores the bytes, or marks the file unavailable with the reason. A platform that is down is retried
with backoff; nothing here ever holds up the message, its report or the CRM.

Several processes may run the loop on one PostgreSQL: a row is taken by compare-and-set on its due
time (the lease), so exactly one process downloads it, and a process that dies mid-download leaves
it to come due again when the lease ends. On SQLite every write goes through the single writer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlmodel import Field, SQLModel

from adapters.contract import MediaRef
from adapters.errors import ChannelUnavailable, MediaUnavailable
from crm_client.periodic import PeriodicLoop
from gateway import assembly, metrics
from gateway.db import UTCDateTime, read_session, utcnow, write_connection
from gateway.ids import new_id
from gateway.media import INLINE_PREFIX
from gateway.settings import MediaConfig
from gateway.write_queue import WriteQueue

log = logging.getLogger(__name__)

DOWNLOADS = "kanal_media_downloads_total"
#: One download, redirects included, may take this long; a host that trickles bytes is cut off and retried.
DOWNLOAD_DEADLINE_SECONDS = 120.0
#: How long a taken row stays taken: longer than any download, so two processes never fetch it at once.
LEASE_SECONDS = 2 * DOWNLOAD_DEADLINE_SECONDS
#: The most files one message holds (`InboundMessage.media`); a conversation's combined message keeps its first.
MAX_MEDIA_PER_MESSAGE = 20
#: A platform's Retry-After is honoured up to this; beyond it the backoff decides.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


class MediaState(StrEnum):
    PENDING = "pending"  # waiting for (another) download attempt
    STORED = "stored"  # downloaded: `data` holds the file
    UNAVAILABLE = "unavailable"  # will never be downloaded; `last_error` says why


class MediaFile(SQLModel, table=True):
    """One remote photo (or other file) of an inbound message, and the file itself once downloaded."""

    __tablename__ = "media_file"
    __table_args__ = (
        UniqueConstraint("inbound_message_id", "position", name="uq_media_file_message_position"),
        Index("ix_media_file_state_due", "state", "next_attempt_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    inbound_message_id: str = Field(foreign_key="inbound_message.id", max_length=36)
    #: The ref's place in its message's media list (inline refs, which need no download, keep their place).
    position: int
    channel_id: str = Field(max_length=100)
    #: The `adapters.contract.MediaRef` as the adapter parsed it: what `download_media` is given.
    ref: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default=MediaState.PENDING, max_length=20)
    #: The type Kanal found in the bytes (`sniff`), never the platform's word alone.
    content_type: str | None = Field(default=None, max_length=100)
    size: int | None = None
    data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    fetched_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


def pending_rows(
    inbound_message_id: str, channel_id: str, media: Iterable[Mapping[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """The `media_file` rows for a newly stored message's remote refs (`media` as stored, JSON dicts)."""
    return [
        {
            "id": new_id(),
            "inbound_message_id": inbound_message_id,
            "position": position,
            "channel_id": channel_id,
            "ref": dict(ref),
            "state": MediaState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for position, ref in enumerate(media)
        if not str(ref.get("url", "")).startswith(INLINE_PREFIX)
    ]


def follow_merge(connection: Connection, carrier_id: str, parts: list[tuple[str, int]]) -> None:
    """Parts of a conversation were put together into `carrier_id` (gateway/assembly.py): their files now
    sit, in the same order, in the carrier's media list, which is where the media route looks them up.

    `parts` is [(part id, its media count)] in order, the carrier first. Files past the combined message's
    limit were dropped from it; they are not downloaded.
    """
    table = MediaFile.__table__  # type: ignore[attr-defined]
    offset = 0
    for part_id, media_count in parts:
        if part_id != carrier_id:
            connection.execute(
                update(table)
                .where(table.c.inbound_message_id == part_id)
                .values(inbound_message_id=carrier_id, position=table.c.position + offset)
            )
        offset += media_count
    connection.execute(
        update(table)
        .where(
            table.c.inbound_message_id == carrier_id,
            table.c.position >= MAX_MEDIA_PER_MESSAGE,
            table.c.state == MediaState.PENDING,
        )
        .values(state=MediaState.UNAVAILABLE, last_error="not downloaded: the conversation had too many files")
    )


if follow_merge not in assembly.MERGE_HOOKS:
    assembly.MERGE_HOOKS.append(follow_merge)


# --- What a file really is -------------------------------------------------------------------------------

#: Types served for display (`Content-Disposition: inline`); anything else is served as a download.
DISPLAYABLE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/avif", "image/bmp"}
    | {"video/mp4", "video/3gpp", "video/quicktime", "audio/ogg", "audio/mpeg", "audio/mp4", "audio/amr"}
)
UNKNOWN_TYPE = "application/octet-stream"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"#!AMR", "audio/amr"),
    (b"%PDF-", "application/pdf"),
    (b"BM", "image/bmp"),
)
_FTYP_BRANDS: tuple[tuple[tuple[bytes, ...], str], ...] = (
    ((b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"), "image/heic"),
    ((b"avif", b"avis"), "image/avif"),
    ((b"3gp4", b"3gp5", b"3gp6", b"3g2a"), "video/3gpp"),
    ((b"qt  ",), "video/quicktime"),
    ((b"M4A ",), "audio/mp4"),
    ((b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"dash", b"M4V "), "video/mp4"),
)


def sniff(data: bytes) -> str:
    """The file's type from its first bytes; `application/octet-stream` when it is none Kanal knows.

    The platform's Content-Type comes from whoever posted the file; a page of HTML labelled image/jpeg
    must not be served as something a browser renders.
    """
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        for brands, content_type in _FTYP_BRANDS:
            if brand in brands:
                return content_type
    return UNKNOWN_TYPE


# --- The loop --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Due:
    id: str
    channel_id: str
    ref: dict[str, Any]
    attempts: int
    next_attempt_at: datetime


@dataclass(frozen=True)
class _Result:
    """What became of one attempt: the columns to set, and the counter's label."""

    changes: dict[str, Any]
    outcome: str  # stored | retry | unavailable


def backoff(config: MediaConfig, attempts: int, retry_after: float | None = None) -> timedelta:
    """The wait before the next attempt after `attempts` failed ones; a platform's Retry-After is honoured."""
    base = min(config.backoff_cap_seconds, config.backoff_base_seconds * 2 ** (attempts - 1))
    wait = base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
    if retry_after is not None and retry_after > 0:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return timedelta(seconds=wait)


class MediaFetcher(PeriodicLoop):
    """Downloads due `media_file` rows through their channels' adapters, a batch at a time, concurrently."""

    name = "media"

    def __init__(
        self,
        engine: Engine,
        writes: WriteQueue,
        channels: Mapping[str, Any],
        config: MediaConfig,
        counters: metrics.Counters | None = None,
        *,
        deadline_seconds: float = DOWNLOAD_DEADLINE_SECONDS,
    ) -> None:
        super().__init__(config.poll_interval_seconds)
        self._engine = engine
        self._writes = writes
        self._channels = channels
        self._config = config
        self._counters = counters or metrics.Counters()
        self._counters.describe(DOWNLOADS, "Media download attempts by result (stored, retry, unavailable).")
        self._deadline = deadline_seconds
        self._lease = timedelta(seconds=max(LEASE_SECONDS, 2 * deadline_seconds))
        #: Row id -> the lease this process holds on it, so a clean stop can hand the rows back at once.
        self._in_flight: dict[str, datetime] = {}

    async def run_once(self) -> int:
        """One round: take the due rows (those another process took are skipped) and try each once.
        Returns how many files were stored."""
        due = await asyncio.to_thread(self._due)
        if not due:
            return 0
        lease_until = utcnow() + self._lease
        taken = await self._writes.run(lambda: self._claim(due, lease_until))
        for item in taken:
            self._in_flight[item.id] = lease_until
        # Cancelled (the process stops): the rows stay in `_in_flight` for `stop` to hand back.
        results = await asyncio.gather(*(self._attempt(item) for item in taken))
        for item in taken:
            self._in_flight.pop(item.id, None)
        return sum(1 for result in results if result == MediaState.STORED)

    async def stop(self) -> None:
        await super().stop()
        # A download cut short by the stop hands its row back now rather than when the lease ends.
        held, self._in_flight = dict(self._in_flight), {}
        if held:
            try:
                await self._writes.run(lambda: self._release(held))
            except Exception:
                log.warning("media: could not hand back %d file(s); they come due when their lease ends", len(held))

    def _due(self) -> list[_Due]:
        table = MediaFile.__table__  # type: ignore[attr-defined]
        with read_session(self._engine) as session:
            rows = session.execute(
                select(table.c.id, table.c.channel_id, table.c.ref, table.c.attempts, table.c.next_attempt_at)
                .where(table.c.state == MediaState.PENDING, table.c.next_attempt_at <= utcnow())
                .order_by(table.c.next_attempt_at)
                .limit(self._config.batch)
            ).all()
        return [_Due(*row) for row in rows]

    def _claim(self, due: list[_Due], lease_until: datetime) -> list[_Due]:
        """Compare-and-set on each row's due time: of several processes that read it, exactly one wins."""
        table = MediaFile.__table__  # type: ignore[attr-defined]
        taken = []
        with write_connection(self._engine) as connection:
            for item in due:
                result = connection.execute(
                    update(table)
                    .where(
                        table.c.id == item.id,
                        table.c.state == MediaState.PENDING,
                        table.c.next_attempt_at == item.next_attempt_at,
                    )
                    .values(next_attempt_at=lease_until)
                )
                if result.rowcount == 1:
                    taken.append(item)
        return taken

    def _release(self, held: Mapping[str, datetime]) -> None:
        table = MediaFile.__table__  # type: ignore[attr-defined]
        now = utcnow()
        with write_connection(self._engine) as connection:
            for row_id, lease_until in held.items():
                connection.execute(
                    update(table)
                    .where(
                        table.c.id == row_id,
                        table.c.state == MediaState.PENDING,
                        table.c.next_attempt_at == lease_until,
                    )
                    .values(next_attempt_at=now)
                )

    def _record(self, row_id: str, changes: Mapping[str, Any]) -> None:
        table = MediaFile.__table__  # type: ignore[attr-defined]
        with write_connection(self._engine) as connection:
            # Only a row still pending: if another process stored it after our lease ran out, that stands.
            connection.execute(
                update(table).where(table.c.id == row_id, table.c.state == MediaState.PENDING).values(**changes)
            )

    async def _attempt(self, item: _Due) -> str:
        result = await self._download(item)
        try:
            await self._writes.run(lambda: self._record(item.id, result.changes))
        except Exception:
            # The lease runs out and the row comes due again; the file is fetched once more then.
            log.exception("media: could not record the outcome for file %s (%s)", item.id, item.channel_id)
            return MediaState.PENDING
        self._counters.inc(DOWNLOADS, result=result.outcome)
        return str(result.changes.get("state", MediaState.PENDING))

    async def _download(self, item: _Due) -> _Result:
        attempts = item.attempts + 1
        channel = self._channels.get(item.channel_id)
        if channel is None:
            return self._unavailable(
                attempts,
                f"channel {item.channel_id} is not configured or is disabled; enable it again to download its files",
            )
        max_bytes = self._config.max_bytes
        try:
            ref = MediaRef.model_validate(item.ref)
            content = await asyncio.wait_for(channel.adapter.download_media(ref, max_bytes=max_bytes), self._deadline)
        except MediaUnavailable as exc:
            log.info("media: file %s of %s is unavailable: %s", item.id, item.channel_id, exc.reason)
            return self._unavailable(attempts, exc.reason)
        except ChannelUnavailable as exc:
            if not exc.retryable:
                return self._unavailable(attempts, str(exc))
            return self._retry(attempts, str(exc), exc.retry_after)
        except TimeoutError:
            return self._retry(attempts, f"the download took longer than {self._deadline:g} s; will retry", None)
        except Exception as exc:  # an adapter bug must not stop the other files, nor this one for good at once
            log.exception("media: channel %s failed to download file %s", item.channel_id, item.id)
            return self._retry(attempts, f"{type(exc).__name__}: {exc}", None)
        data = bytes(content.data)
        if len(data) > max_bytes:  # an adapter that does not use the capped download must not get past the cap
            return self._unavailable(attempts, f"too large: {len(data)} bytes, limit {max_bytes}")
        if not data:
            return self._unavailable(attempts, "the platform sent an empty file")
        return _Result(
            {
                "state": MediaState.STORED,
                "attempts": attempts,
                "data": data,
                "size": len(data),
                "content_type": sniff(data),
                "fetched_at": utcnow(),
                "last_error": None,
            },
            "stored",
        )

    def _unavailable(self, attempts: int, reason: str) -> _Result:
        changes = {"state": MediaState.UNAVAILABLE, "attempts": attempts, "last_error": reason[:2000]}
        return _Result(changes, "unavailable")

    def _retry(self, attempts: int, reason: str, retry_after: float | None) -> _Result:
        if attempts >= self._config.max_attempts:
            return self._unavailable(attempts, f"gave up after {attempts} attempts; last: {reason}")
        next_at = utcnow() + backoff(self._config, attempts, retry_after)
        return _Result({"attempts": attempts, "last_error": reason[:2000], "next_attempt_at": next_at}, "retry")


# --- For /healthz and the media route ---------------------------------------------------------------------


def read_status(engine: Engine) -> dict[str, Any]:
    """How many files are waiting, stored and unavailable, and how long the oldest one has waited."""
    table = MediaFile.__table__  # type: ignore[attr-defined]
    with read_session(engine) as session:
        counts = dict(session.execute(select(table.c.state, func.count()).group_by(table.c.state)).all())
        oldest = session.execute(
            select(func.min(table.c.created_at)).where(table.c.state == MediaState.PENDING)
        ).scalar_one()
    if oldest is not None and not isinstance(oldest, datetime):  # SQLite's MIN() bypasses the column type
        oldest = datetime.fromisoformat(str(oldest))
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return {
        "pending": int(counts.get(MediaState.PENDING, 0)),
        "stored": int(counts.get(MediaState.STORED, 0)),
        "unavailable": int(counts.get(MediaState.UNAVAILABLE, 0)),
        "oldest_pending_seconds": round(max(0.0, (utcnow() - oldest).total_seconds()), 1) if oldest else 0.0,
    }


@dataclass(frozen=True)
class FileState:
    """A `media_file` row as the media route needs it, without the bytes."""

    id: str
    state: str
    content_type: str | None
    next_attempt_at: datetime
    last_error: str | None


def file_at(engine: Engine, message_id: str, position: int) -> FileState | None:
    table = MediaFile.__table__  # type: ignore[attr-defined]
    with read_session(engine) as session:
        row = session.execute(
            select(
                table.c.id,
                table.c.state,
                table.c.content_type,
                table.c.next_attempt_at,
                table.c.last_error,
            ).where(table.c.inbound_message_id == message_id, table.c.position == position)
        ).first()
    return FileState(*row) if row is not None else None


def file_data(engine: Engine, file_id: str) -> bytes | None:
    table = MediaFile.__table__  # type: ignore[attr-defined]
    with read_session(engine) as session:
        data = session.execute(
            select(table.c.data).where(table.c.id == file_id, table.c.state == MediaState.STORED)
        ).scalar_one_or_none()
    return bytes(data) if data is not None else None
