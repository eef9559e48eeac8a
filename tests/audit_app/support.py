"""Audit rows put straight in the database, at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert

from gateway.db import write_connection
from gateway.ids import new_id
from review_queue.audit import AuditLog
from review_queue.tables import ReportEvent

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 10:00 WIB


def add_event(
    engine: Engine,
    report_id: str,
    *,
    actor: str,
    action: str,
    at: datetime = T0,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str | None = None,
    event_id: str | None = None,
) -> str:
    event_id = event_id or new_id()
    row = ReportEvent(
        id=event_id, report_id=report_id, at=at, actor=actor, action=action, before=before, after=after, note=note
    )
    with write_connection(engine) as connection:
        connection.execute(insert(ReportEvent), [row.model_dump()])
    return event_id


def add_log(
    engine: Engine,
    *,
    actor_id: str | None,
    actor_name: str,
    action: str,
    at: datetime = T0,
    target_type: str | None = None,
    target_id: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = "10.1.2.3",
    log_id: str | None = None,
) -> str:
    log_id = log_id or new_id()
    row = AuditLog(
        id=log_id,
        at=at,
        actor_id=actor_id,
        actor_name=actor_name,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
        ip=ip,
    )
    with write_connection(engine) as connection:
        connection.execute(insert(AuditLog), [row.model_dump()])
    return log_id
