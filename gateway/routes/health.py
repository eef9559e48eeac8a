"""`/healthz` for load balancers and operators, `/metrics` for Prometheus."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from sqlalchemy import func, select
from sqlmodel import col

from crm_client import pause
from crm_client.tables import OutboxItem, OutboxState
from gateway import cursors
from gateway.db import read_session, utcnow
from gateway.deps import RuntimeDep
from gateway.inbox import InboundMessageRow, MessageState, QuarantinedPayload
from gateway.media_fetch import read_status as read_media_status
from gateway.metrics import format_labels
from gateway.runtime import Runtime
from gateway.scheduler import pull_channels
from review_queue.tables import Report, ReportState

router = APIRouter(tags=["operations"])

#: A loop that has not finished a round for this long is reported as stalled.
STALLED_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class Backlog:
    inbox_new: int
    inbox_failed: int
    review_pending: int
    outbox_pending: int
    outbox_dead: int
    quarantined: int
    oldest_inbox_seconds: float
    oldest_review_seconds: float
    oldest_outbox_seconds: float


def read_backlog(runtime: Runtime) -> Backlog:
    now = utcnow()
    with read_session(runtime.engine) as s:

        def count(model, *where) -> int:  # type: ignore[no-untyped-def]
            return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())

        def age(column, *where) -> float:  # type: ignore[no-untyped-def]
            oldest = s.execute(select(func.min(column)).where(*where)).scalar_one()
            if oldest is None:
                return 0.0
            if oldest.tzinfo is None:  # SQLite's MIN() bypasses the column type
                oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC)
            return max(0.0, (now - oldest).total_seconds())

        new = col(InboundMessageRow.state) == MessageState.NEW
        pending = col(Report.state) == ReportState.PENDING_REVIEW
        due = col(OutboxItem.state) == OutboxState.PENDING
        return Backlog(
            inbox_new=count(InboundMessageRow, new),
            inbox_failed=count(InboundMessageRow, col(InboundMessageRow.state) == MessageState.FAILED),
            review_pending=count(Report, pending),
            outbox_pending=count(OutboxItem, due),
            outbox_dead=count(OutboxItem, col(OutboxItem.state) == OutboxState.DEAD),
            quarantined=count(QuarantinedPayload),
            oldest_inbox_seconds=age(InboundMessageRow.received_at, new),
            oldest_review_seconds=age(Report.created_at, pending),
            oldest_outbox_seconds=age(OutboxItem.created_at, due),
        )


def read_pull_status(runtime: Runtime) -> dict[str, dict[str, object]]:
    """Pull channel id -> how its polls are going, from `channel_cursor` (shared by every process)."""
    ids = sorted(pull_channels(runtime.channels))
    if not ids:
        return {}
    with runtime.engine.connect() as connection:
        states = cursors.read_states(connection, ids)
    status: dict[str, dict[str, object]] = {}
    for channel_id in ids:
        state = states.get(channel_id)
        if state is None:
            status[channel_id] = {"status": "not polled yet", "last_success_at": None, "consecutive_failures": 0}
            continue
        if not state.consecutive_failures:
            summary = "ok"
        else:
            # Not retryable (credentials, a removed account): it only comes back once someone fixes it.
            summary = "retrying" if state.last_error_retryable is not False else "error"
        status[channel_id] = {
            "status": summary,
            "last_success_at": state.last_success_at.isoformat() if state.last_success_at else None,
            "consecutive_failures": state.consecutive_failures,
            "last_error": state.last_error,
            "next_attempt_at": state.next_attempt_at.isoformat() if state.next_attempt_at else None,
        }
    return status


def read_crm_status(runtime: Runtime) -> dict[str, object]:
    """Whether sending to the CRM is paused (shared by every process through the database) and why."""
    held = pause.current(runtime.engine)
    if held is None:
        return {"kind": runtime.settings.crm.kind, "paused": False}
    return {
        "kind": runtime.settings.crm.kind,
        "paused": True,
        "paused_at": held.paused_at.isoformat(),
        "alert": f"CRM sending paused since {held.paused_at.isoformat(timespec='seconds')}: {held.reason}",
    }


@router.get("/healthz")
async def healthz(runtime: RuntimeDep) -> Response:
    """200 when the database answers and every worker loop is alive; 503 with the reason otherwise."""
    problems: list[str] = []
    try:
        backlog = await asyncio.to_thread(read_backlog, runtime)  # also proves the database answers
    except Exception as exc:
        problems.append(f"database unreachable: {type(exc).__name__}")
        backlog = None
    try:
        pulls: dict[str, dict[str, object]] | None = await asyncio.to_thread(read_pull_status, runtime)
    except Exception:
        pulls = None  # the backlog read above already names the database problem
    try:
        crm = await asyncio.to_thread(read_crm_status, runtime)
    except Exception:
        crm = None
    try:
        media: dict[str, object] | None = await asyncio.to_thread(read_media_status, runtime.engine)
    except Exception:
        media = None
    now = time.monotonic()
    workers = {}
    if runtime.settings.workers.enabled:
        for loop in ("normalizer", "dispatcher"):
            last = runtime.heartbeats.get(loop)
            alive = last is not None and now - last < STALLED_AFTER_SECONDS
            workers[loop] = {
                "alive": alive,
                "seconds_since_round": None if last is None else round(now - last, 1),
            }
            if not alive:
                problems.append(f"worker {loop} has not completed a round in {STALLED_AFTER_SECONDS:.0f} s")
    body = {
        "status": "ok" if not problems else "degraded",
        "problems": problems,
        "workers": workers,
        "backlog": backlog.__dict__ if backlog else None,
        "channels": sorted(runtime.channels),
        # A failing pull channel is shown here but does not fail the check: the web routes still work.
        "pull_channels": pulls,
        # A paused CRM (it refused our credentials) is an operator alert, not a failed check: intake goes on.
        "crm": crm,
        # Photos waiting for download and those that never will be; neither fails the check.
        "media": media,
        "alerts": [crm["alert"]] if crm and crm.get("alert") else [],
    }
    return Response(json.dumps(body), status_code=200 if not problems else 503, media_type="application/json")


@router.get("/metrics")
async def prometheus_metrics(runtime: RuntimeDep) -> Response:
    lines = list(runtime.counters.render())
    try:
        backlog = await asyncio.to_thread(read_backlog, runtime)
    except Exception:
        backlog = None
    if backlog is not None:
        gauges: dict[str, tuple[str, float, dict[str, str]]] = {
            "kanal_inbox_depth": ("Messages stored but not yet normalized.", backlog.inbox_new, {}),
            "kanal_inbox_failed": ("Messages the normalizer gave up on.", backlog.inbox_failed, {}),
            "kanal_review_depth": ("Reports waiting for an admin.", backlog.review_pending, {}),
            "kanal_outbox_depth": (
                "Approved reports not yet accepted by the CRM.",
                backlog.outbox_pending,
                {},
            ),
            "kanal_outbox_dead": (
                "Reports the CRM refused or never took; see kanal outbox list.",
                backlog.outbox_dead,
                {},
            ),
            "kanal_quarantine_size": ("Rejected deliveries kept for inspection.", backlog.quarantined, {}),
        }
        for stage, seconds in (
            ("inbox", backlog.oldest_inbox_seconds),
            ("review", backlog.oldest_review_seconds),
            ("outbox", backlog.oldest_outbox_seconds),
        ):
            gauges[f"kanal_oldest_{stage}_age_seconds"] = (
                f"Age of the oldest item waiting in {stage}.",
                seconds,
                {},
            )
        for name, (help_text, value, labels) in gauges.items():
            lines += [
                f"# HELP {name} {help_text}",
                f"# TYPE {name} gauge",
                f"{name}{format_labels(labels)} {value:g}",
            ]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")
