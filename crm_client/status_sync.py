"""Status sync: follow every forwarded report until the CRM closes it, recording each change once.

Two ways in, one way to apply:
- the poller asks the CRM about forwarded reports in batches (`GET requests.json?service_request_id=a,b,c`),
  oldest-checked first, so every open report is asked about in turn however many there are;
- the CRM may push a status webhook (`POST /api/v1/crm/status`, signed like the `api` channel).
Both end in `apply_status`, which compares the CRM's status and time with what the report holds and
records a `crm_status` event only when something changed: a poll and a webhook telling the same change,
or the same poll twice, leave one row in the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from crm_client import notifications
from crm_client.periodic import PeriodicLoop
from gateway.db import utcnow, write_session
from gateway.settings import CRMConfig, KanalSettings
from review_queue.history import record_change
from review_queue.tables import Report, ReportState

log = logging.getLogger(__name__)

SYSTEM_CRM = "system:crm"

#: The CRM's status words (CRM Jakarta's, as its operators use them) and Kanal's report states.
CRM_STATES: Mapping[str, ReportState] = {
    "Menunggu": ReportState.FORWARDED,
    "Koordinasi": ReportState.IN_PROGRESS,
    "Disposisi": ReportState.IN_PROGRESS,
    "Proses": ReportState.IN_PROGRESS,
    "Selesai": ReportState.RESOLVED,
}
#: A plain Open311 CRM says only open or closed.
OPEN311_STATES: Mapping[str, ReportState] = {"open": ReportState.FORWARDED, "closed": ReportState.RESOLVED}
#: Reports status sync still follows.
FOLLOWED_STATES = (ReportState.FORWARDED, ReportState.IN_PROGRESS)


@dataclass(frozen=True)
class CRMStatus:
    """One report's status as the CRM tells it."""

    service_request_id: str
    crm_status: str | None  # the CRM's own word, when it has one
    open311_status: str | None  # "open" / "closed"
    notes: str | None
    updated_at: datetime | None

    @property
    def word(self) -> str:
        return self.crm_status or self.open311_status or "open"

    @property
    def state(self) -> ReportState | None:
        if self.crm_status is not None and self.crm_status in CRM_STATES:
            return CRM_STATES[self.crm_status]
        if self.open311_status is not None and self.open311_status in OPEN311_STATES:
            return OPEN311_STATES[self.open311_status]
        return None


def parse_status(item: Mapping[str, Any]) -> CRMStatus | None:
    """One element of an Open311 `requests.json` answer (or a webhook body); None when it has no id."""
    request_id = item.get("service_request_id")
    if not request_id:
        return None
    updated = item.get("updated_datetime")
    updated_at = None
    if isinstance(updated, str) and updated:
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(updated.replace("Z", "+00:00"))
            updated_at = parsed if parsed.tzinfo else None
    crm_status = item.get("crm_status")
    status = item.get("status")
    notes = item.get("status_notes")
    return CRMStatus(
        service_request_id=str(request_id),
        crm_status=str(crm_status) if crm_status else None,
        open311_status=str(status).lower() if status else None,
        notes=str(notes)[:2000] if notes else None,
        updated_at=updated_at,
    )


def change_key(status: CRMStatus) -> str:
    """What identifies one change: the word, the note and the CRM's time of it."""
    when = status.updated_at.isoformat() if status.updated_at else ""
    return f"{status.word}|{status.notes or ''}|{when}"


def apply_status(
    session: Session, report: Report, status: CRMStatus, *, source: str, settings: KanalSettings | None = None
) -> bool:
    """Record `status` on `report` if it is news; return whether anything changed.

    News is a different status word or note, at a CRM time not older than the one we hold (a late
    poll answer must not undo a newer webhook). Unknown words are recorded but move no state.
    """
    held = report.crm_updated_at
    if held is not None and status.updated_at is not None and status.updated_at < held:
        return False
    if (report.crm_status, report.crm_status_notes) == (status.word, status.notes):
        return False
    new_state = status.state or ReportState(report.state)
    if report.state not in FOLLOWED_STATES and report.state != ReportState.RESOLVED:
        new_state = ReportState(report.state)  # not ours to move (e.g. still approved, awaiting its id)
    if report.crm_status is None and new_state == report.state and not status.notes:
        # The CRM's first word about a request it just received ("Menunggu", "open") moves nothing and
        # tells the citizen nothing: remember it without a history row, so only real changes are told.
        report.crm_status, report.crm_updated_at = status.word, status.updated_at or report.crm_updated_at
        session.add(report)
        return False
    note = f"{status.word}: {status.notes}" if status.notes else status.word
    record_change(
        session,
        report,
        actor=SYSTEM_CRM,
        action="crm_status",
        note=f"{note} (via {source})",
        state=new_state,
        crm_status=status.word,
        crm_status_notes=status.notes,
        crm_updated_at=status.updated_at or report.crm_updated_at,
    )
    if settings is not None:
        # In the same transaction as the change: the citizen is told exactly the changes that were recorded.
        # Citizens whose reports were merged into this one follow it: they hear the same news.
        for told in [report, *_merged_into(session, report)]:
            notifications.enqueue(
                session,
                report=told,
                change_key=change_key(status),
                state=str(new_state),
                note=status.notes,
                config=settings.notifications,
                public_base_url=settings.public_base_url,
                progress_of=report if told is not report else None,
            )
    return True


def _merged_into(session: Session, report: Report) -> list[Report]:
    """The reports an admin merged into `report` (its `merged_sources`, merges of merges included)."""
    tickets = [s["ticket_code"] for s in report.merged_sources or () if s.get("ticket_code")]
    if not tickets:
        return []
    query = select(Report).where(col(Report.ticket_code).in_(tickets), col(Report.state) == ReportState.MERGED)
    return list(session.execute(query.order_by(col(Report.ticket_code))).scalars())


def apply_many(
    engine: Engine,
    statuses: Sequence[CRMStatus],
    *,
    source: str,
    settings: KanalSettings | None = None,
    checked: Sequence[str] = (),
) -> int:
    """Apply CRM statuses in one transaction; mark `checked` report ids as asked about now. Returns changes."""
    changed = 0
    by_request = {s.service_request_id: s for s in statuses}
    with write_session(engine) as session:
        if by_request:
            reports = session.execute(
                select(Report).where(col(Report.crm_service_request_id).in_(list(by_request))).with_for_update()
            ).scalars()
            for report in reports:
                status = by_request.get(report.crm_service_request_id or "")
                if status is not None and apply_status(session, report, status, source=source, settings=settings):
                    changed += 1
        if checked:
            now = utcnow()
            for report in session.execute(select(Report).where(col(Report.id).in_(list(checked)))).scalars():
                report.crm_checked_at = now
                session.add(report)
    return changed


def due_for_check(engine: Engine, limit: int) -> list[tuple[str, str]]:
    """(report id, CRM id) of followed reports, never-checked first, then the longest unchecked."""
    with Session(engine) as session:
        rows = session.execute(
            select(col(Report.id), col(Report.crm_service_request_id))
            .where(col(Report.state).in_([s.value for s in FOLLOWED_STATES]))
            .where(col(Report.crm_service_request_id).is_not(None))
            .order_by(col(Report.crm_checked_at).asc().nulls_first(), col(Report.id))
            .limit(limit)
        ).all()
    return [(str(r[0]), str(r[1])) for r in rows]


async def fetch_statuses(http: httpx.AsyncClient, crm: CRMConfig, request_ids: Sequence[str]) -> list[CRMStatus]:
    """Ask the CRM about several requests at once (the spec's id list); raise httpx errors to the caller."""
    params = {"service_request_id": ",".join(request_ids)}
    if crm.jurisdiction_id:
        params["jurisdiction_id"] = crm.jurisdiction_id
    response = await http.get("requests.json", params=params)
    response.raise_for_status()
    answer = response.json()
    if not isinstance(answer, list):
        raise ValueError("the CRM's requests.json answer is not a list")
    return [s for s in (parse_status(item) for item in answer if isinstance(item, dict)) if s is not None]


class StatusPoller(PeriodicLoop):
    """The periodic loop: one batch per round, then a pause of the poll interval."""

    name = "status-sync"

    def __init__(self, engine: Engine, settings: KanalSettings) -> None:
        super().__init__(settings.status_sync.poll_interval_seconds)
        self._engine = engine
        self._settings = settings
        self._crm = settings.crm
        self._config = settings.status_sync

    async def run_once(self) -> int:
        """One batch: ask, apply, mark checked. Returns how many reports changed."""
        due = await asyncio.to_thread(due_for_check, self._engine, self._config.batch_size)
        if not due:
            return 0
        async with httpx.AsyncClient(base_url=self._crm.base_url, timeout=self._crm.timeout_seconds) as http:
            statuses = await fetch_statuses(http, self._crm, [crm_id for _, crm_id in due])
        return await asyncio.to_thread(
            apply_many,
            self._engine,
            statuses,
            source="poll",
            settings=self._settings,
            checked=[report_id for report_id, _ in due],
        )

    def describe_error(self, exc: Exception) -> str | None:
        if isinstance(exc, httpx.HTTPError | ValueError):
            # The CRM is down or answered nonsense: try again next round; the reports stay followed.
            return f"could not ask the CRM ({type(exc).__name__})"
        return None
