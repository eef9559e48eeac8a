"""Takes new inbox rows and turns each into exactly one report through the normalizer pipeline.

The pipeline's work (CPU) and the storing of its results (a write) are separate steps, so that on
SQLite the single writer is held only for the inserts, never while text is being cleaned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, update
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from adapters.contract import InboundMessage
from crm_client.notifications import Receipts
from gateway import assembly
from gateway.db import read_session, write_connection, write_session
from gateway.inbox import InboundMessageRow, MessageState
from gateway.media import MediaLinks
from gateway.settings import ChannelConfig, CRMConfig
from normalizer.pipeline import Draft, Pipeline
from review_queue import intake

log = logging.getLogger(__name__)

#: A message whose normalisation fails this often is set aside as `failed` for a person to look at.
MAX_NORMALIZE_ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome:
    """The pipeline's result for one inbox row: a draft, or the error that stopped it."""

    row_id: str
    draft: Draft | None
    error: str | None = None


def _new_rows(limit: int) -> SelectOfScalar[InboundMessageRow]:
    return (
        select(InboundMessageRow)
        .where(col(InboundMessageRow.state) == MessageState.NEW)
        .order_by(col(InboundMessageRow.received_at), col(InboundMessageRow.id))
        .limit(limit)
    )


def read_new(engine: Engine, *, limit: int) -> list[InboundMessageRow]:
    """The oldest new rows, read without taking any lock (SQLite: the single writer claims at store)."""
    with read_session(engine) as session:
        return list(session.exec(_new_rows(limit)))


def finished_groups(engine: Engine, now: datetime) -> list[tuple[str, str]]:
    """The conversations and multipart messages that are done: one indexed read, no writer needed."""
    with engine.connect() as connection:
        return assembly.due_groups(connection, now)


def assemble(engine: Engine, groups: Sequence[tuple[str, str]]) -> int:
    """Put `groups` together in one writing transaction, so the normalizer takes them; return how many."""
    with write_connection(engine) as connection:
        return sum(assembly.assemble_group(connection, channel_id, key) is not None for channel_id, key in groups)


def run_pipeline(
    rows: Sequence[InboundMessageRow], pipeline: Pipeline, channels: Mapping[str, ChannelConfig], media: MediaLinks
) -> list[Outcome]:
    """Pure CPU: no database. A row the pipeline chokes on gets its error, the others go on.

    Files that came inside a delivery get their public address here, so reports only hold fetchable URLs.
    """
    outcomes = []
    for row in rows:
        channel = channels.get(row.channel_id)
        try:
            message = InboundMessage.model_validate(row.message)
            draft = pipeline.run(
                message, channel_id=row.channel_id, service_code=channel.service_code if channel else None
            )
            draft.media = media.publish(row.id, draft.media)
        except Exception as exc:
            log.exception("normalizer: message %s (%s) failed", row.id, row.channel_id)
            outcomes.append(Outcome(row.id, None, f"{type(exc).__name__}: {exc}"[:2000]))
            continue
        outcomes.append(Outcome(row.id, draft))
    return outcomes


def store(
    connection: Connection,
    outcomes: Sequence[Outcome],
    *,
    channels: Mapping[str, ChannelConfig],
    crm: CRMConfig,
    worker_id: str,
    receipts: Receipts | None = None,
) -> int:
    """Write the outcomes for rows that are still new; return how many reports were created.

    Re-reading the rows' state inside the writing transaction is what makes this safe when another
    worker got there first: a row no longer `new` is left alone.
    """
    table = InboundMessageRow.__table__  # type: ignore[attr-defined]
    still_new = {
        row.id: row
        for row in connection.execute(
            select(table.c.id, table.c.ticket_code, table.c.channel_id, table.c.received_at).where(
                table.c.id.in_([o.row_id for o in outcomes]), table.c.state == MessageState.NEW
            )
        )
    }
    drafts: list[tuple[Any, Draft]] = [
        (still_new[o.row_id], o.draft) for o in outcomes if o.row_id in still_new and o.draft is not None
    ]
    failures = [o for o in outcomes if o.row_id in still_new and o.draft is None]
    if drafts:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(state=MessageState.NORMALIZED, attempts=table.c.attempts + 1, processed_by=worker_id),
            [{"row_id": message.id} for message, _ in drafts],
        )
    if failures:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                attempts=table.c.attempts + 1,
                processed_by=worker_id,
                last_error=bindparam("error"),
                state=case((table.c.attempts + 1 >= MAX_NORMALIZE_ATTEMPTS, MessageState.FAILED), else_=table.c.state),
            ),
            [{"row_id": o.row_id, "error": o.error} for o in failures],
        )
    return intake.create_reports(connection, drafts, channels=channels, crm=crm, receipts=receipts)


def claim_normalize_store(
    engine: Engine,
    pipeline: Pipeline,
    *,
    channels: Mapping[str, ChannelConfig],
    media: MediaLinks,
    crm: CRMConfig,
    worker_id: str,
    limit: int,
    receipts: Receipts | None = None,
) -> int:
    """PostgreSQL: one transaction that locks the rows it takes (`FOR UPDATE SKIP LOCKED`), so several
    processes share the inbox without ever taking the same message; a crash leaves them `new`."""
    with write_session(engine) as session:
        rows = list(session.exec(_new_rows(limit).with_for_update(skip_locked=True)))
        outcomes = run_pipeline(rows, pipeline, channels, media)
        store(session.connection(), outcomes, channels=channels, crm=crm, worker_id=worker_id, receipts=receipts)
        return len(rows)


def store_batch(
    engine: Engine,
    outcomes: Sequence[Outcome],
    *,
    channels: Mapping[str, ChannelConfig],
    crm: CRMConfig,
    worker_id: str,
    receipts: Receipts | None = None,
) -> int:
    """`store` in a writing transaction of its own (SQLite: run it through the single writer)."""
    with write_connection(engine) as connection:
        return store(connection, outcomes, channels=channels, crm=crm, worker_id=worker_id, receipts=receipts)


def store_each(
    engine: Engine,
    outcomes: Sequence[Outcome],
    *,
    channels: Mapping[str, ChannelConfig],
    crm: CRMConfig,
    worker_id: str,
    receipts: Receipts | None = None,
) -> None:
    """After a batch failed to store: one transaction per row, so one bad row cannot hold up the rest."""
    for outcome in outcomes:
        try:
            store_batch(engine, [outcome], channels=channels, crm=crm, worker_id=worker_id, receipts=receipts)
        except Exception as exc:
            log.exception("normalizer: could not store the report for message %s", outcome.row_id)
            failed = Outcome(outcome.row_id, None, f"storing failed: {type(exc).__name__}: {exc}"[:2000])
            store_batch(engine, [failed], channels=channels, crm=crm, worker_id=worker_id)
