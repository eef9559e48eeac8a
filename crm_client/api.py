"""The dead-letter view: what is on its way to the CRM, what it refused and why, and the operator's levers
(retry, drop with a reason, resume after a credentials pause). Reviewers and superadmins only."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import Engine, select
from sqlmodel import col

from crm_client import outbox, pause
from crm_client.attempts import attempts_for, last_attempts
from crm_client.tables import CRMAttempt, OutboxItem, OutboxState
from gateway.db import read_session
from gateway.deps import ReviewerDep, RuntimeDep
from review_queue.tables import Report

router = APIRouter(prefix="/api/v1/outbox", tags=["outbox"])


class AttemptPublic(BaseModel):
    at: datetime
    operation: str
    http_status: int | None
    #: The CRM's answer (its error array, for a refusal), secrets redacted.
    answer: str | None
    error_kind: str | None
    duration_ms: int

    @classmethod
    def of(cls, row: CRMAttempt) -> AttemptPublic:
        return cls.model_validate(row, from_attributes=True)


class OutboxItemPublic(BaseModel):
    id: str
    report_id: str
    ticket_code: str | None
    state: str
    sink: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    crm_token: str | None
    last_attempt: AttemptPublic | None
    #: Only on the single-item view: the newest attempts first.
    history: list[AttemptPublic] | None = None


class PauseState(BaseModel):
    paused: bool
    since: datetime | None = None
    reason: str | None = None


class DropRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ActionResult(BaseModel):
    count: int
    message: str


def list_items(engine: Engine, *, state: str, limit: int) -> list[OutboxItemPublic]:
    """Items in `state`, oldest first, each with its newest attempt; what the view and `kanal outbox list` show."""
    with read_session(engine) as session:
        rows = session.execute(
            select(OutboxItem, col(Report.ticket_code))
            .join(Report, col(Report.id) == col(OutboxItem.report_id))
            .where(col(OutboxItem.state) == state)
            .order_by(col(OutboxItem.created_at), col(OutboxItem.id))
            .limit(limit)
        ).all()
        last = last_attempts(session, [item.id for item, _ in rows])
        return [_public(item, ticket, last.get(item.id)) for item, ticket in rows]


def _public(item: OutboxItem, ticket: str | None, last: CRMAttempt | None) -> OutboxItemPublic:
    data: dict[str, Any] = item.model_dump(
        include={
            "id",
            "report_id",
            "state",
            "sink",
            "attempts",
            "created_at",
            "next_attempt_at",
            "sent_at",
            "last_status_code",
            "last_error",
            "crm_token",
        }
    )
    return OutboxItemPublic(**data, ticket_code=ticket, last_attempt=AttemptPublic.of(last) if last else None)


@router.get("", response_model=list[OutboxItemPublic])
async def list_outbox(
    runtime: RuntimeDep,
    _admin: ReviewerDep,
    state: OutboxState = OutboxState.DEAD,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[OutboxItemPublic]:
    """Dead letters by default: each with the CRM's last answer, so the reason is one look away."""
    return await asyncio.to_thread(list_items, runtime.engine, state=state, limit=limit)


@router.get("/pause", response_model=PauseState)
async def pause_state(runtime: RuntimeDep, _admin: ReviewerDep) -> PauseState:
    held = await asyncio.to_thread(pause.current, runtime.engine)
    return PauseState(
        paused=held is not None, since=held.paused_at if held else None, reason=held.reason if held else None
    )


@router.post("/resume", response_model=ActionResult)
async def resume_sending(request: Request, runtime: RuntimeDep, admin: ReviewerDep) -> ActionResult:
    """After the credentials are fixed (on either side): lift the pause and send what waited."""
    lifted = await runtime.writes.run(lambda: pause.resume(runtime.engine))
    request.app.state.workers.poke_dispatcher()
    return ActionResult(count=int(lifted), message="sending resumed" if lifted else "sending was not paused")


@router.get("/{item_id}", response_model=OutboxItemPublic)
async def read_item(item_id: str, runtime: RuntimeDep, _admin: ReviewerDep) -> OutboxItemPublic:
    def read() -> OutboxItemPublic | None:
        with read_session(runtime.engine) as session:
            item = session.get(OutboxItem, item_id)
            if item is None:
                return None
            report = session.get(Report, item.report_id)
            history = attempts_for(session, item.id)
            view = _public(item, report.ticket_code if report else None, history[0] if history else None)
            view.history = [AttemptPublic.of(a) for a in history]
            return view

    found = await asyncio.to_thread(read)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no outbox item with that id")
    return found


@router.post("/{item_id}/retry", response_model=ActionResult)
async def retry_item(item_id: str, request: Request, runtime: RuntimeDep, admin: ReviewerDep) -> ActionResult:
    """Send a dead item again, built afresh from its report under the current configuration."""
    count = await runtime.writes.run(
        lambda: outbox.retry_dead(
            runtime.engine, item_ids=[item_id], actor=f"admin:{admin.username}", crm=runtime.settings.crm
        )
    )
    if not count:
        raise HTTPException(status.HTTP_409_CONFLICT, f"outbox item {item_id} is not dead (or does not exist)")
    request.app.state.workers.poke_dispatcher()
    return ActionResult(count=count, message="queued again")


@router.post("/{item_id}/drop", response_model=ActionResult)
async def drop_item(item_id: str, body: DropRequest, runtime: RuntimeDep, admin: ReviewerDep) -> ActionResult:
    """Give up on a dead (or still pending) item; the reason is recorded in the report's history."""
    try:
        count = await runtime.writes.run(
            lambda: outbox.drop(runtime.engine, item_ids=[item_id], actor=f"admin:{admin.username}", reason=body.reason)
        )
    except outbox.OutboxActionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return ActionResult(count=count, message="dropped")
