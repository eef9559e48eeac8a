"""Nothing hangs: each open report's SLA stage, deadline and colour, and the sweeper that keeps them.

Three stages have a clock (docs/sla.md):

* ``review``: from receipt until an admin approves or rejects (state ``pending_review``);
* ``citizen_answer``: from an admin's "ask for info" until the citizen answers (state ``needs_info``), so
  a report waiting for someone who never writes back comes back to the top of the queue;
* ``follow_up``: from the first approval until the CRM moves the report (``in_progress``, ``resolved``).
  It also runs while the report waits in the outbox or sits in the dead-letter list (``approved``,
  ``forwarded``, ``crm_failed``): a CRM outage is exactly what must not hang silently.

`evaluate` is pure: the same report facts, rules, calendar and instant give the same answer, and the
facts come from the report's history (its receipt, its ``approved`` and ``info_requested`` events), so a restart or a
second sweeper changes nothing. `sweep` writes what `evaluate` says into the report's ``sla_*``
columns, and the first time a stage goes overdue it appends one ``overdue`` event to the history and
one `AdminNotification` per admin who can act on it (role in `notify_roles`, report in their scope).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlmodel import Session, col

from gateway.db import read_session, write_session
from gateway.settings import ChannelConfig, SLAConfig
from review_queue.accounts import scope_of
from review_queue.tables import AdminNotification, AdminUser, Report, ReportEvent, ReportState
from review_queue.workdays import WIB, WorkCalendar, cached_calendar, warn_if_uncovered

log = logging.getLogger(__name__)

SYSTEM_SLA = "system:sla"
STAGE_REVIEW = "review"
STAGE_FOLLOW_UP = "follow_up"
STAGE_CITIZEN_ANSWER = "citizen_answer"
STAGE_LABELS = {
    STAGE_REVIEW: "review by an admin",
    STAGE_FOLLOW_UP: "follow-up by the CRM",
    STAGE_CITIZEN_ANSWER: "the citizen's answer to a request for information",
}
REVIEW_STATES = frozenset({ReportState.PENDING_REVIEW.value})
WAITING_STATES = frozenset({ReportState.NEEDS_INFO.value})
FOLLOW_UP_STATES = frozenset({ReportState.APPROVED.value, ReportState.FORWARDED.value, ReportState.CRM_FAILED.value})
OPEN_STATES = REVIEW_STATES | WAITING_STATES | FOLLOW_UP_STATES
#: A round looks at reports changed this long before the previous round began, so a transaction that
#: committed late (its `updated_at` is its start) is still seen; hourly full passes catch the rest.
CHANGE_MARGIN = timedelta(minutes=5)


class Level(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"  # the CRM's "almost late": still within the deadline
    OVERDUE = "overdue"


#: Worst first: the order `order=overdue` and the report command show.
LEVEL_RANK = {Level.OVERDUE: 0, Level.RED: 1, Level.YELLOW: 2, Level.GREEN: 3}


@dataclass(frozen=True)
class ReportFacts:
    """What the SLA of one report depends on, read from the report and its history."""

    channel_id: str
    channel_type: str
    category_code: str | None
    state: str
    received_at: datetime
    #: The first `approved` event's time; None if the report was never approved.
    approved_at: datetime | None
    #: The latest `info_requested` event's time; None if nobody asked the citizen anything.
    info_requested_at: datetime | None = None


@dataclass(frozen=True)
class SLAStatus:
    """A report's clock now; every field None when no stage runs (rejected, or the CRM moved it)."""

    stage: str | None = None
    rule: str | None = None
    started_at: datetime | None = None
    due_at: datetime | None = None
    warn_at: datetime | None = None
    level: Level | None = None
    #: When `level` next changes; None when overdue or no stage runs.
    next_at: datetime | None = None

    @property
    def overdue_since(self) -> datetime | None:
        return self.due_at if self.level is Level.OVERDUE else None


def channel_type_of(channel_id: str, channels: Mapping[str, ChannelConfig]) -> str:
    """The configured channel's adapter type; for a channel no longer configured, the id's prefix."""
    channel = channels.get(channel_id)
    return channel.type if channel is not None else channel_id.partition(":")[0]


def choose_limit(
    config: SLAConfig, stage: str, *, channel_id: str, channel_type: str, category_code: str | None
) -> tuple[str, SLAConfig.Limit]:
    """The first rule that matches the report and sets `stage`, else the default; returns (rule name, limit)."""
    for rule in config.rules:
        limit: SLAConfig.Limit | None = getattr(rule, stage)
        match = rule.match
        if (
            limit is not None
            and (not match.channel_types or channel_type in match.channel_types)
            and (not match.channel_ids or channel_id in match.channel_ids)
            and (not match.categories or category_code in match.categories)
        ):
            return rule.name, limit
    return "default", getattr(config, stage)


def point_in_time(start: datetime, amount: int, unit: str, calendar: WorkCalendar) -> datetime:
    """`amount` of `unit` after `start`: calendar days of 24 h, or the end of the Nth working day (WIB)."""
    if unit == "days":
        return start + timedelta(days=amount)
    return calendar.add_working_days(start, amount)


def evaluate(facts: ReportFacts, config: SLAConfig, calendar: WorkCalendar, now: datetime) -> SLAStatus:
    """The report's stage, deadline and level at `now`. Pure: same inputs, same answer."""
    if facts.state in REVIEW_STATES:
        stage, started = STAGE_REVIEW, facts.received_at
    elif facts.state in FOLLOW_UP_STATES:
        # A report approved before its history recorded approvals still gets a clock, from receipt.
        stage, started = STAGE_FOLLOW_UP, facts.approved_at or facts.received_at
    elif facts.state in WAITING_STATES:
        stage, started = STAGE_CITIZEN_ANSWER, facts.info_requested_at or facts.received_at
    else:
        return SLAStatus()
    rule, limit = choose_limit(
        config, stage, channel_id=facts.channel_id, channel_type=facts.channel_type, category_code=facts.category_code
    )

    def after(amount: int | None) -> datetime | None:
        return None if amount is None else point_in_time(started, amount, limit.unit, calendar)

    due, yellow, red = (
        point_in_time(started, limit.within, limit.unit, calendar),
        after(limit.yellow_after),
        after(limit.red_after),
    )
    if now >= due:
        level = Level.OVERDUE
    elif red is not None and now >= red:
        level = Level.RED
    elif yellow is not None and now >= yellow:
        level = Level.YELLOW
    else:
        level = Level.GREEN
    upcoming = [t for t in (yellow, red, due) if t is not None and t > now]
    return SLAStatus(
        stage=stage,
        rule=rule,
        started_at=started,
        due_at=due,
        warn_at=red,
        level=level,
        next_at=min(upcoming) if upcoming else None,
    )


@dataclass
class SweepResult:
    checked: int = 0
    newly_overdue: int = 0
    notifications: int = 0


def sweep(
    engine: Engine,
    config: SLAConfig,
    *,
    channels: Mapping[str, ChannelConfig],
    now: datetime,
    since: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> SweepResult:
    """Bring every report's SLA up to date at `now`, batch by batch; see `sweep_batch` for `since`."""
    total = SweepResult()
    while True:
        result = sweep_batch(engine, config, channels=channels, now=now, since=since, calendar=calendar)
        total.checked += result.checked
        total.newly_overdue += result.newly_overdue
        total.notifications += result.notifications
        if result.checked < config.sweep_batch:
            return total


def sweep_batch(
    engine: Engine,
    config: SLAConfig,
    *,
    channels: Mapping[str, ChannelConfig],
    now: datetime,
    since: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> SweepResult:
    """Update up to `config.sweep_batch` reports in one transaction; return how many were looked at.

    Looked at: reports whose level changes by `now` (`sla_next_at` passed), and reports changed since
    their SLA was computed. `since` limits the latter to reports updated after it (cheap, through
    the `updated_at` index); None looks at all of them (a full pass, at start and now and then).
    """
    calendar = calendar or cached_calendar(config.holidays_file)
    stale = or_(col(Report.sla_version).is_(None), col(Report.sla_version) != col(Report.version))
    if since is not None:
        stale = and_(col(Report.updated_at) >= since, stale)
    due = col(Report.sla_next_at) <= now
    result = SweepResult()
    with write_session(engine) as session:
        # SKIP LOCKED: sweepers of several PostgreSQL processes take different reports, and one
        # never waits on a report an admin is approving right now (it is picked up next round).
        rows = session.execute(
            select(Report)
            .where(or_(due, stale))
            .order_by(col(Report.id))
            .limit(config.sweep_batch)
            .with_for_update(skip_locked=True)
        ).scalars()
        reports = list(rows)
        if not reports:
            return result
        result.checked = len(reports)
        ids = [r.id for r in reports]
        approved = _first_approvals(session, ids)
        asked = _latest_info_requests(session, ids)
        already = _overdue_events(session, ids)
        warn_if_uncovered(calendar, [now.astimezone(WIB).date()])
        admins: list[AdminUser] | None = None
        for report in reports:
            facts = ReportFacts(
                channel_id=report.channel_id,
                channel_type=channel_type_of(report.channel_id, channels),
                category_code=report.category_code,
                state=report.state,
                received_at=report.received_at,
                approved_at=approved.get(report.id),
                info_requested_at=asked.get(report.id),
            )
            status = evaluate(facts, config, calendar, now)
            session.execute(
                update(Report)
                .where(col(Report.id) == report.id)
                .values(
                    sla_stage=status.stage,
                    sla_started_at=status.started_at,
                    sla_due_at=status.due_at,
                    sla_warn_at=status.warn_at,
                    sla_level=status.level.value if status.level else None,
                    overdue_since=status.overdue_since,
                    sla_next_at=status.next_at,
                    sla_version=report.version,  # not bumped: the sweeper must not conflict with an admin
                )
                .execution_options(synchronize_session=False)
            )
            if status.level is not Level.OVERDUE or _stage_key(status) in already.get(report.id, set()):
                continue
            if admins is None:
                admins = _admins_to_notify(session, config.notify_roles)
            result.newly_overdue += 1
            result.notifications += _record_overdue(session, report, status, admins, now)
    return result


def _stage_key(status: SLAStatus) -> tuple[str, str]:
    assert status.stage is not None and status.started_at is not None
    return status.stage, status.started_at.isoformat()


def _first_approvals(session: Session, ids: Sequence[str]) -> dict[str, datetime]:
    rows = session.execute(
        select(col(ReportEvent.report_id), func.min(col(ReportEvent.at)))
        .where(col(ReportEvent.report_id).in_(ids), col(ReportEvent.action) == "approved")
        .group_by(col(ReportEvent.report_id))
    ).all()
    return {report_id: at for report_id, at in rows}


def _latest_info_requests(session: Session, ids: Sequence[str]) -> dict[str, datetime]:
    rows = session.execute(
        select(col(ReportEvent.report_id), func.max(col(ReportEvent.at)))
        .where(col(ReportEvent.report_id).in_(ids), col(ReportEvent.action) == "info_requested")
        .group_by(col(ReportEvent.report_id))
    ).all()
    return {report_id: at for report_id, at in rows}


def _overdue_events(session: Session, ids: Sequence[str]) -> dict[str, set[tuple[str, str]]]:
    """The stages each report already went overdue in, from its history: never twice per stage."""
    found: dict[str, set[tuple[str, str]]] = {}
    rows = session.execute(
        select(col(ReportEvent.report_id), col(ReportEvent.after)).where(
            col(ReportEvent.report_id).in_(ids), col(ReportEvent.action) == "overdue"
        )
    ).all()
    for report_id, after in rows:
        after = after or {}
        found.setdefault(report_id, set()).add((str(after.get("sla_stage")), str(after.get("sla_started_at"))))
    return found


def _admins_to_notify(session: Session, roles: Sequence[str]) -> list[AdminUser]:
    query = select(AdminUser).where(col(AdminUser.role).in_(roles), col(AdminUser.disabled).is_(False))
    return list(session.execute(query.order_by(col(AdminUser.username))).scalars())


def _record_overdue(
    session: Session, report: Report, status: SLAStatus, admins: Sequence[AdminUser], now: datetime
) -> int:
    """Append the report's `overdue` event and one notification per admin; return how many admins."""
    assert status.stage is not None and status.due_at is not None and status.started_at is not None
    due_wib = status.due_at.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB")
    what = f"{STAGE_LABELS[status.stage]} was due {due_wib} (rule {status.rule})"
    after: dict[str, Any] = {
        "sla_stage": status.stage,
        "sla_rule": status.rule,
        "sla_started_at": status.started_at.isoformat(),
        "sla_due_at": status.due_at.isoformat(),
    }
    session.add(ReportEvent(report_id=report.id, at=now, actor=SYSTEM_SLA, action="overdue", after=after, note=what))
    message = f"Report {report.ticket_code} is overdue: {what}."
    key = f"overdue:{report.id}:{status.stage}:{status.started_at.isoformat()}"
    # Only those who can open it: a kelurahan admin hears of their kelurahan, not of the whole city.
    admins = [admin for admin in admins if scope_of(admin).allows(report)]
    for admin in admins:
        session.add(
            AdminNotification(
                admin_id=admin.id, report_id=report.id, kind="overdue", dedupe_key=key, message=message, created_at=now
            )
        )
    # No e-mail or chat to admins exists yet: the log line and the rows are the notification for now.
    if admins:
        log.warning("sla: %s Told: %s", message, ", ".join(a.username for a in admins))
    else:
        log.warning("sla: %s No active admin with a role that can act and this report in scope to tell.", message)
    return len(admins)


@dataclass(frozen=True)
class OverdueReport:
    """One line of `kanal sla report`."""

    ticket_code: str
    agency: str
    channel_id: str
    state: str
    stage: str
    due_at: datetime
    received_at: datetime
    age_days: int
    age_working_days: int
    overdue_days: int

    def as_json(self) -> dict[str, Any]:
        return {
            "ticket_code": self.ticket_code,
            "agency": self.agency,
            "channel_id": self.channel_id,
            "state": self.state,
            "stage": self.stage,
            "due_at": self.due_at.astimezone(WIB).isoformat(),
            "received_at": self.received_at.astimezone(WIB).isoformat(),
            "age_days": self.age_days,
            "age_working_days": self.age_working_days,
            "overdue_days": self.overdue_days,
        }


UNASSIGNED = "unassigned"


def overdue_reports(engine: Engine, *, now: datetime, calendar: WorkCalendar) -> dict[str, list[OverdueReport]]:
    """Open reports past their deadline at `now`, by agency ("code / unit", or "unassigned"), oldest first.

    Reads the deadlines the sweeper stored, so a report past its deadline shows here even before the
    next sweep flags it; one the sweeper never saw (no deadline yet) does not.
    """
    query = (
        select(Report)
        .where(col(Report.state).in_(OPEN_STATES), col(Report.sla_due_at) <= now)
        .order_by(col(Report.received_at), col(Report.id))
    )
    grouped: dict[str, list[OverdueReport]] = {}
    with read_session(engine) as session:
        for report in session.execute(query).scalars():
            assert report.sla_due_at is not None
            agency = UNASSIGNED
            if report.agency_code:
                agency = f"{report.agency_code} / {report.agency_unit}" if report.agency_unit else report.agency_code
            grouped.setdefault(agency, []).append(
                OverdueReport(
                    ticket_code=report.ticket_code,
                    agency=agency,
                    channel_id=report.channel_id,
                    state=report.state,
                    stage=report.sla_stage or "",
                    due_at=report.sla_due_at,
                    received_at=report.received_at,
                    age_days=(now - report.received_at).days,
                    age_working_days=calendar.working_days_between(report.received_at, now),
                    overdue_days=(now - report.sla_due_at).days,
                )
            )
    # Agencies with the oldest overdue report first; "unassigned" sorts like any other.
    return dict(sorted(grouped.items(), key=lambda item: (item[1][0].received_at, item[0])))


def format_overdue(grouped: Mapping[str, Sequence[OverdueReport]], *, now: datetime) -> str:
    """The plain-text `kanal sla report`: one block per agency, times in WIB."""
    stamp = now.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB")
    count = sum(len(rows) for rows in grouped.values())
    if not count:
        return f"No overdue reports at {stamp}."
    lines = [f"{count} overdue report(s) at {stamp}, by agency, oldest first:"]
    for agency, rows in grouped.items():
        lines.append("")
        lines.append(f"{agency} ({len(rows)})")
        for row in rows:
            lines.append(
                f"  {row.ticket_code}  {row.stage:<9}  received {row.received_at.astimezone(WIB):%d-%m-%Y %H:%M}"
                f"  age {row.age_working_days} working day(s) / {row.age_days} day(s)"
                f"  due {row.due_at.astimezone(WIB):%d-%m-%Y %H:%M}  ({row.state}, {row.channel_id})"
            )
    return "\n".join(lines)
