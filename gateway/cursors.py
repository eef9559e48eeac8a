"""Where each pull channel stands: its cursor and how its recent polls went (`channel_cursor`).

The row is the only memory a poll relies on, so a restarted process, or another process on the same
PostgreSQL, resumes from the same cursor and respects the same back-off.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, Connection, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col

from gateway.db import UTCDateTime, utcnow


class ChannelCursor(SQLModel, table=True):
    __tablename__ = "channel_cursor"

    channel_id: str = Field(primary_key=True, max_length=100)
    #: What the adapter's last committed fetch returned; None: start from the channel's beginning.
    cursor: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_success_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    #: Why the last poll failed (secrets removed); None after a success.
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: False when the platform said retrying will not help (bad credentials): shown as an error.
    last_error_retryable: bool | None = None
    consecutive_failures: int = 0
    #: No poll before this time (back-off after failures); None: poll at the next interval.
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


def read_state(connection: Connection, channel_id: str) -> ChannelCursor:
    """The channel's row, or a fresh one (no cursor, no failures) for a channel never polled."""
    row = connection.execute(select(ChannelCursor.__table__).where(_key() == channel_id)).mappings().first()  # type: ignore[attr-defined]
    return ChannelCursor.model_validate(dict(row)) if row is not None else ChannelCursor(channel_id=channel_id)


def read_states(connection: Connection, channel_ids: Iterable[str]) -> dict[str, ChannelCursor]:
    """Channel id -> its row, for the channels that have one."""
    ids = list(channel_ids)
    if not ids:
        return {}
    rows = connection.execute(select(ChannelCursor.__table__).where(_key().in_(ids))).mappings()  # type: ignore[attr-defined]
    return {row["channel_id"]: ChannelCursor.model_validate(dict(row)) for row in rows}


def record_success(connection: Connection, *, channel_id: str, cursor: str | None, now: datetime) -> None:
    """Save the new cursor and clear the failure state. Call only once the fetched messages are committed."""
    _upsert(
        connection,
        channel_id,
        {
            "cursor": cursor,
            "updated_at": now,
            "last_success_at": now,
            "last_error": None,
            "last_error_retryable": None,
            "consecutive_failures": 0,
            "next_attempt_at": None,
        },
    )


def record_failure(
    connection: Connection,
    *,
    channel_id: str,
    error: str,
    retryable: bool,
    failures: int,
    next_attempt_at: datetime,
    now: datetime,
) -> None:
    """Record a failed poll; the cursor is left as it was, so nothing fetched since is skipped."""
    _upsert(
        connection,
        channel_id,
        {
            "updated_at": now,
            "last_error": error,
            "last_error_retryable": retryable,
            "consecutive_failures": failures,
            "next_attempt_at": next_attempt_at,
        },
    )


def _key():  # type: ignore[no-untyped-def]
    return col(ChannelCursor.channel_id)


def _upsert(connection: Connection, channel_id: str, values: dict[str, object]) -> None:
    table = ChannelCursor.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert(table) if connection.dialect.name == "postgresql" else sqlite.insert(table)
    statement = insert.values(channel_id=channel_id, **values).on_conflict_do_update(
        index_elements=["channel_id"], set_=values
    )
    connection.execute(statement)
