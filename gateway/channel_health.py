"""How each channel instance is doing, for `kanal adapters list` and operators: when it last brought a
message in, its last error, and what of its work is still waiting (its backlog).

Pull channels keep their poll state in `channel_cursor`. A push channel's last success is its newest
stored message and its last error its newest refused delivery. The backlog counts the channel's
messages not yet made into reports, photos not yet downloaded and citizen messages not yet sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, column, func, inspect, select, table
from sqlmodel import col

from gateway import cursors
from gateway.inbox import InboundMessageRow, MessageState, QuarantinedPayload

WAITING_MESSAGES = (MessageState.NEW, MessageState.ASSEMBLING)


@dataclass(frozen=True)
class ChannelHealth:
    channel_id: str
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    #: Messages waiting for the normalizer (or for the rest of their conversation).
    waiting_messages: int
    #: Photos referenced but not downloaded yet.
    waiting_media: int
    #: Messages to citizens not sent yet.
    waiting_replies: int
    #: Pull channels: failed polls in a row (0 when the last one worked).
    consecutive_failures: int = 0

    @property
    def backlog(self) -> int:
        return self.waiting_messages + self.waiting_media + self.waiting_replies


def channel_health(engine: Engine, channel_ids: Iterable[str], pull_ids: Iterable[str]) -> dict[str, ChannelHealth]:
    """Channel id -> its health, for the given channels (read-only; a few grouped queries)."""
    ids = sorted(set(channel_ids))
    pulled = set(pull_ids)
    tables = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        states = cursors.read_states(connection, [cid for cid in ids if cid in pulled])
        newest = _per_channel(connection, func.max(col(InboundMessageRow.received_at)), InboundMessageRow, ids)
        waiting = _per_channel(
            connection,
            func.count(),
            InboundMessageRow,
            ids,
            col(InboundMessageRow.state).in_([str(s) for s in WAITING_MESSAGES]),
        )
        refused_at = _per_channel(connection, func.max(col(QuarantinedPayload.received_at)), QuarantinedPayload, ids)
        refusals = {
            channel_id: reason
            for channel_id, reason in connection.execute(
                select(col(QuarantinedPayload.channel_id), col(QuarantinedPayload.reason)).where(
                    col(QuarantinedPayload.channel_id).in_(ids),
                    col(QuarantinedPayload.received_at).in_([t for t in refused_at.values() if t is not None]),
                )
            )
        }
        media = _waiting_rows(connection, tables, "media_file", ids)
        replies = _waiting_rows(connection, tables, "citizen_notification", ids)
    health = {}
    for channel_id in ids:
        state = states.get(channel_id)
        if channel_id in pulled:
            last_success = state.last_success_at if state else None
            last_error = state.last_error if state else None
            error_at = state.updated_at if state and state.last_error else None
        else:
            last_success = newest.get(channel_id)
            last_error = refusals.get(channel_id)
            error_at = refused_at.get(channel_id)
        health[channel_id] = ChannelHealth(
            channel_id=channel_id,
            last_success_at=last_success,
            last_error=last_error,
            last_error_at=error_at,
            waiting_messages=int(waiting.get(channel_id) or 0),
            waiting_media=media.get(channel_id, 0),
            waiting_replies=replies.get(channel_id, 0),
            consecutive_failures=state.consecutive_failures if state else 0,
        )
    return health


def _per_channel(
    connection: Connection, aggregate: ColumnElement[Any], model: Any, ids: list[str], *where: ColumnElement[bool]
) -> dict[str, Any]:
    channel = col(model.channel_id)
    query = select(channel, aggregate).where(channel.in_(ids), *where).group_by(channel)
    return {channel_id: value for channel_id, value in connection.execute(query)}


def _waiting_rows(connection: Connection, tables: set[str], table_name: str, ids: list[str]) -> dict[str, int]:
    """Pending rows per channel of a table with `channel_id` and `state` columns (absent before its migration)."""
    if table_name not in tables:
        return {}
    rows = table(table_name, column("channel_id"), column("state"))
    query = (
        select(rows.c.channel_id, func.count())
        .where(rows.c.channel_id.in_(ids), rows.c.state == "pending")
        .group_by(rows.c.channel_id)
    )
    return {channel_id: int(n) for channel_id, n in connection.execute(query)}
