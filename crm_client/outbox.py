"""The outbox's life cycle: enqueued with the approval, claimed by one dispatcher, sent, retried or dead.

A claim is a lease: a dispatcher that dies mid-send leaves the item claimable again after the lease,
and the idempotency key makes the resend harmless. On PostgreSQL several dispatchers claim with
`FOR UPDATE SKIP LOCKED`, so none waits for or repeats another's items.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update
from sqlmodel import Session, col

from crm_client.errors import CRMError
from crm_client.open311 import Created, request_fields
from crm_client.tables import OutboxItem, OutboxState
from gateway.db import is_sqlite, utcnow, write_session
from gateway.settings import CRMConfig
from review_queue.history import record_change
from review_queue.tables import Report, ReportState

SYSTEM_CRM = "system:crm"


@dataclass(frozen=True)
class Claimed:
    """An outbox item handed to one dispatcher until `lease_until`."""

    id: str
    report_id: str
    idempotency_key: str
    payload: dict[str, str]
    attempts: int


def new_item(report: Report, crm: CRMConfig) -> OutboxItem:
    """The outbox row for `report` as approved now; the caller stores it in the approval's transaction."""
    return OutboxItem(
        report_id=report.id,
        idempotency_key=f"kanal-{report.id}-v{report.version}",
        payload=request_fields(report, crm),
    )


def enqueue(session: Session, *, report: Report, crm: CRMConfig) -> OutboxItem:
    """Add the CRM request for `report` to the outbox, in the caller's transaction."""
    item = new_item(report, crm)
    session.add(item)
    return item


def claim_due(engine: Engine, *, limit: int, lease_seconds: float) -> list[Claimed]:
    """Claim up to `limit` items that are due and not held by a live lease."""
    now = utcnow()
    with write_session(engine) as session:
        query = (
            select(OutboxItem)
            .where(
                col(OutboxItem.state) == OutboxState.PENDING,
                col(OutboxItem.next_attempt_at) <= now,
                or_(col(OutboxItem.claimed_until).is_(None), col(OutboxItem.claimed_until) < now),
            )
            .order_by(col(OutboxItem.next_attempt_at))
            .limit(limit)
        )
        if not is_sqlite(engine):
            query = query.with_for_update(skip_locked=True)
        items = list(session.execute(query).scalars())
        for item in items:
            item.claimed_until = now + timedelta(seconds=lease_seconds)
        return [Claimed(i.id, i.report_id, i.idempotency_key, dict(i.payload), i.attempts) for i in items]


def release(engine: Engine, item_ids: list[str]) -> None:
    """Give claimed items back at once (a clean shutdown), instead of leaving them to their lease."""
    if not item_ids:
        return
    with write_session(engine) as session:
        session.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id).in_(item_ids), col(OutboxItem.state) == OutboxState.PENDING)
            .values(claimed_until=None)
        )


def record_outcomes(engine: Engine, outcomes: list[tuple[Claimed, Created | CRMError]], crm: CRMConfig) -> list[str]:
    """Record every answer of one dispatch round in one transaction; return each item's new state.

    One commit per round rather than per item: on SQLite each commit is an fsync.
    """
    now = utcnow()
    with write_session(engine) as session:
        # Load the round's rows in two queries; the get_one calls below are then answered from the session.
        session.execute(select(OutboxItem).where(col(OutboxItem.id).in_([c.id for c, _ in outcomes]))).all()
        session.execute(select(Report).where(col(Report.id).in_([c.report_id for c, _ in outcomes]))).all()
        return [
            _record_sent(session, claimed, outcome, now)
            if isinstance(outcome, Created)
            else _record_failure(session, claimed, outcome, crm, now)
            for claimed, outcome in outcomes
        ]


def _record_sent(session: Session, claimed: Claimed, created: Created, now: datetime) -> str:
    item = session.get_one(OutboxItem, claimed.id)
    item.state = OutboxState.SENT
    item.attempts += 1
    item.sent_at = now
    item.claimed_until = None
    item.last_status_code = 200
    item.last_error = None
    record_change(
        session,
        session.get_one(Report, claimed.report_id),
        actor=SYSTEM_CRM,
        action="forwarded",
        state=ReportState.FORWARDED,
        crm_service_request_id=created.service_request_id,
        crm_token=created.token,
    )
    return OutboxState.SENT


def _record_failure(session: Session, claimed: Claimed, error: CRMError, crm: CRMConfig, now: datetime) -> str:
    """Schedule the next try, or give up."""
    item = session.get_one(OutboxItem, claimed.id)
    item.attempts += 1
    item.claimed_until = None
    item.last_status_code = error.status_code
    item.last_error = error.message[:2000]
    if error.retryable and item.attempts < crm.max_attempts:
        delay = backoff_seconds(item.attempts, crm)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        item.next_attempt_at = now + timedelta(seconds=delay)
        return OutboxState.PENDING
    item.state = OutboxState.DEAD
    why = "out of attempts" if error.retryable else "refused"
    record_change(
        session,
        session.get_one(Report, claimed.report_id),
        actor=SYSTEM_CRM,
        action="crm_failed",
        note=f"{why} after {item.attempts} attempt(s): {error.message}",
        state=ReportState.CRM_FAILED,
    )
    return OutboxState.DEAD


def backoff_seconds(attempts: int, crm: CRMConfig) -> float:
    """Exponential backoff with jitter: about base * 2^(attempts-1), capped, spread over its upper half."""
    ceiling = min(crm.backoff_cap_seconds, crm.backoff_base_seconds * 2 ** (attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_dead(engine: Engine, *, item_ids: list[str] | None, actor: str) -> int:
    """Put dead items (all, or the given ids) back in line now; their reports return to `approved`."""
    with write_session(engine) as session:
        query = select(OutboxItem).where(col(OutboxItem.state) == OutboxState.DEAD)
        if item_ids:
            query = query.where(col(OutboxItem.id).in_(item_ids))
        items = list(session.execute(query).scalars())
        for item in items:
            item.state = OutboxState.PENDING
            item.attempts = 0
            item.next_attempt_at = utcnow()
            report = session.get_one(Report, item.report_id)
            record_change(session, report, actor=actor, action="crm_retry", state=ReportState.APPROVED)
        return len(items)
