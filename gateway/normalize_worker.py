"""Takes new inbox rows and turns each into exactly one report through the normalizer pipeline."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import Engine, select
from sqlmodel import col

from adapters.contract import InboundMessage
from gateway.db import is_sqlite, write_session
from gateway.inbox import InboundMessageRow, MessageState
from gateway.settings import ChannelConfig, CRMConfig
from normalizer.pipeline import Pipeline
from review_queue import service

log = logging.getLogger(__name__)

#: A message whose normalisation fails this often is set aside as `failed` for a person to look at.
MAX_NORMALIZE_ATTEMPTS = 5


def normalize_batch(
    engine: Engine,
    pipeline: Pipeline,
    *,
    channels: Mapping[str, ChannelConfig],
    crm: CRMConfig,
    worker_id: str,
    limit: int,
) -> int:
    """Normalise up to `limit` new messages in one transaction; return how many were taken.

    The rows stay locked (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the single writer) until the
    reports are committed, so two workers never take the same message and a crash leaves it `new`.
    """
    with write_session(engine) as session:
        query = (
            select(InboundMessageRow)
            .where(col(InboundMessageRow.state) == MessageState.NEW)
            .order_by(col(InboundMessageRow.received_at))
            .limit(limit)
        )
        if not is_sqlite(engine):
            query = query.with_for_update(skip_locked=True)
        rows = list(session.execute(query).scalars())
        for row in rows:
            row.attempts += 1
            row.processed_by = worker_id
            channel = channels.get(row.channel_id)
            try:
                with session.begin_nested():
                    message = InboundMessage.model_validate(row.message)
                    draft = pipeline.run(
                        message,
                        channel_id=row.channel_id,
                        service_code=channel.service_code if channel else None,
                    )
                    service.create_report(session, message_row=row, draft=draft, channel=channel, crm=crm)
            except Exception as exc:
                log.exception("normalizer: message %s (%s) failed, attempt %d", row.id, row.channel_id, row.attempts)
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                if row.attempts >= MAX_NORMALIZE_ATTEMPTS:
                    row.state = MessageState.FAILED
                continue
            row.state = MessageState.NORMALIZED
        return len(rows)
