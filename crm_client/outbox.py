"""The outbox's life cycle: enqueued with the approval, claimed by one dispatcher, sent, retried or dead.

    pending --create--> sent
       |  \\--token--> resolving --tokens/{token}.json--> sent
       |--refused / out of attempts--> dead --retry--> pending
       \\--drop (operator, with a reason)--> dropped       (dead --drop--> dropped too)

A claim is a lease: a dispatcher that dies mid-send leaves the item claimable again after the lease,
and the idempotency key makes the resend harmless. On PostgreSQL several dispatchers claim with
`FOR UPDATE SKIP LOCKED`, so none waits for or repeats another's items.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlmodel import Session, col

from crm_client import pause
from crm_client.attempts import Attempt, attempt_row
from crm_client.errors import CRMError
from crm_client.json_push import push_document
from crm_client.open311 import Created, request_fields
from crm_client.tables import OutboxItem, OutboxState, Sink
from gateway.db import is_sqlite, utcnow, write_session
from gateway.settings import CRMConfig
from review_queue.history import record_change
from review_queue.tables import Report, ReportState

SYSTEM_CRM = "system:crm"


class OutboxActionError(ValueError):
    """An operator asked for something the item's state does not allow; the message says why."""


@dataclass(frozen=True)
class Claimed:
    """An outbox item handed to one dispatcher until `lease_until`."""

    id: str
    report_id: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    sink: str = Sink.OPEN311
    state: str = OutboxState.PENDING
    crm_token: str | None = None


def build_payload(report: Report, crm: CRMConfig) -> dict[str, Any]:
    """What is sent for `report` to the configured kind of CRM."""
    return push_document(report, crm) if crm.kind == Sink.JSON_PUSH else dict(request_fields(report, crm))


def new_item(report: Report, crm: CRMConfig) -> OutboxItem:
    """The outbox row for `report` as approved now; the caller stores it in the approval's transaction."""
    return OutboxItem(
        report_id=report.id,
        idempotency_key=f"kanal-{report.id}-v{report.version}",
        payload=build_payload(report, crm),
        sink=crm.kind,
    )


def enqueue(session: Session, *, report: Report, crm: CRMConfig) -> OutboxItem:
    """Add the CRM request for `report` to the outbox, in the caller's transaction."""
    item = new_item(report, crm)
    session.add(item)
    return item


def claim_due(engine: Engine, *, limit: int, lease_seconds: float) -> list[Claimed]:
    """Claim up to `limit` items that are due (to send, or to resolve a token) and not held by a live lease."""
    now = utcnow()
    with write_session(engine) as session:
        query = (
            select(OutboxItem)
            .where(
                col(OutboxItem.state).in_([OutboxState.PENDING, OutboxState.RESOLVING]),
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
        return [
            Claimed(i.id, i.report_id, i.idempotency_key, dict(i.payload), i.attempts, i.sink, i.state, i.crm_token)
            for i in items
        ]


def release(engine: Engine, item_ids: list[str]) -> None:
    """Give claimed items back at once (a clean shutdown), instead of leaving them to their lease."""
    if not item_ids:
        return
    with write_session(engine) as session:
        session.execute(
            update(OutboxItem)
            .where(
                col(OutboxItem.id).in_(item_ids),
                col(OutboxItem.state).in_([OutboxState.PENDING, OutboxState.RESOLVING]),
            )
            .values(claimed_until=None)
        )


def record_outcomes(engine: Engine, outcomes: list[tuple[Claimed, Attempt]], crm: CRMConfig) -> list[str]:
    """Record every answer of one dispatch round, and its attempt log, in one transaction; return each
    item's new state.

    One commit per round rather than per item: on SQLite each commit is an fsync.
    """
    now = utcnow()
    with write_session(engine) as session:
        # Load the round's rows in two queries; the get_one calls below are then answered from the session.
        session.execute(select(OutboxItem).where(col(OutboxItem.id).in_([c.id for c, _ in outcomes]))).all()
        session.execute(select(Report).where(col(Report.id).in_([c.report_id for c, _ in outcomes]))).all()
        session.add_all([attempt_row(claimed.id, attempt, crm) for claimed, attempt in outcomes])
        return [
            _record_sent(session, claimed, attempt.outcome, crm, now)
            if isinstance(attempt.outcome, Created)
            else _record_failure(session, claimed, attempt.outcome, crm, now)
            for claimed, attempt in outcomes
        ]


def _record_sent(session: Session, claimed: Claimed, created: Created, crm: CRMConfig, now: datetime) -> str:
    item = session.get_one(OutboxItem, claimed.id)
    report = session.get_one(Report, claimed.report_id)
    item.claimed_until = None
    item.last_status_code = created.status_code
    item.last_error = None
    if claimed.state == OutboxState.RESOLVING:
        item.state = OutboxState.SENT
        item.attempts += 1
        record_change(
            session,
            report,
            actor=SYSTEM_CRM,
            action="crm_id_assigned",
            crm_service_request_id=created.service_request_id,
        )
        return OutboxState.SENT
    item.attempts += 1
    item.sent_at = now
    if created.service_request_id is None and created.token is not None:
        # Deferred creation: the CRM holds the report, its id comes later through tokens/{token}.json.
        item.state = OutboxState.RESOLVING
        item.crm_token = created.token
        item.attempts = 0
        item.next_attempt_at = now + timedelta(seconds=min(crm.backoff_base_seconds, 1.0))
    else:
        item.state = OutboxState.SENT
    record_change(
        session,
        report,
        actor=SYSTEM_CRM,
        action="forwarded",
        state=ReportState.FORWARDED,
        crm_service_request_id=created.service_request_id,
        crm_token=created.token,
    )
    return item.state


def _record_failure(session: Session, claimed: Claimed, error: CRMError, crm: CRMConfig, now: datetime) -> str:
    """Schedule the next try, pause everything, or give up."""
    item = session.get_one(OutboxItem, claimed.id)
    item.attempts += 1
    item.claimed_until = None
    item.last_status_code = error.status_code
    item.last_error = error.message[:2000]
    if error.kind == "auth":
        # Not this report's fault: it waits, untouched, until the credentials are fixed and sending resumes.
        item.attempts -= 1
        item.next_attempt_at = now
        pause.pause(session, reason=error.message, crm=crm)
        return item.state
    resolving = claimed.state == OutboxState.RESOLVING
    if error.retryable and (resolving or item.attempts < crm.max_attempts):
        # A token is asked about until the CRM answers: the report is already in the CRM, giving up loses nothing.
        delay = backoff_seconds(item.attempts, crm)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        item.next_attempt_at = now + timedelta(seconds=delay)
        return item.state
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
    ceiling = min(crm.backoff_cap_seconds, crm.backoff_base_seconds * 2 ** (max(attempts, 1) - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_dead(engine: Engine, *, item_ids: list[str] | None, actor: str, crm: CRMConfig | None = None) -> int:
    """Put dead items (all, or the given ids) back in line now; their reports return to `approved`.

    With `crm`, the request is built again from the report under the current configuration, so a fixed
    `crm.service_map` or `crm.attribute_defaults` (or a new `crm.kind`) applies to the replay.
    """
    with write_session(engine) as session:
        query = select(OutboxItem).where(col(OutboxItem.state) == OutboxState.DEAD)
        if item_ids:
            query = query.where(col(OutboxItem.id).in_(item_ids))
        items = list(session.execute(query).scalars())
        for item in items:
            report = session.get_one(Report, item.report_id)
            if crm is not None:
                item.payload = build_payload(report, crm)
                item.sink = crm.kind
            item.state = OutboxState.PENDING
            item.attempts = 0
            item.crm_token = None
            item.next_attempt_at = utcnow()
            record_change(session, report, actor=actor, action="crm_retry", state=ReportState.APPROVED)
        return len(items)


def drop(engine: Engine, *, item_ids: list[str], actor: str, reason: str) -> int:
    """Give up on dead or still pending items for good; the reason goes into each report's history."""
    reason = reason.strip()
    if not reason:
        raise OutboxActionError('say why the report is dropped (--reason / {"reason": ...}): it goes in its history')
    with write_session(engine) as session:
        items = list(session.execute(select(OutboxItem).where(col(OutboxItem.id).in_(item_ids))).scalars())
        unknown = sorted(set(item_ids) - {i.id for i in items})
        if unknown:
            raise OutboxActionError(f"no outbox item {', '.join(unknown)}; see `kanal outbox list`")
        done = [i for i in items if i.state not in (OutboxState.DEAD, OutboxState.PENDING)]
        if done:
            raise OutboxActionError(
                "only dead or pending items can be dropped: " + ", ".join(f"{i.id} is {i.state}" for i in done)
            )
        for item in items:
            item.state = OutboxState.DROPPED
            item.claimed_until = None
            record_change(
                session,
                session.get_one(Report, item.report_id),
                actor=actor,
                action="crm_dropped",
                note=reason,
                state=ReportState.CRM_FAILED,
            )
        return len(items)
